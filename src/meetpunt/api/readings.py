"""A read of meter data through the gate for the API (PRV-1, PRV-7; issue 17).

The request names the calling party and its purpose; the gate decides (every broken
rule, audited), a grant reads exactly its connections, kind and sub-periods (audited as
a read), and the rows go out as JSON or CSV with the connection's EAN instead of the
hub's internal id. A refusal is 403, or 404 when a connection is unknown
(PRV-1.unknown_connection), with every finding.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from meetpunt.api.errors import ApiError
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.privacy.gate import Gate, GateError, Grant
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period

INTERNAL_COLUMNS = frozenset({"connection", "batch"})
"""Hub columns that do not leave: the register's internal id (the EAN goes out
instead) and the ingestion batch."""


@dataclass(frozen=True)
class Reading:
    """What a granted read returns: the grant (purpose, audit record, sub-periods, cuts)
    and the rows, each with its connection's EAN."""

    grant: Grant
    kind: str
    rows: list[dict[str, Any]]

    def document(self) -> dict[str, Any]:
        """The JSON answer: purpose, audit record, granted sub-periods, cuts, rows."""
        decision = self.grant.decision
        return {
            "purpose": self.grant.rule.id,
            "kind": self.kind,
            "audit_seq": decision.audit_seq,
            "granted": {
                ean: [{"start": p.start, "end": p.end} for p in periods]
                for ean, periods in self.grant.periods.items()
            },
            "cuts": [
                {"ean": c.ean, "rule": c.rule, "start": c.period.start, "end": c.period.end}
                for c in decision.cuts
            ],
            "readings": self.rows,
        }

    def csv(self) -> str:
        """The rows as CSV (a header, ISO 8601 UTC times), for the customer's download."""
        out = io.StringIO()
        columns = list(self.rows[0]) if self.rows else ["ean"]
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow(
                {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
            )
        return out.getvalue()


def read_through_gate(
    gate: Gate,
    party: Party,
    purpose: str,
    eans: Sequence[str],
    kind: str,
    first: date,
    after: date,
    why: str,
) -> Reading:
    """Ask the gate for ``kind`` of ``eans`` over the local days ``first`` up to
    ``after`` (exclusive) under ``purpose``, and read the grant; :class:`ApiError` 404
    or 403 with every broken rule when refused (the gate audited it)."""
    period = Period(local_midnight_utc(first), local_midnight_utc(after))
    request = AccessRequest(
        party, purpose, tuple(eans), frozenset({kind}), period, gate.clock(), justification=why
    )
    outcome = gate.request(request)
    if isinstance(outcome, Decision):
        raise ApiError(status_of(outcome.rules), outcome.findings)
    try:
        table = outcome.read(kind)
    except GateError as refused:  # a read the grant refuses: audited by the gate
        raise ApiError(403, refused.findings) from refused
    return Reading(outcome, kind, rows_with_eans(table, outcome.connection_ids))


def status_of(rules: Sequence[str]) -> int:
    """404 when a requested connection is unknown, else 403 (issue 17)."""
    return 404 if "PRV-1.unknown_connection" in rules else 403


def rows_with_eans(table: pa.Table, ids: Any) -> list[dict[str, Any]]:
    """The table's rows with ``ean`` in place of the internal connection id, in time
    order per connection."""
    eans = {cid: ean for ean, cid in ids.items()}
    keep = [c for c in table.column_names if c not in INTERNAL_COLUMNS]
    connections = table.column("connection").to_pylist()
    values = table.select(keep).to_pylist()
    rows = [{"ean": eans[cid], **row} for cid, row in zip(connections, values, strict=True)]
    return rows
