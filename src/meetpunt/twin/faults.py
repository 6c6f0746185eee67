"""Faults and irregularities injected into the twin, each recorded in the truth.

Outages (cable faults cutting part of or a whole feeder, substation outages from the
MV grid, planned work, a blown cabinet fuse), with lengths on both sides of the 4-hour
compensation threshold; registration errors (GIS phase and feeder, solar capacity not
registered or no longer matching); contractless and out-of-service connections that
still consume; a broken neutral (an unsafe situation, UC12); meter swaps. Everything
here is drawn from the rng handed in, and scales with region size and period length.

Three outage modes (issue 16), the registration errors the same in each:

* ``showcase``: the demo's story, a fixed mix (one substation, cable faults, planned
  work, fuses per 1,000 connections and month), each on its own feeder, inside the period.
* ``field``: outages as a random process, with the rates and durations of the
  ``twin_outages`` rule file (calibrated to the national reliability figures): counts
  and mixes differ per seed, a month of 1,000 connections is often quiet, and outages
  may overlap, repeat, reclose, cross midnight, the DST change or the period's edges as
  chance has it.
* ``stress``: the field process twenty times as often, plus several of every hard case
  built on purpose: overlapping faults on feeders of one substation, a cable fault still
  open when the MV feed fails, a fuse in a feeder that is down, reclosing, a second fault
  the same day, outages across midnight, the DST change and both edges of the period.

Every outage carries its case classes (:func:`case_classes`, from its geometry, not
from the intent that placed it), so each use case can be scored per class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final
from zoneinfo import ZoneInfo

import numpy as np

from meetpunt.errors import RulesDataError, TwinError
from meetpunt.rulebook import load_rules
from meetpunt.twin.model import STEP_S, ConnectionKind, Interruption, TimeAxis
from meetpunt.twin.topology import Region

#: The outage modes of ``twin generate --faults`` and ``demo --faults``.
FAULT_MODES: Final = ("showcase", "field", "stress")
#: The case classes an outage can carry (see :func:`case_classes`).
CASE_CLASSES: Final = (
    "plain",
    "overlapping",
    "nested",
    "reclosing",
    "repeated",
    "short",
    "crosses_midnight",
    "crosses_dst",
    "starts_before_period",
    "ends_after_period",
)
#: How far before the period the field process lets an outage start.
LEAD_S: Final = 24 * 3600
#: A meter logs only failures longer than this (the long-failure threshold of the meters).
SHORT_S: Final = 180
#: ``--faults stress`` runs the field process this many times as often.
STRESS_INTENSITY: Final = 20.0
_LOCAL = ZoneInfo("Europe/Amsterdam")

# hours: a mix on both sides of the 4 h threshold, and past 8 h and 12 h
# drawn in this order, so even a small run has faults on both sides of 4 h, 8 h and 12 h
CABLE_FAULT_HOURS = (0.75, 4.5, 2.5, 9.0, 13.0, 1.5, 5.5, 3.5, 7.0)
SUBSTATION_HOURS = (2.2, 1.2, 4.8, 3.0)
PLANNED_HOURS = (3.0, 4.5, 6.0)
FUSE_HOURS = (1.0, 2.0, 3.0, 5.0)


@dataclass
class Outage:
    """One outage: what failed, where, when, and whom it cut off (truth for UC1/4/9)."""

    id: str
    cause: str  # cable_fault | substation_outage | planned_work | cabinet_fuse
    extent: str  # single_connection | part_of_feeder | whole_feeder | whole_substation
    grid_level: str  # LV | MV
    planned: bool
    start: datetime
    end: datetime
    substation: str
    feeder: str | None
    affected: list[int]
    cases: tuple[str, ...] = ()
    """The hard-case classes this outage belongs to (:data:`CASE_CLASSES`)."""


@dataclass
class Faults:
    """Everything injected, ready for the physics, the meters, the register and the truth."""

    outages: list[Outage] = field(default_factory=list)
    interruptions: list[Interruption] = field(default_factory=list)
    broken_neutral: set[int] = field(default_factory=set)
    gis_errors: list[dict[str, object]] = field(default_factory=list)
    pv_registration: list[dict[str, object]] = field(default_factory=list)
    contractless: set[int] = field(default_factory=set)
    out_of_service_consuming: set[int] = field(default_factory=set)
    meter_swaps: dict[int, int] = field(default_factory=dict)  # connection -> step


def _when(axis: TimeAxis, hours: float, rng: np.random.Generator) -> tuple[datetime, datetime]:
    """A start at a whole second inside the period so that the outage ends inside it too."""
    span = axis.n_steps * 300 - int(hours * 3600) - 3600
    offset = int(rng.integers(3600, max(span, 3601)))
    start = axis.start_utc + timedelta(seconds=offset)
    return start, start + timedelta(seconds=int(hours * 3600 + rng.integers(-900, 900)))


def _beyond(region: Region, connections: list[int], nodes: list[int]) -> list[int]:
    """The connections hanging on ``nodes`` (the cable beyond a cut)."""
    dark = set(nodes)
    return [i for i in connections if int(region.connections[i].extra["backbone_node"]) in dark]


def inject_faults(
    region: Region,
    axis: TimeAxis,
    rng: np.random.Generator,
    mode: str = "showcase",
    statistics: OutageStatistics | None = None,
) -> Faults:
    """Draw the faults for ``region`` over ``axis`` in ``mode`` (see module docstring)."""
    if mode not in FAULT_MODES:
        raise TwinError(f"unknown fault mode {mode!r}; use one of {', '.join(FAULT_MODES)}")
    faults = Faults()
    if mode == "showcase":
        _showcase(region, axis, rng, faults)
    else:
        stats = statistics or OutageStatistics.load()
        intensity = STRESS_INTENSITY if mode == "stress" else 1.0
        _field(_Placer(region, axis, rng, faults), stats, intensity)
        if mode == "stress":
            _hard_cases(_Placer(region, axis, rng, faults), stats)
    label_cases(faults.outages, axis)
    _registration_errors(region, faults, rng)
    return faults


def _record(
    faults: Faults,
    cause: str,
    extent: str,
    level: str,
    planned: bool,
    start: datetime,
    end: datetime,
    sub: str,
    feeder: str | None,
    affected: Sequence[int],
    cases: tuple[str, ...] = (),
) -> Outage:
    """Add one outage and its interruptions to ``faults``."""
    outage = Outage(
        f"O{len(faults.outages) + 1:04d}",
        cause,
        extent,
        level,
        planned,
        start,
        end,
        sub,
        feeder,
        sorted(affected),
        cases,
    )
    faults.outages.append(outage)
    faults.interruptions.extend(
        Interruption(i, outage.id, start, end, planned) for i in outage.affected
    )
    return outage


def _showcase(region: Region, axis: TimeAxis, rng: np.random.Generator, faults: Faults) -> None:
    """The demo's fixed mix, each outage on its own feeder, inside the period."""
    scale = max(1.0, len(region.connections) / 1000.0) * max(axis.days / 30.0, 0.2)
    feeders = sorted(region.feeders)
    used: set[str] = set()

    def free_feeder() -> str | None:
        options = [f for f in feeders if f not in used and region.feeders[f].connections]
        if not options:
            return None
        chosen = options[int(rng.integers(0, len(options)))]
        used.add(chosen)
        return chosen

    def add(
        cause: str,
        extent: str,
        level: str,
        planned: bool,
        hours: float,
        sub: str,
        feeder: str | None,
        affected: list[int],
    ) -> None:
        start, end = _when(axis, hours, rng)
        _record(faults, cause, extent, level, planned, start, end, sub, feeder, affected)

    for n in range(max(1, round(scale))):
        free = [x for x in region.substations if not any(f in used for f in x.feeders)]
        if len(free) < 2:  # keep at least one substation for the feeder faults
            break
        sub = free[int(rng.integers(0, len(free)))]
        used.update(sub.feeders)
        affected = [i for f in sub.feeders for i in region.feeders[f].connections]
        hours = SUBSTATION_HOURS[n % len(SUBSTATION_HOURS)]
        add("substation_outage", "whole_substation", "MV", False, hours, sub.id, None, affected)
    for n in range(max(1, round(len(CABLE_FAULT_HOURS) * scale * 0.6))):
        fid = free_feeder()
        if fid is None:
            break
        feeder = region.feeders[fid]
        cut = 0 if n % 3 == 0 else int(rng.integers(1, max(2, len(feeder.nodes))))
        affected = _beyond(region, feeder.connections, feeder.nodes[cut:])
        while cut > 0 and len(affected) < 2:  # one dark house looks like a blown cabinet fuse
            cut -= 1
            affected = _beyond(region, feeder.connections, feeder.nodes[cut:])
        extent = "whole_feeder" if cut == 0 else "part_of_feeder"
        hours = CABLE_FAULT_HOURS[n % len(CABLE_FAULT_HOURS)]
        add("cable_fault", extent, "LV", False, hours, feeder.substation, fid, affected)
    for n in range(max(1, round(scale))):
        fid = free_feeder()
        if fid is None:
            break
        feeder = region.feeders[fid]
        add(
            "planned_work",
            "whole_feeder",
            "LV",
            True,
            PLANNED_HOURS[n % len(PLANNED_HOURS)],
            feeder.substation,
            fid,
            list(feeder.connections),
        )
    for n in range(max(2, round(2 * scale))):
        fid = free_feeder()
        if fid is None:
            break
        feeder = region.feeders[fid]
        victim = feeder.connections[int(rng.integers(0, len(feeder.connections)))]
        add(
            "cabinet_fuse",
            "single_connection",
            "LV",
            False,
            FUSE_HOURS[n % len(FUSE_HOURS)],
            feeder.substation,
            fid,
            [victim],
        )


# --- field statistics (issue 16) -------------------------------------------------------


@dataclass(frozen=True)
class OutageClass:
    """One class of the ``twin_outages`` rule file: how often, how long, how far."""

    name: str
    extent: str
    grid_level: str
    planned: bool
    per_1000_per_year: float
    median_min: float
    sigma: float
    min_min: float
    max_min: float
    extra: Mapping[str, float] = field(default_factory=dict)

    def duration_s(self, rng: np.random.Generator) -> int:
        """A log-normal duration in whole seconds, clipped to the class's range."""
        minutes = float(rng.lognormal(np.log(self.median_min), self.sigma))
        return round(min(max(minutes, self.min_min), self.max_min) * 60)


@dataclass(frozen=True)
class OutageStatistics:
    """The ``twin_outages`` rule file: the field rates of each outage class."""

    classes: Mapping[str, OutageClass]
    version: str

    CLASS_NAMES: ClassVar[tuple[str, ...]] = (
        "substation_outage",
        "cable_fault",
        "cabinet_fuse",
        "planned_work",
    )

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any], version: str = "") -> OutageStatistics:
        """Check and type the rule file's ``[classes.*]`` tables."""
        raw = body.get("classes", {})
        missing = [n for n in cls.CLASS_NAMES if n not in raw]
        if missing:
            raise RulesDataError(f"twin_outages: classes missing: {', '.join(missing)}")
        base = {f for f in OutageClass.__dataclass_fields__ if f not in ("name", "extra")}
        classes: dict[str, OutageClass] = {}
        for name in cls.CLASS_NAMES:
            entry = dict(raw[name])
            absent = sorted(base - set(entry))
            if absent:
                raise RulesDataError(f"twin_outages.{name}: missing {', '.join(absent)}")
            numbers = ("per_1000_per_year", "median_min", "sigma", "min_min", "max_min")
            if any(float(entry[k]) < 0 for k in numbers) or entry["min_min"] > entry["max_min"]:
                raise RulesDataError(f"twin_outages.{name}: negative or reversed numbers")
            classes[name] = OutageClass(
                name,
                str(entry["extent"]),
                str(entry["grid_level"]),
                bool(entry["planned"]),
                float(entry["per_1000_per_year"]),
                float(entry["median_min"]),
                float(entry["sigma"]),
                float(entry["min_min"]),
                float(entry["max_min"]),
                extra={k: float(v) for k, v in entry.items() if k not in base},
            )
        return cls(classes, version)

    @classmethod
    def load(cls) -> OutageStatistics:
        """The packaged (or operator's) ``twin_outages`` rule file."""
        loaded = load_rules("twin_outages")
        return cls.from_mapping(loaded.body, version=loaded.meta.version)


class _Placer:
    """Places outages of each extent on the region at given times (field and stress)."""

    def __init__(
        self, region: Region, axis: TimeAxis, rng: np.random.Generator, faults: Faults
    ) -> None:
        self.region = region
        self.axis = axis
        self.rng = rng
        self.faults = faults
        self.feeders = [f for f in sorted(region.feeders) if region.feeders[f].connections]
        self.period_s = axis.n_steps * STEP_S

    def at(self, offset_s: float) -> datetime:
        """The instant ``offset_s`` seconds after the period's start, whole seconds."""
        return self.axis.start_utc + timedelta(seconds=int(offset_s))

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.integers(0, len(options)))]

    def substation(self, start: datetime, end: datetime, sub: str | None = None) -> Outage:
        """The MV feed of a substation fails: all its feeders go dark."""
        sub = sub or self.pick([s.id for s in self.region.substations])
        affected = [i for f in self.region.substations_feeders(sub) for i in self._on(f)]
        return _record(
            self.faults,
            "substation_outage",
            "whole_substation",
            "MV",
            False,
            start,
            end,
            sub,
            None,
            affected,
        )

    def cable(
        self, start: datetime, end: datetime, whole: bool, feeder: str | None = None
    ) -> Outage:
        """A cable fault: the whole feeder, or the cable beyond a cut (at least 2 houses)."""
        fid = feeder or self.pick(self.feeders)
        f = self.region.feeders[fid]
        cut = 0 if whole else int(self.rng.integers(1, max(2, len(f.nodes))))
        affected = _beyond(self.region, f.connections, f.nodes[cut:])
        while cut > 0 and len(affected) < 2:
            cut -= 1
            affected = _beyond(self.region, f.connections, f.nodes[cut:])
        extent = "whole_feeder" if cut == 0 else "part_of_feeder"
        return _record(
            self.faults, "cable_fault", extent, "LV", False, start, end, f.substation, fid, affected
        )

    def fuse(self, start: datetime, end: datetime, feeder: str | None = None) -> Outage:
        """One connection's fuse blows."""
        fid = feeder or self.pick(self.feeders)
        f = self.region.feeders[fid]
        victim = f.connections[int(self.rng.integers(0, len(f.connections)))]
        return _record(
            self.faults,
            "cabinet_fuse",
            "single_connection",
            "LV",
            False,
            start,
            end,
            f.substation,
            fid,
            [victim],
        )

    def planned(self, start: datetime, end: datetime, feeder: str | None = None) -> Outage:
        """Announced work on a whole feeder."""
        fid = feeder or self.pick(self.feeders)
        f = self.region.feeders[fid]
        return _record(
            self.faults,
            "planned_work",
            "whole_feeder",
            "LV",
            True,
            start,
            end,
            f.substation,
            fid,
            list(f.connections),
        )

    def reclosing(self, start: datetime, cls: OutageClass, whole: bool) -> datetime:
        """One to three short interruptions of one cable, minutes apart, from ``start``;
        the start of the lasting fault that follows them."""
        fid = self.pick(self.feeders)
        low = int(cls.extra.get("reclose_min_s", 5))
        high = int(cls.extra.get("reclose_max_s", 120))
        at = start
        for _ in range(int(self.rng.integers(1, 4))):
            short = timedelta(seconds=int(self.rng.integers(low, high + 1)))
            self.cable(at, at + short, whole=True, feeder=fid).cases = ("reclosing",)
            at += short + timedelta(seconds=int(self.rng.integers(30, 301)))
        lasting = self.cable(at, at + timedelta(seconds=cls.duration_s(self.rng)), whole, fid)
        lasting.cases = ("reclosing",)
        return at

    def planned_start(self, cls: OutageClass, offset_s: float) -> datetime:
        """Planned work starts on a working day at a whole quarter-hour in working hours."""
        day = (self.at(offset_s).astimezone(_LOCAL)).date()
        while day.weekday() >= 5:
            day += timedelta(days=1)
        first = int(cls.extra.get("first_hour", 8))
        last = int(cls.extra.get("last_hour", 13))
        minute = int(self.rng.integers(first * 4, last * 4 + 1)) * 15
        local = datetime(day.year, day.month, day.day, tzinfo=_LOCAL)
        return (local + timedelta(minutes=minute)).astimezone(UTC)

    def _on(self, feeder: str) -> list[int]:
        return list(self.region.feeders[feeder].connections)


def _field(placer: _Placer, stats: OutageStatistics, intensity: float) -> None:
    """Outages as Poisson processes per class over the period and a day before it."""
    rng = placer.rng
    window_s = placer.period_s + LEAD_S
    years = window_s / (365.25 * 86400)
    thousands = len(placer.region.connections) / 1000.0
    for name in OutageStatistics.CLASS_NAMES:
        cls = stats.classes[name]
        for _ in range(int(rng.poisson(cls.per_1000_per_year * thousands * years * intensity))):
            offset = float(rng.uniform(-LEAD_S, placer.period_s))
            if name == "planned_work":
                start = placer.planned_start(cls, offset)
                placer.planned(start, start + timedelta(seconds=cls.duration_s(rng)))
                continue
            start = placer.at(offset)
            end = start + timedelta(seconds=cls.duration_s(rng))
            if name == "substation_outage":
                placer.substation(start, end)
            elif name == "cabinet_fuse":
                placer.fuse(start, end)
            else:
                whole = float(rng.random()) < cls.extra.get("whole_feeder_share", 0.35)
                if float(rng.random()) < cls.extra.get("reclosing_share", 0.0):
                    placer.reclosing(start, cls, whole)
                else:
                    placer.cable(start, end, whole)


def _hard_cases(placer: _Placer, stats: OutageStatistics) -> None:
    """Several of every hard case, each placed on purpose (``--faults stress``)."""
    rng = placer.rng
    region = placer.region
    cable = stats.classes["cable_fault"]
    hour = 3600.0
    span = max(placer.period_s - 2 * 86400, hour)
    thousands = max(1.0, len(region.connections) / 1000.0)
    subs = [s for s in region.substations if len(region.substations_feeders(s.id)) >= 2]

    def inside() -> float:
        return float(rng.uniform(86400, 86400 + span))

    def lasting() -> timedelta:
        return timedelta(seconds=cable.duration_s(rng))

    for _ in range(max(2, round(2 * thousands))):
        # two cable faults on feeders of one substation, overlapping in time
        if subs:
            sub = subs[int(rng.integers(0, len(subs)))]
            a, b = rng.choice(region.substations_feeders(sub.id), size=2, replace=False)
            first = placer.at(inside())
            placer.cable(first, first + timedelta(hours=3), False, feeder=str(a))
            second = first + timedelta(minutes=int(rng.integers(10, 120)))
            placer.cable(second, second + lasting(), False, feeder=str(b))
            # a cable fault still open when the MV feed of its substation fails
            f = str(rng.choice(region.substations_feeders(sub.id)))
            start = placer.at(inside())
            placer.cable(start, start + timedelta(hours=4), False, feeder=f)
            mv = start + timedelta(minutes=int(rng.integers(20, 150)))
            placer.substation(mv, mv + timedelta(minutes=int(rng.integers(30, 120))), sub.id)
        # a fuse blows in a feeder that is down with a cable fault
        f = placer.pick(placer.feeders)
        start = placer.at(inside())
        placer.cable(start, start + timedelta(hours=3), True, feeder=f)
        fuse_at = start - timedelta(minutes=int(rng.integers(10, 60)))
        placer.fuse(fuse_at, fuse_at + timedelta(hours=5), feeder=f)
        # reclosing onto a fault, and a second fault on the same feeder the same day
        placer.reclosing(placer.at(inside()), cable, whole=False)
        f = placer.pick(placer.feeders)
        morning = _local_offset(placer, inside(), 7)
        placer.cable(morning, morning + timedelta(minutes=50), True, feeder=f)
        afternoon = morning + timedelta(hours=int(rng.integers(4, 9)))
        placer.cable(afternoon, afternoon + timedelta(minutes=95), False, feeder=f)
        # across local midnight
        late = _local_offset(placer, inside(), 23) + timedelta(minutes=int(rng.integers(0, 50)))
        placer.cable(late, late + lasting() + timedelta(hours=1), False)
        # across both edges of the period
        before = placer.at(-float(rng.uniform(hour, 6 * hour)))
        placer.cable(before, placer.at(float(rng.uniform(hour, 8 * hour))), True)
        after = placer.at(placer.period_s - float(rng.uniform(hour, 5 * hour)))
        placer.substation(after, placer.at(placer.period_s + float(rng.uniform(hour, 9 * hour))))
        # across a DST change, where the period has one
        for change in _dst_changes(placer.axis):
            start = change - timedelta(minutes=int(rng.integers(20, 100)))
            placer.cable(start, change + timedelta(minutes=int(rng.integers(20, 160))), False)


def _local_offset(placer: _Placer, offset_s: float, hour: int) -> datetime:
    """``hour`` o'clock local time on the local day of ``offset_s`` (as UTC)."""
    day = placer.at(offset_s).astimezone(_LOCAL).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=_LOCAL).astimezone(UTC)


def _dst_changes(axis: TimeAxis) -> list[datetime]:
    """The UTC instants inside ``axis`` where Dutch clocks change (last Sundays of
    March and October, 01:00 UTC)."""
    end = axis.start_utc + timedelta(seconds=axis.n_steps * STEP_S)
    out = []
    for year in range(axis.start_utc.year, end.year + 1):
        for month in (3, 10):
            last = datetime(year, month, 31, 1, tzinfo=UTC)
            change = last - timedelta(days=(last.weekday() + 1) % 7)
            if axis.start_utc < change < end:
                out.append(change)
    return out


def case_classes(outage: Outage, others: Sequence[Outage], axis: TimeAxis) -> tuple[str, ...]:
    """The hard-case classes of ``outage`` among ``others`` (issue 16), from geometry:
    ``overlapping`` (another outage of its substation at the same time), ``nested`` (it
    shares a connection with such an outage, so the meters see one interruption),
    ``repeated`` (another outage of its feeder, or its substation for MV, the same local
    day without overlapping), ``short`` (not longer than the meters' 3-minute log
    threshold: counted, not logged), across ``crosses_midnight`` or ``crosses_dst``, and
    ``starts_before_period`` / ``ends_after_period``; ``plain`` when none holds.
    ``reclosing`` is kept when the outage was placed as one."""
    found = {c for c in outage.cases if c == "reclosing"}
    mine = set(outage.affected)
    day = outage.start.astimezone(_LOCAL).date()
    for other in others:
        if other is outage:
            continue
        same_place = other.substation == outage.substation
        overlap = other.start < outage.end and outage.start < other.end
        if same_place and overlap:
            found.add("overlapping")
            if mine & set(other.affected):
                found.add("nested")
        elif not overlap and (
            other.start.astimezone(_LOCAL).date() == day
            and (other.feeder == outage.feeder if outage.feeder else same_place)
        ):
            found.add("repeated")
    if (outage.end - outage.start).total_seconds() <= SHORT_S:
        found.add("short")
    if outage.end.astimezone(_LOCAL).date() != day:
        found.add("crosses_midnight")
    if outage.start.astimezone(_LOCAL).utcoffset() != outage.end.astimezone(_LOCAL).utcoffset():
        found.add("crosses_dst")
    end = axis.start_utc + timedelta(seconds=axis.n_steps * STEP_S)
    if outage.start < axis.start_utc:
        found.add("starts_before_period")
    if outage.end > end:
        found.add("ends_after_period")
    return tuple(c for c in CASE_CLASSES if c in found) or ("plain",)


def label_cases(outages: Sequence[Outage], axis: TimeAxis) -> None:
    """Set every outage's :attr:`Outage.cases` (see :func:`case_classes`)."""
    labels = [case_classes(o, outages, axis) for o in outages]
    for outage, cases in zip(outages, labels, strict=True):
        outage.cases = cases


def _registration_errors(region: Region, faults: Faults, rng: np.random.Generator) -> None:
    conns = region.connections
    hosts = {p.primary_index for p in region.secondary_points}
    for conn in conns:
        roll = float(rng.random())
        if conn.phase is not None and roll < 0.03:
            wrong = (conn.phase + int(rng.integers(1, 3))) % 3
            conn.registered_phase = wrong
            faults.gis_errors.append(
                {
                    "connection": conn.index,
                    "kind": "phase",
                    "true": f"L{conn.phase + 1}",
                    "registered": f"L{wrong + 1}",
                }
            )
        elif 0.03 <= roll < 0.04:
            siblings = [f for f in region.substations_feeders(conn.substation) if f != conn.feeder]
            if siblings:
                wrong_feeder = siblings[int(rng.integers(0, len(siblings)))]
                conn.registered_feeder = wrong_feeder
                faults.gis_errors.append(
                    {
                        "connection": conn.index,
                        "kind": "feeder",
                        "true": conn.feeder,
                        "registered": wrong_feeder,
                    }
                )
        pv_roll = float(rng.random())
        if conn.pv_kwp > 0 and pv_roll < 0.12:
            conn.registered_pv_kwp = None
            faults.pv_registration.append(
                {
                    "connection": conn.index,
                    "kind": "not_registered",
                    "true_kwp": conn.pv_kwp,
                    "registered_kwp": None,
                }
            )
        elif conn.pv_kwp > 0 and pv_roll < 0.18:
            registered = round(conn.pv_kwp * float(rng.choice([0.4, 0.5, 2.0])), 2)
            conn.registered_pv_kwp = registered
            faults.pv_registration.append(
                {
                    "connection": conn.index,
                    "kind": "mismatch",
                    "true_kwp": conn.pv_kwp,
                    "registered_kwp": registered,
                }
            )
        elif conn.pv_kwp == 0 and conn.kind is ConnectionKind.HOUSEHOLD and pv_roll < 0.01:
            conn.registered_pv_kwp = round(float(rng.uniform(2, 5)), 2)
            faults.pv_registration.append(
                {
                    "connection": conn.index,
                    "kind": "removed",
                    "true_kwp": 0.0,
                    "registered_kwp": conn.registered_pv_kwp,
                }
            )
        other = float(rng.random())
        if conn.index in hosts:  # keep SAP hosts in service: their SAPs would lapse
            other = 1.0
        if other < 0.015:
            faults.contractless.add(conn.index)
        elif other < 0.02:
            faults.out_of_service_consuming.add(conn.index)
        elif other < 0.03 and conn.meter.smart:
            faults.meter_swaps[conn.index] = -1  # step chosen by the meter post-processing
        if conn.phase is not None and float(rng.random()) < 0.002:
            faults.broken_neutral.add(conn.index)
    if not faults.broken_neutral:
        singles = [c.index for c in conns if c.phase is not None]
        if singles:
            faults.broken_neutral.add(singles[int(rng.integers(0, len(singles)))])
