"""Meter behaviour of the twin (MTR-1, MTR-3, MKT-2, UC2, UC4) on small fake inputs."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.domain.capacity import ElectricityCapacity
from meetpunt.rulebook import offpeak_calendar
from meetpunt.twin.meters import (
    MeterData,
    MeterParams,
    events_from_subsamples,
    simulate_meters,
    subsample_voltages,
    threshold_runs,
)
from meetpunt.twin.model import (
    STEP_S,
    ConnectionKind,
    Interruption,
    MeterKind,
    TimeAxis,
    TwinConnection,
)
from meetpunt.twin.realities import Realities

PARAMS = MeterParams.load()
CALENDAR = offpeak_calendar()

# index: meter, phase (None = three-phase), PV kWp, gas
LAYOUT = [
    (MeterKind.DSMR5, 1, 3.0, True),
    (MeterKind.DSMR4, None, 0.0, True),
    (MeterKind.FERRARIS, 0, 0.0, False),
    (MeterKind.DSMR5, None, 5.0, False),
    (MeterKind.FERRARIS, None, 4.0, True),
    (MeterKind.DSMR5, 2, 0.0, False),
]


def make_conns(layout: list[tuple[MeterKind, int | None, float, bool]]) -> list[TwinConnection]:
    conns = []
    for i, (meter, phase, kwp, gas) in enumerate(layout):
        conns.append(
            TwinConnection(
                index=i,
                ean=f"871687140000{i:05d}0",
                kind=ConnectionKind.HOUSEHOLD,
                capacity=ElectricityCapacity(1 if phase is not None else 3, 40 if phase else 25),
                phase=phase,
                substation="SS-1",
                feeder="SS-1-F1",
                node=i,
                street="Kerkstraat",
                house_number=i + 1,
                postcode="5611AB",
                woz_object_id=f"0772010000{i:06d}",
                meter=meter,
                annual_kwh=2700.0,
                pv_kwp=kwp,
                gas_ean=f"871687140100{i:05d}0" if gas else None,
                gas_annual_m3=1100.0 if gas else 0.0,
            )
        )
    return conns


CONNS = make_conns(LAYOUT)


def inputs(
    axis: TimeAxis, n_conn: int, seed: int, volt: float = 230.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (axis.n_steps, n_conn, 3)
    consumption = (rng.gamma(2.0, 80.0, size=shape)).astype(np.float32)
    hours, *_ = axis.local_clock()
    sun = np.clip(np.sin((hours - 6.0) / 16.0 * np.pi), 0.0, None)
    pv = np.zeros(shape, dtype=np.float32)
    for conn in CONNS[:n_conn]:
        if conn.pv_kwp:
            pv[:, conn.index, conn.phases()[0]] = (sun * conn.pv_kwp * 700.0).astype(np.float32)
    voltage = (volt + rng.normal(0.0, 2.0, size=shape)).astype(np.float32)
    gas = rng.gamma(1.0, 0.1, size=(axis.n_steps // 12, n_conn))
    return consumption, pv, voltage, gas


def run(
    axis: TimeAxis,
    interruptions: list[Interruption] | None = None,
    seed: int = 7,
    params: MeterParams = PARAMS,
    voltage: np.ndarray | None = None,
    realities: Realities | None = None,
) -> MeterData:
    consumption, pv, volt, gas = inputs(axis, len(CONNS), seed)
    return simulate_meters(
        CONNS,
        axis,
        consumption,
        pv,
        volt if voltage is None else voltage,
        interruptions or [],
        np.random.default_rng(seed),
        gas_m3_hourly=gas,
        params=params,
        calendar=CALENDAR,
        realities=realities,
    )


def rows(table: pa.Table) -> list[dict[str, object]]:
    return list(table.to_pylist())


# 2025-03-28 is a Friday; the 30th is the DST Sunday (23 h); the 31st a Monday.
SPRING = TimeAxis.for_days(date(2025, 3, 28), 4)
AUTUMN = TimeAxis.for_days(date(2025, 10, 25), 3)
T0 = SPRING.start_utc


def at(hours: float, seconds: int = 0) -> datetime:
    return T0 + timedelta(hours=hours, seconds=seconds)


CUTS = [
    Interruption(0, "OUT-1", at(10, 17), at(10, 77)),  # 60 s: short
    Interruption(0, "OUT-2", at(20, 5), at(20, 605)),  # 600 s: long
    Interruption(3, "OUT-3", at(23, 30), at(25, 40), planned=True),  # over midnight
    Interruption(1, "OUT-4", at(30), at(30, 200)),  # overlapping: one failure
    Interruption(1, "OUT-5", at(30, 100), at(30, 400)),
    Interruption(2, "OUT-6", at(40), at(42)),  # ferraris: nothing recorded
    Interruption(5, "OUT-7", at(50), at(50, 180)),  # exactly 180 s: not long
]


@pytest.fixture(scope="module")
def spring() -> MeterData:
    return run(SPRING, CUTS)


# --- energy and registers ------------------------------------------------------------------


def register_series(data: MeterData, kind: str, conn: int) -> list[dict[str, object]]:
    return [r for r in rows(data.tables[kind]) if r["connection"] == conn]


def test_quarter_hours_only_for_smart_meters_and_ferraris_only_manual(spring: MeterData) -> None:
    smart = {c.index for c in CONNS if c.meter.smart}
    for kind in ("quarter_hours", "daily_readings", "voltages_10min", "power_failures"):
        assert set(spring.tables[kind].column("connection").to_pylist()) == smart, kind
    manual = set(spring.tables["manual_readings"].column("connection").to_pylist())
    assert {2, 4} <= manual


@pytest.mark.parametrize(
    ("axis", "expected"), [(SPRING, [96, 96, 92, 96]), (AUTUMN, [96, 100, 96])]
)
def test_quarter_hours_per_local_day_follow_dst(axis: TimeAxis, expected: list[int]) -> None:
    data = run(axis)
    starts = [r["start"] for r in rows(data.tables["quarter_hours"]) if r["connection"] == 0]
    per_day = Counter(to_local(s).date() for s in starts)
    assert [per_day[d] for d in sorted(per_day)] == expected


def test_daily_readings_at_local_midnight_and_monthly_on_the_first() -> None:
    axis = TimeAxis.for_days(date(2025, 3, 30), 3)
    data = run(axis)
    for r in rows(data.tables["daily_readings"]):
        assert to_local(r["at"]).time().hour == 0 and to_local(r["at"]).minute == 0
    monthly = {r["at"] for r in rows(data.tables["monthly_readings"])}
    assert monthly == {local_midnight_utc(date(2025, 4, 1))}


def check_registers(data: MeterData) -> None:
    quarter = data.tables["quarter_hours"].to_pandas()
    for conn in {c.index for c in CONNS if c.meter.smart}:
        daily = register_series(data, "daily_readings", conn)
        qh = quarter[quarter.connection == conn]
        for before, after in itertools.pairwise(daily):
            for reg in ("import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh"):
                assert after[reg] >= before[reg]
            lo, hi = before["at"], after["at"]
            day = qh[(qh.start >= lo) & (qh.start < hi)]
            imported = after["import_t1_kwh"] + after["import_t2_kwh"]
            imported -= before["import_t1_kwh"] + before["import_t2_kwh"]
            exported = after["export_t1_kwh"] + after["export_t2_kwh"]
            exported -= before["export_t1_kwh"] + before["export_t2_kwh"]
            assert round(imported * 1000) == int(day.import_wh.sum())
            assert round(exported * 1000) == int(day.export_wh.sum())


def test_daily_increase_equals_the_days_quarter_hours(spring: MeterData) -> None:
    check_registers(spring)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_registers_and_counters_only_go_up(seed: int, days: int) -> None:
    axis = TimeAxis.for_days(date(2025, 3, 29), days)
    consumption, pv, volt, gas = inputs(axis, len(CONNS), seed, volt=209.0)
    rng = np.random.default_rng(seed)
    cuts = []
    for i in range(4):
        begin = axis.start_utc + timedelta(seconds=int(rng.integers(0, axis.n_steps * STEP_S)))
        end = begin + timedelta(seconds=int(rng.integers(1, 3600)))
        cuts.append(Interruption(int(rng.integers(0, len(CONNS))), f"O{i}", begin, end))
    data = simulate_meters(
        CONNS, axis, consumption, pv, volt, cuts, rng, gas_m3_hourly=gas, calendar=CALENDAR
    )
    check_registers(data)
    for kind, cols in (
        ("voltage_events", ("sags", "swells")),
        ("power_failures", ("failures", "long_failures")),
        ("gas_hourly", ("reading_m3",)),
    ):
        frame = data.tables[kind].to_pandas()
        keys = ["connection", "phase"] if "phase" in frame else ["connection"]
        for _, group in frame.groupby(keys):
            for col in cols:
                assert group[col].is_monotonic_increasing, (kind, col)
    assert (data.tables["quarter_hours"].to_pandas()[["import_wh", "export_wh"]] >= 0).all().all()


def test_t1_holds_all_weekend_energy(spring: MeterData) -> None:
    for conn in (0, 1, 3, 5):
        daily = register_series(spring, "daily_readings", conn)
        by_day = {to_local(r["at"]).date(): r for r in daily}
        for weekend_day in (date(2025, 3, 29), date(2025, 3, 30)):
            start, end = by_day[weekend_day], by_day[weekend_day + timedelta(days=1)]
            assert end["import_t2_kwh"] == start["import_t2_kwh"]
            assert end["export_t2_kwh"] == start["export_t2_kwh"]
            assert end["import_t1_kwh"] > start["import_t1_kwh"]
        friday, saturday = by_day[date(2025, 3, 28)], by_day[date(2025, 3, 29)]
        assert saturday["import_t2_kwh"] > friday["import_t2_kwh"]  # weekday 07-23: normal


def test_gas_hours_add_up_to_the_input() -> None:
    consumption, pv, volt, gas = inputs(SPRING, len(CONNS), 3)
    data = simulate_meters(
        CONNS, SPRING, consumption, pv, volt, [], np.random.default_rng(3), gas_m3_hourly=gas
    )
    frame = data.tables["gas_hourly"].to_pandas()
    assert set(frame.connection) == {0, 1}  # smart meters with gas; ferraris 4 has none
    for conn in (0, 1):
        mine = frame[frame.connection == conn]
        assert len(mine) == SPRING.n_steps // 12
        assert mine.volume_m3.sum() == pytest.approx(gas[:, conn].sum(), abs=0.002)
        assert (mine.volume_m3 >= 0).all()


# --- power failures (UC4) -------------------------------------------------------------------


def test_failure_log_matches_the_injected_interruptions(spring: MeterData) -> None:
    log = [r for r in rows(spring.tables["power_failure_log"]) if r["end"] >= T0]
    got = sorted((r["connection"], r["end"], r["duration_s"]) for r in log)
    assert got == [
        (0, at(20, 605), 600),
        (1, at(30, 400), 400),  # the two overlapping interruptions are one failure
        (3, at(25, 40), 7210),  # logged at its END, on the next day
    ]
    for r in rows(spring.tables["power_failure_log"]):  # history before the run: long too
        assert r["duration_s"] > PARAMS.long_longer_than_s


def test_failure_counters_count_every_interruption_when_it_ends(spring: MeterData) -> None:
    counters = spring.tables["power_failures"].to_pandas()
    expected = {0: (2, 1), 1: (1, 1), 3: (1, 1), 5: (1, 0)}
    for conn, (all_failures, long_failures) in expected.items():
        mine = counters[counters.connection == conn]
        last = mine.iloc[-1]
        start_all = spring.state.failure_start[conn]
        assert last.failures - start_all[0] == all_failures
        assert last.long_failures - start_all[1] == long_failures
    c3 = counters[counters.connection == 3]
    assert list(c3.long_failures.diff().fillna(0)) == [0, 1, 0, 0]  # ended on day 2


def test_log_counts_match_the_long_counter_and_buffer_holds_ten(spring: MeterData) -> None:
    log = spring.tables["power_failure_log"].to_pandas()
    counters = spring.tables["power_failures"].to_pandas()
    for conn, group in log.groupby("connection"):
        assert group.in_meter_buffer.sum() == min(len(group), PARAMS.log_depth)
        assert list(group.in_meter_buffer) == sorted(group.in_meter_buffer)  # the last ones
        long_start = int(spring.state.failure_start[conn][1])
        long_total = counters[counters.connection == conn].long_failures.iloc[-1]
        assert (group.end < T0).sum() == min(long_start, PARAMS.log_depth)  # history
        assert (group.end >= T0).sum() == long_total - long_start


def test_interruptions_seen_records_what_each_meter_made_of_it(spring: MeterData) -> None:
    seen = {r["outage_id"]: r for r in rows(spring.truth["interruptions_seen"])}
    assert len(seen) == len(CUTS)
    assert seen["OUT-1"]["counted"] and not seen["OUT-1"]["logged"]
    assert seen["OUT-2"]["logged"] and seen["OUT-2"]["log_duration_s"] == 600
    assert seen["OUT-5"]["log_end"] == at(30, 400) and seen["OUT-4"]["log_duration_s"] == 400
    assert not seen["OUT-6"]["counted"] and seen["OUT-6"]["meter"] == "ferraris"
    assert seen["OUT-7"]["counted"] and not seen["OUT-7"]["long"]
    assert seen["OUT-3"]["planned"]
    assert seen["OUT-4"]["last_gasp_sent"] is None  # a DSMR 4 meter sends none


def test_last_gasp_from_dsmr5_at_the_start_of_an_interruption() -> None:
    always = dataclasses.replace(PARAMS, last_gasp_success=1.0)
    data = run(SPRING, CUTS, params=always)
    got = sorted((r["connection"], r["sent_at"]) for r in rows(data.tables["last_gasp"]))
    assert got == [(0, at(10, 17)), (0, at(20, 5)), (3, at(23, 30)), (5, at(50))]
    never = run(SPRING, CUTS, params=dataclasses.replace(PARAMS, last_gasp_success=0.0))
    assert never.tables["last_gasp"].num_rows == 0


# --- voltage ---------------------------------------------------------------------------------


def test_no_voltage_during_an_interruption(spring: MeterData) -> None:
    volts = spring.tables["voltages_10min"].to_pandas()
    mine = volts[volts.connection == 3]
    inside = mine[(mine.start >= at(23, 600)) & (mine.start < at(25, -600))]
    assert len(inside) > 0 and (inside.voltage_v == 0.0).all()
    outside = mine[mine.start < at(23)]
    assert (outside.voltage_v > 200).all()


def test_reported_voltage_is_a_noisy_10_minute_mean_at_01_v(spring: MeterData) -> None:
    volts = spring.tables["voltages_10min"].to_pandas()
    assert len(volts[volts.connection == 0]) == SPRING.n_steps // 2  # single-phase: one row
    assert set(volts[volts.connection == 0].phase) == {1}  # the meter's own L1
    assert set(volts[volts.connection == 3].phase) == {1, 2, 3}
    tenths = volts.voltage_v * 10
    assert np.allclose(tenths, np.round(tenths))
    supplied = volts[volts.voltage_v > 0]
    assert supplied.voltage_v.max() < 245
    for row in supplied[supplied.voltage_v < 215].itertuples():  # partly without supply
        end = row.start + timedelta(minutes=10)
        assert any(c.index == row.connection and c.start < end and row.start < c.end for c in CUTS)


def test_run_of_40_s_beyond_207_v_counts_and_20_s_does_not() -> None:
    samples = np.full(30, 230.0)
    samples[10:14] = 205.0  # 4 sub-samples of 10 s = 40 s
    first, duration = events_from_subsamples(samples < 207.0)
    assert list(first) == [10] and list(duration) == [40]
    samples = np.full(30, 230.0)
    samples[10:12] = 205.0  # 20 s
    assert events_from_subsamples(samples < 207.0)[0].size == 0
    samples[10:13] = 205.0  # exactly 30 s: not MORE than 30 s
    assert events_from_subsamples(samples < 207.0)[0].size == 0


def test_a_break_splits_a_run() -> None:
    beyond = np.ones(8, dtype=bool)
    breaks = np.zeros(8, dtype=bool)
    breaks[4] = True  # two steps that are not consecutive in time
    assert events_from_subsamples(beyond, breaks=breaks)[0].size == 2
    assert events_from_subsamples(beyond)[1].tolist() == [80]


@given(st.lists(st.booleans(), max_size=80), st.lists(st.booleans(), max_size=80))
def test_threshold_runs_match_a_plain_loop(flags: list[bool], cut: list[bool]) -> None:
    beyond = np.array(flags, dtype=bool)
    breaks = np.zeros(beyond.size, dtype=bool)
    breaks[: min(len(cut), beyond.size)] = cut[: beyond.size]
    expected, start = [], None
    for i, flag in enumerate([*flags, False]):
        if start is not None and (not flag or (i < len(flags) and breaks[i])):
            expected.append((start, i - start))
            start = None
        if flag and start is None:
            start = i
    starts, lengths = threshold_runs(beyond, breaks)
    assert list(zip(starts.tolist(), lengths.tolist(), strict=True)) == expected


@given(st.lists(st.floats(180.0, 270.0), min_size=1, max_size=20), st.integers(0, 2**32 - 1))
def test_subsamples_average_to_the_step_mean(means: list[float], seed: int) -> None:
    sub = subsample_voltages(
        np.array(means), np.random.default_rng(seed), std_v=1.5, correlation_s=60.0
    )
    assert sub.shape == (len(means), STEP_S // 10)
    assert np.allclose(sub.mean(axis=1), means)


def test_a_dip_in_the_physics_becomes_events_and_counters() -> None:
    consumption, pv, volt, gas = inputs(SPRING, len(CONNS), 5)
    volt[:, 5, :] = 231.0
    volt[100:103, 5, 2] = 195.0  # 15 minutes far below 207 V on grid phase L3
    volt[200, 5, 2] = 206.5  # one 5-minute mean just below: sub-samples decide
    data = simulate_meters(
        CONNS, SPRING, consumption, pv, volt, [], np.random.default_rng(1), gas_m3_hourly=gas
    )
    events = [r for r in rows(data.truth["voltage_events"]) if r["connection"] == 5]
    long_dip = [e for e in events if e["start"] < at(0, 101 * STEP_S)]
    assert len(long_dip) == 1 and long_dip[0]["duration_s"] == 900
    assert long_dip[0]["phase"] == 1 and long_dip[0]["grid_phase"] == 3
    assert all(e["kind"] == "sag" and e["duration_s"] > 30 for e in events)
    assert all(at(0, 200 * STEP_S) <= e["start"] < at(0, 201 * STEP_S) for e in events[1:])
    counters = [r for r in rows(data.tables["voltage_events"]) if r["connection"] == 5]
    base = int(data.state.sag_start[5, 0])
    assert counters[-1]["sags"] - base == len(events)


def test_swells_on_a_pv_feeder_end() -> None:
    volt = np.full((SPRING.n_steps, len(CONNS), 3), 230.0, dtype=np.float32)
    volt[150:160, 3, :] = 262.0  # 6 standard deviations above 253 V
    data = run(SPRING, voltage=volt)
    events = [r for r in rows(data.truth["voltage_events"]) if r["connection"] == 3]
    assert {(e["phase"], e["kind"], e["duration_s"]) for e in events} == {
        (p, "swell", 3000) for p in (1, 2, 3)
    }


# --- manual readings ---------------------------------------------------------------------------


def test_manual_readings_record_their_mistakes_and_are_right_otherwise() -> None:
    sloppy = dataclasses.replace(PARAMS, mistake_share=0.5, smart_meter_share=1.0)
    data = run(SPRING, params=sloppy)
    readings = {r["reading_id"]: r for r in rows(data.tables["manual_readings"])}
    errors = rows(data.truth["manual_reading_errors"])
    assert errors and len({e["reading_id"] for e in errors}) < len(readings)
    wrong = {(e["reading_id"], e["field"]): e for e in errors}
    for e in errors:
        assert readings[e["reading_id"]][e["field"]] == e["reported_kwh"] != e["true_kwh"]
    for rid, reading in readings.items():
        conn = reading["connection"]
        step = int((reading["read_at"] - SPRING.start_utc).total_seconds()) // STEP_S
        regs = data.state.registers_mwh(conn)[step] // 1_000_000
        true = dict(
            zip(
                ("import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh"),
                regs.tolist(),
                strict=True,
            )
        )
        if CONNS[conn].meter is MeterKind.FERRARIS:  # net register, no export
            assert reading["export_t1_kwh"] is None
            net = data.state.registers_mwh(conn)[step]
            true = {
                "import_t1_kwh": (net[0] - net[2]) // 1_000_000,
                "import_t2_kwh": (net[1] - net[3]) // 1_000_000,
            }
        for name, value in true.items():
            expected = wrong[(rid, name)]["true_kwh"] if (rid, name) in wrong else reading[name]
            assert expected == value
        local = to_local(reading["read_at"])
        assert local.isoweekday() <= 5 and 8 <= local.hour < 17


def test_every_mistake_kind_occurs() -> None:
    sloppy = dataclasses.replace(PARAMS, mistake_share=1.0, smart_meter_share=1.0)
    axis = TimeAxis.for_days(date(2025, 6, 2), 30)
    consumption, pv, volt, _gas = inputs(axis, len(CONNS), 11)
    kinds: set[str] = set()
    for seed in range(4):
        data = simulate_meters(
            CONNS, axis, consumption, pv, volt, [], np.random.default_rng(seed), params=sloppy
        )
        kinds |= set(data.truth["manual_reading_errors"].column("error").to_pylist())
    assert kinds == {"digit_swap", "register_swap", "decimal_slip_x10", "decimal_slip_div10"}


# --- determinism and shapes ---------------------------------------------------------------------


def test_same_seed_same_tables(spring: MeterData) -> None:
    again = run(SPRING, CUTS)
    for kind, table in spring.tables.items():
        assert table.equals(again.tables[kind]), kind
    for kind, table in spring.truth.items():
        assert table.equals(again.truth[kind]), kind


def test_timestamps_are_utc_seconds(spring: MeterData) -> None:
    utc = pa.timestamp("s", tz="UTC")
    for table in [*spring.tables.values(), *spring.truth.values()]:
        for column in table.schema:
            if pa.types.is_timestamp(column.type):
                assert column.type == utc
    first = spring.tables["quarter_hours"].column("start")[0].as_py()
    assert first == SPRING.start_utc == datetime(2025, 3, 27, 23, 0, tzinfo=UTC)


def test_shapes_are_checked() -> None:
    consumption, pv, volt, gas = inputs(SPRING, len(CONNS), 1)
    with pytest.raises(ValueError, match="gas_m3_hourly"):
        simulate_meters(
            CONNS,
            SPRING,
            consumption,
            pv,
            volt,
            [],
            np.random.default_rng(1),
            gas_m3_hourly=gas[:-1],
        )
