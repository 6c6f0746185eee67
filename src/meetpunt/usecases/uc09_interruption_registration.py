"""UC9 Interruption registration (Nestor) from the meters' power failure logs.

UC9 of the use-case list: per outage the affected customers, start, end and duration for the
national outage register (Nestor), and the reliability figures derived from them. The
only data read is ``power_failure_log`` (DSMR 1-0:99.97.0: END of each long failure
and its duration), asked once from the privacy gate for every in-service electricity
connection with a smart meter (optionally one municipality or postcode-4 area). UC9 is
grid management, so an administrative opt-out does not stop it (PRV-3). Each meter's
feeder is UC1's street rule (:mod:`meetpunt.usecases.grid`), so an outage names the
feeder that failed even when a registration error names another. A logged interruption
that the meter's feeder neighbours contradict (they had voltage for more than a day of
it) is set aside for review instead of counted (MTR-5.contradicted_interruption).

What counts (issue 16): the figures count the unplanned interruptions longer than 3
minutes -- the meters log only those (0-0:96.7.9 long failures), and the national
register reports short ones separately, if at all. An outage the operator's work
planning covers (the ``planned`` works, as UC1 and UC4 take them) is registered as
planned and counted in :attr:`Uc09Result.planned_figures`, not in the figures, as the
national register reports planned interruptions separately.

Everything except :func:`register_interruptions`' gate call is a pure function over
plain values or Arrow tables.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from meetpunt import rulebook
from meetpunt.domain.calendar import to_local
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import ConnectionVersion, MeterType, PhysicalStatus
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Party, Period, stored_utc
from meetpunt.usecases.common import ask
from meetpunt.usecases.grid import GridSpot, Neighbour, on_the_grid, street_feeders
from meetpunt.usecases.planned_works import PlannedWork

PURPOSE = "UC9"
KIND = "power_failure_log"
CONTRADICTED = "MTR-5.contradicted_interruption"
UNCORROBORATED_MAX_S = 24 * 3600
"""Default of ``vee_rules`` [plausibility] uncorroborated_max_h, for the pure calls."""
SOURCE = "meter power failure log (1-0:99.97.0)"
COUNTED_LONGER_THAN_S = 180
"""The figures count customer interruptions longer than 3 minutes (the national
register's long interruptions; DSMR logs only those, 0-0:96.7.9): a shorter entry,
e.g. of a reclosing, is registered but not counted (issue 16)."""
SIMULTANEOUS_S = 60
"""Entries of one substation belong to one outage only when they overlap and start within
this many seconds of each other (issue 16): a fault takes its meters down at once, on one
feeder or (a substation/MV outage) on every feeder. An overlapping entry that started
clearly earlier or later is another fault nested in it (a fuse inside a feeder that is
down, a cable fault still open when the MV feed fails) and is registered apart."""


RESTORED_LATER_S = 15 * 60
"""Part of one feeder that stays dark this much longer than the rest of a substation
outage, while the rest of that feeder came back with the substation, had a fault of its
own begun inside the outage (issue 16; our choice: feeder-by-feeder switching after an
MV fault restores whole feeders minutes apart, not part of a feeder)."""


CLOCK_DRIFT_MAX_S = 10 * 60
"""The largest clock error UC9 corrects (issue 16; our choice): a DSMR meter's clock is
synced by the head-end, so one that is off is off by seconds to minutes. An entry whose
times are further off than this from an outage's agreeing meters is another fault."""
CLOCK_RATE_MAX_S_PER_DAY = 10
"""How fast a meter's clock may run off (our choice, above the few seconds a day of a
quartz clock): the bound on the error of a logged DURATION, which the meter measures
with its own clock while unpowered (no sync meanwhile)."""
AGREE_S = 0
"""Meters whose logged start and end lie within this many seconds of each other agree
(issue 16): a fault takes its meters down and up at the same second, so meters with a
right clock log the same times, and one a second or two off has drifted."""
CLOCK_AGREED = "agreed"
"""The entry's times agree with at least one other meter of its outage (issue 16)."""
CLOCK_CORRECTED = "corrected"
"""The entry's times were set to its outage's agreeing meters' (a drifted clock)."""
CLOCK_ALONE = "alone"
"""No other meter to compare with: the meter's own times are registered."""


def duration_error_s(duration_s: int) -> int:
    """The most a drifting clock can have stretched or shrunk a logged duration:
    :data:`CLOCK_RATE_MAX_S_PER_DAY` over the duration, plus a second of rounding."""
    return 1 + (duration_s * CLOCK_RATE_MAX_S_PER_DAY) // 86_400


class Uc09Error(MeetpuntError):
    """The gate refused UC9; ``rules`` carries the decision's rule IDs."""


@dataclass(frozen=True)
class LogEntry:
    """One 1-0:99.97.0 entry of one meter: start = end - duration (UTC)."""

    ean: str
    substation: str
    feeder: str
    start: datetime
    end: datetime
    duration_s: int
    clock_corrected_s: int = 0
    """Seconds the meter's clock was ahead (negative: behind) and taken off (issue 16)."""
    clock: str = CLOCK_ALONE
    """Whether other meters confirm its times: ``agreed``, ``corrected`` or ``alone``."""


@dataclass(frozen=True)
class CustomerInterruption:
    """One customer's part of an outage, as its meter logged it (with its clock
    corrected to its outage's other meters when it drifted, issue 16)."""

    ean: str
    feeder: str
    start: datetime
    end: datetime
    duration_s: int
    clock_corrected_s: int = 0
    """Seconds taken off the meter's logged END (and start) to match the outage's
    agreeing meters: its clock was that far ahead (negative: behind)."""
    clock: str = CLOCK_ALONE
    """``agreed`` (other meters logged the same times), ``corrected`` or ``alone``
    (no meter to compare with: its own times, which a drifting clock may carry)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.ean,
            "feeder": self.feeder,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "duration_s": self.duration_s,
            "clock_corrected_s": self.clock_corrected_s,
            "clock": self.clock,
        }


@dataclass(frozen=True)
class Outage:
    """One registered outage (UC9): its substation, feeders and affected customers."""

    id: str
    substation: str
    feeders: tuple[str, ...]
    customers: tuple[CustomerInterruption, ...]
    start: datetime
    end: datetime
    source: str = SOURCE
    planned: PlannedWork | None = None
    """The planned work in the operator's planning that covers this outage, if any."""

    @property
    def affected(self) -> int:
        return len(self.customers)

    @property
    def duration_s(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def customer_minutes(self) -> float:
        return sum(c.duration_s for c in self.customers) / 60

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "substation": self.substation,
            "feeders": list(self.feeders),
            "affected_customers": self.affected,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "duration_s": self.duration_s,
            "customer_minutes_lost": round(self.customer_minutes, 3),
            "source": self.source,
            "planned": None if self.planned is None else self.planned.as_dict(),
            "customers": [c.as_dict() for c in self.customers],
        }


@dataclass(frozen=True)
class ReliabilityFigures:
    """IEEE 1366-style indices of the population over the period (UC9).

    N = customers served, CI = customer interruptions (customer, outage pairs),
    CML = customer minutes lost (sum of each customer's logged duration, minutes).
    SAIFI = CI / N; CAIDI = CML / CI (minutes per interruption); SAIDI = CML / N
    (minutes per customer in the period); ``saidi_per_year`` = SAIDI x 365.25 / days.
    An index whose denominator is 0 is ``None``.
    """

    customers_served: int
    customer_interruptions: int
    customer_minutes_lost: float
    period_days: float
    saifi: float | None
    caidi_min: float | None
    saidi_min: float | None
    saidi_min_per_year: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "customers_served": self.customers_served,
            "customer_interruptions": self.customer_interruptions,
            "customer_minutes_lost": round(self.customer_minutes_lost, 3),
            "period_days": round(self.period_days, 6),
            "saifi": self.saifi,
            "caidi_min": self.caidi_min,
            "saidi_min": self.saidi_min,
            "saidi_min_per_year": self.saidi_min_per_year,
        }


@dataclass(frozen=True)
class Uc09Result:
    """What UC9 registers for one period: the outages and the reliability figures."""

    period: Period
    area: str | None
    outages: tuple[Outage, ...]
    figures: ReliabilityFigures
    entries_read: int
    audit_seq: int | None
    doubted: tuple[Doubted, ...] = ()
    """Interruptions set aside for review (MTR-5.contradicted_interruption)."""
    planned_figures: ReliabilityFigures | None = None
    """The same figures over the planned outages only (reported separately)."""

    @property
    def unplanned(self) -> tuple[Outage, ...]:
        """The outages the figures count."""
        return tuple(o for o in self.outages if o.planned is None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "use_case": PURPOSE,
            "period": {
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
            },
            "area": self.area,
            "source": SOURCE,
            "entries_read": self.entries_read,
            "audit_seq": self.audit_seq,
            "outages": [o.as_dict() for o in self.outages],
            "figures": self.figures.as_dict(),
            "planned_figures": None
            if self.planned_figures is None
            else self.planned_figures.as_dict(),
            "doubted": [d.as_dict() for d in self.doubted],
        }


def in_population(version: ConnectionVersion, area: str | None = None) -> bool:
    """UC9's population: an in-service electricity connection with a smart meter,
    in ``area`` (municipality or postcode-4) when one is given."""
    a = version.attributes
    if version.commodity is not Commodity.ELECTRICITY:
        return False
    if a.status is not PhysicalStatus.IN_SERVICE or a.meter_type is not MeterType.SMART:
        return False
    if area is None:
        return True
    wanted = area.strip().casefold()
    return wanted in (a.address.municipality.casefold(), a.address.postcode[:4].casefold())


def population(
    versions: Iterable[ConnectionVersion],
    area: str | None = None,
    confirmed: Collection[str] = frozenset(),
) -> dict[str, GridSpot]:
    """The population's EANs with their grid position, in EAN order: the registered
    substation, and the feeder UC1's street rule places the meter on (a suspected GIS
    feeder error is registered on the feeder its street is on), judged over every
    in- or out-of-service electricity connection of the substation. A ``confirmed`` UC7
    correction (issue 19) is the grid position as registered; the street rule is the
    fallback for the rest."""
    kept = [v for v in sorted(versions, key=lambda v: v.ean) if on_the_grid(v)]
    feeders = street_feeders((Neighbour.of(v) for v in kept), confirmed)
    return {
        v.ean: GridSpot(v.attributes.grid.substation, feeders[v.ean])
        for v in kept
        if in_population(v, area)
    }


def log_entries(
    table: pa.Table,
    eans: Mapping[int, str],
    spots: Mapping[str, GridSpot],
    period: Period,
) -> list[LogEntry]:
    """The log rows (``connection``, ``end``, ``duration_s``) as entries with their
    start (end - duration) and grid position: only those that END in ``period`` (start
    exclusive, end inclusive), each once (issue 16).

    A meter writes an entry when the voltage returns, so an interruption belongs to the
    period it ended in: one still running at the period's end is the next period's, and
    one that began before the period is this one's. Back-to-back periods therefore
    read every entry exactly once, and an entry read twice (the same meter, end and
    duration from two reads of its log) is one interruption, never paid twice.
    """
    out: list[LogEntry] = []
    seen: set[tuple[int, datetime, int]] = set()
    for cid, end, duration in zip(
        table.column("connection").to_pylist(),
        table.column("end").to_pylist(),
        table.column("duration_s").to_pylist(),
        strict=True,
    ):
        if end is None or duration is None or cid not in eans:
            continue
        stop = stored_utc(end)
        start = stop - timedelta(seconds=int(duration))
        if not (period.start < stop <= period.end) or (cid, stop, int(duration)) in seen:
            continue
        seen.add((cid, stop, int(duration)))
        ean = eans[cid]
        spot = spots.get(ean, GridSpot("", ""))
        out.append(LogEntry(ean, spot.substation, spot.feeder, start, stop, int(duration)))
    return out


def _joins(a: LogEntry, b: LogEntry, simultaneous_s: int) -> bool:
    """One outage: the entries overlap (or touch) and started together, or (issue 16)
    both have times no other meter confirms and are one fault's by their durations:
    two meters that disagree by a drift's offset (:func:`_drift_apart`)."""
    if a.start > b.end or b.start > a.end:
        return False
    together = abs((a.start - b.start).total_seconds()) <= simultaneous_s
    return together or (a.clock == b.clock == CLOCK_ALONE and _drift_apart(a, b))


def _drift_apart(a: LogEntry, b: LogEntry) -> bool:
    """Whether ``b`` is ``a``'s interruption seen by a clock that is off: the durations
    match within the drift bound and the ends are at most :data:`CLOCK_DRIFT_MAX_S`
    apart (truly separate faults differ in duration, not only in time)."""
    shorter = min(a.duration_s, b.duration_s)
    return abs(a.duration_s - b.duration_s) <= duration_error_s(shorter) and (
        abs((a.end - b.end).total_seconds()) <= CLOCK_DRIFT_MAX_S
    )


def group_outages(
    entries: Sequence[LogEntry], simultaneous_s: int = SIMULTANEOUS_S
) -> list[Outage]:
    """Group log entries into outages (UC9), per substation, transitively in time order.

    Two entries of one substation join when their intervals overlap or touch and they
    start within ``simultaneous_s`` of each other, on one feeder or several (a
    substation outage takes every feeder down at once, whatever feeder the register
    says). Nested and repeated faults stay apart (issue 16): an entry that overlaps
    others but started clearly before or after them is another fault (a fuse blown in a
    feeder that is down; a cable fault still open when the MV feed fails, whose meters
    log one interruption from the cable fault's start), and a second fault on a feeder
    is another outage. Clocks that drift (issue 16) are corrected first
    (:func:`correct_clocks`); two entries no other meter confirms join when their
    durations say they are one fault (:func:`_drift_apart`). A meter's entries never
    overlap one another, so every entry is
    its customer's own interruption in exactly one outage. Outages come in start order.
    """
    by_substation: dict[str, list[LogEntry]] = {}
    for e in entries:
        by_substation.setdefault(e.substation, []).append(e)
    by_substation = {
        substation: correct_clocks(group, simultaneous_s)
        for substation, group in by_substation.items()
    }
    outages = [
        _outage(substation, part)
        for substation, group in by_substation.items()
        for members in _clusters(group, simultaneous_s)
        for part in _split_late(members, simultaneous_s)
    ]
    ordered = sorted(outages, key=lambda o: (o.start, o.substation, o.id))
    taken: set[str] = set()
    out = []
    for o in ordered:  # a part split off keeps the start: named after its feeder
        named = o
        if o.id in taken:
            named = replace(o, id=f"{'+'.join(o.feeders)}-{o.start:%Y%m%dT%H%M%SZ}")
        taken.add(named.id)
        out.append(named)
    return out


def _agreeing(a: LogEntry, b: LogEntry) -> bool:
    return (
        abs((a.start - b.start).total_seconds()) <= AGREE_S
        and abs((a.end - b.end).total_seconds()) <= AGREE_S
    )


def _median(times: Sequence[datetime]) -> datetime:
    """The lower median (a logged time, not an average of two)."""
    return sorted(times)[(len(times) - 1) // 2]


def _cores(group: Sequence[LogEntry], simultaneous_s: int) -> list[tuple[datetime, datetime]]:
    """The (start, end) that two or more meters of one fault agree on, per cluster of
    ``group`` (:func:`_clusters`): the largest set agreeing to :data:`AGREE_S`, taken at
    its median. A cluster where no two meters agree has none."""
    out = []
    for cluster in _clusters(group, simultaneous_s):
        best: list[LogEntry] = []
        for m in cluster:
            agree = [n for n in cluster if _agreeing(m, n)]
            if len({n.ean for n in agree}) > len({n.ean for n in best}):
                best = agree
        if len({n.ean for n in best}) >= 2:
            out.append((_median([n.start for n in best]), _median([n.end for n in best])))
    return out


def correct_clocks(
    group: Sequence[LogEntry], simultaneous_s: int = SIMULTANEOUS_S
) -> list[LogEntry]:
    """One substation's entries with drifted clocks corrected (issue 16).

    A meter whose clock is off writes its END (and so its start) off by the same
    seconds to minutes, while its DURATION, measured unpowered with its own clock, is
    off by at most :func:`duration_error_s`. So an entry whose duration matches the
    times two or more other meters agree on (:func:`_cores`) but whose start and end
    are off, by up to :data:`CLOCK_DRIFT_MAX_S`, is that fault seen by a drifted clock:
    it gets the agreeing meters' (median) start and end, and says by how much. Truly
    separate faults differ in duration, not only in time, so they stay apart. An entry
    matching no core, or two equally near (undecided), keeps its own times: ``alone``."""
    cores = _cores(group, simultaneous_s)
    out = []
    for e in group:
        near = []
        for start, end in cores:
            duration = int((end - start).total_seconds())
            offset = int((e.end - end).total_seconds())
            core = replace(e, start=start, end=end, duration_s=duration)
            if _drift_apart(core, e):
                near.append((abs(offset), offset, start, end))
        near.sort(key=lambda x: x[0])
        if not near or (len(near) > 1 and near[1][0] == near[0][0] and near[1][2:] != near[0][2:]):
            out.append(e)
            continue
        _, offset, start, end = near[0]
        if abs((e.start - start).total_seconds()) <= AGREE_S:
            # its clock was right when the fault began: a second more or less at the
            # end is what it measured, not an offset (left as logged)
            out.append(replace(e, clock=CLOCK_AGREED))
            continue
        duration = int((end - start).total_seconds())
        out.append(
            replace(
                e,
                start=start,
                end=end,
                duration_s=duration,
                clock_corrected_s=offset,
                clock=CLOCK_CORRECTED,
            )
        )
    return out


def _split_late(members: Sequence[LogEntry], simultaneous_s: int) -> list[list[LogEntry]]:
    """A substation outage's entries, with apart every set of entries on one feeder that
    ended more than :data:`RESTORED_LATER_S` after the rest while other meters of that
    feeder came back with the rest (issue 16): a cable fault begun inside an MV outage
    and outlasting it, whose meters log one interruption from the MV outage's start."""
    if len({m.feeder for m in members}) < 2:
        return [list(members)]
    sets: list[list[LogEntry]] = []
    for m in sorted(members, key=lambda e: e.end):
        if sets and (m.end - sets[-1][-1].end).total_seconds() <= simultaneous_s:
            sets[-1].append(m)
        else:
            sets.append([m])
    main = max(sets, key=len)
    main_end = max(m.end for m in main)
    kept, apart = list(main), []
    for s in sets:
        if s is main:
            continue
        feeders = {m.feeder for m in s}
        late = (min(m.end for m in s) - main_end).total_seconds() > RESTORED_LATER_S
        if len(feeders) == 1 and late and feeders & {m.feeder for m in main}:
            apart.append(s)
        else:
            kept.extend(s)
    return [kept, *apart]


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _clusters(group: Sequence[LogEntry], simultaneous_s: int) -> list[list[LogEntry]]:
    """The transitive merge of one substation's entries, swept in start order."""
    ordered = sorted(group, key=lambda e: (e.start, e.end, e.ean))
    parent = list(range(len(ordered)))
    active: list[int] = []
    for i, entry in enumerate(ordered):
        active = [j for j in active if ordered[j].end >= entry.start]
        for j in active:
            if _joins(ordered[j], entry, simultaneous_s):
                parent[_root(parent, i)] = _root(parent, j)
        active.append(i)
    clusters: dict[int, list[LogEntry]] = {}
    for i, entry in enumerate(ordered):
        clusters.setdefault(_root(parent, i), []).append(entry)
    return list(clusters.values())


def _outage(substation: str, members: Sequence[LogEntry]) -> Outage:
    # one customer interruption per log entry (issue 16: the scheme is per interruption;
    # two entries are never summed into one longer interruption)
    customers = tuple(
        sorted(
            {
                CustomerInterruption(
                    m.ean, m.feeder, m.start, m.end, m.duration_s, m.clock_corrected_s, m.clock
                )
                for m in members
            },
            key=lambda c: (c.ean, c.start),
        )
    )
    start = min(c.start for c in customers)
    end = max(c.end for c in customers)
    return Outage(
        id=f"{substation or 'unknown'}-{start:%Y%m%dT%H%M%SZ}",
        substation=substation,
        feeders=tuple(sorted({c.feeder for c in customers})),
        customers=customers,
        start=start,
        end=end,
    )


@dataclass(frozen=True)
class Doubted:
    """A logged interruption left out of the registration: the meter's neighbours on its
    feeder had voltage for most of it (MTR-5.contradicted_interruption); for review."""

    outage: str
    ean: str
    feeder: str
    start: datetime
    end: datetime
    duration_s: int
    alone_s: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "outage": self.outage,
            "ean": self.ean,
            "feeder": self.feeder,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "duration_s": self.duration_s,
            "alone_s": self.alone_s,
            "rule": CONTRADICTED,
        }


def covered_s(spans: Sequence[tuple[datetime, datetime]]) -> float:
    """Seconds covered by the union of sorted (start, end) spans (empty ones ignored)."""
    total = 0.0
    reach: datetime | None = None
    for start, end in spans:
        if end <= start:
            continue
        if reach is None or start > reach:
            total += (end - start).total_seconds()
            reach = end
        elif end > reach:
            total += (end - reach).total_seconds()
            reach = end
    return total


def alone_s(customer: CustomerInterruption, outage: Outage) -> float:
    """Seconds of ``customer``'s logged interval that no other customer of its feeder in
    ``outage`` logged too."""
    shared = sorted(
        (max(o.start, customer.start), min(o.end, customer.end))
        for o in outage.customers
        if o.ean != customer.ean and o.feeder == customer.feeder
    )
    return (customer.end - customer.start).total_seconds() - covered_s(shared)


def set_aside_contradicted(
    outages: Sequence[Outage],
    spots: Mapping[str, GridSpot],
    uncorroborated_max_s: float = UNCORROBORATED_MAX_S,
) -> tuple[list[Outage], list[Doubted]]:
    """The outages without the interruptions their neighbours contradict, and those set
    aside (MTR-5.contradicted_interruption): more than ``uncorroborated_max_s`` of a
    logged interval is shared by no other meter of the feeder, while the feeder has
    other meters in the population, whose logs show they had voltage. One absurd log
    must not count as customer minutes lost (SAIDI) nor make an outage longer."""
    on_feeder: dict[tuple[str, str], int] = {}
    for spot in spots.values():
        key = (spot.substation, spot.feeder)
        on_feeder[key] = on_feeder.get(key, 0) + 1
    kept_outages: list[Outage] = []
    doubted: list[Doubted] = []
    for outage in outages:
        kept: list[CustomerInterruption] = []
        for c in outage.customers:
            alone = alone_s(c, outage)
            if alone > uncorroborated_max_s and on_feeder.get((outage.substation, c.feeder), 0) > 1:
                doubted.append(
                    Doubted(outage.id, c.ean, c.feeder, c.start, c.end, c.duration_s, int(alone))
                )
            else:
                kept.append(c)
        if len(kept) == len(outage.customers):
            kept_outages.append(outage)
        elif kept:
            kept_outages.append(
                replace(
                    outage,
                    customers=tuple(kept),
                    feeders=tuple(sorted({c.feeder for c in kept})),
                    start=min(c.start for c in kept),
                    end=max(c.end for c in kept),
                )
            )
    return kept_outages, doubted


def reliability(
    outages: Sequence[Outage], customers_served: int, period: Period
) -> ReliabilityFigures:
    """SAIFI, CAIDI and SAIDI (IEEE 1366 style) of ``outages`` over ``period``:
    SAIFI = CI / N, CAIDI = CML / CI, SAIDI = CML / N and SAIDI x 365.25 / days.

    What counts (issue 16): each customer interruption (one log entry) longer than
    :data:`COUNTED_LONGER_THAN_S` is one CI and its own minutes; shorter ones (a
    reclosing) are not counted. The caller passes the unplanned and the planned outages
    separately (the national register reports planned interruptions apart)."""
    counted = [c for o in outages for c in o.customers if c.duration_s > COUNTED_LONGER_THAN_S]
    ci = len(counted)
    cml = sum(c.duration_s for c in counted) / 60
    days = period.days
    n = customers_served
    saidi = cml / n if n else None
    return ReliabilityFigures(
        customers_served=n,
        customer_interruptions=ci,
        customer_minutes_lost=cml,
        period_days=days,
        saifi=ci / n if n else None,
        caidi_min=cml / ci if ci else None,
        saidi_min=saidi,
        saidi_min_per_year=saidi * 365.25 / days if saidi is not None and days > 0 else None,
    )


PLANNED_SLACK_S = 15 * 60
"""How far an outage's start may lie before its planned work's start, and (UC4) its end
after the work's end, and still be that work (our choice, issue 16)."""


def planned_work_of(
    substation: str,
    feeders: Iterable[str],
    start: datetime,
    planned: Sequence[PlannedWork],
    end: datetime | None = None,
) -> PlannedWork | None:
    """The planned work an outage IS (UC4, UC9): on its substation (and one of its
    feeders when the work names one) and BEGUN within the work's window. An outage that
    began before the work is a fault the work overlaps, not the work (issue 16): its
    interruption is unplanned, whatever work follows."""
    slack = timedelta(seconds=PLANNED_SLACK_S)
    stop = start + timedelta(seconds=1) if end is None else end
    return next(
        (
            w
            for w in planned
            if w.covers(substation, feeders, start, stop) and w.start - slack <= start < w.end
        ),
        None,
    )


def mark_planned(outages: Sequence[Outage], planned: Sequence[PlannedWork]) -> list[Outage]:
    """``outages`` with the planned work each is (:func:`planned_work_of`), as UC4
    decides it."""
    out = []
    for o in outages:
        work = planned_work_of(o.substation, o.feeders, o.start, planned, o.end)
        out.append(o if work is None else replace(o, planned=work))
    return out


def _population_day(period: Period) -> date:
    return to_local(period.start).date()


def register_interruptions(
    gate: Gate,
    party: Party,
    period: Period,
    at: datetime,
    trigger: str,
    area: str | None = None,
    planned: Sequence[PlannedWork] = (),
) -> Uc09Result:
    """UC9: ask the gate once for the population's power failure logs over ``period``,
    group them into outages and derive the reliability figures; outages the ``planned``
    works cover are registered as planned and counted apart.

    The population is taken from the register on the period's first local day. An
    interruption is read in the period its log entry ENDS in (the meter writes it on
    return of the voltage). Raises :class:`Uc09Error` with the rule IDs when refused.
    """
    day = _population_day(period)
    spots = population(
        gate.register_view.connection_versions(day), area, gate.register_view.gis_confirmed(day)
    )
    if not spots:
        figures = reliability((), 0, period)
        return Uc09Result(period, area, (), figures, 0, None)
    read = read_outages(
        gate,
        AccessRequest(
            party,
            PURPOSE,
            tuple(spots),
            frozenset({KIND}),
            period,
            at,
            justification="UC9 interruption registration for Nestor (legal duty)",
            trigger=trigger,
        ),
        spots,
        Uc09Error,
    )
    limit = rulebook.vee_rules().uncorroborated_max_h * 3600
    kept, doubted = set_aside_contradicted(read.outages, spots, limit)
    outages = mark_planned(kept, planned)
    unplanned = [o for o in outages if o.planned is None]
    planned_only = [o for o in outages if o.planned is not None]
    return Uc09Result(
        period,
        area,
        tuple(outages),
        reliability(unplanned, len(spots), period),
        read.entries,
        read.audit_seq,
        tuple(doubted),
        reliability(planned_only, len(spots), period),
    )


@dataclass(frozen=True)
class OutagesRead:
    """The outages one grant's failure logs show, and how many entries were read."""

    outages: list[Outage]
    entries: int
    audit_seq: int | None


def read_outages(
    gate: Gate,
    request: AccessRequest,
    spots: Mapping[str, GridSpot],
    error: type[MeetpuntError],
) -> OutagesRead:
    """Ask the gate for the failure logs of ``request`` (UC4, UC9), keep the entries
    inside its period and group them into outages; ``error`` on a refusal."""
    answer = ask(gate, request, error)
    table = answer.read(KIND)
    eans = {cid: ean for ean, cid in answer.connection_ids.items()}
    entries = log_entries(table, eans, spots, request.period)
    return OutagesRead(group_outages(entries), len(entries), answer.decision.audit_seq)
