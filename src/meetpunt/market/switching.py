"""Switching, moving and terminating (MKT-5) and smart-meter fees (MKT-7), pure.

- A switch or a move on day D hands the old and the new supplier the reading of D (the
  smart meter's daily reading at local midnight); for a meter that cannot be read
  remotely the reading is estimated from the last known reading and the yearly volume,
  and marked ``estimated``.
- Notice: at most ``max_notice_days`` (30) for small consumers; a termination given on
  N ends the contract at the earliest on N + 1 + notice days (the contract "runs on for
  a month from the day after notice"), later if the customer asks.
- Termination fee: only fixed contracts, by the rule in force on the contract's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from meetpunt.domain.calendar import OffPeakCalendar, Tariff, local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, TariffKind
from meetpunt.domain.findings import Finding
from meetpunt.errors import MarketError
from meetpunt.market.pricing import ZERO, ContractTerms, Usage, money
from meetpunt.market.profiles import Flow, Register, StandardProfiles, slots, spread
from meetpunt.market.rules import ContractRules


class ReadingSource(StrEnum):
    """Where a switch reading comes from (MKT-5)."""

    SMART_METER = "smart_meter"
    ESTIMATED = "estimated"
    READ = "read"
    """Read from a meter that is not remotely read (the customer's or a mechanic's)."""


@dataclass(frozen=True, slots=True)
class SwitchReading:
    """The reading both suppliers receive for day ``day`` (register totals)."""

    day: date
    registers: dict[str, Decimal]
    source: ReadingSource

    @property
    def estimated(self) -> bool:
        """True when not read from the meter."""
        return self.source is ReadingSource.ESTIMATED


def switch_reading(
    day: date,
    meter_type: MeterType,
    meter_reading: dict[str, Decimal] | None,
    last_reading: dict[str, Decimal] | None = None,
    last_day: date | None = None,
    yearly_volume: dict[str, Decimal] | None = None,
) -> SwitchReading:
    """The day's reading: from the smart meter when it has one, else estimated.

    The estimate adds ``yearly_volume / 365`` per day since ``last_day`` to
    ``last_reading`` per register. Refuses when neither is possible.
    """
    if meter_type is MeterType.SMART and meter_reading is not None:
        return SwitchReading(day, dict(meter_reading), ReadingSource.SMART_METER)
    if last_reading is None or last_day is None or yearly_volume is None:
        finding = Finding(
            "MKT-5.reading_missing",
            f"no smart-meter reading for {day} and no last reading with a yearly volume to "
            "estimate from; give the last known reading, its day and the yearly volume",
        )
        raise MarketError(finding.message, [finding])
    if last_day > day:
        raise MarketError(f"the last reading ({last_day}) is after the switch day {day}")
    days = Decimal((day - last_day).days)
    estimate = {
        register: (value + yearly_volume.get(register, Decimal(0)) * days / Decimal(365)).quantize(
            Decimal(1)
        )
        for register, value in last_reading.items()
    }
    return SwitchReading(day, estimate, ReadingSource.ESTIMATED)


GAS_REGISTER = "24.2.1"
"""The gas meter's register (m³) as switch readings name it (OBIS 0-n:24.2.1)."""
IMPORT_REGISTERS = ("1.8.0", "1.8.1", "1.8.2")
EXPORT_REGISTERS = ("2.8.0", "2.8.1", "2.8.2")
REGISTERS = {
    GAS_REGISTER: Register(GAS_REGISTER, Flow.GAS, None),
    "1.8.0": Register("1.8.0", Flow.IMPORT, None),
    "1.8.1": Register("1.8.1", Flow.IMPORT, Tariff.T1),
    "1.8.2": Register("1.8.2", Flow.IMPORT, Tariff.T2),
    "2.8.0": Register("2.8.0", Flow.EXPORT, None),
    "2.8.1": Register("2.8.1", Flow.EXPORT, Tariff.T1),
    "2.8.2": Register("2.8.2", Flow.EXPORT, Tariff.T2),
}
"""Each register a reading may name: what it counts and on which tariff's quarter-hours
(OBIS x.8.1 off-peak T1, x.8.2 normal T2, x.8.0 single rate; MKT-2)."""


def usage_between(
    opening: SwitchReading,
    closing: SwitchReading,
    commodity: Commodity,
    profiles: StandardProfiles,
    calendar: OffPeakCalendar,
    region: str | None = None,
) -> Usage:
    """The usage between two readings (a switch or move reading and the one before or
    after it), for a final invoice or an annual settlement priced from readings (MKT-4,
    MKT-5): gas the ``24.2.1`` register in m³, electricity every import and export
    register the readings name. Each register's use is spread by the standard profile
    over the quarter-hours it counts on (T1 and T2 by the off-peak calendar of
    ``region``), one row per register and local day, so a price change, a new year or
    the end of netting inside the period gets its share by use (MKT-1..3) and each day's
    month its calorific factor. Refuses readings that go back or that name a register
    in only one of the two."""
    if closing.day <= opening.day:
        raise MarketError(
            f"the closing reading ({closing.day}) must come after the opening ({opening.day})"
        )
    names = (GAS_REGISTER,) if commodity is Commodity.GAS else IMPORT_REGISTERS + EXPORT_REGISTERS
    named = [n for n in names if n in opening.registers or n in closing.registers]
    lone = [n for n in named if (n in opening.registers) != (n in closing.registers)]
    if lone:
        finding = Finding(
            "MKT-5.reading_registers",
            f"register {', '.join(lone)} is in only one of the readings of {opening.day} and "
            f"{closing.day}; give each register in both",
        )
        raise MarketError(finding.message, [finding])
    used = {n: closing.registers[n] - opening.registers[n] for n in named}
    if any(v < 0 for v in used.values()):
        finding = Finding(
            "MKT-5.readings_back",
            f"the readings go back from {opening.day} to {closing.day} ("
            + ", ".join(f"{n} {v}" for n, v in used.items())
            + "); a replaced meter? price each meter's readings apart",
        )
        raise MarketError(finding.message, [finding])
    rows: dict[datetime, list[Decimal]] = {}
    for name, amount in used.items():
        register = REGISTERS[name]
        weights = slots(register, opening.day, closing.day, profiles, calendar, region)
        for at, part in spread(amount, weights, f"register {name}"):
            row = rows.setdefault(at, [ZERO, ZERO])
            row[1 if register.flow is Flow.EXPORT else 0] += part
    if not rows:  # nothing used: one empty row keeps the period
        rows[local_midnight_utc(opening.day)] = [ZERO, ZERO]
    return Usage.of((at, imp, exp) for at, (imp, exp) in sorted(rows.items()))


def earliest_end(notice_on: date, terms: ContractTerms, rules: ContractRules) -> date:
    """The first day the contract no longer holds after notice given on ``notice_on``."""
    if terms.notice_days > rules.max_notice_days and not terms.multisite:
        finding = Finding(
            "MKT-5.notice_period",
            f"contract {terms.reference}: notice period {terms.notice_days} days exceeds "
            f"the {rules.max_notice_days} days allowed for small consumers",
        )
        raise MarketError(finding.message, [finding])
    return notice_on + timedelta(days=1 + terms.notice_days)


def termination_end(
    notice_on: date, requested_end: date | None, terms: ContractTerms, rules: ContractRules
) -> date:
    """The end date (exclusive) of a termination: the request, or the earliest allowed."""
    earliest = earliest_end(notice_on, terms, rules)
    if requested_end is None:
        return earliest
    if requested_end < earliest:
        finding = Finding(
            "MKT-5.notice_period",
            f"contract {terms.reference}: notice given on {notice_on} ends it on {earliest} "
            f"at the earliest ({terms.notice_days} days from the day after notice), not "
            f"{requested_end}",
        )
        raise MarketError(finding.message, [finding])
    return requested_end


def _months_between(a: date, b: date) -> int:
    """Whole months from ``a`` to ``b`` (rounded down)."""
    months = (b.year - a.year) * 12 + (b.month - a.month)
    return months - (1 if b.day < a.day else 0)


def termination_fee(
    terms: ContractTerms,
    end: date,
    rules: ContractRules,
    reference_price: Decimal | None = None,
    remaining_volume: Decimal | None = None,
) -> Decimal:
    """The maximum termination fee (EUR) when ``terms`` end on ``end`` (MKT-5).

    Refuses a fee on a variable or dynamic contract. For a fixed contract the rule in
    force on its start applies: before 1 June 2023 the table by remaining term, from
    then (contract price - reference price) x remaining volume, floored at the rule's
    floor. No fee when the contract ends within the rule's days before its end date.
    """
    if terms.contract_type is not ContractType.FIXED:
        finding = Finding(
            "MKT-5.termination_fee",
            f"contract {terms.reference} is {terms.contract_type.value}: a termination fee "
            "applies only to fixed contracts; charge none",
        )
        raise MarketError(finding.message, [finding])
    if terms.end is None:
        raise MarketError(f"fixed contract {terms.reference} has no end date")
    rule = rules.fee_rule_for(terms.start)
    if end >= terms.end - timedelta(days=rule.no_fee_days_before_end):
        return Decimal("0.00")
    if rule.method == "table":
        months = _months_between(end, terms.end)
        for below, fee in rule.table:
            if months < below:
                return money(fee)
        return money(rule.table[-1][1])
    if reference_price is None or remaining_volume is None:
        finding = Finding(
            "MKT-5.termination_fee_inputs",
            f"contract {terms.reference} started on or after {rule.start}: the fee is "
            "(contract price - reference price) x remaining volume; give both",
        )
        raise MarketError(finding.message, [finding])
    prices = terms.prices_on(terms.start)
    # the contract's price: single, or the mean of normal and off-peak for double tariff
    price = (
        prices.single if terms.tariff is TariffKind.SINGLE else (prices.normal + prices.offpeak) / 2
    )
    return money(max(rule.floor, (price - reference_price) * remaining_volume))


def placement_fee(on_request: bool, with_gas: bool, rules: ContractRules) -> Decimal:
    """MKT-7: free in the operator's roll-out; on request at most the fixed amounts."""
    if not on_request:
        return rules.placement_rollout
    return rules.placement_electricity_and_gas if with_gas else rules.placement_electricity_only


def check_placement_charge(
    charged: Decimal, on_request: bool, with_gas: bool, rules: ContractRules
) -> None:
    """Refuse a placement charge above what MKT-7 allows."""
    allowed = placement_fee(on_request, with_gas, rules)
    if charged > allowed:
        finding = Finding(
            "MKT-7.placement_fee",
            f"smart-meter placement charged EUR {charged}, at most EUR {allowed} is allowed "
            f"({'on request' if on_request else 'in the roll-out'}, "
            f"{'electricity and gas' if with_gas else 'electricity only'})",
        )
        raise MarketError(finding.message, [finding])
