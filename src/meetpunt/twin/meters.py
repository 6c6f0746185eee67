"""Meter behaviour of the grid twin: what the meters in the cabinets record (MTR-1).

Turns the physics (power and voltage per 5-minute step) and the injected interruptions
into the data a Dutch grid operator reads from its meters, as pyarrow tables per kind
(see :data:`SCHEMAS`), plus the truth behind them:

* energy: quarter-hour import/export (smart meters), daily and monthly register
  readings T1/T2 per the off-peak calendar (MKT-2), hourly gas readings;
* voltage: the 10-minute average per phase (PQ profile 2) and the sag/swell counters
  per phase (DSMR 1-0:32.32.0 ... 72.36.0; UC2);
* power failures: all/long failure counters (0-0:96.7.21 / 0-0:96.7.9), the failure
  log (1-0:99.97.0: end time + duration, long failures only; UC4) and DSMR 5 "last
  gasp" messages;
* manual readings by a mechanic, with typical mistakes recorded in the truth.

Conventions. Energy is integrated in integer milliwatt-hours per step, so every
register, quarter-hour value and P1 telegram derived from it agrees exactly: a
register is the floor of its cumulative Wh, and a quarter-hour value is the difference
of floored registers, so a day's quarter-hours add up to the day's register increase.
Import and export follow the net of all phases per step (a Dutch meter nets the
phases), and the tariff register follows :meth:`OffPeakCalendar.tariff_at` per
quarter-hour. A meter measures only while supplied: the power of a step is weighted
by the supplied share of the step (from the exact interruption times), and the
physical voltage counts as 0 V without supply. ``voltage_v`` is read as the voltage
while supplied (0 V, or below ``no_supply_below_v``, means no supply at all).

Voltage events, and how the sub-interval behaviour is simulated. A meter counts a sag
when the voltage stays below 207 V, a swell when it stays above 253 V, for MORE than
30 s (UC2, docs/requirements.md). The physics gives only 5-minute means, which can hide
a 40-second dip or show a mean of 206 V during which the voltage sometimes recovered.
So for every step whose mean lies within ``subsample_margin_std`` standard deviations
of a threshold the meter draws 10-second sub-samples: an AR(1)
fluctuation ``x[k] = phi * x[k-1] + sigma * sqrt(1 - phi**2) * e[k]`` (stationary
standard deviation ``subsample_std_v``, ``phi = exp(-10 s / subsample_correlation_s)``)
shifted so that the supplied sub-samples average exactly the step mean. Runs of
consecutive sub-samples beyond a threshold are joined across consecutive sub-sampled
steps; a run of ``n`` samples lasts ``n * 10`` s and is an event when that is longer
than 30 s (so 4 samples, 40 s, count and 3 do not). Steps further than the margin (five
standard deviations) from both thresholds need no draws: on the safe side of a
threshold they cannot hold a sub-sample beyond it (they end a run), and beyond it all
their sub-samples are beyond (they extend a run). That keeps the model fast, and the
near steps are drawn in bounded chunks of whole meter phases. Sub-samples without
supply are 0 V and end a run: an interruption is a power failure, not a sag. An event
counts on the day it starts; all parameters are in the ``twin_meters`` rule file.

Power failures: a smart meter counts one failure per interruption of its connection
(overlapping or touching interruptions are one failure for the meter) when supply
returns; longer than ``long_longer_than_s`` (180 s) it is also long and enters the
log, which holds the last ``log_depth`` (10) entries. With the meter realities (issue
16, :mod:`meetpunt.twin.realities`) the tables hold what a head-end read: the log's END
and duration by the meter's own clock, no entry lost before a read or never written by
a meter replaced during the outage, nothing yet of a meter still offline. Ferraris
meters record nothing but what a mechanic reads; they run backwards while PV exports,
so their registers are net and have no export register.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from math import exp, floor, sqrt
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meetpunt.domain.calendar import OffPeakCalendar, Tariff, local_midnight_utc
from meetpunt.errors import RulesDataError
from meetpunt.rulebook import load_rules, offpeak_calendar
from meetpunt.twin.model import (
    STEP_S,
    STEPS_PER_QUARTER,
    STEPS_PER_TEN_MINUTES,
    UTC_TS,
    Float64Array,
    FloatArray,
    IntArray,
    Interruption,
    MeterKind,
    TimeAxis,
    TwinConnection,
)
from meetpunt.twin.realities import Realities

BoolArray = npt.NDArray[np.bool_]

QUARTER_S = STEP_S * STEPS_PER_QUARTER
STEPS_PER_HOUR = 12
MWH_PER_WATT_STEP = STEP_S / 3.6
"""Milliwatt-hours from one watt during one step (W * s / 3600 * 1000)."""


SCHEMAS: dict[str, pa.Schema] = {
    "quarter_hours": pa.schema(
        [
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("start", UTC_TS),
            ("import_wh", pa.int64()),
            ("export_wh", pa.int64()),
        ]
    ),
    "daily_readings": pa.schema(
        [
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("at", UTC_TS),
            ("import_t1_kwh", pa.float64()),
            ("import_t2_kwh", pa.float64()),
            ("export_t1_kwh", pa.float64()),
            ("export_t2_kwh", pa.float64()),
        ]
    ),
    "gas_hourly": pa.schema(
        [
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("gas_ean", pa.string()),
            ("start", UTC_TS),
            ("volume_m3", pa.float64()),
            ("reading_m3", pa.float64()),
        ]
    ),
    "voltages_10min": pa.schema(
        [
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("start", UTC_TS),
            ("phase", pa.int8()),
            ("voltage_v", pa.float64()),
        ]
    ),
    "voltage_events": pa.schema(
        [
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("day", pa.date32()),
            ("at", UTC_TS),
            ("phase", pa.int8()),
            ("sags", pa.int64()),
            ("swells", pa.int64()),
        ]
    ),
    "power_failures": pa.schema(
        [
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("day", pa.date32()),
            ("at", UTC_TS),
            ("failures", pa.int64()),
            ("long_failures", pa.int64()),
        ]
    ),
    "power_failure_log": pa.schema(
        [
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("end", UTC_TS),
            ("duration_s", pa.int64()),
            ("in_meter_buffer", pa.bool_()),
        ]
    ),
    "last_gasp": pa.schema([("connection", pa.int32()), ("ean", pa.string()), ("sent_at", UTC_TS)]),
    "manual_readings": pa.schema(
        [
            ("reading_id", pa.int64()),
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("meter", pa.string()),
            ("read_at", UTC_TS),
            ("import_t1_kwh", pa.float64()),
            ("import_t2_kwh", pa.float64()),
            ("export_t1_kwh", pa.float64()),
            ("export_t2_kwh", pa.float64()),
        ]
    ),
}
SCHEMAS["monthly_readings"] = SCHEMAS["daily_readings"]
FERRARIS_WRAP_MWH = 100_000 * 1_000_000
"""A ferraris register has five kWh drums: it wraps at 100,000 kWh (in mWh here)."""
"""Schemas of the meter data kinds (MTR-1). Times are UTC; ``connection`` is the
twin's integer :attr:`TwinConnection.index`. ``voltages_10min.phase`` and the counters'
``phase`` are the meter's own phase numbers (a single-phase meter reports only phase 1,
whatever grid phase it hangs on). ``gas_hourly.reading_m3`` is the register at the end
of the hour starting at ``start``; ``daily_readings.at`` is a local midnight."""

TRUTH_SCHEMAS: dict[str, pa.Schema] = {
    "voltage_events": pa.schema(
        [
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("phase", pa.int8()),
            ("grid_phase", pa.int8()),
            ("kind", pa.string()),
            ("start", UTC_TS),
            ("duration_s", pa.int64()),
        ]
    ),
    "interruptions_seen": pa.schema(
        [
            ("outage_id", pa.string()),
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("meter", pa.string()),
            ("planned", pa.bool_()),
            ("start", UTC_TS),
            ("end", UTC_TS),
            ("duration_s", pa.int64()),
            ("counted", pa.bool_()),
            ("long", pa.bool_()),
            ("logged", pa.bool_()),
            ("log_end", UTC_TS),
            ("log_duration_s", pa.int64()),
            ("last_gasp_sent", pa.bool_()),
            ("meter_log_end", UTC_TS),
            ("meter_log_duration_s", pa.int64()),
            ("read", pa.bool_()),
            ("meter_cases", pa.list_(pa.string())),
        ]
    ),
    "manual_reading_errors": pa.schema(
        [
            ("reading_id", pa.int64()),
            ("connection", pa.int32()),
            ("ean", pa.string()),
            ("read_at", UTC_TS),
            ("field", pa.string()),
            ("error", pa.string()),
            ("reported_kwh", pa.float64()),
            ("true_kwh", pa.float64()),
        ]
    ),
}
"""Truth tables: every counted voltage event (``grid_phase`` is the real phase), what
each meter made of each real interruption (``logged``/``log_*`` for the 99.97.0 log;
``last_gasp_sent`` null where no DSMR 5 meter or the start lies before the run), and
every wrong manual reading field with its true value. With meter realities (issue 16)
``meter_log_*`` is the END and duration by the meter's own clock (``log_*`` the true
ones), ``read`` whether the head-end has the entry, ``meter_cases`` what happened to
the meter (:data:`meetpunt.twin.realities.METER_CASES`)."""

REGISTERS = ("import_t1", "import_t2", "export_t1", "export_t2")
MISTAKES = ("digit_swap", "register_swap", "decimal_slip_x10", "decimal_slip_div10")


# --- parameters --------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterParams:
    """The ``twin_meters`` rule file: event thresholds, sub-sample model, start values."""

    sag_below_v: float
    swell_above_v: float
    event_longer_than_s: int
    no_supply_below_v: float
    subsample_s: int
    subsample_std_v: float
    subsample_correlation_s: float
    subsample_margin_std: float
    measurement_noise_v: float
    resolution_v: float
    long_longer_than_s: int
    log_depth: int
    last_gasp_success: float
    meter_age_years: tuple[float, float]
    offpeak_share: tuple[float, float]
    export_kwh_per_kwp_year: float
    failures_per_year: float
    long_failure_share: float
    history_long_failure_median_s: float
    sags_per_year: float
    swells_per_year: float
    ferraris_readings_per_30_days: float
    smart_meter_share: float
    read_hours: tuple[int, int]
    mistake_share: float
    mistakes: Mapping[str, float]
    version: str = "unversioned"

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any], *, version: str = "unversioned") -> MeterParams:
        """Build from the body of the ``twin_meters`` rule file; :class:`RulesDataError` if bad."""
        try:
            v, f, r, m = body["voltage"], body["failures"], body["registers"], body["manual"]
            mistakes = {str(k): float(w) for k, w in m["mistakes"].items()}
            params = cls(
                sag_below_v=float(v["sag_below_v"]),
                swell_above_v=float(v["swell_above_v"]),
                event_longer_than_s=int(v["event_longer_than_s"]),
                no_supply_below_v=float(v["no_supply_below_v"]),
                subsample_s=int(v["subsample_s"]),
                subsample_std_v=float(v["subsample_std_v"]),
                subsample_correlation_s=float(v["subsample_correlation_s"]),
                subsample_margin_std=float(v["subsample_margin_std"]),
                measurement_noise_v=float(v["measurement_noise_v"]),
                resolution_v=float(v["resolution_v"]),
                long_longer_than_s=int(f["long_longer_than_s"]),
                log_depth=int(f["log_depth"]),
                last_gasp_success=float(f["last_gasp_success"]),
                meter_age_years=(float(r["meter_age_years_min"]), float(r["meter_age_years_max"])),
                offpeak_share=(float(r["offpeak_share_min"]), float(r["offpeak_share_max"])),
                export_kwh_per_kwp_year=float(r["export_kwh_per_kwp_year"]),
                failures_per_year=float(r["failures_per_year"]),
                long_failure_share=float(r["long_failure_share"]),
                history_long_failure_median_s=float(r["history_long_failure_median_s"]),
                sags_per_year=float(r["sags_per_year"]),
                swells_per_year=float(r["swells_per_year"]),
                ferraris_readings_per_30_days=float(m["ferraris_readings_per_30_days"]),
                smart_meter_share=float(m["smart_meter_share"]),
                read_hours=(int(m["read_from_hour"]), int(m["read_until_hour"])),
                mistake_share=float(m["mistake_share"]),
                mistakes=mistakes,
                version=version,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RulesDataError(
                f"twin_meters: malformed data ({type(exc).__name__}: {exc}); "
                "see the comments in meetpunt/data/twin_meters.toml"
            ) from exc
        problems = []
        if params.subsample_s <= 0 or STEP_S % params.subsample_s:
            problems.append(f"subsample_s must divide {STEP_S} s")
        if not params.sag_below_v < params.swell_above_v:
            problems.append("sag_below_v must lie below swell_above_v")
        if set(mistakes) != set(MISTAKES) or sum(mistakes.values()) <= 0:
            problems.append(f"manual.mistakes needs positive weights for {', '.join(MISTAKES)}")
        if not 0 < params.resolution_v <= 1 or abs(1 / params.resolution_v % 1) > 1e-9:
            problems.append("resolution_v must be 1/n V (0.1 V: 10 steps per volt)")
        if not 0 <= params.read_hours[0] < params.read_hours[1] <= 24:
            problems.append("read_from_hour must lie before read_until_hour within a day")
        if problems:
            raise RulesDataError("twin_meters: " + "; ".join(problems))
        return params

    @classmethod
    def load(cls) -> MeterParams:
        """The packaged (or operator's) ``twin_meters`` rule file."""
        loaded = load_rules("twin_meters")
        return cls.from_mapping(loaded.body, version=loaded.meta.version)


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterState:
    """What P1 telegrams need beyond the tables: inputs and each meter's start values.

    Arrays are the caller's (not copied). Times are seconds since ``axis.start_utc``.
    """

    axis: TimeAxis
    connections: Mapping[int, TwinConnection]
    consumption_w: FloatArray
    pv_w: FloatArray
    voltage_v: FloatArray
    gas_m3_hourly: Float64Array | None
    offpeak_quarters: BoolArray
    register_start_mwh: IntArray
    """(n_conn, 4): import T1, import T2, export T1, export T2 in mWh at the axis start."""
    gas_start_cm3: IntArray
    failure_start: IntArray
    """(n_conn, 2): all and long failures counted before the axis start."""
    sag_start: IntArray
    swell_start: IntArray
    outages: Mapping[int, tuple[tuple[int, int], ...]]
    """Per connection the merged no-supply intervals ``[start, end)``."""
    failure_history: Mapping[int, tuple[tuple[int, int], ...]]
    """Per smart meter the logged long failures from before the axis: (end, duration)."""
    events: Mapping[int, tuple[IntArray, IntArray, IntArray]]
    """Per connection: meter phase (1..3), kind (0 sag, 1 swell), start of each event."""
    params: MeterParams
    p1_seed: int

    def supply(self, connection: int) -> FloatArray:
        """Supplied share of each step for one connection (1 = the whole step)."""
        return _supply_column(self.outages.get(connection, ()), self.axis.n_steps)

    def registers_mwh(self, connection: int) -> IntArray:
        """(n_steps + 1, 4) cumulative registers (mWh) at every step boundary."""
        cols = [connection]
        supply = self.supply(connection)[:, None]
        imp, exp_ = _step_energy_mwh(self.consumption_w[:, cols, :], self.pv_w[:, cols, :], supply)
        off = np.repeat(self.offpeak_quarters, STEPS_PER_QUARTER)[: self.axis.n_steps]
        per_step = np.stack(
            [imp[:, 0] * off, imp[:, 0] * ~off, exp_[:, 0] * off, exp_[:, 0] * ~off], axis=1
        )
        out = np.zeros((self.axis.n_steps + 1, 4), dtype=np.int64)
        np.cumsum(per_step, axis=0, out=out[1:])
        out += self.register_start_mwh[connection][None, :]
        return out

    def gas_cm3(self, connection: int) -> IntArray | None:
        """Gas register (cm3) at every step boundary, or None without gas data."""
        if self.gas_m3_hourly is None:
            return None
        hourly = _gas_cm3(self.gas_m3_hourly[:, [connection]])[:, 0]
        at_hours = np.concatenate([[0], np.cumsum(hourly)]) + self.gas_start_cm3[connection]
        steps = np.arange(self.axis.n_steps + 1)
        hour, into = np.divmod(steps, STEPS_PER_HOUR)
        hour = np.minimum(hour, len(hourly))
        partial = np.where(
            hour < len(hourly), hourly[np.minimum(hour, len(hourly) - 1)] * into // 12, 0
        )
        return np.asarray(at_hours[hour] + partial, dtype=np.int64)


@dataclass
class MeterData:
    """The meter data per kind (:data:`SCHEMAS`), the truth (:data:`TRUTH_SCHEMAS`), the state."""

    tables: dict[str, pa.Table]
    truth: dict[str, pa.Table]
    state: MeterState
    smart: tuple[int, ...] = field(default=())
    """Indices of the connections with a smart meter, in order."""


# --- the simulation ----------------------------------------------------------------------


def simulate_meters(
    conns: Sequence[TwinConnection],
    axis: TimeAxis,
    consumption_w: FloatArray,
    pv_w: FloatArray,
    voltage_v: FloatArray,
    interruptions: Sequence[Interruption],
    rng: np.random.Generator,
    region: str | None = None,
    *,
    gas_m3_hourly: Float64Array | None = None,
    params: MeterParams | None = None,
    calendar: OffPeakCalendar | None = None,
    realities: Realities | None = None,
) -> MeterData:
    """Simulate every meter's records over ``axis`` (MTR-1; UC2 events, UC4 failures).

    ``consumption_w``, ``pv_w`` and ``voltage_v`` are ``(n_steps, n_conn, 3)`` arrays
    indexed by :attr:`TwinConnection.index`; ``gas_m3_hourly`` is ``(n_steps // 12,
    n_conn)`` m3 per UTC hour. ``region`` names the tariff region (MKT-2). Every random
    draw comes from ``rng``. ``realities`` (issue 16) makes the data what a head-end
    would really have read: see :mod:`meetpunt.twin.realities`.
    """
    params = params or MeterParams.load()
    calendar = calendar or offpeak_calendar()
    n_steps, n_conn, _ = consumption_w.shape
    if n_steps != axis.n_steps or pv_w.shape != consumption_w.shape:
        raise ValueError("consumption_w and pv_w must be (axis.n_steps, n_conn, 3)")
    if voltage_v.shape != consumption_w.shape:
        raise ValueError("voltage_v must have the shape of consumption_w")
    if gas_m3_hourly is not None and gas_m3_hourly.shape != (n_steps // STEPS_PER_HOUR, n_conn):
        raise ValueError("gas_m3_hourly must be (n_steps // 12, n_conn)")
    by_index = {c.index: c for c in conns}
    ctx = _Context.build(by_index, axis, n_conn, calendar, region)
    starts = _start_values(ctx, params, rng)
    outages = _merge_outages(interruptions, axis)
    supply = np.ones((n_steps, n_conn), dtype=np.float32)
    for conn, spans in outages.items():
        supply[:, conn] = _supply_column(tuple((a, b) for a, b, _ in spans), n_steps)

    tables: dict[str, pa.Table] = {}
    truth: dict[str, pa.Table] = {}
    imp, exp_ = _step_energy_mwh(consumption_w, pv_w, supply)
    regs = _quarter_registers(imp, exp_, ctx.offpeak_q, starts.registers)
    tables.update(_energy_tables(ctx, regs))
    tables["gas_hourly"] = _gas_table(ctx, gas_m3_hourly, starts.gas)
    channels = _Channels.build(ctx)
    volt_on = _voltage_while_supplied(voltage_v, supply, channels, params)
    tables["voltages_10min"] = _voltage_table(ctx, channels, volt_on, supply, params, rng)
    truth["voltages_10min_outside"] = _outside_truth(ctx, channels, volt_on, supply)
    events = _detect_events(channels, volt_on, supply, outages, params, rng)
    tables["voltage_events"], truth["voltage_events"] = _event_tables(ctx, channels, events, starts)
    failures = _failure_tables(ctx, outages, starts, params, rng, realities)
    tables.update(failures[0])
    truth["interruptions_seen"] = failures[1]
    manual, errors = _manual_tables(ctx, imp, exp_, regs, params, rng)
    tables["manual_readings"], truth["manual_reading_errors"] = manual, errors
    tables = {kind: tables[kind] for kind in _KIND_ORDER}
    if realities is not None:
        for kind in ("daily_readings", "monthly_readings"):
            tables[kind] = _readings_by_meter_clock(ctx, tables[kind], imp, exp_, regs, realities)
        _drop_unread(ctx, tables, realities)

    ev_by_conn: dict[int, tuple[IntArray, IntArray, IntArray]] = {}
    ch_conn = channels.conn[events.channel]
    for conn in np.unique(ch_conn):
        sel = ch_conn == conn
        ev_by_conn[int(conn)] = (
            channels.meter_phase[events.channel[sel]],
            events.kind[sel],
            events.start_s[sel],
        )
    state = MeterState(
        axis=axis,
        connections=by_index,
        consumption_w=consumption_w,
        pv_w=pv_w,
        voltage_v=voltage_v,
        gas_m3_hourly=gas_m3_hourly,
        offpeak_quarters=ctx.offpeak_q,
        register_start_mwh=starts.registers,
        gas_start_cm3=starts.gas,
        failure_start=starts.failures,
        sag_start=starts.sags,
        swell_start=starts.swells,
        outages={c: tuple((a, b) for a, b, _ in spans) for c, spans in outages.items()},
        failure_history={c: tuple(h) for c, h in starts.history.items()},
        events=ev_by_conn,
        params=params,
        p1_seed=int(rng.integers(2**62)),
    )
    return MeterData(tables, truth, state, tuple(int(c) for c in ctx.smart_idx))


def _readings_by_meter_clock(
    ctx: _Context,
    table: pa.Table,
    imp: IntArray,
    exp_: IntArray,
    regs: list[IntArray],
    realities: Realities,
) -> pa.Table:
    """A drifting meter takes its daily reading when ITS clock says midnight: the
    registers of that true moment (linear within a 5-minute step, not before the axis
    start), labelled midnight (issue 16)."""
    if not realities.drift:
        return table
    total = ctx.axis.n_steps * STEP_S
    conn = table.column("connection").to_numpy()
    at = table.column("at").cast(pa.int64()).to_numpy() - ctx.start_epoch
    rows = np.flatnonzero(np.isin(conn, np.fromiter(realities.drift, dtype=np.int64)))
    columns = {n: table.column(f"{n}_kwh").to_numpy().copy() for n in REGISTERS}
    for r in rows.tolist():
        c, t = int(conn[r]), int(at[r])
        true_t = min(max(t - realities.drift[c].offset_at(t), 0), total)
        step, into = divmod(true_t, STEP_S)
        values = np.array(_registers_at(step, c, imp, exp_, regs, ctx.offpeak_q))
        if into:
            after = np.array(_registers_at(step + 1, c, imp, exp_, regs, ctx.offpeak_q))
            values = values + (after - values) * into // STEP_S
        for name, mwh in zip(REGISTERS, _kwh(values).tolist(), strict=True):
            columns[name][r] = mwh
    for name, values in columns.items():
        index = table.schema.get_field_index(f"{name}_kwh")
        table = table.set_column(index, table.schema.field(index), pa.array(values))
    return table


_TIME_OF = {
    "quarter_hours": "start",
    "daily_readings": "at",
    "monthly_readings": "at",
    "gas_hourly": "start",
    "voltages_10min": "start",
    "voltage_events": "at",
    "power_failures": "at",
}
"""The time column of each kind a head-end reads remotely (not the mechanic's readings)."""


def _drop_unread(ctx: _Context, tables: dict[str, pa.Table], realities: Realities) -> None:
    """Leave out what a meter offline until after the period recorded from the moment it
    went offline: the head-end has not read it yet (issue 16). A meter back within the
    period has had its daily values and log backfilled, so it keeps them."""
    total = ctx.axis.n_steps * STEP_S
    cutoff = np.full(ctx.n_conn, np.iinfo(np.int64).max, dtype=np.int64)
    for conn, window in realities.offline.items():
        if window.end_s > total:
            cutoff[conn] = max(window.start_s, 0) + ctx.start_epoch
    if (cutoff == np.iinfo(np.int64).max).all():
        return
    for kind, column in _TIME_OF.items():
        table = tables[kind]
        conn = table.column("connection").to_numpy()
        at = table.column(column).cast(pa.int64()).to_numpy()
        keep = at < cutoff[conn]
        if not keep.all():
            tables[kind] = table.filter(pa.array(keep))


_KIND_ORDER = (
    "quarter_hours",
    "daily_readings",
    "monthly_readings",
    "gas_hourly",
    "voltages_10min",
    "voltage_events",
    "power_failures",
    "power_failure_log",
    "last_gasp",
    "manual_readings",
)


# --- run-length rule and sub-samples (public: tested directly) ---------------------------


def threshold_runs(beyond: BoolArray, breaks: BoolArray | None = None) -> tuple[IntArray, IntArray]:
    """Start index and length of every run of consecutive ``True`` in a flat array.

    A ``True`` in ``breaks`` at index ``i`` starts a new run at ``i`` (the samples on
    either side are not consecutive in time).
    """
    flags = np.asarray(beyond, dtype=bool).ravel()
    if flags.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    adjacent = np.ones_like(flags)  # sample i follows sample i - 1 in time
    adjacent[0] = False
    if breaks is not None:
        adjacent &= ~np.asarray(breaks, dtype=bool).ravel()
    joined_before = np.zeros_like(flags)
    joined_before[1:] = flags[:-1] & adjacent[1:]
    joined_after = np.zeros_like(flags)
    joined_after[:-1] = flags[1:] & adjacent[1:]
    starts = np.flatnonzero(flags & ~joined_before)
    ends = np.flatnonzero(flags & ~joined_after)
    return starts.astype(np.int64), (ends - starts + 1).astype(np.int64)


def events_from_subsamples(
    beyond: BoolArray,
    sample_s: int = 10,
    longer_than_s: int = 30,
    breaks: BoolArray | None = None,
) -> tuple[IntArray, IntArray]:
    """Sample index where each event starts and its duration (s): runs longer than 30 s.

    The meter's rule (UC2): beyond the threshold for MORE than ``longer_than_s``;
    a run of ``n`` samples lasts ``n * sample_s`` seconds.
    """
    starts, lengths = threshold_runs(beyond, breaks)
    duration = lengths * sample_s
    keep = duration > longer_than_s
    return starts[keep], duration[keep]


def subsample_voltages(
    step_mean_v: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    std_v: float,
    correlation_s: float,
    sample_s: int = 10,
    supplied: BoolArray | None = None,
) -> FloatArray:
    """10-second sub-samples ``(m, STEP_S // sample_s)`` of ``m`` steps (module docstring).

    AR(1) with stationary standard deviation ``std_v`` and correlation time
    ``correlation_s``, shifted per step so the supplied sub-samples average exactly
    ``step_mean_v``; unsupplied sub-samples are 0 V. ``float32``, computed sample by
    sample over all steps at once (the layout keeps each update contiguous).
    """
    means = np.asarray(step_mean_v, dtype=np.float64)
    m, k = len(means), STEP_S // sample_s
    phi = np.float32(exp(-sample_s / correlation_s))
    x = rng.standard_normal((k, m), dtype=np.float32)
    x[0] *= np.float32(std_v)
    innovation = np.float32(std_v * sqrt(1.0 - float(phi) ** 2))
    for j in range(1, k):
        x[j] *= innovation
        x[j] += phi * x[j - 1]
    on = np.ones((k, m), dtype=bool) if supplied is None else np.asarray(supplied, dtype=bool).T
    count = np.maximum(on.sum(axis=0), 1)
    offset = np.where(on, x, np.float32(0.0)).sum(axis=0, dtype=np.float64) / count
    x += (means - offset).astype(np.float32)
    x[~on] = 0.0
    return np.asarray(x.T)


# --- internals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    axis: TimeAxis
    conns: Mapping[int, TwinConnection]
    n_conn: int
    eans: list[str]
    meter: list[str]
    present: BoolArray
    smart: BoolArray
    dsmr5: BoolArray
    smart_idx: IntArray
    offpeak_q: BoolArray
    midnights_s: IntArray
    day_dates: list[date]
    start_epoch: int
    calendar: OffPeakCalendar

    @classmethod
    def build(
        cls,
        conns: Mapping[int, TwinConnection],
        axis: TimeAxis,
        n_conn: int,
        calendar: OffPeakCalendar,
        region: str | None,
    ) -> _Context:
        eans, meter = [""] * n_conn, [""] * n_conn
        present, smart, dsmr5 = (np.zeros(n_conn, dtype=bool) for _ in range(3))
        for index, conn in conns.items():
            eans[index], meter[index] = conn.ean, conn.meter.value
            present[index] = True
            smart[index] = conn.meter.smart
            dsmr5[index] = conn.meter is MeterKind.DSMR5
        n_q = axis.n_steps // STEPS_PER_QUARTER
        resolved = calendar.region(region)
        offpeak = np.array(
            [
                calendar.tariff_at(axis.start_utc + timedelta(seconds=QUARTER_S * q), resolved)
                is Tariff.T1
                for q in range(n_q)
            ],
            dtype=bool,
        )
        dates = [axis.first_day + timedelta(days=d) for d in range(axis.days + 1)]
        midnights = np.array(
            [int((local_midnight_utc(d) - axis.start_utc).total_seconds()) for d in dates],
            dtype=np.int64,
        )
        return cls(
            axis=axis,
            conns=conns,
            n_conn=n_conn,
            eans=eans,
            meter=meter,
            present=present,
            smart=smart,
            dsmr5=dsmr5,
            smart_idx=np.flatnonzero(smart).astype(np.int64),
            offpeak_q=offpeak,
            midnights_s=midnights,
            day_dates=dates,
            start_epoch=int(axis.start_utc.timestamp()),
            calendar=calendar,
        )

    def ean_column(self, conn: IntArray) -> Any:
        """The EAN of each row's connection as a string column (built via a dictionary)."""
        dictionary = pa.array(self.eans, type=pa.string())
        indices = pa.array(np.asarray(conn, dtype=np.int32), type=pa.int32())
        return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())

    def ts(self, seconds: IntArray) -> Any:
        """UTC timestamps from seconds since the axis start."""
        return pa.array(np.asarray(seconds, dtype=np.int64) + self.start_epoch, type=UTC_TS)

    def dates(self, day_index: IntArray) -> Any:
        """Local dates of day indices, as date32."""
        epoch = (self.axis.first_day - date(1970, 1, 1)).days
        return pa.array(
            (np.asarray(day_index, dtype=np.int64) + epoch).astype(np.int32), type=pa.date32()
        )


@dataclass(frozen=True)
class _Starts:
    registers: IntArray
    gas: IntArray
    failures: IntArray
    sags: IntArray
    swells: IntArray
    history: dict[int, list[tuple[int, int]]]
    """Smart meters' logged long failures before the axis start: (end s, duration s)."""


def _start_values(ctx: _Context, params: MeterParams, rng: np.random.Generator) -> _Starts:
    """Plausible register and counter values at the start: years in service x volume."""
    n = ctx.n_conn
    annual = np.zeros(n)
    kwp = np.zeros(n)
    gas_annual = np.zeros(n)
    for index, conn in ctx.conns.items():
        annual[index], kwp[index], gas_annual[index] = (
            conn.annual_kwh,
            conn.pv_kwp,
            conn.gas_annual_m3,
        )
    age = rng.uniform(*params.meter_age_years, size=n)
    share = rng.uniform(*params.offpeak_share, size=n)
    export_share = rng.uniform(0.3, 0.4, size=n)  # exports fall mostly in normal hours
    imported = annual * age
    exported = kwp * params.export_kwh_per_kwp_year * np.minimum(age, rng.uniform(0, 9, size=n))
    kwh = np.stack(
        [
            imported * share,
            imported * (1 - share),
            exported * export_share,
            exported * (1 - export_share),
        ],
        axis=1,
    )
    registers = np.rint(kwh * 1000).astype(np.int64) * 1000
    gas = np.rint(gas_annual * age * 1e6).astype(np.int64)
    all_failures = rng.poisson(params.failures_per_year * age)
    long_failures = rng.binomial(all_failures, params.long_failure_share)
    failures = np.stack([all_failures, long_failures], axis=1).astype(np.int64)
    sags = rng.poisson(params.sags_per_year * age[:, None], size=(n, 3)).astype(np.int64)
    swells = rng.poisson(params.swells_per_year * age[:, None], size=(n, 3)).astype(np.int64)
    history: dict[int, list[tuple[int, int]]] = {}
    year_s = 365.25 * 86400
    for index in ctx.smart_idx.tolist():
        kept = min(int(long_failures[index]), params.log_depth)
        if kept == 0:
            continue
        ends = np.sort(-rng.uniform(0.0, age[index] * year_s, size=kept)).astype(np.int64)
        durations = rng.lognormal(np.log(params.history_long_failure_median_s), 1.0, size=kept)
        durations = np.maximum(durations.astype(np.int64), params.long_longer_than_s + 1)
        history[index] = [(int(e), int(d)) for e, d in zip(ends, durations, strict=True)]
    return _Starts(registers, gas, failures, sags, swells, history)


def _seconds(instant: datetime, axis: TimeAxis) -> int:
    return floor((instant - axis.start_utc).total_seconds())


def _merge_outages(
    interruptions: Sequence[Interruption], axis: TimeAxis
) -> dict[int, list[tuple[int, int, list[Interruption]]]]:
    """Per connection the no-supply intervals as the meter sees them: overlaps merged."""
    per_conn: dict[int, list[Interruption]] = {}
    for cut in interruptions:
        per_conn.setdefault(cut.index, []).append(cut)
    merged: dict[int, list[tuple[int, int, list[Interruption]]]] = {}
    for conn in sorted(per_conn):
        cuts = sorted(per_conn[conn], key=lambda c: (c.start, c.end))
        spans: list[tuple[int, int, list[Interruption]]] = []
        for cut in cuts:
            a, b = _seconds(cut.start, axis), _seconds(cut.end, axis)
            if b <= a:
                continue
            if spans and a <= spans[-1][1]:
                last = spans[-1]
                spans[-1] = (last[0], max(last[1], b), [*last[2], cut])
            else:
                spans.append((a, b, [cut]))
        merged[conn] = spans
    return merged


def _supply_column(spans: Sequence[tuple[int, int]], n_steps: int) -> FloatArray:
    """Supplied share of each step given no-supply intervals in seconds."""
    out = np.ones(n_steps, dtype=np.float32)
    total = n_steps * STEP_S
    for a, b in spans:
        lo, hi = max(a, 0), min(b, total)
        if hi <= lo:
            continue
        steps = np.arange(lo // STEP_S, (hi - 1) // STEP_S + 1)
        overlap = np.minimum(hi, (steps + 1) * STEP_S) - np.maximum(lo, steps * STEP_S)
        out[steps] -= (overlap / STEP_S).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def _step_energy_mwh(
    consumption_w: FloatArray, pv_w: FloatArray, supply: FloatArray
) -> tuple[IntArray, IntArray]:
    """Import and export per step in whole mWh, from the net of all phases while supplied."""
    net = consumption_w.sum(axis=2, dtype=np.float64)
    net -= pv_w.sum(axis=2, dtype=np.float64)
    net *= supply
    net *= MWH_PER_WATT_STEP
    imp = np.rint(np.maximum(net, 0.0)).astype(np.int64)
    np.negative(net, out=net)
    exp_ = np.rint(np.maximum(net, 0.0)).astype(np.int64)
    return imp, exp_


def _quarter_registers(
    imp: IntArray, exp_: IntArray, offpeak_q: BoolArray, start: IntArray
) -> list[IntArray]:
    """Registers (mWh) at every quarter-hour boundary: ``(n_q + 1, n_conn)`` x 4."""
    n_steps, n_conn = imp.shape
    n_q = n_steps // STEPS_PER_QUARTER
    out: list[IntArray] = []
    for energy in (imp, exp_):
        per_q = (
            energy[: n_q * STEPS_PER_QUARTER].reshape(n_q, STEPS_PER_QUARTER, n_conn).sum(axis=1)
        )
        for mask in (offpeak_q, ~offpeak_q):
            reg = np.empty((n_q + 1, n_conn), dtype=np.int64)
            reg[0] = 0
            np.cumsum(per_q * mask[:, None], axis=0, out=reg[1:])
            reg += start[:, len(out)][None, :]
            out.append(reg)
    return out


def _kwh(mwh: IntArray) -> Float64Array:
    """Register in kWh with 3 decimals (whole Wh, the meter's resolution)."""
    return np.asarray((mwh // 1000) / 1000.0, dtype=np.float64)


def _energy_tables(ctx: _Context, regs: list[IntArray]) -> dict[str, pa.Table]:
    smart = ctx.smart_idx
    wh = [r[:, smart] // 1000 for r in regs]
    n_q = wh[0].shape[0] - 1
    imp_q = np.diff(wh[0], axis=0) + np.diff(wh[1], axis=0)
    exp_q = np.diff(wh[2], axis=0) + np.diff(wh[3], axis=0)
    conn = np.repeat(smart, n_q)
    start = np.tile(np.arange(n_q, dtype=np.int64) * QUARTER_S, len(smart))
    quarter = pa.table(
        {
            "connection": pa.array(conn.astype(np.int32)),
            "ean": ctx.ean_column(conn),
            "start": ctx.ts(start),
            "import_wh": pa.array(imp_q.T.ravel()),
            "export_wh": pa.array(exp_q.T.ravel()),
        },
        schema=SCHEMAS["quarter_hours"],
    )
    day_q = ctx.midnights_s // QUARTER_S
    monthly = np.array([d.day == 1 for d in ctx.day_dates], dtype=bool)

    def readings(rows: IntArray) -> pa.Table:
        conn_r = np.repeat(smart, len(rows))
        cols = {
            "connection": pa.array(conn_r.astype(np.int32)),
            "ean": ctx.ean_column(conn_r),
            "at": ctx.ts(np.tile(ctx.midnights_s[rows], len(smart))),
        }
        for name, reg in zip(REGISTERS, regs, strict=True):
            cols[f"{name}_kwh"] = pa.array(_kwh(reg[day_q[rows]][:, smart].T.ravel()))
        return pa.table(cols, schema=SCHEMAS["daily_readings"])

    all_days = np.arange(len(day_q))
    return {
        "quarter_hours": quarter,
        "daily_readings": readings(all_days),
        "monthly_readings": readings(all_days[monthly]),
    }


def _gas_cm3(m3_hourly: Float64Array) -> IntArray:
    return np.rint(np.clip(np.nan_to_num(m3_hourly), 0.0, None) * 1e6).astype(np.int64)


def _gas_table(ctx: _Context, m3_hourly: Float64Array | None, start: IntArray) -> pa.Table:
    """Hourly gas register per smart meter with a gas connection (M-Bus, 0-n:24.2.1)."""
    conns = [i for i in ctx.smart_idx.tolist() if ctx.conns[i].gas_ean]
    if not conns or m3_hourly is None:
        return SCHEMAS["gas_hourly"].empty_table()
    idx = np.array(conns, dtype=np.int64)
    cm3 = _gas_cm3(m3_hourly[:, idx])
    reg = np.empty((cm3.shape[0] + 1, len(idx)), dtype=np.int64)
    reg[0] = 0
    np.cumsum(cm3, axis=0, out=reg[1:])
    litres = (reg + start[idx][None, :]) // 1000
    n_h = cm3.shape[0]
    conn = np.repeat(idx, n_h)
    return pa.table(
        {
            "connection": pa.array(conn.astype(np.int32)),
            "ean": ctx.ean_column(conn),
            "gas_ean": pa.array(
                [ctx.conns[int(c)].gas_ean for c in idx for _ in range(n_h)], type=pa.string()
            ),
            "start": ctx.ts(np.tile(np.arange(n_h, dtype=np.int64) * 3600, len(idx))),
            "volume_m3": pa.array((np.diff(litres, axis=0) / 1000.0).T.ravel()),
            "reading_m3": pa.array((litres[1:] / 1000.0).T.ravel()),
        },
        schema=SCHEMAS["gas_hourly"],
    )


@dataclass(frozen=True)
class _Channels:
    """The voltage inputs of the smart meters: one per (connection, phase it uses)."""

    conn: IntArray
    grid_phase: IntArray
    meter_phase: IntArray

    @classmethod
    def build(cls, ctx: _Context) -> _Channels:
        conn, grid, meter = [], [], []
        for index in ctx.smart_idx.tolist():
            for j, phase in enumerate(ctx.conns[index].phases()):
                conn.append(index)
                grid.append(phase)
                meter.append(j + 1)
        return cls(
            np.array(conn, dtype=np.int64),
            np.array(grid, dtype=np.int64),
            np.array(meter, dtype=np.int64),
        )


def _voltage_while_supplied(
    voltage_v: FloatArray, supply: FloatArray, ch: _Channels, params: MeterParams
) -> FloatArray:
    """(n_steps, n_channels) voltage while supplied; 0 where the physics sees no supply."""
    volt = voltage_v[:, ch.conn, ch.grid_phase]
    on = (volt >= params.no_supply_below_v) & (supply[:, ch.conn] > 0)
    return np.where(on, volt, np.float32(0.0)).astype(np.float32)


def _voltage_table(
    ctx: _Context,
    ch: _Channels,
    volt_on: FloatArray,
    supply: FloatArray,
    params: MeterParams,
    rng: np.random.Generator,
) -> pa.Table:
    """10-minute averages as the meter reports them: noise, 0.1 V resolution (PQ profile 2)."""
    n_steps, n_ch = volt_on.shape
    n_10 = n_steps // STEPS_PER_TEN_MINUTES
    physical = volt_on * supply[:, ch.conn]
    mean = physical[: n_10 * STEPS_PER_TEN_MINUTES].reshape(n_10, STEPS_PER_TEN_MINUTES, n_ch)
    avg = mean.mean(axis=1, dtype=np.float64)
    noise = rng.standard_normal(avg.shape, dtype=np.float32)
    noise *= np.float32(params.measurement_noise_v)
    noisy = avg + noise
    per_volt = round(1.0 / params.resolution_v)  # steps per volt (10 for 0.1 V)
    reported = np.where(avg > 0, np.rint(noisy * per_volt) / per_volt, 0.0)
    conn = np.repeat(ch.conn, n_10)
    return pa.table(
        {
            "connection": pa.array(conn.astype(np.int32)),
            "ean": ctx.ean_column(conn),
            "start": ctx.ts(
                np.tile(np.arange(n_10, dtype=np.int64) * STEP_S * STEPS_PER_TEN_MINUTES, n_ch)
            ),
            "phase": pa.array(np.repeat(ch.meter_phase, n_10).astype(np.int8)),
            "voltage_v": pa.array(np.maximum(reported, 0.0).T.ravel()),
        },
        schema=SCHEMAS["voltages_10min"],
    )


OUTSIDE_BELOW_V = 207.0
OUTSIDE_ABOVE_V = 245.0
"""The ``voltages_10min_outside`` truth keeps the physical 10-minute means below 207 V or
above 245 V: every limit UC3 scores (207 and 253 V, the operators' inverter limits of 248
to 250 V) with room for an operator's lower one."""


def _outside_truth(
    ctx: _Context, ch: _Channels, volt_on: FloatArray, supply: FloatArray
) -> pa.Table:
    """UC3's truth: each supplied meter phase's PHYSICAL 10-minute mean voltage (no meter
    noise, no rounding) where it lies outside 207-245 V, per 10-minute interval."""
    n_steps, n_ch = volt_on.shape
    n_10 = n_steps // STEPS_PER_TEN_MINUTES
    physical = volt_on * supply[:, ch.conn]
    avg = (
        physical[: n_10 * STEPS_PER_TEN_MINUTES]
        .reshape(n_10, STEPS_PER_TEN_MINUTES, n_ch)
        .mean(axis=1, dtype=np.float64)
    )
    t, c = np.nonzero((avg > 0) & ((avg < OUTSIDE_BELOW_V) | (avg > OUTSIDE_ABOVE_V)))
    conn = ch.conn[c]
    return pa.table(
        {
            "connection": pa.array(conn.astype(np.int32)),
            "ean": ctx.ean_column(conn),
            "start": ctx.ts(t.astype(np.int64) * STEP_S * STEPS_PER_TEN_MINUTES),
            "phase": pa.array(ch.meter_phase[c].astype(np.int8)),
            "grid_phase": pa.array((ch.grid_phase[c] + 1).astype(np.int8)),
            "voltage_v": pa.array(avg[t, c]),
        }
    )


@dataclass(frozen=True)
class _Events:
    channel: IntArray
    kind: IntArray
    start_s: IntArray
    duration_s: IntArray


def _detect_events(
    ch: _Channels,
    volt_on: FloatArray,
    supply: FloatArray,
    outages: Mapping[int, Sequence[tuple[int, int, Any]]],
    params: MeterParams,
    rng: np.random.Generator,
) -> _Events:
    """Sag and swell events per channel from sub-sampled near-threshold steps.

    The near steps are handled in chunks of whole channels, so memory stays bounded
    however many steps lie near a threshold (a run never crosses channels).
    """
    margin = params.subsample_margin_std * params.subsample_std_v
    present = volt_on > 0
    near = present & (
        (volt_on < params.sag_below_v + margin) | (volt_on > params.swell_above_v - margin)
    )
    chan, step = np.nonzero(near.T)  # ordered by channel, then step
    del near, present
    channel_starts = np.flatnonzero(np.r_[True, chan[1:] != chan[:-1]])
    targets = np.arange(_SUBSAMPLE_CHUNK, chan.size, _SUBSAMPLE_CHUNK)
    cuts = (
        np.unique(
            channel_starts[
                np.minimum(np.searchsorted(channel_starts, targets), channel_starts.size - 1)
            ]
        )
        if chan.size
        else np.zeros(0, dtype=np.int64)
    )
    bounds = [0, *[int(c) for c in cuts if c > 0], int(chan.size)]
    found: list[tuple[IntArray, IntArray, IntArray, IntArray]] = []
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            found.extend(
                _events_in_chunk(
                    ch, volt_on, supply, outages, params, rng, chan[lo:hi], step[lo:hi]
                )
            )
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return _Events(empty, empty, empty, empty)
    channel, kinds, start, duration = (np.concatenate(parts) for parts in zip(*found, strict=True))
    order = np.lexsort((start, channel))
    return _Events(
        channel[order].astype(np.int64),
        kinds[order].astype(np.int64),
        start[order].astype(np.int64),
        duration[order].astype(np.int64),
    )


_SUBSAMPLE_CHUNK = 200_000
"""Near-threshold steps sub-sampled at once (x 30 sub-samples x 8 bytes per array)."""


def _events_in_chunk(
    ch: _Channels,
    volt_on: FloatArray,
    supply: FloatArray,
    outages: Mapping[int, Sequence[tuple[int, int, Any]]],
    params: MeterParams,
    rng: np.random.Generator,
    chan: IntArray,
    step: IntArray,
) -> list[tuple[IntArray, IntArray, IntArray, IntArray]]:
    """Sub-sample the near steps ``(chan, step)`` and return sag and swell events."""
    k = STEP_S // params.subsample_s
    on = np.ones((chan.size, k), dtype=bool)
    partial = np.flatnonzero(supply[step, ch.conn[chan]] < 1.0)
    offsets = np.arange(k) * params.subsample_s + params.subsample_s // 2
    for r in partial.tolist():
        t = int(step[r]) * STEP_S + offsets
        for a, b, _ in outages.get(int(ch.conn[chan[r]]), ()):
            on[r] &= ~((t >= a) & (t < b))
    means = volt_on[step, chan]
    margin = params.subsample_margin_std * params.subsample_std_v
    uncertain = (np.abs(means - params.sag_below_v) < margin) | (
        np.abs(means - params.swell_above_v) < margin
    )
    # Beyond a threshold by more than the margin: beyond it for the whole step, no draws.
    sags = on & (means < params.sag_below_v)[:, None]
    swells = on & (means > params.swell_above_v)[:, None]
    if uncertain.any():
        sub = subsample_voltages(
            means[uncertain],
            rng,
            std_v=params.subsample_std_v,
            correlation_s=params.subsample_correlation_s,
            sample_s=params.subsample_s,
            supplied=on[uncertain],
        )
        sags[uncertain] = (sub < params.sag_below_v) & on[uncertain]
        swells[uncertain] = (sub > params.swell_above_v) & on[uncertain]
    new_segment = np.ones(chan.size, dtype=bool)
    new_segment[1:] = (chan[1:] != chan[:-1]) | (step[1:] != step[:-1] + 1)
    breaks = np.zeros((chan.size, k), dtype=bool)
    breaks[:, 0] = new_segment
    found = []
    for kind, beyond in enumerate((sags, swells)):
        first, duration = events_from_subsamples(
            beyond, params.subsample_s, params.event_longer_than_s, breaks
        )
        row, within = np.divmod(first, k)
        found.append(
            (
                chan[row],
                np.full(row.size, kind, dtype=np.int64),
                step[row] * STEP_S + within * params.subsample_s,
                duration,
            )
        )
    return found


def _event_tables(
    ctx: _Context, ch: _Channels, ev: _Events, starts: _Starts
) -> tuple[pa.Table, pa.Table]:
    """Daily cumulative sag/swell counters per meter phase, and every event (truth)."""
    days = ctx.axis.days
    n_ch = ch.conn.size
    day = np.searchsorted(ctx.midnights_s, ev.start_s, side="right") - 1
    inside = (day >= 0) & (day < days)
    counts = np.zeros((2, n_ch, days), dtype=np.int64)
    np.add.at(counts, (ev.kind[inside], ev.channel[inside], day[inside]), 1)
    base = np.stack(
        [starts.sags[ch.conn, ch.meter_phase - 1], starts.swells[ch.conn, ch.meter_phase - 1]]
    )
    cumulative = np.cumsum(counts, axis=2) + base[:, :, None]
    conn = np.repeat(ch.conn, days)
    day_idx = np.tile(np.arange(days, dtype=np.int64), n_ch)
    counters = pa.table(
        {
            "connection": pa.array(conn.astype(np.int32)),
            "ean": ctx.ean_column(conn),
            "day": ctx.dates(day_idx),
            "at": ctx.ts(ctx.midnights_s[day_idx + 1]),
            "phase": pa.array(np.repeat(ch.meter_phase, days).astype(np.int8)),
            "sags": pa.array(cumulative[0].ravel()),
            "swells": pa.array(cumulative[1].ravel()),
        },
        schema=SCHEMAS["voltage_events"],
    )
    ev_conn = ch.conn[ev.channel]
    truth = pa.table(
        {
            "connection": pa.array(ev_conn.astype(np.int32)),
            "ean": ctx.ean_column(ev_conn),
            "phase": pa.array(ch.meter_phase[ev.channel].astype(np.int8)),
            "grid_phase": pa.array((ch.grid_phase[ev.channel] + 1).astype(np.int8)),
            "kind": pa.DictionaryArray.from_arrays(
                pa.array(ev.kind.astype(np.int32)), pa.array(["sag", "swell"])
            ).cast(pa.string()),
            "start": ctx.ts(ev.start_s),
            "duration_s": pa.array(ev.duration_s),
        },
        schema=TRUTH_SCHEMAS["voltage_events"],
    )
    return counters, truth


@dataclass
class _Entry:
    """One long failure in a meter's 1-0:99.97.0 log (true and meter's clock, read?)."""

    conn: int
    generation: int  # 0: the meter at the start; 1: the one that replaced it
    end: int
    duration: int
    meter_end: int
    meter_duration: int
    read: bool = True
    lost: str | None = None  # why never read: log_overflow, meter_offline, meter_replaced

    def key(self) -> tuple[int, int, int, int]:
        return (self.conn, self.generation, self.end, self.duration)


def _failure_tables(
    ctx: _Context,
    outages: Mapping[int, Sequence[tuple[int, int, list[Interruption]]]],
    starts: _Starts,
    params: MeterParams,
    rng: np.random.Generator,
    realities: Realities | None = None,
) -> tuple[dict[str, pa.Table], pa.Table]:
    """Failure counters, the long-failure log, last gasps (UC4) and what each meter saw.

    With ``realities`` (issue 16) the log holds what a head-end read: END and duration
    by the meter's clock, no entry a replaced meter never wrote, none lost before a read.
    """
    total = ctx.axis.n_steps * STEP_S
    days = ctx.axis.days
    real = realities or Realities()
    smart_set = set(ctx.smart_idx.tolist())
    counts = np.zeros((2, ctx.n_conn, days), dtype=np.int64)
    new_counts = {conn: np.zeros((2, days), dtype=np.int64) for conn in real.replaced}
    log = [  # history first
        _Entry(conn, 0, end, duration, end, duration)
        for conn, entries in starts.history.items()
        for end, duration in entries
    ]
    gasp_candidates: list[tuple[int, int]] = []  # connection, start
    seen: dict[int, _Seen] = {}  # id(cut) -> what its meter made of it
    for conn, spans in outages.items():
        swap = real.replaced.get(conn)
        drift = real.drift.get(conn)
        for a, b, members in spans:
            is_smart = conn in smart_set
            swapped_in = swap is not None and a <= swap.at_s < b
            generation = int(swap is not None and a >= swap.at_s)
            counted = is_smart and 0 < b <= total and not swapped_in
            long = counted and (b - a) > params.long_longer_than_s
            if counted:
                day = int(np.searchsorted(ctx.midnights_s, b, side="left")) - 1
                target = new_counts[conn] if generation else counts[:, conn]
                target[0, day] += 1
                target[1, day] += int(long)
            entry = None
            if long:
                shift = drift.offset_at(b) if drift else 0
                duration = drift.duration(b - a) if drift else b - a
                entry = _Entry(conn, generation, b, b - a, b + shift, duration)
                log.append(entry)
            if is_smart and ctx.dsmr5[conn] and 0 <= a < total:
                gasp_candidates.append((conn, a))
            for cut in members:
                seen[id(cut)] = _Seen(counted, long, entry, (a, b), swapped_in)
    sent = rng.random(len(gasp_candidates)) < params.last_gasp_success
    # no last gasp gets through while the communication is down (drawn all the same,
    # so the realities leave the other draws of the stream as they were)
    gasp_at = {c: bool(s) and not real.down(*c) for c, s in zip(gasp_candidates, sent, strict=True)}
    if realities is not None:
        _read_log(ctx, log, real, params.log_depth)

    smart = ctx.smart_idx
    cumulative = np.cumsum(counts[:, smart, :], axis=2) + starts.failures[smart].T[:, :, None]
    position = {int(c): i for i, c in enumerate(smart.tolist())}
    for conn, fresh in new_counts.items():  # a new meter counts from zero (issue 16)
        first = int(np.searchsorted(ctx.midnights_s, real.replaced[conn].at_s, side="right")) - 1
        cumulative[:, position[conn], first:] = np.cumsum(fresh, axis=1)[:, first:]
    conn_rows = np.repeat(smart, days)
    day_idx = np.tile(np.arange(days, dtype=np.int64), len(smart))
    counters = pa.table(
        {
            "connection": pa.array(conn_rows.astype(np.int32)),
            "ean": ctx.ean_column(conn_rows),
            "day": ctx.dates(day_idx),
            "at": ctx.ts(ctx.midnights_s[day_idx + 1]),
            "failures": pa.array(cumulative[0].ravel()),
            "long_failures": pa.array(cumulative[1].ravel()),
        },
        schema=SCHEMAS["power_failures"],
    )
    tables = {
        "power_failures": counters,
        "power_failure_log": _log_table(ctx, log, params.log_depth),
        "last_gasp": _last_gasp_table(ctx, gasp_at),
    }
    return tables, _seen_table(ctx, outages, seen, gasp_at, real)


@dataclass(frozen=True)
class _Seen:
    counted: bool
    long: bool
    entry: _Entry | None
    span: tuple[int, int]
    replaced_in: bool


def _read_log(ctx: _Context, log: list[_Entry], real: Realities, depth: int) -> None:
    """Mark each entry read or lost: read at the first head-end read after its END while
    the meter is reachable (and still in place), unless ``depth`` newer entries pushed
    it out of the meter's buffer before that read (issue 16)."""
    total = ctx.axis.n_steps * STEP_S
    groups: dict[tuple[int, int], list[_Entry]] = {}
    for e in sorted(log, key=_Entry.key):
        groups.setdefault((e.conn, e.generation), []).append(e)
    midnights = ctx.midnights_s.tolist()
    for (conn, generation), entries in groups.items():
        reads = real.reads(conn, midnights, total)
        swap = real.replaced.get(conn)
        if swap is not None:
            reads = [r for r in reads if (r >= swap.at_s) == bool(generation)]
        ends = [e.end for e in entries]
        for e in entries:
            if e.end < 0 and not real.down(conn, e.end):
                continue  # read before the period, when it happened
            later = [r for r in reads if r >= e.end]
            if not later:
                e.read = False
                replaced = swap is not None and not generation
                e.lost = "meter_replaced" if replaced else "meter_offline"
                continue
            newer = int(np.searchsorted(ends, later[0], side="right")) - int(
                np.searchsorted(ends, e.end, side="right")
            )
            if newer >= depth:
                e.read, e.lost = False, "log_overflow"


def _log_table(ctx: _Context, log: list[_Entry], depth: int) -> pa.Table:
    """The 1-0:99.97.0 entries the head-end has (END, duration by the meter's clock) per
    meter; ``in_meter_buffer`` marks the last ``depth`` of each meter's log."""
    log = sorted(log, key=_Entry.key)
    log_conn = np.array([e.conn for e in log], dtype=np.int64)
    log_meter = log_conn * 2 + np.array([e.generation for e in log], dtype=np.int64)
    in_buffer = np.zeros(len(log), dtype=bool)
    for meter in np.unique(log_meter):
        where = np.flatnonzero(log_meter == meter)
        in_buffer[where[-depth:]] = True
    read = np.array([e.read for e in log], dtype=bool)
    return pa.table(
        {
            "connection": pa.array(log_conn[read].astype(np.int32)),
            "ean": ctx.ean_column(log_conn[read]),
            "end": ctx.ts(np.array([e.meter_end for e in log], dtype=np.int64)[read]),
            "duration_s": pa.array(np.array([e.meter_duration for e in log], dtype=np.int64)[read]),
            "in_meter_buffer": pa.array(in_buffer[read]),
        },
        schema=SCHEMAS["power_failure_log"],
    )


def _last_gasp_table(ctx: _Context, gasp_at: Mapping[tuple[int, int], bool]) -> pa.Table:
    """The DSMR 5 last-gasp messages that got through."""
    gasps = sorted(c for c, s in gasp_at.items() if s)
    gasp_conn = np.array([c for c, _ in gasps], dtype=np.int64)
    return pa.table(
        {
            "connection": pa.array(gasp_conn.astype(np.int32)),
            "ean": ctx.ean_column(gasp_conn),
            "sent_at": ctx.ts(np.array([a for _, a in gasps], dtype=np.int64)),
        },
        schema=SCHEMAS["last_gasp"],
    )


def _seen_table(
    ctx: _Context,
    outages: Mapping[int, Sequence[tuple[int, int, list[Interruption]]]],
    seen: Mapping[int, _Seen],
    gasp_at: Mapping[tuple[int, int], bool],
    real: Realities,
) -> pa.Table:
    """Truth: per real interruption what its meter counted, logged and sent, when the
    head-end read it, and its meter classes (issue 16: ``meter_cases``)."""
    rows: dict[str, list[Any]] = {name: [] for name in TRUTH_SCHEMAS["interruptions_seen"].names}
    all_cuts = [cut for spans in outages.values() for _, _, members in spans for cut in members]
    for cut in sorted(all_cuts, key=lambda c: (c.index, c.start, c.outage_id)):
        got = seen[id(cut)]
        a, b = got.span
        entry = got.entry
        gasp = gasp_at.get((cut.index, a)) if a == _seconds(cut.start, ctx.axis) else None
        rows["outage_id"].append(cut.outage_id)
        rows["connection"].append(cut.index)
        rows["ean"].append(ctx.eans[cut.index])
        rows["meter"].append(ctx.meter[cut.index])
        rows["planned"].append(cut.planned)
        rows["start"].append(_seconds(cut.start, ctx.axis) + ctx.start_epoch)
        rows["end"].append(_seconds(cut.end, ctx.axis) + ctx.start_epoch)
        rows["duration_s"].append(cut.duration_s)
        rows["counted"].append(got.counted)
        rows["long"].append(got.long)
        rows["logged"].append(entry is not None)
        rows["log_end"].append(b + ctx.start_epoch if entry else None)
        rows["log_duration_s"].append(b - a if entry else None)
        rows["last_gasp_sent"].append(gasp)
        rows["meter_log_end"].append(entry.meter_end + ctx.start_epoch if entry else None)
        rows["meter_log_duration_s"].append(entry.meter_duration if entry else None)
        rows["read"].append(entry.read if entry else None)
        rows["meter_cases"].append(_meter_cases(cut.index, got, real))
    return pa.table(rows, schema=TRUTH_SCHEMAS["interruptions_seen"])


def _meter_cases(conn: int, got: _Seen, real: Realities) -> list[str]:
    """What happened to the meter of one interruption (:data:`METER_CASES`)."""
    entry = got.entry
    cases = []
    if entry and (entry.meter_end, entry.meter_duration) != (entry.end, entry.duration):
        cases.append("clock_drift")
    if any(real.down(conn, t) for t in got.span) or (entry and entry.lost == "meter_offline"):
        cases.append("meter_offline")
    if entry and entry.lost == "log_overflow":
        cases.append("log_overflow")
    if got.replaced_in or (entry and entry.lost == "meter_replaced"):
        cases.append("meter_replaced")
    return cases


def _digit_swap(value: float, rng: np.random.Generator) -> float | None:
    """Swap two adjacent differing digits of a whole-kWh reading, or None if impossible."""
    digits = list(str(round(value)))
    pairs = [i for i in range(len(digits) - 1) if digits[i] != digits[i + 1]]
    if not pairs or value < 10:
        return None
    i = pairs[int(rng.integers(len(pairs)))]
    digits[i], digits[i + 1] = digits[i + 1], digits[i]
    return float("".join(digits))


def _manual_tables(
    ctx: _Context,
    imp: IntArray,
    exp_: IntArray,
    regs: list[IntArray],
    params: MeterParams,
    rng: np.random.Generator,
) -> tuple[pa.Table, pa.Table]:
    """A mechanic's readings (whole kWh) with typical mistakes beside correct ones."""
    days = ctx.axis.days
    working = [d for d in range(days) if not ctx.calendar.is_offpeak_day(ctx.day_dates[d])]
    if not working:
        working = list(range(days))
    smart_pick = rng.random(ctx.n_conn) < params.smart_meter_share
    kinds = list(MISTAKES)
    weights = np.array([params.mistakes[k] for k in kinds])
    weights = weights / weights.sum()
    reading_rows: dict[str, list[Any]] = {n: [] for n in SCHEMAS["manual_readings"].names}
    error_rows: dict[str, list[Any]] = {n: [] for n in TRUTH_SCHEMAS["manual_reading_errors"].names}
    rate = params.ferraris_readings_per_30_days * days / 30.0
    lo, hi = params.read_hours
    for index in sorted(ctx.conns):
        ferraris = not ctx.smart[index]
        if ferraris:
            n = min(max(1, int(rng.poisson(rate))), len(working))
        elif smart_pick[index]:
            n = 1
        else:
            continue
        chosen = sorted(rng.choice(working, size=n, replace=False).tolist())
        for d in chosen:
            step = int(ctx.midnights_s[d] // STEP_S) + int(rng.integers(lo * 12, hi * 12))
            values = _registers_at(step, index, imp, exp_, regs, ctx.offpeak_q)
            true = {
                name: float(mwh // 1_000_000) for name, mwh in zip(REGISTERS, values, strict=True)
            }
            if ferraris:  # runs backwards while PV exports: net registers, no export;
                # its 5-digit drums wrap below zero instead of showing a minus (the hub
                # refuses negative registers, MTR-5.negative)
                true = {
                    "import_t1": float((values[0] - values[2]) % FERRARIS_WRAP_MWH // 1_000_000),
                    "import_t2": float((values[1] - values[3]) % FERRARIS_WRAP_MWH // 1_000_000),
                }
            reported = dict(true)
            reading_id = len(reading_rows["reading_id"])
            at = step * STEP_S + ctx.start_epoch
            if rng.random() < params.mistake_share:
                changed = _make_mistake(reported, str(rng.choice(kinds, p=weights)), rng)
                for name, kind in changed:
                    error_rows["reading_id"].append(reading_id)
                    error_rows["connection"].append(index)
                    error_rows["ean"].append(ctx.eans[index])
                    error_rows["read_at"].append(at)
                    error_rows["field"].append(f"{name}_kwh")
                    error_rows["error"].append(kind)
                    error_rows["reported_kwh"].append(reported[name])
                    error_rows["true_kwh"].append(true[name])
            reading_rows["reading_id"].append(reading_id)
            reading_rows["connection"].append(index)
            reading_rows["ean"].append(ctx.eans[index])
            reading_rows["meter"].append(ctx.meter[index])
            reading_rows["read_at"].append(at)
            for name in REGISTERS:
                reading_rows[f"{name}_kwh"].append(reported.get(name))
    return (
        pa.table(reading_rows, schema=SCHEMAS["manual_readings"]),
        pa.table(error_rows, schema=TRUTH_SCHEMAS["manual_reading_errors"]),
    )


def _registers_at(
    step: int,
    conn: int,
    imp: IntArray,
    exp_: IntArray,
    regs: list[IntArray],
    offpeak_q: BoolArray,
) -> list[int]:
    """The four registers (mWh) of one connection at a step boundary."""
    q, into = divmod(step, STEPS_PER_QUARTER)
    base = [int(r[q, conn]) for r in regs]
    if into and q < len(offpeak_q):
        first = q * STEPS_PER_QUARTER
        i_part = int(imp[first : first + into, conn].sum())
        e_part = int(exp_[first : first + into, conn].sum())
        t = 0 if offpeak_q[q] else 1
        base[t] += i_part
        base[2 + t] += e_part
    return base


def _make_mistake(
    reported: dict[str, float], kind: str, rng: np.random.Generator
) -> list[tuple[str, str]]:
    """Apply one mistake to ``reported`` in place; return the (field, kind) pairs changed."""
    names = sorted(reported)
    if kind == "register_swap" and reported["import_t1"] != reported["import_t2"]:
        reported["import_t1"], reported["import_t2"] = reported["import_t2"], reported["import_t1"]
        return [("import_t1", kind), ("import_t2", kind)]
    if kind == "digit_swap":
        order = [names[i] for i in rng.permutation(len(names))]
        for name in order:
            swapped = _digit_swap(reported[name], rng)
            if swapped is not None and swapped != reported[name]:
                reported[name] = swapped
                return [(name, kind)]
    nonzero = [n for n in names if reported[n] > 0]
    if not nonzero:
        return []
    name = nonzero[int(rng.integers(len(nonzero)))]
    if kind == "decimal_slip_div10":
        reported[name] = reported[name] / 10.0
        return [(name, kind)]
    reported[name] = reported[name] * 10.0
    return [(name, "decimal_slip_x10")]
