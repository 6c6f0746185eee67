"""The one calendar module: off-peak holidays, tariffs per region, local days (MKT-2, MTR-3)."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.domain.calendar import (
    LOCAL_TZ,
    QUARTER_HOUR,
    OffPeakCalendar,
    Tariff,
    easter_sunday,
    local_date_of,
    local_day_bounds_utc,
    quarter_hour_starts_utc,
    quarter_hours_in_local_day,
    to_local,
    to_utc,
)
from meetpunt.errors import DomainError, RulesDataError
from meetpunt.rulebook import RULES_DIR_ENV, load_rules, offpeak_calendar

CAL = offpeak_calendar()
REGIONS = sorted(CAL.regions)

days = st.dates(min_value=date(1996, 1, 1), max_value=date(2100, 12, 31))
instants = st.datetimes(
    min_value=datetime(1996, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)
)


def local(y: int, m: int, d: int, hh: int = 12) -> datetime:
    """A local Amsterdam wall-clock hour as a UTC instant."""
    return datetime(y, m, d, hh, tzinfo=LOCAL_TZ).astimezone(UTC)


def last_sunday(year: int, month: int) -> date:
    """Last Sunday of ``month`` (EU summer time rule, independent of the code under test)."""
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=day.isoweekday() % 7)


def body() -> dict[str, Any]:
    return copy.deepcopy(load_rules("offpeak_calendar").body)


# --- Easter and holidays -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (1961, date(1961, 4, 2)),
        (2000, date(2000, 4, 23)),
        (2008, date(2008, 3, 23)),
        (2011, date(2011, 4, 24)),
        (2019, date(2019, 4, 21)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2038, date(2038, 4, 25)),
        (2285, date(2285, 3, 22)),
    ],
)
def test_easter_sunday_known_dates(year: int, expected: date) -> None:
    assert easter_sunday(year) == expected


@given(st.integers(min_value=1583, max_value=9999))
def test_easter_is_a_sunday_between_22_march_and_25_april(year: int) -> None:
    easter = easter_sunday(year)
    assert easter.isoweekday() == 7
    assert date(year, 3, 22) <= easter <= date(year, 4, 25)


def test_offpeak_holidays_2025_are_the_seven_of_the_enexis_list() -> None:
    assert CAL.offpeak_holidays(2025) == {
        date(2025, 1, 1): "Nieuwjaarsdag",
        date(2025, 4, 21): "Tweede Paasdag",
        date(2025, 4, 26): "Koningsdag",
        date(2025, 5, 29): "Hemelvaartsdag",
        date(2025, 6, 9): "Tweede Pinksterdag",
        date(2025, 12, 25): "Eerste Kerstdag",
        date(2025, 12, 26): "Tweede Kerstdag",
    }


@pytest.mark.parametrize(
    ("year", "kings_day"),
    [
        (2014, date(2014, 4, 26)),  # 27 April 2014 was a Sunday
        (2025, date(2025, 4, 26)),  # 27 April 2025 was a Sunday
        (2026, date(2026, 4, 27)),
        (2031, date(2031, 4, 26)),
    ],
)
def test_kings_day_moves_to_saturday_when_27_april_is_a_sunday(year: int, kings_day: date) -> None:
    assert CAL.offpeak_holidays(year)[kings_day] == "Koningsdag"


@given(st.integers(min_value=2014, max_value=2200))
def test_holidays_every_year(year: int) -> None:
    hol = CAL.offpeak_holidays(year)
    assert len(hol) == 7
    by_name = {name: day for day, name in hol.items()}
    assert by_name["Tweede Paasdag"].isoweekday() == 1
    assert by_name["Hemelvaartsdag"].isoweekday() == 4
    assert by_name["Tweede Pinksterdag"].isoweekday() == 1
    assert by_name["Koningsdag"].isoweekday() != 7
    assert by_name["Koningsdag"] in (date(year, 4, 26), date(year, 4, 27))
    good_friday = easter_sunday(year) - timedelta(days=2)
    assert good_friday not in hol
    # Liberation Day is not a holiday of its own; Ascension Day can fall on 5 May (2016).
    assert hol.get(date(year, 5, 5)) in (None, "Hemelvaartsdag")


def test_holidays_are_a_copy_the_caller_may_change() -> None:
    CAL.offpeak_holidays(2030).clear()
    assert len(CAL.offpeak_holidays(2030)) == 7


# --- tariffs -----------------------------------------------------------------------------


def test_tariff_registers_and_p1_indicators() -> None:
    assert Tariff.T1.is_offpeak
    assert not Tariff.T2.is_offpeak
    assert (Tariff.T1.import_register, Tariff.T1.export_register) == ("1.8.1", "2.8.1")
    assert (Tariff.T2.import_register, Tariff.T2.export_register) == ("1.8.2", "2.8.2")
    assert (Tariff.T1.p1_indicator, Tariff.T2.p1_indicator) == ("0001", "0002")
    assert Tariff.from_p1_indicator("0001") is Tariff.T1
    assert Tariff.from_p1_indicator("0002") is Tariff.T2
    assert (Tariff.T1.dutch_name, Tariff.T2.dutch_name) == ("dal", "normaal")


def test_unknown_p1_indicator_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        Tariff.from_p1_indicator("0003")
    assert err.value.rules == ("MKT-2.tariff_indicator",)


@pytest.mark.parametrize("region", REGIONS)
def test_good_friday_and_liberation_day_2025_are_normal_by_day(region: str) -> None:
    assert CAL.tariff_at(local(2025, 4, 18, 12), region) is Tariff.T2  # Goede Vrijdag
    assert CAL.tariff_at(local(2025, 5, 5, 12), region) is Tariff.T2  # Bevrijdingsdag
    assert CAL.tariff_at(local(2026, 4, 3, 12), region) is Tariff.T2  # Goede Vrijdag 2026
    assert CAL.tariff_at(local(2020, 5, 5, 12), region) is Tariff.T2  # lustrum year, Tuesday


@pytest.mark.parametrize("region", REGIONS)
def test_holidays_2025_are_offpeak_at_noon(region: str) -> None:
    for day in CAL.offpeak_holidays(2025):
        instant = local(day.year, day.month, day.day, 12)
        assert CAL.tariff_at(instant, region) is Tariff.T1


@pytest.mark.parametrize(
    ("region", "clock", "expected"),
    [
        ("standard", time(6, 59, 59), Tariff.T1),
        ("standard", time(7, 0), Tariff.T2),
        ("standard", time(20, 59), Tariff.T2),
        ("standard", time(21, 0), Tariff.T2),
        ("standard", time(22, 59, 59), Tariff.T2),
        ("standard", time(23, 0), Tariff.T1),
        ("enexis_noord", time(22, 0), Tariff.T2),
        ("enexis_zuid", time(7, 0), Tariff.T2),
        ("enexis_zuid", time(20, 59, 59), Tariff.T2),
        ("enexis_zuid", time(21, 0), Tariff.T1),
        ("enexis_zuid", time(22, 0), Tariff.T1),
        ("leiden", time(21, 0), Tariff.T1),
        ("leiden", time(3, 0), Tariff.T1),
    ],
)
def test_working_day_hours_per_region(region: str, clock: time, expected: Tariff) -> None:
    # Wednesday 15 January 2025 (winter time) and Wednesday 16 July 2025 (summer time)
    for day in (date(2025, 1, 15), date(2025, 7, 16)):
        instant = datetime.combine(day, clock, tzinfo=LOCAL_TZ).astimezone(UTC)
        assert CAL.tariff_at(instant, region) is expected


def test_hours_are_local_wall_clock_not_utc() -> None:
    # 06:30 UTC on a summer working day is 08:30 in Amsterdam: normal.
    assert CAL.tariff_at(datetime(2025, 7, 16, 6, 30, tzinfo=UTC)) is Tariff.T2
    # 06:30 UTC in winter is 07:30 local: normal; 05:30 UTC in winter is 06:30: off-peak.
    assert CAL.tariff_at(datetime(2025, 1, 15, 6, 30, tzinfo=UTC)) is Tariff.T2
    assert CAL.tariff_at(datetime(2025, 1, 15, 5, 30, tzinfo=UTC)) is Tariff.T1
    # 20:30 UTC in summer is 22:30 local: off-peak in Enexis Zuid.
    assert CAL.tariff_at(datetime(2025, 7, 16, 20, 30, tzinfo=UTC), "enexis_zuid") is Tariff.T1


def test_default_region_is_standard() -> None:
    assert CAL.default_region == "standard"
    assert CAL.region().normal_until == time(23, 0)
    assert CAL.region("enexis_zuid").normal_until == time(21, 0)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        CAL.tariff_at(datetime(2025, 1, 15, 12, 0))
    assert err.value.rules == ("MTR-3.naive",)
    for func in (to_local, to_utc, local_date_of):
        with pytest.raises(DomainError):
            func(datetime(2025, 1, 15, 12, 0))


def test_unknown_region_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        CAL.tariff_at(local(2025, 1, 15), "atlantis")
    assert err.value.rules == ("MKT-2.region",)


@given(instants, st.sampled_from(REGIONS))
def test_weekend_and_holiday_instants_are_offpeak(instant: datetime, region: str) -> None:
    day = to_local(instant).date()
    if day.isoweekday() >= 6 or day in CAL.offpeak_holidays(day.year):
        assert CAL.tariff_at(instant, region) is Tariff.T1


@given(instants, st.sampled_from(REGIONS))
def test_tariff_is_normal_exactly_in_the_working_day_window(instant: datetime, region: str) -> None:
    wall = to_local(instant)
    reg = CAL.region(region)
    working = wall.isoweekday() <= 5 and wall.date() not in CAL.offpeak_holidays(wall.year)
    normal = working and reg.normal_from <= wall.time() < reg.normal_until
    assert CAL.tariff_at(instant, region) is (Tariff.T2 if normal else Tariff.T1)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_the_same_instant_in_any_zone_has_the_same_tariff(naive: datetime) -> None:
    instant = naive.replace(tzinfo=UTC)
    assert CAL.tariff_at(instant) is CAL.tariff_at(instant.astimezone(LOCAL_TZ))


# --- local days and quarter-hours --------------------------------------------------------


def test_dst_days_2025() -> None:
    assert quarter_hours_in_local_day(date(2025, 3, 30)) == 92
    assert quarter_hours_in_local_day(date(2025, 10, 26)) == 100
    assert quarter_hours_in_local_day(date(2025, 3, 29)) == 96
    assert quarter_hours_in_local_day(date(2025, 6, 1)) == 96
    start, end = local_day_bounds_utc(date(2025, 3, 30))
    assert start == datetime(2025, 3, 29, 23, 0, tzinfo=UTC)
    assert end == datetime(2025, 3, 30, 22, 0, tzinfo=UTC)


@given(days)
def test_quarter_hours_are_92_100_or_96_by_the_eu_rule(day: date) -> None:
    if day == last_sunday(day.year, 3):
        expected = 92
    elif day == last_sunday(day.year, 10):
        expected = 100
    else:
        expected = 96
    assert quarter_hours_in_local_day(day) == expected


@given(st.integers(min_value=1996, max_value=2100))
def test_quarter_hours_over_a_year_add_up(year: int) -> None:
    n_days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    total = sum(
        quarter_hours_in_local_day(date(year, 1, 1) + timedelta(days=i)) for i in range(n_days)
    )
    assert total == 24 * 4 * n_days


@given(days)
def test_quarter_hour_starts_tile_the_local_day(day: date) -> None:
    start, end = local_day_bounds_utc(day)
    starts = quarter_hour_starts_utc(day)
    assert len(starts) == quarter_hours_in_local_day(day)
    assert starts[0] == start
    assert starts[-1] + QUARTER_HOUR == end
    assert all(b - a == QUARTER_HOUR for a, b in itertools.pairwise(starts))
    assert all(s.tzinfo is UTC for s in starts)
    assert {local_date_of(s) for s in starts} == {day}


@given(days)
def test_day_bounds_are_local_midnights(day: date) -> None:
    start, end = local_day_bounds_utc(day)
    assert to_local(start).time() == time(0)
    assert to_local(end).time() == time(0)
    assert local_date_of(start) == day
    assert local_date_of(end - timedelta(microseconds=1)) == day
    assert local_date_of(end) == day + timedelta(days=1)


def test_to_local_and_local_date_of() -> None:
    instant = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    assert to_local(instant) == instant
    assert to_local(instant).utcoffset() == timedelta(hours=1)
    assert local_date_of(instant) == date(2026, 1, 1)
    assert to_utc(to_local(instant)).tzinfo is UTC


# --- the data drives the rules -----------------------------------------------------------


def test_loaded_calendar_carries_the_file_version() -> None:
    assert CAL.version == load_rules("offpeak_calendar").meta.version


def test_operator_override_file_changes_the_hours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = resources.files("meetpunt.data").joinpath("offpeak_calendar.toml")
    text = packaged.read_text(encoding="utf-8").replace(
        'default_region = "standard"', 'default_region = "enexis_zuid"'
    )
    (tmp_path / "offpeak_calendar.toml").write_text(text, encoding="utf-8")
    monkeypatch.setenv(RULES_DIR_ENV, str(tmp_path))
    cal = offpeak_calendar()
    assert cal.tariff_at(local(2025, 1, 15, 22)) is Tariff.T1


def test_a_holiday_added_in_the_data_is_offpeak() -> None:
    data = body()
    data["holidays"].append(
        {"id": "liberation_day", "name": "Bevrijdingsdag", "month": 5, "day": 5}
    )
    cal = OffPeakCalendar.from_mapping(data)
    assert cal.tariff_at(local(2025, 5, 5, 12)) is Tariff.T1


@pytest.mark.parametrize(
    "breakage",
    [
        lambda b: b["calendar"].update(default_region="atlantis"),
        lambda b: b["regions"]["standard"].update(normal_from=time(23, 0)),
        lambda b: b["regions"]["standard"].update(normal_until="late"),
        lambda b: b["holidays"].append({"id": "x", "name": "X"}),
        lambda b: b["holidays"].append({"id": "x", "name": "X", "month": 2, "day": 30}),
        lambda b: b["holidays"].append(dict(b["holidays"][0])),
        lambda b: b["calendar"].update(offpeak_weekdays=["caturday"]),
        lambda b: b.pop("regions"),
    ],
)
def test_malformed_data_is_refused(breakage: Any) -> None:
    data = body()
    breakage(data)
    with pytest.raises(RulesDataError):
        OffPeakCalendar.from_mapping(data)
