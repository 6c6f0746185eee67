"""The Dutch documents render (issue 20): HTML with the required parts, a real PDF."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from meetpunt.domain.calendar import OffPeakCalendar
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, TariffKind
from meetpunt.market.pricing import ContractTerms, PriceSet, Usage, invoice, settle
from meetpunt.market.rules import MarketTariffs
from meetpunt.market.switching import switch_reading
from meetpunt.market.terms import ModelContract, terms_from_mapping
from meetpunt.report.documents import (
    DocumentKind,
    MarketDocument,
    Party,
    euro,
    price,
    render_html,
    render_pdf,
)

D = Decimal
SENDER = Party(
    "Voorbeeld Energie B.V.",
    ("Postbus 100", "1000 AA Amsterdam"),
    ("KvK 12345678", "klantenservice@voorbeeld.nl"),
)
RECIPIENT = Party("J. de Vries <script>", ("Dorpsstraat 1", "1234 AB Ergens"))


def document(
    kind: DocumentKind, tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> MarketDocument:
    terms = ContractTerms(
        reference="C-42",
        commodity=Commodity.ELECTRICITY,
        contract_type=ContractType.FIXED,
        tariff=TariffKind.SINGLE,
        meter_type=MeterType.SMART,
        start=date(2026, 7, 1),
        end=date(2027, 7, 1),
        prices=(PriceSet(date(2026, 7, 1), single=D("0.25"), feed_in=D("0.15")),),
        grid_class="electricity_3x25A",
    )
    usage = Usage.of(
        [
            (datetime(2026, 8, 1, 10, tzinfo=UTC), 900, 1100),
            (datetime(2027, 2, 1, 10, tzinfo=UTC), 1500, 300),
        ]
    )
    inv = invoice(terms, usage, date(2026, 7, 1), date(2027, 7, 1), tariffs, calendar)
    reading = switch_reading(
        date(2027, 7, 1), MeterType.SMART, {"1.8.1": D(12034), "1.8.2": D(9876)}
    )
    return MarketDocument(
        kind=kind,
        reference="JA-2027-000123",
        issued=date(2027, 7, 8),
        sender=SENDER,
        recipient=RECIPIENT,
        ean="871687120000000019",
        invoice=inv,
        settlement=settle(inv, [D(120)] * 12) if kind is DocumentKind.ANNUAL else None,
        readings=(reading,),
    )


@pytest.mark.parametrize("kind", list(DocumentKind))
def test_html_has_date_reference_sender_and_objection(
    kind: DocumentKind, tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    html = render_html(document(kind, tariffs, calendar))
    assert kind.dutch_title in html
    assert "8 juli 2027" in html  # date
    assert "JA-2027-000123" in html  # reference
    assert "Voorbeeld Energie B.V." in html  # sender
    assert "Bezwaar maken" in html and "Geschillencommissie" in html  # how to object
    assert "salderen" in html and "afname en teruglevering apart" in html  # two regimes
    assert "&lt;script&gt;" in html and "<script>" not in html  # escaped
    assert "Nog niet bevestigd" not in html  # constructed tariffs mark nothing


def test_annual_settlement_shows_advances_and_new_advance(
    tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    doc = document(DocumentKind.ANNUAL, tariffs, calendar)
    assert doc.settlement is not None
    html = render_html(doc)
    assert "Voorgesteld nieuw maandvoorschot" in html
    assert euro(doc.settlement.new_advance) in html
    assert euro(doc.invoice.total) in html


def test_euro_is_written_the_dutch_way() -> None:
    assert euro(D("1234.5")) == "€ 1.234,50"
    assert euro(D("-45")) == "-€ 45,00"
    assert price(D("-0.15")) == "-€ 0,15"
    assert price(D("1.424657")) == "€ 1,42466"


def test_pdf_starts_with_pdf_and_has_pages(
    tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    pdf = render_pdf(render_html(document(DocumentKind.ANNUAL, tariffs, calendar)))
    assert pdf.data.startswith(b"%PDF")
    assert pdf.pages >= 1
    assert len(re.findall(rb"/Type\s*/Pages?\b", pdf.data)) >= 1 or b"/ObjStm" in pdf.data


# -- MKT-2: the model contract is named where the customer looks for the contract --


@pytest.mark.parametrize(
    ("model", "named"),
    [
        ("variable", "C-M: Modelcontract variabel (onbepaalde tijd, variabele prijzen)"),
        ("fixed", "C-M: Modelcontract vast (vaste looptijd, vaste prijzen), tot 1 juli 2027"),
    ],
)
def test_a_model_contract_is_named_on_the_document(
    model: str, named: str, tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    """The terms' ``model`` reaches the document's Contract row (MKT-2)."""
    data: dict[str, object] = {
        "reference": "C-M",
        "contract_type": model,
        "model": model,
        "start": date(2026, 7, 1),
        "grid_class": "electricity_3x25A",
        "prices": [{"valid_from": date(2026, 7, 1), "single": "0.25", "feed_in": "0.15"}],
    }
    if model == "fixed":
        data["end"] = date(2027, 7, 1)
    terms = terms_from_mapping(data)
    assert terms.model is ModelContract(model)
    doc = replace(document(DocumentKind.FINAL, tariffs, calendar), contract=terms)
    html = render_html(doc)
    assert f"<td>Contract</td><td>{named}</td>" in html


def test_an_ordinary_contract_is_named_by_its_kind_and_not_as_a_model(
    tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    doc = document(DocumentKind.ANNUAL, tariffs, calendar)
    html = render_html(replace(doc, contract=terms_from_mapping(ORDINARY)))
    assert "<td>Contract</td><td>C-42: Vast contract, tot 1 juli 2027</td>" in html
    assert "Modelcontract" not in html
    assert "<td>Contract</td>" not in render_html(doc)  # no contract given (VZC): no row


ORDINARY: dict[str, object] = {
    "reference": "C-42",
    "contract_type": "fixed",
    "start": date(2026, 7, 1),
    "end": date(2027, 7, 1),
    "grid_class": "electricity_3x25A",
    "prices": [{"valid_from": date(2026, 7, 1), "single": "0.25", "feed_in": "0.15"}],
}
