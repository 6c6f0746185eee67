"""VEE thresholds of the meter-data hub as typed, pure values (MTR-5, MTR-6).

The numbers live in the ``vee_rules`` rule file (design rule 2, rules are data); this module
only gives them types and the small pure rules built on them: whether a drop in the registers is
a meter swap or an error (MTR-5.meter_swap / MTR-5.counter_backwards) and where
retention cuts off daily readings (MTR-6).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from math import isnan
from typing import Any

from meetpunt.errors import RulesDataError


class Status(StrEnum):
    """The status every stored value carries (MTR-5, after Elhub's VEE).

    ``rejected`` values live in the quarantine; ``missing`` intervals are recorded as
    findings; the stored tables hold the other four.
    """

    MEASURED = "measured"
    ESTIMATED_TEMPORARY = "estimated_temporary"
    ESTIMATED_FINAL = "estimated_final"
    MISSING = "missing"
    REJECTED = "rejected"
    CORRECTED = "corrected"


ESTIMATED = (Status.ESTIMATED_TEMPORARY, Status.ESTIMATED_FINAL)


@dataclass(frozen=True)
class VeeRules:
    """The thresholds of the VEE checks, from the ``vee_rules`` file."""

    capacity_tolerance: float
    phase_voltage_v: float
    future_tolerance_s: int
    voltage_min_v: float
    voltage_max_v: float
    swap_restart_max_wh: int
    history_days: int
    history_min_values: int
    daily_readings_months: int
    meter_life_start: date = date(2007, 1, 1)
    """MTR-5.implausible_*: no meter measured anything before this date."""
    register_slack_wh: int = 100
    gas_max_m3_per_h: float = 65.0
    gas_slack_dm3: int = 100
    event_min_interval_s: float = 1.0
    event_slack: int = 10
    uncorroborated_max_h: float = 24.0
    """MTR-5.contradicted_interruption (UC4): hours of a logged interruption no
    neighbour shares, above which it goes to review."""
    version: str = ""

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any], version: str = "") -> VeeRules:
        """Build from the rule file's tables; a missing key is a :class:`RulesDataError`."""
        try:
            return cls(
                capacity_tolerance=float(body["capacity"]["tolerance"]),
                phase_voltage_v=float(body["capacity"]["phase_voltage_v"]),
                future_tolerance_s=int(body["clock"]["future_tolerance_s"]),
                voltage_min_v=float(body["voltage"]["min_v"]),
                voltage_max_v=float(body["voltage"]["max_v"]),
                swap_restart_max_wh=round(float(body["meter_swap"]["restart_max_kwh"]) * 1000),
                history_days=int(body["estimation"]["history_days"]),
                history_min_values=int(body["estimation"]["history_min_values"]),
                daily_readings_months=int(body["retention"]["daily_readings_months"]),
                meter_life_start=_date(body["plausibility"]["meter_life_start"]),
                register_slack_wh=int(body["plausibility"]["register_slack_wh"]),
                gas_max_m3_per_h=float(body["plausibility"]["gas_max_m3_per_h"]),
                gas_slack_dm3=int(body["plausibility"]["gas_slack_dm3"]),
                event_min_interval_s=float(body["plausibility"]["event_min_interval_s"]),
                event_slack=int(body["plausibility"]["event_slack"]),
                uncorroborated_max_h=float(body["plausibility"]["uncorroborated_max_h"]),
                version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RulesDataError(f"vee_rules: missing or malformed entry {exc}") from exc

    def is_meter_swap(self, registers_wh: Sequence[float]) -> bool:
        """A backwards step is a new meter when every register restarted near zero
        (MTR-5.meter_swap); empty registers (NaN) are not looked at."""
        return all(isnan(v) or 0 <= v <= self.swap_restart_max_wh for v in registers_wh)

    def retention_cutoff(self, today: date, contract_start: date | None) -> date:
        """Daily readings before this date are deleted (MTR-6): 24 months back, or the
        start of the current contract when that is later."""
        months = today.year * 12 + today.month - 1 - self.daily_readings_months
        year, month = divmod(months, 12)
        day = min(today.day, _days_in_month(year, month + 1))
        cutoff = date(year, month + 1, day)
        if contract_start is not None and contract_start > cutoff:
            return contract_start
        return cutoff


def _date(value: Any) -> date:
    """A TOML date (or ISO text) as a :class:`date`."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days
