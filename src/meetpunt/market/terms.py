"""Contract terms as a TOML file and usage as a CSV file, for ``meetpunt market invoice``.

Contract terms (all prices EUR excl. VAT)::

    reference = "C-2026-0001"
    commodity = "electricity"        # or "gas"
    contract_type = "fixed"          # fixed | variable | dynamic
    model = "fixed"                  # optional: a model contract, "variable" or "fixed"
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

A model contract (``model``, MKT-2) is checked against ``market_contract_rules``
``[model_contracts]`` when the terms are read; it is priced like any other contract of
its ``contract_type``.
"""

from __future__ import annotations

import calendar
import csv
import io
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, ModelContract, TariffKind
from meetpunt.domain.findings import Finding
from meetpunt.errors import MarketError
from meetpunt.market.pricefile import utc_instant
from meetpunt.market.pricing import ContractTerms, PriceSet, Usage
from meetpunt.market.rules import ContractRules, contract_rules

__all__ = [
    "ModelContract",
    "check_model_contract",
    "model_of",
    "parse_usage",
    "read_terms",
    "read_usage",
    "require_model_contract",
    "terms_from_mapping",
]


def _refuse(where: str, message: str) -> MarketError:
    finding = Finding("MKT-1.contract_file", f"{where}: {message}")
    return MarketError(finding.message, [finding])


def _amount(raw: Any, where: str, key: str) -> Decimal:
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise _refuse(where, f'{key} = {raw!r} is not an amount; write it as "0.25"') from None


def _months_later(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months (31 Jan + 1 = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def check_model_contract(
    model: ModelContract, terms: ContractTerms, rules: ContractRules
) -> list[Finding]:
    """Every model-contract rule (MKT-2, ``[model_contracts]``) the terms break.

    Variable: a variable contract, indefinite, prices changing only on the listed dates
    after the start, notice at most the listed days (no multisite exception), so no
    termination fee (MKT-5 refuses one on a non-fixed contract). Fixed: a fixed contract
    starting on or after the listed date and running at least the listed months; its
    termination fee is the ordinary MKT-5 rule.
    """
    ref = f"contract {terms.reference} (model contract {model.value})"
    found: list[Finding] = []
    mc = rules.model_contracts
    if mc is None:
        return [
            Finding(
                "MKT-2.model_rules",
                f"{ref}: market_contract_rules has no [model_contracts] section; add it "
                "(see the packaged file) or drop `model` from the terms",
            )
        ]
    if model is ModelContract.VARIABLE:
        if terms.contract_type is not ContractType.VARIABLE:
            found.append(
                Finding(
                    "MKT-2.model_variable_type",
                    f"{ref}: contract_type is {terms.contract_type.value}; the variable model "
                    'contract is contract_type = "variable" (no termination fee)',
                )
            )
        if terms.end is not None:
            found.append(
                Finding(
                    "MKT-2.model_variable_indefinite",
                    f"{ref}: has end date {terms.end}; the variable model contract is "
                    "indefinite, remove `end`",
                )
            )
        allowed = ", ".join(f"{m:02d}-{d:02d}" for m, d in mc.price_change_dates)
        for p in terms.prices:
            if p.valid_from > terms.start and not mc.is_price_change_date(p.valid_from):
                found.append(
                    Finding(
                        "MKT-2.model_variable_price_date",
                        f"{ref}: price set from {p.valid_from} changes the price on a day "
                        f"not allowed; the variable model contract changes prices only on "
                        f"{allowed} (month-day); move the change to one of those",
                    )
                )
        if terms.notice_days > mc.variable_max_notice_days:
            found.append(
                Finding(
                    "MKT-2.model_variable_notice",
                    f"{ref}: notice period {terms.notice_days} days; the variable model "
                    f"contract is cancellable with at most {mc.variable_max_notice_days} "
                    "days' notice",
                )
            )
        return found
    if terms.contract_type is not ContractType.FIXED:
        found.append(
            Finding(
                "MKT-2.model_fixed_type",
                f"{ref}: contract_type is {terms.contract_type.value}; the fixed model "
                'contract is contract_type = "fixed"',
            )
        )
    if terms.start < mc.fixed_available_from:
        found.append(
            Finding(
                "MKT-2.model_fixed_start",
                f"{ref}: starts {terms.start}; the fixed model contract exists only for "
                f"contracts starting on or after {mc.fixed_available_from}",
            )
        )
    shortest = _months_later(terms.start, mc.fixed_min_term_months)
    if terms.end is None or terms.end < shortest:
        found.append(
            Finding(
                "MKT-2.model_fixed_term",
                f"{ref}: ends {terms.end or 'never (no end date)'}; the fixed model contract "
                f"runs at least {mc.fixed_min_term_months} months, to {shortest} or later",
            )
        )
    return found


def require_model_contract(
    model: ModelContract, terms: ContractTerms, rules: ContractRules
) -> None:
    """Raise :class:`MarketError` with every broken model-contract rule (MKT-2)."""
    findings = check_model_contract(model, terms, rules)
    if findings:
        raise MarketError(f"model contract refused: {findings[0].message}", findings)


def model_of(data: Mapping[str, Any], where: str = "contract") -> ModelContract | None:
    """The model contract the terms name (``model = ...``), or ``None``."""
    raw = data.get("model")
    if raw is None:
        return None
    try:
        return ModelContract(str(raw))
    except ValueError:
        finding = Finding(
            "MKT-2.model_kind",
            f'{where}: model = {raw!r} is not a model contract; write "variable" or "fixed" '
            "or leave `model` out",
        )
        raise MarketError(finding.message, [finding]) from None


def terms_from_mapping(
    data: Mapping[str, Any], where: str = "contract", rules: ContractRules | None = None
) -> ContractTerms:
    """Contract terms from a parsed TOML mapping; every problem names the key.

    Terms naming a ``model`` are refused unless they keep the model-contract rules
    (``rules``, default the packaged or operator's ``market_contract_rules``; MKT-2).
    """
    model = model_of(data, where)
    terms = replace(_terms(data, where), model=model)
    if model is not None:
        require_model_contract(model, terms, rules if rules is not None else contract_rules())
    return terms


def _terms(data: Mapping[str, Any], where: str) -> ContractTerms:
    """The terms themselves, without the model-contract check."""
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
