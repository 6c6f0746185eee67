"""The one door to meter data (PRV-1; DESIGN rule 1).

``Gate.request`` gathers what the register knows about the requested connections (in
a few batched queries), applies the purpose's limits (:func:`rules.evaluate`), writes
the decision to the audit log and, when granted, remembers the grant per connection so
frequency and pause rules hold across requests and restarts. A granted request comes
back as a :class:`Grant` whose reader returns exactly the allowed connections, kinds
and period, and writes every read to the audit log too; a consent that was revoked
stops the next read (PRV-4).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, insert, or_, select

from meetpunt.domain.calendar import to_local
from meetpunt.domain.connection import AdminSwitch, PhysicalStatus, RemoteReading
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.store import MeterStore
from meetpunt.privacy import audit, consent, disclosure, retention
from meetpunt.privacy.catalogue import AggregateRule, Catalogue, PurposeRule
from meetpunt.privacy.model import VOLTAGE_PRESENCE, AccessRequest, Decision, stored_utc
from meetpunt.privacy.rules import ConnectionFacts, ContractFact, PastGrant, evaluate
from meetpunt.register import schema as t
from meetpunt.register.store import Register


class GateError(MeetpuntError):
    """A read the grant does not allow (``meetpunt.privacy``)."""


def gather_facts(
    db: Connection, request: AccessRequest, rule: PurposeRule | None
) -> dict[str, ConnectionFacts | None]:
    """The register's facts about the requested connections on the period's start, in
    four queries whatever the number of connections."""
    eans = list(dict.fromkeys(request.connections))
    day = to_local(request.period.start).date()
    cv = t.connection_version
    rows = db.execute(
        select(
            t.connection.c.id,
            t.connection.c.ean,
            cv.c.status,
            cv.c.admin_switch,
            cv.c.remote_reading,
        )
        .join(cv, cv.c.connection_id == t.connection.c.id)
        .where(
            t.connection.c.ean.in_(eans),
            t.connection.c.commodity == "electricity",
            cv.c.valid_from <= day,
            or_(cv.c.valid_to.is_(None), cv.c.valid_to > day),
        )
    ).all()
    by_ean: dict[str, Any] = {r.ean: r for r in rows}
    ids = [r.id for r in rows]
    contracts: dict[int, list[ContractFact]] = {}
    if rule is not None and rule.population in (
        "contractless",
        "contractless_or_out_of_service",
        "supplied",
        "own",
    ):
        ap, sc = t.allocation_point, t.supply_contract
        for c in db.execute(
            select(
                ap.c.connection_id,
                sc.c.supplier,
                sc.c.contract_holder,
                sc.c.start_date,
                sc.c.end_date,
            )
            .join(sc, sc.c.allocation_point_id == ap.c.id)
            .where(ap.c.connection_id.in_(ids), ap.c.kind == "primary")
        ):
            contracts.setdefault(c.connection_id, []).append(
                ContractFact(c.supplier, c.contract_holder, c.start_date, c.end_date)
            )
    grants: dict[int, list[PastGrant]] = {}
    if ids:
        g = t.privacy_grant
        for p in db.execute(
            select(
                g.c.connection_id, g.c.purpose, g.c.period_start, g.c.period_end, g.c.kinds
            ).where(g.c.connection_id.in_(ids))
        ):
            grants.setdefault(p.connection_id, []).append(
                PastGrant(
                    p.purpose,
                    stored_utc(p.period_start),
                    stored_utc(p.period_end),
                    frozenset(json.loads(p.kinds)),
                )
            )
    consented: set[int] = set()
    if rule is not None and rule.population == "consented" and ids:
        consented = consent.consented_connections(
            db, request.party.id, rule.id, ids, request.kinds, request.period, request.at
        )
    out: dict[str, ConnectionFacts | None] = {}
    for ean in eans:
        found = by_ean.get(ean)
        if found is None:
            out[ean] = None
            continue
        r = found
        status = PhysicalStatus(r.status)
        out[ean] = ConnectionFacts(
            ean=ean,
            connection_id=r.id,
            in_service=status is PhysicalStatus.IN_SERVICE,
            out_of_service=status is PhysicalStatus.OUT_OF_SERVICE,
            admin_switch_on=AdminSwitch(r.admin_switch) is AdminSwitch.ON,
            opted_out=RemoteReading(r.remote_reading) is RemoteReading.ADMINISTRATIVELY_OFF,
            contracts=tuple(contracts.get(r.id, ())),
            grants=tuple(grants.get(r.id, ())),
            consented=r.id in consented,
        )
    return out


def connection_areas(
    db: Connection, connection_ids: Sequence[int], at: datetime
) -> dict[int, dict[str, str]]:
    """Each connection's area at every disclosure level (street, pc6, pc4, pc3,
    municipality) from its address in the register on ``at``'s local date."""
    day = to_local(at).date()
    cv = t.connection_version
    rows = db.execute(
        select(cv.c.connection_id, cv.c.postcode, cv.c.street, cv.c.municipality).where(
            cv.c.connection_id.in_(list(connection_ids)),
            cv.c.valid_from <= day,
            or_(cv.c.valid_to.is_(None), cv.c.valid_to > day),
        )
    )
    return {
        r.connection_id: {
            "street": f"{r.postcode[:4]}:{r.street}",
            "pc6": r.postcode,
            "pc4": r.postcode[:4],
            "pc3": r.postcode[:3],
            "municipality": r.municipality,
        }
        for r in rows
    }


def dynamic_contracts(
    db: Connection, connection_ids: Sequence[int], at: datetime
) -> dict[int, bool]:
    """Whether each connection's contract in force on ``at`` is dynamic (UC14)."""
    day = to_local(at).date()
    ap, sc = t.allocation_point, t.supply_contract
    rows = db.execute(
        select(ap.c.connection_id, sc.c.contract_type)
        .join(sc, sc.c.allocation_point_id == ap.c.id)
        .where(
            ap.c.connection_id.in_(list(connection_ids)),
            ap.c.kind == "primary",
            sc.c.start_date <= day,
            or_(sc.c.end_date.is_(None), sc.c.end_date > day),
        )
    )
    return {r.connection_id: r.contract_type == "dynamic" for r in rows}


def _entry(
    request: AccessRequest, event: str, outcome: str, rules: Sequence[str], **detail: Any
) -> audit.AuditEntry:
    return audit.AuditEntry(
        event=event,
        party=request.party.id,
        purpose=request.purpose,
        outcome=outcome,
        connections=tuple(request.connections),
        kinds=tuple(sorted(request.kinds)),
        period_start=request.period.start,
        period_end=request.period.end,
        rules=tuple(rules),
        detail={"role": request.party.role.value, "justification": request.justification, **detail},
    )


@dataclass
class Grant:
    """What a granted request may read: exactly its connections, kinds and period."""

    decision: Decision
    rule: PurposeRule
    connection_ids: Mapping[str, int]
    gate: Gate

    @property
    def request(self) -> AccessRequest:
        return self.decision.request

    def read(self, kind: str) -> pa.Table:
        """The granted rows of one kind (PRV-1), audited as a read; aggregate-only
        purposes get :meth:`Gate` aggregates, never rows (``<UC>.aggregate``)."""
        request = self.request
        if kind not in request.kinds or kind not in KINDS:
            covered = ", ".join(sorted(request.kinds))
            finding = Finding(f"{self.rule.id}.kinds", f"this grant covers {covered}, not {kind}")
            self.gate.refuse_read(self, finding)
        if self.rule.aggregate is not None:
            finding = Finding(
                f"{self.rule.id}.aggregate",
                f"{self.rule.id} releases only aggregates; individual rows never leave the gate",
            )
            self.gate.refuse_read(self, finding)
        return self.gate._read(self, kind)

    def presence(self, at: datetime) -> dict[str, bool | None]:
        """Voltage presence (yes/no) of each granted meter at ``at``, and nothing else
        (UC1: "alleen of de meter op dat moment wel of geen spanning heeft").

        The store stands in for asking the meters: a smart meter has no voltage at
        ``at`` when its failure log holds an interruption around that moment (start =
        end - duration <= at < end); a meter the register does not list as smart
        answers ``None`` (unknown: a traditional meter cannot be asked). Audited as a
        read of ``voltage_presence``.
        """
        request = self.request
        if VOLTAGE_PRESENCE not in request.kinds:
            finding = Finding(
                f"{self.rule.id}.kinds", f"this grant does not cover {VOLTAGE_PRESENCE}"
            )
            self.gate.refuse_read(self, finding)
        if not request.period.start <= at < request.period.end:
            finding = Finding(
                f"{self.rule.id}.window", f"{at.isoformat()} lies outside the granted period"
            )
            self.gate.refuse_read(self, finding)
        return self.gate._presence(self, at)

    def aggregate(self, kind: str, column: str) -> disclosure.Release:
        """The sum of ``column`` per area at the purpose's level, through disclosure
        control (PRV-6): only cells with enough connections, none dominant, and none
        that differs from an earlier release by fewer than k leave; the connection sets
        stay in the gate (the history and the audit log)."""
        rule = self.rule.aggregate
        if rule is None:
            finding = Finding(
                f"{self.rule.id}.aggregate", f"{self.rule.id} reads rows, not aggregates"
            )
            self.gate.refuse_read(self, finding)
        if kind not in self.request.kinds:
            covered = ", ".join(sorted(self.request.kinds))
            finding = Finding(f"{self.rule.id}.kinds", f"this grant covers {covered}, not {kind}")
            self.gate.refuse_read(self, finding)
        return self.gate._aggregate(self, kind, column, rule)

    def export(self, kind: str, path: Path) -> Path:
        """Copy the granted rows of ``kind`` to a Parquet file that carries its purpose and
        expiry, recorded for retention (PRV-5)."""
        table = self.read(kind)
        expires = self.gate.expiry(self.rule)
        meta = dict(table.schema.metadata or {})
        meta[b"expires_at"] = expires.isoformat().encode()
        pq.write_table(table.replace_schema_metadata(meta), path)
        with self.gate.register.session() as session:
            session.db.execute(
                insert(t.privacy_copy).values(
                    audit_seq=self.decision.audit_seq or 0,
                    purpose=self.rule.id,
                    path=str(path),
                    expires_at=expires,
                )
            )
        return path

    def finish(self) -> list[retention.DeletedCopy]:
        """The analysis is done: delete this grant's copies when the purpose says so
        (UC7: the source data goes right after the analysis)."""
        if self.gate.expiry(self.rule) > self.gate.clock():
            return []
        with self.gate.register.session() as session:
            return retention.delete_copies(
                session.db, self.gate.clock(), self.decision.audit_seq or 0
            )


@dataclass
class Gate:
    """The privacy gate over one register and one meter-data store."""

    register: Register
    store: MeterStore | None
    catalogue: Catalogue
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def request(self, request: AccessRequest) -> Grant | Decision:
        """Decide, audit and remember; a :class:`Grant` or a refused :class:`Decision`."""
        rule = self.catalogue.get(request.purpose)
        with self.register.session() as session:
            db = session.db
            facts = gather_facts(db, request, rule)
            findings = evaluate(rule, request, facts)
            now = self.clock()
            outcome = "refused" if findings else "granted"
            record = audit.append(
                db, _entry(request, "decision", outcome, [f.rule for f in findings]), now
            )
            decision = Decision(request, tuple(findings), record.seq)
            if findings or rule is None:
                return decision
            ids = {e: f.connection_id for e, f in facts.items() if f is not None}
            expires = None
            if rule.retention is not None and rule.retention.delete_after == "days":
                expires = now + timedelta(days=rule.retention.days)
            db.execute(
                insert(t.privacy_grant),
                [
                    {
                        "audit_seq": record.seq,
                        "party": request.party.id,
                        "purpose": rule.id,
                        "connection_id": cid,
                        "kinds": json.dumps(sorted(request.kinds)),
                        "period_start": request.period.start,
                        "period_end": request.period.end,
                        "granted_at": now,
                        "expires_at": expires,
                    }
                    for cid in ids.values()
                ],
            )
        return Grant(decision, rule, ids, self)

    def _aggregate(
        self, grant: Grant, kind: str, column: str, rule: AggregateRule
    ) -> disclosure.Release:
        table = self._rows(grant, kind)
        sums: dict[int, float] = {}
        for connection, value in zip(
            table.column("connection").to_pylist(), table.column(column).to_pylist(), strict=True
        ):
            if value is not None:
                sums[connection] = sums.get(connection, 0.0) + float(value)
        request = grant.request
        rules = disclosure.DisclosureRules(
            rule.min_connections, rule.dominance, rule.min_dynamic, rule.min_non_dynamic
        )
        with self.register.session() as session:
            now = self.clock()
            areas = connection_areas(session.db, list(sums), request.period.start)
            dynamic = dynamic_contracts(session.db, list(sums), request.period.start)
            contributions = [
                disclosure.Contribution(cid, areas[cid], value, dynamic.get(cid))
                for cid, value in sums.items()
                if cid in areas
            ]
            previous = disclosure.ReleaseHistory.lookup(
                session.db, None, request.period.start, request.period.end
            )
            outcome = disclosure.release(contributions, rule.level, rules, previous)
            disclosure.ReleaseHistory.record(
                session.db,
                grant.rule.id,
                request.party,
                outcome,
                request.period.start,
                request.period.end,
                now,
            )
            audit.append(
                session.db,
                _entry(
                    request,
                    "release",
                    "released",
                    list(outcome.rules),
                    kind=kind,
                    column=column,
                    level=rule.level,
                    cells=len(outcome.cells),
                    withheld=len(outcome.withheld),
                ),
                now,
            )
        return outcome

    def _presence(self, grant: Grant, at: datetime) -> dict[str, bool | None]:
        if self.store is None:
            raise GateError("this gate has no meter-data store to ask")
        ids = grant.connection_ids
        moment = at.astimezone(UTC).replace(tzinfo=None)
        placeholders = ", ".join("?" for _ in ids)
        dark = {
            int(row[0])
            for row in self.store.con.execute(
                f"SELECT DISTINCT connection FROM power_failure_log WHERE connection IN "
                f'({placeholders}) AND "end" > ? '
                f'AND "end" - to_seconds(duration_s) <= ?',
                [*ids.values(), moment, moment],
            ).fetchall()
        }
        with self.register.session() as session:
            day = to_local(at).date()
            cv = t.connection_version
            smart = {
                r.connection_id
                for r in session.db.execute(
                    select(cv.c.connection_id).where(
                        cv.c.connection_id.in_(list(ids.values())),
                        cv.c.meter_type == "smart",
                        cv.c.valid_from <= day,
                        or_(cv.c.valid_to.is_(None), cv.c.valid_to > day),
                    )
                )
            }
            answers: dict[str, bool | None] = {
                ean: (cid not in dark) if cid in smart else None for ean, cid in ids.items()
            }
            audit.append(
                session.db,
                _entry(
                    grant.request,
                    "read",
                    "read",
                    [],
                    kind=VOLTAGE_PRESENCE,
                    at=at.isoformat(),
                    rows=len(answers),
                ),
                self.clock(),
            )
        return answers

    def expiry(self, rule: PurposeRule) -> datetime:
        """When copies made under ``rule`` must go: now + the purpose's days, or now when
        the purpose ends with its analysis (PRV-5)."""
        now = self.clock()
        if rule.retention is not None and rule.retention.delete_after == "days":
            return now + timedelta(days=rule.retention.days)
        return now

    def refuse_read(self, grant: Grant, finding: Finding) -> NoReturn:
        """Audit a refused read (committed), then raise :class:`GateError` with it."""
        with self.register.session() as session:
            audit.append(
                session.db,
                _entry(grant.request, "read", "refused", [finding.rule]),
                self.clock(),
            )
        raise GateError(finding.message, [finding])

    def _rows(self, grant: Grant, kind: str) -> pa.Table:
        """The stored rows of the grant's connections, kind and period (not audited:
        callers audit what leaves)."""
        if self.store is None:
            raise GateError("this gate has no meter-data store to read from")
        k = KINDS[kind]
        ids = sorted(grant.connection_ids.values())
        placeholders = ", ".join("?" for _ in ids)
        period = grant.request.period
        return self.store.read(
            kind,
            f'connection IN ({placeholders}) AND "{k.time}" >= ? AND "{k.time}" < ?',
            [
                *ids,
                period.start.astimezone(UTC).replace(tzinfo=None),
                period.end.astimezone(UTC).replace(tzinfo=None),
            ],
        )

    def _read(self, grant: Grant, kind: str) -> pa.Table:
        request = grant.request
        rule = grant.rule
        if rule.population == "consented":
            with self.register.session() as session:
                still = consent.consented_connections(
                    session.db,
                    request.party.id,
                    rule.id,
                    list(grant.connection_ids.values()),
                    request.kinds,
                    request.period,
                    self.clock(),
                )
            if still != set(grant.connection_ids.values()):
                self.refuse_read(
                    grant,
                    Finding("PRV-4.consent", "the consent was revoked or expired: no more reads"),
                )
        table = self._rows(grant, kind)
        with self.register.session() as session:
            now = self.clock()
            audit.append(
                session.db,
                _entry(request, "read", "read", [], kind=kind, rows=table.num_rows),
                now,
            )
        metadata = {
            b"purpose": rule.id.encode(),
            b"audit_seq": str(grant.decision.audit_seq).encode(),
        }
        return table.replace_schema_metadata(metadata)
