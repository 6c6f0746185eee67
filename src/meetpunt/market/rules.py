"""The market rule files as typed tables (MKT-1..5, MKT-7).

``market_tariffs`` holds the amounts per calendar year (energy tax brackets, the tax
reduction, VAT, grid charges per capacity class), the end of netting and the feed-in
floor; ``market_contract_rules`` the notice period, the termination-fee rules by the
contract's start, the smart-meter placement fees and the model contracts (MKT-2).
Amounts are :class:`Decimal`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from meetpunt.domain.findings import Finding
from meetpunt.errors import RulesDataError
from meetpunt.rulebook import load_rules


def _dec(value: Any, where: str) -> Decimal:
    """An amount from a rule file, written as a string or number."""
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise RulesDataError(f'{where}: {value!r} is not an amount; write it as "0.12"') from exc


@dataclass(frozen=True, slots=True)
class Bracket:
    """One energy-tax bracket: yearly volume up to ``up_to`` (inclusive) at ``rate``."""

    up_to: Decimal
    rate: Decimal


@dataclass(frozen=True, slots=True)
class YearTariffs:
    """The amounts of one calendar year (excl. VAT)."""

    year: int
    vat_rate: Decimal
    electricity_tax: tuple[Bracket, ...]
    gas_tax: tuple[Bracket, ...]
    tax_reduction_per_year: Decimal
    grid_per_year: Mapping[str, Decimal]
    unconfirmed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LargeConsumerTariffs:
    """MKT-4: the operator's monthly grid and metering amounts for large consumers."""

    fixed_per_month: Decimal
    contracted_kw_per_month: Decimal
    peak_kw_per_month: Decimal
    metering_per_month: Decimal


@dataclass(frozen=True)
class GasConversion:
    """Gas volume to the reference calorific value (MKT-1): measured m³ x the grid
    area's calorific factor of the month x, for a meter that does not convert to the
    reference temperature itself, the standard temperature factor."""

    reference_mj_per_m3: Decimal
    temperature_factor_uncorrected: Decimal
    default_calorific_factor: Decimal
    calorific: Mapping[str, Mapping[date, Decimal]]
    """Grid area (its EAN code) -> first day of the month -> factor."""
    unconfirmed: tuple[str, ...] = ()

    def calorific_factor(self, area: str | None, day: date) -> tuple[Decimal, bool]:
        """The area's factor for ``day``'s month and whether it was published (False:
        the default factor, unconfirmed)."""
        found = self.calorific.get(area or "", {}).get(day.replace(day=1))
        if found is None:
            return self.default_calorific_factor, False
        return found, True

    def factor(self, area: str | None, day: date, temperature_corrected: bool) -> Decimal:
        """The whole correction factor for gas measured on ``day``."""
        calorific, _ = self.calorific_factor(area, day)
        if temperature_corrected:
            return calorific
        return calorific * self.temperature_factor_uncorrected

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any]) -> GasConversion:
        """Build from the ``[gas_conversion]`` table (pure)."""
        w = "market_tariffs gas_conversion"
        areas: dict[str, dict[date, Decimal]] = {}
        for raw in body.get("calorific", ()):
            months = areas.setdefault(str(raw["area"]), {})
            for row in raw["factors"]:
                month = row["month"]
                if not isinstance(month, date) or month.day != 1:
                    raise RulesDataError(
                        f"{w}: area {raw['area']} month {month!r} is not the first day of a "
                        "month; write 2021-01-01"
                    )
                factor = _dec(row["factor"], f"{w} {raw['area']} {month}")
                if not Decimal("0.5") < factor < Decimal("1.5"):
                    raise RulesDataError(
                        f"{w}: area {raw['area']} {month}: factor {factor} is not a "
                        "calorific correction (expected near 1); check the file"
                    )
                months[month] = factor
        return cls(
            reference_mj_per_m3=_dec(body["reference_mj_per_m3"], w),
            temperature_factor_uncorrected=_dec(body["temperature_factor_uncorrected"], w),
            default_calorific_factor=_dec(body["default_calorific_factor"], w),
            calorific=areas,
            unconfirmed=tuple(body.get("unconfirmed", ())),
        )


@dataclass(frozen=True)
class MarketTariffs:
    """Everything ``market_tariffs.toml`` holds."""

    version: str
    netting_ends: date
    feed_in_floor_until: date
    feed_in_floor_share: Decimal
    years: Mapping[int, YearTariffs]
    large_consumer: LargeConsumerTariffs
    vzc_electricity_per_kwh: Decimal
    vzc_gas_per_m3: Decimal
    gas_conversion: GasConversion
    unconfirmed_nl: Mapping[str, str]
    """Each ``unconfirmed`` note in Dutch, as the customer's document prints it."""

    def dutch_note(self, note: str) -> str:
        """The Dutch text of an ``unconfirmed`` note (every one has one: checked on load)."""
        return self.unconfirmed_nl[note]

    def year(self, year: int) -> YearTariffs:
        """The amounts of ``year``; :class:`RulesDataError` naming the file when absent."""
        try:
            return self.years[year]
        except KeyError:
            finding = Finding(
                "MKT-1.tariff_year",
                f"market_tariffs has no amounts for {year} (has {sorted(self.years)}); "
                "add a [years.<year>] table to the rule file",
            )
            raise RulesDataError(finding.message, [finding]) from None

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any], version: str = "unversioned") -> MarketTariffs:
        """Build from a rule file body (pure)."""
        w = "market_tariffs"
        years: dict[int, YearTariffs] = {}
        for key, raw in body["years"].items():
            grid = {k: _dec(v, f"{w} years.{key}.grid.{k}") for k, v in raw["grid"].items()}
            years[int(key)] = YearTariffs(
                year=int(key),
                vat_rate=_dec(raw["vat_rate"], f"{w} vat_rate"),
                electricity_tax=tuple(
                    Bracket(_dec(b["up_to"], w), _dec(b["rate"], w)) for b in raw["electricity_tax"]
                ),
                gas_tax=tuple(
                    Bracket(_dec(b["up_to"], w), _dec(b["rate"], w)) for b in raw["gas_tax"]
                ),
                tax_reduction_per_year=_dec(raw["tax_reduction_per_year"], w),
                grid_per_year=grid,
                unconfirmed=tuple(raw.get("unconfirmed", ())),
            )
        lc = body["large_consumer"]
        conversion = GasConversion.from_mapping(body["gas_conversion"])
        dutch = {str(k): str(v) for k, v in body.get("unconfirmed_nl", {}).items()}
        notes = [(f"years.{y.year}", u) for y in years.values() for u in y.unconfirmed]
        notes += [("gas_conversion", u) for u in conversion.unconfirmed]
        for where, note in notes:
            if not dutch.get(note, "").strip():
                raise RulesDataError(
                    f"{w}: unconfirmed note {note!r} ({where}) has no Dutch text; add "
                    f'"{note}" = "..." to [unconfirmed_nl] (customers read the notes in Dutch)'
                )
        return cls(
            version=version,
            netting_ends=body["netting"]["netting_ends"],
            feed_in_floor_until=body["netting"]["feed_in_floor_until"],
            feed_in_floor_share=_dec(body["netting"]["feed_in_floor_share"], w),
            years=years,
            large_consumer=LargeConsumerTariffs(
                fixed_per_month=_dec(lc["fixed_per_month"], w),
                contracted_kw_per_month=_dec(lc["contracted_kw_per_month"], w),
                peak_kw_per_month=_dec(lc["peak_kw_per_month"], w),
                metering_per_month=_dec(lc["metering_per_month"], w),
            ),
            vzc_electricity_per_kwh=_dec(body["vzc"]["electricity_per_kwh"], w),
            vzc_gas_per_m3=_dec(body["vzc"]["gas_per_m3"], w),
            gas_conversion=conversion,
            unconfirmed_nl=dutch,
        )


@dataclass(frozen=True, slots=True)
class TerminationFeeRule:
    """The termination-fee rule for fixed contracts concluded on or after ``start`` (MKT-5)."""

    start: date
    method: str  # "table" or "price_difference"
    no_fee_days_before_end: int
    table: tuple[tuple[int, Decimal], ...] = ()
    floor: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class ModelContractRules:
    """The model contracts every supplier must offer (MKT-2, ``[model_contracts]``).

    Variable: indefinite, prices change only on ``price_change_dates`` (month, day),
    notice at most ``variable_max_notice_days``, no termination fee. Fixed: available for
    contracts starting on or after ``fixed_available_from``, a term of at least
    ``fixed_min_term_months``, the ordinary fixed-contract termination fee (MKT-5).
    """

    price_change_dates: tuple[tuple[int, int], ...]
    variable_max_notice_days: int
    fixed_available_from: date
    fixed_min_term_months: int
    source: str
    unconfirmed: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any]) -> ModelContractRules:
        """Build from the ``[model_contracts]`` table (pure); a clear error for a bad
        date, an allowed fee on the variable model or a fee rule other than the ordinary."""
        w = "market_contract_rules model_contracts"
        variable, fixed = body["variable"], body["fixed"]
        dates = []
        for raw in variable["price_change_dates"]:
            try:
                month, day = (int(part) for part in str(raw).split("-"))
                date(2000, month, day)  # a leap year, so 02-29 is a real month-day
            except ValueError:
                raise RulesDataError(
                    f"{w}.variable: price_change_dates entry {raw!r} is not a month-day; "
                    'write it as "07-01"'
                ) from None
            dates.append((month, day))
        if variable.get("termination_fee", False) is not False:
            raise RulesDataError(
                f"{w}.variable: termination_fee must be false (the model contract has none)"
            )
        if fixed.get("termination_fee", "ordinary") != "ordinary":
            raise RulesDataError(
                f"{w}.fixed: termination_fee {fixed['termination_fee']!r} is unknown; only "
                '"ordinary" (the [[termination_fee]] rule at the contract\'s start) is known'
            )
        available = fixed["available_from"]
        if not isinstance(available, date):
            raise RulesDataError(f"{w}.fixed: available_from must be a TOML date (2026-01-01)")
        return cls(
            price_change_dates=tuple(sorted(dates)),
            variable_max_notice_days=int(variable["max_notice_days"]),
            fixed_available_from=available,
            fixed_min_term_months=int(fixed["min_term_months"]),
            source=str(body.get("source", "")),
            unconfirmed=tuple(body.get("unconfirmed", ())),
        )

    def is_price_change_date(self, day: date) -> bool:
        """Whether a variable model contract may change its prices on ``day``."""
        return (day.month, day.day) in self.price_change_dates


@dataclass(frozen=True)
class ContractRules:
    """Everything ``market_contract_rules.toml`` holds (MKT-5, MKT-7)."""

    version: str
    max_notice_days: int
    termination_fee: tuple[TerminationFeeRule, ...]
    placement_rollout: Decimal
    placement_electricity_and_gas: Decimal
    placement_electricity_only: Decimal
    model_contracts: ModelContractRules | None = None
    """``None`` when the (operator's) file has no ``[model_contracts]`` section."""

    def fee_rule_for(self, concluded: date) -> TerminationFeeRule:
        """The rule in force on the day the contract was concluded (its start)."""
        applicable = [r for r in self.termination_fee if r.start <= concluded]
        if not applicable:
            raise RulesDataError(
                f"market_contract_rules has no termination-fee rule for {concluded}"
            )
        return max(applicable, key=lambda r: r.start)

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any], version: str = "unversioned") -> ContractRules:
        """Build from a rule file body (pure)."""
        w = "market_contract_rules"
        rules = []
        for raw in body["termination_fee"]:
            table = tuple(
                (int(row["below_months"]), _dec(row["fee"], w)) for row in raw.get("table", ())
            )
            if raw["method"] not in ("table", "price_difference"):
                raise RulesDataError(f"{w}: termination_fee.method {raw['method']!r} is unknown")
            rules.append(
                TerminationFeeRule(
                    start=raw["from"],
                    method=raw["method"],
                    no_fee_days_before_end=int(raw["no_fee_days_before_end"]),
                    table=table,
                    floor=_dec(raw.get("floor", "0"), w),
                )
            )
        pf = body["placement_fee"]
        return cls(
            version=version,
            max_notice_days=int(body["notice"]["max_days"]),
            termination_fee=tuple(rules),
            placement_rollout=_dec(pf["rollout"], w),
            placement_electricity_and_gas=_dec(pf["on_request_electricity_and_gas"], w),
            placement_electricity_only=_dec(pf["on_request_electricity_only"], w),
            model_contracts=(
                ModelContractRules.from_mapping(body["model_contracts"])
                if "model_contracts" in body
                else None
            ),
        )


def market_tariffs() -> MarketTariffs:
    """The packaged (or operator's) ``market_tariffs`` rule file."""
    loaded = load_rules("market_tariffs")
    return MarketTariffs.from_mapping(loaded.body, version=loaded.meta.version)


def contract_rules() -> ContractRules:
    """The packaged (or operator's) ``market_contract_rules`` rule file."""
    loaded = load_rules("market_contract_rules")
    return ContractRules.from_mapping(loaded.body, version=loaded.meta.version)
