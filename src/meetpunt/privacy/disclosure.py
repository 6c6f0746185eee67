"""Disclosure control for aggregates leaving the privacy gate (PRV-6, UC11, UC13, UC14).

A released aggregate is a set of *cells*. A cell is fixed by the gate, never by the
requester (``PRV-6.fixed_cells``): one area of one level of a fixed partition (the
address tree street ⊂ pc6 ⊂ pc4 ⊂ pc3 ⊂ municipality, or the grid's feeder ⊂
substation) over one whole period of the purpose's grid (``PRV-6.period_grid``: local
days, ISO weeks or months), holding *every* connection of the area that the purpose
may count. The requester names areas, a level and a period; nothing else.

:func:`decide` takes the candidate cells of one release and the cells released before
whose periods overlap (:class:`Earlier`, kept by connection id, see
:mod:`meetpunt.privacy.release_history`) and shows a cell only when

- ``PRV-6.min_connections``: at least k *contributors* (connections with a non-zero
  contribution to the summed column; houses without panels do not count toward k in
  an export sum);
- ``PRV-6.dominance``: no contributor above ``dominance`` of the cell's absolute sum;
- ``PRV-6.p_percent``: the rest of the cell, without its two largest contributors, is
  at least p % of the largest, so the second largest (who knows its own value) cannot
  estimate the largest closer than p % (the p %-rule, Hundepool et al., *Statistical
  Disclosure Control*, Wiley 2012, section 4.2);
- ``UC14.population``: enough dynamic and non-dynamic contracts (UC14);
- ``PRV-6.differencing``: no earlier cell whose period overlaps and which shares a
  contributor differs from it by 1..k-1 contributors (the symmetric difference);
- ``PRV-6.linked``: with it, no group of fewer than k connections becomes computable
  from the released cells by any linear combination (sums and differences of any
  number of cells, across levels, purposes, parties and overlapping periods). The
  cells are rows over the unknowns (connection, time atom), the atoms being the pieces
  the periods' boundaries cut time into; unknowns every row treats alike merge into a
  group, and a group is computable exactly when dropping its column lowers the rank.
  This is complementary suppression: a parent whose shown children leave fewer than k
  contributors is not shown (nor a child that, with a shown parent and siblings,
  would give the rest away).

A failing cell is suppressed, not merged: the requester may ask a coarser level. So
what is suppressed at one level cannot be derived at another.

Only :class:`ReleasedCell` values leave (``PRV-6.leaves``): level, area, period, value
and a count rounded to the purpose's base (or none); no connection ids, no suppressed
cells' values, no reasons per cell (a reason such as "dominance" would say something
about the area's households).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.domain.findings import Finding
from meetpunt.privacy.model import Period

AREA_LEVELS: tuple[str, ...] = ("street", "pc6", "pc4", "pc3", "municipality")
"""The address tree's levels, fine to coarse."""
GRID_LEVELS: tuple[str, ...] = ("feeder", "substation")
"""The grid's own levels, fine to coarse."""

MIN_CONNECTIONS = "PRV-6.min_connections"
DOMINANCE = "PRV-6.dominance"
P_PERCENT = "PRV-6.p_percent"
DIFFERENCING = "PRV-6.differencing"
LINKED = "PRV-6.linked"
POPULATION = "UC14.population"
PERIOD_GRID = "PRV-6.period_grid"
COLUMN = "PRV-6.column"
LEVEL = "PRV-6.level"
BUDGET = "PRV-6.budget"


def allowed_levels(finest: str) -> tuple[str, ...]:
    """The levels a purpose whose finest level is ``finest`` may release at
    (``PRV-6.level``): that level and coarser; the grid's feeder and substation only
    for a purpose that may go down to the street."""
    if finest in GRID_LEVELS:
        return GRID_LEVELS[GRID_LEVELS.index(finest) :]
    out = AREA_LEVELS[AREA_LEVELS.index(finest) :]
    return out + GRID_LEVELS if finest == "street" else out


def _next_boundary(day: date, unit: str) -> date:
    if unit == "day":
        return day + timedelta(days=1)
    if unit == "week":
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _on_grid(day: date, unit: str) -> bool:
    if unit == "day":
        return True
    if unit == "week":
        return day.isoweekday() == 1
    return day.day == 1


def grid_periods(period: Period, unit: str) -> list[Period] | None:
    """``period`` cut into whole local grid periods (``day``, ISO ``week`` from Monday,
    ``month``), or ``None`` when it does not start and end on the grid
    (``PRV-6.period_grid``): shifting a period by a second or a minute is refused."""
    if unit not in ("day", "week", "month"):
        raise ValueError(f"unknown period grid {unit!r}")
    first = to_local(period.start)
    if period.end <= period.start or local_midnight_utc(first.date()) != period.start:
        return None
    if not _on_grid(first.date(), unit):
        return None
    out: list[Period] = []
    day = first.date()
    start = period.start
    while start < period.end:
        day = _next_boundary(day, unit)
        end = local_midnight_utc(day)
        if end > period.end:
            return None
        out.append(Period(start, end))
        start = end
    return out


@dataclass(frozen=True)
class DisclosureRules:
    """PRV-6 thresholds (docs/requirements.md, aggregation thresholds: ≥ 10 contributors,
    none above 50 %, the p %-rule); UC14's ``min_dynamic`` / ``min_non_dynamic``
    (``None``: no such rule)."""

    min_connections: int = 10
    dominance: float = 0.5
    p_percent: float = 10.0
    min_dynamic: int | None = None
    min_non_dynamic: int | None = None

    def __post_init__(self) -> None:
        if self.min_connections < 2:
            raise ValueError("min_connections must be at least 2")
        if not 0 < self.dominance <= 1:
            raise ValueError("dominance must be a share in (0, 1]")
        if self.p_percent < 0:
            raise ValueError("p_percent must not be negative")

    @property
    def population(self) -> bool:
        return self.min_dynamic is not None or self.min_non_dynamic is not None


@dataclass(frozen=True)
class Candidate:
    """A fixed cell before the checks: ``values`` is every member's contribution
    (zero for a member without data), ``dynamic`` its contract type (UC14)."""

    level: str
    area: str
    period: Period
    values: Mapping[int, float]
    dynamic: Mapping[int, bool | None] = field(default_factory=dict)

    @property
    def members(self) -> frozenset[int]:
        return frozenset(self.values)

    @property
    def contributors(self) -> frozenset[int]:
        return frozenset(c for c, v in self.values.items() if v != 0)

    @property
    def total(self) -> float:
        return math.fsum(self.values[c] for c in sorted(self.values))

    def describe(self) -> str:
        return f"{self.level} {self.area} from {to_local(self.period.start).date()}"


@dataclass(frozen=True)
class Earlier:
    """A cell released before: its period and its contributors (by connection id)."""

    period: Period
    contributors: frozenset[int]


@dataclass(frozen=True)
class Outcome:
    """What :func:`decide` decided: the cells shown and suppressed, and why (the
    reasons stay in the gate: the audit log)."""

    shown: tuple[Candidate, ...]
    suppressed: tuple[Candidate, ...]
    findings: tuple[Finding, ...]

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.rule for f in self.findings))


@dataclass(frozen=True)
class ReleasedCell:
    """What may leave the gate of one cell (``PRV-6.leaves``): its level, area, period
    and value, and its member count rounded to the purpose's base (``None``: the count
    is not released)."""

    level: str
    area: str
    period_start: datetime
    period_end: datetime
    value: float
    count: int | None = None


@dataclass(frozen=True)
class PublicRelease:
    """The released aggregate (``PRV-6.leaves``): the shown cells, the areas and periods
    that were suppressed (without reasons), and the rule IDs that suppressed anything.
    ``noisy``: the values carry differential-privacy noise (PRV-6.noise)."""

    purpose: str
    column: str
    level: str
    cells: tuple[ReleasedCell, ...]
    suppressed: tuple[tuple[str, datetime], ...] = ()
    rules: tuple[str, ...] = ()
    noisy: bool = False


def _dominance_findings(cell: Candidate, rules: DisclosureRules) -> list[Finding]:
    where = cell.describe()
    magnitudes = sorted((abs(v) for v in cell.values.values() if v != 0), reverse=True)
    total = math.fsum(magnitudes)
    found: list[Finding] = []
    if total > 0 and magnitudes[0] > rules.dominance * total:
        found.append(
            Finding(DOMINANCE, f"{where}: one contributor above {rules.dominance:.0%} of the total")
        )
    if len(magnitudes) >= 2:
        rest = total - magnitudes[0] - magnitudes[1]
        if rest < rules.p_percent / 100 * magnitudes[0]:
            found.append(
                Finding(
                    P_PERCENT,
                    f"{where}: the second largest contributor could estimate the largest "
                    f"within {rules.p_percent:g} %",
                )
            )
    return found


PopulationGate = Callable[[Candidate], bool]
"""Whether a cell's population may be released (UC14); the default is exact counts."""


def exact_population(rules: DisclosureRules) -> PopulationGate:
    """UC14's rule on exact counts: ≥ ``min_dynamic`` dynamic and ≥ ``min_non_dynamic``
    non-dynamic contracts; unknown counts as neither."""

    def ok(cell: Candidate) -> bool:
        dynamic = sum(1 for c in cell.values if cell.dynamic.get(c) is True)
        fixed = sum(1 for c in cell.values if cell.dynamic.get(c) is False)
        return (rules.min_dynamic is None or dynamic >= rules.min_dynamic) and (
            rules.min_non_dynamic is None or fixed >= rules.min_non_dynamic
        )

    return ok


def _overlaps(a: Period, b: Period) -> bool:
    return a.start < b.end and b.start < a.end


def _component(rows: Sequence[Earlier], seed: Earlier) -> list[Earlier]:
    """The rows linked to ``seed`` by shared contributors in overlapping periods (the
    rank test decomposes over these)."""
    chosen = [seed]
    rest = list(rows)
    grew = True
    while grew:
        grew = False
        keep: list[Earlier] = []
        for row in rest:
            if any(
                _overlaps(row.period, c.period) and row.contributors & c.contributors
                for c in chosen
            ):
                chosen.append(row)
                grew = True
            else:
                keep.append(row)
        rest = keep
    return chosen


def _groups_in_atom(sets: Sequence[frozenset[int]], k: int) -> set[frozenset[int]]:
    """The groups of fewer than ``k`` connections whose sum a linear combination of the
    cells ``sets`` (all covering one time atom) gives exactly: connections every cell
    treats alike form a group (a combination is the same on all of them), and a
    group's sum is computable iff dropping its column lowers the rank."""
    signature: dict[int, set[int]] = defaultdict(set)
    for index, members in enumerate(sets):
        for c in members:
            signature[c].add(index)
    groups: dict[frozenset[int], set[int]] = defaultdict(set)
    for c, where in signature.items():
        groups[frozenset(where)].add(c)
    small = [key for key, conns in groups.items() if len(conns) < k]
    if not small:
        return set()
    keys = list(groups)
    matrix = np.zeros((len(sets), len(keys)))
    for g, key in enumerate(keys):
        for r in key:
            matrix[r, g] = 1.0
    full = int(np.linalg.matrix_rank(matrix))
    out: set[frozenset[int]] = set()
    for g, key in enumerate(keys):
        if len(groups[key]) < k and int(np.linalg.matrix_rank(np.delete(matrix, g, axis=1))) < full:
            out.add(frozenset(groups[key]))
    return out


def computable_groups(rows: Sequence[Earlier], k: int) -> set[frozenset[int]]:
    """The groups of fewer than ``k`` connections whose sum over some time atom a linear
    combination of ``rows`` gives exactly (``PRV-6.linked``); see
    :func:`computable_in_atoms`."""
    return {group for _atom, group in computable_in_atoms(rows, k)}


def computable_in_atoms(rows: Sequence[Earlier], k: int) -> set[tuple[datetime, frozenset[int]]]:
    """Each time atom (by its start) with the groups of fewer than ``k`` connections
    whose sum over it a linear combination of ``rows`` gives exactly.

    Time is cut into atoms at every period boundary, and each cell is taken as known on
    each atom separately: an adversary may know that the rest of a long period is zero
    (no data) or have it from other releases, so a month cell counts as its pieces. Per
    atom the test is :func:`_groups_in_atom`. The atom matters: the same connections
    may be a shown cell on one day and a group given away on another.
    """
    if not rows:
        return set()
    cuts = sorted({r.period.start for r in rows} | {r.period.end for r in rows})
    out: set[tuple[datetime, frozenset[int]]] = set()
    solved: dict[tuple[frozenset[int], ...], set[frozenset[int]]] = {}
    for start, end in itertools.pairwise(cuts):
        sets = tuple(
            sorted(
                {r.contributors for r in rows if r.period.start <= start and end <= r.period.end},
                key=lambda m: (len(m), sorted(m)),
            )
        )
        if not sets:
            continue
        if sets not in solved:
            solved[sets] = _groups_in_atom(sets, k)
        out |= {(start, g) for g in solved[sets]}
    return out


ANY_SIZE = 1 << 30
"""A group size bound no group reaches: :func:`computable_groups` of every size."""


def _derived_dominated(
    group: frozenset[int], values: Mapping[int, float], rules: DisclosureRules, period: Period
) -> bool:
    """A computable group (a suppressed cell given away by its parent and shown
    siblings) fails dominance or the p %-rule on this release's values; a group with a
    member whose value this release does not know is left to the k rules."""
    if not group <= values.keys():
        return False
    probe = Candidate("derived", "group", period, {c: values[c] for c in group})
    return bool(_dominance_findings(probe, rules))


def decide(
    candidates: Sequence[Candidate],
    rules: DisclosureRules,
    earlier: Sequence[Earlier] = (),
    population: PopulationGate | None = None,
) -> Outcome:
    """Decide which candidate cells may be shown (PRV-6; the module docstring has the
    rules). Candidates are taken in order (period, level, area); each shown one joins
    the history the next ones are checked against."""
    k = rules.min_connections
    pop = population or exact_population(rules)
    history: list[Earlier] = list(earlier)
    shown: list[Candidate] = []
    suppressed: list[Candidate] = []
    findings: list[Finding] = []
    ordered = sorted(candidates, key=lambda c: (c.period.start, c.period.end, c.level, c.area))
    known: dict[Period, dict[int, float]] = defaultdict(dict)
    for c in candidates:
        known[c.period].update(c.values)
    for cell in ordered:
        where = cell.describe()
        problems: list[Finding] = []
        if rules.population and not pop(cell):
            problems.append(
                Finding(
                    POPULATION,
                    f"{where}: fewer than {rules.min_dynamic} dynamic or fewer than "
                    f"{rules.min_non_dynamic} non-dynamic contracts",
                )
            )
        contributors = cell.contributors
        if len(contributors) < k:
            problems.append(Finding(MIN_CONNECTIONS, f"{where}: fewer than {k} contributors"))
        problems.extend(_dominance_findings(cell, rules))
        row = Earlier(cell.period, contributors)
        if not problems:
            close = [
                e
                for e in history
                if _overlaps(e.period, cell.period)
                and e.contributors & contributors
                and 0 < len(e.contributors ^ contributors) < k
            ]
            if close:
                problems.append(
                    Finding(
                        DIFFERENCING,
                        f"{where}: differs from a cell released for an overlapping period "
                        f"by fewer than {k} contributors",
                    )
                )
        if not problems:
            linked = _component(history, row)
            new = {
                g
                for _atom, g in computable_in_atoms(linked, ANY_SIZE)
                - computable_in_atoms(linked[1:], ANY_SIZE)
            }
            if any(len(g) < k for g in new):
                problems.append(
                    Finding(
                        LINKED,
                        f"{where}: with the cells released before, fewer than {k} "
                        "connections could be computed",
                    )
                )
            elif any(
                _derived_dominated(g, known.get(cell.period, {}), rules, cell.period) for g in new
            ):
                problems.append(
                    Finding(
                        LINKED,
                        f"{where}: with the cells released before, a group that fails "
                        "dominance or the p %-rule could be computed",
                    )
                )
        if problems:
            findings.extend(problems)
            suppressed.append(cell)
        else:
            shown.append(cell)
            history.append(row)
    return Outcome(tuple(shown), tuple(suppressed), tuple(findings))


def rounded_count(n: int, base: int) -> int | None:
    """A member count as it may leave: rounded to a multiple of ``base`` (half up);
    ``None`` when ``base`` is 0 (not released)."""
    if base <= 0:
        return None
    return math.floor(n / base + 0.5) * base
