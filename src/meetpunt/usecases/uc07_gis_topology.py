"""UC7 GIS topology improvement: each connection's cable (LV feeder) and phase from its
voltages, against the register's (GIS) registration.

The use-case list's UC7: read the 10-minute voltages of a group of connections for a
short period (at most 10 days, at most once a year per connection, ``use_case_catalogue``),
group them by cable and phase from the similarity of their voltages, report where the
registration differs, then delete the source data (PRV-5).

Method (docs/usecases.md, UC7): the *changes* of the voltage from one 10-minute mean to
the next (first differences) are correlated between connections. Differencing removes a
meter's own level and calibration offset; the median change over the substation is
removed as well (the medium-voltage side and the transformer's tap moves are common to
every connection). What remains is the voltage drop the load of one phase of one cable
causes, shared by the connections on that phase and cable and growing gradually along it
(Short 2013; Pappu et al. 2018; Olivier et al. 2018). Each (feeder, phase) group is one
centroid: its start is the registration (most of it is right) with three-phase meters,
whose L1/L2/L3 are the grid's phases, as fixed anchors that carry the phase labels;
every connection is then moved to the group its changes correlate best with (leave-one-out,
a few rounds, like k-means). A three-phase connection's three channels move together (one
feeder, phases fixed). Without three-phase anchors the phase labels are relative: the
groups are found from the voltages, named after the register's majority, and the result
says so (``phase_labels = "relative"``).

Second signal (issue 19): where the operator measures its feeders at the substation
(its own file, not meter data, so not through the gate), each meter's change less the
busbar's change on a phase is correlated with the fall of each feeder's power on that
phase (:func:`load_scores`, the load-driven voltage drop). It needs no other meter, so it
refutes a registration on a cable and phase where no other meter hangs, and it names
the grid's phases. Either signal may decide; when both decide and differ the answer is
``undecided``.

An honest ``undecided`` (issue 19): too few measured changes (a short period, a meter
with gaps), changes that correlate with no group (an unloaded cable), two groups that
fit nearly as well, or two signals that disagree. Addresses are never used.

Everything except :func:`find_topology`'s gate calls is a pure function over Arrow
tables and numpy arrays for one substation (or one feeder's group).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meetpunt.domain.capacity import Commodity, ElectricityCapacity
from meetpunt.domain.connection import ConnectionVersion, MeterType, PhysicalStatus
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Party, Period
from meetpunt.usecases.common import ask

PURPOSE = "UC7"
KIND = "voltages_10min"
STEP_S = 600
"""The 10-minute voltage profile (PQ profile 2)."""
PHASES = ("L1", "L2", "L3")
AGREES = "agrees"
PHASE_DIFFERS = "phase_differs"
FEEDER_DIFFERS = "feeder_differs"
UNDECIDED = "undecided"

MIN_CHANGES = 72
"""Fewest measured 10-minute changes (half a day) before a connection is judged (our
choice): fewer cannot tell a cable's load pattern from the meter's noise."""
MIN_CORRELATION = 0.15
"""A connection whose changes correlate less than this with every group is not judged
(our choice): its cable carries too little load to show (an unloaded feeder) or it is
not on this substation."""
MIN_MARGIN = 0.03
"""The best group must beat the second by this much correlation, or the answer is
``undecided`` (our choice; measured on the twin, docs/usecases.md)."""
MARGIN_SIGMAS = 3.5
"""...and by this many standard errors of a correlation over its changes (1/sqrt(n)):
with n changes, two groups closer than 3.5/sqrt(n) are noise apart (our choice)."""
FLAG_SIGMAS = 5.0
"""A correction is proposed only on a margin of this many standard errors (our choice:
a false flag costs a GIS clerk a visit; a doubtful one is ``undecided``)."""
MIN_PEERS = 2
"""A registration is refuted only against at least this many other meters found in the
registered cable and phase (our choice): a group of one or two is noise, not a profile."""
ROUNDS = 6
"""Rounds of re-assignment (k-means style); the groups settle in two or three."""
NO_SUPPLY_BELOW_V = 100.0
"""A 10-minute mean under this is an interruption, not a voltage to compare."""
PART_INTERRUPTED_V = 25.0
"""A 10-minute mean this far under the meter's median held part of an interruption."""
CLIP_MADS = 5.0
"""Changes are clipped at this many robust (MAD) deviations of their column (our choice)."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Uc07Error(MeetpuntError):
    """UC7 could not run: the gate refused it (``rules``) or the group is unknown."""


@dataclass(frozen=True)
class Member:
    """One connection of the group as the register has it (REG-2)."""

    ean: str
    connection: int
    """The register's connection id (the hub's ``connection`` column)."""
    feeder: str
    phase: str | None
    """``L1``/``L2``/``L3``; ``None`` for a three-phase connection."""
    three_phase: bool
    position: int = 0
    """The house number, for the picture of the row of houses only: the analysis never
    uses it (addresses may say nothing about the cable)."""


@dataclass(frozen=True)
class Placement:
    """Where UC7 finds one connection, against its registration."""

    ean: str
    registered_feeder: str
    registered_phase: str | None
    found_feeder: str | None
    found_phase: str | None
    confidence: float
    verdict: str
    reason: str = ""
    changes: int = 0
    """Measured 10-minute changes the judgement rests on."""
    mean_v: float | None = None
    """The mean of the connection's 10-minute voltages (its place on the cable's profile)."""
    position: int = 0
    """The member's house number (the picture's row of houses)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.ean,
            "registered_feeder": self.registered_feeder,
            "registered_phase": self.registered_phase,
            "found_feeder": self.found_feeder,
            "found_phase": self.found_phase,
            "confidence": round(self.confidence, 3),
            "verdict": self.verdict,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Uc07Result:
    """UC7's answer for one substation (or feeder) and period."""

    substation: str
    feeder: str | None
    period: Period
    connections: tuple[Placement, ...]
    phase_labels: str
    """``anchored`` (three-phase meters name the phases) or ``relative`` (named after
    the register's majority per group; no meter here knows the grid's phase)."""
    rows_read: int = 0
    audit_seq: int | None = None
    deleted: tuple[str, ...] = ()
    """The read copies deleted after the analysis (PRV-5)."""

    @property
    def corrections(self) -> tuple[Placement, ...]:
        """The proposed GIS corrections: placements that differ from the register."""
        return tuple(p for p in self.connections if p.verdict in (PHASE_DIFFERS, FEEDER_DIFFERS))

    def summary(self) -> dict[str, Any]:
        verdicts = [p.verdict for p in self.connections]
        return {
            "connections": len(verdicts),
            "agrees": verdicts.count(AGREES),
            "phase_differs": verdicts.count(PHASE_DIFFERS),
            "feeder_differs": verdicts.count(FEEDER_DIFFERS),
            "undecided": verdicts.count(UNDECIDED),
            "phase_labels": self.phase_labels,
            "rows_read": self.rows_read,
            "source_data_deleted": bool(self.deleted),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "use_case": PURPOSE,
            "substation": self.substation,
            "feeder": self.feeder,
            "period": {
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
            },
            "audit_seq": self.audit_seq,
            "connections": [p.as_dict() for p in self.connections],
            "summary": self.summary(),
        }


# --------------------------------------------------------------------------- pure part


@dataclass(frozen=True)
class Channels:
    """The voltage inputs of a group: one column per (connection, meter phase)."""

    member: IntArray
    """Index into the members of each column."""
    meter_phase: IntArray
    """The meter's phase number 1..3 (a single-phase meter reports 1)."""
    volts: FloatArray
    """(steps, columns) 10-minute means; NaN where missing or without supply."""


def channels(table: pa.Table, members: Sequence[Member], period: Period) -> Channels:
    """The rows of ``voltages_10min`` (``connection``, ``start``, ``phase``,
    ``voltage_v``) as a (steps x channels) array over ``period`` (pure)."""
    n_steps = max(int(period.length.total_seconds()) // STEP_S, 0)
    index = {m.connection: i for i, m in enumerate(members)}
    wanted: list[tuple[int, int]] = []
    for i, m in enumerate(members):
        wanted.extend((i, p) for p in ((1, 2, 3) if m.three_phase else (1,)))
    column = {key: j for j, key in enumerate(wanted)}
    volts = np.full((n_steps, len(wanted)), np.nan)
    if table.num_rows and n_steps:
        conn = table.column("connection").to_numpy(zero_copy_only=False).astype(np.int64)
        phase = table.column("phase").to_numpy(zero_copy_only=False).astype(np.int64)
        value = table.column("voltage_v").to_numpy(zero_copy_only=False).astype(np.float64)
        start = table.column("start").cast(pa.timestamp("s", tz="UTC"))
        secs = start.to_numpy(zero_copy_only=False).astype("datetime64[s]").astype(np.int64)
        origin = int(period.start.timestamp())
        step = (secs - origin) // STEP_S
        cols = np.array(
            [
                column.get((index.get(int(c), -1), int(p)), -1)
                for c, p in zip(conn, phase, strict=True)
            ],
            dtype=np.int64,
        )
        ok = (cols >= 0) & (step >= 0) & (step < n_steps) & np.isfinite(value)
        volts[step[ok], cols[ok]] = value[ok]
    volts[volts < NO_SUPPLY_BELOW_V] = np.nan
    with warnings.catch_warnings():  # a column without any voltage stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = np.nanmedian(volts, axis=0) if volts.size else np.zeros(volts.shape[1])
    # a 10-minute mean with part of an interruption in it is no voltage to compare
    volts[volts < typical[None, :] - PART_INTERRUPTED_V] = np.nan
    return Channels(
        np.array([i for i, _ in wanted], dtype=np.int64),
        np.array([p for _, p in wanted], dtype=np.int64),
        volts,
    )


def changes(volts: FloatArray) -> FloatArray:
    """First differences with the group's common change (median over all columns per
    step) removed; NaN where a column misses either end of a step."""
    d = np.diff(volts, axis=0)
    if d.size == 0:
        return d
    common = np.zeros(d.shape[0])
    seen = np.isfinite(d).any(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        common[seen] = np.nanmedian(d[seen], axis=1)
    r = d - common[:, None]
    # a rare large step (a switching action, an event) must not outweigh days of load
    # changes: each column is clipped at CLIP_MADS robust deviations
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mad = np.nanmedian(np.abs(r), axis=0)
    bound = np.maximum(CLIP_MADS * 1.4826 * np.nan_to_num(mad), 0.1)
    return np.clip(r, -bound[None, :], bound[None, :])


@dataclass(frozen=True)
class FeederLoads:
    """The operator's own measurements at one substation on UC7's 10-minute steps: per
    feeder and phase the feeder-head power, and the LV busbar voltage per phase. Not
    meter data: UC7 reads them from the operator's files (``substation_measurements``),
    not through the gate (docs/usecases.md, UC7)."""

    feeders: tuple[str, ...]
    power_kw: FloatArray
    """(steps, feeders, 3) mean power per feeder and phase; NaN where not measured."""
    busbar_v: FloatArray
    """(steps, 3) mean LV busbar voltage per phase; NaN where not measured."""


def feeder_loads(stations: pa.Table, substation: str, period: Period) -> FeederLoads | None:
    """The operator's substation measurements (``substation``, ``feeder``, ``start``,
    ``busbar_v_l1..3``, ``power_kw_l1..3``, any step length up to 10 minutes) of one
    substation as 10-minute means over ``period`` (pure); ``None`` when it has none."""
    n_steps = max(int(period.length.total_seconds()) // STEP_S, 0)
    needed = {"substation", "feeder", "start"} | {
        f"{k}_l{p}" for k in ("busbar_v", "power_kw") for p in (1, 2, 3)
    }
    if not n_steps or not needed <= set(stations.column_names):
        return None
    table = stations.filter(pc.equal(stations.column("substation"), substation))
    if not table.num_rows:
        return None
    feeder_of = [str(f) for f in table.column("feeder").to_pylist()]
    feeders = tuple(sorted(set(feeder_of)))
    fi = np.array([feeders.index(f) for f in feeder_of], dtype=np.int64)
    start = table.column("start").cast(pa.timestamp("s", tz="UTC"))
    secs = start.to_numpy(zero_copy_only=False).astype("datetime64[s]").astype(np.int64)
    step = (secs - int(period.start.timestamp())) // STEP_S
    ok = (step >= 0) & (step < n_steps)
    power_sum = np.zeros((n_steps, len(feeders), 3))
    power_n = np.zeros((n_steps, len(feeders), 3))
    bus_sum = np.zeros((n_steps, 3))
    bus_n = np.zeros((n_steps, 3))
    for p in range(3):
        pw = table.column(f"power_kw_l{p + 1}").to_numpy(zero_copy_only=False).astype(float)
        bv = table.column(f"busbar_v_l{p + 1}").to_numpy(zero_copy_only=False).astype(float)
        good = ok & np.isfinite(pw)
        np.add.at(power_sum, (step[good], fi[good], p), pw[good])
        np.add.at(power_n, (step[good], fi[good], p), 1.0)
        good = ok & np.isfinite(bv) & (bv >= NO_SUPPLY_BELOW_V)
        np.add.at(bus_sum, (step[good], p), bv[good])
        np.add.at(bus_n, (step[good], p), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        power = np.where(power_n > 0, power_sum / np.maximum(power_n, 1), np.nan)
        bus = np.where(bus_n > 0, bus_sum / np.maximum(bus_n, 1), np.nan)
    return FeederLoads(feeders, power, bus)


def _clipped(r: FloatArray) -> FloatArray:
    """Each column clipped at :data:`CLIP_MADS` robust deviations (NaN kept)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mad = np.nanmedian(np.abs(r - np.nanmedian(r, axis=0)), axis=0) if r.size else r
    bound = np.maximum(CLIP_MADS * 1.4826 * np.nan_to_num(mad), 1e-3)
    return np.clip(r, -bound[None, :], bound[None, :])


def load_scores(ch: Channels, loads: FeederLoads, names: Sequence[tuple[str, str]]) -> FloatArray:
    """(channels, groups) correlation of each channel's voltage change, less the busbar's
    change on the group's phase, with the fall of the group's feeder-head power on that
    phase: the load-driven voltage drop along the cable (UC7's second signal; pure).
    Zero for a group the operator does not measure."""
    n_ch = ch.volts.shape[1]
    out = np.zeros((n_ch, len(names)))
    if ch.volts.shape[0] < 2 or loads.power_kw.shape[0] != ch.volts.shape[0]:
        return out
    dv = np.diff(ch.volts, axis=0)
    for p, phase in enumerate(PHASES):
        groups = [
            (k, loads.feeders.index(f))
            for k, (f, ph) in enumerate(names)
            if ph == phase and f in loads.feeders
        ]
        if not groups:
            continue
        x = _clipped(dv - np.diff(loads.busbar_v[:, p])[:, None])
        s = -_clipped(np.diff(loads.power_kw[:, [i for _, i in groups], p], axis=0))
        rows: BoolArray = np.asarray(np.isfinite(s).all(axis=1), dtype=np.bool_)
        mask = np.isfinite(x) & rows[:, None]
        xm = np.where(mask, x, 0.0)
        xm = np.where(mask, xm - xm.sum(axis=0) / np.maximum(mask.sum(axis=0), 1), 0.0)
        sm = np.where(rows[:, None], s, 0.0)
        sm = np.where(rows[:, None], sm - sm.sum(axis=0) / max(int(rows.sum()), 1), 0.0)
        m = mask.astype(float)
        num = xm.T @ sm  # (C, F)
        den = np.sqrt((xm**2).sum(axis=0)[:, None] * (m.T @ sm**2))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.where(den > 1e-12, num / np.maximum(den, 1e-12), 0.0)
        for col, (k, _) in enumerate(groups):
            out[:, k] = corr[:, col]
    return out


@dataclass
class _Groups:
    names: list[tuple[str, str]]
    """(feeder, phase) of each group."""
    of: IntArray
    """Each channel's group (-1: none)."""
    fixed: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))


def place(
    members: Sequence[Member],
    ch: Channels,
    min_changes: int = MIN_CHANGES,
    min_correlation: float = MIN_CORRELATION,
    min_margin: float = MIN_MARGIN,
    loads: FeederLoads | None = None,
) -> tuple[list[Placement], str]:
    """Each member's found feeder and phase from its voltage changes (UC7; pure), and,
    with the operator's feeder measurements (``loads``), from the load-driven drop too.

    Returns the placements in member order and how the phases are labelled
    (``anchored`` by three-phase meters or the operator's per-phase measurements,
    else ``relative``)."""
    z, counts, usable = _normalised(changes(ch.volts), min_changes)
    feeders = sorted({m.feeder for m in members if m.feeder})
    names = [(f, p) for f in feeders for p in PHASES]
    gid = {n: k for k, n in enumerate(names)}
    n_ch = len(ch.member)
    of = np.full(n_ch, -1, dtype=np.int64)
    anchored = np.zeros(n_ch, dtype=bool)
    for j in range(n_ch):
        m = members[int(ch.member[j])]
        if m.three_phase:
            of[j] = gid.get((m.feeder, PHASES[int(ch.meter_phase[j]) - 1]), -1)
            anchored[j] = usable[j]
        elif m.phase in PHASES:
            of[j] = gid.get((m.feeder, m.phase), -1)
    has_anchors = bool(anchored.any())
    of[~usable] = -1
    cols_of = {i: np.flatnonzero(ch.member == i) for i in range(len(members))}
    for _ in range(ROUNDS):
        new = _round(members, ch, z, of, usable, feeders, gid, cols_of, min_margin)
        if np.array_equal(new, of):
            break
        of = new
    score = _scores(z, of, len(names))
    load = None if loads is None else load_scores(ch, loads, names)
    if load is not None and not load.any():
        load = None
    placements = [
        _judge(
            m,
            cols_of[i],
            ch,
            score,
            of,
            names,
            feeders,
            gid,
            counts,
            usable,
            min_correlation,
            min_margin,
            load,
        )
        for i, m in enumerate(members)
    ]
    return placements, "anchored" if has_anchors or load is not None else "relative"


def _normalised(d: FloatArray, min_changes: int) -> tuple[FloatArray, IntArray, BoolArray]:
    """Each column's changes centred and scaled to unit length (zero where missing), how
    many it has, and whether that is enough (:data:`MIN_CHANGES`)."""
    valid = np.isfinite(d)
    counts = valid.sum(axis=0).astype(np.int64)
    z = np.where(valid, d, 0.0)
    z -= z.sum(axis=0) / np.maximum(counts, 1)
    z = np.where(valid, z, 0.0)
    norm = np.sqrt((z**2).sum(axis=0))
    usable = (counts >= min_changes) & (norm > 0)
    z[:, usable] /= norm[usable]
    z[:, ~usable] = 0.0
    return z, counts, usable


def _round(
    members: Sequence[Member],
    ch: Channels,
    z: FloatArray,
    of: IntArray,
    usable: BoolArray,
    feeders: Sequence[str],
    gid: Mapping[tuple[str, str], int],
    cols_of: Mapping[int, IntArray],
    min_margin: float,
) -> IntArray:
    """One round of re-assignment: a single-phase channel moves to the group it fits
    best, a three-phase meter's channels to the feeder they fit best together (phases
    fixed). Only a clear gain moves (hysteresis): groups the voltages cannot tell apart
    keep the registration instead of collapsing into one."""
    n_ch = len(ch.member)
    new = of.copy()
    if not feeders:
        return new
    score = _scores(z, of, len(gid))
    three = [i for i, m in enumerate(members) if m.three_phase]
    single = usable & ~np.isin(ch.member, three)
    top = np.argmax(score, axis=1)
    rows = np.arange(n_ch)
    current = np.where(of >= 0, score[rows, np.maximum(of, 0)], -np.inf)
    moves = single & (score[rows, top] - current >= min_margin)
    new[moves] = top[moves]
    for i in three:
        cols = cols_of[i]
        if not usable[cols].all():
            continue
        fits = [
            sum(score[j, gid[(f, PHASES[int(ch.meter_phase[j]) - 1])]] for j in cols)
            for f in feeders
        ]
        now = members[i].feeder if int(of[cols[0]]) < 0 else _feeder_of(gid, int(of[cols[0]]))
        k = int(np.argmax(fits))
        if now in feeders and fits[k] - fits[feeders.index(now)] < min_margin * len(cols):
            continue
        for j in cols:
            new[j] = gid[(feeders[k], PHASES[int(ch.meter_phase[j]) - 1])]
    return new


def _feeder_of(gid: Mapping[tuple[str, str], int], group: int) -> str:
    return next(f for (f, _), k in gid.items() if k == group)


def _scores(z: FloatArray, of: IntArray, n_groups: int) -> FloatArray:
    """(channels, groups) correlation of each channel's changes with each group's mean
    change, leaving the channel itself out of its own group."""
    n_ch = z.shape[1]
    if n_groups == 0 or n_ch == 0:
        return np.zeros((n_ch, n_groups))
    member = np.zeros((n_ch, n_groups))
    inside = of >= 0
    member[np.flatnonzero(inside), of[inside]] = 1.0
    sums = z @ member  # (T, G)
    dots = z.T @ sums  # (C, G): z_j . sum_g
    sq = (sums**2).sum(axis=0)  # |sum_g|^2
    own = (z**2).sum(axis=0)  # 1 for usable columns, 0 otherwise
    dots_loo = dots - member * own[:, None]
    sq_loo = sq[None, :] - 2 * member * dots + member * own[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sq_loo > 1e-12, dots_loo / np.sqrt(np.maximum(sq_loo, 1e-12)), 0.0)
    return np.asarray(out, dtype=np.float64)


def _peers(
    m: Member,
    cols: IntArray,
    ch: Channels,
    of: IntArray,
    usable: BoolArray,
    gid: Mapping[tuple[str, str], int],
) -> int:
    """How many other usable meter channels the voltages put in the member's registered
    group(s) (the fewest over a three-phase meter's phases)."""
    counts = []
    for j in cols:
        phase = PHASES[int(ch.meter_phase[j]) - 1] if m.three_phase else m.phase
        g = gid.get((m.feeder, phase or ""), -1)
        inside = usable & (of == g)
        inside[cols] = False
        counts.append(int(inside.sum()) if g >= 0 else 0)
    return min(counts) if counts else 0


def _top(fits: FloatArray) -> tuple[int, float, float]:
    """The best option's index, its score and the second-best score."""
    order = np.argsort(fits)[::-1]
    second = float(fits[order[1]]) if len(order) > 1 else 0.0
    return int(order[0]), float(fits[order[0]]), second


def _judge(
    m: Member,
    cols: IntArray,
    ch: Channels,
    score: FloatArray,
    of: IntArray,
    names: Sequence[tuple[str, str]],
    feeders: Sequence[str],
    gid: Mapping[tuple[str, str], int],
    counts: IntArray,
    usable: BoolArray,
    min_correlation: float,
    min_margin: float,
    load: FloatArray | None = None,
) -> Placement:
    """One member's verdict from two independent signals: its neighbours' voltage
    changes (``score``) and, where the operator measures its feeders, the load-driven
    drop (``load``, :func:`load_scores`). Either may decide alone; when both decide and
    differ, or neither decides, the answer is ``undecided`` with the reason (UC7)."""
    n = int(counts[cols].min()) if len(cols) else 0
    level = ch.volts[:, cols]
    mean_v = float(np.nanmean(level)) if np.isfinite(level).any() else None

    def undecided(reason: str) -> Placement:
        return Placement(
            m.ean, m.feeder, m.phase, None, None, 0.0, UNDECIDED, reason, n, mean_v, m.position
        )

    if not len(cols) or not usable[cols].all():
        return undecided(
            f"{n} measured 10-minute changes, fewer than {MIN_CHANGES}: too few days or a "
            "meter with gaps"
        )
    if not names:
        return undecided("the register names no feeder for this group")

    def fits_of(matrix: FloatArray) -> FloatArray:
        if not m.three_phase:
            return np.asarray(matrix[int(cols[0])], dtype=np.float64)
        return np.array(
            [
                np.mean([matrix[j, gid[(f, PHASES[int(ch.meter_phase[j]) - 1])]] for j in cols])
                for f in feeders
            ]
        )

    options: list[tuple[str, str | None]] = (
        [(f, None) for f in feeders] if m.three_phase else list(names)
    )
    registered = (m.feeder, m.phase)
    sigma = 1 / np.sqrt(max(n, 1))
    needed = max(min_margin, MARGIN_SIGMAS * sigma)
    k, best, second = _top(fits_of(score))
    found = options[k]
    margin = best - second
    by_meters = best >= min_correlation and margin >= needed
    peers = _peers(m, cols, ch, of, usable, gid)
    if found != registered and peers < MIN_PEERS:
        by_meters = False  # too few meters in the registered group to refute it
    by_load = False
    load_found: tuple[str, str | None] | None = None
    load_margin = 0.0
    if load is not None and np.any(fits_of(load)):
        lk, lbest, lsecond = _top(fits_of(load))
        load_found, load_margin = options[lk], lbest - lsecond
        by_load = lbest >= min_correlation and load_margin >= needed
    if by_meters and by_load and found != load_found:
        return undecided(
            f"its neighbours' voltages point to {_where(found)}, the operator's feeder load "
            f"to {_where(load_found)}: the two signals disagree"
        )
    if not by_meters and not by_load:
        if found != registered and peers < MIN_PEERS:
            return undecided(
                f"its registered cable and phase have {peers} other meter(s) to compare "
                f"with, fewer than {MIN_PEERS}, and no operator measurement of the feeder "
                "decides: the registration can be neither confirmed nor refuted"
            )
        if best < min_correlation:
            return undecided(
                f"its voltage changes follow no group (best correlation {best:.2f} < "
                f"{min_correlation}): an unloaded cable or too little load to show"
            )
        return undecided(f"two groups fit nearly as well (correlation {best:.2f} vs {second:.2f})")
    if not by_meters and load_found is not None:
        found, margin = load_found, load_margin
    elif by_load:
        margin = max(margin, load_margin)
    confidence = float(min(1.0, margin / (2 * needed)))
    if found != registered and margin < FLAG_SIGMAS * sigma:
        return undecided(
            f"the voltages lean to {_where(found)} but not clearly enough to propose a "
            f"correction (margin {margin:.2f})"
        )
    if found[0] != m.feeder:
        verdict = FEEDER_DIFFERS
    elif not m.three_phase and found[1] != m.phase:
        verdict = PHASE_DIFFERS
    else:
        verdict = AGREES
    return Placement(
        m.ean,
        m.feeder,
        m.phase,
        found[0],
        found[1],
        confidence,
        verdict,
        "",
        n,
        mean_v,
        m.position,
    )


def _where(spot: tuple[str, str | None] | None) -> str:
    if spot is None:
        return "nothing"
    return f"{spot[0]} {spot[1] or '3-phase'}"


def analyse(
    table: pa.Table,
    members: Sequence[Member],
    period: Period,
    loads: FeederLoads | None = None,
) -> tuple[list[Placement], str]:
    """UC7's analysis for one group (pure): the read rows (and the operator's feeder
    measurements, when it has them) in, placements out."""
    return place(members, channels(table, members, period), loads=loads)


# --------------------------------------------------------------------------- gate part


def in_population(version: ConnectionVersion) -> bool:
    """UC7 reads smart meters in service on an electricity connection (only they
    measure voltage)."""
    a = version.attributes
    return (
        version.commodity is Commodity.ELECTRICITY
        and a.status is PhysicalStatus.IN_SERVICE
        and a.meter_type is MeterType.SMART
    )


def members_of(
    versions: Sequence[ConnectionVersion], substation: str, feeder: str | None = None
) -> list[Member]:
    """The group's members as the register has them, in EAN order (the ids are filled
    in from the grant)."""
    out = []
    for v in sorted(versions, key=lambda v: v.ean):
        g = v.attributes.grid
        if not in_population(v) or g.substation != substation:
            continue
        if feeder is not None and g.feeder != feeder:
            continue
        capacity = v.attributes.capacity
        three = isinstance(capacity, ElectricityCapacity) and capacity.phases == 3
        phase = None if three or g.phase is None else str(g.phase.value)
        out.append(Member(v.ean, -1, g.feeder, phase, three, v.attributes.address.house_number))
    return out


def find_topology(
    gate: Gate,
    party: Party,
    substation: str,
    period: Period,
    at: datetime,
    trigger: str,
    workdir: Path,
    feeder: str | None = None,
    stations: pa.Table | None = None,
) -> Uc07Result:
    """UC7 for one substation (or one feeder): one gate request (purpose UC7, a GIS
    review as trigger), the read as a copy in ``workdir``, the analysis, and the
    deletion of the copy (PRV-5), all audited. ``stations`` are the operator's own
    substation measurements (not meter data, so not through the gate): with them the
    load-driven voltage drop is a second signal (:func:`load_scores`). Raises
    :class:`Uc07Error` when the gate refuses (with its rule IDs) or the register has no
    such group."""
    day = (period.start + timedelta(hours=12)).date()
    members = members_of(gate.register_view.connection_versions(day), substation, feeder)
    if not members:
        where = substation if feeder is None else f"{substation} feeder {feeder}"
        message = f"the register has no in-service smart meter on {where} on {day}"
        raise Uc07Error(
            f"UC7: {message}",
            [Finding("UC7.group", message)],
            "check the substation or feeder name (meetpunt register show EAN)",
        )
    grant = ask(
        gate,
        AccessRequest(
            party,
            PURPOSE,
            tuple(m.ean for m in members),
            frozenset({KIND}),
            period,
            at,
            justification="UC7 GIS topology improvement: cable and phase from voltages",
            trigger=trigger,
        ),
        Uc07Error,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / f"uc07-{substation}-{grant.decision.audit_seq}.parquet"
    try:
        grant.export(KIND, copy)
        table = pq.read_table(copy)
    finally:
        deleted = grant.finish()
    ids = grant.connection_ids
    members = [
        Member(m.ean, ids[m.ean], m.feeder, m.phase, m.three_phase, m.position)
        for m in members
        if m.ean in ids
    ]
    loads = None if stations is None else feeder_loads(stations, substation, period)
    placements, labels = analyse(table, members, period, loads)
    return Uc07Result(
        substation,
        feeder,
        period,
        tuple(placements),
        labels,
        table.num_rows,
        grant.decision.audit_seq,
        tuple(d.path for d in deleted),
    )
