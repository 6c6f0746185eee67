"""Grid interventions (UC5) and the operator's own measurements (UC5, UC12) in the twin.

UC5 judges whether an intervention worked: a transformer tap change, a cable
reinforcement (a second cable laid beside the feeder's backbone) or a feeder split (a
new cable from the busbar takes over the far half of a feeder). The twin applies one
on a working day in the period (:func:`choose_intervention`): the power flow switches
it in from that moment (:mod:`meetpunt.twin.powerflow`, batch updates of the tap and of
line statuses, so one model holds both states), and solves the steps after it a second
time WITHOUT it, so the truth holds the intervention's true effect at equal load,
weather and MV voltage: ``V_with - V_without`` per connection, phase and day
(``truth/intervention_effect.parquet``).

UC12 and UC5 also use what the operator measures itself, not smart-meter data
(:func:`substation_measurements`, :func:`cable_measurements`): per feeder at the
substation the phase currents and powers, the busbar voltages, the MV voltage and the
feeder's residual current (a core-balance CT: phase + neutral currents do not sum to
zero when current returns through the earth); along a feeder the residual current at
each cable cabinet. A broken neutral sends part of its connection's current back
through the earth (the earth-return share drawn per fault), which the residual
current at the substation and at every cabinet upstream of the house shows; healthy
feeders carry a small leakage, some a larger standing one that does not follow the
load (the hard case). Accuracy and leakage figures are twin assumptions ([A]).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from meetpunt.domain.calendar import local_day_bounds_utc
from meetpunt.twin.model import STEP_S, UTC_TS, FloatArray, TimeAxis
from meetpunt.twin.topology import Region

KINDS = ("tap_change", "reinforcement", "feeder_split")
TAP_STEP = 1
"""A tap change moves the MV-side tap one position up (250 V of 10.5 kV: the LV side
about 2.4 % lower), the usual answer to PV overvoltage."""
CABINET_EVERY = 8
"""[A] A cable cabinet (kabelverdeelkast) every 8 connections along a feeder."""
EARTH_SHARE = (0.2, 0.6)
"""[A] Share of a broken neutral's current that returns through the earth."""
CT_NOISE = (0.005, 0.2)
"""[A] Current measurement: 0.5 % of the value plus 0.2 A (class 0.5 CTs, 5-minute means)."""
RESIDUAL_NOISE_A = 0.08
"""[A] Noise of a residual-current measurement (5-minute mean)."""
LEAKAGE_A = (0.05, 0.4)
"""[A] A healthy feeder's standing leakage current."""
STANDING_LEAK_SHARE = 0.1
"""[A] Share of healthy feeders with a larger standing leak (1-3 A, slowly drifting,
not following the load): it must not be taken for a broken neutral."""
VOLTAGE_NOISE = 0.001
"""[A] Busbar and MV voltage measurement noise, relative (class 0.2)."""
MV_GAIN_BIAS = 0.005
"""[A] A constant gain error of the MV voltage sensor, per substation, up to this."""


@dataclass(frozen=True)
class Intervention:
    """One intervention in the grid from ``at`` on (UC5)."""

    kind: str
    substation: str
    feeder: str | None
    day: date
    at: datetime

    def as_row(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "substation": self.substation,
            "feeder": self.feeder or "",
            "day": self.day.isoformat(),
            "at": self.at.isoformat(),
        }


def intervention_day(axis: TimeAxis) -> date | None:
    """The local day of the intervention: up to 10 days after the start, so a 10-day
    read before it fits, with at least one day before it and one after the pause
    (None when the period is shorter than 3 days)."""
    if axis.days < 3:
        return None
    return axis.first_day + timedelta(days=min(10, axis.days // 2))


def choose_intervention(
    region: Region, axis: TimeAxis, rng: np.random.Generator, kind: str | None = None
) -> Intervention | None:
    """Draw the period's intervention: a kind, and a substation (tap change) or its
    longest feeder with at least 8 connections (reinforcement, split); at 10:00 local
    on :func:`intervention_day`."""
    day = intervention_day(axis)
    if day is None or not region.substations:
        return None
    chosen = kind or KINDS[int(rng.integers(0, len(KINDS)))]
    if chosen not in KINDS:
        raise ValueError(f"unknown intervention kind {chosen!r}; one of {', '.join(KINDS)}")
    sub = region.substations[int(rng.integers(0, len(region.substations)))]
    at = local_day_bounds_utc(day)[0] + timedelta(hours=10)
    if chosen == "tap_change":
        return Intervention(chosen, sub.id, None, day, at)
    feeders = [region.feeders[f] for f in sub.feeders if len(region.feeders[f].connections) >= 8]
    if not feeders:
        return Intervention("tap_change", sub.id, None, day, at)
    longest = max(feeders, key=lambda f: sum(s.length_km for s in f.segments))
    return Intervention(chosen, sub.id, longest.id, day, at)


def effect_truth(
    region: Region,
    axis: TimeAxis,
    intervention: Intervention | None,
    effect_v: FloatArray | None,
    first_step: int,
) -> tuple[pa.Table, pa.Table]:
    """``truth/interventions`` (one row) and ``truth/intervention_effect``: per
    connection, phase and UTC day after the intervention, the mean of ``V_with -
    V_without`` over the supplied steps and their number (UC5)."""
    described = pa.Table.from_pylist(
        [] if intervention is None else [intervention.as_row()],
        schema=pa.schema([(n, pa.string()) for n in ("kind", "substation", "feeder", "day", "at")]),
    )
    schema = pa.schema(
        [
            ("connection", pa.int32()),
            ("day", pa.date32()),
            ("phase", pa.int8()),
            ("steps", pa.int32()),
            ("effect_v", pa.float32()),
        ]
    )
    if intervention is None or effect_v is None:
        return described, pa.Table.from_pylist([], schema=schema)
    indices = np.array(
        [
            i
            for f in region.substations_feeders(intervention.substation)
            for i in region.feeders[f].connections
        ],
        dtype=np.int64,
    )
    steps = effect_v.shape[0]
    days = (np.arange(first_step, first_step + steps) * STEP_S) // 86_400
    rows: dict[str, list[object]] = {n: [] for n in schema.names}
    origin = axis.start_utc.date()
    valid = ~np.isnan(effect_v)
    for d in np.unique(days):
        sel = days == d
        count = valid[sel].sum(axis=0)
        total = np.where(valid[sel], effect_v[sel], 0.0).sum(axis=0)
        k, ph = np.nonzero(count > 0)
        rows["connection"].extend(indices[k].tolist())
        rows["day"].extend([origin + timedelta(days=int(d))] * len(k))
        rows["phase"].extend((ph + 1).tolist())
        rows["steps"].extend(count[k, ph].tolist())
        rows["effect_v"].extend((total[k, ph] / count[k, ph]).tolist())
    return described, pa.Table.from_pydict(rows, schema=schema)


def write_interventions(out_dir: Path, intervention: Intervention | None) -> None:
    """``operator/interventions.csv``: what the operator did, where and when (UC5)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "interventions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ("kind", "substation", "feeder", "day", "at"))
        writer.writeheader()
        if intervention is not None:
            writer.writerow(intervention.as_row())


def _times(axis: TimeAxis) -> pa.Array:
    start = np.datetime64(axis.start_utc.replace(tzinfo=None), "s")
    stamps = start + np.arange(axis.n_steps, dtype=np.int64) * np.timedelta64(STEP_S, "s")
    return pa.array(stamps, pa.timestamp("s")).cast(UTC_TS)


def cabinets(region: Region) -> dict[str, list[list[int]]]:
    """Per feeder its cabinet sections in street order: cabinet k feeds the
    connections from position ``CABINET_EVERY * k`` on; section k is the next
    ``CABINET_EVERY`` of them."""
    return {
        f.id: [
            f.connections[k : k + CABINET_EVERY]
            for k in range(0, len(f.connections), CABINET_EVERY)
        ]
        for f in region.feeders.values()
    }


def write_cabinets(region: Region, out_dir: Path) -> None:
    """``operator/cable_cabinets.csv``: which connections each cabinet section feeds
    (the operator's own network drawing; UC12's cable step)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "cable_cabinets.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("substation", "feeder", "cabinet", "ean"))
        for feeder, sections in cabinets(region).items():
            sub = region.feeders[feeder].substation
            for k, section in enumerate(sections):
                for i in section:
                    writer.writerow((sub, feeder, k, region.connections[i].ean))


def _earth_currents(
    region: Region,
    net_w: FloatArray,
    voltage_v: FloatArray,
    broken: Sequence[int],
    rng: np.random.Generator,
) -> dict[int, FloatArray]:
    """Per broken-neutral connection the current (A) it returns through the earth."""
    out: dict[int, FloatArray] = {}
    for i in sorted(broken):
        share = float(rng.uniform(*EARTH_SHARE))
        v = np.maximum(voltage_v[:, i, :], 1.0)
        amps = np.abs(net_w[:, i, :]) / v * (voltage_v[:, i, :] > 0)
        out[i] = (share * amps.sum(axis=1)).astype(np.float32)
    return out


def _leakages(region: Region, n_steps: int, rng: np.random.Generator) -> dict[str, FloatArray]:
    """Per feeder a healthy leakage current: small and steady, some large and drifting."""
    out: dict[str, FloatArray] = {}
    for fid in sorted(region.feeders):
        base = float(rng.uniform(*LEAKAGE_A))
        if float(rng.random()) < STANDING_LEAK_SHARE:
            drift = np.cumsum(rng.normal(0.0, 0.01, n_steps))
            base = float(rng.uniform(1.0, 3.0))
            out[fid] = np.clip(base + drift - drift.mean(), 0.2, None).astype(np.float32)
        else:
            out[fid] = np.full(n_steps, base, dtype=np.float32)
    return out


def substation_measurements(
    region: Region,
    axis: TimeAxis,
    net_w: FloatArray,
    voltage_v: FloatArray,
    busbar_v: FloatArray,
    mv_pu: FloatArray,
    broken: Sequence[int],
    rng: np.random.Generator,
) -> tuple[pa.Table, pa.Table]:
    """The operator's substation measurements (per feeder, 5-minute means) and its
    cable-cabinet residual currents, with measurement noise ([A] figures above)."""
    n_steps = axis.n_steps
    times = _times(axis)
    earth = _earth_currents(region, net_w, voltage_v, broken, rng)
    leak = _leakages(region, n_steps, rng)
    mv_gain = {
        s.id: 1.0 + float(rng.uniform(-MV_GAIN_BIAS, MV_GAIN_BIAS)) for s in region.substations
    }
    feeder_parts: list[pa.Table] = []
    cabinet_parts: list[pa.Table] = []
    sections = cabinets(region)
    for s_no, sub in enumerate(region.substations):
        mv = mv_pu[:, s_no] * 10.5 * mv_gain[sub.id]
        for fid in sub.feeders:
            conns = region.feeders[fid].connections
            idx = np.array(conns, dtype=np.int64)
            v = np.maximum(voltage_v[:, idx, :], 1.0)
            amps = np.where(voltage_v[:, idx, :] > 0, net_w[:, idx, :] / v, 0.0).sum(axis=1)
            power = net_w[:, idx, :].sum(axis=1) / 1000.0
            current = np.abs(amps)
            current = current * (1 + rng.normal(0, CT_NOISE[0], current.shape)) + rng.normal(
                0, CT_NOISE[1], current.shape
            )
            own_earth = [earth[i] for i in conns if i in earth]
            residual = leak[fid] + (np.sum(own_earth, axis=0) if own_earth else 0.0)
            residual = np.abs(residual + rng.normal(0, RESIDUAL_NOISE_A, n_steps))
            bus = busbar_v[:, s_no, :] * (1 + rng.normal(0, VOLTAGE_NOISE, (n_steps, 3)))
            cols: dict[str, object] = {
                "substation": pa.array([sub.id] * n_steps),
                "feeder": pa.array([fid] * n_steps),
                "start": times,
                "mv_kv": pa.array(
                    (mv * (1 + rng.normal(0, VOLTAGE_NOISE, n_steps))).astype(np.float32)
                ),
            }
            for ph in range(3):
                cols[f"busbar_v_l{ph + 1}"] = pa.array(bus[:, ph].astype(np.float32))
                cols[f"current_a_l{ph + 1}"] = pa.array(
                    np.maximum(current[:, ph], 0.0).astype(np.float32)
                )
                cols[f"power_kw_l{ph + 1}"] = pa.array(power[:, ph].astype(np.float32))
            cols["residual_a"] = pa.array(residual.astype(np.float32))
            feeder_parts.append(pa.table(cols))
            n_cab = len(sections[fid])
            for k in range(n_cab):
                downstream = conns[k * CABINET_EVERY :]
                share = len(downstream) / max(len(conns), 1)
                down_earth = [earth[i] for i in downstream if i in earth]
                res = leak[fid] * share + (np.sum(down_earth, axis=0) if down_earth else 0.0)
                res = np.abs(res + rng.normal(0, RESIDUAL_NOISE_A, n_steps))
                cabinet_parts.append(
                    pa.table(
                        {
                            "substation": pa.array([sub.id] * n_steps),
                            "feeder": pa.array([fid] * n_steps),
                            "cabinet": pa.array(np.full(n_steps, k, dtype=np.int16)),
                            "start": times,
                            "residual_a": pa.array(res.astype(np.float32)),
                        }
                    )
                )
    return pa.concat_tables(feeder_parts), pa.concat_tables(cabinet_parts)
