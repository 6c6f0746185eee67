"""``meetpunt market switch|move|terminate|invoice`` (issue 20, MKT-1..7).

Thin: parses, records switches, moves and terminations in the register's contract
history (one transaction each, a refused new contract leaves the old one in force),
prices an invoice with :mod:`meetpunt.market` and renders the Dutch documents.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from meetpunt.app.market import meter_reading, store_reading
from meetpunt.app.register import register_session
from meetpunt.cli.common import (
    DbOption,
    JsonOption,
    StoreOption,
    input_error,
    make_console,
    parse_day,
)
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, SupplyContract, TariffKind
from meetpunt.domain.findings import Finding
from meetpunt.errors import MarketError
from meetpunt.jsonout import print_json
from meetpunt.market.pricefile import read_prices
from meetpunt.market.pricing import ContractTerms, PriceSet, invoice, require_terms, settle
from meetpunt.market.rules import contract_rules, market_tariffs
from meetpunt.market.switching import (
    ReadingSource,
    SwitchReading,
    switch_reading,
    termination_end,
    termination_fee,
)
from meetpunt.market.terms import read_terms, read_usage
from meetpunt.report.documents import DocumentKind, MarketDocument, Party, render_html, render_pdf
from meetpunt.rulebook import offpeak_calendar

market_app = typer.Typer(help="Contracts, switching and invoices (MKT-1..7).", no_args_is_help=True)
console = make_console()

CommodityOption = Annotated[
    Commodity | None, typer.Option(help="electricity or gas, when the EAN has both.")
]
ReadingOption = Annotated[
    str | None,
    typer.Option(
        help="The smart meter's reading of the day (kWh, 1.8.1=123,1.8.2=456) when the hub "
        "has none; otherwise it is read from the hub through the gate."
    ),
]
LastReadingOption = Annotated[
    str | None,
    typer.Option(help="Traditional meter: the last known reading (1.8.0=12000) to estimate from."),
]
LastDayOption = Annotated[str | None, typer.Option(help="Day of --last-reading (YYYY-MM-DD).")]
YearlyOption = Annotated[
    str | None, typer.Option(help="Yearly volume per register (1.8.0=3500) for the estimate.")
]


def _registers(text: str | None, option: str) -> dict[str, Decimal] | None:
    if text is None:
        return None
    out: dict[str, Decimal] = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = Decimal(value.strip())
        except InvalidOperation:
            raise input_error(
                "CLI.reading", f"{option}: {item!r} is not register=value", "write 1.8.1=123"
            ) from None
    return out


def _reading(
    day: date,
    meter: MeterType,
    reading: str | None,
    last_reading: str | None,
    last_day: str | None,
    yearly: str | None,
) -> SwitchReading | None:
    """The day's reading: given (smart meter) or estimated (marked so); None if neither."""
    if reading is None and last_reading is None:
        return None
    return switch_reading(
        day,
        meter,
        _registers(reading, "--reading") if meter is MeterType.SMART else None,
        _registers(last_reading, "--last-reading"),
        parse_day(last_day, "--last-day") if last_day else None,
        _registers(yearly, "--yearly"),
    )


def _contract_json(c: SupplyContract | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "ean": c.allocation_point_ean,
        "supplier": c.supplier,
        "holder": c.contract_holder,
        "type": c.contract_type.value,
        "tariff": c.tariff.value,
        "start": c.start.isoformat(),
        "end": c.end.isoformat() if c.end else None,
    }


def _reading_json(r: SwitchReading | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "day": r.day.isoformat(),
        "registers": {k: str(v) for k, v in r.registers.items()},
        "source": r.source.value,
        "estimated": r.estimated,
    }


def _report(what: str, body: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json({"event": what, **body})
        return
    console.print(f"[bold]{what}[/bold]")
    for key, value in body.items():
        console.print(f"  {key}: {value}")


OBIS_REGISTERS = {
    "1.8.1": "import_t1_wh",
    "1.8.2": "import_t2_wh",
    "2.8.1": "export_t1_wh",
    "2.8.2": "export_t2_wh",
    "1.8.0": "import_t1_wh",
    "2.8.0": "export_t1_wh",
}
"""A register given on the command line (kWh, OBIS name) as the hub stores it (Wh); a
single-rate register (x.8.0) is kept in the T1 column."""


def _hub_registers(reading: SwitchReading) -> dict[str, int | None]:
    """The CLI's registers (kWh by OBIS name) in the hub's columns (Wh); MKT-5."""
    out: dict[str, int | None] = {}
    for name, value in reading.registers.items():
        column = OBIS_REGISTERS.get(name)
        if column is None:
            raise input_error(
                "CLI.reading",
                f"register {name!r} is not one of {', '.join(OBIS_REGISTERS)}",
                "name registers by OBIS code, e.g. 1.8.1=123",
            )
        out[column] = int(value * 1000)
    return out


def _switch_or_move(
    event: str,
    ean: str,
    day: str,
    supplier: str,
    holder: str,
    contract_type: ContractType,
    tariff: TariffKind,
    end: str | None,
    commodity: Commodity | None,
    readings: tuple[str | None, str | None, str | None, str | None],
    db: str | None,
    store: Path | None,
    as_json: bool,
) -> None:
    on = parse_day(day, "--day")
    new = SupplyContract(
        allocation_point_ean=ean,
        supplier=supplier,
        contract_holder=holder,
        contract_type=contract_type,
        tariff=tariff,
        start=on,
        end=parse_day(end, "--end") if end else None,
    )
    with register_session(db, create=False) as session:
        version = session.connection_at(ean, on, commodity)
        meter = version.attributes.meter_type if version is not None else MeterType.NONE
        connection = session.connection_id(ean, commodity)
        reading: SwitchReading | None = None
        if meter is not MeterType.SMART:
            # a traditional meter: the estimate (or the refusal) before anything changes
            reading = _reading(on, meter, *readings)
        before = session.contract_on(ean, on - timedelta(days=1), commodity)
        if event == "move" and before is not None and before.contract_holder == holder:
            finding = Finding(
                "MKT-5.move_holder",
                f"a move hands the point to a new holder; {holder!r} already holds it",
            )
            raise MarketError(finding.message, [finding])
        old = session.switch_contract(new, commodity)
    now = datetime.now(UTC)
    stored: dict[str, int | None] | None = None
    refused: list[str] = []
    if meter is MeterType.SMART:
        # the smart meter's daily reading at local midnight, through the gate (PRV-1)
        stored, refused = meter_reading(db, store, event, supplier, ean, on, now)
        if stored is not None:
            reading = SwitchReading(
                on,
                {k: Decimal(v) for k, v in stored.items() if v is not None},
                ReadingSource.SMART_METER,
            )
        else:
            reading = _reading(on, MeterType.SMART, *readings)
    if reading is not None and stored is None:
        stored = _hub_registers(reading)
    batch = None
    if reading is not None and stored is not None:
        batch = store_reading(store, connection, on, stored, event, reading.estimated, now)
    _report(
        event,
        {
            "ean": ean,
            "day": on.isoformat(),
            "old_contract": _contract_json(old),
            "new_contract": _contract_json(new),
            "reading": _reading_json(reading),
            "reading_batch": batch,
            "reading_note": (
                "stored for the old and the new supplier's change feed (switch_readings)"
                if batch is not None
                else "no reading of the day in the hub"
                + (f" (refused: {', '.join(refused)})" if refused else "")
                + " and none to estimate from: give --last-reading, --last-day and --yearly"
            ),
        },
        as_json,
    )


TypeOption = Annotated[ContractType, typer.Option("--type", help="fixed, variable or dynamic.")]
TariffOption = Annotated[TariffKind, typer.Option(help="single or double (double: digital meter).")]


@market_app.command("switch")
def market_switch(
    ean: Annotated[str, typer.Argument(help="The allocation point's EAN.")],
    day: Annotated[str, typer.Option(help="Switch day (YYYY-MM-DD): the new contract's start.")],
    supplier: Annotated[str, typer.Option(help="The new supplier's GLN.")],
    holder: Annotated[str, typer.Option(help="The contract holder.")],
    contract_type: TypeOption = ContractType.VARIABLE,
    tariff: TariffOption = TariffKind.SINGLE,
    end: Annotated[str | None, typer.Option(help="End day of a fixed contract.")] = None,
    commodity: CommodityOption = None,
    reading: ReadingOption = None,
    last_reading: LastReadingOption = None,
    last_day: LastDayOption = None,
    yearly: YearlyOption = None,
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Switch supplier on a day: the old contract ends, the new one starts (MKT-5)."""
    _switch_or_move(
        "switch", ean, day, supplier, holder, contract_type, tariff, end, commodity,
        (reading, last_reading, last_day, yearly), db, store, as_json,
    )  # fmt: skip


@market_app.command("move")
def market_move(
    ean: Annotated[str, typer.Argument(help="The allocation point's EAN.")],
    day: Annotated[str, typer.Option(help="Move day (YYYY-MM-DD).")],
    supplier: Annotated[str, typer.Option(help="The new occupant's supplier (GLN).")],
    holder: Annotated[str, typer.Option(help="The new occupant, the new contract holder.")],
    contract_type: TypeOption = ContractType.VARIABLE,
    tariff: TariffOption = TariffKind.SINGLE,
    end: Annotated[str | None, typer.Option(help="End day of a fixed contract.")] = None,
    commodity: CommodityOption = None,
    reading: ReadingOption = None,
    last_reading: LastReadingOption = None,
    last_day: LastDayOption = None,
    yearly: YearlyOption = None,
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """A move: the old occupant's contract ends, the new occupant's starts (MKT-5)."""
    _switch_or_move(
        "move", ean, day, supplier, holder, contract_type, tariff, end, commodity,
        (reading, last_reading, last_day, yearly), db, store, as_json,
    )  # fmt: skip


@market_app.command("terminate")
def market_terminate(
    ean: Annotated[str, typer.Argument(help="The allocation point's EAN.")],
    notice_day: Annotated[str, typer.Option(help="Day the customer gave notice.")],
    end: Annotated[str | None, typer.Option(help="Requested end day (exclusive).")] = None,
    notice_days: Annotated[int, typer.Option(help="The contract's notice period.")] = 30,
    contract_price: Annotated[
        str | None, typer.Option(help="Fixed contracts: the contract's price per kWh.")
    ] = None,
    reference_price: Annotated[
        str | None, typer.Option(help="The supplier's current price of a comparable product.")
    ] = None,
    remaining_volume: Annotated[
        str | None, typer.Option(help="Expected volume for the rest of the term.")
    ] = None,
    commodity: CommodityOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Terminate the contract in force: the end by the notice period (at most 30 days),
    the termination fee by the rule at the contract's start (fixed contracts only)."""
    notice = parse_day(notice_day, "--notice-day")
    rules = contract_rules()
    with register_session(db, create=False) as session:
        current = session.contract_on(ean, notice, commodity)
        if current is None:
            finding = Finding("REG-6.no_contract", f"{ean} has no contract on {notice}")
            raise MarketError(finding.message, [finding])
        version = session.connection_at(ean, notice, commodity)
        price = Decimal(contract_price) if contract_price else Decimal(0)
        terms = ContractTerms(
            reference=f"{ean}/{current.start}",
            commodity=commodity or Commodity.ELECTRICITY,
            contract_type=current.contract_type,
            tariff=TariffKind.SINGLE,
            meter_type=version.attributes.meter_type if version else MeterType.NONE,
            start=current.start,
            end=current.end,
            prices=(PriceSet(current.start, single=price),),
            grid_class="",
            notice_days=notice_days,
        )
        until = termination_end(notice, parse_day(end, "--end") if end else None, terms, rules)
        fee = None
        if current.contract_type is ContractType.FIXED and current.end is not None:
            fee = termination_fee(
                terms,
                until,
                rules,
                Decimal(reference_price) if reference_price else None,
                Decimal(remaining_volume) if remaining_volume else None,
            )
        if current.end is None or current.end > until:
            session.end_contract(ean, until, commodity)
    _report(
        "terminate",
        {
            "ean": ean,
            "contract": _contract_json(replace(current, end=until)),
            "notice_day": notice.isoformat(),
            "ends": until.isoformat(),
            "termination_fee_eur": str(fee) if fee is not None else "none (not a fixed contract)",
        },
        as_json,
    )


@market_app.command("invoice")
def market_invoice(
    contract: Annotated[Path, typer.Option(help="Contract terms (TOML; meetpunt.market.terms).")],
    usage: Annotated[Path, typer.Option(help="Usage CSV: start_utc,import,export.")],
    first: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    until: Annotated[str, typer.Option("--to", help="Day after the last (exclusive).")],
    ean: Annotated[str, typer.Option(help="The connection's EAN, on the document.")] = "",
    prices: Annotated[Path | None, typer.Option(help="Day-ahead price CSV (dynamic).")] = None,
    kind: Annotated[DocumentKind, typer.Option(help="annual, vzc or final.")] = DocumentKind.ANNUAL,
    advances: Annotated[
        str | None, typer.Option(help="Advances paid, comma-separated EUR (annual settlement).")
    ] = None,
    sender: Annotated[str, typer.Option(help="Sender's name.")] = "meetpunt",
    html: Annotated[Path | None, typer.Option(help="Write the document as HTML here.")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Write the document as PDF here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Price usage under a contract into invoice lines; the annual settlement with a
    proposed advance; optionally the Dutch document as HTML and PDF."""
    tariffs, rules = market_tariffs(), contract_rules()
    terms = read_terms(contract)
    require_terms(terms, tariffs, rules.max_notice_days)
    dynamic = read_prices(prices) if prices else None
    inv = invoice(
        terms,
        read_usage(usage),
        parse_day(first, "--from"),
        parse_day(until, "--to"),
        tariffs,
        offpeak_calendar(),
        dynamic,
    )
    paid = [Decimal(a) for a in advances.split(",")] if advances else []
    settlement = settle(inv, paid) if kind is DocumentKind.ANNUAL else None
    if html or pdf:
        doc = MarketDocument(
            kind=kind,
            reference=f"{terms.reference}-{inv.first:%Y%m%d}",
            issued=date.today(),
            sender=Party(sender),
            recipient=Party(terms.holder or "klant"),
            ean=ean,
            invoice=inv,
            settlement=settlement,
        )
        page = render_html(doc)
        if html:
            html.write_text(page, encoding="utf-8")
        if pdf:
            pdf.write_bytes(render_pdf(page).data)
    body: dict[str, Any] = {
        "reference": terms.reference,
        "from": inv.first.isoformat(),
        "to": (inv.end - timedelta(days=1)).isoformat(),
        "parts": [
            {"from": p.first.isoformat(), "to": p.end.isoformat(), "regime": p.regime.value}
            for p in inv.parts
        ],
        "lines": [
            {
                "part": x.part,
                "description": x.description,
                "quantity": str(x.quantity),
                "unit": x.unit,
                "amount": str(x.amount),
            }
            for x in inv.lines
        ],
        "subtotal": str(inv.subtotal),
        "vat": str(inv.vat),
        "total": str(inv.total),
        "unconfirmed": list(inv.unconfirmed),
    }
    if settlement:
        body["advances_paid"] = str(settlement.advances_paid)
        body["balance"] = str(settlement.balance)
        body["new_advance"] = str(settlement.new_advance)
    _report("invoice", body, as_json)
