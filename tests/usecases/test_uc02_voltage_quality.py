"""UC2 voltage quality monitoring: counter deltas across meter swaps, the ranking, the
notable rule (refusing what it must), and the gate end to end on a small twin."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt import rulebook
from meetpunt.app.hub import hub_store
from meetpunt.domain.voltage import VoltageQualityRules
from meetpunt.errors import RulesDataError
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate, Grant
from meetpunt.privacy.model import AccessRequest, Period
from meetpunt.usecases.grid import GridSpot
from meetpunt.usecases.uc02_voltage_quality import (
    Uc02Error,
    channel_counts,
    end_of_next_quarter,
    monitor_voltage_quality,
    notable_feeder,
    rank,
)
from meetpunt.usecases.uc03_seasonal import Uc03Error, analyse_feeder, feeder_eans
from tests.usecases.conftest import OPERATOR, Twin, period

T0 = datetime(2025, 4, 1, 22, 0, tzinfo=UTC)
AT = datetime(2025, 6, 20, 9, 0, tzinfo=UTC)


def counters(rows: list[tuple[int, int, int, int, int]]) -> pa.Table:
    """(connection, day, phase, sags, swells) as the hub's voltage_events rows."""
    return pa.table(
        {
            "connection": pa.array([r[0] for r in rows], pa.int32()),
            "at": pa.array([T0 + timedelta(days=r[1]) for r in rows], pa.timestamp("us", "UTC")),
            "phase": pa.array([r[2] for r in rows], pa.int8()),
            "sags": pa.array([r[3] for r in rows], pa.int64()),
            "swells": pa.array([r[4] for r in rows], pa.int64()),
        }
    )


def rules() -> VoltageQualityRules:
    return rulebook.voltage_quality()


def test_a_meter_swap_is_a_new_meters_count_not_a_negative_delta() -> None:
    # old meter: 40 sags, 7 swells at installation; +2 and +1; swapped: new meter 0, then +3
    table = counters(
        [(1, 0, 1, 40, 7), (1, 1, 1, 42, 8), (1, 2, 1, 0, 0), (1, 3, 1, 3, 0), (2, 0, 1, 5, 5)]
    )
    counts = channel_counts(table)
    assert (counts[(1, 1)].sags, counts[(1, 1)].swells, counts[(1, 1)].resets) == (5, 1, 1)
    assert (counts[(1, 1)].sags_now, counts[(1, 1)].swells_now) == (3, 0)
    assert counts[(2, 1)].sags == 0
    # the key step removed: last minus first goes negative
    plain = channel_counts(table, reset_handling=False)
    assert plain[(1, 1)].sags == 3 - 40 < 0


def test_a_swapped_meters_unread_last_day_is_said_not_readable_not_counted_wrong() -> None:
    """The old meter counted events after its last reading (day 1) and before the swap
    (day 2); the hub never got its final counters. UC2 counts what it read (a lower
    bound) and names the span as not readable, in the ranking and its JSON; a meter
    without a swap has no such span. Without reset handling there is no span either:
    the negative delta hides it."""
    table = counters([(1, d, 1, v, 0) for d, v in enumerate((40, 42, 0, 3))])
    got = channel_counts(table)[(1, 1)]
    assert got.not_readable == [(T0 + timedelta(days=1), T0 + timedelta(days=2))]
    assert (
        channel_counts(counters([(2, d, 1, 5 + d, 0) for d in range(4)]))[(2, 1)].not_readable == []
    )
    assert channel_counts(table, reset_handling=False)[(1, 1)].not_readable == []
    ranked = rank(
        channel_counts(table),
        {1: "871687400000000000"},
        {"871687400000000000": GridSpot("OS1", "F1")},
        rules(),
        3.0,
    )
    conn = ranked.connections[0]
    assert conn.events == 2 + 3 and conn.not_readable == (
        (1, T0 + timedelta(days=1), T0 + timedelta(days=2)),
    )
    shown = conn.as_dict()["not_readable"]
    assert len(shown) == 1 and "not readable" in shown[0]["why"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=30),
    st.integers(0, 10_000),
    st.sets(st.integers(1, 29), max_size=3),
)
def test_counted_events_are_the_events_the_meters_counted(
    days: list[tuple[int, int]], base: int, swaps: set[int]
) -> None:
    """Whatever the increments and swaps: the count is the sum of what each meter
    counted between readings, never negative. A swapped meter's first reading is the
    hub's MTR-5.meter_swap row (its ``rule``): the new meter's own events since it began
    at 0, even when they are not below the old meter's counters."""
    rows = [(7, 0, 2, base, base)]
    rule: list[str | None] = [None]
    sags, swells = base, base
    expected = [0, 0]
    for i, (ds, dw) in enumerate(days, start=1):
        if i in swaps:
            sags, swells = ds, dw
        else:
            sags, swells = sags + ds, swells + dw
        expected[0] += ds
        expected[1] += dw
        rows.append((7, i, 2, sags, swells))
        rule.append("MTR-5.meter_swap" if i in swaps else None)
    table = counters(rows).append_column("rule", pa.array(rule, pa.string()))
    got = channel_counts(table)[(7, 2)]
    assert (got.sags, got.swells) == tuple(expected)
    assert got.sags >= 0 and got.swells >= 0
    assert sum(got.per_day.values()) == sum(expected)


def spots(feeders: dict[str, int]) -> dict[str, GridSpot]:
    out = {}
    n = 0
    for feeder, meters in feeders.items():
        for _ in range(meters):
            out[f"8716874{n:011d}"] = GridSpot("OS1", feeder)
            n += 1
    return out


def test_the_notable_rule_names_a_short_feeder_with_many_events_not_a_long_quiet_one() -> None:
    r = rules()
    where = spots({"K1": 10, "K2": 200, "K3": 3})
    eans = dict(enumerate(where))
    rows = []
    for i, ean in eans.items():
        feeder = where[ean].feeder
        per = {"K1": 7, "K2": 0, "K3": 0}[feeder]
        extra = 40 if (feeder == "K2" and i % 20 == 0) else 0  # 10 noisy meters on K2
        rows += [(i, 0, 1, 0, 0), (i, 91, 1, 0, per + extra)]
    ranking = rank(channel_counts(counters(rows)), eans, where, r, 91)
    named = {f.feeder for f in ranking.notable_feeders}
    assert named == {"K1"}  # 70 events on 10 meters
    k2 = next(f for f in ranking.feeders if f.feeder == "K2")
    assert k2.events == 400 and not k2.notable  # many events, but 2 per meter
    assert ranking.feeders[0].feeder == "K2"  # ranked by events
    assert ranking.substations[0].notable
    assert ranking.connections[0].events == 40


def test_the_notable_rule_refuses_too_few_events_and_scales_to_the_period() -> None:
    r = rules()
    assert not notable_feeder(r.feeder_min_events - 1, 1, r, r.quarter_days)
    assert notable_feeder(r.feeder_min_events, 1, r, r.quarter_days)
    month = 30
    assert notable_feeder(round(r.feeder_min_events * month / r.quarter_days + 0.5), 1, r, month)
    assert not notable_feeder(0, 0, r, month)


def test_an_unknown_operator_is_refused_by_the_rule_file() -> None:
    assert rulebook.voltage_quality("Stedin").inverter.limit_v == 249.0
    with pytest.raises(RulesDataError, match="no inverter limit for operator"):
        rulebook.voltage_quality("Nergens")


def test_a_finding_holds_until_the_end_of_the_next_quarter() -> None:
    assert end_of_next_quarter(datetime(2025, 6, 2, tzinfo=UTC)).date() == date(2025, 9, 30)
    assert end_of_next_quarter(datetime(2025, 11, 2, tzinfo=UTC)).date() == date(2026, 3, 31)


def eager(r: VoltageQualityRules) -> VoltageQualityRules:
    """Thresholds low enough that a 10-day twin of 200 connections names a feeder."""
    return replace(r, feeder_min_events=1, feeder_min_events_per_meter=0.0)


@pytest.mark.parametrize("twin", [1], indirect=True, ids=["seed1"])
def test_uc2_then_uc3_through_the_gate(twin: Twin) -> None:
    with hub_store(twin.store_path) as store:
        gate = Gate(twin.register, store, load_catalogue(), clock=lambda: AT)
        uc2 = monitor_voltage_quality(gate, OPERATOR, period(), AT, eager(rules()))
        assert uc2.ranking.connections and all(c.events >= 0 for c in uc2.ranking.connections)
        assert uc2.flags and len(uc2.flags) == len(uc2.ranking.notable_feeders)
        # once a quarter: a second read is refused
        with pytest.raises(Uc02Error, match=r"UC2\.frequency"):
            monitor_voltage_quality(gate, OPERATOR, period(), AT, eager(rules()))
        feeder, flag = uc2.flags[0]
        window = Period(period().start, period().start + timedelta(days=10))
        uc3 = analyse_feeder(gate, OPERATOR, feeder, flag, window, AT, "UC2 ranking", rules())
        assert uc3.voltage_rows > 0 and set(uc3.connections) == set(
            feeder_eans(gate, feeder, window)
        )
        # a connection the finding does not name
        others = [c.ean for c in uc2.ranking.connections if f"{c.substation}/{c.feeder}" != feeder]
        with pytest.raises(Uc03Error, match=r"UC3\.flagged"):
            analyse_feeder(
                gate, OPERATOR, feeder, flag, window, AT, "UC2 ranking", rules(), eans=others[:1]
            )
        # no finding at all
        answer = gate.request(
            AccessRequest(
                OPERATOR,
                "UC3",
                uc3.connections,
                frozenset({"voltages_10min"}),
                window,
                AT,
                trigger="UC2 ranking",
            )
        )
        assert not isinstance(answer, Grant) and "UC3.flagged" in answer.rules


def test_the_twin_restarts_a_swapped_meters_event_counters_at_zero() -> None:
    """twin.swaps: from the swap on the new meter's counters start at 0, per phase; the
    hub sees a reset, which UC2 counts as the new meter's events."""
    from meetpunt.twin.swaps import reset_event_counters

    table = counters(
        [(3, d, p, 10 * p + d, p + d) for d in range(5) for p in (1, 2)]
    ).append_column("ean", pa.array(["x"] * 10))
    swapped = reset_event_counters(table, 3, T0 + timedelta(days=2))
    rows = sorted(
        zip(*(swapped.column(c).to_pylist() for c in ("phase", "at", "sags")), strict=True)
    )
    assert [s for p, _, s in rows if p == 1] == [10, 11, 0, 1, 2]
    assert [s for p, _, s in rows if p == 2] == [20, 21, 0, 1, 2]
    counted = channel_counts(swapped)
    assert counted[(3, 1)].sags == 1 + 0 + 1 + 1 and counted[(3, 1)].resets == 1


@pytest.mark.parametrize("twin", [1], indirect=True, ids=["seed1"])
def test_uc03_command_runs_at_the_given_clock_after_uc02_and_refuses_without_a_finding(
    twin: Twin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``meetpunt usecase uc02|uc03 --at``: the gate decides at that moment. On the
    twin's 2025 data UC2's finding (valid to the end of Q3 2025) has expired by the
    wall clock, so uc03 without --at is refused (UC3.flagged); with --at it reads. A
    finding that does not exist is refused at any clock. Runs on a copy of the twin's
    register and store (UC2 reads once a quarter)."""
    import json

    from typer.testing import CliRunner

    from meetpunt.cli import app

    with (
        sqlite3.connect(twin.folder / "register.sqlite") as source,
        sqlite3.connect(tmp_path / "register.sqlite") as copy,
    ):
        source.backup(copy)  # with what its write-ahead log holds
        # the shared twin may already hold this quarter's UC2 and UC3 reads of another
        # test (which runs first depends on the order the session's workers take tests):
        # the copy starts without their grants, so the frequency rules see only this test's
        copy.execute("DELETE FROM privacy_grant WHERE purpose IN ('UC2', 'UC3')")
    for name in twin.store_path.parent.glob(twin.store_path.name + "*"):  # with its WAL
        shutil.copy(name, tmp_path / name.name.replace(twin.store_path.name, "meterdata.duckdb"))
    quick = eager(rules())
    monkeypatch.setattr(rulebook, "voltage_quality", lambda operator=None: quick)
    where = ["--db", f"sqlite:///{tmp_path / 'register.sqlite'}"]
    where += ["--store", str(tmp_path / "meterdata.duckdb"), "--json"]
    days = ["--from", "2025-06-02", "--to", "2025-06-12"]
    at = ["--at", "2025-06-20T11:00:00+02:00"]

    def run(*args: str) -> tuple[int, dict[str, Any]]:
        done = CliRunner().invoke(app, ["usecase", *args, *where], env={"COLUMNS": "200"})
        return done.exit_code, json.loads(done.stdout)

    code, uc2 = run("uc02", *days, *at)
    assert code == 0 and uc2["readings"] > 0 and uc2["flags"], {
        k: v for k, v in uc2.items() if k != "connections"
    }
    feeder, flag = uc2["flags"][0]["feeder"], str(uc2["flags"][0]["finding"])
    uc3 = ["uc03", "--feeder", feeder, "--cites", flag, *days]
    code, found = run(*uc3, *at)
    assert code == 0 and found["voltage_rows"] > 0 and found["cites"] == int(flag)
    # the wall clock (2026 or later): the finding has expired
    code, refused = run(*uc3)
    assert code != 0 and refused["error"]["rule"] == "UC3.flagged"
    # no such finding, at the right clock
    code, refused = run("uc03", "--feeder", feeder, "--cites", "999999", *days, *at)
    assert code != 0 and refused["error"]["rule"] == "UC3.flagged"
    # a time without its UTC offset is refused before anything is read
    code, refused = run(*uc3, "--at", "2025-06-20T11:00:00")
    assert code != 0 and refused["error"]["rule"] == "CLI.at"
