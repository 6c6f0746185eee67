"""Plausibility rules (MTR-5.implausible_*): realistic values pass, absurd ones are refused
and kept in quarantine with the rule, the rest of the batch goes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt import rulebook
from meetpunt.domain.vee import VeeRules
from meetpunt.errors import RulesDataError
from meetpunt.io.p1 import parse_telegram
from meetpunt.io.p1_source import source_from_telegrams
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.vee import ROW_RULES, US, RowInput, implausible_jumps, row_codes
from meetpunt.twin.p1 import render_telegram
from tests.io.p1data import snapshot
from tests.meterdata.conftest import E1X25, E3X25, GAS, NOW, Hub, reading, utc

RULES = rulebook.vee_rules()
NOW_US = int(NOW.timestamp()) * US
W_3X25 = 3 * 25 * 230.0
LIFE = datetime(2007, 1, 1, tzinfo=UTC)


def quarantined(hub: Hub) -> list[dict[str, Any]]:
    return hub.store.query("SELECT * FROM quarantine ORDER BY batch, record").to_pylist()


def codes(kind: str, times: list[datetime], **values: list[float]) -> list[str]:
    """The rule each row fails (or '') for rows of ``kind`` on a 3x25 connection."""
    k = KINDS[kind]
    n = len(times)
    cols = {name: np.asarray(values.get(name, [0] * n), dtype=np.float64) for name in k.value_names}
    rows = RowInput(
        np.zeros(n, dtype=np.int32),
        np.array([int(t.timestamp()) * US for t in times], dtype=np.int64),
        cols,
        np.full(n, W_3X25),
    )
    return [ROW_RULES[c] for c in row_codes(k, rows, RULES, NOW_US)]


# --- durations (power failure log) -------------------------------------------------------

durations_ok = st.integers(min_value=0, max_value=14 * 24 * 3600)
ends = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2025, 11, 30)).map(
    lambda d: d.replace(tzinfo=UTC, microsecond=0)
)


@given(end=ends, duration=durations_ok)
def test_a_realistic_failure_passes(end: datetime, duration: int) -> None:
    assert codes("power_failure_log", [end], duration_s=[duration]) == [""]


@given(end=ends, extra=st.integers(min_value=1, max_value=10**12))
def test_a_failure_longer_than_any_meter_has_lived_is_refused(end: datetime, extra: int) -> None:
    lived = int((end - LIFE).total_seconds())
    assert codes("power_failure_log", [end], duration_s=[lived + extra]) == [
        "MTR-5.implausible_duration"
    ]


def test_the_p1_nine_nines_failure_is_refused() -> None:
    got = codes("power_failure_log", [utc(2025, 6, 1)], duration_s=[9_999_999_999])
    assert got == ["MTR-5.implausible_duration"]


@given(year=st.integers(min_value=1970, max_value=2006))
def test_a_time_before_any_smart_meter_is_refused(year: int) -> None:
    """A log end read as 1999 (P1 ``99...``) or the 1970 placeholder cannot be true."""
    got = codes("power_failure_log", [datetime(year, 6, 1, tzinfo=UTC)], duration_s=[60])
    assert got == ["MTR-5.implausible_time"]


def test_a_time_in_the_future_is_still_the_clock_rule() -> None:
    got = codes("power_failure_log", [datetime(2099, 1, 1, tzinfo=UTC)], duration_s=[60])
    assert got == ["MTR-5.clock"]


# --- registers against capacity x time ---------------------------------------------------


@given(at=ends, kwh_per_year=st.integers(min_value=0, max_value=20_000))
def test_a_realistic_register_passes(at: datetime, kwh_per_year: int) -> None:
    years = (at - LIFE).total_seconds() / (365.25 * 86400)
    wh = int(kwh_per_year * 1000 * years)
    assert codes("daily_readings", [at], import_t1_wh=[wh], import_t2_wh=[wh]) == [""]


@given(at=ends, factor=st.floats(min_value=1.01, max_value=1e6))
def test_a_register_above_capacity_times_life_is_refused(at: datetime, factor: float) -> None:
    hours = (at - LIFE).total_seconds() / 3600
    wh = W_3X25 * RULES.capacity_tolerance * hours * factor + 1000
    assert codes("daily_readings", [at], import_t1_wh=[wh]) == ["MTR-5.implausible_register"]


def test_an_event_counter_above_one_a_second_for_life_is_refused() -> None:
    at = utc(2025, 6, 1)
    lived = (at - LIFE).total_seconds()
    assert codes("voltage_events", [at], sags=[lived * 2]) == ["MTR-5.implausible_register"]
    assert codes("voltage_events", [at], sags=[12]) == [""]


# --- jumps against the previous reading (pure) -------------------------------------------


def jumps(kind: str, times_s: list[int], regs: list[list[float]], capacity: float) -> list[int]:
    k = KINDS[kind]
    n = len(times_s)
    got = implausible_jumps(
        k,
        RULES,
        np.array(times_s, dtype=np.int64) * US,
        np.array(regs, dtype=np.float64),
        np.zeros(n, dtype=np.int64),
        np.arange(n, dtype=np.int64),
        np.full(n, capacity),
    )
    return sorted(got)


@given(
    steps=st.lists(st.tuples(st.integers(1, 86_400), st.floats(0, 1.0)), min_size=1, max_size=30)
)
def test_readings_that_rise_within_the_fuse_pass(steps: list[tuple[int, float]]) -> None:
    """Any use up to the fusing power (fraction 0..1 of it) is possible."""
    t, wh = [0], [0.0]
    for dt, used in steps:
        t.append(t[-1] + dt)
        wh.append(wh[-1] + W_3X25 * RULES.capacity_tolerance * dt / 3600 * used)
    regs = [[w, 0, 0, 0] for w in wh]
    assert jumps("daily_readings", t, regs, W_3X25) == []


@given(
    before=st.integers(1, 30),
    dt=st.integers(1, 86_400),
    factor=st.floats(1.5, 1e9),
)
@settings(max_examples=50)
def test_one_spike_refuses_that_reading_only(before: int, dt: int, factor: float) -> None:
    step = W_3X25 * dt / 3600 * 0.2
    t = [i * dt for i in range(before + 3)]
    wh = [i * step for i in range(before + 3)]
    limit = W_3X25 * RULES.capacity_tolerance * dt / 3600 + RULES.register_slack_wh
    wh[before] = wh[before - 1] + limit * factor
    regs = [[w, 0, 0, 0] for w in wh]
    assert jumps("daily_readings", t, regs, W_3X25) == [before]


def test_a_gas_register_that_rises_faster_than_any_meter_flows_is_refused() -> None:
    hour = 3600
    ok = jumps("gas_hourly", [0, hour], [[1_000_000], [1_003_000]], np.nan)
    bad = jumps("gas_hourly", [0, hour], [[1_000_000], [2_000_000]], np.nan)
    assert ok == [] and bad == [1]


# --- through the ingest: quarantined with the rule, the rest goes on ---------------------


def test_the_ingest_quarantines_absurd_rows_and_stores_the_rest(hub: Hub) -> None:
    rows = [
        {"ean": E3X25, "end": utc(2025, 6, 1, 12), "duration_s": 5 * 3600},
        {"ean": E3X25, "end": utc(2025, 6, 2, 12), "duration_s": 9_999_999_999},
        {"ean": E1X25, "end": utc(1999, 12, 31, 23), "duration_s": 60},
    ]
    report = hub.ingest("power_failure_log", rows)
    assert report.total("accepted") == 1
    assert report.quarantined == {
        "MTR-5.implausible_duration": 1,
        "MTR-5.implausible_time": 1,
    }
    kept = quarantined(hub)
    assert [r["record"] for r in kept] == [2, 3]
    assert "before the meter existed" in str(kept[0]["message"])
    assert "9999999999" in str(kept[0]["raw"])


def test_the_ingest_refuses_a_999999_kwh_reading_after_a_normal_one(hub: Hub) -> None:
    first = hub.ingest("p1_readings", [reading(E3X25, utc(2025, 6, 1, 10), 4_000_000)])
    assert first.total("accepted") == 1
    rows = [
        reading(E3X25, utc(2025, 6, 1, 10, 0, 10), 999_999_000_000 // 1000),
        reading(E3X25, utc(2025, 6, 1, 10, 0, 20), 4_000_010),
    ]
    report = hub.ingest("p1_readings", rows)
    assert report.quarantined == {"MTR-5.implausible_jump": 1}
    assert report.total("accepted") == 1
    message = str(quarantined(hub)[0]["message"])
    assert "more than the meter can count" in message


def test_a_gas_register_jump_is_refused_in_the_ingest(hub: Hub) -> None:
    rows = [
        {"gas_ean": GAS, "start": utc(2025, 6, 1, h), "volume_dm3": 500, "reading_dm3": r}
        for h, r in ((0, 1_000_000), (1, 1_000_500), (2, 90_000_000), (3, 1_001_500))
    ]
    report = hub.ingest("gas_hourly", rows)
    assert report.quarantined == {"MTR-5.implausible_jump": 1}
    assert report.total("accepted") == 3


def test_realistic_daily_readings_pass_the_ingest(hub: Hub) -> None:
    day0 = utc(2025, 6, 1, 22)
    rows = [
        reading(E1X25, day0 + timedelta(days=d), 3_000_000 + 9_000 * d, 2_000_000 + 6_000 * d)
        for d in range(20)
    ]
    report = hub.ingest("daily_readings", rows)
    assert report.total("accepted") == 20 and not report.quarantined


def test_the_rule_file_carries_the_plausibility_thresholds_with_their_source() -> None:
    loaded = rulebook.load_rules("vee_rules")
    assert "meter_life_start" in loaded.body["plausibility"]
    assert RULES.meter_life_start.isoformat() == "2007-01-01"
    assert RULES.uncorroborated_max_h == 24.0
    body = {k: v for k, v in loaded.body.items() if k != "plausibility"}
    with pytest.raises(RulesDataError, match="plausibility"):
        VeeRules.from_mapping(body)


def test_the_issues_p1_telegrams_with_a_valid_crc_are_refused_row_by_row(hub: Hub) -> None:
    """Through P1: a 9,999,999,999 s failure, a log end written 99... (read as 1999;
    the issue's '2099') and a 999,999 kWh register, each in a CRC-valid telegram: the
    rows are quarantined with their rule, the good readings around them stored."""
    t0 = utc(2025, 6, 2, 10)
    good = snapshot(timestamp=t0, failure_log=((utc(2025, 5, 8, 14), 301),))
    bad_log = snapshot(
        timestamp=t0 + timedelta(seconds=10),
        failure_log=((utc(2025, 5, 9, 14), 9_999_999_999), (utc(2099, 1, 1, 12), 60)),
    )
    spike = snapshot(timestamp=t0 + timedelta(seconds=20), import_wh=(999_999_000, 2_345_678))
    after = snapshot(timestamp=t0 + timedelta(seconds=30))
    raw = [render_telegram(s, "5.0") for s in (good, bad_log, spike, after)]
    telegrams = [parse_telegram(r) for r in raw]
    assert all(t.valid for t in telegrams)
    report = hub.ingestor.ingest(source_from_telegrams(telegrams, E3X25, "bad.p1", "bad"))
    assert report.quarantined == {
        "MTR-5.implausible_duration": 1,
        "MTR-5.implausible_time": 1,
        "MTR-5.implausible_jump": 1,
    }
    assert report.kinds["p1_readings"].accepted == 3
    assert report.kinds["power_failure_log"].accepted == 3  # with the snapshots' default log


def test_a_p1_log_entry_that_ends_after_its_own_telegram_is_refused_once(hub: Hub) -> None:
    """Timestamps against receipt: a failure-log entry ending a day after the telegram
    that carries it (same meter clock) is refused once, though every later telegram
    repeats it; the other entries and the readings are stored (MTR-5.implausible_time)."""
    t0 = utc(2025, 6, 2, 10)
    log = ((utc(2025, 5, 8, 14), 301), (t0 + timedelta(days=1), 600))
    raw = [
        render_telegram(snapshot(timestamp=t0 + timedelta(seconds=10 * i), failure_log=log), "5.0")
        for i in range(3)
    ]
    telegrams = [parse_telegram(r) for r in raw]
    assert all(t.valid for t in telegrams)
    report = hub.ingestor.ingest(source_from_telegrams(telegrams, E3X25, "late.p1", "late"))
    assert report.quarantined == {"MTR-5.implausible_time": 1}
    assert report.kinds["p1_readings"].accepted == 3
    ends = [end for (end,) in hub.values("power_failure_log", "end")]
    assert utc(2025, 5, 8, 14) in ends and t0 + timedelta(days=1) not in ends
