"""Dutch customer documents (issue 20): annual settlement, VZC invoice, final invoice.

Rendered as HTML from the packaged Jinja2 template ``market_document.html.j2`` (autoescape
on) and as a print-ready A4 PDF with WeasyPrint. Every document carries its date, its
reference, the sender and how to object (bezwaar), as the issue requires. A gas
invoice shows how the measured m³ became m³ at the reference calorific value (MKT-1).
A supplier's invoice names the contract: its reference, its kind and, for a model
contract, that it is one (MKT-2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from meetpunt.market.pricing import ContractTerms, Invoice, InvoiceLine, Settlement
from meetpunt.market.switching import GAS_REGISTER, ReadingSource, SwitchReading
from meetpunt.report.html import render


class DocumentKind(StrEnum):
    """The three documents and their Dutch titles."""

    ANNUAL = "annual"
    VZC = "vzc"
    FINAL = "final"

    @property
    def dutch_title(self) -> str:
        """The Dutch title on the document."""
        return {
            DocumentKind.ANNUAL: "Jaarafrekening",
            DocumentKind.VZC: "Factuur verbruik zonder contract",
            DocumentKind.FINAL: "Eindafrekening",
        }[self]


@dataclass(frozen=True)
class Party:
    """A sender or recipient: name and address lines."""

    name: str
    address: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    """Sender only: KvK number, phone, web, e-mail."""


@dataclass(frozen=True)
class MarketDocument:
    """What a document shows."""

    kind: DocumentKind
    reference: str
    issued: date
    sender: Party
    recipient: Party
    ean: str
    invoice: Invoice
    settlement: Settlement | None = None
    readings: tuple[SwitchReading, ...] = ()
    contract: ContractTerms | None = None
    """The supplier's contract, named on the document (none for a VZC invoice)."""
    objection: str = (
        "Bent u het niet eens met deze factuur? Laat het ons binnen 2 maanden na de "
        "factuurdatum schriftelijk weten, met het referentienummer, waarom u het er niet "
        "mee eens bent en de meterstanden die u zelf heeft. Komen wij er samen niet uit, "
        "dan kunt u uw klacht binnen 12 maanden voorleggen aan De Geschillencommissie "
        "Energie, www.degeschillencommissie.nl. Het deel van het bedrag waar u het niet "
        "mee eens bent hoeft u tot de uitkomst niet te betalen."
    )
    notes: tuple[str, ...] = field(default=())


def euro(value: Decimal) -> str:
    """Dutch money: € 1.234,56 (minus sign before the symbol)."""
    sign = "-" if value < 0 else ""
    whole, cents = f"{abs(value):,.2f}".split(".")
    return f"{sign}€ {whole.replace(',', '.')},{cents}"


def number(value: Decimal) -> str:
    """Dutch number with up to 3 decimals: 1.234,5."""
    text = f"{value:,.3f}".rstrip("0").rstrip(".")
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def number_6(value: Decimal) -> str:
    """A factor the Dutch way with 4 to 6 decimals: 1,0192, 1,0000, 1,020163."""
    text = f"{value:.6f}"
    while text.endswith("0") and len(text.split(".")[1]) > 4:
        text = text[:-1]
    return text.replace(".", ",")


def day(value: date) -> str:
    """A date the Dutch way: 1 juli 2026."""
    months = [
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ]
    return f"{value.day} {months[value.month - 1]} {value.year}"


def price(value: Decimal) -> str:
    """A unit price: sign before the symbol, 2 to 5 decimals (-€ 0,15; € 1,42466)."""
    sign = "-" if value < 0 else ""
    text = f"{abs(value):.5f}".rstrip("0")
    whole, decimals = text.split(".")
    return f"{sign}€ {whole},{decimals.ljust(2, '0')}"


def contract_label(terms: ContractTerms) -> str:
    """The contract as the customer knows it (MKT-1, MKT-2): its reference and kind; a
    model contract by its name, as the customer chose it."""
    if terms.model is not None:
        kind = terms.model.dutch_name
    else:
        kind = {
            "fixed": "Vast contract",
            "variable": "Variabel contract",
            "dynamic": "Dynamisch contract",
        }[terms.contract_type.value]
    if terms.end is not None:
        kind += f", tot {day(terms.end)}"
    return f"{terms.reference}: {kind}"


def _line_view(line: InvoiceLine) -> dict[str, str]:
    return {
        "description": line.description,
        "quantity": f"{number(line.quantity)} {line.unit}",
        "unit_price": "" if line.unit_price is None else price(line.unit_price),
        "amount": euro(line.amount),
    }


def render_html(doc: MarketDocument) -> str:
    """The document as a standalone HTML page (Dutch)."""
    inv = doc.invoice
    parts = [
        {
            "label": f"{day(p.first)} t/m {day(date.fromordinal(p.end.toordinal() - 1))}",
            "regime": "gas"
            if inv.gas_volumes
            else "salderen"
            if p.regime.value == "netting"
            else "afname en teruglevering apart",
            "lines": [_line_view(line) for line in inv.lines if line.part == p.index],
        }
        for p in inv.parts
    ]
    settlement = None
    if doc.settlement is not None:
        s = doc.settlement
        settlement = {
            "paid": euro(s.advances_paid),
            "balance": euro(abs(s.balance)),
            "to_pay": s.balance >= 0,
            "new_advance": euro(s.new_advance),
        }
    labels = {p.index: part["label"] for p, part in zip(inv.parts, parts, strict=True)}
    gas_volumes = [
        {
            "label": labels[g.part],
            "measured": f"{number(g.measured)} m³",
            "factor": number_6(g.factor),
            "converted": f"{number(g.converted)} m³",
        }
        for g in inv.gas_volumes
    ]
    gas_reference = (
        f"{number(inv.gas_volumes[0].reference_mj_per_m3)} MJ/m³" if inv.gas_volumes else ""
    )
    readings = [
        {
            "day": day(r.day),
            "registers": ", ".join(
                f"{k}: {number(v)} {'m³' if k == GAS_REGISTER else 'kWh'}"
                for k, v in r.registers.items()
            ),
            "source": "geschat (traditionele meter)"
            if r.estimated
            else "slimme meter"
            if r.source is ReadingSource.SMART_METER
            else "opgenomen",
        }
        for r in doc.readings
    ]
    return render(
        "market_document.html.j2",
        title=doc.kind.dutch_title,
        kind=doc.kind.value,
        reference=doc.reference,
        issued=day(doc.issued),
        sender=doc.sender,
        recipient=doc.recipient,
        ean=doc.ean,
        contract=contract_label(doc.contract) if doc.contract is not None else "",
        period=f"{day(inv.first)} t/m {day(date.fromordinal(inv.end.toordinal() - 1))}",
        parts=parts,
        subtotal=euro(inv.subtotal),
        vat_percent=number(inv.vat_rate * 100),
        vat=euro(inv.vat),
        total=euro(inv.total),
        settlement=settlement,
        readings=readings,
        gas_volumes=gas_volumes,
        gas_reference=gas_reference,
        objection=doc.objection,
        notes=list(doc.notes) + [f"Nog niet bevestigd: {u}" for u in inv.unconfirmed_nl],
    )


@dataclass(frozen=True)
class Pdf:
    """A rendered PDF and its number of pages."""

    data: bytes
    pages: int


def render_pdf(html: str) -> Pdf:
    """Print-ready A4 PDF of a rendered document (WeasyPrint)."""
    from weasyprint import HTML  # imported here: loading pango costs ~0.5 s

    rendered = HTML(string=html).render()
    data = rendered.write_pdf()
    assert isinstance(data, bytes)
    return Pdf(data, len(rendered.pages))
