"""A contract year 2026-07-01 .. 2027-07-01 crossing the end of netting (MKT-1..3, issue 20).

Amounts worked out by hand with the constructed tariffs of ``conftest.py``:
2026 tax 0.10/kWh, reduction 1.00/day, grid 2.00/day; 2027 tax 0.12/kWh, reduction
1.00/day, grid 3.00/day; standing charge 73/yr = 0.20/day; VAT 21 %.
Part 0 = 2026-07-01 .. 2026-12-31 = 31+31+30+31+30+31 = 184 days (netting);
part 1 = 2027-01-01 .. 2027-06-30 = 31+28+31+30+31+30 = 181 days (no netting).
Fixed lines: part 0: reduction -184.00, grid 2 x 184 = 368.00, standing 0.2 x 184 = 36.80
             part 1: reduction -181.00, grid 3 x 181 = 543.00, standing 0.2 x 181 = 36.20
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import OffPeakCalendar
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, TariffKind
from meetpunt.errors import RulesDataError
from meetpunt.market.pricing import (
    ContractTerms,
    DynamicPrices,
    Invoice,
    PriceSet,
    Regime,
    Usage,
    invoice,
    settle,
)
from meetpunt.market.rules import MarketTariffs, market_tariffs

FIRST, END = date(2026, 7, 1), date(2027, 7, 1)

D = Decimal


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def terms(kind: ContractType, tariff: TariffKind, **prices: str) -> ContractTerms:
    return ContractTerms(
        reference="C-1",
        commodity=Commodity.ELECTRICITY,
        contract_type=kind,
        tariff=tariff,
        meter_type=MeterType.SMART,
        start=FIRST,
        end=END if kind is ContractType.FIXED else None,
        prices=(PriceSet(FIRST, standing_per_year=D(73), **{k: D(v) for k, v in prices.items()}),),
        grid_class="electricity_3x25A",
    )


def amounts(inv: Invoice) -> dict[tuple[int, str], D]:
    out: dict[tuple[int, str], D] = {}
    for line in inv.lines:
        key = (line.part, line.description.split(" (")[0].split(",")[0])
        out[key] = out.get(key, D(0)) + line.amount
    return out


def test_parts_split_at_1_january_2027(tariffs: MarketTariffs, calendar: OffPeakCalendar) -> None:
    t = terms(ContractType.FIXED, TariffKind.SINGLE, single="0.25", feed_in="0.15")
    inv = invoice(t, Usage.of([]), FIRST, END, tariffs, calendar)
    assert [(p.first, p.end, p.regime, p.days) for p in inv.parts] == [
        (date(2026, 7, 1), date(2027, 1, 1), Regime.NETTING, 184),
        (date(2027, 1, 1), date(2027, 7, 1), Regime.SEPARATE, 181),
    ]


def test_single_without_solar(tariffs: MarketTariffs, calendar: OffPeakCalendar) -> None:
    t = terms(ContractType.FIXED, TariffKind.SINGLE, single="0.25", feed_in="0.15")
    usage = Usage.of([(utc("2026-08-10T10:00"), 1200, 0), (utc("2027-03-10T10:00"), 1400, 0)])
    inv = invoice(t, usage, FIRST, END, tariffs, calendar)
    a = amounts(inv)
    assert a[(0, "Levering enkeltarief")] == D("300.00")  # 1200 x 0.25
    assert a[(0, "Energiebelasting schijf 1")] == D("120.00")  # 1200 x 0.10
    assert a[(1, "Levering enkeltarief")] == D("350.00")  # 1400 x 0.25
    assert a[(1, "Energiebelasting schijf 1")] == D("168.00")  # 1400 x 0.12
    # part 0: 300 + 120 - 184 + 368 + 36.80 = 640.80
    # part 1: 350 + 168 - 181 + 543 + 36.20 = 916.20
    assert inv.subtotal == D("1557.00")  # 640.80 + 916.20
    assert inv.vat == D("326.97")  # 1557.00 x 0.21
    assert inv.total == D("1883.97")


def test_single_with_solar(tariffs: MarketTariffs, calendar: OffPeakCalendar) -> None:
    t = terms(ContractType.FIXED, TariffKind.SINGLE, single="0.25", feed_in="0.15")
    usage = Usage.of(
        [
            (utc("2026-07-15T11:00"), 700, 1000),
            (utc("2026-11-15T18:00"), 500, 500),
            # 23:30 UTC on 31 December is 00:30 local on 1 January 2027: part 1
            (utc("2026-12-31T23:30"), 100, 0),
            (utc("2027-04-15T11:00"), 1400, 500),
        ]
    )
    inv = invoice(t, usage, FIRST, END, tariffs, calendar)
    a = amounts(inv)
    # part 0 nets: 1200 - 1500 = -300: nothing supplied, 300 surplus x 0.15 = 45.00 back
    assert a[(0, "Levering enkeltarief")] == D("0.00")
    assert a[(0, "Terugleververgoeding overschot")] == D("-45.00")
    assert (0, "Energiebelasting schijf 1") not in a  # taxed on max(0, -300) = 0
    # part 1 does not net: import 100 + 1400 = 1500 x 0.25 = 375.00; export 500 x 0.15
    assert a[(1, "Levering enkeltarief")] == D("375.00")
    assert a[(1, "Terugleververgoeding")] == D("-75.00")
    assert a[(1, "Energiebelasting schijf 1")] == D("180.00")  # 1500 x 0.12
    # part 0: 0 - 45 - 184 + 368 + 36.80 = 175.80
    # part 1: 375 - 75 + 180 - 181 + 543 + 36.20 = 878.20
    assert inv.subtotal == D("1054.00")
    assert inv.vat == D("221.34")  # 1054 x 0.21
    assert inv.total == D("1275.34")


def test_double_without_solar(tariffs: MarketTariffs, calendar: OffPeakCalendar) -> None:
    t = terms(
        ContractType.VARIABLE, TariffKind.DOUBLE, normal="0.30", offpeak="0.20", feed_in="0.12"
    )
    usage = Usage.of(
        [
            (utc("2026-08-12T10:00"), 800, 0),  # Wednesday 12:00 local: normal
            (utc("2026-08-15T10:00"), 600, 0),  # Saturday: off-peak
            (utc("2027-03-10T11:00"), 700, 0),  # Wednesday 12:00 local: normal
            (utc("2027-03-13T11:00"), 500, 0),  # Saturday: off-peak
        ]
    )
    inv = invoice(t, usage, FIRST, END, tariffs, calendar)
    a = amounts(inv)
    assert a[(0, "Levering normaaltarief")] == D("240.00")  # 800 x 0.30
    assert a[(0, "Levering daltarief")] == D("120.00")  # 600 x 0.20
    assert a[(0, "Energiebelasting schijf 1")] == D("140.00")  # 1400 x 0.10
    assert a[(1, "Levering normaaltarief")] == D("210.00")  # 700 x 0.30
    assert a[(1, "Levering daltarief")] == D("100.00")  # 500 x 0.20
    assert a[(1, "Energiebelasting schijf 1")] == D("144.00")  # 1200 x 0.12
    # part 0: 240 + 120 + 140 - 184 + 368 + 36.80 = 720.80
    # part 1: 210 + 100 + 144 - 181 + 543 + 36.20 = 852.20
    assert inv.subtotal == D("1573.00")
    assert inv.total == D("1903.33")  # 1573 + 330.33


def test_double_with_solar(tariffs: MarketTariffs, calendar: OffPeakCalendar) -> None:
    t = terms(
        ContractType.VARIABLE, TariffKind.DOUBLE, normal="0.30", offpeak="0.20", feed_in="0.12"
    )
    usage = Usage.of(
        [
            (utc("2026-08-12T10:00"), 800, 1000),  # normal: net -200
            (utc("2026-08-15T10:00"), 600, 100),  # off-peak: net +500
            (utc("2027-03-10T11:00"), 700, 400),
            (utc("2027-03-13T11:00"), 500, 0),
        ]
    )
    inv = invoice(t, usage, FIRST, END, tariffs, calendar)
    a = amounts(inv)
    # part 0: the normal surplus 200 offsets off-peak: 500 - 200 = 300 x 0.20 = 60.00
    assert a[(0, "Levering normaaltarief")] == D("0.00")
    assert a[(0, "Levering daltarief")] == D("60.00")
    assert a[(0, "Energiebelasting schijf 1")] == D("30.00")  # (1400 - 1100) x 0.10
    # part 1: 700 x 0.30 = 210, 500 x 0.20 = 100, export 400 x 0.12 = -48, tax 1200 x 0.12
    assert a[(1, "Levering normaaltarief")] == D("210.00")
    assert a[(1, "Levering daltarief")] == D("100.00")
    assert a[(1, "Terugleververgoeding")] == D("-48.00")
    assert a[(1, "Energiebelasting schijf 1")] == D("144.00")
    # part 0: 0 + 60 + 30 - 184 + 368 + 36.80 = 310.80
    # part 1: 210 + 100 - 48 + 144 - 181 + 543 + 36.20 = 804.20
    assert inv.subtotal == D("1115.00")
    assert inv.total == D("1349.15")  # 1115 + 234.15


def hourly(prices: dict[str, str]) -> DynamicPrices:
    return DynamicPrices(timedelta(hours=1), {utc(k): D(v) for k, v in prices.items()})


PRICES = hourly(
    {
        "2026-08-12T10:00": "0.10",
        "2026-08-12T20:00": "0.30",
        "2027-03-10T11:00": "0.08",
        "2027-03-10T18:00": "0.25",
    }
)


def test_dynamic_without_solar(tariffs: MarketTariffs, calendar: OffPeakCalendar) -> None:
    t = terms(ContractType.DYNAMIC, TariffKind.SINGLE, markup="0.02")
    usage = Usage.of(
        [
            (utc("2026-08-12T10:15"), 500, 0),  # 500 x (0.10 + 0.02) = 60.00
            (utc("2026-08-12T20:00"), 700, 0),  # 700 x (0.30 + 0.02) = 224.00
            (utc("2027-03-10T11:00"), 600, 0),  # 600 x (0.08 + 0.02) = 60.00
            (utc("2027-03-10T18:45"), 800, 0),  # 800 x (0.25 + 0.02) = 216.00
        ]
    )
    inv = invoice(t, usage, FIRST, END, tariffs, calendar, PRICES)
    a = amounts(inv)
    assert a[(0, "Levering dynamisch")] == D("284.00")  # 60 + 224
    assert a[(0, "Energiebelasting schijf 1")] == D("120.00")  # 1200 x 0.10
    assert a[(1, "Levering dynamisch")] == D("276.00")  # 60 + 216
    assert a[(1, "Energiebelasting schijf 1")] == D("168.00")  # 1400 x 0.12
    # part 0: 284 + 120 - 184 + 368 + 36.80 = 624.80; part 1: 276 + 168 - 181 + 543 + 36.20 = 842.20
    assert inv.subtotal == D("1467.00")
    assert inv.total == D("1775.07")  # 1467 + 308.07


def test_dynamic_with_solar(tariffs: MarketTariffs, calendar: OffPeakCalendar) -> None:
    t = terms(ContractType.DYNAMIC, TariffKind.SINGLE, markup="0.02")
    usage = Usage.of(
        [
            (utc("2026-08-12T10:00"), 100, 900),  # nets at 0.12: (100 - 900) x 0.12 = -96.00
            (utc("2026-08-12T20:00"), 700, 0),  # 700 x 0.32 = 224.00
            (utc("2027-03-10T11:00"), 200, 600),  # 200 x 0.10 = 20; export 600 x 0.08 = 48
            (utc("2027-03-10T18:00"), 800, 0),  # 800 x 0.27 = 216.00
        ]
    )
    inv = invoice(t, usage, FIRST, END, tariffs, calendar, PRICES)
    a = amounts(inv)
    assert a[(0, "Levering dynamisch")] == D("128.00")  # -96 + 224
    assert (0, "Energiebelasting schijf 1") not in a  # 800 - 900 < 0
    assert a[(1, "Levering dynamisch")] == D("236.00")  # 20 + 216
    assert a[(1, "Terugleververgoeding dynamisch")] == D("-48.00")
    assert a[(1, "Energiebelasting schijf 1")] == D("120.00")  # 1000 x 0.12
    # part 0: 128 - 184 + 368 + 36.80 = 348.80; part 1: 236 - 48 + 120 - 181 + 543 + 36.20 = 706.20
    assert inv.subtotal == D("1055.00")
    assert inv.total == D("1276.55")  # 1055 + 221.55


def test_annual_settlement_proposes_new_advance(
    tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    t = terms(ContractType.FIXED, TariffKind.SINGLE, single="0.25", feed_in="0.15")
    usage = Usage.of([(utc("2026-08-10T10:00"), 1200, 0), (utc("2027-03-10T10:00"), 1400, 0)])
    result = settle(invoice(t, usage, FIRST, END, tariffs, calendar), [D(150)] * 12)
    assert result.advances_paid == D(1800)
    assert result.balance == D("83.97")  # 1883.97 - 1800
    assert result.new_advance == D(157)  # ceil(1883.97 x 365/365 / 12 = 156.9975)


def test_price_change_on_1_july_makes_a_part(
    tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    """A variable contract changing price on 2026-10-01 is priced in two parts of 2026."""
    t = ContractTerms(
        reference="V-1",
        commodity=Commodity.ELECTRICITY,
        contract_type=ContractType.VARIABLE,
        tariff=TariffKind.SINGLE,
        meter_type=MeterType.SMART,
        start=FIRST,
        prices=(PriceSet(FIRST, single=D("0.25")), PriceSet(date(2026, 10, 1), single=D("0.30"))),
        grid_class="electricity_3x25A",
    )
    usage = Usage.of([(utc("2026-08-10T10:00"), 100, 0), (utc("2026-11-10T10:00"), 100, 0)])
    inv = invoice(t, usage, FIRST, date(2027, 1, 1), tariffs, calendar)
    a = amounts(inv)
    assert a[(0, "Levering enkeltarief")] == D("25.00")  # 100 x 0.25
    assert a[(1, "Levering enkeltarief")] == D("30.00")  # 100 x 0.30


def test_packaged_tariffs_have_2026_and_2027_with_unconfirmed_marked() -> None:
    packaged = market_tariffs()
    assert packaged.year(2026).electricity_tax[0].rate == D("0.09160")
    assert packaged.year(2026).tax_reduction_per_year == D("519.80")
    assert "tax_reduction_per_year" in packaged.year(2027).unconfirmed
    assert packaged.netting_ends == date(2027, 1, 1)
    with pytest.raises(RulesDataError, match="no amounts for 2031"):
        packaged.year(2031)


@settings(max_examples=60, deadline=None)
@given(
    imp=st.integers(0, 5000),
    exp=st.integers(0, 5000),
    more=st.integers(1, 3000),
    when=st.sampled_from(["2026-08-12T10:00", "2027-03-10T11:00"]),
)
def test_more_export_never_costs_more(
    tariffs: MarketTariffs, calendar: OffPeakCalendar, imp: int, exp: int, more: int, when: str
) -> None:
    """Feeding in more (no feed-in costs) never raises the invoice, netting or not."""
    t = terms(ContractType.FIXED, TariffKind.SINGLE, single="0.25", feed_in="0.15")
    base = invoice(t, Usage.of([(utc(when), imp, exp)]), FIRST, END, tariffs, calendar)
    extra = invoice(t, Usage.of([(utc(when), imp, exp + more)]), FIRST, END, tariffs, calendar)
    assert extra.subtotal < base.subtotal
