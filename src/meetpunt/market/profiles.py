"""Standard profiles: the use between two readings spread over the quarter-hours between
them (MKT-1..5), from the ``market_profiles`` rule file.

An invoice priced from an opening and a closing reading (a final invoice closing on the
switch reading, MKT-5) knows only each register's total. Spread evenly over the days, a
price change, a new tax year or the end of netting inside the period would get a share
by days, not by use (a winter month uses more than a summer one). Spread by a standard
profile, each register gets its share of every quarter-hour it counts on: the import
and export registers T1 (off-peak) and T2 (normal) only on the quarter-hours the
off-peak calendar gives them (MKT-2), a single register (``1.8.0``) on all; electricity
import by the household shape, export by the solar yield, gas by degree days of a
climate-average year. The packaged shapes are the twin's public-figure ones, not NEDU's
E1A/G1A tables (the project has none; the rule file says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from meetpunt.domain.calendar import (
    OffPeakCalendar,
    Tariff,
    quarter_hour_starts_utc,
    to_local,
)
from meetpunt.domain.findings import Finding
from meetpunt.errors import MarketError, RulesDataError
from meetpunt.rulebook import load_rules

STEP = Decimal("0.001")
"""Spread amounts are kept to the Wh (dm3), as the registers count."""
DAYS_PER_YEAR = 365.25


class Flow(StrEnum):
    """What a register counts, and so which profile spreads it."""

    IMPORT = "import"
    EXPORT = "export"
    GAS = "gas"


def _levels(raw: Any, count: int, where: str) -> tuple[float, ...]:
    """``count`` non-negative relative levels, not all zero."""
    try:
        values = tuple(float(v) for v in raw)
    except (TypeError, ValueError):
        raise RulesDataError(f"market_profiles {where}: {raw!r} is not a list of numbers") from None
    if len(values) != count or min(values) < 0 or not any(values):
        raise RulesDataError(
            f"market_profiles {where}: needs {count} levels, none negative and not all 0 "
            f"(has {len(values)})"
        )
    return values


@dataclass(frozen=True)
class StandardProfiles:
    """The ``market_profiles`` rule file: relative weights per quarter-hour per flow."""

    weekday: tuple[float, ...]
    saturday: tuple[float, ...]
    sunday: tuple[float, ...]
    """Sundays and the off-peak calendar's holidays."""
    seasonal_amplitude: float
    seasonal_peak_doy: int
    lighting_amplitude: float
    lighting_hours: tuple[int, int]
    export_monthly: tuple[float, ...]
    export_hourly: tuple[float, ...]
    gas_monthly_temp_c: tuple[float, ...]
    gas_base_temperature_c: float
    gas_heating_share: float
    version: str = "unversioned"
    unconfirmed: tuple[str, ...] = ()

    @classmethod
    def from_mapping(
        cls, body: Mapping[str, Any], version: str = "unversioned"
    ) -> StandardProfiles:
        """Build from the rule file's body (pure); a clear error naming the key."""
        try:
            imp, exp, gas = body["electricity_import"], body["electricity_export"], body["gas"]
            start, end = (int(h) for h in imp["lighting_hours"])
            share = float(gas["heating_share"])
            profiles = cls(
                weekday=_levels(imp["weekday"], 24, "electricity_import.weekday"),
                saturday=_levels(imp["saturday"], 24, "electricity_import.saturday"),
                sunday=_levels(imp["sunday"], 24, "electricity_import.sunday"),
                seasonal_amplitude=float(imp["seasonal_amplitude"]),
                seasonal_peak_doy=int(imp["seasonal_peak_doy"]),
                lighting_amplitude=float(imp["lighting_amplitude"]),
                lighting_hours=(start, end),
                export_monthly=_levels(exp["monthly"], 12, "electricity_export.monthly"),
                export_hourly=_levels(exp["hourly"], 24, "electricity_export.hourly"),
                gas_monthly_temp_c=tuple(float(t) for t in gas["monthly_temp_c"]),
                gas_base_temperature_c=float(gas["base_temperature_c"]),
                gas_heating_share=share,
                version=version,
                unconfirmed=tuple(str(u) for u in body.get("unconfirmed", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RulesDataError(
                f"market_profiles: malformed ({type(exc).__name__}: {exc}); see the packaged "
                "meetpunt/data/market_profiles.toml"
            ) from None
        if abs(profiles.seasonal_amplitude) + abs(profiles.lighting_amplitude) >= 1:
            raise RulesDataError(
                "market_profiles electricity_import: seasonal + lighting amplitude must stay "
                "below 1 (a weight would go negative)"
            )
        if len(profiles.gas_monthly_temp_c) != 12 or not 0 <= share <= 1:
            raise RulesDataError(
                "market_profiles gas: needs 12 monthly_temp_c and a heating_share in 0..1"
            )
        if share > 0 and profiles._degree_days_per_year(2001) <= 0:
            raise RulesDataError(
                "market_profiles gas: no month is below base_temperature_c, so heating has "
                "no days to go to; lower heating_share to 0 or fix the temperatures"
            )
        return profiles

    def import_weight(self, local: datetime, sunday_like: bool) -> float:
        """Household use in the quarter-hour starting at ``local`` (wall clock)."""
        table = (
            self.sunday
            if sunday_like
            else self.saturday
            if local.isoweekday() == 6
            else self.weekday
        )
        swing = math.cos(
            2 * math.pi * (local.timetuple().tm_yday - self.seasonal_peak_doy) / DAYS_PER_YEAR
        )
        start, end = self.lighting_hours
        evening = self.lighting_amplitude * swing if start <= local.hour < end else 0.0
        return table[local.hour] * (1.0 + self.seasonal_amplitude * swing + evening)

    def export_weight(self, local: datetime) -> float:
        """Solar yield in the quarter-hour starting at ``local``: the month's yield per
        day times the hour's share."""
        days = _days_in_month(local.date())
        return self.export_monthly[local.month - 1] / days * self.export_hourly[local.hour]

    def _degree_days(self, day: date) -> float:
        return max(0.0, self.gas_base_temperature_c - self.gas_monthly_temp_c[day.month - 1])

    def _degree_days_per_year(self, year: int) -> float:
        return sum(
            _days_in_month(date(year, m, 1))
            * max(0.0, self.gas_base_temperature_c - self.gas_monthly_temp_c[m - 1])
            for m in range(1, 13)
        )

    def gas_day_weight(self, day: date) -> float:
        """A day's share of a climate-average year's gas: the flat part (hot water,
        cooking) plus the heating part by the day's degree days."""
        year_days = (date(day.year + 1, 1, 1) - date(day.year, 1, 1)).days
        flat = (1 - self.gas_heating_share) / year_days
        if self.gas_heating_share == 0:
            return flat
        heating = self._degree_days(day) / self._degree_days_per_year(day.year)
        return flat + self.gas_heating_share * heating


def _days_in_month(day: date) -> int:
    first = day.replace(day=1)
    return ((first + timedelta(days=32)).replace(day=1) - first).days


def standard_profiles() -> StandardProfiles:
    """The packaged (or operator's) ``market_profiles`` rule file."""
    loaded = load_rules("market_profiles")
    return StandardProfiles.from_mapping(loaded.body, version=loaded.meta.version)


@dataclass(frozen=True, slots=True)
class Register:
    """A register to spread: its name, what it counts and which tariff's quarter-hours
    it counts on (``None``: all of them, a single-rate or gas register)."""

    name: str
    flow: Flow
    tariff: Tariff | None


def slots(
    register: Register,
    first: date,
    end: date,
    profiles: StandardProfiles,
    calendar: OffPeakCalendar,
    region: str | None = None,
) -> list[tuple[datetime, float]]:
    """Per local day ``first <= D < end`` the register's weight of the day, at the UTC
    start of its first quarter-hour on the register (so pricing puts it on the same
    tariff); days without such a quarter-hour or without weight are left out."""
    out: list[tuple[datetime, float]] = []
    day = first
    while day < end:
        starts = quarter_hour_starts_utc(day)
        if register.flow is Flow.GAS:
            out.append((starts[0], profiles.gas_day_weight(day)))
            day += timedelta(days=1)
            continue
        holiday = calendar.is_offpeak_day(day) and day.isoweekday() < 6
        sunday_like = holiday or day.isoweekday() == 7
        weight, at = 0.0, None
        for start in starts:
            if register.tariff is not None and calendar.tariff_at(start, region) is not (
                register.tariff
            ):
                continue
            local = to_local(start)
            w = (
                profiles.import_weight(local, sunday_like)
                if register.flow is Flow.IMPORT
                else profiles.export_weight(local)
            )
            if at is None:
                at = start
            weight += w
        if at is not None and weight > 0:
            out.append((at, weight))
        day += timedelta(days=1)
    return out


def spread(
    total: Decimal, weights: Sequence[tuple[datetime, float]], what: str
) -> list[tuple[datetime, Decimal]]:
    """``total`` over the slots in proportion to their weights, each to the Wh, so the
    parts add up to ``total`` exactly (each slot takes the rounded running sum less the
    rounded sum before it). Refuses use on a register that has no slot to carry it."""
    if total == 0:
        return []
    whole = math.fsum(w for _, w in weights)
    if whole <= 0:
        finding = Finding(
            "MKT-2.register_without_hours",
            f"{what}: {total} counted, but no quarter-hour of the period counts on that "
            "register (off-peak calendar and profile); check the register names, the region "
            "and the readings' days",
        )
        raise MarketError(finding.message, [finding])
    out: list[tuple[datetime, Decimal]] = []
    running, before = 0.0, Decimal(0)
    for index, (at, w) in enumerate(weights):
        running += w
        if index == len(weights) - 1:
            upto = total
        else:
            share = Decimal(repr(running / whole))
            upto = min(total, (total * share).quantize(STEP, rounding=ROUND_HALF_UP))
        out.append((at, upto - before))
        before = upto
    return out
