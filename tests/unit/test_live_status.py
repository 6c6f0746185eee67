"""The pure parts of live ingestion's status (issue 14): percentile, the bounded lag
reservoir, the growth trend, the status line, the Prometheus text, the broker's drops."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.io.live_status import (
    SYS_DROPPED,
    SYS_STORED,
    LagReservoir,
    LagTrend,
    LiveMonitor,
    percentile,
    prometheus_text,
    status_line,
    write_metrics,
)

lags = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=300)


@given(lags, st.floats(min_value=0, max_value=100))
def test_percentile_is_numpys_linear_percentile(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-9, abs=1e-6)


def test_percentile_of_nothing_is_nan_and_a_bad_q_says_so() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


@settings(max_examples=50)
@given(st.integers(min_value=1, max_value=64), st.integers(min_value=0, max_value=2000))
def test_the_reservoir_stays_bounded_and_keeps_only_added_lags(size: int, n: int) -> None:
    reservoir = LagReservoir(size)
    reservoir.extend(float(i) for i in range(n))
    assert len(reservoir.samples) == min(size, n)
    assert reservoir.seen == n
    assert set(reservoir.samples) <= {float(i) for i in range(n)}
    reservoir.clear()
    assert reservoir.samples == [] and reservoir.seen == 0


def test_the_reservoir_percentile_is_close_on_a_long_run() -> None:
    reservoir = LagReservoir(4096)
    reservoir.extend(i / 1000 for i in range(1_000_000))  # 0 .. 1000 s, uniform
    assert len(reservoir.samples) == 4096
    assert reservoir.quantile(95) == pytest.approx(950, abs=15)


def test_the_trend_warns_only_on_steady_growth_above_the_noise() -> None:
    trend = LagTrend(intervals=3, minimum=1.0, floor=5.0)
    assert [trend.add(v) for v in (4.0, 5.0, 6.0, 7.0)] == [False, False, False, True]
    assert trend.add(6.5) is False  # it fell once: no trend
    small = LagTrend(intervals=3, minimum=1.0, floor=0.0)
    assert not any(small.add(v) for v in (0.5, 0.6, 0.7, 0.8))  # rising, but by 0.3 s
    low = LagTrend(intervals=3, minimum=1.0, floor=5.0)
    assert not any(low.add(v) for v in (0.5, 1.5, 2.5, 3.5))  # under the 5-s goal
    assert LagTrend(2).add(math.nan) is False


def test_growing_lag_is_a_warning_naming_what_to_raise() -> None:
    live, clock, lines = monitor()
    for lag in (4.0, 6.0, 8.0, 10.0):
        live.received()
        clock.now += lag
        live.flushed()
        live.report()
    assert lines[-1] == (
        "WARNING: lag p95 grew over the last 3 intervals, to 10.0 s: ingestion is falling "
        "behind (raise --batch-size and the broker's max_inflight_messages, docs/meterdata.md)"
    )
    assert sum(line.startswith("WARNING") for line in lines) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def monitor(limit: float = 30.0) -> tuple[LiveMonitor, Clock, list[str]]:
    clock, lines = Clock(), []
    return LiveMonitor(lag_limit_s=limit, emit=lines.append, clock=clock), clock, lines


def test_an_interval_counts_rates_pending_and_both_lags() -> None:
    live, clock, lines = monitor()
    for _ in range(4):
        live.received()
    clock.now += 2
    live.stored([clock.now - 10, clock.now - 12], accepted=2, quarantined=1, duplicates=1)
    live.flushed()  # the 4 messages waited 2 s each
    live.received()  # pending
    clock.now += 3
    status = live.report()
    assert (status.seconds, status.messages, status.stored, status.pending) == (5, 5, 2, 1)
    assert status.messages_per_s == 1.0 and status.stored_per_s == 0.4
    assert (status.receipt_p50, status.receipt_p95) == (2.0, 2.0)
    assert status.telegram_p50 == 11.0
    assert status.broker_dropped is None and not status.warnings
    assert lines == [status_line(status)]
    assert "1.0 messages/s, 0.4 telegrams stored/s, 1 quarantined" in lines[0]
    assert "p95 2.00 s" in lines[0] and "broker dropped unknown" in lines[0]
    clock.now += 5
    quiet = live.tick()  # the next interval starts from zero, totals run on
    assert (quiet.messages, quiet.stored, quiet.messages_total, quiet.stored_total) == (0, 0, 5, 2)
    assert math.isnan(quiet.receipt_p95)


def test_a_lag_above_the_limit_is_a_warning() -> None:
    live, clock, lines = monitor(limit=30)
    live.received()
    clock.now += 31
    live.flushed()
    status = live.report()
    assert len(status.warnings) == 1
    assert lines[-1].startswith("WARNING: lag p95 from receipt to stored is 31.0 s, above 30 s")


def test_messages_dropped_at_a_reconnect_are_not_counted_twice() -> None:
    live, _, _ = monitor()
    live.received()
    live.received()
    live.forgotten()
    live.received()
    assert live.tick().messages_total == 1


def test_the_broker_dropping_messages_is_a_warning_at_once() -> None:
    live, _, lines = monitor()
    live.broker_stat(SYS_DROPPED, b"0")
    live.broker_stat(SYS_STORED, b"42")
    assert lines == []
    live.broker_stat(SYS_DROPPED, b"18960")
    assert lines == [
        "WARNING: the broker dropped 18960 more message(s) (18960 since it started): a "
        "client's queue is full and telegrams are lost; raise max_queued_messages / "
        "max_queued_bytes or ingest faster (docs/meterdata.md)"
    ]
    live.broker_stat(SYS_DROPPED, b"not a number")  # ignored
    status = live.tick()
    assert (status.broker_dropped, status.broker_stored) == (18960, 42)


def test_drops_before_we_connected_are_a_warning_too() -> None:
    live, _, lines = monitor()
    live.broker_stat(SYS_DROPPED, b"4000")
    assert lines[0].startswith("WARNING: the broker reports 4000 message(s) dropped")


def test_the_metrics_are_prometheus_text_replaced_whole(tmp_path: Path) -> None:
    live, clock, _ = monitor()
    live.received()
    clock.now += 1
    live.stored([clock.now - 3], accepted=1, quarantined=0, duplicates=0)
    live.flushed()
    live.broker_stat(SYS_DROPPED, b"7")
    text = prometheus_text(live.tick())
    assert "# TYPE meetpunt_live_messages_total counter\nmeetpunt_live_messages_total 1\n" in text
    assert 'meetpunt_live_lag_seconds{path="telegram",quantile="0.95"} 3\n' in text
    assert "meetpunt_live_broker_dropped_messages 7\n" in text
    assert "broker_stored" not in text  # unknown: left out, not 0
    for line in text.splitlines():  # every sample line: name{labels} number
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            assert name.startswith("meetpunt_live_") and (value == "NaN" or float(value) >= 0)
    target = tmp_path / "live.prom"
    write_metrics(target, "old\n")
    write_metrics(target, text)
    assert target.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["live.prom"]  # no temporary left
