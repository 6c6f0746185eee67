"""Consumption into invoice lines (MKT-1..4): the pure pricing engine.

A period (local days, end exclusive) is cut into *parts* at every 1 January (the year's
tax and grid amounts), at the end of netting (``market_tariffs.netting.netting_ends``,
1 January 2027) and at every price change of the contract (variable contracts change on
1 January and 1 July). Each part is priced on its own:

- **netting part** (before 1 January 2027, MKT-3): import and export are set off at the
  same price. Single tariff: net = import - export; a positive net is charged at the
  single price, a surplus earns the contract's feed-in compensation. Double tariff: each
  register is netted on its own; a surplus on one register offsets consumption on the
  other kWh for kWh; what is left over earns the feed-in compensation. Dynamic: every
  interval's (import - export) at that interval's price plus the markup. Energy tax on
  max(0, import - export).
- **separate part** (from 1 January 2027): every imported kWh at its price and taxed;
  every exported kWh earns the feed-in compensation (dynamic: the interval's day-ahead
  price), feed-in costs on every exported kWh.

Fixed amounts (grid charges, standing charge, tax reduction) are pro rata per day of
the part's calendar year; energy-tax brackets are pro rata the same way. Each line is
rounded to cents (half up); VAT is charged on the sum of the lines.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from meetpunt.domain.calendar import OffPeakCalendar, Tariff, local_date_of, local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, ModelContract, TariffKind
from meetpunt.domain.findings import Finding
from meetpunt.errors import MarketError
from meetpunt.market.rules import Bracket, GasConversion, MarketTariffs, YearTariffs

CENT = Decimal("0.01")
ZERO = Decimal(0)


def money(value: Decimal) -> Decimal:
    """Round to cents, half up (as invoices do)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def days_in_year(year: int) -> int:
    """365 or 366."""
    return (date(year + 1, 1, 1) - date(year, 1, 1)).days


class Regime(StrEnum):
    """How import and export meet in a part of the period (MKT-3)."""

    NETTING = "netting"
    SEPARATE = "separate"


@dataclass(frozen=True, slots=True)
class PriceSet:
    """A contract's prices from ``valid_from`` on (EUR per kWh or m³, excl. VAT).

    Single tariff uses ``single``; double ``normal`` and ``offpeak``; dynamic the
    day-ahead price plus ``markup``. Gas uses ``single`` (dynamic: daily price + markup).
    """

    valid_from: date
    single: Decimal = ZERO
    normal: Decimal = ZERO
    offpeak: Decimal = ZERO
    markup: Decimal = ZERO
    feed_in: Decimal = ZERO
    feed_in_cost: Decimal = ZERO
    standing_per_year: Decimal = ZERO

    @property
    def bare_supply_price(self) -> Decimal:
        """The lowest agreed bare supply price (kale leveringsprijs) of the set."""
        prices = [p for p in (self.single, self.normal, self.offpeak) if p > 0]
        return min(prices) if prices else ZERO


@dataclass(frozen=True)
class ContractTerms:
    """A supply contract's terms as data (MKT-1, MKT-2, MKT-5)."""

    reference: str
    commodity: Commodity
    contract_type: ContractType
    tariff: TariffKind
    meter_type: MeterType
    start: date
    prices: tuple[PriceSet, ...]
    grid_class: str
    end: date | None = None
    residence: bool = True
    notice_days: int = 30
    multisite: bool = False
    region: str | None = None
    holder: str = ""
    supplier: str = ""
    gas_area: str | None = None
    """Gas: the grid area (its EAN code) whose calorific factors apply (MKT-1)."""
    temperature_corrected: bool | None = None
    """Gas: whether the meter converts to the reference temperature itself; ``None``:
    a smart meter does, another does not."""
    model: ModelContract | None = None
    """The model contract the terms are (MKT-2), named on the customer's documents."""

    @property
    def meter_converts_temperature(self) -> bool:
        """Whether the gas meter's volume needs no standard temperature factor."""
        if self.temperature_corrected is not None:
            return self.temperature_corrected
        return self.meter_type is MeterType.SMART

    def prices_on(self, day: date) -> PriceSet:
        """The price set in force on ``day``."""
        held = [p for p in self.prices if p.valid_from <= day]
        if not held:
            finding = Finding(
                "MKT-1.no_price",
                f"contract {self.reference} has no prices on {day}; add a price set from that day",
            )
            raise MarketError(finding.message, [finding])
        return max(held, key=lambda p: p.valid_from)


def check_terms(
    terms: ContractTerms, tariffs: MarketTariffs, max_notice_days: int
) -> list[Finding]:
    """Every rule the contract's terms break (MKT-1, MKT-2, MKT-3, MKT-5)."""
    findings: list[Finding] = []
    if terms.tariff is TariffKind.DOUBLE and terms.meter_type not in (
        MeterType.SMART,
        MeterType.DIGITAL,
    ):
        findings.append(
            Finding(
                "MKT-2.double_tariff",
                f"contract {terms.reference}: double tariff needs a digital meter; this "
                f"connection has a {terms.meter_type.value} meter. Offer single tariff or "
                "place a smart meter first",
            )
        )
    if terms.notice_days > max_notice_days and not terms.multisite:
        findings.append(
            Finding(
                "MKT-5.notice_period",
                f"contract {terms.reference}: notice period {terms.notice_days} days exceeds "
                f"the {max_notice_days} days allowed for small consumers (only a multisite "
                "contract may have a longer one)",
            )
        )
    if terms.contract_type is ContractType.FIXED:
        if terms.end is None:
            findings.append(
                Finding(
                    "MKT-1.fixed_end",
                    f"contract {terms.reference}: a fixed contract needs an end date",
                )
            )
        if len({(p.single, p.normal, p.offpeak) for p in terms.prices}) > 1:
            findings.append(
                Finding(
                    "MKT-1.fixed_price",
                    f"contract {terms.reference}: a fixed contract keeps its price until its "
                    "end date; it has more than one price set",
                )
            )
    if terms.contract_type is not ContractType.DYNAMIC and terms.commodity is Commodity.ELECTRICITY:
        for p in terms.prices:
            floor = tariffs.feed_in_floor_share * p.bare_supply_price
            if p.valid_from < tariffs.feed_in_floor_until and p.feed_in < floor:
                findings.append(
                    Finding(
                        "MKT-3.feed_in_floor",
                        f"contract {terms.reference}: feed-in compensation {p.feed_in} from "
                        f"{p.valid_from} is below {tariffs.feed_in_floor_share} x the bare "
                        f"supply price {p.bare_supply_price} (= {floor}) required until "
                        f"{tariffs.feed_in_floor_until}",
                    )
                )
    return findings


def require_terms(terms: ContractTerms, tariffs: MarketTariffs, max_notice_days: int) -> None:
    """Raise :class:`MarketError` with every broken rule of the terms."""
    findings = check_terms(terms, tariffs, max_notice_days)
    if findings:
        raise MarketError(f"contract refused: {findings[0].message}", findings)


@dataclass(frozen=True)
class Usage:
    """Metered intervals: UTC start, imported and exported kWh (or m³ for gas).

    One row per interval (quarter-hour, hour or day, or a longer span for constructed
    cases); an interval belongs to the local day its start falls on.
    """

    starts: tuple[datetime, ...]
    imported: tuple[Decimal, ...]
    exported: tuple[Decimal, ...]

    @classmethod
    def of(cls, rows: Iterable[tuple[datetime, Decimal | int | str, Decimal | int | str]]) -> Usage:
        """From ``(start_utc, import, export)`` rows."""
        starts, imp, exp = [], [], []
        for start, i, e in rows:
            if start.tzinfo is None:
                raise MarketError(f"usage interval {start} has no time zone; give UTC")
            starts.append(start)
            imp.append(Decimal(str(i)))
            exp.append(Decimal(str(e)))
            if imp[-1] < 0 or exp[-1] < 0:
                finding = Finding(
                    "MKT-3.negative_usage",
                    f"usage at {start}: import {i} / export {e} is negative; "
                    "give consumption as positive amounts per direction",
                )
                raise MarketError(finding.message, [finding])
        return cls(tuple(starts), tuple(imp), tuple(exp))


@dataclass(frozen=True)
class DynamicPrices:
    """Day-ahead prices (EUR per kWh or m³ excl. VAT) by UTC start of each slot."""

    slot: timedelta
    prices: Mapping[datetime, Decimal]

    def price_at(self, instant: datetime) -> Decimal:
        """The price of the slot holding ``instant``; refuse when the file lacks it."""
        if self.slot >= timedelta(days=1):
            start = local_midnight_utc(local_date_of(instant))  # gas: per local day
        else:
            epoch = datetime(2000, 1, 1, tzinfo=UTC)
            start = epoch + ((instant - epoch) // self.slot) * self.slot
        try:
            return self.prices[start]
        except KeyError:
            finding = Finding(
                "MKT-1.dynamic_price_missing",
                f"the price file has no price for the slot starting {start.isoformat()}; "
                "add that slot to the price file",
            )
            raise MarketError(finding.message, [finding]) from None


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line: what, how much, at what unit price, amount excl. VAT."""

    part: int
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Part:
    """A stretch of the period priced under one regime, year and price set."""

    index: int
    first: date
    end: date
    regime: Regime
    year: int
    imported: Decimal
    exported: Decimal

    @property
    def days(self) -> int:
        """Number of local days in the part."""
        return (self.end - self.first).days


@dataclass(frozen=True, slots=True)
class GasVolume:
    """How a part's measured gas became the m³ on the invoice (MKT-1): measured m³ x
    correction factor = m³ at the reference calorific value (35.17 MJ/m³)."""

    part: int
    measured: Decimal
    factor: Decimal
    """The effective factor of the part (its months' factors weighted by use), 6 decimals."""
    converted: Decimal
    reference_mj_per_m3: Decimal


@dataclass(frozen=True)
class Invoice:
    """Invoice lines of one period and their totals (EUR)."""

    reference: str
    first: date
    end: date
    parts: tuple[Part, ...]
    lines: tuple[InvoiceLine, ...]
    vat_rate: Decimal
    unconfirmed: tuple[str, ...] = ()
    """What of the amounts has no source yet, in English (the operator's --json)."""
    gas_volumes: tuple[GasVolume, ...] = ()
    """Gas: the calorific conversion of each part, shown on the documents."""
    unconfirmed_nl: tuple[str, ...] = ()
    """The same notes in Dutch, in the same order: what the customer's document prints."""

    @property
    def subtotal(self) -> Decimal:
        """Sum of the lines excl. VAT."""
        return sum((line.amount for line in self.lines), ZERO)

    @property
    def vat(self) -> Decimal:
        """VAT on the subtotal, rounded to cents."""
        return money(self.subtotal * self.vat_rate)

    @property
    def total(self) -> Decimal:
        """Total incl. VAT."""
        return self.subtotal + self.vat

    @property
    def days(self) -> int:
        """Number of local days invoiced."""
        return (self.end - self.first).days


def _boundaries(terms: ContractTerms, tariffs: MarketTariffs, first: date, end: date) -> list[date]:
    """Every day inside (first, end) where a new part begins."""
    cuts = {date(y, 1, 1) for y in range(first.year + 1, end.year + 1)}
    cuts.add(tariffs.netting_ends)
    cuts.update(p.valid_from for p in terms.prices)
    return sorted(c for c in cuts if first < c < end)


def _taxed(
    volume: Decimal, brackets: Sequence[Bracket], share: Decimal
) -> list[tuple[int, Decimal, Decimal]]:
    """(bracket number, kWh, rate) for ``volume`` through brackets scaled by ``share``."""
    out: list[tuple[int, Decimal, Decimal]] = []
    lower = ZERO
    left = volume
    for number, bracket in enumerate(brackets, start=1):
        upper = bracket.up_to * share
        room = max(ZERO, upper - lower)
        take = min(left, room)
        if take > 0:
            out.append((number, take, bracket.rate))
        left -= take
        lower = upper
        if left <= 0:
            break
    return out


@dataclass
class _Sums:
    """Import/export per register (T1 off-peak, T2 normal) and money for dynamic intervals."""

    imp: dict[str, Decimal] = field(default_factory=lambda: {"T1": ZERO, "T2": ZERO, "S": ZERO})
    exp: dict[str, Decimal] = field(default_factory=lambda: {"T1": ZERO, "T2": ZERO, "S": ZERO})
    dyn_imp_money: Decimal = ZERO
    dyn_exp_money: Decimal = ZERO
    dyn_exp_bare: Decimal = ZERO
    measured: Decimal = ZERO
    """Gas: the metered m³ before the calorific conversion."""


OTHER_COMMODITY_NOTES = {
    False: ("gas_tax",),
    True: ("electricity_tax", "tax_reduction_per_year"),
}
"""A year's unconfirmed notes (by their rule-file key) that concern only the other
commodity, left off an invoice (an electricity customer need not read of gas tax)."""

M3_STEP = Decimal("0.001")
"""Converted gas volumes are kept to the litre (dm3), as the meter registers them."""


def _sum_usage(
    terms: ContractTerms,
    usage: Usage,
    spans: Sequence[tuple[date, date]],
    calendar: OffPeakCalendar,
    dynamic: DynamicPrices | None,
    conversion: GasConversion | None = None,
) -> list[_Sums]:
    """Import/export per part and register; dynamic intervals at their slot's price.
    Gas is converted per interval by the factor of its local month (MKT-1)."""
    sums = [_Sums() for _ in spans]
    first, end = spans[0][0], spans[-1][1]
    gas = terms.commodity is Commodity.GAS
    converts = terms.meter_converts_temperature
    for start, metered, exp in zip(usage.starts, usage.imported, usage.exported, strict=True):
        day = local_date_of(start)
        if not first <= day < end:
            continue
        s = sums[next(i for i, (a, b) in enumerate(spans) if a <= day < b)]
        imp = metered
        if gas and conversion is not None:
            s.measured += metered
            imp = metered * conversion.factor(terms.gas_area, day, converts)
        if terms.contract_type is ContractType.DYNAMIC:
            assert dynamic is not None
            price = dynamic.price_at(start)
            markup = terms.prices_on(day).markup
            s.dyn_imp_money += imp * (price + markup)
            s.dyn_exp_money += exp * (price + markup)
            s.dyn_exp_bare += exp * price
            key = "S"
        elif terms.tariff is TariffKind.DOUBLE and not gas:
            key = "T1" if calendar.tariff_at(start, terms.region) is Tariff.T1 else "T2"
        else:
            key = "S"
        s.imp[key] += imp
        s.exp[key] += exp
    if gas and conversion is not None:
        for s in sums:
            s.imp["S"] = s.imp["S"].quantize(M3_STEP, rounding=ROUND_HALF_UP)
    return sums


def _gas_notes(
    terms: ContractTerms, tariffs: MarketTariffs, first: date, end: date
) -> list[tuple[str, str]]:
    """What of the gas conversion over ``first`` .. ``end`` is unconfirmed, in English
    and Dutch: the months without a published calorific factor of the area, the standard
    temperature factor."""
    conversion = tariffs.gas_conversion
    notes: list[tuple[str, str]] = []
    month = first.replace(day=1)
    missing: list[str] = []
    while month < end:
        if not conversion.calorific_factor(terms.gas_area, month)[1]:
            missing.append(f"{month:%Y-%m}")
        month = (month + timedelta(days=32)).replace(day=1)
    if missing:
        area = terms.gas_area or "(none given)"
        factor = conversion.default_calorific_factor
        notes.append(
            (
                f"gas: no published calorific factor for area {area} in "
                f"{', '.join(missing)}; factor {factor} used",
                f"gas: geen gepubliceerde correctiefactor voor netgebied "
                f"{terms.gas_area or '(niet opgegeven)'} in {', '.join(missing)}; "
                f"factor {str(factor).replace('.', ',')} gebruikt",
            )
        )
    if not terms.meter_converts_temperature:
        notes.extend((f"gas: {u}", f"gas: {tariffs.dutch_note(u)}") for u in conversion.unconfirmed)
    return notes


def invoice(
    terms: ContractTerms,
    usage: Usage,
    first: date,
    end: date,
    tariffs: MarketTariffs,
    calendar: OffPeakCalendar,
    dynamic: DynamicPrices | None = None,
) -> Invoice:
    """Price ``usage`` on the local days ``first <= D < end`` under ``terms`` (MKT-1..3)."""
    if end <= first:
        raise MarketError(f"invoice period {first} .. {end} is empty; the end is exclusive")
    if terms.contract_type is ContractType.DYNAMIC and dynamic is None:
        finding = Finding(
            "MKT-1.dynamic_price_missing",
            f"contract {terms.reference} is dynamic: give the day-ahead price file",
        )
        raise MarketError(finding.message, [finding])
    if terms.tariff is TariffKind.DOUBLE and terms.meter_type not in (
        MeterType.SMART,
        MeterType.DIGITAL,
    ):
        require_terms(terms, tariffs, 10**6)
    cuts = [first, *_boundaries(terms, tariffs, first, end), end]
    spans = list(itertools.pairwise(cuts))
    gas = terms.commodity is Commodity.GAS
    conversion = tariffs.gas_conversion if gas else None
    sums = _sum_usage(terms, usage, spans, calendar, dynamic, conversion)
    lines: list[InvoiceLine] = []
    parts: list[Part] = []
    unconfirmed: list[tuple[str, str]] = []
    volumes: list[GasVolume] = []
    vat_rate: Decimal | None = None
    for index, ((a, b), s) in enumerate(zip(spans, sums, strict=True)):
        year = tariffs.year(a.year)
        unconfirmed.extend(
            (f"{a.year}: {u}", f"{a.year}: {tariffs.dutch_note(u)}")
            for u in year.unconfirmed
            if not u.startswith(OTHER_COMMODITY_NOTES[gas])
        )
        if vat_rate is None:
            vat_rate = year.vat_rate
        elif vat_rate != year.vat_rate:
            raise MarketError("the VAT rate changes inside the period; invoice each year apart")
        regime = Regime.NETTING if (a < tariffs.netting_ends and not gas) else Regime.SEPARATE
        imp_total = sum(s.imp.values(), ZERO)
        exp_total = sum(s.exp.values(), ZERO)
        parts.append(Part(index, a, b, regime, a.year, imp_total, exp_total))
        if conversion is not None:
            factor = (
                imp_total / s.measured
                if s.measured
                else conversion.factor(terms.gas_area, a, terms.meter_converts_temperature)
            )
            volumes.append(
                GasVolume(
                    index,
                    s.measured,
                    factor.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP),
                    imp_total,
                    conversion.reference_mj_per_m3,
                )
            )
        prices = terms.prices_on(a)
        share = Decimal(b.toordinal() - a.toordinal()) / Decimal(days_in_year(a.year))
        lines.extend(_supply_lines(index, terms, prices, s, regime, gas))
        taxable = max(ZERO, imp_total - exp_total) if regime is Regime.NETTING else imp_total
        brackets = year.gas_tax if gas else year.electricity_tax
        unit = "m³" if gas else "kWh"
        for number, volume, rate in _taxed(taxable, brackets, share):
            lines.append(
                InvoiceLine(
                    index,
                    f"Energiebelasting schijf {number}",
                    volume,
                    unit,
                    rate,
                    money(volume * rate),
                )
            )
        lines.extend(_fixed_lines(index, terms, prices, year, a, b, gas))
    assert vat_rate is not None
    if conversion is not None:
        unconfirmed.extend(_gas_notes(terms, tariffs, first, end))
    notes = list(dict.fromkeys(unconfirmed))
    return Invoice(
        reference=terms.reference,
        first=first,
        end=end,
        parts=tuple(parts),
        lines=tuple(lines),
        vat_rate=vat_rate,
        unconfirmed=tuple(en for en, _ in notes),
        gas_volumes=tuple(volumes),
        unconfirmed_nl=tuple(nl for _, nl in notes),
    )


def _fixed_lines(
    index: int,
    terms: ContractTerms,
    prices: PriceSet,
    year: YearTariffs,
    a: date,
    b: date,
    gas: bool,
) -> list[InvoiceLine]:
    """Tax reduction, grid charges and standing charge, pro rata per day of the year."""
    lines: list[InvoiceLine] = []
    days = Decimal(b.toordinal() - a.toordinal())
    per_day = Decimal(days_in_year(a.year))
    if not gas and terms.residence:
        lines.append(
            InvoiceLine(
                index,
                "Vermindering energiebelasting",
                days,
                "dag",
                -year.tax_reduction_per_year / per_day,
                -money(year.tax_reduction_per_year * days / per_day),
            )
        )
    grid = year.grid_per_year.get(terms.grid_class)
    if grid is None:
        finding = Finding(
            "MKT-4.grid_class",
            f"market_tariffs {a.year} has no grid charge for class {terms.grid_class!r} "
            f"(has {sorted(year.grid_per_year)})",
        )
        raise MarketError(finding.message, [finding])
    lines.append(
        InvoiceLine(
            index,
            f"Netbeheerkosten {terms.grid_class.split('_', 1)[-1]}",
            days,
            "dag",
            grid / per_day,
            money(grid * days / per_day),
        )
    )
    if prices.standing_per_year:
        lines.append(
            InvoiceLine(
                index,
                "Vaste leveringskosten",
                days,
                "dag",
                prices.standing_per_year / per_day,
                money(prices.standing_per_year * days / per_day),
            )
        )
    return lines


def _line(part: int, text: str, qty: Decimal, unit: str, price: Decimal) -> InvoiceLine:
    return InvoiceLine(part, text, qty, unit, price, money(qty * price))


def _supply_lines(
    part: int, terms: ContractTerms, prices: PriceSet, s: _Sums, regime: Regime, gas: bool
) -> list[InvoiceLine]:
    """The supply and feed-in lines of one part (MKT-1..3)."""
    unit = "m³" if gas else "kWh"
    imp_total = sum(s.imp.values(), ZERO)
    exp_total = sum(s.exp.values(), ZERO)
    out: list[InvoiceLine] = []
    if terms.contract_type is ContractType.DYNAMIC:
        if regime is Regime.NETTING:
            out.append(
                InvoiceLine(
                    part,
                    f"Levering dynamisch, gesaldeerd ({imp_total} - {exp_total} teruglevering)",
                    imp_total - exp_total,
                    unit,
                    None,
                    money(s.dyn_imp_money - s.dyn_exp_money),
                )
            )
        else:
            out.append(
                InvoiceLine(
                    part,
                    "Levering dynamisch (uurprijs + opslag)",
                    imp_total,
                    unit,
                    None,
                    money(s.dyn_imp_money),
                )
            )
            if exp_total:
                out.append(
                    InvoiceLine(
                        part,
                        "Terugleververgoeding dynamisch (uurprijs)",
                        exp_total,
                        unit,
                        None,
                        -money(s.dyn_exp_bare),
                    )
                )
    elif terms.tariff is TariffKind.SINGLE or gas:
        if regime is Regime.NETTING:
            net = imp_total - exp_total
            if net >= 0:
                out.append(
                    _line(
                        part,
                        f"Levering enkeltarief, gesaldeerd ({imp_total} - {exp_total})",
                        net,
                        unit,
                        prices.single,
                    )
                )
            else:
                out.append(
                    _line(part, "Levering enkeltarief, gesaldeerd", ZERO, unit, prices.single)
                )
                out.append(
                    _line(part, "Terugleververgoeding overschot", -net, unit, -prices.feed_in)
                )
        else:
            out.append(_line(part, "Levering enkeltarief", imp_total, unit, prices.single))
            if exp_total:
                out.append(_line(part, "Terugleververgoeding", exp_total, unit, -prices.feed_in))
    elif regime is Regime.NETTING:
        net_n = s.imp["T2"] - s.exp["T2"]
        net_o = s.imp["T1"] - s.exp["T1"]
        total = net_n + net_o
        if total <= 0:
            charge_n, charge_o = ZERO, ZERO
        elif net_n < 0:
            charge_n, charge_o = ZERO, total
        elif net_o < 0:
            charge_n, charge_o = total, ZERO
        else:
            charge_n, charge_o = net_n, net_o
        out.append(_line(part, "Levering normaaltarief, gesaldeerd", charge_n, unit, prices.normal))
        out.append(_line(part, "Levering daltarief, gesaldeerd", charge_o, unit, prices.offpeak))
        if total < 0:
            out.append(_line(part, "Terugleververgoeding overschot", -total, unit, -prices.feed_in))
    else:
        out.append(_line(part, "Levering normaaltarief", s.imp["T2"], unit, prices.normal))
        out.append(_line(part, "Levering daltarief", s.imp["T1"], unit, prices.offpeak))
        if exp_total:
            out.append(_line(part, "Terugleververgoeding", exp_total, unit, -prices.feed_in))
    if exp_total and prices.feed_in_cost:
        out.append(_line(part, "Terugleverkosten", exp_total, unit, prices.feed_in_cost))
    return out


@dataclass(frozen=True)
class Settlement:
    """The annual settlement (jaarafrekening, MKT-4): balance and proposed advance."""

    invoice: Invoice
    advances_paid: Decimal
    balance: Decimal
    """Positive: the customer pays; negative: the supplier refunds."""
    new_advance: Decimal


def settle(invoice_: Invoice, advances: Sequence[Decimal]) -> Settlement:
    """Set the year's advances against its invoice; propose a monthly advance.

    The proposal is the invoice's total incl. VAT scaled to 365 days, over 12 months,
    rounded up to whole euros (never below zero).
    """
    paid = sum(advances, ZERO)
    yearly = invoice_.total * Decimal(365) / Decimal(invoice_.days)
    proposal = Decimal(max(0, math.ceil(yearly / 12)))
    return Settlement(invoice_, paid, invoice_.total - paid, proposal)


def large_consumer_month(
    tariffs: MarketTariffs, contracted_kw: Decimal, peak_kw: Decimal, small: bool
) -> tuple[InvoiceLine, ...]:
    """MKT-4: the operator's monthly grid and metering lines for a large consumer.

    Refuses a small consumer: its grid charges go on the supplier's invoice.
    """
    if small:
        finding = Finding(
            "MKT-4.small_consumer",
            "a small consumer's grid charges are invoiced by its supplier, not monthly by "
            "the operator; invoice the supplier's allocation instead",
        )
        raise MarketError(finding.message, [finding])
    lc = tariffs.large_consumer
    return (
        _line(0, "Vastrecht transport", Decimal(1), "maand", lc.fixed_per_month),
        _line(0, "Gecontracteerd vermogen", contracted_kw, "kW", lc.contracted_kw_per_month),
        _line(0, "Maximaal afgenomen vermogen", peak_kw, "kW", lc.peak_kw_per_month),
        _line(0, "Meetdienst", Decimal(1), "maand", lc.metering_per_month),
    )


def vzc_invoice(
    reference: str,
    first: date,
    end: date,
    imported_kwh: Decimal,
    tariffs: MarketTariffs,
    gas: bool = False,
) -> Invoice:
    """UC8: the operator's invoice for consumption without a contract (VZC).

    The consumption between two actual readings at the VZC price of ``market_tariffs``
    (no netting: without a contract nothing fed in is paid), plus VAT of ``first``'s year.
    """
    if imported_kwh < 0:
        finding = Finding(
            "MKT-4.vzc_negative",
            f"{reference}: the readings go back ({imported_kwh} kWh); a replaced meter? "
            "invoice from the new meter's first reading",
        )
        raise MarketError(finding.message, [finding])
    price = tariffs.vzc_gas_per_m3 if gas else tariffs.vzc_electricity_per_kwh
    unit = "m³" if gas else "kWh"
    year = tariffs.year(first.year)
    line = _line(0, "Verbruik zonder contract", imported_kwh, unit, price)
    part = Part(0, first, end, Regime.SEPARATE, first.year, imported_kwh, ZERO)
    return Invoice(
        reference,
        first,
        end,
        (part,),
        (line,),
        year.vat_rate,
        ("VZC-tarief",),
        unconfirmed_nl=("het tarief voor verbruik zonder contract (VZC-tarief)",),
    )
