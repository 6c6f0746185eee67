"""UC15: contractless and out-of-service connections are checked every 5 days through
the gate (consumption, or only a ping with the admin switch off); a watch stops when a
contract starts, and the schedule lives in the register: it survives a restart and
reads nothing twice. The gate refuses every UC15 read outside the catalogue's limits."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.app.schedule import run_schedule, schedule_list
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.connection import AdminSwitch, MeterType, PhysicalStatus
from meetpunt.meterdata.store import MeterStore
from meetpunt.privacy import audit
from meetpunt.privacy.gate import Grant
from meetpunt.privacy.model import REACHABILITY, Decision
from meetpunt.register import Register, schedule
from meetpunt.usecases import uc15_watch as uc15
from tests.unit.domain.factories import version
from tests.usecases import uc10_uc15_world as w

RULES = uc15.Uc15Rules()


def test_groups_follow_the_use_case_list() -> None:
    out = PhysicalStatus.OUT_OF_SERVICE
    assert uc15.group_of(version(), contracted=False) == uc15.CONTRACTLESS
    assert uc15.group_of(version(), contracted=True) is None
    assert uc15.group_of(version(status=out), contracted=True) == uc15.OUT_OF_SERVICE_ON
    off = version(status=out, admin_switch=AdminSwitch.OFF)
    assert uc15.group_of(off, contracted=False) == uc15.OUT_OF_SERVICE_OFF
    assert uc15.group_of(version(meter_type=MeterType.FERRARIS), contracted=False) is None
    removed = version(status=PhysicalStatus.DEMOLISHED)
    assert uc15.group_of(removed, contracted=False) is None
    assert uc15.stop_reason(removed, contracted=False) == "removed"
    assert uc15.stop_reason(version(), contracted=True) == "contract_started"
    assert uc15.stop_reason(None, contracted=False) == "removed"


def test_the_next_check_keeps_five_full_days_across_the_spring_clock_change() -> None:
    # 26 March 2026 + 5 local days = 31 March, only 119 h later: a day more
    assert uc15.next_check_day(date(2026, 3, 26), RULES) == date(2026, 4, 1)
    assert uc15.next_check_day(date(2026, 4, 1), RULES) == date(2026, 4, 6)
    # autumn: 5 local days are 121 h, enough
    assert uc15.next_check_day(date(2026, 10, 22), RULES) == date(2026, 10, 27)


@settings(max_examples=80, deadline=None)
@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31)))
def test_property_checks_are_never_closer_than_the_gate_allows(day: date) -> None:
    nxt = uc15.next_check_day(day, RULES)
    gap = local_midnight_utc(nxt) - local_midnight_utc(day)
    assert timedelta(days=5) <= gap < timedelta(days=7)


def test_consumption_needs_a_previous_reading_and_a_real_increase() -> None:
    assert uc15.consumption(None, 5_000, RULES).outcome == "baseline"
    assert uc15.consumption(5_000, 5_400, RULES).outcome == "no_consumption"
    found = uc15.consumption(5_000, 9_000, RULES)
    assert found.outcome == "consuming" and found.consumed_wh == 4_000
    assert uc15.consumption(5_000, None, RULES).outcome == "no_reading"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Register, MeterStore]]:
    register = w.build_register(f"sqlite:///{tmp_path / 'register.sqlite'}")
    store = w.build_store(tmp_path / "meterdata.duckdb", register)
    yield register, store
    store.close()
    register.dispose()


def _uc15_reads(register: Register) -> list[audit.AuditRecord]:
    with register.session() as s:
        return [
            r
            for r in audit.records(s.db)
            if r.entry.purpose == "UC15" and r.entry.event == "decision"
        ]


def test_the_schedule_checks_every_five_days_and_stops_when_a_contract_starts(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    until = local_midnight_utc(w.FIRST + timedelta(days=20)) + timedelta(hours=7)
    report = run_schedule(w.gate(register, store), w.GRID, until, since=w.FIRST, rules=RULES)
    with register.session() as s:
        runs = schedule.runs(s.db, "UC15")
        tasks = {t.ean: t for t in schedule.tasks(s.db, "UC15")}
    assert set(tasks) == {w.CONTRACTLESS, w.OOS_ON, w.OOS_OFF, w.NEW_CONTRACT, w.IDLE}
    by = {ean: [r for r in runs if r.ean == ean] for ean in tasks}
    # contractless, consuming: a baseline, then consumption every 5 days (one more day
    # across the spring clock change: 20 March, 25 March, 31 March, 5 April)
    days = [r.due.date() for r in by[w.CONTRACTLESS]]
    assert [r.outcome for r in by[w.CONTRACTLESS]] == [
        "baseline",
        "consuming",
        "consuming",
        "consuming",
    ]
    assert all(b - a >= timedelta(days=5) for a, b in itertools.pairwise(days))
    assert by[w.CONTRACTLESS][1].consumed_wh == pytest.approx(5 * 7_000, abs=2)
    assert {r.outcome for r in by[w.IDLE][1:]} == {"no_consumption"}
    assert [r.outcome for r in by[w.OOS_ON]][1:] == ["consuming"] * 3
    assert {r.outcome for r in by[w.OOS_OFF]} == {"reachable"}
    assert all(r.import_wh is None for r in by[w.OOS_OFF])  # a ping reads no value
    # the new contract starts on day 8: the check due on day 10 stops the watch unread
    assert [r.outcome for r in by[w.NEW_CONTRACT]] == ["baseline", "consuming", "stopped"]
    assert tasks[w.NEW_CONTRACT].stop_reason == "contract_started"
    assert report.stopped == [(w.NEW_CONTRACT, "contract_started")]
    contract_start = local_midnight_utc(w.CONTRACT_DAY)
    reads_after_stop = [
        r
        for r in _uc15_reads(register)
        if r.entry.connections == (w.NEW_CONTRACT,) and r.entry.period_start >= contract_start
    ]
    assert reads_after_stop == []
    assert all(r.entry.outcome == "granted" for r in _uc15_reads(register))


def test_the_schedule_survives_a_restart_and_reads_nothing_twice(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    half = local_midnight_utc(w.FIRST + timedelta(days=7)) + timedelta(hours=7)
    end = local_midnight_utc(w.FIRST + timedelta(days=20)) + timedelta(hours=7)
    run_schedule(w.gate(register, store, half), w.GRID, half, since=w.FIRST, rules=RULES)
    first = len(_uc15_reads(register))
    again = run_schedule(w.gate(register, store, half), w.GRID, half, since=w.FIRST, rules=RULES)
    assert again.checks == 0 and len(_uc15_reads(register)) == first
    # a new gate (a restarted process) goes on where the register says
    later = run_schedule(w.gate(register, store, end), w.GRID, end, rules=RULES)
    assert later.checks > 0 and not later.started
    assert run_schedule(w.gate(register, store, end), w.GRID, end, rules=RULES).checks == 0
    listed = {row["ean"]: row for row in schedule_list(w.gate(register, store))}
    assert listed[w.NEW_CONTRACT]["stop_reason"] == "contract_started"
    assert listed[w.CONTRACTLESS]["next_due"] is not None


# --- the gate's limits for UC15 -----------------------------------------------------------

DAY = w.FIRST + timedelta(days=2)


def _req(ean: str, group: str = uc15.CONTRACTLESS, day: date = DAY):  # type: ignore[no-untyped-def]
    return uc15.request_for(w.GRID, ean, group, day, local_midnight_utc(day) + timedelta(hours=6))


def test_the_gate_refuses_a_connection_with_a_contract(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    refused = w.gate(register, store).request(_req(w.SUPPLIED))
    assert isinstance(refused, Decision) and refused.rules == ("UC15.population",)
    # and from the day a contract starts
    started = w.gate(register, store).request(_req(w.NEW_CONTRACT, day=w.CONTRACT_DAY))
    assert isinstance(started, Decision) and "UC15.population" in started.rules


def test_the_gate_lets_a_switched_off_meter_only_be_pinged(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    gate = w.gate(register, store)
    read = gate.request(_req(w.OOS_OFF, uc15.CONTRACTLESS))  # asks daily readings
    assert isinstance(read, Decision) and read.rules == ("UC15.kinds",)
    ping = gate.request(_req(w.OOS_OFF, uc15.OUT_OF_SERVICE_OFF))
    assert isinstance(ping, Grant) and ping.request.kinds == frozenset({REACHABILITY})
    assert ping.reachable() == {w.OOS_OFF: True}


def test_the_gate_refuses_a_second_read_within_five_days_and_a_longer_window(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    gate = w.gate(register, store)
    assert isinstance(gate.request(_req(w.CONTRACTLESS)), Grant)
    soon = gate.request(_req(w.CONTRACTLESS, day=DAY + timedelta(days=4)))
    assert isinstance(soon, Decision) and soon.rules == ("UC15.frequency",)
    assert isinstance(gate.request(_req(w.CONTRACTLESS, day=DAY + timedelta(days=5))), Grant)
    wide = _req(w.OOS_ON)
    wide = replace(wide, period=replace(wide.period, end=wide.period.end + timedelta(days=1)))
    refused = gate.request(wide)
    assert isinstance(refused, Decision) and "UC15.window" in refused.rules
