"""UC8 End of consumption without contract (VZC): monthly invoices from actual readings.

The use-case list: "vanaf het moment dat u zonder contract zit, maandelijks een
VZC-factuur te sturen op basis van uw werkelijke verbruik", from the smart meter's
readings, only for connections without a supply contract, and "Verhuizingen worden niet
via deze methode gefactureerd" -- a move is recorded as the new occupant's contract
(``meetpunt market move``), so a moved-into point is never contractless and gets no VZC
invoice.

Population: in-service electricity connections with a smart meter (only those have
actual remote readings) and no contract on the period's first and last day. One gate
request (purpose UC8, population ``contractless``: the gate grants only the contractless
sub-periods) reads the daily readings (only the opening reading of each connection is
kept: the first of the period) and the monthly readings (1st of the month, local
midnight). Each span between consecutive readings that ends on a monthly reading is one
invoice: consumption = closing - opening of the import registers (T1 + T2), at the VZC
price of ``market_tariffs``. A span whose registers go back (a replaced meter) is set
aside with its reason, never invoiced.

Gas (the use-case list: "Klanten die gas en stroom afnemen zijn verplicht een
energiecontract af te sluiten. Wordt er zonder contract toch energie verbruikt? ..."):
in-service gas connections read through a smart meter (its M-Bus) without a gas
contract on the first and last day get a VZC invoice of their own, from a second gate
request (purpose UC8, kind ``gas_hourly`` only: the gate refuses a request mixing the
commodities, PRV-1.commodity). The gas register at an instant is the end of the hour
before it, or the start (register less volume) of the hour from it; the opening is the
first such register of the period, each closing the register at local midnight of the
1st of a month. m³ as metered (no calorific conversion: the contractless connection has
no contract naming its grid area), at the VZC gas price.

Everything except :func:`invoice_contractless`' gate calls is a pure function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from meetpunt.domain.calendar import local_date_of, local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import ConnectionVersion, MeterType, PhysicalStatus
from meetpunt.errors import MarketError, MeetpuntError
from meetpunt.market.pricing import Invoice, vzc_invoice
from meetpunt.market.rules import MarketTariffs, market_tariffs
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Party, Period, stored_utc
from meetpunt.usecases.common import ask

PURPOSE = "UC8"
DAILY, MONTHLY, GAS = "daily_readings", "monthly_readings", "gas_hourly"
IMPORTS = ("import_t1_wh", "import_t2_wh")
EXPORTS = ("export_t1_wh", "export_t2_wh")


class Uc08Error(MeetpuntError):
    """UC8 could not run (the gate refused, or the register has no population)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """Register totals of one meter at one moment (Wh; a gas meter dm3 in ``import_wh``)."""

    at: datetime
    import_wh: int
    export_wh: int


@dataclass(frozen=True)
class VzcInvoice:
    """One month's VZC invoice of one connection."""

    ean: str
    opening: Reading
    closing: Reading
    invoice: Invoice
    commodity: Commodity = Commodity.ELECTRICITY

    @property
    def import_wh(self) -> int:
        """Consumption between the two readings (Wh; gas: dm3)."""
        return self.closing.import_wh - self.opening.import_wh

    def as_dict(self) -> dict[str, Any]:
        unit = "import_m3" if self.commodity is Commodity.GAS else "import_kwh"
        return {
            "ean": self.ean,
            "commodity": self.commodity.value,
            "from": self.opening.at.isoformat(),
            "to": self.closing.at.isoformat(),
            unit: self.import_wh / 1000,
            "total_eur": str(self.invoice.total),
        }


@dataclass(frozen=True)
class Uc08Result:
    """The VZC invoices of one period, and what was set aside and why."""

    period: Period
    population: tuple[str, ...]
    invoices: tuple[VzcInvoice, ...]
    set_aside: tuple[tuple[str, str], ...]
    audit_seq: int | None
    gas_population: tuple[str, ...] = ()
    """The contractless gas connections (their EANs), read by a request of their own."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": [self.period.start.isoformat(), self.period.end.isoformat()],
            "population": len(self.population),
            "gas_population": len(self.gas_population),
            "invoices": [i.as_dict() for i in self.invoices],
            "set_aside": [{"ean": e, "reason": r} for e, r in self.set_aside],
        }


def in_population(version: ConnectionVersion, commodity: Commodity = Commodity.ELECTRICITY) -> bool:
    """An in-service connection of ``commodity`` read through a smart meter (actual
    readings; gas through the electricity meter's M-Bus)."""
    a = version.attributes
    return (
        version.commodity is commodity
        and a.status is PhysicalStatus.IN_SERVICE
        and a.meter_type is MeterType.SMART
    )


def population(
    versions: Iterable[ConnectionVersion],
    holders: Mapping[tuple[str, date], object | None],
    first: date,
    last: date,
    commodity: Commodity = Commodity.ELECTRICITY,
) -> list[str]:
    """EANs in ``commodity``'s population without a contract on ``first`` and ``last``."""
    return sorted(
        v.ean
        for v in versions
        if in_population(v, commodity) and holders.get((v.ean, first)) is None
        and holders.get((v.ean, last)) is None
    )  # fmt: skip


def gas_readings_of(table: pa.Table, eans: Mapping[int, str]) -> dict[str, list[Reading]]:
    """The gas register per EAN at every hour's start (register less volume) and end
    (register), dm3, in time order; hours without a register are left out."""
    out: dict[str, dict[datetime, int]] = {}
    cols = {n: table.column(n).to_pylist() for n in ("connection", "start", "reading_dm3")}
    volumes = (
        table.column("volume_dm3").to_pylist()
        if "volume_dm3" in table.column_names
        else [None] * table.num_rows
    )
    for i, cid in enumerate(cols["connection"]):
        reading = cols["reading_dm3"][i]
        if cid not in eans or cols["start"][i] is None or reading is None:
            continue
        start = stored_utc(cols["start"][i])
        registers = out.setdefault(eans[cid], {})
        registers[start + timedelta(hours=1)] = int(reading)
        volume = volumes[i]
        if volume is not None:
            registers.setdefault(start, int(reading) - int(volume))
    return {
        ean: [Reading(when, dm3, 0) for when, dm3 in sorted(registers.items())]
        for ean, registers in out.items()
    }


def gas_spans(
    readings: Mapping[str, Sequence[Reading]], period: Period
) -> dict[str, list[tuple[Reading, Reading]]]:
    """Per gas EAN the invoice spans: from the first register of the period to the
    register at local midnight of each 1st of a month after it (as a monthly reading)."""
    firsts = {
        ean: [r for r in values if local_date_of(r.at).day == 1 and r.at == _midnight(r.at)]
        for ean, values in readings.items()
    }
    daily = {
        ean: [r for r in values if r.at >= period.start][:1] for ean, values in readings.items()
    }
    return spans(daily, firsts, period)


def _midnight(instant: datetime) -> datetime:
    """Local midnight of ``instant``'s local day, in UTC."""
    return local_midnight_utc(local_date_of(instant))


def readings_of(table: pa.Table, eans: Mapping[int, str]) -> dict[str, list[Reading]]:
    """A readings table (``connection``, ``at``, the four registers in Wh) per EAN, in
    time order; rows with a missing import register are left out (no reading)."""
    out: dict[str, list[Reading]] = {}
    cols = {name: table.column(name).to_pylist() for name in ("connection", "at", *IMPORTS)}
    exports = [
        table.column(n).to_pylist() if n in table.column_names else [None] * table.num_rows
        for n in EXPORTS
    ]
    for i, cid in enumerate(cols["connection"]):
        if cid not in eans or cols["at"][i] is None:
            continue
        imports = [cols[n][i] for n in IMPORTS]
        if any(v is None for v in imports):
            continue
        export = sum(int(e[i] or 0) for e in exports)
        out.setdefault(eans[cid], []).append(
            Reading(stored_utc(cols["at"][i]), int(sum(imports)), export)
        )
    for values in out.values():
        values.sort(key=lambda r: r.at)
    return out


def spans(
    daily: Mapping[str, Sequence[Reading]],
    monthly: Mapping[str, Sequence[Reading]],
    period: Period,
) -> dict[str, list[tuple[Reading, Reading]]]:
    """Per EAN the invoice spans: from the opening reading (the first daily reading of
    the period, else the first monthly one) to each monthly reading after it."""
    out: dict[str, list[tuple[Reading, Reading]]] = {}
    for ean in sorted(set(daily) | set(monthly)):
        inside = [r for r in daily.get(ean, ()) if period.start <= r.at < period.end]
        months = [r for r in monthly.get(ean, ()) if period.start <= r.at < period.end]
        opening = inside[0] if inside else (months[0] if months else None)
        if opening is None:
            continue
        closings = [r for r in months if r.at > opening.at]
        pairs, before = [], opening
        for closing in closings:
            pairs.append((before, closing))
            before = closing
        if pairs:
            out[ean] = pairs
    return out


def invoices_of(
    spans_: Mapping[str, Sequence[tuple[Reading, Reading]]],
    tariffs: MarketTariffs,
    commodity: Commodity = Commodity.ELECTRICITY,
) -> tuple[list[VzcInvoice], list[tuple[str, str]]]:
    """One VZC invoice per span (kWh, or gas m³); a span whose registers go back is set
    aside."""
    gas = commodity is Commodity.GAS
    made: list[VzcInvoice] = []
    aside: list[tuple[str, str]] = []
    for ean, pairs in spans_.items():
        for opening, closing in pairs:
            first, end = local_date_of(opening.at), local_date_of(closing.at)
            used = Decimal(closing.import_wh - opening.import_wh) / 1000
            reference = f"VZC-{ean}-{'gas-' if gas else ''}{end:%Y%m}"
            try:
                inv = vzc_invoice(reference, first, end, used, tariffs, gas=gas)
            except MarketError as exc:
                aside.append((ean, exc.findings[0].message if exc.findings else str(exc)))
                continue
            made.append(VzcInvoice(ean, opening, closing, inv, commodity))
    return made, aside


def invoice_contractless(
    gate: Gate,
    party: Party,
    period: Period,
    at: datetime,
    trigger: str | None = None,
    tariffs: MarketTariffs | None = None,
) -> Uc08Result:
    """UC8: the VZC invoices of ``period`` (at most 31 days) for contractless points,
    electricity and gas (one gate request per commodity)."""
    first = local_date_of(period.start)
    last = local_date_of(period.end - timedelta(microseconds=1))
    tariffs = tariffs or market_tariffs()
    versions = gate.register_view.connection_versions(first)
    made: list[VzcInvoice] = []
    aside: list[tuple[str, str]] = []
    seq: int | None = None
    found: dict[Commodity, list[str]] = {}
    for commodity in (Commodity.ELECTRICITY, Commodity.GAS):
        candidates = [v.ean for v in versions if in_population(v, commodity)]
        holders = gate.register_view.contract_holders(
            [(e, d) for e in candidates for d in (first, last)], commodity
        )
        eans = population(versions, holders, first, last, commodity)
        found[commodity] = eans
        if not eans:
            continue
        kinds = {GAS} if commodity is Commodity.GAS else {DAILY, MONTHLY}
        grant = ask(
            gate,
            AccessRequest(
                party,
                PURPOSE,
                tuple(eans),
                frozenset(kinds),
                period,
                at,
                justification=f"UC8 monthly VZC invoices for {commodity.value} connections "
                "without a contract",
                trigger=trigger,
            ),
            Uc08Error,
        )
        ids = {cid: ean for ean, cid in grant.connection_ids.items()}
        if commodity is Commodity.GAS:
            pairs = gas_spans(gas_readings_of(grant.read(GAS), ids), period)
        else:
            pairs = spans(
                readings_of(grant.read(DAILY), ids), readings_of(grant.read(MONTHLY), ids), period
            )
        invoices, set_aside = invoices_of(pairs, tariffs, commodity)
        made += invoices
        aside += set_aside
        seq = grant.decision.audit_seq
    return Uc08Result(
        period,
        tuple(found[Commodity.ELECTRICITY]),
        tuple(made),
        tuple(aside),
        seq,
        tuple(found[Commodity.GAS]),
    )
