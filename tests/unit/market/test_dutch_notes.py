"""The unconfirmed notes a customer reads are Dutch (issue 20): every ``unconfirmed`` note
of ``market_tariffs`` has its Dutch text in ``[unconfirmed_nl]`` (refused on load
without), the document prints the Dutch and ``--json`` keeps the English."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from meetpunt.domain.calendar import OffPeakCalendar
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, TariffKind
from meetpunt.errors import RulesDataError
from meetpunt.market.pricing import (
    ContractTerms,
    Invoice,
    PriceSet,
    Usage,
    invoice,
    vzc_invoice,
)
from meetpunt.market.rules import MarketTariffs, market_tariffs
from meetpunt.report.documents import DocumentKind, MarketDocument, Party, render_html
from tests.unit.market.conftest import HAND_TARIFFS
from tests.unit.market.contracts import gas_terms

D = Decimal


def page(inv: Invoice) -> str:
    """The invoice as the customer's Dutch document."""
    doc = MarketDocument(
        DocumentKind.FINAL, "R-1", date(2027, 7, 8), Party("meetpunt"), Party("klant"), "", inv
    )
    return render_html(doc)


def electricity(start: date) -> ContractTerms:
    return ContractTerms(
        reference="C-NL",
        commodity=Commodity.ELECTRICITY,
        contract_type=ContractType.VARIABLE,
        tariff=TariffKind.SINGLE,
        meter_type=MeterType.SMART,
        start=start,
        prices=(PriceSet(start, single=D("0.25"), feed_in=D("0.15")),),
        grid_class="electricity_3x25A",
    )


def test_the_packaged_notes_are_dutch_on_the_document_and_english_in_the_invoice(
    calendar: OffPeakCalendar,
) -> None:
    tariffs = market_tariffs()
    usage = Usage.of([(datetime(2027, 2, 1, 10, tzinfo=UTC), 100, 0)])
    inv = invoice(electricity(date(2027, 1, 1)), usage, date(2027, 1, 1), date(2027, 3, 1),
                  tariffs, calendar)  # fmt: skip
    assert "2027: grid" in inv.unconfirmed and "2027: tax_reduction_per_year" in inv.unconfirmed
    assert len(inv.unconfirmed_nl) == len(inv.unconfirmed)
    html = page(inv)
    assert "Nog niet bevestigd: 2027: netbeheerkosten per aansluitcategorie" in html
    assert "Nog niet bevestigd: 2027: vermindering energiebelasting per aansluiting" in html
    assert "Nog niet bevestigd: 2027: energiebelasting op elektriciteit" in html
    for english in ("grid", "tax_reduction_per_year", "electricity_tax", "tarief:"):
        assert f": {english}<" not in html and f" {english}</div>" not in html
    assert "Nog niet bevestigd tarief" not in html


def test_the_vzc_and_gas_notes_are_dutch_too(
    tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    vzc = vzc_invoice("VZC-1", date(2026, 6, 1), date(2026, 7, 1), D(100), tariffs)
    assert "Nog niet bevestigd: het tarief voor verbruik zonder contract (VZC-tarief)" in page(vzc)
    gas = gas_terms(
        MeterType.FERRARIS, reference="G-NL", start=date(2027, 1, 1), price="1.20", residence=False
    )
    usage = Usage.of([(datetime(2027, 2, 10, 10, tzinfo=UTC), 50, 0)])
    inv = invoice(gas, usage, date(2027, 2, 1), date(2027, 3, 1), tariffs, calendar)
    html = page(inv)
    assert (
        "Nog niet bevestigd: gas: geen gepubliceerde correctiefactor voor netgebied A in "
        "2027-02; factor 1,00 gebruikt" in html
    )
    assert "Nog niet bevestigd: gas: standaard temperatuurfactor" in html
    assert any("no published calorific factor" in u for u in inv.unconfirmed)  # --json


@pytest.mark.parametrize("where", ["year", "gas"])
def test_a_note_without_its_dutch_text_is_refused_on_load(where: str) -> None:
    body = copy.deepcopy(HAND_TARIFFS)
    if where == "year":
        body["years"]["2027"]["unconfirmed"] = ["grid"]  # type: ignore[index]
    else:
        del body["unconfirmed_nl"]
    with pytest.raises(RulesDataError, match=r"has no Dutch text.*\[unconfirmed_nl\]"):
        MarketTariffs.from_mapping(body)
    body["unconfirmed_nl"] = {"grid": "netbeheerkosten", "temperature_factor_uncorrected": "t"}
    assert MarketTariffs.from_mapping(body).dutch_note("grid") == "netbeheerkosten"


def test_an_invoice_carries_only_its_own_commoditys_notes(calendar: OffPeakCalendar) -> None:
    """The packaged 2026 notes name gas tax above 170,000 m³ and electricity tax above
    10,000 kWh: the electricity invoice keeps the second, the gas invoice the first."""
    tariffs = market_tariffs()
    usage = Usage.of([(datetime(2026, 2, 1, 10, tzinfo=UTC), 100, 0)])
    power = invoice(electricity(date(2026, 1, 1)), usage, date(2026, 1, 1), date(2026, 3, 1),
                    tariffs, calendar)  # fmt: skip
    assert "2026: electricity_tax above 10000 kWh" in power.unconfirmed
    assert not any("gas" in u for u in power.unconfirmed)
    gas = gas_terms(area=None, reference="G-2", price="1.20", residence=False)
    fuel = invoice(gas, usage, date(2026, 1, 1), date(2026, 3, 1), tariffs, calendar)
    assert "2026: gas_tax above 170000 m3" in fuel.unconfirmed
    assert not any("electricity" in u for u in fuel.unconfirmed)
    assert "2026: grid" in power.unconfirmed and "2026: grid" in fuel.unconfirmed
