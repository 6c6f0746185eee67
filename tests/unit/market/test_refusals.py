"""Each market rule refusing what it must refuse (MKT-2, MKT-3, MKT-4, MKT-5, MKT-7)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from meetpunt.domain.calendar import OffPeakCalendar
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, TariffKind
from meetpunt.errors import MarketError
from meetpunt.market.pricing import (
    ContractTerms,
    PriceSet,
    Usage,
    check_terms,
    invoice,
    large_consumer_month,
    require_terms,
)
from meetpunt.market.rules import ContractRules, MarketTariffs
from meetpunt.market.switching import (
    ReadingSource,
    check_placement_charge,
    earliest_end,
    placement_fee,
    switch_reading,
    termination_end,
    termination_fee,
)

D = Decimal


def make(
    kind: ContractType = ContractType.FIXED,
    tariff: TariffKind = TariffKind.SINGLE,
    meter: MeterType = MeterType.SMART,
    notice: int = 30,
    start: date = date(2024, 1, 1),
    end: date | None = date(2027, 1, 1),
    multisite: bool = False,
    feed_in: str = "0.15",
) -> ContractTerms:
    return ContractTerms(
        reference="C-9",
        commodity=Commodity.ELECTRICITY,
        contract_type=kind,
        tariff=tariff,
        meter_type=meter,
        start=start,
        end=end,
        prices=(
            PriceSet(
                start, single=D("0.25"), normal=D("0.28"), offpeak=D("0.22"), feed_in=D(feed_in)
            ),
        ),
        grid_class="electricity_3x25A",
        notice_days=notice,
        multisite=multisite,
    )


def rules_of(findings: list) -> set[str]:  # type: ignore[type-arg]
    return {f.rule for f in findings}


def test_notice_period_over_30_days_is_refused(
    tariffs: MarketTariffs, rules: ContractRules
) -> None:
    long = make(notice=45)
    assert "MKT-5.notice_period" in rules_of(check_terms(long, tariffs, rules.max_notice_days))
    with pytest.raises(MarketError) as caught:
        earliest_end(date(2026, 3, 1), long, rules)
    assert caught.value.findings[0].rule == "MKT-5.notice_period"
    # a multisite contract may have a longer notice period (MKT-6)
    assert earliest_end(date(2026, 3, 1), make(notice=45, multisite=True), rules) == date(
        2026, 4, 16
    )


def test_termination_earlier_than_notice_allows_is_refused(rules: ContractRules) -> None:
    t = make(kind=ContractType.VARIABLE, end=None)
    # notice on 1 March: runs on 30 days from 2 March, so it ends on 1 April (exclusive 1 April)
    assert earliest_end(date(2026, 3, 1), t, rules) == date(2026, 4, 1)
    with pytest.raises(MarketError, match="at the earliest"):
        termination_end(date(2026, 3, 1), date(2026, 3, 15), t, rules)
    assert termination_end(date(2026, 3, 1), date(2026, 5, 1), t, rules) == date(2026, 5, 1)


@pytest.mark.parametrize("kind", [ContractType.VARIABLE, ContractType.DYNAMIC])
def test_termination_fee_on_a_non_fixed_contract_is_refused(
    kind: ContractType, rules: ContractRules
) -> None:
    with pytest.raises(MarketError) as caught:
        termination_fee(make(kind=kind, end=None), date(2026, 5, 1), rules, D("0.2"), D(1000))
    assert caught.value.findings[0].rule == "MKT-5.termination_fee"


def test_termination_fee_follows_the_rule_at_the_contracts_start(rules: ContractRules) -> None:
    # concluded 2022-01-01 (old rule): ends 2026-05-01, end date 2027-01-01: 8 months left -> 50
    old = make(start=date(2022, 1, 1))
    assert termination_fee(old, date(2026, 5, 1), rules) == D("50.00")
    # 2 years 3 months left (27 months) -> the 2 to 2.5 year row: 100
    assert termination_fee(old, date(2024, 10, 1), rules) == D("100.00")
    # within 14 days of the end date: no fee under the old rule
    assert termination_fee(old, date(2026, 12, 20), rules) == D("0.00")
    # concluded 2024-01-01 (rule of 1 June 2023): (0.25 - 0.19) x 1500 kWh = 90.00
    new = make(start=date(2024, 1, 1))
    assert termination_fee(new, date(2026, 5, 1), rules, D("0.19"), D(1500)) == D("90.00")
    # the reference price above the contract price: no fee, never negative
    assert termination_fee(new, date(2026, 5, 1), rules, D("0.30"), D(1500)) == D("0.00")
    # within 7 days of the end: none; 10 days before: still due
    assert termination_fee(new, date(2026, 12, 26), rules, D("0.19"), D(10)) == D("0.00")
    assert termination_fee(new, date(2026, 12, 22), rules, D("0.19"), D(10)) == D("0.60")
    with pytest.raises(MarketError, match="give both"):
        termination_fee(new, date(2026, 5, 1), rules)


@pytest.mark.parametrize("meter", [MeterType.FERRARIS, MeterType.NONE])
def test_double_tariff_without_a_digital_meter_is_refused(
    meter: MeterType, tariffs: MarketTariffs, calendar: OffPeakCalendar, rules: ContractRules
) -> None:
    t = make(tariff=TariffKind.DOUBLE, meter=meter)
    assert "MKT-2.double_tariff" in rules_of(check_terms(t, tariffs, rules.max_notice_days))
    usage = Usage.of([(datetime(2026, 8, 12, 10, tzinfo=UTC), 100, 0)])
    with pytest.raises(MarketError) as caught:
        invoice(t, usage, date(2026, 8, 1), date(2026, 9, 1), tariffs, calendar)
    assert caught.value.findings[0].rule == "MKT-2.double_tariff"
    # a digital meter is enough
    ok = make(tariff=TariffKind.DOUBLE, meter=MeterType.DIGITAL)
    assert check_terms(ok, tariffs, rules.max_notice_days) == []


def test_feed_in_below_half_the_supply_price_is_refused(tariffs: MarketTariffs) -> None:
    # bare price: the lowest of 0.25 / 0.28 / 0.22 = 0.22; floor 0.5 x 0.22 = 0.11
    with pytest.raises(MarketError) as caught:
        require_terms(make(feed_in="0.10"), tariffs, 30)
    assert caught.value.findings[0].rule == "MKT-3.feed_in_floor"
    require_terms(make(feed_in="0.11"), tariffs, 30)


def test_fixed_contract_needs_an_end_and_one_price(tariffs: MarketTariffs) -> None:
    assert "MKT-1.fixed_end" in rules_of(check_terms(make(end=None), tariffs, 30))


def test_large_consumer_month_and_small_consumer_refused(tariffs: MarketTariffs) -> None:
    lines = large_consumer_month(tariffs, D(100), D(80), small=False)
    # 45 + 100 x 2.00 + 80 x 1.50 + 25 = 390.00
    assert sum(line.amount for line in lines) == D("390.00")
    with pytest.raises(MarketError) as caught:
        large_consumer_month(tariffs, D(10), D(8), small=True)
    assert caught.value.findings[0].rule == "MKT-4.small_consumer"


def test_placement_fees(rules: ContractRules) -> None:
    assert placement_fee(False, True, rules) == D("0.00")
    assert placement_fee(True, True, rules) == D("72.60")
    assert placement_fee(True, False, rules) == D("67.76")
    check_placement_charge(D("67.76"), True, False, rules)
    with pytest.raises(MarketError) as caught:
        check_placement_charge(D("72.60"), True, False, rules)
    assert caught.value.findings[0].rule == "MKT-7.placement_fee"
    with pytest.raises(MarketError):
        check_placement_charge(D("10"), False, True, rules)


def test_switch_reading_smart_or_estimated() -> None:
    smart = switch_reading(date(2026, 5, 1), MeterType.SMART, {"1.8.1": D(1000)})
    assert smart.source is ReadingSource.SMART_METER and not smart.estimated
    # traditional meter: 12000 + 3650 / 365 x 30 days = 12300, marked estimated
    est = switch_reading(
        date(2026, 5, 1),
        MeterType.FERRARIS,
        None,
        last_reading={"1.8.0": D(12000)},
        last_day=date(2026, 4, 1),
        yearly_volume={"1.8.0": D(3650)},
    )
    assert est.registers == {"1.8.0": D(12300)} and est.estimated
    with pytest.raises(MarketError) as caught:
        switch_reading(date(2026, 5, 1), MeterType.FERRARIS, None)
    assert caught.value.findings[0].rule == "MKT-5.reading_missing"
