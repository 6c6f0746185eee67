"""The gate's rules as one pure function (PRV-1..4, the limits of the catalogue, PRV-2).

:func:`evaluate` takes a purpose rule from the catalogue, a request and the facts the
register holds about the requested connections, and returns every broken rule as a
:class:`Finding` with a rule ID: ``<purpose>.party``, ``.kinds``, ``.window``,
``.trigger``, ``.population``, ``.flagged``, ``.frequency``, ``.pause``, ``.sunset`` (e.g.
``UC3.window``), and the cross-purpose rules ``PRV-3.opt_out``, ``PRV-4.consent``,
``PRV-1.supplier_scope``, ``PRV-1.own_data``, ``PRV-1.unknown_connection``,
``PRV-1.period``, ``PRV-1.future_period``, ``PRV-2.unknown_purpose``.

The rules that can hold on some days of the period and not on others (the register's
state, contracts and consents: population, opt-out, supplier scope, own data, consent
and its holder) are checked per stretch of the period (:func:`coverage_of`): a grant
covers exactly the stretches where all of them hold, and a connection left with none
refuses the request with the rules that cut it. No I/O: :mod:`meetpunt.privacy.gate`
gathers the facts and records the decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise

from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.findings import Finding
from meetpunt.meterdata.kinds import KINDS
from meetpunt.privacy.catalogue import FrequencyLimit, PurposeRule
from meetpunt.privacy.disclosure import grid_periods
from meetpunt.privacy.model import REACHABILITY, AccessRequest, Cut, Period, Role

SEASONS = {12: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3, 11: 3}
"""Meteorological seasons (winter = December to February), for 'once per season'."""


@dataclass(frozen=True)
class ContractFact:
    """A supply contract as the gate needs it."""

    supplier: str
    holder: str
    start: date
    end: date | None

    def covers(self, first: date, last: date) -> bool:
        """In force on every day from ``first`` to ``last`` inclusive; a one-day read on
        the day the contract ends also counts (the final reading at midnight belongs to
        both the leaving and the arriving supplier, MKT-5)."""
        if self.start > first:
            return False
        return self.end is None or last < self.end or first == last == self.end


def covered(contracts: Sequence[ContractFact], first: date, last: date) -> bool:
    """Every day from ``first`` to ``last`` lies in one of ``contracts`` (consecutive
    contracts of one holder or supplier join up); a one-day read on the day the last
    one ends counts too (the final reading, MKT-5)."""
    if any(c.covers(first, last) for c in contracts):
        return True
    cursor = first
    for c in sorted(contracts, key=lambda c: c.start):
        if c.start <= cursor and (c.end is None or c.end > cursor):
            if c.end is None or c.end > last:
                return True
            cursor = c.end
    return False


@dataclass(frozen=True)
class PastGrant:
    """An earlier grant for one connection (a ``privacy_grant`` row; one decision may
    have several rows per connection, one per granted sub-period, all under its audit
    record ``seq``)."""

    purpose: str
    start: datetime
    end: datetime
    kinds: frozenset[str] = frozenset()
    seq: int = 0


@dataclass(frozen=True)
class FlagFact:
    """A stored finding a request cites (population "flagged"; :mod:`.flags`): which
    use case and step found it, the purpose it opens, who recorded it, until when, and
    the register ids of the connections it names."""

    id: int
    usecase: str
    step: str
    opens: str
    party: str
    valid_until: datetime
    members: frozenset[int]


@dataclass(frozen=True)
class StateFact:
    """A connection's state over local days ``[start, end)`` (``end`` None: still so),
    as the register's versions hold it (REG-6)."""

    start: date
    end: date | None
    in_service: bool
    out_of_service: bool
    admin_switch_on: bool
    opted_out: bool


@dataclass(frozen=True)
class ConsentFact:
    """A given consent of the requesting party for the purpose on one connection
    (PRV-4): its kinds, its validity ``[start, end)`` and who gave it when."""

    kinds: frozenset[str]
    start: datetime
    end: datetime
    given_by: str
    given_on: date


@dataclass(frozen=True)
class ConnectionFacts:
    """What the register says about one requested connection over the requested period:
    its states (every version overlapping the period), its contracts, the earlier grants
    its rules look at and the party's consents."""

    ean: str
    connection_id: int
    states: tuple[StateFact, ...] = ()
    contracts: tuple[ContractFact, ...] = ()
    grants: tuple[PastGrant, ...] = ()
    consents: tuple[ConsentFact, ...] = ()

    def state_on(self, day: date) -> StateFact | None:
        """The state holding on ``day``, if the connection existed then."""
        for s in self.states:
            if s.start <= day and (s.end is None or day < s.end):
                return s
        return None

    def holder_on(self, day: date) -> str | None:
        """The contract holder on ``day`` (None: contractless)."""
        for c in self.contracts:
            if c.start <= day and (c.end is None or day < c.end):
                return c.holder
        return None


@dataclass(frozen=True)
class Coverage:
    """What the rules leave of one connection's requested period: the granted
    sub-periods, in order, and the rules that cut the rest."""

    granted: tuple[Period, ...]
    cuts: tuple[Cut, ...]


@dataclass(frozen=True)
class Verdict:
    """:func:`decide`'s answer: every broken rule (empty: granted) and, per known
    connection, its coverage."""

    findings: list[Finding]
    coverage: dict[str, Coverage]


@dataclass
class _Collector:
    findings: list[Finding] = field(default_factory=list)
    hidden: bool = False

    def names(self, eans: Sequence[str]) -> str:
        return _names(eans, hidden=self.hidden)

    def add(self, rule: str, message: str) -> None:
        self.findings.append(Finding(rule, message))


def local_days(period: Period) -> float:
    """Length of a period in days on the local clock: a week across the October clock
    change is 7 days, not 7.04 (MTR-3)."""
    start = to_local(period.start).replace(tzinfo=None)
    end = to_local(period.end).replace(tzinfo=None)
    return (end - start).total_seconds() / 86_400


def _names(eans: Sequence[str], limit: int = 5, hidden: bool = False) -> str:
    """EANs for a message; ``hidden`` (a party other than the grid operator): only how
    many, so a refusal never names (and so never confirms facts about) a customer's
    connection to a party outside the grid operator (PRV-6.leaves)."""
    if hidden:
        return f"{len(eans)} requested connection(s)"
    shown = ", ".join(eans[:limit])
    return shown + (f" and {len(eans) - limit} more" if len(eans) > limit else "")


MIDNIGHT_READINGS = frozenset(
    {"daily_readings", "monthly_readings", "switch_readings", "gas_switch_readings"}
)
"""Kinds whose values are register readings taken at a local midnight: a day
added to a contract's end adds only the reading at that midnight, the final reading
that belongs to the leaving and the arriving supplier alike (MKT-5). Interval values
(quarter-hours, gas hours) of that day belong to the arriving one and never count."""

SEGMENT_RULES = ("population", "kinds", "PRV-3.opt_out")
"""Order of the rules that can hold on some days of a period and not on others (the
population rule of the purpose, then the switched-off kinds rule, then opt-out)."""


def evaluate(
    rule: PurposeRule | None,
    request: AccessRequest,
    facts: Mapping[str, ConnectionFacts | None],
    now: datetime | None = None,
    flag: FlagFact | None = None,
) -> list[Finding]:
    """Every rule the request breaks; an empty list means it may be granted."""
    return decide(rule, request, facts, now, flag).findings


def request_commodity(kinds: frozenset[str]) -> Commodity | None:
    """The commodity whose connections a request's kinds are stored under (the hub keys
    gas kinds by the gas connection, every other kind by the electricity connection;
    an EAN may hold both, REG-1), or ``None`` when the kinds mix the two."""
    found = {KINDS[k].commodity if k in KINDS else Commodity.ELECTRICITY for k in kinds}
    if len(found) > 1:
        return None
    return found.pop() if found else Commodity.ELECTRICITY


def _kinds(rule: PurposeRule, request: AccessRequest, out: _Collector) -> None:
    """The kinds asked: only the purpose's (PRV-2), and of one commodity (PRV-1)."""
    pid = rule.id
    extra = sorted(request.kinds - rule.kinds)
    if extra:
        out.add(
            f"{pid}.kinds",
            f"{pid} may read {', '.join(sorted(rule.kinds))}, not {', '.join(extra)}",
        )
    if request_commodity(request.kinds) is None:
        out.add(
            "PRV-1.commodity",
            f"{', '.join(sorted(request.kinds))} mix electricity and gas kinds; each is read "
            "from its own connection: ask the gas kinds in a request of their own",
        )


def decide(
    rule: PurposeRule | None,
    request: AccessRequest,
    facts: Mapping[str, ConnectionFacts | None],
    now: datetime | None = None,
    flag: FlagFact | None = None,
) -> Verdict:
    """Every rule the request breaks and, per connection, the sub-periods in which every
    rule that can change within a period holds (its state, contracts, consents: PRV-1,
    PRV-3, PRV-4). A connection left with no sub-period refuses the request with the
    rules that cut it; one left with some is granted exactly those. ``now`` (the gate's
    clock) refuses a period that has not begun (``PRV-1.future_period``). ``flag`` is
    the stored finding the request cites (``request.cites``), for a flagged purpose."""
    out = _Collector(hidden=request.party.role is not Role.GRID_OPERATOR)
    if rule is None:
        out.add(
            "PRV-2.unknown_purpose",
            f"{request.purpose!r} is not a purpose in the catalogue; name an approved use "
            "case or a supplier, app, customer or research purpose",
        )
        return Verdict(out.findings, {})
    pid = rule.id
    period = request.period
    first = to_local(period.start).date()
    last = to_local(period.end - timedelta(microseconds=1)).date()
    if period.end <= period.start:
        out.add("PRV-1.period", "the period ends before it starts; give start < end")
    if now is not None and period.start > now:
        out.add(
            "PRV-1.future_period",
            f"the period starts {period.start.isoformat()}, after now ({now.isoformat()}); "
            "meter data can only be read for a period that has begun",
        )
    if request.party.role not in rule.parties:
        allowed = ", ".join(sorted(r.value for r in rule.parties))
        out.add(f"{pid}.party", f"a {request.party.role.value} may not ask for {pid}: {allowed}")
    _kinds(rule, request, out)
    wall_days = local_days(period)
    if rule.window_days and wall_days > rule.window_days:
        out.add(
            f"{pid}.window",
            f"{wall_days:g} days asked; {pid} reads at most {rule.window_days:g} days at a time",
        )
    if rule.trigger != "none" and not request.trigger:
        out.add(f"{pid}.trigger", f"{pid} reads only with a reason: {rule.trigger} (trigger)")
    if rule.sunset is not None and (
        to_local(request.at).date() >= rule.sunset or last >= rule.sunset
    ):
        out.add(f"{pid}.sunset", f"{pid} ended on {rule.sunset}; no reads from that day on")
    unknown = [e for e, f in facts.items() if f is None]
    if unknown:
        out.add("PRV-1.unknown_connection", f"not in the register: {out.names(unknown)}")
    known = [f for f in facts.values() if f is not None]
    if rule.aggregate is not None and grid_periods(period, rule.aggregate.period) is None:
        out.add(
            "PRV-6.period_grid",
            f"{pid} releases whole local {rule.aggregate.period}s only; give a period that "
            f"starts and ends on a {rule.aggregate.period} boundary",
        )
    if period.end <= period.start:
        coverage: dict[str, Coverage] = {}
    elif rule.aggregate is not None and out.hidden:
        # the cells apply population and opt-out silently (PRV-6.fixed_cells): nothing
        # about one connection is refused, or said, to a party outside the grid operator
        coverage = {f.ean: Coverage((period,), ()) for f in known}
        known = []
    else:
        coverage = {f.ean: coverage_of(rule, request, f) for f in known}
    if rule.population == "already_read":
        _already_read(rule, request, known, out)
    if rule.population == "flagged":
        _flagged(rule, request, known, flag, now, out)
    _refused_cuts(rule, request, coverage, first, last, out)
    _frequency(rule, request, known, out)
    if rule.pause_days:
        pause = timedelta(days=rule.pause_days)
        close = [
            f.ean
            for f in known
            for g in f.grants
            if g.purpose == pid and period.start - g.end < pause and g.start - period.end < pause
        ]
        if close:
            out.add(
                f"{pid}.pause",
                f"{pid} needs at least {rule.pause_days:g} day(s) between reads of "
                f"{out.names(sorted(set(close)))}",
            )
    return Verdict(out.findings, coverage)


def _flagged(
    rule: PurposeRule,
    request: AccessRequest,
    known: Sequence[ConnectionFacts],
    flag: FlagFact | None,
    now: datetime | None,
    out: _Collector,
) -> None:
    """Population "flagged" (UC3, UC12): the request cites a stored finding of a purpose
    in ``rule.flagged_by`` that opens this purpose, recorded by the same party, still
    valid, and naming every requested connection. A trigger text alone opens nothing."""
    pid = rule.id
    which = f"{pid} reads only connections a stored finding of {' or '.join(rule.flagged_by)}"
    if request.cites is None:
        out.add(f"{pid}.flagged", f"{which} names; cite the finding's id")
        return
    if flag is None or flag.id != request.cites:
        out.add(f"{pid}.flagged", f"there is no stored finding {request.cites}; {which} names")
        return
    if not _opens(rule.flagged_by, flag) or flag.opens != pid:
        out.add(
            f"{pid}.flagged",
            f"finding {flag.id} is a {flag.usecase} finding of step {flag.step!r} opening "
            f"{flag.opens}; {which} names and that opens it",
        )
    if flag.party != request.party.id:
        out.add(
            f"{pid}.flagged",
            f"finding {flag.id} was recorded by another party; cite a finding of your own",
        )
    if now is not None and now >= flag.valid_until:
        out.add(
            f"{pid}.flagged",
            f"finding {flag.id} was valid until {flag.valid_until.isoformat()}; it opens "
            "nothing after that: record a new finding",
        )
    outside = sorted(f.ean for f in known if f.connection_id not in flag.members)
    if outside:
        out.add(
            f"{pid}.flagged",
            f"finding {flag.id} does not name {out.names(outside)}; read only the "
            "connections it names",
        )


def _opens(flagged_by: Sequence[str], flag: FlagFact) -> bool:
    """Whether ``flag`` is one of the findings ``flagged_by`` names: ``PURPOSE`` for
    any step of that purpose, ``PURPOSE:STEP`` for that step only."""
    names = {flag.usecase, f"{flag.usecase}:{flag.step}"}
    return any(f in names for f in flagged_by)


def _segment_rules(
    rule: PurposeRule,
    request: AccessRequest,
    facts: ConnectionFacts,
    contracts: Sequence[ContractFact],
    start: datetime,
    end: datetime,
) -> tuple[str, ...]:
    """The rules broken in ``[start, end)``, a stretch in which no fact changes."""
    pid, population, party = rule.id, rule.population, request.party.id
    day = to_local(start).date()
    state = facts.state_on(day)
    if state is None:
        return ("PRV-1.unknown_connection",)
    broken: list[str] = []
    in_force = [c for c in contracts if c.start <= day and (c.end is None or day < c.end)]
    contractless = state.in_service and not in_force
    if population == "contractless" and not contractless:
        broken.append(f"{pid}.population")
    elif population == "contractless_or_out_of_service":
        if not (state.out_of_service or contractless):
            broken.append(f"{pid}.population")
        if state.out_of_service and not state.admin_switch_on and request.kinds - {REACHABILITY}:
            broken.append(f"{pid}.kinds")
    elif population == "supplied" and not any(c.supplier == party for c in in_force):
        broken.append("PRV-1.supplier_scope")
    elif population == "own" and not any(c.holder == party for c in in_force):
        broken.append("PRV-1.own_data")
    elif population == "consented" and not _consented(request, facts, start, end):
        broken.append("PRV-4.consent")
    if not rule.grid_management and state.opted_out:
        broken.append("PRV-3.opt_out")
    return tuple(broken)


def _consented(
    request: AccessRequest, facts: ConnectionFacts, start: datetime, end: datetime
) -> bool:
    """A consent in force at the request covers ``[start, end)`` and these kinds, and
    the customer who gave it still holds the connection then (PRV-4: a consent ends
    with a move; the holder is the one on the day it was given, else its giver)."""
    day = to_local(start).date()
    holder = facts.holder_on(day)
    for c in facts.consents:
        if not (request.kinds <= c.kinds and c.start <= start and end <= c.end):
            continue
        if request.at >= c.end:
            continue
        giver = facts.holder_on(c.given_on) or c.given_by
        if holder == giver:
            return True
    return False


def coverage_of(rule: PurposeRule, request: AccessRequest, facts: ConnectionFacts) -> Coverage:
    """The sub-periods of the request in which every rule that can change within a
    period holds for one connection, and the rule(s) that cut the rest (PRV-1).

    The period is split where any fact changes (a version, a contract or a consent
    begins or ends); each stretch is checked once and neighbours with the same outcome
    join up. A one-day read of readings taken at midnight (:data:`MIDNIGHT_READINGS`) on
    the day a contract ends counts as under it (the final reading, MKT-5), and so does
    the end day in a longer supplier read of those kinds: the reading of the switch day
    belongs to both suppliers, and that day holds no other value of these kinds (issue
    17). The day's interval values (quarter-hours, gas hours) never count: they are the
    arriving party's."""
    period = request.period
    first = to_local(period.start).date()
    last = to_local(period.end - timedelta(microseconds=1)).date()
    contracts: Sequence[ContractFact] = facts.contracts
    if (
        request.kinds
        and request.kinds <= MIDNIGHT_READINGS
        and (first == last or rule.population == "supplied")
    ):
        contracts = [
            ContractFact(c.supplier, c.holder, c.start, c.end + timedelta(days=1))
            if c.end is not None and first <= c.end <= last
            else c
            for c in contracts
        ]
    days: set[date] = set()
    for s in facts.states:
        days.add(s.start)
        if s.end is not None:
            days.add(s.end)
    for c in contracts:
        days.add(c.start)
        if c.end is not None:
            days.add(c.end)
    marks = {period.start, period.end}
    marks.update(local_midnight_utc(d) for d in days if first < d <= last)
    for consent in facts.consents:
        marks.update(m for m in (consent.start, consent.end) if period.start < m < period.end)
    bounds = sorted(marks)
    stretches: list[tuple[datetime, datetime, tuple[str, ...]]] = []
    for start, end in pairwise(bounds):
        broken = _segment_rules(rule, request, facts, contracts, start, end)
        if stretches and stretches[-1][2] == broken and stretches[-1][1] == start:
            stretches[-1] = (stretches[-1][0], end, broken)
        else:
            stretches.append((start, end, broken))
    granted = tuple(Period(a, b) for a, b, broken in stretches if not broken)
    cuts = tuple(
        Cut(facts.ean, name, Period(a, b)) for a, b, broken in stretches for name in broken
    )
    return Coverage(granted, cuts)


def _rule_order(rule: str) -> int:
    for i, tail in enumerate(SEGMENT_RULES):
        if rule.endswith(tail):
            return i
    return 0  # the population rules named PRV-1.* / PRV-4.*


def _refused_cuts(
    rule: PurposeRule,
    request: AccessRequest,
    coverage: Mapping[str, Coverage],
    first: date,
    last: date,
    out: _Collector,
) -> None:
    """Refuse with the rules that cut a connection's whole period: a request is granted
    for some days of a connection, never for none of them."""
    pid, party = rule.id, request.party.id
    by_rule: dict[str, list[str]] = {}
    for ean, found in coverage.items():
        if found.granted:
            continue
        for name in dict.fromkeys(c.rule for c in found.cuts):
            by_rule.setdefault(name, []).append(ean)
    for name in sorted(by_rule, key=_rule_order):
        names = out.names(by_rule[name])
        if name == "PRV-1.unknown_connection":
            message = f"not in the register during the period: {names}"
        elif name == f"{pid}.population" and rule.population == "contractless":
            message = f"{pid} reads only contractless connections: {names}"
        elif name == f"{pid}.population":
            message = f"{pid} reads only contractless or out-of-service connections; not {names}"
        elif name == f"{pid}.kinds":
            message = (
                f"{pid} may only check whether a switched-off meter answers (reachability) "
                f"for {names}"
            )
        elif name == "PRV-1.supplier_scope":
            message = f"{party} does not supply {names} on any day from {first} to {last}"
        elif name == "PRV-1.own_data":
            message = f"{party} is not the customer of {names} then"
        elif name == "PRV-4.consent":
            message = f"no consent in force for {party}, {pid} and these kinds and dates on {names}"
        else:
            message = (
                f"the customer switched remote reading off administratively for {names}; "
                "only grid management may read it"
            )
        out.add(name, message)


def _already_read(
    rule: PurposeRule,
    request: AccessRequest,
    known: Sequence[ConnectionFacts],
    out: _Collector,
) -> None:
    pid = rule.id
    bad = [
        f.ean
        for f in known
        if not any(
            g.purpose != pid
            and request.kinds <= g.kinds
            and g.start <= request.period.start
            and request.period.end <= g.end
            for g in f.grants
        )
    ]
    if bad:
        out.add(
            f"{pid}.population",
            f"{pid} uses only data already read for another purpose; none for {out.names(bad)}",
        )


def _bucket(moment: datetime, limit: FrequencyLimit) -> tuple[int, int]:
    local = to_local(moment).date()
    if limit.per == "season":
        year = local.year + (1 if local.month == 12 else 0)
        return year, SEASONS[local.month]
    if limit.per == "quarter":
        return local.year, (local.month - 1) // 3
    return local.year, 0  # "year"


def _key(grant: PastGrant) -> tuple[str, int]:
    """One decision's rows alike (its audit record), each row apart when unknown."""
    return ("seq", grant.seq) if grant.seq else ("row", id(grant))


def _frequency(
    rule: PurposeRule, request: AccessRequest, known: Sequence[ConnectionFacts], out: _Collector
) -> None:
    pid = rule.id
    start = request.period.start
    for limit in rule.frequency:
        over: list[str] = []
        for f in known:
            mine = [g for g in f.grants if g.purpose == pid]
            # one decision counts once, whatever number of sub-periods it granted
            if limit.per_days is not None:
                span = timedelta(days=limit.per_days)
                count = len({_key(g) for g in mine if abs(g.start - start) < span})
            else:
                here = _bucket(start, limit)
                count = len({_key(g) for g in mine if _bucket(g.start, limit) == here})
            if count >= limit.count:
                over.append(f.ean)
        if over:
            every = f"{limit.per_days:g} days" if limit.per_days is not None else str(limit.per)
            out.add(
                f"{pid}.frequency",
                f"{pid} reads a connection at most {limit.count} time(s) per {every}; "
                f"already read: {out.names(over)}",
            )
