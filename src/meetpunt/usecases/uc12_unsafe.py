"""UC12 Unsafe situations: substation, then the cable, then individual connections.

Use-case list UC12, stappenplan: "1. Meting op stationsniveau 2. Meting op de kabel
3. Meting op individuele aansluitingen"; individual data "(zoals spanning en, als dat
van toepassing is, terugleververmogen) voor maximaal 10 dagen" and only "wanneer uit de
eerste stappen blijkt dat er een probleem is". The unsafe situation looked for is a
broken neutral (PEN): the house's star point floats, part of its current returns
through the earth, and its voltage swings with its own load.

1. **Substation** (the operator's own measurement, not smart-meter data): a feeder whose
   residual current (phase + neutral currents do not sum to zero: current returns
   through the earth) jumps with the load. A standing leakage moves slowly and is not
   taken for one. Recorded with ``Gate.flag(step="substation")`` naming the feeder's
   connections.
2. **Cable** (the operator's own measurement along the flagged feeder): the last cable
   cabinet whose residual still jumps; the broken neutral hangs in the section it
   feeds. Recorded with ``Gate.flag(step="cable")`` per pointed section, naming that
   section's connections and its own window: the days its residual jumped most.
3. **Individual connections**: per pointed section one gate request citing that
   section's cable finding, for its connections only, over its window: voltages and
   feed-in for at most 10 days. A meter
   phase whose voltage departs from its neighbours' by more than the threshold swings
   on a floating star point: visit that connection.

Each step is pure (:func:`substation_step`, :func:`cable_step`, :func:`connection_step`
over Arrow tables of one substation or feeder); :func:`find_unsafe` records the
findings, asks the gate and calls them, so the audit shows the chain.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from meetpunt import rulebook
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Party, Period
from meetpunt.usecases.common import ask

PURPOSE = "UC12"
VOLTAGES = "voltages_10min"

FEED_IN = "quarter_hours"


class Uc12Error(MeetpuntError):
    """UC12 cannot run: the gate refused, or the operator's files are not usable."""


@dataclass(frozen=True)
class Uc12Rules:
    """UC12's thresholds (``data/grid_checks.toml`` [uc12])."""

    residual_quantile: float = 0.99
    residual_jump_a: float = 0.8
    deviation_quantile: float = 0.99
    deviation_v: float = 6.0
    flag_valid_days: int = 14
    read_days: int = 10

    @classmethod
    def load(cls) -> Uc12Rules:
        body = rulebook.load_rules("grid_checks").body["uc12"]
        return cls(
            residual_quantile=float(body["residual_quantile"]),
            residual_jump_a=float(body["residual_jump_a"]),
            deviation_quantile=float(body["deviation_quantile"]),
            deviation_v=float(body["deviation_v"]),
            flag_valid_days=int(body["flag_valid_days"]),
            read_days=int(body["read_days"]),
        )


@dataclass(frozen=True)
class ResidualFinding:
    """One feeder (step 1) or cable cabinet (step 2): its residual current's jumps."""

    feeder: str
    cabinet: int | None
    jump_a: float
    mean_a: float
    points: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeder": self.feeder,
            "cabinet": self.cabinet,
            "jump_a": round(self.jump_a, 3),
            "mean_a": round(self.mean_a, 3),
            "points": self.points,
        }


@dataclass(frozen=True)
class MeterFinding:
    """Step 3 for one meter phase: how far it departs from its neighbours."""

    ean: str
    phase: int
    deviation_v: float
    feed_in_correlation: float | None
    unsafe: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "ean": self.ean,
            "phase": self.phase,
            "deviation_v": round(self.deviation_v, 2),
            "feed_in_correlation": None
            if self.feed_in_correlation is None
            else round(self.feed_in_correlation, 3),
            "unsafe": self.unsafe,
        }


@dataclass(frozen=True)
class Step:
    """One step of the chain: what it looked at, what it found, the finding's id."""

    name: str
    flag_id: int | None
    looked_at: tuple[ResidualFinding, ...] = ()
    names: tuple[str, ...] = ()
    window: Period | None = None
    """A cable step's finding: the days its section's residual jumped most, which its
    individual read covers."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "flag_id": self.flag_id,
            "looked_at": [f.as_dict() for f in self.looked_at],
            "names": len(self.names),
            "window": None
            if self.window is None
            else {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
        }


@dataclass(frozen=True)
class SectionRead:
    """Step 3 for one pointed section: the cable finding it cites, its own window and
    the smart meters read (none: the section has no smart meter to read)."""

    feeder: str
    cabinet: int
    flag_id: int
    period: Period
    eans: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeder": self.feeder,
            "cabinet": self.cabinet,
            "cites": self.flag_id,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "meters_read": len(self.eans),
        }


@dataclass(frozen=True)
class Uc12Result:
    """UC12's answer: the step chain, the meters read, and which connections to visit."""

    steps: tuple[Step, ...]
    meters: tuple[MeterFinding, ...]
    visit: tuple[str, ...]
    unresolved: tuple[str, ...]
    """Sections the cable step pointed at where no smart meter showed it: their
    connections without a smart meter reading (visit them too)."""
    individual_reads: int
    whole_feeder_reads: int
    read_period: Period | None = None
    """The earliest section read's window (each section has its own: :attr:`reads`)."""
    series: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=dict)
    """For the pictures: per EAN to visit its voltage and its neighbours' median."""
    reads: tuple[SectionRead, ...] = ()
    """One individual read per pointed section, each citing its own cable finding."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.as_dict() for s in self.steps],
            "meters": [m.as_dict() for m in self.meters],
            "visit": list(self.visit),
            "unresolved": list(self.unresolved),
            "individual_reads": self.individual_reads,
            "whole_feeder_reads": self.whole_feeder_reads,
            "read_period": None
            if self.read_period is None
            else {
                "start": self.read_period.start.isoformat(),
                "end": self.read_period.end.isoformat(),
            },
            "reads": [r.as_dict() for r in self.reads],
        }


def _jump(values: npt.NDArray[np.float64], quantile: float) -> float:
    if values.size < 2:
        return 0.0
    return float(np.quantile(np.abs(np.diff(values)), quantile))


def _grouped(
    table: pa.Table, keys: Sequence[str]
) -> list[tuple[tuple[Any, ...], npt.NDArray[np.float64]]]:
    """Per key the residual current in time order."""
    columns = [np.asarray(table[k].to_pylist()) for k in keys]
    t = np.asarray(pc.cast(table["start"], pa.timestamp("s", tz="UTC")).cast(pa.int64()))
    r = np.asarray(table["residual_a"], np.float64)
    order = np.lexsort((t, *reversed(columns)))
    out: list[tuple[tuple[Any, ...], npt.NDArray[np.float64]]] = []
    sorted_cols = [c[order] for c in columns]
    r = r[order]
    if r.size == 0:
        return out
    change = np.zeros(r.size - 1, bool)
    for c in sorted_cols:
        change |= c[1:] != c[:-1]
    cut = np.nonzero(change)[0] + 1
    for a, b in zip(np.r_[0, cut], np.r_[cut, r.size], strict=True):
        out.append((tuple(c[a].tolist() for c in sorted_cols), r[a:b]))
    return out


def substation_step(stations: pa.Table, rules: Uc12Rules) -> list[ResidualFinding]:
    """Step 1 (pure): per feeder of the substation measurements, whether its residual
    current jumps with the load (the quantile of its 5-minute jumps above the threshold)."""
    out = []
    for (feeder,), r in _grouped(stations, ["feeder"]):
        jump = _jump(r, rules.residual_quantile)
        out.append(
            ResidualFinding(str(feeder), None, jump, float(r.mean()), jump > rules.residual_jump_a)
        )
    return out


def cable_step(
    cabinet_table: pa.Table, feeders: Sequence[str], rules: Uc12Rules
) -> list[ResidualFinding]:
    """Step 2 (pure): per cabinet of the flagged feeders, whether its residual jumps;
    only the LAST such cabinet of a feeder points (the fault hangs in the section it
    feeds, not beyond the next cabinet, where the jumps stop)."""
    mine = cabinet_table.filter(pc.is_in(cabinet_table["feeder"], pa.array(list(feeders))))
    found: list[ResidualFinding] = []
    for (feeder, cabinet), r in _grouped(mine, ["feeder", "cabinet"]):
        jump = _jump(r, rules.residual_quantile)
        found.append(ResidualFinding(str(feeder), int(cabinet), jump, float(r.mean()), False))
    last: dict[str, int] = {}
    for f in found:
        if f.jump_a > rules.residual_jump_a and f.cabinet is not None:
            last[f.feeder] = max(last.get(f.feeder, -1), f.cabinet)
    return [
        ResidualFinding(f.feeder, f.cabinet, f.jump_a, f.mean_a, last.get(f.feeder) == f.cabinet)
        for f in found
    ]


def _matrix(
    voltages: pa.Table,
) -> tuple[list[tuple[int, int]], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Voltages as a (times, meter phases) matrix with NaN where a value is missing."""
    conn = np.asarray(voltages["connection"], np.int64)
    phase = np.asarray(voltages["phase"], np.int64)
    t = np.asarray(pc.cast(voltages["start"], pa.timestamp("s", tz="UTC")).cast(pa.int64()))
    v = np.asarray(voltages["voltage_v"], np.float64)
    keep = v > 100.0
    conn, phase, t, v = conn[keep], phase[keep], t[keep], v[keep]
    keys = sorted(set(zip(conn.tolist(), phase.tolist(), strict=True)))
    col = {k: i for i, k in enumerate(keys)}
    times, row = np.unique(t, return_inverse=True)
    m = np.full((len(times), len(keys)), np.nan)
    m[row, [col[k] for k in zip(conn.tolist(), phase.tolist(), strict=True)]] = v
    return keys, times, m


def _departure(
    own: npt.NDArray[np.float64], other: npt.NDArray[np.float64], quantile: float
) -> tuple[float, npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """The quantile of ``own - other`` centred on its median, over the times both have."""
    dev = own - other
    ok = ~np.isnan(dev)
    if ok.sum() < 2:
        return float("inf"), ok, dev[ok]
    dev = dev[ok] - np.median(dev[ok])
    return float(np.quantile(np.abs(dev), quantile)), ok, dev


def connection_step(
    voltages: pa.Table,
    feed_in: pa.Table | None,
    ids: Mapping[int, str],
    rules: Uc12Rules,
) -> tuple[list[MeterFinding], dict[str, tuple[tuple[float, ...], tuple[float, ...]]]]:
    """Step 3 (pure): per meter phase of the section read, how far its voltage departs
    from its neighbours': against each other meter phase read the quantile of the
    difference (centred on its median), and of those the SMALLEST. A healthy meter has
    at least one healthy neighbour on its own phase to agree with; a meter on a floating
    star point agrees with none. Above the threshold it swings with its own load.
    The register's phase is not used: a GIS phase error would give a healthy meter
    only the wrong phase's neighbours (and a median over the section's phases put two
    healthy three-phase meters 7 V off on the twin, PV lifting one phase). ``feed_in``
    (quarter-hour export) gives the correlation of the departure with the meter's
    feed-in, as evidence."""
    keys, times, m = _matrix(voltages)
    export = _export(feed_in, times) if feed_in is not None else {}
    findings: list[MeterFinding] = []
    series: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
    for i, (c, ph) in enumerate(keys):
        others = [j for j in range(len(keys)) if keys[j][0] != c]
        if not others:
            continue
        q, ok, dev = min(
            (_departure(m[:, i], m[:, j], rules.deviation_quantile) for j in others),
            key=lambda x: x[0],
        )
        if not np.isfinite(q):
            continue
        ean = ids.get(c, str(c))
        corr: float | None = None
        if c in export:
            e = export[c][ok]
            if e.std() > 0 and dev.std() > 0:
                corr = float(np.corrcoef(dev, e)[0, 1])
        unsafe = q > rules.deviation_v
        findings.append(MeterFinding(ean, int(ph), q, corr, unsafe))
        if unsafe:
            with np.errstate(all="ignore"):
                reference = np.nanmedian(m[:, others], axis=1)
            series[ean] = (
                tuple(float(x) for x in m[ok, i]),
                tuple(float(x) for x in reference[ok]),
            )
    return findings, series


def _export(feed_in: pa.Table, times: npt.NDArray[np.int64]) -> dict[int, npt.NDArray[np.float64]]:
    """Per connection its quarter-hour export (Wh) at each 10-minute time."""
    conn = np.asarray(feed_in["connection"], np.int64)
    t = np.asarray(pc.cast(feed_in["start"], pa.timestamp("s", tz="UTC")).cast(pa.int64()))
    wh = np.asarray(pc.cast(feed_in["export_wh"], pa.float64()), np.float64)
    out: dict[int, npt.NDArray[np.float64]] = {}
    quarter = times // 900 * 900
    for c in np.unique(conn):
        sel = conn == c
        lookup = dict(zip(t[sel].tolist(), wh[sel].tolist(), strict=True))
        out[int(c)] = np.array([lookup.get(int(q), 0.0) for q in quarter])
    return out


def busiest_window(
    cabinet_table: pa.Table,
    pointed: Sequence[tuple[str, int]],
    measured: Period,
    rules: Uc12Rules,
) -> Period:
    """The ``read_days`` (at most 10) of ``measured`` in which the pointed cabinets'
    residual current jumped most often (pure): the individual read covers the days the
    cable step saw the fault at work. A broken neutral shows only under load -- on the
    twin a house whose EV charged only early in the month swung 16 V over the month and
    0.8 V in its last 10 days -- so the last days alone can miss it."""
    days = rules.read_days
    total_days = int((measured.end - measured.start).total_seconds() // 86_400)
    if total_days <= days:
        return measured
    counts = np.zeros(total_days + 1)
    origin = int(measured.start.timestamp())
    for feeder, cabinet in pointed:
        mine = cabinet_table.filter(
            pc.and_(
                pc.equal(cabinet_table["feeder"], feeder),
                pc.equal(cabinet_table["cabinet"], cabinet),
            )
        )
        for _key, r in _grouped(mine, ["feeder"]):
            t = np.sort(
                np.asarray(pc.cast(mine["start"], pa.timestamp("s", tz="UTC")).cast(pa.int64()))
            )
            jumps = np.abs(np.diff(r)) > rules.residual_jump_a
            day = np.clip((t[1:][jumps] - origin) // 86_400, 0, total_days)
            np.add.at(counts, day, 1)
    sums = [counts[k : k + days].sum() for k in range(total_days - days + 1)]
    best = int(np.argmax(sums)) if any(sums) else total_days - days
    start = measured.start + timedelta(days=best)
    return Period(start, min(measured.end, start + timedelta(days=days)))


def read_cabinets(path: Path) -> dict[tuple[str, int], list[str]]:
    """The operator's cable cabinets: (feeder, cabinet) -> EANs of the section it feeds."""
    out: dict[tuple[str, int], list[str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                out.setdefault((row["feeder"], int(row["cabinet"])), []).append(row["ean"])
            except (KeyError, ValueError) as exc:
                raise Uc12Error(
                    f"{path}:{line}: not a cabinet line (substation,feeder,cabinet,ean): {exc}; "
                    "fix the line and run UC12 again",
                    [Finding("UC12.cabinet_file", f"{path}:{line}")],
                ) from exc
    return out


def find_unsafe(
    gate: Gate,
    party: Party,
    stations: pa.Table,
    cabinet_table: pa.Table,
    sections: Mapping[tuple[str, int], Sequence[str]],
    measured: Period,
    at: datetime,
    rules: Uc12Rules | None = None,
    smart: Mapping[str, int | None] | None = None,
) -> Uc12Result:
    """UC12 end to end over the operator's measurements of ``measured``: step 1 and 2
    recorded as findings (one per pointed section, with its own window), step 3 one gate
    request per section citing ITS finding, over the ``read_days`` in which that
    section's residual jumped most (voltages and feed-in). ``smart`` (EAN -> grid phase
    of a single-phase smart meter, None for three-phase) names the meters that can be
    read; the others of a pointed section are left for the visit (``unresolved``)."""
    rules = rules or Uc12Rules.load()
    valid_until = at + timedelta(days=rules.flag_valid_days)
    by_feeder: dict[str, list[str]] = {}
    for (feeder, _cab), eans in sorted(sections.items()):
        by_feeder.setdefault(feeder, []).extend(eans)
    first = substation_step(stations, rules)
    flagged = [f.feeder for f in first if f.points]
    whole = sum(len(by_feeder.get(f, [])) for f in flagged)
    steps: list[Step] = []
    if not flagged:
        steps.append(Step("substation", None, tuple(first)))
        return Uc12Result(tuple(steps), (), (), (), 0, 0)
    named = [e for f in flagged for e in by_feeder.get(f, [])]
    flag1 = gate.flag(
        party,
        PURPOSE,
        "substation",
        PURPOSE,
        named,
        valid_until,
        f"residual current jumps with the load on {', '.join(flagged)}",
    )
    steps.append(Step("substation", flag1, tuple(first), tuple(named)))
    second = cable_step(cabinet_table, flagged, rules)
    pointed = [(f.feeder, f.cabinet) for f in second if f.points and f.cabinet is not None]
    pointed = [key for key in pointed if sections.get(key)]
    if not pointed:
        steps.append(Step("cable", None, tuple(second)))
        return Uc12Result(tuple(steps), (), (), (), 0, whole)
    meters: list[MeterFinding] = []
    series: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
    reads: list[SectionRead] = []
    for feeder, cabinet in pointed:
        members = list(sections[(feeder, cabinet)])
        # each section's finding names its own window: the days ITS residual jumped most
        window = busiest_window(cabinet_table, [(feeder, cabinet)], measured, rules)
        flag = gate.flag(
            party,
            PURPOSE,
            "cable",
            PURPOSE,
            members,
            valid_until,
            f"residual current jumps up to cabinet {feeder}/{cabinet}, most in "
            f"{window.start:%Y-%m-%d %H:%M}..{window.end:%Y-%m-%d %H:%M} UTC",
        )
        looked = tuple(f for f in second if f.feeder == feeder)
        steps.append(Step("cable", flag, looked, tuple(members), window))
        readable = [e for e in members if smart is None or e in smart]
        if not readable:
            reads.append(SectionRead(feeder, cabinet, flag, window, ()))
            continue
        request = AccessRequest(
            party,
            PURPOSE,
            tuple(readable),
            frozenset({VOLTAGES, FEED_IN}),
            window,
            at,
            "UC12 step 3: individual connections",
            f"UC12 cable step, finding {flag} ({feeder}/{cabinet})",
            flag,
        )
        grant = ask(gate, request, Uc12Error)
        voltages = grant.read(VOLTAGES)
        feed_in = grant.read(FEED_IN).select(["connection", "start", "export_wh"])
        ids = {cid: ean for ean, cid in grant.connection_ids.items()}
        grant.finish()
        found, shown = connection_step(voltages, feed_in, ids, rules)
        meters += found
        series.update(shown)
        steps.append(Step("connections", None, (), tuple(readable), window))
        reads.append(SectionRead(feeder, cabinet, flag, window, tuple(readable)))
    visit = tuple(sorted({m.ean for m in meters if m.unsafe}))
    unresolved: tuple[str, ...] = ()
    for key in pointed:
        members = list(sections.get(key, []))
        if not any(e in visit for e in members):
            unresolved += tuple(e for e in members if smart is not None and e not in smart)
    individual = sum(len(r.eans) for r in reads)
    first_read = min((r.period for r in reads), key=lambda p: p.start, default=None)
    return Uc12Result(
        tuple(steps),
        tuple(meters),
        visit,
        unresolved,
        individual,
        whole,
        first_read,
        series,
        tuple(reads),
    )
