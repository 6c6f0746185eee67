"""Gas priced at the reference calorific value (MKT-1, issue 20): measured m³ x the grid
area's calorific factor of the month (x a standard temperature factor for a meter that
does not convert itself) on every gas line, shown on the Dutch documents.

Hand values (``conftest.py``): area "A" 1.02 in December 2026, 1.05 in January 2027,
none in February 2027 (default 1.00, unconfirmed); temperature factor 0.98. Gas tax
0.50/m³ in 2026 and 0.60/m³ in 2027; grid gas_G4 365/yr (1.00 a day); VAT 21 %.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from meetpunt.domain.calendar import OffPeakCalendar
from meetpunt.domain.connection import MeterType
from meetpunt.errors import RulesDataError
from meetpunt.market.pricing import Usage, invoice
from meetpunt.market.rules import GasConversion, MarketTariffs, market_tariffs
from meetpunt.report.documents import DocumentKind, MarketDocument, Party, render_html
from tests.unit.market.contracts import gas_terms

D = Decimal


def usage(*rows: tuple[str, str]) -> Usage:
    return Usage.of((datetime.fromisoformat(t).replace(tzinfo=UTC), m3, 0) for t, m3 in rows)


def lines(inv_lines: object) -> dict[tuple[int, str], tuple[D, D]]:
    return {
        (x.part, x.description): (x.quantity, x.amount)
        for x in inv_lines  # type: ignore[attr-defined]
    }


def test_each_month_is_converted_by_its_own_factor(
    tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    # December: 100 m³ x 1.02 = 102 m³; January: 200 m³ x 1.05 = 210 m³ (a smart meter
    # converts the temperature itself: no temperature factor)
    inv = invoice(
        gas_terms(),
        usage(("2026-12-10T10:00:00", "100"), ("2027-01-10T10:00:00", "200")),
        date(2026, 12, 1),
        date(2027, 2, 1),
        tariffs,
        calendar,
    )
    got = lines(inv.lines)
    # part 0 (December, 31 days): supply 102 x 1.00 = 102.00; tax 102 x 0.50 = 51.00;
    # grid 31 x 1.00 = 31.00
    assert got[(0, "Levering enkeltarief")] == (D("102.000"), D("102.00"))
    assert got[(0, "Energiebelasting schijf 1")] == (D("102.000"), D("51.00"))
    # part 1 (January): supply 210 x 1.00 = 210.00; tax 210 x 0.60 = 126.00
    assert got[(1, "Levering enkeltarief")] == (D("210.000"), D("210.00"))
    assert got[(1, "Energiebelasting schijf 1")] == (D("210.000"), D("126.00"))
    assert [(v.measured, v.factor, v.converted) for v in inv.gas_volumes] == [
        (D(100), D("1.020000"), D("102.000")),
        (D(200), D("1.050000"), D("210.000")),
    ]
    # subtotal 102 + 51 + 31 + 210 + 126 + 31 = 551.00; VAT 115.71; total 666.71
    assert (inv.subtotal, inv.vat, inv.total) == (D("551.00"), D("115.71"), D("666.71"))
    assert not any(u.startswith("gas:") for u in inv.unconfirmed)


def test_a_traditional_meter_gets_the_temperature_factor_and_a_month_without_a_factor_is_marked(
    tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    # January: 200 m³ x 1.05 x 0.98 = 205.8 m³; February (no factor): 50 x 1.00 x 0.98 = 49
    inv = invoice(
        gas_terms(MeterType.FERRARIS),
        usage(("2027-01-10T10:00:00", "200"), ("2027-02-10T10:00:00", "50")),
        date(2027, 1, 1),
        date(2027, 3, 1),
        tariffs,
        calendar,
    )
    got = lines(inv.lines)
    # one part (2027, one price set): 205.8 + 49 = 254.8 m³; supply 254.80; tax
    # 254.8 x 0.60 = 152.88
    assert got[(0, "Levering enkeltarief")] == (D("254.800"), D("254.80"))
    assert got[(0, "Energiebelasting schijf 1")] == (D("254.800"), D("152.88"))
    [volume] = inv.gas_volumes
    assert (volume.measured, volume.converted) == (D(250), D("254.800"))
    assert volume.factor == D("1.019200")  # 254.8 / 250
    notes = [u for u in inv.unconfirmed if u.startswith("gas:")]
    assert any("2027-02" in n and "area A" in n for n in notes)
    assert any("temperature_factor_uncorrected" in n for n in notes)


def test_the_conversion_shows_on_the_dutch_document(
    tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    inv = invoice(
        gas_terms(),
        usage(("2026-12-10T10:00:00", "100")),
        date(2026, 12, 1),
        date(2027, 1, 1),
        tariffs,
        calendar,
    )
    doc = MarketDocument(
        DocumentKind.FINAL, "G-1-1", date(2027, 1, 5), Party("meetpunt"), Party("klant"), "", inv
    )
    page = render_html(doc)
    assert "Omrekening gas" in page
    assert "35,17 MJ/m³" in page
    assert "1,02" in page and "102 m³" in page


def test_a_factor_that_is_no_calorific_correction_is_refused() -> None:
    body = {
        "reference_mj_per_m3": "35.17",
        "temperature_factor_uncorrected": "1.0",
        "default_calorific_factor": "1.0",
        "calorific": [{"area": "X", "factors": [{"month": date(2026, 1, 1), "factor": "35.17"}]}],
    }
    with pytest.raises(RulesDataError, match="not a calorific correction"):
        GasConversion.from_mapping(body)
    body["calorific"] = [{"area": "X", "factors": [{"month": date(2026, 1, 15), "factor": "1"}]}]
    with pytest.raises(RulesDataError, match="first day of a month"):
        GasConversion.from_mapping(body)


def test_the_packaged_conversion_has_its_reference_and_marks_the_temperature_factor() -> None:
    conversion = market_tariffs().gas_conversion
    assert conversion.reference_mj_per_m3 == D("35.17")
    assert "temperature_factor_uncorrected" in conversion.unconfirmed
    factor, published = conversion.calorific_factor("871718518003006694", date(2021, 3, 9))
    assert (factor, published) == (D("1.010548353"), True)
    assert conversion.calorific_factor("871718518003006694", date(2026, 3, 9))[1] is False
