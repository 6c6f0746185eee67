"""UC3 Seasonal analysis: 10-minute voltages and feed-in where UC2 found many events.

Use-case list UC3: "Als blijkt dat er opvallend veel spanningsproblemen zijn" -- only for
connections on a feeder a stored UC2 finding names (the request cites it; the gate checks
the citation, ``UC3.flagged``) -- the operator reads "de gemiddelde spanning elke 10
minuten" and "hoeveel stroom er is teruggeleverd via zonnepanelen" (``voltages_10min``,
``quarter_hours`` export) for at most 10 days. UC3 reports per meter phase when and how
far the limits were broken (the band 207-253 V and the operator's inverter limit, from
the ``voltage_quality`` rule file), the counters since installation (from UC2's read;
UC3 reads no counters itself), and the likely inverter trips as EPISODES: quarter-hours
whose feed-in fell far below what the connection's share of the feeder's PV feed-in
says while its voltage was at the inverter limit, or in which a 10-minute value above
the limit leaves the protection no choice; one connection's trip quarter-hours at most
``episode_gap_quarters`` (3 hours) apart are one episode.

Everything except :func:`analyse_feeder`'s gate call is a pure function over Arrow tables
for one feeder.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from meetpunt import rulebook
from meetpunt.domain.calendar import to_local
from meetpunt.domain.sun import sun_elevation_deg
from meetpunt.domain.voltage import VoltageQualityRules
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Party, Period
from meetpunt.usecases.common import ask
from meetpunt.usecases.uc09_interruption_registration import population

PURPOSE = "UC3"
VOLTAGES = "voltages_10min"
ENERGY = "quarter_hours"
TEN_MIN = timedelta(minutes=10)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
LOW, HIGH, INVERTER = "below_low", "above_high", "above_inverter"


class Uc03Error(MeetpuntError):
    """The gate refused UC3 (or the request cannot be made); ``rules`` names why."""


@dataclass(frozen=True)
class Break:
    """One run of consecutive 10-minute values of a meter phase beyond a limit (UC3)."""

    ean: str
    phase: int
    limit: str
    limit_v: float
    start: datetime
    end: datetime
    extreme_v: float

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.ean,
            "phase": self.phase,
            "limit": self.limit,
            "limit_v": self.limit_v,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "minutes": self.minutes,
            "extreme_v": self.extreme_v,
            "beyond_v": round(abs(self.extreme_v - self.limit_v), 1),
        }


def _micros(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.int64]:
    """A timestamp column as UTC microseconds since the epoch."""
    micros = pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return np.asarray(micros.to_numpy(zero_copy_only=False), dtype=np.int64)


def _utc(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(micros))


def limit_breaks(
    table: pa.Table, eans: Mapping[int, str], rules: VoltageQualityRules
) -> list[Break]:
    """Every run of 10-minute values (``connection``, ``start``, ``phase``,
    ``voltage_v``) below the band's low limit, above its high limit and above the
    inverter limit, per meter phase (UC3: when and how far). 0 V (no supply) is not a
    voltage and ends a run, as does a missing 10-minute value."""
    cid = np.asarray(table.column("connection").to_numpy(zero_copy_only=False), dtype=np.int64)
    phase = np.asarray(table.column("phase").to_numpy(zero_copy_only=False), dtype=np.int64)
    volts = table.column("voltage_v").to_numpy(zero_copy_only=False).astype(np.float64)
    at = _micros(table.column("start"))
    keep = np.isin(cid, np.fromiter(eans, dtype=np.int64, count=len(eans))) & np.isfinite(volts)
    cid, phase, volts, at = cid[keep], phase[keep], volts[keep], at[keep]
    order = np.lexsort((at, phase, cid))
    cid, phase, volts, at = cid[order], phase[order], volts[order], at[order]
    step = int(TEN_MIN.total_seconds() * 1_000_000)
    same = np.zeros(len(at), dtype=bool)
    same[1:] = (cid[1:] == cid[:-1]) & (phase[1:] == phase[:-1]) & (at[1:] - at[:-1] == step)
    limits = (
        (LOW, rules.low_v, (volts > 0) & (volts < rules.low_v), np.minimum),
        (HIGH, rules.high_v, volts > rules.high_v, np.maximum),
        (INVERTER, rules.inverter.limit_v, volts > rules.inverter.limit_v, np.maximum),
    )
    out: list[Break] = []
    for name, limit_v, beyond, worst in limits:
        starts = beyond & ~(np.concatenate(([False], beyond[:-1])) & same)
        run_id = np.cumsum(starts) - 1
        idx = np.flatnonzero(beyond)
        if not idx.size:
            continue
        first = np.flatnonzero(starts)
        last = np.zeros(first.size, dtype=np.int64)
        np.maximum.at(last, run_id[idx], idx)
        extreme = volts[first].copy()
        worst.at(extreme, run_id[idx], volts[idx])
        for f, l_, x in zip(first.tolist(), last.tolist(), extreme.tolist(), strict=True):
            out.append(
                Break(
                    eans[int(cid[f])],
                    int(phase[f]),
                    name,
                    limit_v,
                    _utc(int(at[f])),
                    _utc(int(at[l_])) + TEN_MIN,
                    round(float(x), 1),
                )
            )
    out.sort(key=lambda b: (b.ean, b.phase, b.limit, b.start))
    return out


def minutes_outside(breaks: Sequence[Break]) -> dict[tuple[str, int], dict[str, int]]:
    """Minutes beyond each limit per (EAN, meter phase)."""
    out: dict[tuple[str, int], dict[str, int]] = {}
    for b in breaks:
        row = out.setdefault((b.ean, b.phase), {LOW: 0, HIGH: 0, INVERTER: 0})
        row[b.limit] += b.minutes
    return out


@dataclass(frozen=True)
class TripEpisode:
    """A likely inverter-trip episode (UC3): feed-in stopped while the voltage was at the
    inverter limit, over consecutive quarter-hours."""

    ean: str
    start: datetime
    end: datetime
    lost_wh: int
    max_voltage_v: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.ean,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "lost_wh": self.lost_wh,
            "max_voltage_v": self.max_voltage_v,
        }


_Grid = tuple[
    list[int],
    datetime,
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]


def _feeder_grid(energy: pa.Table, voltages: pa.Table, eans: Mapping[int, str]) -> _Grid | None:
    """Quarter-hour x connection arrays of export, import, the highest 10-minute
    voltage touching the quarter-hour or the 10 minutes before it, the highest
    10-minute voltage whose window ends in the quarter-hour, and the lowest overlapping
    it (UC3)."""
    e_cid = np.asarray(energy.column("connection").to_numpy(zero_copy_only=False), np.int64)
    cids = sorted(int(c) for c in np.unique(e_cid) if int(c) in eans)
    if not cids:
        return None
    e_at = _micros(energy.column("start"))
    quarter = int(QUARTER.total_seconds() * 1_000_000)
    t0_us = int(e_at.min())
    t0 = _utc(t0_us)
    n_q = int((int(e_at.max()) - t0_us) // quarter) + 1
    col = np.full(int(e_cid.max()) + 1, -1, dtype=np.int64)
    col[cids] = np.arange(len(cids))

    def values(name: str) -> npt.NDArray[np.float64]:
        data = energy.column(name).to_numpy(zero_copy_only=False)
        return np.asarray(data, dtype=np.float64)

    export = np.full((n_q, len(cids)), np.nan)
    imports = np.full((n_q, len(cids)), np.nan)
    mine = col[e_cid] >= 0
    q_of = (e_at[mine] - t0_us) // quarter
    export[q_of, col[e_cid[mine]]] = values("export_wh")[mine]
    imports[q_of, col[e_cid[mine]]] = values("import_wh")[mine]
    # the highest 10-minute voltage of any phase touching each quarter-hour (or the 10
    # minutes before it)
    vmax = np.full((n_q, len(cids)), -np.inf)
    v_cid = np.asarray(voltages.column("connection").to_numpy(zero_copy_only=False), np.int64)
    v = voltages.column("voltage_v").to_numpy(zero_copy_only=False).astype(np.float64)
    v_at = _micros(voltages.column("start"))
    ok = (v_cid < col.size) & np.isfinite(v)
    ok[ok] = col[v_cid[ok]] >= 0
    v_col, v, v_at = col[v_cid[ok]], v[ok], v_at[ok] - t0_us
    reach = int((TEN_MIN + TEN_MIN).total_seconds() * 1_000_000) - 1
    first_q, last_q = v_at // quarter, (v_at + reach) // quarter
    for k in range(3):
        q = first_q + k
        hit = (q <= last_q) & (q >= 0) & (q < n_q)
        np.maximum.at(vmax, (q[hit], v_col[hit]), v[hit])
    # the highest 10-minute value ENDING in each quarter-hour: a protection that trips on
    # that window goes off at its end
    vend = np.full((n_q, len(cids)), -np.inf)
    q_end = (v_at + int(TEN_MIN.total_seconds() * 1_000_000)) // quarter
    hit = (q_end >= 0) & (q_end < n_q)
    np.maximum.at(vend, (q_end[hit], v_col[hit]), v[hit])
    # the lowest 10-minute value overlapping each quarter-hour: 0 V is an interruption
    vmin = np.full((n_q, len(cids)), np.inf)
    last_in = (v_at + int(TEN_MIN.total_seconds() * 1_000_000) - 1) // quarter
    for k in range(2):
        q = first_q + k
        hit = (q <= last_in) & (q >= 0) & (q < n_q)
        np.minimum.at(vmin, (q[hit], v_col[hit]), v[hit])
    return cids, t0, export, imports, vmax, vend, vmin


def protection_trips(
    t0: datetime,
    vmin: npt.NDArray[np.float64],
    vend: npt.NDArray[np.float64],
    pv: npt.NDArray[np.bool_],
    rules: VoltageQualityRules,
) -> npt.NDArray[np.bool_]:
    """Quarter-hours (x connections) in which a PV inverter's over-voltage protection
    must have tripped (UC3, EN 50549-1): a 10-minute value ending in the quarter-hour at
    least ``trip_over_limit_v`` above the inverter limit (beyond the meter's noise and
    resolution), with the supply on in that quarter-hour and the next (an interruption
    stops the inverter anyway), while the sun stood at least ``min_sun_elevation_deg``
    high (the inverter was awake, even when its feed-in is too small to show). The
    meter's 10-minute window is one of the windows the protection averages over, so a
    value above the limit leaves the inverter no choice. A trip it misses -- the
    protection's sliding window above the limit while the meter's fixed windows were
    not -- is left to the feed-in rules."""
    n_q = vmin.shape[0]
    quarter_us = int(QUARTER.total_seconds() * 1_000_000)
    mid = int((t0 - EPOCH).total_seconds()) * 1_000_000 + quarter_us // 2
    at = mid + quarter_us * np.arange(n_q, dtype=np.int64)
    sun = sun_elevation_deg(at, rules.area_latitude, rules.area_longitude)
    awake = sun >= rules.min_sun_elevation_deg
    supplied = vmin > 0  # no 10-minute value at 0 V in the quarter-hour (inf: none read)
    supplied_next = np.vstack([supplied[1:], supplied[-1:]])
    over = vend >= rules.inverter.limit_v + rules.trip_over_limit_v
    return np.asarray(over & supplied & supplied_next & awake[:, None] & pv[None, :])


def trip_episodes(
    energy: pa.Table,
    voltages: pa.Table,
    eans: Mapping[int, str],
    rules: VoltageQualityRules,
    grouping: bool = True,
) -> list[TripEpisode]:
    """Likely inverter trips of one feeder's connections, grouped into episodes (UC3).

    A connection's normal feed-in at a quarter-hour is its usual share of the feeder's
    PV feed-in: its export normalised by its own high (95th percentile) export, times the
    upper quartile of the same normalised export over the feeder's PV connections at
    that quarter-hour (the weather they share; an upper quartile so that neighbours
    tripping at the same moment do not pull it down). A quarter-hour is a trip when the
    export is at most ``trip_feed_in_share`` of that, the normal feed-in is at least
    ``min_reference_wh`` and a 10-minute voltage of the connection in that quarter-hour
    or the 10 minutes before is within ``trip_voltage_margin_v`` of the inverter limit.
    A quarter-hour the protection's own evidence names (:func:`protection_trips`) is a
    trip whatever its feed-in shows. Trip quarter-hours of one connection at most
    ``episode_gap_quarters`` apart are one episode; ``grouping=False`` counts each
    quarter-hour apart (what a per-step count is).
    """
    grid = _feeder_grid(energy, voltages, eans)
    if grid is None:
        return []
    cids, t0, export, imports, vmax, vend, vmin = grid
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a connection without feed-in
        high = np.nanpercentile(np.where(export > 0, export, np.nan), 95, axis=0)
    pv = np.isfinite(high) & (high >= rules.min_reference_wh)
    if not pv.any():
        return []
    norm = export[:, pv] / high[pv]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a quarter-hour without PV values
        weather = np.nanpercentile(norm, 90, axis=1)
        night = np.outer(np.nan_to_num(weather), np.ones(len(cids))) < 0.02
        base = np.nanmedian(np.where(night, imports, np.nan), axis=0)
    normal = np.outer(np.nan_to_num(weather), np.where(pv, high, 0.0))
    # a trip leaves the household's own base load as import; a load switched on (a heat
    # pump, cooking) that eats the feed-in shows up as import well above it
    base_load = (
        np.nan_to_num(base, nan=0.0) * rules.trip_import_base_factor + rules.min_reference_wh
    )
    limit = rules.inverter.limit_v
    at_limit = vmax >= limit - rules.trip_voltage_margin_v
    with np.errstate(invalid="ignore", divide="ignore"):
        gone = np.clip(1.0 - np.nan_to_num(export) / normal, 0.0, 1.0)
    tripped = (
        (normal >= rules.min_reference_wh)
        & np.isfinite(export)
        & (export <= rules.trip_feed_in_share * normal)
        & (np.nan_to_num(imports) <= base_load[None, :])
    )
    protection = protection_trips(t0, vmin, vend, pv, rules)
    tripped |= protection
    out: list[TripEpisode] = []
    gap = rules.episode_gap_quarters if grouping else 0
    for j, cid in enumerate(cids):
        qs = np.flatnonzero(tripped[:, j]).tolist()
        groups: list[list[int]] = []
        for q in qs:
            if groups and q - groups[-1][-1] <= gap:
                groups[-1].append(q)
            else:
                groups.append([q])
        for whole in groups:
            # the protection trips on the 10-minute mean at the limit: an episode begins
            # with a quarter-hour whose 10-minute voltage (in it or just before) was at
            # the limit; low quarter-hours before it (a morning's feed-in under the
            # reference) are no trip and would otherwise veto the whole spell
            first = next(
                (k for k, q in enumerate(whole) if at_limit[q, j] or protection[q, j]), None
            )
            if first is None:
                continue
            g = whole[first:]
            # a trip stops the feed-in for a whole reconnect delay (at least a
            # quarter-hour's worth, split over two quarter-hours when it starts inside one)
            # the feed-in stopped: a whole quarter-hour at (almost) nothing, or one trip
            # split over two quarter-hours that lost a quarter-hour's worth between them
            # (a load that eats part of the feed-in takes it down, rarely to nothing)
            stopped = any(export[q, j] <= rules.trip_stop_share * normal[q, j] for q in g)
            near = range(max(g[0] - 1, 0), min(g[-1] + 2, len(gone)))
            split = len(g) <= 2 and (  # with a neighbour that lost a step (a third) or more
                sum(float(gone[q, j]) for q in near if gone[q, j] >= 0.3)
                >= rules.episode_min_lost_quarters
            )
            if not (stopped or split or any(protection[q, j] for q in g)):
                continue
            span = range(g[0], g[-1] + 1)
            lost = sum(max(normal[q, j] - np.nan_to_num(export[q, j]), 0.0) for q in span)
            out.append(
                TripEpisode(
                    eans[cid],
                    t0 + g[0] * QUARTER,
                    t0 + (g[-1] + 1) * QUARTER,
                    round(lost),
                    round(float(max(vmax[q, j] for q in span)), 1),
                )
            )
    return out


@dataclass(frozen=True)
class Uc03Result:
    """UC3's analysis of one flagged feeder over at most 10 days."""

    feeder: str
    period: Period
    cites: int
    operator: str
    inverter_limit_v: float
    breaks: tuple[Break, ...]
    episodes: tuple[TripEpisode, ...]
    counters: tuple[tuple[str, int, int, int], ...]
    """(EAN, meter phase, sags, swells) since installation, from UC2's read."""
    connections: tuple[str, ...]
    voltage_rows: int
    energy_rows: int
    audit_seq: int | None
    voltages: pa.Table | None = None
    """The 10-minute voltages read (for the picture; never written to JSON)."""
    connection_ids: Mapping[str, int] = field(default_factory=dict)
    """EAN -> the connection id the read tables carry."""

    @property
    def minutes(self) -> dict[tuple[str, int], dict[str, int]]:
        return minutes_outside(self.breaks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "use_case": PURPOSE,
            "feeder": self.feeder,
            "cites": self.cites,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "limits": {
                "band": "207-253 V",
                "operator": self.operator,
                "inverter_limit_v": self.inverter_limit_v,
            },
            "connections": len(self.connections),
            "voltage_rows": self.voltage_rows,
            "energy_rows": self.energy_rows,
            "audit_seq": self.audit_seq,
            "minutes_outside": [
                {"ean": e, "phase": p, **m} for (e, p), m in sorted(self.minutes.items())
            ],
            "breaks": [b.as_dict() for b in self.breaks],
            "trip_episodes": [e.as_dict() for e in self.episodes],
            "counters_since_installation": [
                {"ean": e, "phase": p, "sags": a, "swells": b} for e, p, a, b in self.counters
            ],
        }


def feeder_eans(gate: Gate, feeder: str, period: Period) -> tuple[str, ...]:
    """The smart meters on ``feeder`` ("substation/feeder", UC1's street rule as UC2
    places them) on the period's first local day."""
    spots = population(gate.register_view.connection_versions(to_local(period.start).date()))
    return tuple(e for e, s in spots.items() if f"{s.substation}/{s.feeder}" == feeder)


def analyse_feeder(
    gate: Gate,
    party: Party,
    feeder: str,
    cites: int,
    period: Period,
    at: datetime,
    trigger: str,
    rules: VoltageQualityRules | None = None,
    counters: Sequence[tuple[str, int, int, int]] = (),
    eans: Sequence[str] | None = None,
) -> Uc03Result:
    """UC3: ask the gate once for ``feeder``'s 10-minute voltages and quarter-hour
    feed-in over ``period`` (at most 10 days), citing the UC2 finding ``cites``; report
    the limit breaks per phase and the inverter-trip episodes. Raises
    :class:`Uc03Error` with the gate's rule IDs on a refusal."""
    rules = rules or rulebook.voltage_quality()
    wanted = tuple(eans) if eans is not None else feeder_eans(gate, feeder, period)
    if not wanted:
        raise Uc03Error(f"feeder {feeder} has no smart meters in the register; name another")
    grant = ask(
        gate,
        AccessRequest(
            party,
            PURPOSE,
            wanted,
            frozenset({VOLTAGES, ENERGY}),
            period,
            at,
            justification=f"UC3 seasonal analysis of feeder {feeder}",
            trigger=trigger,
            cites=cites,
        ),
        Uc03Error,
    )
    volts = grant.read(VOLTAGES)
    energy = grant.read(ENERGY).select(["connection", "start", "import_wh", "export_wh"])
    ids = {cid: ean for ean, cid in grant.connection_ids.items()}
    breaks = limit_breaks(volts, ids, rules)
    episodes = trip_episodes(energy, volts, ids, rules)
    mine = set(wanted)
    return Uc03Result(
        feeder,
        period,
        cites,
        rules.inverter.operator,
        rules.inverter.limit_v,
        tuple(breaks),
        tuple(episodes),
        tuple(c for c in counters if c[0] in mine),
        wanted,
        volts.num_rows,
        energy.num_rows,
        grant.decision.audit_seq,
        volts.select(["connection", "start", "phase", "voltage_v"]),
        dict(grant.connection_ids),
    )
