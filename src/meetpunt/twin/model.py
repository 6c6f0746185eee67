"""Shared types and array conventions of the grid twin.

Conventions (every twin module keeps to them):

* time runs on a :class:`TimeAxis` of 5-minute steps in UTC, from local midnight of
  the first day to local midnight after the last (so DST days have 276 or 300 steps);
  5 minutes is the least common step of the 10-minute voltage profile and the
  quarter-hour energy;
* power arrays are ``float32`` watts shaped ``(n_steps, n_connections, 3)``, one column
  per phase L1, L2, L3, indexed by :attr:`TwinConnection.index`; consumption and PV
  generation are separate non-negative arrays (net import = consumption - pv);
* voltage arrays are ``float32`` volts of the same shape (0 V where there is no phase
  or no supply);
* every random draw comes from a ``numpy.random.Generator`` handed in by the caller,
  derived from the run's seed, so the same seed gives the same output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meetpunt.domain.calendar import LOCAL_TZ, local_day_bounds_utc
from meetpunt.domain.capacity import ElectricityCapacity

STEP_S = 300
STEPS_PER_QUARTER = 3
STEPS_PER_TEN_MINUTES = 2
UTC_TS = pa.timestamp("s", tz="UTC")
"""The Arrow type of every instant the twin writes: whole seconds, UTC."""

FloatArray = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TimeAxis:
    """5-minute UTC steps covering whole local days ``first_day`` .. ``first_day + days``."""

    first_day: date
    days: int
    start_utc: datetime
    n_steps: int

    @classmethod
    def for_days(cls, first_day: date, days: int) -> TimeAxis:
        """The axis from local midnight of ``first_day`` to local midnight ``days`` later."""
        start, _ = local_day_bounds_utc(first_day)
        _, end = local_day_bounds_utc(first_day + timedelta(days=days - 1))
        return cls(first_day, days, start, int((end - start).total_seconds()) // STEP_S)

    def times_utc(self) -> npt.NDArray[np.datetime64]:
        """Start of each step as ``datetime64[s]`` (UTC)."""
        start = np.datetime64(self.start_utc.replace(tzinfo=None), "s")
        return start + np.arange(self.n_steps, dtype=np.int64) * np.timedelta64(STEP_S, "s")

    def step_start(self, step: int) -> datetime:
        """Start of step ``step`` as an aware UTC datetime."""
        return self.start_utc + timedelta(seconds=STEP_S * step)

    def step_of(self, instant: datetime) -> int:
        """The step that contains ``instant`` (aware), clipped to the axis."""
        seconds = (instant.astimezone(UTC) - self.start_utc).total_seconds()
        return int(min(max(seconds // STEP_S, 0), self.n_steps))

    def local_clock(self) -> tuple[Float64Array, IntArray, IntArray, IntArray]:
        """Per step: local hour of day (fractional), ISO weekday 1-7, day of year, day index.

        Wall-clock values in Europe/Amsterdam, so load shapes follow local habits on DST
        days too.
        """
        hours = np.empty(self.n_steps)
        weekday = np.empty(self.n_steps, dtype=np.int64)
        doy = np.empty(self.n_steps, dtype=np.int64)
        day_index = np.empty(self.n_steps, dtype=np.int64)
        for step in range(self.n_steps):
            local = self.step_start(step).astimezone(LOCAL_TZ)
            hours[step] = local.hour + local.minute / 60.0
            weekday[step] = local.isoweekday()
            doy[step] = local.timetuple().tm_yday
            day_index[step] = (local.date() - self.first_day).days
        return hours, weekday, doy, day_index


class ConnectionKind(StrEnum):
    """What is behind an electricity connection in the twin."""

    HOUSEHOLD = "household"
    SHOP = "shop"
    OFFICE = "office"


class EvCharger(StrEnum):
    """Home EV charger: none, single-phase 16 A / 32 A, or three-phase 16 A."""

    NONE = "none"
    SINGLE_3_7 = "1x3.7kW"
    SINGLE_7_4 = "1x7.4kW"
    THREE_11 = "3x11kW"

    @property
    def power_w(self) -> float:
        """Charging power at full rate."""
        return {"none": 0.0, "1x3.7kW": 3700.0, "1x7.4kW": 7400.0, "3x11kW": 11000.0}[self.value]


class MeterKind(StrEnum):
    """The meter in the cabinet. Smart meters (DSMR 4/5) log failures; ferraris does not."""

    DSMR5 = "dsmr5"
    DSMR4 = "dsmr4"
    FERRARIS = "ferraris"

    @property
    def smart(self) -> bool:
        """True for the communicating smart meters."""
        return self is not MeterKind.FERRARIS


@dataclass
class TwinConnection:
    """One electricity connection of the twin, with what is really behind it (truth).

    ``phase`` is the real phase (0, 1, 2 = L1, L2, L3) of a single-phase connection and
    ``None`` for three-phase; what the register says may differ (GIS errors) and is
    kept in ``registered_*`` fields set by the fault injector.
    """

    index: int
    ean: str
    kind: ConnectionKind
    capacity: ElectricityCapacity
    phase: int | None
    substation: str
    feeder: str
    node: int
    street: str
    house_number: int
    postcode: str
    woz_object_id: str
    meter: MeterKind
    annual_kwh: float
    pv_kwp: float = 0.0
    pv_tilt_deg: float = 35.0
    pv_azimuth_deg: float = 180.0
    ev: EvCharger = EvCharger.NONE
    heat_pump: bool = False
    gas_ean: str | None = None
    gas_annual_m3: float = 0.0
    opt_out: bool = False
    registered_phase: int | None = None
    registered_feeder: str | None = None
    registered_pv_kwp: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def three_phase(self) -> bool:
        """True when the connection uses all three phases."""
        return self.capacity.phases == 3

    def phases(self) -> tuple[int, ...]:
        """The phase columns this connection draws on."""
        return (0, 1, 2) if self.phase is None else (self.phase,)


@dataclass(frozen=True)
class Interruption:
    """A connection without supply from ``start`` to ``end`` (aware UTC), from one outage.

    ``planned`` interruptions were announced work (no compensation, UC4). The meter
    sees the interruption; the fault injector records the outage in the truth.
    """

    index: int
    outage_id: str
    start: datetime
    end: datetime
    planned: bool = False

    @property
    def duration_s(self) -> int:
        """Length in whole seconds."""
        return int((self.end - self.start).total_seconds())
