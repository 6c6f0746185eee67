"""What a granted request may read, and nothing more (PRV-1, PRV-4..6).

A :class:`Grant` comes only from :meth:`meetpunt.privacy.gate.Gate.request`. Its
readers return exactly the granted connections, kinds and sub-periods (the period, clipped
to where every rule held); each one first checks
the grant against what the gate stored for its decision (``PRV-1.grant``: a changed or
hand-made grant reads nothing), then its own limit (a refused read is audited and
raises), reads through the hub store's API, and writes what left to the audit log
(PRV-7).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq

from meetpunt.domain.calendar import to_local
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.meterdata.kinds import KINDS
from meetpunt.privacy import aggregation, disclosure, grants, retention
from meetpunt.privacy.catalogue import PurposeRule
from meetpunt.privacy.model import (
    REACHABILITY,
    VOLTAGE_PRESENCE,
    AccessRequest,
    Decision,
    Period,
    stored_utc,
)
from meetpunt.register import read

if TYPE_CHECKING:
    from meetpunt.meterdata.store import MeterStore
    from meetpunt.privacy.gate import Gate


class GateError(MeetpuntError):
    """A read the grant does not allow (``meetpunt.privacy``)."""


@dataclass(frozen=True, eq=False)
class Grant:
    """What a granted request may read: exactly its connections, kinds and period.

    Immutable (``connection_ids`` is a read-only view of a private copy), and checked
    before every read against the gate's stored record of its decision: the
    ``privacy_grant`` rows under ``decision.audit_seq`` and that audit record. A grant
    that differs from it, or that the gate never issued, reads nothing: the refusal is
    audited (``PRV-1.grant``) and raises :class:`GateError`.
    """

    decision: Decision
    rule: PurposeRule
    connection_ids: Mapping[str, int]
    gate: Gate

    def __post_init__(self) -> None:
        object.__setattr__(self, "connection_ids", MappingProxyType(dict(self.connection_ids)))

    @property
    def request(self) -> AccessRequest:
        return self.decision.request

    @property
    def periods(self) -> dict[str, tuple[Period, ...]]:
        """The granted sub-periods of each connection (PRV-1): the whole period unless
        a rule cut some of it (:attr:`Decision.cuts`)."""
        return {ean: self.decision.periods_of(ean) for ean in self.connection_ids}

    def _check(self) -> None:
        """Refuse (audited, ``PRV-1.grant``) unless this grant is what the gate stored
        for its decision. The gate remembers a grant object it checked together with
        what it checked, so later reads compare in memory, and any change to the
        object since, even through ``object.__setattr__``, is checked again."""
        checked = self.gate.checked_grants.get(self)
        decision, rule, ids = self.decision, self.rule, self.connection_ids
        if (
            checked is not None
            and checked[0] is decision
            and checked[1] is rule
            and isinstance(ids, MappingProxyType)
            and checked[2] == dict(ids)
        ):
            return
        request = decision.request
        why: str | None
        if not isinstance(ids, MappingProxyType):
            why = "the grant's connections are not its own read-only copy"
        elif decision.findings:
            why = "the grant's decision was refused"
        elif rule != self.gate.catalogue.get(request.purpose) or rule.id != request.purpose:
            why = f"the grant's rule is not the catalogue's {request.purpose}"
        else:
            with self.gate.register.session() as session:
                why = grants.mismatch(
                    session.db, decision.audit_seq, rule.id, request, ids, self.periods
                )
        if why is not None:
            finding = Finding("PRV-1.grant", f"this grant is not what the gate granted: {why}")
            self.gate.record(
                request, "read", "refused", [finding.rule], audit_seq=decision.audit_seq
            )
            raise GateError(finding.message, [finding])
        self.gate.checked_grants[self] = (decision, rule, dict(ids))

    def _refuse(self, rule: str, message: str) -> NoReturn:
        self.gate.refuse_read(self.request, Finding(f"{self.rule.id}.{rule}", message))

    def _kind_covered(self, kind: str) -> None:
        if kind not in self.request.kinds or kind not in KINDS:
            covered = ", ".join(sorted(self.request.kinds))
            self._refuse("kinds", f"this grant covers {covered}, not {kind}")

    def _store(self) -> MeterStore:
        if self.gate.store is None:
            raise GateError("this gate has no meter-data store to read from")
        return self.gate.store

    def _rows(self, kind: str) -> pa.Table:
        """The stored rows of the grant's connections and kind in their granted
        sub-periods, nothing outside them (not audited: callers audit what leaves).
        Connections with the same sub-periods are read together: one read when no rule
        cut anything."""
        store = self._store()
        together: dict[tuple[Period, ...], list[int]] = {}
        for ean, found in self.periods.items():
            together.setdefault(found, []).append(self.connection_ids[ean])
        tables = [
            store.read_connections(kind, cids, p.start, p.end)
            for found, cids in together.items()
            for p in found
        ]
        if not tables:
            return store.read_connections(
                kind, (), self.request.period.start, self.request.period.end
            )
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def read(self, kind: str) -> pa.Table:
        """The granted rows of one kind (PRV-1), audited as a read; aggregate-only
        purposes get :meth:`aggregate`, never rows (``<UC>.aggregate``); a consent that
        was revoked since the grant stops the read (PRV-4)."""
        self._check()
        self._kind_covered(kind)
        if self.rule.aggregate is not None:
            self._refuse(
                "aggregate",
                f"{self.rule.id} releases only aggregates; individual rows never leave the gate",
            )
        request = self.request
        if self.rule.population == "consented" and not self._still_consented():
            self.gate.refuse_read(
                request,
                Finding("PRV-4.consent", "the consent was revoked or expired: no more reads"),
            )
        table = self._rows(kind)
        self.gate.record(request, "read", "read", kind=kind, rows=table.num_rows)
        metadata = {
            b"purpose": self.rule.id.encode(),
            b"audit_seq": str(self.decision.audit_seq).encode(),
        }
        return table.replace_schema_metadata(metadata)

    def _still_consented(self) -> bool:
        """Every granted sub-period still lies in a given consent of this party for
        these kinds that has not ended (PRV-4: a revocation stops the next read)."""
        request, now = self.request, self.gate.clock()
        with self.gate.register.session() as session:
            found = read.given_consents(
                session.db, request.party.id, self.rule.id, list(self.connection_ids.values())
            )
        for ean, cid in self.connection_ids.items():
            spans = [
                (stored_utc(c.valid_from), stored_utc(c.valid_to))
                for c in found.get(cid, ())
                if request.kinds <= frozenset(json.loads(c.kinds))
            ]
            for p in self.periods[ean]:
                if not any(a <= p.start and p.end <= b and now < b for a, b in spans):
                    return False
        return True

    def presence(self, at: datetime) -> dict[str, bool | None]:
        """Voltage presence (yes/no) of each granted meter at ``at``, and nothing else
        (UC1: "alleen of de meter op dat moment wel of geen spanning heeft").

        The store stands in for asking the meters: a smart meter has no voltage at
        ``at`` when its failure log holds an interruption around that moment, or when it
        recorded no energy from that moment on (:meth:`MeterStore.voltage_at`); it is
        unknown (``None``) where what the store holds cannot tell (issue 16: a meter
        offline then, replaced within a day, or silent in that quarter-hour without a log
        entry), as is a meter the register does not list as smart (a traditional meter
        cannot be asked). Audited as a read of ``voltage_presence``.
        """
        self._check()
        request = self.request
        if VOLTAGE_PRESENCE not in request.kinds:
            self._refuse("kinds", f"this grant does not cover {VOLTAGE_PRESENCE}")
        if not request.period.start <= at < request.period.end:
            self._refuse("window", f"{at.isoformat()} lies outside the granted period")
        periods = self.periods
        inside = {
            ean: cid
            for ean, cid in self.connection_ids.items()
            if any(p.start <= at < p.end for p in periods[ean])
        }
        ids = list(inside.values())
        voltage = self._store().voltage_at(ids, at)
        with self.gate.transaction() as db:
            smart = read.smart_on(db, ids, to_local(at).date())
            # a meter outside its granted sub-periods at ``at`` is not asked: unknown
            answers: dict[str, bool | None] = {
                ean: voltage.get(cid) if cid in smart and ean in inside else None
                for ean, cid in self.connection_ids.items()
            }
            self.gate.record_in(
                db,
                request,
                "read",
                "read",
                kind=VOLTAGE_PRESENCE,
                at=at.isoformat(),
                rows=len(answers),
            )
        return answers

    def reachable(self) -> dict[str, bool]:
        """Whether each granted meter answered in its granted sub-periods (UC15's 'ping'
        of a switched-off meter), and nothing else: the store stands in for the head-end,
        a meter that delivered a daily reading then answered. Audited as a read of
        ``reachability``; no value leaves."""
        self._check()
        request = self.request
        if REACHABILITY not in request.kinds:
            self._refuse("kinds", f"this grant does not cover {REACHABILITY}")
        seen = set(self._rows("daily_readings").column("connection").to_pylist())
        answers = {ean: cid in seen for ean, cid in self.connection_ids.items()}
        self.gate.record(request, "read", "read", kind=REACHABILITY, rows=len(answers))
        return answers

    def aggregate(
        self,
        kind: str,
        column: str,
        areas: Sequence[str] | None = None,
        level: str | None = None,
    ) -> disclosure.PublicRelease:
        """The sum of ``column`` per area at ``level`` (default: the purpose's) per grid
        period, through disclosure control (PRV-6, :mod:`meetpunt.privacy.aggregation`):
        the cells are every countable connection of each area, never the requester's
        choice; ``areas`` default to those of the granted connections. Only the
        released cells leave; the contributors stay in the gate."""
        self._check()
        return aggregation.release(self, kind, column, areas, level)

    def export(self, kind: str, path: Path) -> Path:
        """Copy the granted rows of ``kind`` to a Parquet file that carries its purpose and
        expiry, recorded for retention (PRV-5)."""
        table = self.read(kind)
        expires = self.gate.expiry(self.rule)
        meta = dict(table.schema.metadata or {})
        meta[b"expires_at"] = expires.isoformat().encode()
        pq.write_table(table.replace_schema_metadata(meta), path)
        with self.gate.transaction() as db:
            grants.record_copy(db, self.decision.audit_seq or 0, self.rule.id, path, expires)
        return path

    def finish(self) -> list[retention.DeletedCopy]:
        """The analysis is done: delete this grant's copies when the purpose says so
        (UC7: the source data goes right after the analysis)."""
        self._check()
        if self.gate.expiry(self.rule) > self.gate.clock():
            return []
        with self.gate.transaction() as db:
            return retention.delete_copies(db, self.gate.clock(), self.decision.audit_seq or 0)
