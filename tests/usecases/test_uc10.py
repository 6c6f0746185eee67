"""UC10: a manual reading is approved when an honest reading fits the smart meter's
daily readings, flagged with the suspected misread otherwise; the naive baseline flags
right readings; every read goes through the gate, which refuses what UC10 may not ask."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.meterdata.store import MeterStore
from meetpunt.privacy import audit
from meetpunt.privacy.gate import Grant
from meetpunt.privacy.model import AccessRequest, Decision, Period
from meetpunt.register import Register
from meetpunt.usecases.uc10_manual_readings import (
    DailyReading,
    ManualReading,
    Uc10Error,
    Uc10Rules,
    approve_readings,
    check_reading,
    digit_slips,
    naive_flag,
    readings_from_rows,
)
from tests.usecases import uc10_uc15_world as w


def _dailies(start: tuple[float, float, float, float], per_day: tuple[float, ...], days: int):  # type: ignore[no-untyped-def]
    first = local_midnight_utc(w.FIRST)
    out = []
    for d in range(days):
        regs = tuple(s + d * p for s, p in zip(start, per_day, strict=True))
        out.append(DailyReading(first + timedelta(days=d), (regs[0], regs[1], regs[2], regs[3])))
    return out


START = (4021.4, 6033.8, 812.2, 1960.7)
PER_DAY = (2.0, 6.0, 0.5, 3.0)
DAILIES = _dailies(START, PER_DAY, 6)
VISIT = local_midnight_utc(w.FIRST) + timedelta(days=3, hours=14)
TRUE = (4028.0, 6054.0, 813.0, 1970.0)  # floors of the registers at the visit


def _reading(values: tuple[float, float, float, float], at: datetime = VISIT) -> ManualReading:
    return ManualReading("R1", w.CONTRACTLESS, at, values)


def test_a_right_reading_at_an_odd_moment_is_approved_between_two_midnights() -> None:
    verdict = check_reading(_reading(TRUE), DAILIES, 17.25)
    assert verdict.approved and verdict.basis == "bracket"


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ((6054.0, 4028.0, 813.0, 1970.0), "tariff_swap"),
        ((813.0, 1970.0, 4028.0, 6054.0), "direction_swap"),
        ((4082.0, 6054.0, 813.0, 1970.0), "digit_slip"),  # 28 -> 82 transposed
        ((4028.0, 6054.0, 873.0, 1970.0), "digit_slip"),  # 813 -> 873: a 1 read as 7
        ((4028.0, 6054.0, 813.0, 7970.0), "digit_slip"),  # 1970 -> 7970
        ((15321.0, 9876.0, 0.0, 0.0), "other_meter"),  # the neighbour's meter
    ],
)
def test_each_misread_kind_is_flagged_and_named(
    values: tuple[float, float, float, float], kind: str
) -> None:
    verdict = check_reading(_reading(values), DAILIES, 17.25)
    assert not verdict.approved
    assert verdict.suspected == kind
    if kind != "other_meter":
        assert verdict.proposal == TRUE


def test_days_after_the_last_daily_reading_the_band_comes_from_the_own_history() -> None:
    late = local_midnight_utc(w.FIRST) + timedelta(days=8, hours=9)  # 3 days after the last
    used = 3.4 * sum(PER_DAY[:2])  # consumed since, more than the days' average
    right = (START[0] + 5 * PER_DAY[0] + 0.3 * used, START[1] + 5 * PER_DAY[1] + 0.7 * used,
             START[2] + 5 * PER_DAY[2], START[3] + 5 * PER_DAY[3])  # fmt: skip
    right = tuple(float(math.floor(v)) for v in right)  # type: ignore[assignment]
    verdict = check_reading(_reading(right, late), DAILIES, 17.25)  # type: ignore[arg-type]
    assert verdict.approved and verdict.basis == "band"
    # the band is the connection's own: 2 x its largest day per started day since
    # the last reading, so a week's consumption on top is refused
    too_much = (right[0] + 7 * sum(PER_DAY[:2]), right[1], right[2], right[3])
    assert not check_reading(_reading(too_much, late), DAILIES, 17.25).approved  # type: ignore[arg-type]
    # a heavier user gets a wider band for the same reading: not a fixed %
    heavy = _dailies(START, tuple(p * 5 for p in PER_DAY), 6)[:6]
    heavy_late = check_reading(_reading(too_much, late), heavy, 17.25)  # type: ignore[arg-type]
    assert heavy_late.basis == "band"


def test_the_band_never_exceeds_the_connection_capacity() -> None:
    soon = local_midnight_utc(w.FIRST) + timedelta(days=5, hours=1)  # 1 h after the last
    huge = _dailies(START, (200.0, 400.0, 0.0, 0.0), 6)
    over = (START[0] + 5 * 200 + 20, START[1] + 5 * 400, START[2], START[3])  # 20 kWh in 1 h
    assert not check_reading(_reading(over, soon), huge, 17.25).approved  # type: ignore[arg-type]


def test_no_daily_reading_before_the_visit_is_not_approved() -> None:
    early = local_midnight_utc(w.FIRST) - timedelta(hours=3)
    verdict = check_reading(_reading(TRUE, early), DAILIES, 17.25)
    assert not verdict.approved and verdict.basis == "none" and verdict.suspected is None


def test_the_naive_check_flags_a_right_reading_ours_approves() -> None:
    # a visit at 14:00 after a quiet morning: the day's average extrapolated misses
    reading = _reading(TRUE)
    assert naive_flag(reading, DAILIES, Uc10Rules()) is True
    assert check_reading(reading, DAILIES, 17.25).approved


def test_digit_slips_are_transpositions_and_one_seven_misreads() -> None:
    assert digit_slips(1207.0) == sorted({2107.0, 1027.0, 1270.0, 7207.0, 1201.0})
    assert digit_slips(55.0) == []
    assert digit_slips(12.5) == []


@settings(max_examples=60, deadline=None)
@given(
    hours=st.floats(min_value=0.0, max_value=23.9),
    start=st.tuples(*[st.floats(min_value=0, max_value=90_000) for _ in range(4)]),
    per_day=st.tuples(*[st.floats(min_value=0, max_value=40) for _ in range(4)]),
    share=st.floats(min_value=0.0, max_value=1.0),
)
def test_property_every_honest_reading_between_two_midnights_is_approved(
    hours: float,
    start: tuple[float, float, float, float],
    per_day: tuple[float, float, float, float],
    share: float,
) -> None:
    dailies = _dailies(start, per_day, 4)
    at = dailies[1].at + timedelta(hours=hours)
    true = tuple(math.floor(s + p * (1 + share)) for s, p in zip(start, per_day, strict=True))
    verdict = check_reading(_reading(true, at), dailies, 17.25)  # type: ignore[arg-type]
    assert verdict.approved


@settings(max_examples=60, deadline=None)
@given(
    t1=st.integers(min_value=100, max_value=50_000),
    gap=st.integers(min_value=30, max_value=50_000),
)
def test_property_a_tariff_swap_wider_than_a_day_is_caught(t1: int, gap: int) -> None:
    start = (float(t1), float(t1 + gap), 0.0, 0.0)
    dailies = _dailies(start, (3.0, 9.0, 0.0, 0.0), 4)
    at = dailies[1].at + timedelta(hours=10)
    true = (float(t1 + 4), float(t1 + gap + 13), 0.0, 0.0)
    verdict = check_reading(_reading((true[1], true[0], 0.0, 0.0), at), dailies, 17.25)
    assert not verdict.approved and verdict.suspected == "tariff_swap"


def test_a_bad_operator_row_names_the_row_and_what_to_do() -> None:
    rows = [
        {"reading_id": "A", "ean": w.CONTRACTLESS, "taken_at": "2026-03-22T10:00+01:00",
         "import_t1_kwh": "10", "import_t2_kwh": "20", "export_t1_kwh": "", "export_t2_kwh": ""},
        {"reading_id": "B", "ean": w.CONTRACTLESS, "taken_at": "2026-03-22T10:00",
         "import_t1_kwh": "10", "import_t2_kwh": "20", "export_t1_kwh": "", "export_t2_kwh": ""},
    ]  # fmt: skip
    with pytest.raises(Uc10Error, match="row 3: taken_at needs a UTC offset"):
        readings_from_rows(rows, "manual_readings.csv")
    assert readings_from_rows(rows[:1], "x")[0].values == (10.0, 20.0, None, None)


# --- through the gate ----------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Register, MeterStore]]:
    register = w.build_register(f"sqlite:///{tmp_path / 'register.sqlite'}")
    gap = {w.NEW_CONTRACT: {w.FIRST + timedelta(days=d) for d in range(8, 13)}}
    store = w.build_store(tmp_path / "meterdata.duckdb", register, gap)
    yield register, store
    store.close()
    register.dispose()


def _true_floor(ean: str, at: datetime) -> tuple[float, float, float, float]:
    regs = w.registers_at(ean, at)
    return (float(math.floor(regs[0])), float(math.floor(regs[1])), 0.0, 0.0)


def test_readings_are_checked_through_the_gate_one_request_each(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    visit = local_midnight_utc(w.FIRST + timedelta(days=4)) + timedelta(hours=16, minutes=35)
    offline = local_midnight_utc(w.FIRST + timedelta(days=11)) + timedelta(hours=3)
    good = ManualReading("G", w.SUPPLIED, visit, _true_floor(w.SUPPLIED, visit))
    t1, t2, e1, e2 = _true_floor(w.SUPPLIED, visit)
    swapped = ManualReading("S", w.SUPPLIED, visit, (t2, t1, e1, e2))
    late = ManualReading("L", w.NEW_CONTRACT, offline, _true_floor(w.NEW_CONTRACT, offline))
    result = approve_readings(w.gate(register, store), w.GRID, [good, swapped, late], w.NOW)
    by_id = {v.reading_id: v for v in result.verdicts}
    assert by_id["G"].approved and by_id["G"].basis == "bracket" and by_id["G"].reads == 1
    assert by_id["S"].suspected == "tariff_swap"
    # the meter was offline on days 8-12: the 2-day windows step back (11-12, 9-10, 7-8,
    # 5-6) to its last reading (day 7) and one day of its own history before it
    assert by_id["L"].approved and by_id["L"].basis == "band" and by_id["L"].reads == 4
    with register.session() as s:
        records = audit.records(s.db)
    decisions = [r for r in records if r.entry.event == "decision"]
    assert len(decisions) == 6
    assert {r.entry.purpose for r in decisions} == {"UC10"}
    assert all(r.entry.outcome == "granted" for r in decisions)


def _request(**changes: object) -> AccessRequest:
    day = local_midnight_utc(w.FIRST + timedelta(days=3))
    base = AccessRequest(
        w.GRID,
        "UC10",
        (w.SUPPLIED,),
        frozenset({"daily_readings"}),
        Period(day, day + timedelta(days=2)),
        w.NOW,
        trigger="manual reading R1",
    )
    fields = {**base.__dict__, **changes}
    return AccessRequest(**fields)  # type: ignore[arg-type]


THREE_DAYS = Period(local_midnight_utc(w.FIRST), local_midnight_utc(w.FIRST + timedelta(days=3)))


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"period": THREE_DAYS}, "UC10.window"),
        ({"trigger": None}, "UC10.trigger"),
        ({"party": w.SUPPLIER}, "UC10.party"),
        ({"kinds": frozenset({"quarter_hours"})}, "UC10.kinds"),
    ],
)  # fmt: skip
def test_the_gate_refuses_what_uc10_may_not_read(world, changes, rule) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    gate = w.gate(register, store)
    assert isinstance(gate.request(_request()), Grant)
    refused = gate.request(_request(**changes))
    assert isinstance(refused, Decision) and rule in refused.rules


def test_a_refused_read_stops_uc10_with_the_gate_rules(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    visit = local_midnight_utc(w.FIRST + timedelta(days=4)) + timedelta(hours=10)
    reading = ManualReading("X", w.SUPPLIED, visit, _true_floor(w.SUPPLIED, visit))
    with pytest.raises(Uc10Error) as refused:
        approve_readings(w.gate(register, store), w.SUPPLIER, [reading], w.NOW)
    assert "UC10.party" in refused.value.rules


def test_a_reading_of_an_unknown_connection_is_refused_alone(world) -> None:  # type: ignore[no-untyped-def]
    register, store = world
    visit = local_midnight_utc(w.FIRST + timedelta(days=4)) + timedelta(hours=10)
    good = ManualReading("G", w.SUPPLIED, visit, _true_floor(w.SUPPLIED, visit))
    stranger = ManualReading("U", "871687400000009999", visit, (1.0, 2.0, 0.0, 0.0))
    result = approve_readings(w.gate(register, store), w.GRID, [stranger, good], w.NOW)
    first, second = result.verdicts
    assert not first.approved and first.basis == "refused"
    assert first.rules == ("PRV-1.unknown_connection",) and first.reads == 0
    assert second.approved


# -- the off-peak calendar holds an idle register to its midnight reading (MKT-2) --
# On Monday 2026-03-23 T2 (normal) counts 07:00-23:00 only (the packaged calendar).


def _calendar():  # type: ignore[no-untyped-def]
    from meetpunt.rulebook import offpeak_calendar

    return offpeak_calendar()


def test_before_seven_on_a_working_day_t2_still_shows_the_midnight_reading() -> None:
    monday = local_midnight_utc(w.FIRST + timedelta(days=3))
    dailies = [
        DailyReading(monday, (4021.4, 6031.2, 0.0, 0.0)),
        DailyReading(monday + timedelta(days=1), (4030.4, 6047.2, 0.0, 0.0)),  # T2 +16
    ]
    early = monday + timedelta(hours=5)  # 05:00 local: only T1 has counted since midnight
    # 6037 lies in the day's T2 bracket (6030.2 .. 6048.2) but T2 has not counted yet:
    # 6031 written as 6037 (1 read as 7) is caught now, with the fitting value proposed
    verdict = check_reading(_reading((4024.0, 6037.0, 0.0, 0.0), early), dailies, 17.25,
                            calendar=_calendar())  # fmt: skip
    assert not verdict.approved and verdict.suspected == "digit_slip"
    assert verdict.proposal == (4024.0, 6031.0, 0.0, 0.0)
    # without the calendar the day's bracket lets it through
    assert check_reading(_reading((4024.0, 6037.0, 0.0, 0.0), early), dailies, 17.25).approved
    # the right reading, and one near the switch to T2 (within the clock margin), pass
    cal = _calendar()
    assert check_reading(_reading((4024.0, 6031.0, 0.0, 0.0), early), dailies, 17.25,
                         calendar=cal).approved  # fmt: skip
    near = monday + timedelta(hours=7, minutes=10)
    assert check_reading(_reading((4025.0, 6032.0, 0.0, 0.0), near), dailies, 17.25,
                         calendar=cal).approved  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    day=st.integers(min_value=0, max_value=13),
    minutes=st.integers(min_value=0, max_value=24 * 60 - 1),
    start=st.tuples(*[st.floats(min_value=0, max_value=90_000) for _ in range(4)]),
    rates=st.tuples(*[st.floats(min_value=0, max_value=3) for _ in range(4)]),
)
def test_property_every_honest_reading_of_a_calendar_true_meter_is_approved(
    day: int,
    minutes: int,
    start: tuple[float, float, float, float],
    rates: tuple[float, float, float, float],
) -> None:
    """A meter whose registers count by the calendar (kWh per quarter-hour while their
    tariff runs): every honest reading at any minute is approved with the calendar."""
    from meetpunt.domain.calendar import Tariff

    cal = _calendar()
    midnight = local_midnight_utc(w.FIRST + timedelta(days=day))
    end = local_midnight_utc(w.FIRST + timedelta(days=day + 1))
    at = midnight + timedelta(minutes=minutes)

    def registers(until: datetime) -> tuple[float, float, float, float]:
        regs = list(start)
        q = midnight
        while q < until:
            tariff = cal.tariff_at(q)
            for i, counts in enumerate((Tariff.T1, Tariff.T2, Tariff.T1, Tariff.T2)):
                if tariff is counts:
                    regs[i] += rates[i] * min(1.0, (until - q) / timedelta(minutes=15))
            q += timedelta(minutes=15)
        return (regs[0], regs[1], regs[2], regs[3])

    dailies = [DailyReading(midnight, registers(midnight)), DailyReading(end, registers(end))]
    true = tuple(float(math.floor(v)) for v in registers(at))
    verdict = check_reading(_reading(true, at), dailies, 17.25, calendar=cal)  # type: ignore[arg-type]
    assert verdict.approved, (at, true, verdict.low, verdict.high)
