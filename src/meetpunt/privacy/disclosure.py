"""Disclosure control for aggregates leaving the privacy gate (PRV-6, UC11, UC13, UC14).

An aggregate is a set of *cells*: one area at one level of the area tree
(:data:`AREA_LEVELS`, street → postcode-6 → postcode-4 → postcode-3 → municipality)
with the sum of its connections' contributions (energy, a count, ...). :func:`release`
decides which cells may be shown; it never returns a per-connection value.

Algorithm
---------
1. The contributions are summed per connection and grouped into cells by their area at
   the requested level.
2. UC14 (``min_dynamic`` / ``min_non_dynamic`` set): a requested-level area with fewer
   dynamic or fewer non-dynamic connections than required is withheld whole
   (``UC14.population``); it is *not* merged (the use-case list: only areas with enough of both).
3. Every cell is checked:

   - ``PRV-6.min_connections``: at least ``min_connections`` (k) connections;
   - ``PRV-6.dominance``: no connection contributes more than ``dominance`` of the
     cell's absolute sum (the sum of the connections' absolute values);
   - ``PRV-6.differencing``: ``previous(level, area)`` returns the connection sets
     released before for the same period (the caller binds the period). The cell's set
     is compared with every earlier set labelled with any area (at any level) that one
     of its connections belongs to -- every earlier cell that shares a connection
     carries such a label, and a disjoint one differs by at least k anyway. A
     symmetric difference of 1..k-1 connections fails; an identical set is fine (the
     same release again).
   - for residual cells of a UC14 release also the population rule of step 2.

4. A cell that passes is shown. A failing cell is not shown: its connections go into
   the *residual* cell of its parent area one level up ("the rest of pc4 5678"). The
   residual holds only the failing children, never the shown ones -- showing the full
   parent next to shown children would reveal the failing ones by subtraction. The
   residual is checked the same way (step 3) and climbs further if it fails; a failing
   cell at the top level (municipality) is withheld.

So within one release the shown cells are disjoint, every connection ends up in exactly
one shown or one withheld cell (nothing lost, nothing counted twice), and no shown cell
differs from an earlier shown cell by fewer than k connections. Not covered: sums and
differences of *several* earlier cells, and periods that overlap without being equal
(temporal differencing); the gate keeps requests to whole, fixed periods.

Only :attr:`Release.cells` may be shipped, and only their area, level, value and count:
the connection sets exist for the audit and the release history
(:class:`ReleaseHistory`, table ``disclosure_release``), and the values of merged and
withheld cells must stay inside the gate.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from meetpunt.domain.findings import Finding
from meetpunt.privacy.model import Party
from meetpunt.register.schema import disclosure_release

AREA_LEVELS: tuple[str, ...] = ("street", "pc6", "pc4", "pc3", "municipality")
"""The area tree's levels, fine to coarse."""

MIN_CONNECTIONS = "PRV-6.min_connections"
DOMINANCE = "PRV-6.dominance"
DIFFERENCING = "PRV-6.differencing"
POPULATION = "UC14.population"

PreviousSets = Callable[[str, str], Sequence[frozenset[int]]]
"""``previous(level, area)``: connection sets released before for that area (one period)."""


@dataclass(frozen=True)
class Contribution:
    """One connection's contribution to a cell's sum.

    ``areas`` maps every level the caller knows (at least the requested level and all
    coarser ones) to the connection's area code there, e.g. ``{"street":
    "5678AB:Dorpsstraat", "pc6": "5678AB", "pc4": "5678", "pc3": "567",
    "municipality": "Meetdorp"}``; give the finer levels too, so the differencing
    check sees earlier releases at those levels. Several contributions of one
    connection are summed. ``dynamic``: has a dynamic contract (UC14); ``None`` =
    unknown, counted as neither.
    """

    connection: int
    areas: Mapping[str, str]
    value: float
    dynamic: bool | None = None


@dataclass(frozen=True)
class Cell:
    """An area at one level with the sum of its connections' contributions.

    ``residual`` marks "the rest of" ``area``: only the connections of its children that
    could not be shown themselves. ``connections`` is for the audit and the release
    history only; never ship it.
    """

    level: str
    area: str
    connections: frozenset[int]
    value: float
    residual: bool = False

    @property
    def n(self) -> int:
        return len(self.connections)


@dataclass(frozen=True)
class DisclosureRules:
    """PRV-6 thresholds (docs/requirements.md, aggregation thresholds: ≥ 10 connections, no
    connection above 50 %).

    ``min_dynamic`` / ``min_non_dynamic``: UC14's ≥ 10 dynamic and ≥ 10 non-dynamic
    contracts per area (``None``: no such rule).
    """

    min_connections: int = 10
    dominance: float = 0.5
    min_dynamic: int | None = None
    min_non_dynamic: int | None = None

    def __post_init__(self) -> None:
        if self.min_connections < 1:
            raise ValueError("min_connections must be at least 1")
        if not 0 < self.dominance <= 1:
            raise ValueError("dominance must be a share in (0, 1]")

    @classmethod
    def uc14(cls) -> DisclosureRules:
        """UC14's research data set: ≥ 10 dynamic and ≥ 10 non-dynamic per area."""
        return cls(min_dynamic=10, min_non_dynamic=10)

    @property
    def population(self) -> bool:
        return self.min_dynamic is not None or self.min_non_dynamic is not None


@dataclass(frozen=True)
class Merge:
    """A cell that could not be shown went into ``into``, the residual one level up."""

    cell: Cell
    into: Cell


@dataclass(frozen=True)
class Release:
    """What :func:`release` decided.

    ``cells``: may be shown (their level, area, value and ``n``); ``merged``: which
    failing cells went into which residual; ``withheld``: cells that could not be shown
    even at the top level (or UC14 areas, withheld whole); ``findings``: why.
    """

    level: str
    cells: tuple[Cell, ...]
    merged: tuple[Merge, ...] = ()
    withheld: tuple[Cell, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule IDs of the findings, each once, in first-seen order."""
        return tuple(dict.fromkeys(f.rule for f in self.findings))


@dataclass
class _Connection:
    areas: Mapping[str, str]
    value: float
    dynamic: bool | None


def _by_connection(
    contributions: Iterable[Contribution], needed: Sequence[str]
) -> dict[int, _Connection]:
    parts: dict[int, list[Contribution]] = defaultdict(list)
    for c in contributions:
        missing = [lvl for lvl in needed if not c.areas.get(lvl)]
        if missing:
            raise ValueError(f"connection {c.connection}: no area at level {', '.join(missing)}")
        unknown = sorted(set(c.areas) - set(AREA_LEVELS))
        if unknown:
            raise ValueError(f"connection {c.connection}: unknown area level {', '.join(unknown)}")
        if not math.isfinite(c.value):
            raise ValueError(f"connection {c.connection}: value is not a finite number")
        parts[c.connection].append(c)
    out: dict[int, _Connection] = {}
    for conn, items in parts.items():
        first = items[0]
        if any(dict(i.areas) != dict(first.areas) for i in items[1:]):
            raise ValueError(f"connection {conn}: contributions name different areas")
        dynamics = {i.dynamic for i in items}
        if len(dynamics) > 1:
            raise ValueError(f"connection {conn}: contributions disagree on 'dynamic'")
        out[conn] = _Connection(dict(first.areas), math.fsum(i.value for i in items), first.dynamic)
    return out


def _describe(cell: Cell) -> str:
    return f"the rest of {cell.level} {cell.area}" if cell.residual else f"{cell.level} {cell.area}"


class _Checker:
    def __init__(
        self,
        conns: Mapping[int, _Connection],
        rules: DisclosureRules,
        previous: PreviousSets | None,
    ) -> None:
        self.conns = conns
        self.rules = rules
        self.previous = previous
        self._cache: dict[tuple[str, str], Sequence[frozenset[int]]] = {}

    def cell(self, level: str, area: str, members: Iterable[int], residual: bool) -> Cell:
        connections = frozenset(members)
        value = math.fsum(self.conns[c].value for c in sorted(connections))
        return Cell(level, area, connections, value, residual)

    def population(self, cell: Cell) -> Finding | None:
        rules = self.rules
        dynamic = sum(1 for c in cell.connections if self.conns[c].dynamic is True)
        fixed = sum(1 for c in cell.connections if self.conns[c].dynamic is False)
        short = (rules.min_dynamic is not None and dynamic < rules.min_dynamic) or (
            rules.min_non_dynamic is not None and fixed < rules.min_non_dynamic
        )
        if not short:
            return None
        return Finding(
            POPULATION,
            f"{_describe(cell)}: fewer than {rules.min_dynamic} dynamic or fewer than "
            f"{rules.min_non_dynamic} non-dynamic contracts; not released",
        )

    def _earlier(self, level: str, area: str) -> Sequence[frozenset[int]]:
        assert self.previous is not None
        key = (level, area)
        if key not in self._cache:
            self._cache[key] = self.previous(level, area)
        return self._cache[key]

    def _differs_slightly(self, cell: Cell) -> bool:
        if self.previous is None:
            return False
        k = self.rules.min_connections
        labels = {
            (lvl, code)
            for c in cell.connections
            for lvl, code in self.conns[c].areas.items()
            if lvl in AREA_LEVELS
        }
        for level, area in sorted(labels):
            for earlier in self._earlier(level, area):
                if 0 < len(cell.connections ^ earlier) < k:
                    return True
        return False

    def check(self, cell: Cell) -> list[Finding]:
        rules = self.rules
        k = rules.min_connections
        where = _describe(cell)
        found: list[Finding] = []
        if cell.n < k:
            found.append(Finding(MIN_CONNECTIONS, f"{where}: fewer than {k} connections"))
        magnitudes = [abs(self.conns[c].value) for c in cell.connections]
        total = math.fsum(magnitudes)
        if total > 0 and max(magnitudes) > rules.dominance * total:
            found.append(
                Finding(
                    DOMINANCE,
                    f"{where}: one connection contributes more than "
                    f"{rules.dominance:.0%} of the cell's total",
                )
            )
        if self._differs_slightly(cell):
            found.append(
                Finding(
                    DIFFERENCING,
                    f"{where}: differs from an earlier release for the same period by "
                    f"fewer than {k} connections",
                )
            )
        if cell.residual and rules.population:
            pop = self.population(cell)
            if pop is not None:
                found.append(pop)
        return found


def release(
    contributions: Iterable[Contribution],
    level: str,
    rules: DisclosureRules | None = None,
    previous: PreviousSets | None = None,
) -> Release:
    """Decide which cells of the sums per ``level`` area may leave the gate (PRV-6).

    See the module docstring for the algorithm. ``previous(level, area)`` gives the
    connection sets released before for the same period (see
    :meth:`ReleaseHistory.lookup`); without it there is no differencing check. Raises
    ``ValueError`` for an unknown level or a contribution without an area at ``level``
    or a coarser level.
    """
    if level not in AREA_LEVELS:
        raise ValueError(f"unknown area level {level!r}; expected one of {AREA_LEVELS}")
    rules = rules or DisclosureRules()
    start = AREA_LEVELS.index(level)
    conns = _by_connection(contributions, AREA_LEVELS[start:])
    checker = _Checker(conns, rules, previous)

    groups: dict[str, list[int]] = defaultdict(list)
    for conn, info in conns.items():
        groups[info.areas[level]].append(conn)

    shown: list[Cell] = []
    merged: list[Merge] = []
    withheld: list[Cell] = []
    findings: list[Finding] = []

    pending: list[Cell] = []
    for area in sorted(groups):
        cell = checker.cell(level, area, groups[area], residual=False)
        pop = checker.population(cell) if rules.population else None
        if pop is not None:
            findings.append(pop)
            withheld.append(cell)
        else:
            pending.append(cell)

    for i in range(start, len(AREA_LEVELS)):
        failing: list[Cell] = []
        for cell in pending:
            problems = checker.check(cell)
            if problems:
                findings.extend(problems)
                failing.append(cell)
            else:
                shown.append(cell)
        if i + 1 == len(AREA_LEVELS):
            withheld.extend(failing)
            break
        parent = AREA_LEVELS[i + 1]
        members: dict[str, set[int]] = defaultdict(set)
        sources: dict[str, list[Cell]] = defaultdict(list)
        for cell in failing:
            for area in sorted({conns[c].areas[parent] for c in cell.connections}):
                sources[area].append(cell)
            for c in cell.connections:
                members[conns[c].areas[parent]].add(c)
        pending = []
        for area in sorted(members):
            residual = checker.cell(parent, area, members[area], residual=True)
            pending.append(residual)
            merged.extend(Merge(child, residual) for child in sources[area])
    return Release(level, tuple(shown), tuple(merged), tuple(withheld), tuple(findings))


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(UTC)


class ReleaseHistory:
    """The released cells' connection sets, in the register table ``disclosure_release``.

    ``db`` is the SQLAlchemy connection of a register transaction (``session.db``).
    Typical use in the gate::

        outcome = release(contributions, "pc4", rules,
                          ReleaseHistory.lookup(db, None, start, end))
        ReleaseHistory.record(db, purpose, party, outcome, start, end, now)

    ``purpose=None`` looks across all purposes -- the safe choice when releases for
    different purposes can reach the same hands.
    """

    @staticmethod
    def previous(
        db: Connection,
        purpose: str | None,
        level: str,
        area: str,
        period_start: datetime,
        period_end: datetime,
    ) -> list[frozenset[int]]:
        """The connection sets released before for ``level``/``area`` and exactly this
        period (for ``purpose``, or any purpose when ``None``), oldest first."""
        t = disclosure_release
        query = (
            select(t.c.connections)
            .where(
                t.c.area_level == level,
                t.c.area == area,
                t.c.period_start == _utc(period_start, "period_start"),
                t.c.period_end == _utc(period_end, "period_end"),
            )
            .order_by(t.c.id)
        )
        if purpose is not None:
            query = query.where(t.c.purpose == purpose)
        return [frozenset(int(c) for c in json.loads(row)) for row in db.scalars(query)]

    @staticmethod
    def lookup(
        db: Connection,
        purpose: str | None,
        period_start: datetime,
        period_end: datetime,
    ) -> PreviousSets:
        """``previous`` bound to one period, as :func:`release` wants it."""

        def previous(level: str, area: str) -> list[frozenset[int]]:
            return ReleaseHistory.previous(db, purpose, level, area, period_start, period_end)

        return previous

    @staticmethod
    def record(
        db: Connection,
        purpose: str,
        party: Party | str,
        outcome: Release,
        period_start: datetime,
        period_end: datetime,
        at: datetime,
    ) -> int:
        """Store the shown cells of ``outcome`` (merged and withheld cells were not
        released); the connections as a sorted JSON list. Returns the rows written."""
        party_id = party.id if isinstance(party, Party) else party
        start = _utc(period_start, "period_start")
        end = _utc(period_end, "period_end")
        released_at = _utc(at, "at")
        rows = [
            {
                "purpose": purpose,
                "party": party_id,
                "area_level": cell.level,
                "area": cell.area,
                "period_start": start,
                "period_end": end,
                "connections": json.dumps(sorted(cell.connections)),
                "released_at": released_at,
            }
            for cell in outcome.cells
        ]
        if rows:
            db.execute(insert(disclosure_release), rows)
        return len(rows)
