"""An invoice between two readings spreads each register's use by the standard profile
(MKT-1..5, ``market_profiles``): a price change inside the period is charged on the share
the profile gives it, and a double-tariff meter's registers T1 and T2 each only on the
quarter-hours the off-peak calendar counts on them (MKT-2).

Hand profile: import level 1 on weekdays, 2 on Saturdays, 3 on Sundays, every hour, no
seasonal swing; solar 1 in the hours 08-16 of every day (monthly yield proportional to
the month's days, so 1 a day); gas all heating, 10 degree days a day in December, 5 in
January, none else. The week of 27 June 2026: Sat 27, Sun 28, Mon 29, Tue 30 June, Wed 1
July; normal (T2) on working days 07:00-23:00 (the packaged calendar's standard region):
64 quarter-hours, off-peak (T1) 32; weekends all 96 off-peak.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.domain.calendar import OffPeakCalendar
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, TariffKind
from meetpunt.errors import MarketError, RulesDataError
from meetpunt.market.pricing import ContractTerms, Invoice, PriceSet, invoice
from meetpunt.market.profiles import StandardProfiles, spread, standard_profiles
from meetpunt.market.rules import MarketTariffs
from meetpunt.market.switching import ReadingSource, SwitchReading, usage_between
from tests.unit.market.contracts import gas_terms

D = Decimal
DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
HAND: dict[str, Any] = {
    "electricity_import": {
        "weekday": [1.0] * 24,
        "saturday": [2.0] * 24,
        "sunday": [3.0] * 24,
        "seasonal_amplitude": 0.0,
        "seasonal_peak_doy": 15,
        "lighting_amplitude": 0.0,
        "lighting_hours": [16, 23],
    },
    "electricity_export": {
        "monthly": DAYS,
        "hourly": [0.0] * 8 + [1.0] * 8 + [0.0] * 8,
    },
    "gas": {
        "monthly_temp_c": [13.0] + [18.0] * 10 + [8.0],
        "base_temperature_c": 18.0,
        "heating_share": 1.0,
    },
}
OPEN, CLOSE = date(2026, 6, 27), date(2026, 7, 2)


@pytest.fixture(scope="module")
def hand() -> StandardProfiles:
    return StandardProfiles.from_mapping(HAND, version="test")


def reading(day: date, **registers: str) -> SwitchReading:
    named = {k.lstrip("_").replace("_", "."): D(v) for k, v in registers.items()}
    return SwitchReading(day, named, ReadingSource.SMART_METER)


def electricity(tariff: TariffKind) -> ContractTerms:
    """Variable: single 0.20 then 0.30 from 1 July; normal 0.30 / off-peak 0.20, then
    0.40 / 0.25."""
    return ContractTerms(
        reference="R-1",
        commodity=Commodity.ELECTRICITY,
        contract_type=ContractType.VARIABLE,
        tariff=tariff,
        meter_type=MeterType.SMART,
        start=date(2026, 1, 1),
        prices=(
            PriceSet(
                date(2026, 1, 1),
                single=D("0.20"),
                normal=D("0.30"),
                offpeak=D("0.20"),
                feed_in=D("0.15"),
            ),
            PriceSet(
                date(2026, 7, 1),
                single=D("0.30"),
                normal=D("0.40"),
                offpeak=D("0.25"),
                feed_in=D("0.15"),
            ),
        ),
        grid_class="electricity_3x25A",
    )


def lines(inv: Invoice) -> Mapping[tuple[int, str], tuple[Decimal, Decimal]]:
    return {(x.part, x.description): (x.quantity, x.amount) for x in inv.lines}


def test_a_single_register_is_spread_by_the_profile_across_the_price_change(
    hand: StandardProfiles, tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    """Weights a day: Sat 2 x 96 = 192, Sun 288, Mon-Wed 96 each: 768 in all. 768 kWh:
    June 192 + 288 + 96 + 96 = 672 kWh at 0.20 = 134.40; July 96 kWh at 0.30 = 28.80.
    (Evenly over the 5 days it would be 614.4 and 153.6 kWh.)"""
    used = usage_between(
        reading(OPEN, _1_8_0="10000"), reading(CLOSE, _1_8_0="10768"), Commodity.ELECTRICITY,
        hand, calendar,
    )  # fmt: skip
    assert sum(used.imported) == D(768)
    inv = invoice(electricity(TariffKind.SINGLE), used, OPEN, CLOSE, tariffs, calendar)
    got = lines(inv)
    assert got[(0, "Levering enkeltarief, gesaldeerd (672.000 - 0)")] == (D(672), D("134.40"))
    assert got[(1, "Levering enkeltarief, gesaldeerd (96.000 - 0)")] == (D(96), D("28.80"))
    assert got[(0, "Energiebelasting schijf 1")][1] == D("67.20")  # 672 x 0.10
    assert got[(1, "Energiebelasting schijf 1")][1] == D("9.60")  # 96 x 0.10


def test_a_double_tariff_meter_spreads_each_register_on_its_own_hours(
    hand: StandardProfiles, tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    """1.8.1 (T1) 576 kWh over weights Sat 192, Sun 288, Mon-Wed 32 each (576): June
    544, July 32. 1.8.2 (T2) 300 kWh over Mon-Wed 64 each: June 200, July 100. Solar
    08-16: 2.8.2 30 kWh on Mon-Wed (all T2 on working days), June 20, July 10; 2.8.1
    50 kWh on Sat and Sun (T1 all day), June 50.
    Netting per register (2026): June normal 200 - 20 = 180 x 0.30 = 54.00, off-peak
    544 - 50 = 494 x 0.20 = 98.80; July normal 100 - 10 = 90 x 0.40 = 36.00, off-peak
    32 x 0.25 = 8.00. Energy tax June (744 - 70) x 0.10 = 67.40, July (132 - 10) x 0.10
    = 12.20."""
    used = usage_between(
        reading(OPEN, _1_8_1="1000", _1_8_2="2000", _2_8_1="100", _2_8_2="200"),
        reading(CLOSE, _1_8_1="1576", _1_8_2="2300", _2_8_1="150", _2_8_2="230"),
        Commodity.ELECTRICITY,
        hand,
        calendar,
    )
    assert (sum(used.imported), sum(used.exported)) == (D(876), D(80))
    inv = invoice(electricity(TariffKind.DOUBLE), used, OPEN, CLOSE, tariffs, calendar)
    got = lines(inv)
    assert got[(0, "Levering normaaltarief, gesaldeerd")] == (D(180), D("54.00"))
    assert got[(0, "Levering daltarief, gesaldeerd")] == (D(494), D("98.80"))
    assert got[(1, "Levering normaaltarief, gesaldeerd")] == (D(90), D("36.00"))
    assert got[(1, "Levering daltarief, gesaldeerd")] == (D(32), D("8.00"))
    assert got[(0, "Energiebelasting schijf 1")] == (D(674), D("67.40"))
    assert got[(1, "Energiebelasting schijf 1")] == (D(122), D("12.20"))


def test_gas_follows_the_degree_days_across_the_year_and_each_months_factor(
    hand: StandardProfiles, tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    """465 m³ from 1 Dec 2026 to 1 Feb 2027: degree days 31 x 10 + 31 x 5 = 465, so
    December 310 m³ x 1.02 = 316.2 m³ at 1.00 = 316.20, January 155 x 1.05 = 162.75 m³
    at 1.00 = 162.75 (evenly it would be 232.5 m³ each); gas tax 2026 316.2 x 0.50 =
    158.10, 2027 162.75 x 0.60 = 97.65."""
    first, end = date(2026, 12, 1), date(2027, 2, 1)
    used = usage_between(
        reading(first, _24_2_1="5000"), reading(end, _24_2_1="5465"), Commodity.GAS, hand,
        calendar,
    )  # fmt: skip
    terms = gas_terms(residence=False)
    inv = invoice(terms, used, first, end, tariffs, calendar)
    assert [(g.measured, g.converted) for g in inv.gas_volumes] == [
        (D(310), D("316.200")),
        (D(155), D("162.750")),
    ]
    got = lines(inv)
    assert got[(0, "Levering enkeltarief")] == (D("316.200"), D("316.20"))
    assert got[(1, "Levering enkeltarief")] == (D("162.750"), D("162.75"))
    assert got[(0, "Energiebelasting schijf 1")][1] == D("158.10")
    assert got[(1, "Energiebelasting schijf 1")][1] == D("97.65")


def test_a_register_with_use_but_no_hours_of_its_own_is_refused(
    hand: StandardProfiles, calendar: OffPeakCalendar
) -> None:
    """Sat 27 and Sun 28 June have no normal-tariff quarter-hour: 1.8.2 cannot advance."""
    with pytest.raises(MarketError) as refused:
        usage_between(
            reading(OPEN, _1_8_1="0", _1_8_2="0"),
            reading(date(2026, 6, 29), _1_8_1="10", _1_8_2="5"),
            Commodity.ELECTRICITY, hand, calendar,
        )  # fmt: skip
    assert refused.value.findings[0].rule == "MKT-2.register_without_hours"


@pytest.mark.parametrize(
    ("closing", "rule"),
    [
        ({"_1_8_1": "10"}, "MKT-5.reading_registers"),  # 1.8.2 only in the opening
        ({"_1_8_1": "10", "_1_8_2": "4"}, "MKT-5.readings_back"),
    ],
)
def test_readings_that_do_not_match_are_refused(
    closing: dict[str, str], rule: str, hand: StandardProfiles, calendar: OffPeakCalendar
) -> None:
    with pytest.raises(MarketError) as refused:
        usage_between(
            reading(OPEN, _1_8_1="0", _1_8_2="5"), reading(CLOSE, **closing),
            Commodity.ELECTRICITY, hand, calendar,
        )  # fmt: skip
    assert refused.value.findings[0].rule == rule


@given(
    st.decimals(min_value=0, max_value=100000, places=3),
    st.lists(st.floats(min_value=0, max_value=1e3, allow_nan=False), min_size=1, max_size=60),
)
def test_a_spread_adds_up_exactly_and_never_goes_negative(
    total: Decimal, weights: list[float]
) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    slots = [(at + timedelta(days=i), w) for i, w in enumerate(weights)]
    if total > 0 and sum(weights) == 0:
        with pytest.raises(MarketError):
            spread(total, slots, "r")
        return
    parts = spread(total, slots, "r")
    assert sum((p for _, p in parts), D(0)) == total
    assert all(p >= 0 for _, p in parts)
    assert all(p == 0 for (_, p), w in zip(parts, weights, strict=False) if w == 0)


def test_the_packaged_profiles_are_seasonal_and_span_a_dst_day(
    calendar: OffPeakCalendar,
) -> None:
    """Winter days use more power and gas, summer days yield more solar; the day the
    clocks go forward (92 quarter-hours) is spread like any other."""
    profiles = standard_profiles()
    assert profiles.unconfirmed  # not NEDU's tables: said so
    winter, summer = date(2026, 1, 14), date(2026, 7, 15)  # both Wednesdays
    used = usage_between(
        reading(winter, _1_8_0="0", _2_8_0="0"), reading(winter + timedelta(1), _1_8_0="10",
        _2_8_0="10"), Commodity.ELECTRICITY, profiles, calendar,
    )  # fmt: skip
    assert sum(used.imported) == D(10)
    assert profiles.gas_day_weight(winter) > 5 * profiles.gas_day_weight(summer)
    spring = usage_between(
        reading(date(2026, 3, 28), _1_8_1="0", _1_8_2="0"),
        reading(date(2026, 3, 31), _1_8_1="30", _1_8_2="30"),
        Commodity.ELECTRICITY, profiles, calendar,
    )  # fmt: skip
    assert sum(spring.imported) == D(60)
    day_import = [
        sum(
            profiles.import_weight(datetime(d.year, d.month, d.day, h, tzinfo=UTC), False)
            for h in range(24)
        )
        for d in (winter, summer)
    ]
    assert day_import[0] > day_import[1]
    solar = [
        sum(
            profiles.export_weight(datetime(d.year, d.month, d.day, h, tzinfo=UTC))
            for h in range(24)
        )
        for d in (winter, summer)
    ]
    assert solar[1] > 4 * solar[0]


def test_a_profile_that_cannot_spread_is_refused_on_load() -> None:
    broken = {**HAND, "gas": {**HAND["gas"], "monthly_temp_c": [18.0] * 12}}
    with pytest.raises(RulesDataError, match="no month is below"):
        StandardProfiles.from_mapping(broken)
    short = {**HAND, "electricity_export": {"monthly": DAYS[:11], "hourly": [1.0] * 24}}
    with pytest.raises(RulesDataError, match="needs 12 levels"):
        StandardProfiles.from_mapping(short)
