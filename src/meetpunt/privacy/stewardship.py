"""Reading the quarantine is a purpose of its own: data stewardship (PRV-1, PRV-7, MTR-5).

The hub keeps every record it refused with its reason and its raw content, so nothing
is lost (MTR-4/5). Those records hold EANs and meter values like any stored data, so
they leave the hub the same way: a named purpose (``data_stewardship`` in the
use-case catalogue, for the grid operator only), the catalogue's rules, and one audit
record per read naming the connections it showed, which the customer then finds in
"who read my meter" (``meetpunt audit list --ean``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from meetpunt.domain.ean import is_valid_ean
from meetpunt.domain.findings import Finding
from meetpunt.errors import UnavailableError
from meetpunt.privacy import audit
from meetpunt.privacy.gate import Gate, GateError
from meetpunt.privacy.model import QUARANTINE, AccessRequest, Party, Period
from meetpunt.privacy.rules import evaluate

STEWARDSHIP = "data_stewardship"
"""The catalogue's purpose for reading refused records."""
_SINCE = datetime(1970, 1, 1, tzinfo=UTC)


def read_quarantine(
    gate: Gate,
    party: Party,
    rule: str | None = None,
    limit: int = 50,
    justification: str = "",
) -> list[dict[str, Any]]:
    """Up to ``limit`` refused records (only ``rule``'s when given), oldest first, read
    for data stewardship: refused with the catalogue's rule and audited when ``party``
    may not read them (``data_stewardship.party``), audited with every connection they
    show when it may (PRV-1, PRV-7). A negative ``limit`` is refused
    (``MTR-5.quarantine_limit``)."""
    now = gate.clock()
    request = AccessRequest(
        party=party,
        purpose=STEWARDSHIP,
        connections=(),
        kinds=frozenset({QUARANTINE}),
        period=Period(_SINCE, now),
        at=now,
        justification=justification,
    )
    findings = evaluate(gate.catalogue.get(STEWARDSHIP), request, {})
    if limit < 0:
        findings.append(
            Finding("MTR-5.quarantine_limit", f"--limit {limit}: give 0 or more records")
        )
    detail: dict[str, Any] = {
        "role": party.role.value,
        "kind": QUARANTINE,
        "rule_filter": rule,
        "limit": limit,
    }
    if party.name:
        detail["party_name"] = party.name
    if justification:
        detail["justification"] = justification
    if findings:
        with gate.transaction() as db:
            audit.append(db, _entry(party, "refused", (), [f.rule for f in findings], detail), now)
        raise GateError("; ".join(f.message for f in findings), findings)
    if gate.store is None:
        raise UnavailableError(
            "no meter-data store is open, so there is no quarantine to read",
            hint="give the store with --store or MEETPUNT_STORE",
        )
    with gate.transaction() as db:  # serialised with the gate's other writers
        rows = gate.store.quarantined(rule, limit)
        shown = sorted({str(r["ean"]) for r in rows if r["ean"] and is_valid_ean(str(r["ean"]))})
        audit.append(db, _entry(party, "read", shown, [], {**detail, "records": len(rows)}), now)
    return rows


def _entry(
    party: Party, outcome: str, eans: Any, rules: list[str], detail: dict[str, Any]
) -> audit.AuditEntry:
    return audit.AuditEntry(
        event="read",
        party=party.id,
        purpose=STEWARDSHIP,
        outcome=outcome,
        connections=tuple(eans),
        kinds=(QUARANTINE,),
        rules=tuple(rules),
        detail=detail,
    )
