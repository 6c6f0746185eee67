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
from meetpunt.market.profiles import standard_profiles
from meetpunt.market.rules import contract_rules, market_tariffs
from meetpunt.market.switching import (
    ReadingSource,
    SwitchReading,
    switch_reading,
    termination_end,
    termination_fee,
    usage_between,
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
        help="The smart meter's reading of the day (kWh, 1.8.1=123,1.8.2=456; gas m³, "
        "24.2.1=1234.567) when the hub has none; otherwise it is read from the hub through "
        "the gate."
    ),
]
LastReadingOption = Annotated[
    str | None,
    typer.Option(
        help="Traditional meter: the last known reading (1.8.0=12000; gas 24.2.1=5400) to "
        "estimate from."
    ),
]
LastDayOption = Annotated[str | None, typer.Option(help="Day of --last-reading (YYYY-MM-DD).")]
YearlyOption = Annotated[
    str | None,
    typer.Option(help="Yearly volume per register (1.8.0=3500; gas 24.2.1=1200) for the estimate."),
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

GAS_REGISTER = "24.2.1"
"""The gas meter's register (m³, OBIS 0-n:24.2.1 of the M-Bus channel), stored in dm3."""


def _columns(commodity: Commodity) -> dict[str, str]:
    """The registers a command line may name for ``commodity``, with the hub's column."""
    return {GAS_REGISTER: "reading_dm3"} if commodity is Commodity.GAS else OBIS_REGISTERS


def _check_names(registers: dict[str, Decimal] | None, commodity: Commodity) -> None:
    """Refuse a register that ``commodity``'s meter does not have (before anything
    changes in the register)."""
    known = _columns(commodity)
    for name in registers or {}:
        if name not in known:
            raise input_error(
                "CLI.reading",
                f"register {name!r} of a {commodity.value} meter is not one of {', '.join(known)}",
                f"name registers by OBIS code, e.g. {next(iter(known))}=123",
            )


def _hub_registers(reading: SwitchReading, commodity: Commodity) -> dict[str, int | None]:
    """The CLI's registers (kWh, or m³ for gas, by OBIS name) in the hub's columns (Wh,
    dm3); MKT-5."""
    _check_names(reading.registers, commodity)
    known = _columns(commodity)
    return {known[name]: int(value * 1000) for name, value in reading.registers.items()}


def _from_hub(stored: dict[str, int | None], commodity: Commodity) -> dict[str, Decimal]:
    """A reading the hub holds as the registers both suppliers see: electricity in the
    hub's columns (Wh), gas as the OBIS register in m³."""
    if commodity is Commodity.GAS:
        dm3 = stored.get("reading_dm3")
        return {} if dm3 is None else {GAS_REGISTER: Decimal(dm3) / 1000}
    return {k: Decimal(v) for k, v in stored.items() if v is not None}


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
        kind = version.commodity if version is not None else commodity or Commodity.ELECTRICITY
        names = ("--reading", "--last-reading", "", "--yearly")
        for text, option in zip(readings, names, strict=True):
            if option:
                _check_names(_registers(text, option), kind)
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
        # (gas: the gas meter on its M-Bus, from the hourly gas values)
        stored, refused = meter_reading(db, store, event, supplier, ean, on, now, kind)
        if stored is not None:
            reading = SwitchReading(on, _from_hub(stored, kind), ReadingSource.SMART_METER)
        else:
            reading = _reading(on, MeterType.SMART, *readings)
    if reading is not None and stored is None:
        stored = _hub_registers(reading, kind)
    batch = None
    if reading is not None and stored is not None:
        batch = store_reading(store, connection, on, stored, event, reading.estimated, now)
    _report(
        event,
        {
            "ean": ean,
            "commodity": kind.value,
            "day": on.isoformat(),
            "old_contract": _contract_json(old),
            "new_contract": _contract_json(new),
            "reading": _reading_json(reading),
            "reading_batch": batch,
            "reading_note": (
                "stored for the old and the new supplier's change feed ("
                + ("gas_switch_readings" if kind is Commodity.GAS else "switch_readings")
                + ")"
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


def _invoice_readings(
    terms: ContractTerms,
    first: date,
    end: date,
    opening: str | None,
    closing: str | None,
    estimated: str,
) -> tuple[SwitchReading, ...]:
    """The opening and closing readings of an invoice priced from readings (a final
    invoice closing on the switch reading, a settlement opening on it; MKT-4/5), marked
    estimated as said; empty when neither is given."""
    if opening is None and closing is None:
        return ()
    if opening is None or closing is None:
        raise input_error(
            "CLI.usage",
            "an invoice from readings needs both --opening-reading and --closing-reading",
            "give both, or --usage",
        )
    if terms.contract_type is ContractType.DYNAMIC:
        raise input_error(
            "MKT-1.dynamic_readings",
            "a dynamic contract is priced per quarter-hour or hour at that slot's price; two "
            "readings do not say when the use fell",
            "give the metered intervals as --usage",
        )
    marked = {x.strip() for x in estimated.split(",") if x.strip()}
    if "both" in marked:
        marked = {"opening", "closing"}
    if not marked <= {"opening", "closing"}:
        raise input_error(
            "CLI.reading", f"--estimated {estimated!r}", "write opening, closing or both"
        )
    out = []
    for day, text, name in ((first, opening, "opening"), (end, closing, "closing")):
        registers = _registers(text, f"--{name}-reading") or {}
        _check_names(registers, terms.commodity)
        if (
            terms.tariff is TariffKind.DOUBLE
            and terms.commodity is Commodity.ELECTRICITY
            and not {"1.8.1", "1.8.2"} <= set(registers)
        ):
            raise input_error(
                "MKT-2.double_tariff_readings",
                f"--{name}-reading: a double-tariff invoice from readings needs both import "
                f"registers, 1.8.1 (off-peak, T1) and 1.8.2 (normal, T2); got {text!r}",
                "give 1.8.1=..,1.8.2=.. (and 2.8.1, 2.8.2 with solar), or --usage",
            )
        source = (
            ReadingSource.ESTIMATED
            if name in marked
            else ReadingSource.SMART_METER
            if terms.meter_type is MeterType.SMART
            else ReadingSource.READ
        )
        out.append(SwitchReading(day, registers, source))
    return tuple(out)


@market_app.command("invoice")
def market_invoice(
    contract: Annotated[Path, typer.Option(help="Contract terms (TOML; meetpunt.market.terms).")],
    first: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    until: Annotated[str, typer.Option("--to", help="Day after the last (exclusive).")],
    usage: Annotated[
        Path | None, typer.Option(help="Usage CSV: start_utc,import,export (or the readings).")
    ] = None,
    opening_reading: Annotated[
        str | None,
        typer.Option(
            help="Instead of --usage: the reading at local midnight of --from (gas "
            "24.2.1=5000.123 m³; electricity 1.8.0=12000 kWh), e.g. the switch reading."
        ),
    ] = None,
    closing_reading: Annotated[
        str | None,
        typer.Option(help="The reading at local midnight of --to (e.g. the switch reading)."),
    ] = None,
    estimated: Annotated[
        str,
        typer.Option(
            help="Which readings are estimates (traditional meter), marked on the document: "
            "opening, closing or both."
        ),
    ] = "",
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
    start_day, end_day = parse_day(first, "--from"), parse_day(until, "--to")
    readings = _invoice_readings(
        terms, start_day, end_day, opening_reading, closing_reading, estimated
    )
    if usage is not None and not readings:
        used = read_usage(usage)
    elif usage is None and readings:
        used = usage_between(
            readings[0],
            readings[1],
            terms.commodity,
            standard_profiles(),
            offpeak_calendar(),
            terms.region,
        )
    else:
        raise input_error(
            "CLI.usage",
            "give the usage either as --usage or as --opening-reading and --closing-reading",
            "one of the two, not both and not neither",
        )
    inv = invoice(terms, used, start_day, end_day, tariffs, offpeak_calendar(), dynamic)
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
            readings=readings,
            contract=terms,
        )
        page = render_html(doc)
        if html:
            html.write_text(page, encoding="utf-8")
        if pdf:
            pdf.write_bytes(render_pdf(page).data)
    body: dict[str, Any] = {
        "reference": terms.reference,
        "model": terms.model.value if terms.model is not None else None,
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
        "gas_volumes": [
            {
                "part": g.part,
                "measured_m3": str(g.measured),
                "factor": str(g.factor),
                "converted_m3": str(g.converted),
                "reference_mj_per_m3": str(g.reference_mj_per_m3),
            }
            for g in inv.gas_volumes
        ],
        "readings": [_reading_json(r) for r in readings],
    }
    if settlement:
        body["advances_paid"] = str(settlement.advances_paid)
        body["balance"] = str(settlement.balance)
        body["new_advance"] = str(settlement.new_advance)
    _report("invoice", body, as_json)
