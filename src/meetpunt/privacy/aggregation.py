"""An aggregate release through the gate (PRV-6): what :meth:`Grant.aggregate` does.

The requester names areas, a level and (through the grant) a period; the gate decides
everything else:

1. ``PRV-6.column``: only the purpose's value columns may be summed (never an id);
   ``PRV-6.level``: the purpose's level or coarser; ``PRV-6.period_grid``: the period
   must be whole periods of the purpose's grid, released one cell per grid period.
2. The cells are fixed (``PRV-6.fixed_cells``): every electricity connection of the
   area on the grid period's first local day that the purpose may count (not opted out
   unless the purpose is grid management, PRV-3; for ``already_read`` purposes only
   connections whose data another purpose read for the whole grid period), with zero
   for a member without data.
3. Noisy purposes: each contribution is clipped (the sensitivity), a cell whose members
   lack the budget is suppressed (``PRV-6.budget``), UC14's population rule is decided
   on noisy counts (:func:`meetpunt.privacy.noise.passes`).
4. :func:`meetpunt.privacy.disclosure.decide` against every earlier overlapping cell
   by connection (:mod:`meetpunt.privacy.release_history`).
5. The shown cells' contributors go to the history, the budget is spent, the audit log
   gets the counts and rule IDs, and only :class:`~meetpunt.privacy.disclosure.
   PublicRelease` leaves.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from meetpunt.domain.calendar import to_local
from meetpunt.domain.findings import Finding
from meetpunt.meterdata.kinds import KINDS
from meetpunt.privacy import disclosure, noise, release_history
from meetpunt.privacy.catalogue import AggregateRule, PurposeRule
from meetpunt.privacy.disclosure import Candidate, PublicRelease, ReleasedCell
from meetpunt.privacy.model import Period, stored_utc
from meetpunt.register import read

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from meetpunt.privacy.grant import Grant


def _refuse(grant: Grant, rule: str, message: str) -> NoReturn:
    grant.gate.refuse_read(grant.request, Finding(rule, message))


def _already_read(rows: Sequence[read.GrantRow], purpose: str, kind: str, period: Period) -> bool:
    """Another purpose read ``kind`` of the connection for the whole ``period``."""
    for g in rows:
        if g.purpose == purpose or kind not in json.loads(g.kinds):
            continue
        if stored_utc(g.start) <= period.start and period.end <= stored_utc(g.end):
            return True
    return False


def _members(
    db: Connection,
    purpose: PurposeRule,
    kind: str,
    level: str,
    areas: Sequence[str],
    period: Period,
) -> dict[int, read.AreaMember]:
    """The fixed cell members of ``areas`` for one grid period (PRV-6.fixed_cells)."""
    day = to_local(period.start).date()
    found = read.members_on(db, level, areas, day)
    if not purpose.grid_management:
        found = {c: m for c, m in found.items() if not m.opted_out}
    if purpose.population == "already_read":
        past = read.grants_of(db, list(found))
        found = {
            c: m
            for c, m in found.items()
            if _already_read(past.get(c, []), purpose.id, kind, period)
        }
    return found


def _sums(
    grant: Grant, kind: str, column: str, ids: Sequence[int], periods: Sequence[Period]
) -> dict[tuple[int, int], float]:
    """Each connection's sum of ``column`` per grid period (index into ``periods``)."""
    store = grant.gate.store
    if store is None:
        from meetpunt.privacy.grant import GateError

        raise GateError("this gate has no meter-data store to read from")
    table = store.read_connections(kind, ids, periods[0].start, periods[-1].end)
    starts = [p.start for p in periods]
    out: dict[tuple[int, int], float] = defaultdict(float)
    time_column = "start" if "start" in table.column_names else table.column_names[1]
    for cid, at, value in zip(
        table.column("connection").to_pylist(),
        table.column(time_column).to_pylist(),
        table.column(column).to_pylist(),
        strict=True,
    ):
        if value is None:
            continue
        moment = stored_utc(at)
        index = max(i for i, s in enumerate(starts) if s <= moment)
        out[(cid, index)] += float(value)
    return out


def release(
    grant: Grant,
    kind: str,
    column: str,
    areas: Sequence[str] | None = None,
    level: str | None = None,
) -> PublicRelease:
    """Release the sums of ``column`` per area of ``areas`` at ``level`` (default: the
    purpose's) for every grid period of the grant's period (PRV-6; module docstring)."""
    purpose = grant.rule
    rule: AggregateRule | None = purpose.aggregate
    if rule is None:
        _refuse(grant, f"{purpose.id}.aggregate", f"{purpose.id} reads rows, not aggregates")
    request = grant.request
    if kind not in request.kinds or kind not in KINDS:
        _refuse(grant, f"{purpose.id}.kinds", f"this grant does not cover {kind}")
    if column not in rule.columns:
        _refuse(
            grant,
            disclosure.COLUMN,
            f"{purpose.id} may sum only {', '.join(rule.columns)}, not {column!r}",
        )
    level = level or rule.level
    allowed = disclosure.allowed_levels(rule.level)
    if level not in allowed:
        _refuse(
            grant, disclosure.LEVEL, f"{purpose.id} releases at {', '.join(allowed)}, not {level!r}"
        )
    periods = disclosure.grid_periods(request.period, rule.period)
    if periods is None:
        _refuse(
            grant,
            disclosure.PERIOD_GRID,
            f"{purpose.id} releases whole local {rule.period}s only; give a period that "
            f"starts and ends on a {rule.period} boundary",
        )
    limits = disclosure.DisclosureRules(
        rule.min_connections, rule.dominance, rule.p_percent, rule.min_dynamic, rule.min_non_dynamic
    )
    span = Period(periods[0].start, periods[-1].end)
    with grant.gate.register.session() as session:
        db = session.db
        now = grant.gate.clock()
        if areas is None:
            placed = read.areas_on(
                db, list(grant.connection_ids.values()), to_local(span.start).date()
            )
            areas = sorted({a[level] for a in placed.values() if level in a})
        wanted = sorted(set(areas))
        members = [_members(db, purpose, kind, level, wanted, p) for p in periods]
        ids = sorted({c for found in members for c in found})
        sums = _sums(grant, kind, column, ids, periods)
        candidates: list[Candidate] = []
        for index, (period, found) in enumerate(zip(periods, members, strict=True)):
            dynamic = (
                read.dynamic_on(db, list(found), to_local(period.start).date())
                if limits.population
                else {}
            )
            by_area: dict[str, list[int]] = defaultdict(list)
            for cid, member in found.items():
                by_area[member.areas[level]].append(cid)
            for area in sorted(by_area):
                values = {c: sums.get((c, index), 0.0) for c in sorted(by_area[area])}
                if rule.noise is not None:
                    bound = rule.noise.clip_wh_per_day * round(period.days)
                    values = {c: float(noise.clip(v, bound)) for c, v in values.items()}
                candidates.append(
                    Candidate(level, area, period, values, {c: dynamic.get(c) for c in values})
                )
        earlier = release_history.overlapping(db, span, ids)
        outcome, charges = _decide(db, rule, limits, candidates, earlier)
        cells = [_public(rule, cell) for cell in outcome.shown]
        epsilon = rule.noise.epsilon if rule.noise is not None else 0.0
        release_history.record(db, purpose.id, request.party, outcome.shown, now, epsilon)
        release_history.spend(db, purpose.id, charges, now)
        grant.gate.record_in(
            db,
            request,
            "release",
            "released",
            list(outcome.rules),
            kind=kind,
            column=column,
            level=level,
            periods=len(periods),
            cells=len(cells),
            suppressed=len(outcome.suppressed),
            noisy=rule.noise is not None,
        )
    return PublicRelease(
        purpose.id,
        column,
        level,
        tuple(cells),
        tuple((c.area, c.period.start) for c in outcome.suppressed),
        outcome.rules,
        rule.noise is not None,
    )


def _decide(
    db: Connection,
    rule: AggregateRule,
    limits: disclosure.DisclosureRules,
    candidates: Sequence[Candidate],
    earlier: Sequence[disclosure.Earlier],
) -> tuple[disclosure.Outcome, list[tuple[int, int, float]]]:
    """:func:`disclosure.decide`, and for noisy purposes first the budget (a cell whose
    members cannot pay is suppressed, ``PRV-6.budget``) and the noisy population gate;
    returns the budget charges ``(connection, year, epsilon)`` too."""
    settings = rule.noise
    if settings is None:
        return disclosure.decide(candidates, limits, earlier), []
    cost = settings.epsilon + (settings.population_epsilon if limits.population else 0.0)
    years = {release_history.budget_year(c.period) for c in candidates}
    ids = sorted({m for c in candidates for m in c.members})
    balance: dict[tuple[int, int], float] = defaultdict(float)
    for year in years:
        for cid, used in release_history.spent(db, ids, year).items():
            balance[(cid, year)] = used
    payable: list[Candidate] = []
    broke: list[Candidate] = []
    for cell in sorted(candidates, key=lambda c: (c.period.start, c.area)):
        year = release_history.budget_year(cell.period)
        if any(balance[(m, year)] + cost > settings.budget_per_year + 1e-9 for m in cell.members):
            broke.append(cell)
            continue
        for m in cell.members:
            balance[(m, year)] += cost
        payable.append(cell)

    def population(cell: Candidate) -> bool:
        dynamic = sum(1 for c in cell.values if cell.dynamic.get(c) is True)
        fixed = sum(1 for c in cell.values if cell.dynamic.get(c) is False)
        eps, delta = settings.population_epsilon, settings.delta
        return (
            limits.min_dynamic is None or noise.passes(dynamic, limits.min_dynamic, eps, delta)
        ) and (
            limits.min_non_dynamic is None
            or noise.passes(fixed, limits.min_non_dynamic, eps, delta)
        )

    outcome = disclosure.decide(payable, limits, earlier, population)
    shown = {id(c) for c in outcome.shown}
    charges: list[tuple[int, int, float]] = []
    for cell in payable:
        year = release_history.budget_year(cell.period)
        paid = (settings.population_epsilon if limits.population else 0.0) + (
            settings.epsilon if id(cell) in shown else 0.0
        )
        charges.extend((m, year, paid) for m in sorted(cell.members))
    findings = tuple(
        Finding(disclosure.BUDGET, f"{c.describe()}: a member's privacy budget is spent")
        for c in broke
    )
    return (
        disclosure.Outcome(
            outcome.shown, outcome.suppressed + tuple(broke), outcome.findings + findings
        ),
        charges,
    )


def _public(rule: AggregateRule, cell: Candidate) -> ReleasedCell:
    """What leaves of a shown cell: exact (rounded to Wh) or with noise (PRV-6.noise)."""
    total = round(cell.total)
    if rule.noise is not None:
        days = round(cell.period.days)
        total = noise.laplace(total, rule.noise.clip_wh_per_day * days, rule.noise.epsilon)
    return ReleasedCell(
        cell.level,
        cell.area,
        cell.period.start,
        cell.period.end,
        float(total),
        disclosure.rounded_count(len(cell.members), rule.count_rounding),
    )


def relative_noise(rule: AggregateRule, total_wh: float, days: float) -> float:
    """The standard deviation of the noise relative to ``total_wh`` (discrete Laplace
    of scale b has variance about 2 b²): the price of the protection."""
    if rule.noise is None or total_wh <= 0:
        return 0.0
    b = noise.scale(rule.noise.clip_wh_per_day * round(days), rule.noise.epsilon)
    return math.sqrt(2) * b / total_wh
