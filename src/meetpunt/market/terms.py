"""Contract terms as a TOML file and usage as a CSV file, for ``meetpunt market invoice``.

Contract terms (all prices EUR excl. VAT)::

    reference = "C-2026-0001"
    commodity = "electricity"        # or "gas"
    contract_type = "fixed"          # fixed | variable | dynamic
    tariff = "double"                # single | double
    meter_type = "smart"             # smart | digital | ferraris | none
    start = 2026-07-01
    end = 2027-07-01                 # fixed contracts only
    grid_class = "electricity_3x25A" # a key of market_tariffs [years.<y>.grid]
    residence = true                 # tax reduction per connection (verblijfsfunctie)
    notice_days = 30
    region = "standard"              # off-peak calendar region (optional)
    holder = "J. de Vries"
    supplier = "8712423010208"
    gas_area = "871718518003006694" # gas: the grid area's EAN code (calorific factors)
    temperature_corrected = true     # gas: the meter converts to 15 °C (default: smart)

    [[prices]]                       # one set per price change (variable: 1 Jan, 1 Jul)
    valid_from = 2026-07-01
    single = "0.25"                  # or normal / offpeak; dynamic: markup
    feed_in = "0.15"
    feed_in_cost = "0.00"
    standing_per_year = "73.00"

Usage CSV: header ``start_utc,import,export`` (kWh or m³ per interval; ISO 8601 UTC
start), one row per interval. Gas is the metered m³; the invoice converts it to the
reference calorific value (``market_tariffs`` ``[gas_conversion]``).
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, TariffKind
from meetpunt.domain.findings import Finding
from meetpunt.errors import MarketError
from meetpunt.market.pricefile import utc_instant
from meetpunt.market.pricing import ContractTerms, PriceSet, Usage


def _refuse(where: str, message: str) -> MarketError:
    finding = Finding("MKT-1.contract_file", f"{where}: {message}")
    return MarketError(finding.message, [finding])


def _amount(raw: Any, where: str, key: str) -> Decimal:
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise _refuse(where, f'{key} = {raw!r} is not an amount; write it as "0.25"') from None


def terms_from_mapping(data: Mapping[str, Any], where: str = "contract") -> ContractTerms:
    """Contract terms from a parsed TOML mapping; every problem names the key."""
    try:
        prices = tuple(
            PriceSet(
                valid_from=p["valid_from"],
                **{
                    k: _amount(v, where, k)
                    for k, v in p.items()
                    if k != "valid_from"
                    and k
                    in (
                        "single",
                        "normal",
                        "offpeak",
                        "markup",
                        "feed_in",
                        "feed_in_cost",
                        "standing_per_year",
                    )
                },
            )
            for p in data["prices"]
        )
        start, end = data["start"], data.get("end")
        if not isinstance(start, date) or (end is not None and not isinstance(end, date)):
            raise _refuse(where, "start and end are TOML dates (2026-07-01), not strings")
        return ContractTerms(
            reference=str(data["reference"]),
            commodity=Commodity(data.get("commodity", "electricity")),
            contract_type=ContractType(data["contract_type"]),
            tariff=TariffKind(data.get("tariff", "single")),
            meter_type=MeterType(data.get("meter_type", "smart")),
            start=start,
            end=end,
            prices=prices,
            grid_class=str(data["grid_class"]),
            residence=bool(data.get("residence", True)),
            notice_days=int(data.get("notice_days", 30)),
            multisite=bool(data.get("multisite", False)),
            region=data.get("region"),
            holder=str(data.get("holder", "")),
            supplier=str(data.get("supplier", "")),
            gas_area=None if data.get("gas_area") is None else str(data["gas_area"]),
            temperature_corrected=(
                None
                if data.get("temperature_corrected") is None
                else bool(data["temperature_corrected"])
            ),
        )
    except KeyError as exc:
        raise _refuse(where, f"lacks {exc.args[0]!r}; see meetpunt.market.terms") from None
    except ValueError as exc:
        raise _refuse(where, str(exc)) from None


def read_terms(path: Path) -> ContractTerms:
    """Read a contract-terms TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _refuse(str(path), f"cannot read ({exc})") from exc
    return terms_from_mapping(data, str(path))


def parse_usage(text: str, where: str = "usage") -> Usage:
    """Usage rows ``start_utc,import,export`` (see the module docstring)."""
    reader = csv.DictReader(io.StringIO(text))
    if not {"start_utc", "import", "export"} <= set(reader.fieldnames or ()):
        raise _refuse(where, "header must be start_utc,import,export")
    rows = []
    for number, row in enumerate(reader, start=2):
        rows.append(
            (
                utc_instant(row["start_utc"], where, number),
                _amount(row["import"] or "0", f"{where} line {number}", "import"),
                _amount(row["export"] or "0", f"{where} line {number}", "export"),
            )
        )
    return Usage.of(rows)


def read_usage(path: Path) -> Usage:
    """Read a usage CSV file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise _refuse(str(path), f"cannot read ({exc})") from exc
    return parse_usage(text, str(path))
