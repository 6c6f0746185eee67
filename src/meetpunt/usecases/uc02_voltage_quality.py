"""UC2 Voltage quality monitoring: the quarter's voltage events from the meters' counters.

Use-case list UC2: every smart meter counts under-voltage events (below 207 V for more
than 30 s) and over-voltage events, and "de netbeheerder leest deze standen elk kwartaal
op afstand uit" -- without a further reason, once a quarter, only the counters
(``voltage_events``: cumulative sags and swells per meter phase). The quarter's events
are the counter deltas; a meter swapped inside the quarter restarts its counters at 0,
which is a new meter's count, never a negative delta (MTR-5.meter_swap).

UC2 ranks connections, feeders and substations by events and names the notable ones by
the ``voltage_quality`` rule file's ``[notable]`` rule. Each notable feeder is stored as
a finding through :meth:`Gate.flag` (one per feeder, naming its connections), which is
what UC3 must cite to read 10-minute voltages there (``UC3.flagged``).

Everything except :func:`monitor_voltage_quality`'s gate calls is a pure function over
Arrow tables and plain values, for one grid group or many.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from meetpunt import rulebook
from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.domain.voltage import VoltageQualityRules
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Party, Period, stored_utc
from meetpunt.usecases.common import ask
from meetpunt.usecases.grid import GridSpot
from meetpunt.usecases.uc09_interruption_registration import population

PURPOSE = "UC2"
KIND = "voltage_events"
OPENS = "UC3"
METER_SWAP = "MTR-5.meter_swap"
"""The rule the hub's reading carries when it accepted it as a new meter's first
(``rule`` column of a granted read): its counters restarted, whatever their value."""


class Uc02Error(MeetpuntError):
    """The gate refused UC2; ``rules`` carries the decision's rule IDs."""


@dataclass
class ChannelCount:
    """One meter phase's events over the read readings (UC2)."""

    sags: int = 0
    swells: int = 0
    resets: int = 0
    """Counter restarts (a new meter) inside the period."""
    sags_now: int = 0
    swells_now: int = 0
    """The last reading: the events since the (current) meter was installed."""
    first: datetime | None = None
    last: datetime | None = None
    per_day: dict[date, int] = field(default_factory=dict)
    """Events per local day (the day a daily reading closes)."""
    not_readable: list[tuple[datetime, datetime]] = field(default_factory=list)
    """Per counter restart: (the old meter's last reading, the new meter's first). The
    old meter's events after its last reading were never read -- the hub holds no final
    reading of a swapped meter's counters -- so the count is a lower bound there."""


def channel_counts(
    table: pa.Table, reset_handling: bool = True
) -> dict[tuple[int, int], ChannelCount]:
    """Per (connection, meter phase) the events between the first and the last reading
    of ``table`` (``connection``, ``at``, ``phase``, ``sags``, ``swells``, optional
    ``rule``): the sum of the rises. A reading below the one before, or one the hub
    accepted as a new meter's, restarted the counters: its value is the new meter's own
    events since it began at 0 (UC2, MTR-5.meter_swap). ``reset_handling=False`` takes
    the plain last-minus-first difference (what a swap makes negative)."""
    cols = table.column_names
    rule = table.column("rule").to_pylist() if "rule" in cols else [None] * table.num_rows
    rows = sorted(
        zip(
            table.column("connection").to_pylist(),
            table.column("phase").to_pylist(),
            table.column("at").to_pylist(),
            table.column("sags").to_pylist(),
            table.column("swells").to_pylist(),
            rule,
            strict=True,
        ),
        key=lambda r: (r[0], r[1], r[2]),
    )
    out: dict[tuple[int, int], ChannelCount] = {}
    before: dict[tuple[int, int], tuple[int, int]] = {}
    last_at: dict[tuple[int, int], datetime] = {}
    for cid, phase, at, sags, swells, why in rows:
        if sags is None or swells is None:
            continue
        key = (int(cid), int(phase))
        count = out.setdefault(key, ChannelCount())
        when = stored_utc(at)
        count.first = count.first or when
        count.last = when
        count.sags_now, count.swells_now = int(sags), int(swells)
        prior = before.get(key)
        before[key] = (int(sags), int(swells))
        prior_at = last_at.get(key)
        last_at[key] = when
        if prior is None:
            continue
        if not reset_handling:
            d_sags, d_swells = int(sags) - prior[0], int(swells) - prior[1]
        elif why == METER_SWAP or sags < prior[0] or swells < prior[1]:
            count.resets += 1
            count.not_readable.append((prior_at or when, when))
            d_sags, d_swells = int(sags), int(swells)
        else:
            d_sags, d_swells = int(sags) - prior[0], int(swells) - prior[1]
        count.sags += d_sags
        count.swells += d_swells
        day = to_local(when - timedelta(seconds=1)).date()
        count.per_day[day] = count.per_day.get(day, 0) + d_sags + d_swells
    return out


@dataclass(frozen=True)
class ConnectionEvents:
    """One connection's events over the period, all its meter phases together (UC2)."""

    ean: str
    substation: str
    feeder: str
    sags: int
    swells: int
    resets: int
    sags_since_installation: int
    swells_since_installation: int
    per_phase: tuple[tuple[int, int, int], ...]
    """(meter phase, sags, swells) over the period."""
    since_installation: tuple[tuple[int, int, int], ...]
    """(meter phase, sags, swells) at the last reading: since the meter was installed."""
    notable: bool = False
    not_readable: tuple[tuple[int, datetime, datetime], ...] = ()
    """(meter phase, old meter's last reading, new meter's first): a swapped meter's
    events after its last reading were never read; the count is a lower bound."""

    @property
    def events(self) -> int:
        return self.sags + self.swells

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.ean,
            "substation": self.substation,
            "feeder": self.feeder,
            "events": self.events,
            "sags": self.sags,
            "swells": self.swells,
            "meter_swaps": self.resets,
            "per_phase": [{"phase": p, "sags": a, "swells": b} for p, a, b in self.per_phase],
            "since_installation": [
                {"phase": p, "sags": a, "swells": b} for p, a, b in self.since_installation
            ],
            "notable": self.notable,
            "not_readable": [
                {
                    "phase": p,
                    "from": a.isoformat(),
                    "to": b.isoformat(),
                    "why": NOT_READABLE,
                }
                for p, a, b in self.not_readable
            ],
        }


NOT_READABLE = (
    "not readable: the meter was swapped; the old meter's events after its last reading "
    "were never read (the hub holds no final reading of its counters), so the events "
    "counted here are a lower bound"
)


@dataclass(frozen=True)
class GroupEvents:
    """A feeder's or substation's events (UC2): its smart meters and their events."""

    substation: str
    feeder: str | None
    meters: int
    sags: int
    swells: int
    notable: bool
    per_day: tuple[tuple[date, int], ...] = ()

    @property
    def events(self) -> int:
        return self.sags + self.swells

    @property
    def per_meter(self) -> float:
        return self.events / self.meters if self.meters else 0.0

    @property
    def name(self) -> str:
        return self.substation if self.feeder is None else f"{self.substation}/{self.feeder}"

    def busiest_days(self, days: int) -> tuple[date, date] | None:
        """The first and last day of the ``days`` consecutive days with the most events
        (UC3's window, at most 10 days); None without any events."""
        counts = dict(self.per_day)
        if not counts or not any(counts.values()):
            return None
        first, last = min(counts), max(counts)
        span = max((last - first).days + 1, 1)
        best, best_n = first, -1
        for offset in range(max(span - days + 1, 1)):
            start = first + timedelta(days=offset)
            n = sum(counts.get(start + timedelta(days=k), 0) for k in range(days))
            if n > best_n:
                best, best_n = start, n
        return best, min(best + timedelta(days=days - 1), last)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "substation": self.substation,
            "feeder": self.feeder,
            "smart_meters": self.meters,
            "events": self.events,
            "sags": self.sags,
            "swells": self.swells,
            "events_per_meter": round(self.per_meter, 3),
            "notable": self.notable,
        }


@dataclass(frozen=True)
class Ranking:
    """UC2's pure result for one group of connections: everything ranked, notable named."""

    connections: tuple[ConnectionEvents, ...]
    feeders: tuple[GroupEvents, ...]
    substations: tuple[GroupEvents, ...]

    @property
    def notable_feeders(self) -> tuple[GroupEvents, ...]:
        return tuple(f for f in self.feeders if f.notable)


def rank(
    counts: Mapping[tuple[int, int], ChannelCount],
    eans: Mapping[int, str],
    spots: Mapping[str, GridSpot],
    rules: VoltageQualityRules,
    days: float,
) -> Ranking:
    """Rank connections, feeders and substations by events (most first) and mark the
    notable ones by the ``[notable]`` rule, its per-quarter thresholds scaled to ``days``
    (UC2). Every connection of ``spots`` is ranked, one without readings with 0 events."""
    by_conn: dict[str, list[tuple[int, ChannelCount]]] = {ean: [] for ean in spots}
    for (cid, phase), count in counts.items():
        ean = eans.get(cid)
        if ean in by_conn:
            by_conn[ean].append((phase, count))
    conn_min = rules.scaled(rules.connection_min_events, days)
    connections = []
    feeder_days: dict[tuple[str, str], dict[date, int]] = {}
    for ean, channels in by_conn.items():
        spot = spots[ean]
        channels.sort()
        sags = sum(c.sags for _, c in channels)
        swells = sum(c.swells for _, c in channels)
        days_of = feeder_days.setdefault((spot.substation, spot.feeder), {})
        for _, c in channels:
            for day, n in c.per_day.items():
                days_of[day] = days_of.get(day, 0) + n
        connections.append(
            ConnectionEvents(
                ean,
                spot.substation,
                spot.feeder,
                sags,
                swells,
                sum(c.resets for _, c in channels),
                sum(c.sags_now for _, c in channels),
                sum(c.swells_now for _, c in channels),
                tuple((p, c.sags, c.swells) for p, c in channels),
                tuple((p, c.sags_now, c.swells_now) for p, c in channels),
                notable=sags + swells >= conn_min,
                not_readable=tuple((p, a, b) for p, c in channels for a, b in c.not_readable),
            )
        )
    connections.sort(key=lambda c: (-c.events, c.ean))
    feeders = _groups(connections, rules, days, feeder_days, by_feeder=True)
    notable_subs = {f.substation for f in feeders if f.notable}
    substations = tuple(
        GroupEvents(s.substation, None, s.meters, s.sags, s.swells, s.substation in notable_subs)
        for s in _groups(connections, rules, days, {}, by_feeder=False)
    )
    return Ranking(tuple(connections), feeders, substations)


def notable_feeder(events: int, meters: int, rules: VoltageQualityRules, days: float) -> bool:
    """UC2's ``[notable]`` rule for one feeder: at least ``feeder_min_events`` events
    and ``feeder_min_events_per_meter`` per smart meter, per quarter scaled to ``days``."""
    total_min = rules.scaled(rules.feeder_min_events, days)
    per_meter_min = rules.feeder_min_events_per_meter * days / rules.quarter_days
    return meters > 0 and events >= total_min and events >= per_meter_min * meters


def _groups(
    connections: Sequence[ConnectionEvents],
    rules: VoltageQualityRules,
    days: float,
    per_day: Mapping[tuple[str, str], Mapping[date, int]],
    by_feeder: bool,
) -> tuple[GroupEvents, ...]:
    sums: dict[tuple[str, str | None], list[int]] = {}
    for c in connections:
        key = (c.substation, c.feeder if by_feeder else None)
        row = sums.setdefault(key, [0, 0, 0])
        row[0] += 1
        row[1] += c.sags
        row[2] += c.swells
    out = []
    for (sub, feeder), (meters, sags, swells) in sums.items():
        events = sags + swells
        notable = by_feeder and notable_feeder(events, meters, rules, days)
        days_of = per_day.get((sub, feeder or ""), {})
        out.append(
            GroupEvents(sub, feeder, meters, sags, swells, notable, tuple(sorted(days_of.items())))
        )
    out.sort(key=lambda g: (-g.events, g.name))
    return tuple(out)


@dataclass(frozen=True)
class Uc02Result:
    """What UC2 found for one period, and the findings it stored for UC3."""

    period: Period
    ranking: Ranking
    readings: int
    first_reading: datetime | None
    last_reading: datetime | None
    audit_seq: int | None
    flags: tuple[tuple[str, int], ...] = ()
    """(feeder name, finding id) of each notable feeder, for UC3 to cite."""
    rules_version: str = ""
    days: float = 0.0
    """Days between the first and the last reading: the notable rule's scale."""

    @property
    def days_text(self) -> str:
        """The local days counted: the first reading's day to the last's."""
        if self.first_reading is None or self.last_reading is None:
            return "no readings"
        first = to_local(self.first_reading).date()
        last = to_local(self.last_reading - timedelta(seconds=1)).date()
        return f"{first:%Y-%m-%d} to {last:%Y-%m-%d} (local days)"

    def flag_of(self, feeder: str) -> int | None:
        return dict(self.flags).get(feeder)

    def feeder(self, name: str) -> GroupEvents:
        return next(f for f in self.ranking.feeders if f.name == name)

    def connections_of(self, feeder: str) -> tuple[ConnectionEvents, ...]:
        return tuple(c for c in self.ranking.connections if f"{c.substation}/{c.feeder}" == feeder)

    def as_dict(self) -> dict[str, Any]:
        r = self.ranking
        return {
            "use_case": PURPOSE,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "counted_between": {
                "first_reading": None
                if self.first_reading is None
                else self.first_reading.isoformat(),
                "last_reading": None
                if self.last_reading is None
                else self.last_reading.isoformat(),
            },
            "readings": self.readings,
            "audit_seq": self.audit_seq,
            "rules_version": self.rules_version,
            "days_counted": round(self.days, 3),
            "notable_feeders": [f.name for f in r.notable_feeders],
            "flags": [{"feeder": f, "finding": i} for f, i in self.flags],
            "substations": [s.as_dict() for s in r.substations],
            "feeders": [f.as_dict() for f in r.feeders],
            "connections": [c.as_dict() for c in r.connections],
        }


def end_of_next_quarter(moment: datetime) -> datetime:
    """The local midnight that ends the quarter after ``moment``'s (a UC2 finding holds
    until the next quarter's ranking has had a quarter to replace it)."""
    day = to_local(moment).date()
    q = (day.month - 1) // 3 + 2  # the quarter after next starts here
    year = day.year + (q // 4)
    return local_midnight_utc(date(year, (q % 4) * 3 + 1, 1))


def monitor_voltage_quality(
    gate: Gate,
    party: Party,
    period: Period,
    at: datetime,
    rules: VoltageQualityRules | None = None,
    record: bool = True,
) -> Uc02Result:
    """UC2: ask the gate once for every smart meter's event counters over ``period`` (at
    most a quarter, once a quarter, no reason needed), count each connection's events,
    rank and name the notable feeders; with ``record`` store each notable feeder as a
    finding for UC3 (:meth:`Gate.flag`). Raises :class:`Uc02Error` on a refusal."""
    rules = rules or rulebook.voltage_quality()
    day = to_local(period.start).date()
    spots = population(gate.register_view.connection_versions(day))
    grant = ask(
        gate,
        AccessRequest(
            party,
            PURPOSE,
            tuple(spots),
            frozenset({KIND}),
            period,
            at,
            justification="UC2 voltage quality monitoring: the quarter's event counters",
        ),
        Uc02Error,
    )
    table = grant.read(KIND)
    eans = {cid: ean for ean, cid in grant.connection_ids.items()}
    counts = channel_counts(table)
    firsts = [c.first for c in counts.values() if c.first is not None]
    lasts = [c.last for c in counts.values() if c.last is not None]
    span_days = (max(lasts) - min(firsts)).total_seconds() / 86400 if firsts else period.days
    days = max(span_days, 1.0)
    ranking = rank(counts, eans, spots, rules, days)
    flags: list[tuple[str, int]] = []
    if record:
        until = end_of_next_quarter(period.start)
        for f in ranking.notable_feeders:
            members = [
                c.ean
                for c in ranking.connections
                if (c.substation, c.feeder) == (f.substation, f.feeder)
            ]
            summary = (
                f"UC2 {period.start:%Y-%m-%d}..{period.end:%Y-%m-%d}: feeder {f.name} "
                f"{f.events} events ({f.sags} under, {f.swells} over) on {f.meters} meters"
            )
            flags.append(
                (
                    f.name,
                    gate.flag(party, PURPOSE, "quarterly ranking", OPENS, members, until, summary),
                )
            )
    return Uc02Result(
        period,
        ranking,
        table.num_rows,
        min(firsts) if firsts else None,
        max(lasts) if lasts else None,
        grant.decision.audit_seq,
        tuple(flags),
        rules.version,
        days,
    )
