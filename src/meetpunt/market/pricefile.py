"""The user's price file for dynamic contracts (MKT-1), read into :class:`DynamicPrices`.

Two layouts are accepted (UTF-8 CSV, comma or semicolon separated, header row):

1. **meetpunt's own** — columns ``start_utc`` and one price column:
   ``price_eur_per_kwh`` or ``price_eur_per_mwh`` (electricity), ``price_eur_per_m3``
   (gas). ``start_utc`` is ISO 8601 with ``Z`` or ``+00:00`` (e.g.
   ``2026-10-01T00:15:00Z``); gas rows give the local day's date (``2026-10-01``):
   meetpunt prices gas per local day. All prices exclude VAT and energy tax.
2. **the common day-ahead export** (ENTSO-E transparency platform, "Day-ahead Prices",
   time zone UTC) — columns ``MTU (UTC)`` holding ``01.10.2025 00:00 - 01.10.2025 00:15``
   and ``Day-ahead Price [EUR/MWh]``; other columns are ignored, empty prices refused.

Electricity slots are a quarter-hour (the day-ahead market since 1 October 2025) or an
hour, inferred from the gaps between starts; a file mixing both is refused. Every bad
row is named (line number, what is wrong, what to do); nothing is skipped silently.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.findings import Finding
from meetpunt.errors import MarketError
from meetpunt.market.pricing import DynamicPrices

_KWH = "price_eur_per_kwh"
_MWH = "price_eur_per_mwh"
_M3 = "price_eur_per_m3"
_ENTSOE_TIME = "MTU (UTC)"
_ENTSOE_PRICE = "Day-ahead Price [EUR/MWh]"


def _refuse(where: str, line: int, message: str) -> MarketError:
    finding = Finding("MKT-1.price_file", f"{where} line {line}: {message}")
    return MarketError(finding.message, [finding])


def utc_instant(text: str, where: str, line: int) -> datetime:
    value = text.strip()
    try:
        if len(value) == 10:
            return local_midnight_utc(date.fromisoformat(value))
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _refuse(
            where, line, f"{value!r} is not an ISO 8601 time; write 2026-10-01T00:15:00Z"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        raise _refuse(where, line, f"{value!r} is not in UTC; end it with Z or +00:00")
    return parsed.astimezone(UTC)


def _entsoe_instant(text: str, where: str, line: int) -> datetime:
    head = text.split("-", maxsplit=1)[0].strip()
    try:
        return datetime.strptime(head, "%d.%m.%Y %H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise _refuse(
            where, line, f"{text!r} is not 'dd.mm.yyyy HH:MM - dd.mm.yyyy HH:MM'"
        ) from None


def _price(text: str, where: str, line: int) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise _refuse(where, line, f"price {text!r} is not a number; give it in EUR") from None
    if not value.is_finite():
        raise _refuse(where, line, f"price {text!r} is not a number")
    return value


def parse_prices(text: str, where: str = "price file") -> DynamicPrices:
    """Parse a price file's text (see the module docstring for the layouts)."""
    sample = text[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    fields = [f.strip() for f in (reader.fieldnames or [])]
    reader.fieldnames = fields
    if "start_utc" in fields:
        column = next((c for c in (_KWH, _MWH, _M3) if c in fields), None)
        if column is None:
            raise _refuse(where, 1, f"no price column; add one of {_KWH}, {_MWH}, {_M3}")
        scale = Decimal("0.001") if column == _MWH else Decimal(1)
        rows = ((utc_instant, "start_utc", column, scale),)
    elif _ENTSOE_TIME in fields and _ENTSOE_PRICE in fields:
        rows = ((_entsoe_instant, _ENTSOE_TIME, _ENTSOE_PRICE, Decimal("0.001")),)
    else:
        raise _refuse(
            where,
            1,
            f"header {fields} is neither start_utc + price column nor the day-ahead export "
            f"({_ENTSOE_TIME!r}, {_ENTSOE_PRICE!r})",
        )
    to_instant, time_col, price_col, scale = rows[0]
    prices: dict[datetime, Decimal] = {}
    for number, row in enumerate(reader, start=2):
        raw_time, raw_price = row.get(time_col) or "", row.get(price_col) or ""
        if not raw_time.strip():
            raise _refuse(where, number, "the time is empty")
        if not raw_price.strip():
            raise _refuse(where, number, "the price is empty; fill it in or leave the row out")
        start = to_instant(raw_time, where, number)
        if start in prices:
            raise _refuse(
                where, number, f"{start.isoformat()} appears twice; keep one price per slot"
            )
        prices[start] = _price(raw_price, where, number) * scale
    if not prices:
        raise _refuse(where, 1, "no prices")
    return DynamicPrices(_slot(sorted(prices), column_is_gas=price_col == _M3, where=where), prices)


def _slot(starts: Iterable[datetime], column_is_gas: bool, where: str) -> timedelta:
    if column_is_gas:
        return timedelta(days=1)
    ordered = list(starts)
    gaps = {b - a for a, b in itertools.pairwise(ordered)}
    quarter, hour = timedelta(minutes=15), timedelta(hours=1)
    if not gaps or gaps == {hour}:
        return hour
    if gaps == {quarter}:
        return quarter
    raise _refuse(
        where,
        1,
        "the slots are neither all a quarter-hour nor all an hour apart (or the file has "
        f"gaps: {sorted(str(g) for g in gaps)}); give one resolution without gaps",
    )


def read_prices(path: Path) -> DynamicPrices:
    """Read a price file from ``path`` (UTF-8, BOM allowed)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MarketError(f"cannot read price file {path}: {exc}") from exc
    return parse_prices(text, str(path))
