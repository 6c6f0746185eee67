"""The one door to meter data (PRV-1).

``Gate.request`` takes the register's facts about the requested connections (through
the register's read API, a fixed number of queries whatever the number of
connections), applies the purpose's limits (:func:`rules.evaluate`), writes the
decision to the audit log and, when granted, remembers the grant per connection so
frequency and pause rules hold across requests and restarts. A granted request comes
back as a :class:`~meetpunt.privacy.grant.Grant`, whose readers return exactly the
allowed connections, kinds and period and write every read to the audit log too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import Connection

from meetpunt.domain.calendar import to_local
from meetpunt.domain.connection import AdminSwitch, PhysicalStatus, RemoteReading
from meetpunt.domain.findings import Finding
from meetpunt.meterdata.store import MeterStore
from meetpunt.privacy import audit, consent, grants
from meetpunt.privacy.catalogue import Catalogue, PurposeRule
from meetpunt.privacy.grant import GateError, Grant
from meetpunt.privacy.model import AccessRequest, Decision
from meetpunt.privacy.rules import ConnectionFacts, ContractFact, evaluate
from meetpunt.register import read
from meetpunt.register.read import RegisterView
from meetpunt.register.store import Register

__all__ = ["Gate", "GateError", "Grant", "gather_facts"]

CONTRACT_POPULATIONS = frozenset(
    {"contractless", "contractless_or_out_of_service", "supplied", "own"}
)
"""The populations whose rules look at supply contracts (REG-6, PRV-1)."""


def gather_facts(
    db: Connection, request: AccessRequest, rule: PurposeRule | None
) -> dict[str, ConnectionFacts | None]:
    """What the rules need about each requested connection on the period's first local
    day: its state (register), its contracts (only when the population looks at them),
    its earlier grants and, for consented purposes, its consent; ``None`` for an EAN the
    register does not know that day."""
    eans = list(dict.fromkeys(request.connections))
    states = read.facts_on(db, eans, to_local(request.period.start).date())
    ids = [s.connection_id for s in states.values()]
    contracts = (
        read.primary_contracts(db, ids)
        if rule is not None and rule.population in CONTRACT_POPULATIONS
        else {}
    )
    past = grants.past_grants(db, ids)
    consented: set[int] = set()
    if rule is not None and rule.population == "consented" and ids:
        consented = consent.consented_connections(
            db, request.party.id, rule.id, ids, request.kinds, request.period, request.at
        )
    out: dict[str, ConnectionFacts | None] = {}
    for ean in eans:
        state = states.get(ean)
        if state is None:
            out[ean] = None
            continue
        cid = state.connection_id
        out[ean] = ConnectionFacts(
            ean=ean,
            connection_id=cid,
            in_service=state.status is PhysicalStatus.IN_SERVICE,
            out_of_service=state.status is PhysicalStatus.OUT_OF_SERVICE,
            admin_switch_on=state.admin_switch is AdminSwitch.ON,
            opted_out=state.remote_reading is RemoteReading.ADMINISTRATIVELY_OFF,
            contracts=tuple(
                ContractFact(c.supplier, c.holder, c.start, c.end) for c in contracts.get(cid, ())
            ),
            grants=tuple(past.get(cid, ())),
            consented=cid in consented,
        )
    return out


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
class Gate:
    """The privacy gate over one register and one meter-data store."""

    register: Register
    store: MeterStore | None
    catalogue: Catalogue
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @property
    def register_view(self) -> RegisterView:
        """The register as a use case may see it: read-only, no meter data."""
        return RegisterView(self.register)

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
            grants.remember(db, record.seq, rule.id, request, ids.values(), now, expires)
        return Grant(decision, rule, ids, self)

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
        with self.register.session() as session:
            return self.record_in(session.db, request, event, outcome, rules, **detail)

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
