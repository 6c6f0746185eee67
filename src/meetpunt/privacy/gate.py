"""The one door to meter data (PRV-1).

``Gate.request`` takes the register's facts about the requested connections (through
the register's read API, a fixed number of queries whatever the number of
connections), applies the purpose's limits (:func:`rules.evaluate`), writes the
decision to the audit log and, when granted, remembers the grant per connection so
frequency and pause rules hold across requests and restarts. A granted request comes
back as a :class:`~meetpunt.privacy.grant.Grant`, whose readers return exactly the
allowed connections, kinds and period and write every read to the audit log too.

The facts cover the whole period: every version of the connection's state, its
contracts and the party's consents that overlap it. A grant covers, per connection,
exactly the sub-periods in which every rule holds (a customer who opts out on 3 June
leaves a 2-5 June supplier read with 2 June; an app's consent ends with the move of the
customer who gave it), and the audit record says which rule cut the rest; a connection
left with no sub-period refuses the request with those rules.

A decision is one serialised transaction and few statements: the connections' states
with the earlier grants the purpose's rules look at (one query), contracts or consents
only for the populations that need them, the audit record and the grant rows. The audit
append lock (PostgreSQL) or the write lock (SQLite, ``BEGIN IMMEDIATE``) is taken
before anything is read, so two decisions at once cannot both pass a frequency or pause
limit; the second waits, sees the first's grant and is refused, audited (PRV-1, PRV-7).
On PostgreSQL (psycopg) the gate pipelines its statements: the lock, the last audit
record and the facts go in one round trip, the audit record, the grant rows and the
commit in a second.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, text
from sqlalchemy.sql.elements import ClauseElement

from meetpunt.domain.calendar import to_local
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import AdminSwitch, PhysicalStatus, RemoteReading
from meetpunt.domain.findings import Finding
from meetpunt.meterdata.store import MeterStore
from meetpunt.privacy import audit, flags, grants
from meetpunt.privacy.catalogue import Catalogue, PurposeRule
from meetpunt.privacy.grant import GateError, Grant
from meetpunt.privacy.model import (
    AccessRequest,
    Cut,
    Decision,
    Party,
    Period,
    Role,
    stored_utc,
)
from meetpunt.privacy.rules import (
    ConnectionFacts,
    ConsentFact,
    ContractFact,
    StateFact,
    decide,
    request_commodity,
)
from meetpunt.register import read
from meetpunt.register.engine import write_transaction
from meetpunt.register.read import Facts, GrantScope, RegisterView
from meetpunt.register.store import Register

if TYPE_CHECKING:
    import psycopg

__all__ = ["Gate", "GateError", "Grant", "gather_facts", "grant_scope"]

CONTRACT_POPULATIONS = frozenset(
    {"contractless", "contractless_or_out_of_service", "supplied", "own"}
)
"""The populations whose rules look at supply contracts (REG-6, PRV-1)."""


def grant_scope(rule: PurposeRule | None) -> GrantScope:
    """Which earlier grants ``rule`` looks at: every purpose's for a population of data
    already read for another purpose, its own for frequency and pause limits, else none
    (:func:`rules.evaluate` reads no others; PRV-1, PRV-2)."""
    if rule is None:
        return "none"
    if rule.population == "already_read":
        return "all"
    if rule.frequency or rule.pause_days:
        return "purpose"
    return "none"


def request_days(request: AccessRequest) -> tuple[date, date]:
    """The first and last local day of the requested period (one day for an empty or
    reversed period, which the rules refuse anyway)."""
    first = to_local(request.period.start).date()
    last = to_local(request.period.end - timedelta(microseconds=1)).date()
    return first, max(first, last)


def gather_facts(
    db: Connection, request: AccessRequest, rule: PurposeRule | None
) -> dict[str, ConnectionFacts | None]:
    """What the rules need about each requested connection over the whole period: every
    version of its state overlapping it (register), its contracts (only when the
    population looks at them), the earlier grants its rules look at
    (:func:`grant_scope`) and, for consented purposes, the party's consents; ``None``
    for an EAN the register does not know on any day of the period. The connections
    are those of the kinds' commodity: a request for gas kinds reads the gas connection
    under the EAN (:func:`rules.request_commodity`)."""
    eans = list(dict.fromkeys(request.connections))
    scope = grant_scope(rule)
    first, last = request_days(request)
    found = read.facts_with_grants_during(
        db,
        eans,
        first,
        last,
        scope,
        rule.id if rule is not None and scope == "purpose" else None,
        request_commodity(request.kinds) or Commodity.ELECTRICITY,
    )
    return _facts(db, request, rule, eans, found)


def _facts(
    db: Connection,
    request: AccessRequest,
    rule: PurposeRule | None,
    eans: Sequence[str],
    found: Facts,
) -> dict[str, ConnectionFacts | None]:
    """:class:`ConnectionFacts` per EAN from the register's facts, with the contracts and
    consents the population needs (one query each, whatever the number of
    connections)."""
    versions = found.versions
    ids = [s[0].connection_id for s in versions.values()]
    population = rule.population if rule is not None else None
    contracts = (
        read.primary_contracts(db, ids)
        if population in CONTRACT_POPULATIONS or population == "consented"
        else {}
    )
    past = grants.past_from_rows(found.grants)
    consents: dict[int, list[ConsentFact]] = {}
    if rule is not None and population == "consented" and ids:
        seen: dict[str, frozenset[str]] = {}
        for cid, rows in read.given_consents(db, request.party.id, rule.id, ids).items():
            consents[cid] = [_consent(row, seen) for row in rows]
    out: dict[str, ConnectionFacts | None] = {}
    for ean in eans:
        states = versions.get(ean)
        if not states:
            out[ean] = None
            continue
        cid = states[0].connection_id
        out[ean] = ConnectionFacts(
            ean=ean,
            connection_id=cid,
            states=tuple(_state(s) for s in states),
            contracts=tuple(
                ContractFact(c.supplier, c.holder, c.start, c.end) for c in contracts.get(cid, ())
            ),
            grants=tuple(past.get(cid, ())),
            consents=tuple(consents.get(cid, ())),
        )
    return out


def _state(state: read.ConnectionState) -> StateFact:
    return StateFact(
        state.valid_from or date.min,
        state.valid_to,
        in_service=state.status is PhysicalStatus.IN_SERVICE,
        out_of_service=state.status is PhysicalStatus.OUT_OF_SERVICE,
        admin_switch_on=state.admin_switch is AdminSwitch.ON,
        opted_out=state.remote_reading is RemoteReading.ADMINISTRATIVELY_OFF,
    )


def _consent(row: read.ConsentRow, seen: dict[str, frozenset[str]]) -> ConsentFact:
    kinds = seen.get(row.kinds)
    if kinds is None:
        kinds = seen[row.kinds] = frozenset(json.loads(row.kinds))
    return ConsentFact(
        kinds,
        stored_utc(row.valid_from),
        stored_utc(row.valid_to),
        row.given_by,
        to_local(stored_utc(row.created_at)).date(),
    )


_PG_SQL: dict[int, tuple[ClauseElement, str, dict[str, Any]]] = {}


@cache
def _can_pipeline() -> bool:
    """Whether the installed libpq can pipeline (version 14 or newer); psycopg is
    imported only when a register on PostgreSQL asks."""
    import psycopg

    return psycopg.Pipeline.is_supported()


def _pipelined(db: Connection) -> psycopg.Connection[Any] | None:
    """The psycopg connection under ``db`` when the gate can pipeline its statements."""
    if db.dialect.name == "postgresql" and db.dialect.driver == "psycopg" and _can_pipeline():
        import psycopg

        driver = db.connection.driver_connection
        if isinstance(driver, psycopg.Connection):
            return driver
    return None


def _pg_sql(db: Connection, statement: ClauseElement) -> tuple[str, dict[str, Any]]:
    """``statement`` compiled once for psycopg, with its constant parameters."""
    found = _PG_SQL.get(id(statement))
    if found is None or found[0] is not statement:
        compiled = statement.compile(dialect=db.dialect)
        found = _PG_SQL[id(statement)] = (statement, compiled.string, dict(compiled.params))
    return found[1], found[2]


def _gather_pipelined(
    pg: psycopg.Connection[Any], db: Connection, request: AccessRequest, rule: PurposeRule | None
) -> tuple[dict[str, ConnectionFacts | None], tuple[int, str] | None]:
    """:func:`gather_facts` on PostgreSQL, in one round trip with the audit append lock
    and the last audit record (each statement sees what the lock's previous holder
    committed); the last record comes back too."""
    eans = list(dict.fromkeys(request.connections))
    scope = grant_scope(rule)
    sql, constants = _pg_sql(db, read.facts_select(scope, array=True))
    first, final = request_days(request)
    params = read.facts_params(
        eans,
        first,
        final,
        rule.id if rule is not None and scope == "purpose" else None,
        request_commodity(request.kinds) or Commodity.ELECTRICITY,
    )
    with pg.pipeline():  # sent and answered when the block ends
        pg.execute(audit.PG_LOCK)
        last_cursor = pg.execute(audit.LAST)
        facts_cursor = pg.execute(sql, {**constants, **params})
    last = last_cursor.fetchone()
    rows = facts_cursor.fetchall()
    facts = _facts(db, request, rule, eans, read.facts_from_rows(rows))
    return facts, None if last is None else (int(last[0]), str(last[1]))


def _grant_rows(
    rule: PurposeRule | None,
    seq: int,
    request: AccessRequest,
    ids: dict[str, int],
    periods: Mapping[str, Sequence[Period]],
    now: datetime,
) -> list[dict[str, Any]]:
    """The grant rows of a decision under audit record ``seq``, one per connection and
    granted sub-period: none unless ``rule`` granted it; they expire after the
    purpose's days when it keeps copies that long."""
    if rule is None:
        return []
    expires = None
    if rule.retention is not None and rule.retention.delete_after == "days":
        expires = now + timedelta(days=rule.retention.days)
    granted = [(cid, p) for ean, cid in ids.items() for p in periods.get(ean, ())]
    return grants.grant_rows(seq, rule.id, request, granted, now, expires)


def _stamp(period: Period) -> list[str]:
    return [period.start.isoformat(), period.end.isoformat()]


def _cut_detail(periods: Mapping[str, Sequence[Period]], cuts: Sequence[Cut]) -> dict[str, Any]:
    """What the audit record says of a grant that rules cut: the sub-periods granted for
    each connection they cut, and which rule took which stretch (PRV-1, PRV-7)."""
    if not cuts:
        return {}
    cut_eans = dict.fromkeys(c.ean for c in cuts)
    return {
        "granted_periods": {ean: [_stamp(p) for p in periods.get(ean, ())] for ean in cut_eans},
        "cut": [{"ean": c.ean, "rule": c.rule, "period": _stamp(c.period)} for c in cuts],
    }


def _named_app(party: Party) -> bool:
    """An app with a display name: its records keep the name, so "who read my meter"
    names the app as it was called then (PRV-7, issue 17)."""
    return party.role is Role.APP and bool(party.name)


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
        detail={
            "role": request.party.role.value,
            **({"party_name": request.party.name} if _named_app(request.party) else {}),
            "justification": request.justification,
            **detail,
        },
    )


@dataclass
class Gate:
    """The privacy gate over one register and one meter-data store."""

    register: Register
    store: MeterStore | None
    catalogue: Catalogue
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    checked_grants: WeakKeyDictionary[Grant, tuple[Decision, PurposeRule, dict[str, int]]] = field(
        default_factory=WeakKeyDictionary, init=False, repr=False, compare=False
    )
    """Each grant object checked against the stored record, with what was checked
    (:meth:`Grant.read` and the other readers; PRV-1)."""

    @property
    def register_view(self) -> RegisterView:
        """The register as a use case may see it: read-only, no meter data."""
        return RegisterView(self.register)

    def transaction(self) -> AbstractContextManager[Connection]:
        """A register transaction that writes, serialised from its start (SQLite: it
        begins with the write lock, waiting for another writer instead of failing)."""
        return write_transaction(self.register.engine)

    def request(self, request: AccessRequest) -> Grant | Decision:
        """Decide, audit and remember; a :class:`Grant` or a refused :class:`Decision`.

        One serialised step: the append lock (PostgreSQL) or the write lock (SQLite) is
        taken before the facts and the earlier grants are read, and held until the
        audit record and the grant rows are committed, so two requests at once cannot
        both pass a frequency or pause limit: the second sees the first's grant and is
        refused with the limit's rule, audited (PRV-1, PRV-7)."""
        rule = self.catalogue.get(request.purpose)
        with self.transaction() as db:
            pg = _pipelined(db)
            if pg is None:
                if db.dialect.name == "postgresql":
                    db.execute(text(audit.PG_LOCK))
                facts, last = gather_facts(db, request, rule), None
            else:
                facts, last = _gather_pipelined(pg, db, request, rule)
            flag = flags.load(db, request.cites) if request.cites is not None else None
            now = self.clock()
            verdict = decide(rule, request, facts, now, flag)
            findings = verdict.findings
            outcome = "refused" if findings else "granted"
            ids = {e: f.connection_id for e, f in facts.items() if f is not None}
            periods = {e: c.granted for e, c in verdict.coverage.items()}
            cuts = [] if findings else [c for cov in verdict.coverage.values() for c in cov.cuts]
            entry = _entry(
                request,
                "decision",
                outcome,
                [f.rule for f in findings],
                **_cut_detail(periods, cuts),
                **({"cites": request.cites} if request.cites is not None else {}),
            )
            granted = rule if not findings else None
            if pg is None:
                record = audit.append(db, entry, now)
                rows = _grant_rows(granted, record.seq, request, ids, periods, now)
                grants.insert_rows(db, rows)
            else:
                record, audit_row = audit.prepare(entry, now, last)
                rows = _grant_rows(granted, record.seq, request, ids, periods, now)
                # the record, the grants and the commit in one round trip; the session's
                # own commit then finds the transaction done. A failure anywhere stops
                # the commit and rolls the whole decision back (PRV-7).
                with pg.pipeline():
                    pg.execute(audit.PG_INSERT, audit_row)
                    if rows:
                        pg.cursor().executemany(grants.PG_INSERT, rows)
                    pg.execute("COMMIT")
        if findings or rule is None:
            return Decision(request, tuple(findings), record.seq)
        decision = Decision(
            request,
            (),
            record.seq,
            tuple((ean, periods[ean]) for ean in ids),
            tuple(cuts),
        )
        grant = Grant(decision, rule, ids, self)
        # the gate made this grant from the record it just committed: known to match it,
        # so its first read compares in memory instead of reading the record back (any
        # later change to the object is still caught by Grant._check)
        self.checked_grants[grant] = (decision, rule, dict(grant.connection_ids))
        return grant

    def flag(
        self,
        party: Party,
        usecase: str,
        step: str,
        opens: str,
        eans: Sequence[str],
        valid_until: datetime,
        summary: str,
    ) -> int:
        """Record a finding of ``usecase``'s ``step`` that opens the flagged purpose
        ``opens`` for ``eans`` until ``valid_until``; audited (event ``flag``), so the
        customer's log shows why a follow-up read was allowed and an operator's audit
        shows the chain of steps (UC3 after UC2, UC12). Returns the id a follow-up
        request cites. An EAN the register does not know is refused whole."""
        now = self.clock()
        wanted = list(dict.fromkeys(eans))
        entry = audit.AuditEntry(
            event="flag",
            party=party.id,
            purpose=usecase,
            outcome="recorded",
            connections=tuple(wanted),
            kinds=(),
            period_start=now,
            period_end=valid_until,
            rules=(),
            detail={"role": party.role.value, "step": step, "opens": opens, "summary": summary},
        )
        with self.transaction() as db:
            ids = read.connection_ids(db, wanted)
            missing = [e for e in wanted if e not in ids]
            if missing:
                raise GateError(
                    f"a finding can only name connections in the register; unknown: "
                    f"{', '.join(missing[:5])}",
                    [Finding("PRV-1.unknown_connection", f"not in the register: {missing[0]}")],
                )
            record = audit.append(db, entry, now)
            return flags.store(
                db,
                usecase=usecase,
                step=step,
                opens=opens,
                party=party.id,
                connection_ids=[ids[e] for e in wanted],
                created_at=now,
                valid_until=valid_until,
                audit_seq=record.seq,
                summary=summary,
            )

    def record_in(
        self,
        db: Connection,
        request: AccessRequest,
        event: str,
        outcome: str,
        rules: Sequence[str] = (),
        **detail: Any,
    ) -> audit.AuditRecord:
        """Append what happened under ``request`` to the audit log inside ``db``'s
        transaction (PRV-7)."""
        return audit.append(db, _entry(request, event, outcome, rules, **detail), self.clock())

    def record(
        self,
        request: AccessRequest,
        event: str,
        outcome: str,
        rules: Sequence[str] = (),
        **detail: Any,
    ) -> audit.AuditRecord:
        """Append what happened under ``request`` to the audit log, committed at once."""
        with self.transaction() as db:
            return self.record_in(db, request, event, outcome, rules, **detail)

    def expiry(self, rule: PurposeRule) -> datetime:
        """When copies made under ``rule`` must go: now + the purpose's days, or now when
        the purpose ends with its analysis (PRV-5)."""
        now = self.clock()
        if rule.retention is not None and rule.retention.delete_after == "days":
            return now + timedelta(days=rule.retention.days)
        return now

    def refuse_read(self, request: AccessRequest, finding: Finding) -> NoReturn:
        """Audit a refused read (committed), then raise :class:`GateError` with it."""
        self.record(request, "read", "refused", [finding.rule])
        raise GateError(finding.message, [finding])
