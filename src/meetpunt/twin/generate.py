"""``meetpunt twin generate``: build a region, simulate it, write everything to a folder.

Output layout (``--out DIR``)::

    register/       connections.csv, secondary_allocation_points.csv, contracts.csv
    operator/       planned_works.csv, outage_reports.csv (the operator's own knowledge)
    meterdata/      <kind>.parquet: quarter_hours, daily_readings, monthly_readings,
                    gas_hourly, voltages_10min, voltage_events, power_failures,
                    power_failure_log, last_gasp, manual_readings
    p1/             <ean>.p1: DSMR telegrams of a sample of meters, as a serial capture
    truth/          what really happened, per use case (see meetpunt.twin.truth)
    manifest.json   settings, seed, row counts and SHA-256 of every file

Every stage draws from its own random stream derived from the seed, so the same seed
gives the same files (the Parquet content is byte-equal).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meetpunt.twin import interventions, meters, p1, profiles, truth
from meetpunt.twin.faults import Faults, inject_faults
from meetpunt.twin.manual_readings import write_manual_readings
from meetpunt.twin.model import STEP_S, STEPS_PER_QUARTER, UTC_TS, TimeAxis
from meetpunt.twin.operatorfile import write_operator_files
from meetpunt.twin.powerflow import PhysicsResult, PhysicsSettings, simulate_physics
from meetpunt.twin.realities import Realities, RealityParams, draw_realities, realities_truth
from meetpunt.twin.registerfile import write_register
from meetpunt.twin.swaps import apply_meter_swaps, replace_during_outages
from meetpunt.twin.topology import Region, build_region

STREAMS = {
    "topology": 1,
    "faults": 2,
    "profiles": 3,
    "physics": 4,
    "meters": 5,
    "register": 6,
    "swaps": 7,
    "operator": 8,
    "realities": 9,
    "interventions": 10,
    "measurements": 11,
    "manual_readings": 12,
}
P1_SAMPLE = 5
P1_EVERY_STEPS = 3  # one telegram per quarter-hour in the sample's captures


@dataclass(frozen=True)
class TwinSettings:
    """What to generate."""

    connections: int = 1000
    days: int = 30
    start: date = date(2025, 6, 2)
    seed: int = 1
    faults: str = "showcase"
    """The outage mode: ``showcase``, ``field`` or ``stress`` (see :mod:`meetpunt.twin.faults`)."""
    meter_realities: bool | None = None
    """Meter realities (issue 16, :mod:`meetpunt.twin.realities`); None: on in ``field``
    and ``stress``, off in ``showcase`` (the demo's story)."""
    intervention: str | None = None
    """UC5's intervention kind (``tap_change``, ``reinforcement``, ``feeder_split``);
    None: drawn from the seed (:mod:`meetpunt.twin.interventions`)."""

    @property
    def realities_on(self) -> bool:
        """Whether this run has the meter realities."""
        if self.meter_realities is None:
            return self.faults != "showcase"
        return self.meter_realities


@dataclass
class TwinRun:
    """What a run produced and how long each stage took."""

    out: Path
    files: dict[str, dict[str, object]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    power_flows: int = 0
    solver_seconds: float = 0.0
    trip_power_flows: int = 0
    """Of :attr:`power_flows`, the steps solved again after inverter trips."""
    trip_solver_seconds: float = 0.0
    """Of :attr:`solver_seconds`, the seconds of those trip re-solves."""


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, STREAMS[stream]])


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", write_statistics=True)


def generate(
    settings: TwinSettings,
    out: Path,
    progress: Callable[[str, float], None] | None = None,
) -> TwinRun:
    """Generate the twin into ``out``; ``progress(stage, fraction_done)`` reports progress."""
    report = progress or (lambda _stage, _done: None)
    run = TwinRun(out=out)
    axis = TimeAxis.for_days(settings.start, settings.days)
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        run.seconds[stage] = round(now - clock, 3)
        clock = now

    report("topology", 0.0)
    region = build_region(settings.connections, _rng(settings.seed, "topology"))
    faults = inject_faults(region, axis, _rng(settings.seed, "faults"), settings.faults)
    intervention = interventions.choose_intervention(
        region, axis, _rng(settings.seed, "interventions"), settings.intervention
    )
    lap("topology")
    report("profiles", 0.05)
    power = profiles.simulate_profiles(region.connections, axis, _rng(settings.seed, "profiles"))
    lap("profiles")
    total_flows = axis.n_steps * len(region.substations)
    done = 0

    def flows_done(n: int) -> None:
        nonlocal done
        done += n
        report("power flow", 0.15 + 0.6 * min(done / total_flows, 1.0))

    physics = simulate_physics(
        region,
        axis,
        power.consumption_w,
        power.pv_w,
        faults.interruptions,
        _rng(settings.seed, "physics"),
        faults.broken_neutral,
        progress=flows_done,
        intervention=intervention,
    )
    run.power_flows, run.solver_seconds = physics.power_flows, physics.seconds_in_solver
    run.trip_power_flows, run.trip_solver_seconds = (
        physics.trip_power_flows,
        physics.trip_seconds_in_solver,
    )
    lap("power flow")
    report("meters", 0.8)
    realities = None
    if settings.realities_on:
        realities = draw_realities(
            [c.index for c in region.connections if c.meter.smart],
            axis,
            faults.interruptions,
            RealityParams.load(stress=settings.faults == "stress"),
            _rng(settings.seed, "realities"),
            exclude_replaced=sorted(faults.meter_swaps),
        )
    metered = meters.simulate_meters(
        region.connections,
        axis,
        power.consumption_w,
        physics.pv_w,
        physics.voltage_v,
        faults.interruptions,
        _rng(settings.seed, "meters"),
        gas_m3_hourly=power.gas_m3_hourly,
        realities=realities,
    )
    swapped = apply_meter_swaps(
        metered.tables, faults.meter_swaps, region, axis, _rng(settings.seed, "swaps")
    )
    if realities is not None and realities.replaced:
        replaced = replace_during_outages(
            metered.tables, dict(realities.replaced), metered.state, region
        )
        swapped = pa.concat_tables([swapped, replaced])
    lap("meters")
    report("writing", 0.9)
    _write_register_and_operator(settings, region, axis, faults, metered, realities, out)
    _write_measurements(
        region,
        axis,
        power.consumption_w,
        physics,
        faults,
        intervention,
        out,
        _rng(settings.seed, "measurements"),
    )
    for kind, table in metered.tables.items():
        _write_parquet(table, out / "meterdata" / f"{kind}.parquet")
    truths: dict[str, pa.Table] = {
        "connections": truth.connection_truth(region, faults),
        "outages": truth.outage_truth(faults),
        "interruptions": truth.with_meter_cases(
            truth.interruption_truth(region, faults, axis), metered.truth["interruptions_seen"]
        ),
        "inverter_trips": truth.trips_truth(axis, physics.trips, PhysicsSettings().reconnect_steps),
        "gis_errors": truth.records_table(faults.gis_errors, truth.GIS_SCHEMA),
        "pv_registration": truth.records_table(faults.pv_registration, truth.PV_SCHEMA),
        "ev_sessions": truth.ev_session_truth(axis, power.ev_sessions),
        "voltages_15min": _voltages_15min(axis, physics.voltage_v),
        "meter_swaps": swapped,
        "meter_realities": realities_truth(
            realities or Realities(), axis, [c.ean for c in region.connections]
        ),
        **metered.truth,
    }
    for name, table in truths.items():
        _write_parquet(table, out / "truth" / f"{name}.parquet")
    plain = set(faults.meter_swaps) | (realities.affected() if realities else set())
    unswapped = [i for i in metered.smart if i not in plain][:P1_SAMPLE]
    _write_p1(axis, metered, unswapped, out / "p1")
    lap("writing")
    report("done", 1.0)
    _manifest(settings, run, region, axis)
    return run


def _write_register_and_operator(
    settings: TwinSettings,
    region: Region,
    axis: TimeAxis,
    faults: Faults,
    metered: meters.MeterData,
    realities: Realities | None,
    out: Path,
) -> None:
    """The register files, the operator's files, and (UC10) the mechanic's readings,
    right and misread, of meters not swapped or replaced during the run."""
    write_register(
        region, faults, settings.start, out / "register", _rng(settings.seed, "register")
    )
    write_operator_files(
        region, faults, out / "operator", _rng(settings.seed, "operator"), settings.faults, axis
    )
    skip = set(faults.meter_swaps) | (set(realities.replaced) if realities else set())
    write_manual_readings(
        axis, [c.ean for c in region.connections], metered, skip, realities,
        _rng(settings.seed, "manual_readings"), out,
    )  # fmt: skip


def _write_measurements(
    region: Region,
    axis: TimeAxis,
    consumption_w: np.ndarray,
    physics: PhysicsResult,
    faults: Faults,
    intervention: interventions.Intervention | None,
    out: Path,
    rng: np.random.Generator,
) -> None:
    """The operator's own files for UC5 and UC12: the intervention it did, its cable
    cabinets, and its substation and cabinet measurements (not smart-meter data)."""
    operator = out / "operator"
    interventions.write_interventions(operator, intervention)
    interventions.write_cabinets(region, operator)
    if physics.busbar_v is None or physics.mv_pu is None:  # pragma: no cover - always set
        raise ValueError("the physics run kept no busbar or MV voltages")
    stations, cabinets = interventions.substation_measurements(
        region,
        axis,
        consumption_w - physics.pv_w,
        physics.voltage_v,
        physics.busbar_v,
        physics.mv_pu,
        sorted(faults.broken_neutral),
        rng,
    )
    _write_parquet(stations, operator / "substation_measurements.parquet")
    described, effect = interventions.effect_truth(
        region, axis, intervention, physics.effect_v, physics.effect_from
    )
    _write_parquet(described, out / "truth" / "interventions.parquet")
    _write_parquet(effect, out / "truth" / "intervention_effect.parquet")
    _write_parquet(cabinets, operator / "cabinet_measurements.parquet")


def _voltages_15min(axis: TimeAxis, voltage: np.ndarray) -> pa.Table:
    """The physical per-phase voltage as 15-minute means (0 V rows left out)."""
    steps, n_conn, _ = voltage.shape
    quarters = steps // STEPS_PER_QUARTER
    mean = voltage[: quarters * STEPS_PER_QUARTER].reshape(quarters, STEPS_PER_QUARTER, n_conn, 3)
    mean = mean.mean(axis=1)
    q, c, ph = np.nonzero(mean > 0)
    start = np.datetime64(axis.start_utc.replace(tzinfo=None), "s") + q.astype(
        np.int64
    ) * np.timedelta64(STEP_S * STEPS_PER_QUARTER, "s")
    return pa.table(
        {
            "connection": pa.array(c.astype(np.int32)),
            "start": pa.array(start, pa.timestamp("s")).cast(UTC_TS),
            "phase": pa.array((ph + 1).astype(np.int8)),
            "voltage_v": pa.array(mean[q, c, ph].astype(np.float32)),
        }
    )


def _write_p1(axis: TimeAxis, metered: meters.MeterData, sample: list[int], folder: Path) -> None:
    """Telegram captures of a sample of smart meters (one file per meter)."""
    folder.mkdir(parents=True, exist_ok=True)
    for ean, data in p1.captures(metered, axis, sample=sample, every_steps=P1_EVERY_STEPS):
        (folder / f"{ean}.p1").write_bytes(data)


def _manifest(settings: TwinSettings, run: TwinRun, region: object, axis: TimeAxis) -> None:
    files: dict[str, dict[str, object]] = {}
    for path in sorted(p for p in run.out.rglob("*") if p.is_file() and p.name != "manifest.json"):
        rel = path.relative_to(run.out).as_posix()
        entry: dict[str, object] = {
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        if path.suffix == ".parquet":
            entry["rows"] = pq.read_metadata(path).num_rows
        files[rel] = entry
    run.files = files
    manifest = {
        "generator": "meetpunt twin",
        "settings": {
            "connections": settings.connections,
            "days": settings.days,
            "start": settings.start.isoformat(),
            "seed": settings.seed,
            "faults": settings.faults,
            "meter_realities": settings.realities_on,
        },
        "steps": axis.n_steps,
        "step_seconds": STEP_S,
        "files": files,
    }
    (run.out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
