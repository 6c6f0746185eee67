"""The gate's rules as one pure function (PRV-1..4, the limits of the catalogue, PRV-2).

:func:`evaluate` takes a purpose rule from the catalogue, a request and the facts the
register holds about the requested connections, and returns every broken rule as a
:class:`Finding` with a rule ID: ``<purpose>.party``, ``.kinds``, ``.window``,
``.trigger``, ``.population``, ``.frequency``, ``.pause``, ``.sunset`` (e.g.
``UC3.window``), and the cross-purpose rules ``PRV-3.opt_out``, ``PRV-4.consent``,
``PRV-1.supplier_scope``, ``PRV-1.own_data``, ``PRV-1.unknown_connection``,
``PRV-1.period``, ``PRV-2.unknown_purpose``. No I/O: :mod:`meetpunt.privacy.gate`
gathers the facts and records the decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from meetpunt.domain.calendar import to_local
from meetpunt.domain.findings import Finding
from meetpunt.privacy.catalogue import FrequencyLimit, PurposeRule
from meetpunt.privacy.disclosure import grid_periods
from meetpunt.privacy.model import REACHABILITY, AccessRequest, Period, Role

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
    """An earlier grant for one connection (from ``privacy_grant``)."""

    purpose: str
    start: datetime
    end: datetime
    kinds: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ConnectionFacts:
    """What the register says about one requested connection on the period's start."""

    ean: str
    connection_id: int
    in_service: bool
    out_of_service: bool
    admin_switch_on: bool
    opted_out: bool
    contracts: tuple[ContractFact, ...] = ()
    grants: tuple[PastGrant, ...] = ()
    consented: bool = False

    def contractless_on(self, day: date) -> bool:
        """In service without a contract in force (REG-6, UC8, UC15)."""
        return self.in_service and not any(c.covers(day, day) for c in self.contracts)

    def contractless_throughout(self, first: date, last: date) -> bool:
        """In service without a contract on any day from ``first`` to ``last``."""
        return self.in_service and not any(
            c.start <= last and (c.end is None or c.end > first) for c in self.contracts
        )


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


def evaluate(
    rule: PurposeRule | None,
    request: AccessRequest,
    facts: Mapping[str, ConnectionFacts | None],
) -> list[Finding]:
    """Every rule the request breaks; an empty list means it may be granted."""
    out = _Collector(hidden=request.party.role is not Role.GRID_OPERATOR)
    if rule is None:
        out.add(
            "PRV-2.unknown_purpose",
            f"{request.purpose!r} is not a purpose in the catalogue; name an approved use "
            "case or a supplier, app, customer or research purpose",
        )
        return out.findings
    pid = rule.id
    period = request.period
    first = to_local(period.start).date()
    last = to_local(period.end - timedelta(microseconds=1)).date()
    if period.end <= period.start:
        out.add("PRV-1.period", "the period ends before it starts; give start < end")
    if request.party.role not in rule.parties:
        allowed = ", ".join(sorted(r.value for r in rule.parties))
        out.add(f"{pid}.party", f"a {request.party.role.value} may not ask for {pid}: {allowed}")
    extra = sorted(request.kinds - rule.kinds)
    if extra:
        out.add(
            f"{pid}.kinds",
            f"{pid} may read {', '.join(sorted(rule.kinds))}, not {', '.join(extra)}",
        )
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
    per_cell = rule.aggregate is not None and out.hidden
    if per_cell:
        known = []  # the cells apply population and opt-out silently (PRV-6.fixed_cells)
    if rule.aggregate is not None and grid_periods(period, rule.aggregate.period) is None:
        out.add(
            "PRV-6.period_grid",
            f"{pid} releases whole local {rule.aggregate.period}s only; give a period that "
            f"starts and ends on a {rule.aggregate.period} boundary",
        )
    _population(rule, request, known, first, last, out)
    if not rule.grid_management:
        opted = [f.ean for f in known if f.opted_out]
        if opted:
            out.add(
                "PRV-3.opt_out",
                f"the customer switched remote reading off administratively for "
                f"{out.names(opted)}; only grid management may read it",
            )
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
    return out.findings


def _population(
    rule: PurposeRule,
    request: AccessRequest,
    known: Sequence[ConnectionFacts],
    first: date,
    last: date,
    out: _Collector,
) -> None:
    pid, population = rule.id, rule.population
    party = request.party.id
    if population == "contractless_or_out_of_service":
        bad = [
            f.ean for f in known if not (f.out_of_service or f.contractless_throughout(first, last))
        ]
        if bad:
            out.add(
                f"{pid}.population",
                f"{pid} reads only contractless or out-of-service connections; "
                f"not {out.names(bad)}",
            )
        switched_off = [f.ean for f in known if f.out_of_service and not f.admin_switch_on]
        if switched_off and request.kinds - {REACHABILITY}:
            out.add(
                f"{pid}.kinds",
                f"{pid} may only check whether a switched-off meter answers (reachability) "
                f"for {out.names(switched_off)}",
            )
    elif population == "contractless":
        bad = [f.ean for f in known if not f.contractless_throughout(first, last)]
        if bad:
            out.add(
                f"{pid}.population", f"{pid} reads only contractless connections: {out.names(bad)}"
            )
    elif population == "already_read":
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
    elif population == "supplied":
        bad = [
            f.ean
            for f in known
            if not covered([c for c in f.contracts if c.supplier == party], first, last)
        ]
        if bad:
            out.add(
                "PRV-1.supplier_scope",
                f"{party} does not supply {out.names(bad)} on every day from {first} to {last}",
            )
    elif population == "own":
        bad = [
            f.ean
            for f in known
            if not covered([c for c in f.contracts if c.holder == party], first, last)
        ]
        if bad:
            out.add("PRV-1.own_data", f"{party} is not the customer of {out.names(bad)} then")
    elif population == "consented":
        bad = [f.ean for f in known if not f.consented]
        if bad:
            out.add(
                "PRV-4.consent",
                f"no consent in force for {request.party.id}, {pid} and these kinds and "
                f"dates on {out.names(bad)}",
            )


def _bucket(moment: datetime, limit: FrequencyLimit) -> tuple[int, int]:
    local = to_local(moment).date()
    if limit.per == "season":
        year = local.year + (1 if local.month == 12 else 0)
        return year, SEASONS[local.month]
    if limit.per == "quarter":
        return local.year, (local.month - 1) // 3
    return local.year, 0  # "year"


def _frequency(
    rule: PurposeRule, request: AccessRequest, known: Sequence[ConnectionFacts], out: _Collector
) -> None:
    pid = rule.id
    start = request.period.start
    for limit in rule.frequency:
        over: list[str] = []
        for f in known:
            mine = [g for g in f.grants if g.purpose == pid]
            if limit.per_days is not None:
                span = timedelta(days=limit.per_days)
                count = sum(1 for g in mine if abs(g.start - start) < span)
            else:
                here = _bucket(start, limit)
                count = sum(1 for g in mine if _bucket(g.start, limit) == here)
            if count >= limit.count:
                over.append(f.ean)
        if over:
            every = f"{limit.per_days:g} days" if limit.per_days is not None else str(limit.per)
            out.add(
                f"{pid}.frequency",
                f"{pid} reads a connection at most {limit.count} time(s) per {every}; "
                f"already read: {out.names(over)}",
            )
