"""The twin's local wall clock: 5-minute steps, local days and day types.

Every profile is shaped by the Dutch local time of day and the kind of day (weekday,
Saturday, Sunday or an off-peak holiday), so the UTC axis is translated once into a
:class:`Clock` that the device models share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from meetpunt.rulebook import offpeak_calendar
from meetpunt.twin.model import STEP_S, Float64Array, IntArray, TimeAxis

STEPS_PER_HOUR = 3600 // STEP_S
STEPS_PER_DAY = 24 * STEPS_PER_HOUR
STEP_H = STEP_S / 3600.0
DAYS_PER_YEAR = 365.25
HOURS_PER_YEAR = 24.0 * DAYS_PER_YEAR

WEEKDAY, SATURDAY, SUNDAY = 0, 1, 2
"""Day types: Sunday also stands for the off-peak calendar's holidays."""


@dataclass(frozen=True)
class Clock:
    """The axis's local wall clock per step and per day, with day types."""

    n_steps: int
    n_days: int
    hours: Float64Array
    """Local hour of day per step (fractional)."""
    doy: IntArray
    """Local day of year per step."""
    day: IntArray
    """Local day of the axis per step (0 = ``first_day``)."""
    bin5: IntArray
    """Local 5-minute bin of the day per step (0..287)."""
    daytype: IntArray
    """Day type per step."""
    day_type: IntArray
    """Day type per local day, from the day before ``first_day``: index ``day + 1``."""
    day_doy: IntArray
    """Day of year per local day, indexed like ``day_type``."""
    first_day: date

    def step_of_local(self, day: IntArray, bin5: IntArray) -> IntArray:
        """First step at or after local ``bin5`` of local ``day`` (-1 = the day before).

        Bins in the hour skipped by DST move to the next existing step; the repeated
        hour in October resolves to its first pass.
        """
        key = np.maximum.accumulate(self.day * STEPS_PER_DAY + self.bin5)
        target = day * STEPS_PER_DAY + bin5
        steps = np.searchsorted(key, target, side="left").astype(np.int64)
        return np.where(day < 0, bin5 - STEPS_PER_DAY, steps)


def _holidays(first: date, days: int) -> set[date]:
    calendar = offpeak_calendar()
    found: set[date] = set()
    for year in range(first.year, (first + timedelta(days=days)).year + 1):
        found.update(calendar.offpeak_holidays(year))
    return found


def _day_type(day: date, holidays: set[date]) -> int:
    if day in holidays or day.isoweekday() == 7:
        return SUNDAY
    return SATURDAY if day.isoweekday() == 6 else WEEKDAY


def clock_for(axis: TimeAxis) -> Clock:
    """The local clock of ``axis``, with day types from the off-peak holiday calendar."""
    hours, _weekday, doy, day = axis.local_clock()
    holidays = _holidays(axis.first_day - timedelta(days=1), axis.days + 1)
    dates = [axis.first_day + timedelta(days=d) for d in range(-1, axis.days)]
    day_type = np.array([_day_type(d, holidays) for d in dates], dtype=np.int64)
    day_doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.int64)
    return Clock(
        n_steps=axis.n_steps,
        n_days=axis.days,
        hours=hours,
        doy=doy,
        day=day,
        bin5=np.rint(hours * STEPS_PER_HOUR).astype(np.int64) % STEPS_PER_DAY,
        daytype=day_type[day + 1],
        day_type=day_type,
        day_doy=day_doy,
        first_day=axis.first_day,
    )
