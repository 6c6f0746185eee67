"""Meter realities of the twin (issue 16): drifting clocks, meters offline for days,
log entries lost before a read, a meter replaced during an outage. Each appears with
the switch on and not off, the truth marks it, and the meter data shows it the way a
head-end would."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.demo.score import Truth
from meetpunt.errors import RulesDataError
from meetpunt.rulebook import load_rules
from meetpunt.twin.generate import TwinSettings, generate
from meetpunt.twin.meters import MeterData
from meetpunt.twin.model import Interruption, TimeAxis
from meetpunt.twin.realities import (
    DAY_S,
    METER_CASES,
    Drift,
    Offline,
    Realities,
    RealityParams,
    Replacement,
    draw_realities,
)
from meetpunt.twin.swaps import replace_during_outages
from tests.twin.test_meters import CONNS, CUTS, PARAMS, SPRING, at, rows
from tests.twin.test_meters import run as meters_run

TOTAL = SPRING.n_steps * 300
EPOCH = int(SPRING.start_utc.timestamp())


def run(realities: Realities | None, cuts: list[Interruption] | None = None) -> MeterData:
    return meters_run(SPRING, CUTS if cuts is None else cuts, realities=realities)


def seen_of(data: MeterData, outage_id: str) -> dict[str, Any]:
    return next(r for r in rows(data.truth["interruptions_seen"]) if r["outage_id"] == outage_id)


def log_of(data: MeterData, conn: int) -> list[tuple[Any, int]]:
    log = rows(data.tables["power_failure_log"])
    return [
        (r["end"], r["duration_s"]) for r in log if r["connection"] == conn and r["end"] >= at(0)
    ]


@pytest.fixture(scope="module")
def plain() -> MeterData:
    return run(None)


def test_no_reality_changes_nothing(plain: MeterData) -> None:
    empty = run(Realities())
    for kind, table in plain.tables.items():
        assert empty.tables[kind].equals(table), kind
    assert all(r["meter_cases"] == [] for r in rows(plain.truth["interruptions_seen"]))
    for r in rows(plain.truth["interruptions_seen"]):  # the meter's clock is true
        assert r["meter_log_end"] == r["log_end"]
        assert r["read"] == (True if r["logged"] else None)


# --- clock drift ---------------------------------------------------------------------------


def test_a_drifting_clock_writes_its_own_end_and_the_truth_keeps_both(plain: MeterData) -> None:
    drift = Drift(offset_s=120.0, rate_s_per_day=-4.0)
    data = run(Realities(drift={0: drift}))
    row = seen_of(data, "OUT-2")  # 600 s ending 20 h 10 min in
    true_end = at(20, 605)
    shift = drift.offset_at(int((true_end - at(0)).total_seconds()))
    assert shift == 117  # 120 s - 4 s/day x 0.84 day
    assert row["log_end"] == true_end
    assert row["meter_log_end"] == true_end + timedelta(seconds=shift)
    assert row["meter_cases"] == ["clock_drift"]
    assert log_of(data, 0) == [(true_end + timedelta(seconds=shift), 600)]
    assert log_of(plain, 0) == [(true_end, 600)]
    for kind in ("quarter_hours", "voltages_10min", "power_failures", "manual_readings"):
        assert data.tables[kind].equals(plain.tables[kind]), kind  # only the clock's times


def test_a_drifting_meter_reads_its_registers_at_its_own_midnight(plain: MeterData) -> None:
    ahead = Drift(offset_s=450.0, rate_s_per_day=0.0)  # 7.5 min fast: reads before midnight
    data = run(Realities(drift={0: ahead}))

    def daily(d: MeterData, conn: int) -> list[dict[str, Any]]:
        return [r for r in rows(d.tables["daily_readings"]) if r["connection"] == conn]

    assert daily(data, 1) == daily(plain, 1)
    registers = data.state.registers_mwh(0)
    names = ("import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh")
    moved = 0
    for got, true in zip(daily(data, 0), daily(plain, 0), strict=True):
        t = max(int(got["at"].timestamp()) - EPOCH - 450, 0)
        step, into = divmod(t, 300)
        mwh = registers[step]
        if into:
            mwh = mwh + (registers[step + 1] - mwh) * into // 300
        assert [got[n] for n in names] == [float(v // 1000) / 1000 for v in mwh.tolist()]
        assert all(got[n] <= true[n] for n in names)  # 7.5 minutes less, never more
        moved += got != true
    assert moved >= len(daily(plain, 0)) - 1  # every midnight but the axis start


def test_a_time_sync_sets_the_clock_right() -> None:
    synced = Drift(offset_s=300.0, rate_s_per_day=5.0, sync_s=3600)  # synced at 01:00
    data = run(Realities(drift={0: synced}))
    row = seen_of(data, "OUT-2")
    # 19 h after the sync at 5 s/day: 4 s off, no longer the 300 s before it
    assert (row["meter_log_end"] - row["log_end"]).total_seconds() == 4


@settings(max_examples=60, deadline=None)
@given(
    offset=st.floats(-600, 600),
    rate=st.floats(-20, 20),
    sync=st.one_of(st.none(), st.integers(0, 30 * DAY_S)),
    t=st.integers(0, 30 * DAY_S),
)
def test_drift_is_offset_plus_rate_until_the_sync(
    offset: float, rate: float, sync: int | None, t: int
) -> None:
    d = Drift(offset, rate, sync)
    if sync is None or t < sync:
        assert abs(d.offset_at(t) - (offset + rate * t / DAY_S)) <= 0.5
    else:
        assert abs(d.offset_at(t)) <= abs(rate) * (t - sync) / DAY_S + 0.5


# --- offline meters --------------------------------------------------------------------------


def test_a_meter_back_within_the_period_has_its_log_read_late(plain: MeterData) -> None:
    window = Offline(int(at(19).timestamp()) - EPOCH, 2 * DAY_S + 3600)
    data = run(Realities(offline={0: window}))
    assert log_of(data, 0) == log_of(plain, 0)  # read when it came back
    row = seen_of(data, "OUT-2")
    assert row["read"] and row["meter_cases"] == ["meter_offline"]
    daily = [r for r in rows(data.tables["daily_readings"]) if r["connection"] == 0]
    assert len(daily) == SPRING.days + 1  # backfilled


def test_a_meter_still_offline_at_the_end_has_nothing_of_that_time(plain: MeterData) -> None:
    start = int(at(19).timestamp()) - EPOCH
    data = run(Realities(offline={0: Offline(start, TOTAL + 5 * DAY_S)}))
    assert log_of(data, 0) == []  # the 20 h interruption was never read
    row = seen_of(data, "OUT-2")
    assert row["logged"] and row["read"] is False
    assert row["meter_cases"] == ["meter_offline"]
    for kind, column in (("quarter_hours", "start"), ("daily_readings", "at")):
        mine = [r[column] for r in rows(data.tables[kind]) if r["connection"] == 0]
        theirs = [r[column] for r in rows(plain.tables[kind]) if r["connection"] == 0]
        assert mine == [t for t in theirs if t < at(19)]
        others = [r for r in rows(data.tables[kind]) if r["connection"] != 0]
        assert others == [r for r in rows(plain.tables[kind]) if r["connection"] != 0]


def test_no_last_gasp_while_the_communication_is_down() -> None:
    always = dataclasses.replace(PARAMS, last_gasp_success=1.0)
    down = Realities(offline={0: Offline(0, TOTAL + DAY_S)})
    data = meters_run(SPRING, CUTS, params=always, realities=down)
    assert {r["connection"] for r in rows(data.tables["last_gasp"])} == {3, 5}


# --- the 10-entry log ------------------------------------------------------------------------


def flapping(n: int, conn: int = 0) -> list[Interruption]:
    """``n`` long interruptions of ``conn``, an hour apart, from 30 h in."""
    return [Interruption(conn, f"F{k:02d}", at(30 + k), at(30 + k, 600)) for k in range(n)]


def test_entries_pushed_out_before_the_read_are_lost_for_good() -> None:
    cuts = flapping(13)
    window = Offline(int(at(29).timestamp()) - EPOCH, int(at(60).timestamp()) - EPOCH)
    off = run(None, cuts)
    data = run(Realities(offline={0: window}), cuts)
    assert len(log_of(off, 0)) == 13  # without realities every entry is there
    ends = [e for e, _ in log_of(data, 0)]
    assert ends == [at(30 + k, 600) for k in range(3, 13)]  # the last 10 at the read
    seen = {r["outage_id"]: r for r in rows(data.truth["interruptions_seen"])}
    lost = sorted(k for k, r in seen.items() if "log_overflow" in r["meter_cases"])
    assert lost == ["F00", "F01", "F02"]
    assert all(seen[k]["logged"] and seen[k]["read"] is False for k in lost)


def test_a_daily_read_keeps_an_online_log_whole() -> None:
    cuts = flapping(8) + [  # 8 today, 8 tomorrow: never 10 between two reads
        Interruption(0, f"G{k:02d}", at(50 + k), at(50 + k, 600)) for k in range(8)
    ]
    data = run(Realities(drift={1: Drift(0.0, 0.0)}), cuts)
    assert len(log_of(data, 0)) == 16
    assert not any(r["meter_cases"] for r in rows(data.truth["interruptions_seen"]))


# --- a meter replaced during an outage -------------------------------------------------------


def test_a_meter_replaced_during_an_outage_never_logs_it(plain: MeterData) -> None:
    cuts = [*CUTS, Interruption(0, "OUT-9", at(70), at(71))]
    swap_at = int(at(20, 300).timestamp()) - EPOCH
    before = run(None, cuts)
    data = run(Realities(replaced={0: Replacement(swap_at, "OUT-2")}), cuts)
    row = seen_of(data, "OUT-2")
    assert not row["counted"] and not row["logged"] and row["meter_cases"] == ["meter_replaced"]
    assert log_of(data, 0) == [(at(71), 3600)]  # only the new meter's own failure
    assert log_of(before, 0) == [(at(20, 605), 600), (at(71), 3600)]
    counters = [r for r in rows(data.tables["power_failures"]) if r["connection"] == 0]
    # the new meter counts from zero: nothing on the swap day, OUT-9 ends at day 2's end
    assert [(r["failures"], r["long_failures"]) for r in counters] == [
        (0, 0),
        (0, 0),
        (1, 1),
        (1, 1),
    ]
    tables = dict(data.tables)
    region = SimpleNamespace(connections=CONNS)
    replaced = {0: Replacement(swap_at, "OUT-2")}
    truth = replace_during_outages(tables, replaced, data.state, region)  # type: ignore[arg-type]
    assert truth.column("outage_id").to_pylist() == ["OUT-2"]
    daily = [r for r in rows(tables["daily_readings"]) if r["connection"] == 0]
    first_new = next(r for r in daily if r["at"] > at(20, 300))
    assert 0.0 <= first_new["import_t1_kwh"] + first_new["import_t2_kwh"] < 20.0  # from zero
    old = [r for r in daily if r["at"] <= at(20, 300)]
    assert old == [r for r in rows(data.tables["daily_readings"]) if r["connection"] == 0][:1]


# --- drawing ---------------------------------------------------------------------------------

FIELD = RealityParams.load()
STRESS = RealityParams.load(stress=True)


def test_draws_are_seeded_and_follow_the_shares() -> None:
    month = TimeAxis.for_days(date(2025, 10, 6), 30)
    smart = list(range(2000))
    cuts = [
        Interruption(
            i,
            f"O{i % 7}",
            month.start_utc + timedelta(hours=5 + i % 500),
            month.start_utc + timedelta(hours=9 + i % 500),
        )
        for i in range(0, 2000, 2)
    ]
    one = draw_realities(smart, month, cuts, STRESS, np.random.default_rng(3))
    assert one == draw_realities(smart, month, cuts, STRESS, np.random.default_rng(3))
    assert one != draw_realities(smart, month, cuts, STRESS, np.random.default_rng(4))
    assert 0.5 * STRESS.clock_drift_share < len(one.drift) / 2000 < 1.5 * STRESS.clock_drift_share
    assert 0.5 * STRESS.offline_share < len(one.offline) / 2000 < 1.5 * STRESS.offline_share
    assert one.replaced and all(i % 2 == 0 for i in one.replaced)  # only interrupted meters
    for conn, r in one.replaced.items():
        cut = cuts[conn // 2]
        assert cut.start < month.start_utc + timedelta(seconds=r.at_s) < cut.end
    none = dataclasses.replace(STRESS, clock_drift_share=0.0, offline_share=0.0, replaced_share=0.0)
    assert draw_realities(smart, month, cuts, none, np.random.default_rng(3)) == Realities()
    assert FIELD.clock_drift_share < STRESS.clock_drift_share


def test_the_realities_section_is_checked() -> None:
    section = dict(load_rules("twin_meters").body["realities"])
    with pytest.raises(RulesDataError, match="shares"):
        RealityParams.from_mapping({**section, "offline_share": 1.5})
    with pytest.raises(RulesDataError, match="offline_days"):
        RealityParams.from_mapping({**section, "offline_days_min": 0.0})
    with pytest.raises(RulesDataError, match="malformed"):
        RealityParams.from_mapping({k: v for k, v in section.items() if k != "replaced_share"})


# --- the whole twin ----------------------------------------------------------------------------

SMALL = TwinSettings(connections=200, days=8, start=date(2025, 10, 20), seed=3, faults="stress")


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("realities")
    out = {}
    # a small twin holds few interrupted meters: replace more of them, so each shows
    often = dataclasses.replace(STRESS, replaced_share=0.1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RealityParams, "load", classmethod(lambda cls, stress=False: often))
        for name, s in (
            ("on", SMALL),
            ("again", SMALL),
            ("off", dataclasses.replace(SMALL, meter_realities=False)),
        ):
            generate(s, base / name)
            out[name] = base / name
    return out


def test_stress_has_the_realities_and_the_switch_turns_them_off(twins: dict[str, Path]) -> None:
    def cases(name: str) -> set[str]:
        seen = pq.read_table(twins[name] / "truth/interruptions_seen.parquet").to_pylist()
        return {c for r in seen for c in r["meter_cases"]}

    assert {"clock_drift", "meter_offline", "meter_replaced"} <= cases("on")
    assert cases("off") == set()
    assert SMALL.realities_on and not TwinSettings(faults="showcase").realities_on
    swaps = pq.read_table(twins["on"] / "truth/meter_swaps.parquet").to_pylist()
    assert any(s["outage_id"] for s in swaps)
    listed = pq.read_table(twins["on"] / "truth/meter_realities.parquet").to_pylist()
    assert {r["reality"] for r in listed} == {"clock_drift", "meter_offline", "meter_replaced"}
    replaced = {(r["connection"], r["outage_id"]) for r in listed if r["outage_id"]}
    assert replaced == {(s["connection"], s["outage_id"]) for s in swaps if s["outage_id"]}
    assert pq.read_table(twins["off"] / "truth/meter_realities.parquet").num_rows == 0


def test_same_seed_same_twin_with_realities(twins: dict[str, Path]) -> None:
    for kind in ("meterdata/power_failure_log", "truth/interruptions_seen", "truth/interruptions"):
        a = pq.read_table(twins["on"] / f"{kind}.parquet")
        assert a.equals(pq.read_table(twins["again"] / f"{kind}.parquet")), kind


def test_the_head_end_log_is_what_was_read(twins: dict[str, Path]) -> None:
    seen = pq.read_table(twins["on"] / "truth/interruptions_seen.parquet").to_pylist()
    log = pq.read_table(twins["on"] / "meterdata/power_failure_log.parquet").to_pylist()
    have = {(r["connection"], r["end"], r["duration_s"]) for r in log}
    logged = [r for r in seen if r["logged"]]
    assert any(not r["read"] for r in logged)
    for r in logged:
        key = (r["connection"], r["meter_log_end"], r["meter_log_duration_s"])
        assert (key in have) == r["read"], r


def test_the_scores_see_the_meter_classes(twins: dict[str, Path]) -> None:
    truth = Truth.read(twins["on"])
    interruptions = pq.read_table(twins["on"] / "truth/interruptions.parquet").to_pylist()
    marked = [r for r in interruptions if r["meter_cases"]]
    assert marked and set(METER_CASES) >= {c for r in marked for c in r["meter_cases"]}
    for r in marked[:20]:
        cases = truth.cases_of([r["outage_id"]], r["ean"])
        assert set(r["meter_cases"]) <= cases
        assert not set(METER_CASES) & truth.cases_of([r["outage_id"]])  # per meter only
