"""Consumption and generation profiles of the grid twin (issue 3).

What the households, shops and offices of the twin consume and what their PV systems
produce, on the twin's 5-minute :class:`~meetpunt.twin.model.TimeAxis`, with the parts
kept apart for the truth. No NEDU/MFFBAS profile ships on PyPI and demandlib breaks on
pandas 3, so this is our own stochastic model, calibrated on public Dutch figures kept
as data in ``meetpunt/data/twin_calibration.toml``:

* **base load**: an hourly day shape per kind and day type (weekday, Saturday,
  Sunday/holiday), a seasonal and evening-lighting swing, a per-connection timing
  shift, "at home on weekdays" blend and daily level; split into flat standby, a
  smooth part with 5-minute noise and appliance events (Poisson, placed with the
  shape as intensity) so quarter-hours show kW peaks. Scaled to ``annual_kwh``.
* **weather**: a daily temperature (KNMI normals + AR(1) anomaly, diurnal cycle) and a
  clear-sky index (daily regimes clear / broken / overcast from a latent AR(1), with
  within-day fluctuation), calibrated month by month to KNMI De Bilt radiation.
* **PV**: pvlib at De Bilt once per distinct orientation, times the clear-sky index.
* **EV**: at most one plug-in per day, evening-heavy, lognormal energy, full power
  until the energy is delivered.
* **heat pumps**: heating degree days plus a daily hot-water block, on/off cycling
  at low load. **Gas**: hourly, heating degree days plus hot water.
* **main fuse**: the household's own load (base and heat pump) is scaled down in the
  5 minutes where, with the EV charger, it would take a phase above what the main
  fuse holds (1.25 x its rating): people on a 1x25 A connection do not run oven,
  dryer and car at once. The topology already sizes chargers to the fuse.

Everything is vectorised with numpy and every draw comes from the generator handed
in, so the same seed gives the same arrays.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pvlib

from meetpunt.errors import RulesDataError
from meetpunt.rulebook import load_rules, offpeak_calendar, rules_path
from meetpunt.twin.model import (
    STEP_S,
    ConnectionKind,
    EvCharger,
    Float64Array,
    FloatArray,
    IntArray,
    TimeAxis,
    TwinConnection,
)

CALIBRATION_RULES = "twin_calibration"
HOUSEHOLD_TYPE_KEY = "household_type"
"""Key in :attr:`TwinConnection.extra` holding the label :func:`draw_annual_kwh` gave."""

STEPS_PER_HOUR = 3600 // STEP_S
STEPS_PER_DAY = 24 * STEPS_PER_HOUR
STEP_H = STEP_S / 3600.0
DAYS_PER_YEAR = 365.25
HOURS_PER_YEAR = 24.0 * DAYS_PER_YEAR

_KINDS = (ConnectionKind.HOUSEHOLD, ConnectionKind.SHOP, ConnectionKind.OFFICE)
_KIND_ID = {kind: i for i, kind in enumerate(_KINDS)}
WEEKDAY, SATURDAY, SUNDAY = 0, 1, 2
"""Day types: Sunday also stands for the off-peak calendar's holidays."""
CLEAR, BROKEN, OVERCAST = 0, 1, 2
"""Weather regimes of a day."""
_PVLIB_PANDAS_NOISE = r".*dayofyear is deprecated.*"
"""pvlib 0.16 still calls a pandas accessor that pandas 3 deprecates; harmless here."""


# --- calibration (data) ------------------------------------------------------------------


@dataclass(frozen=True)
class HouseholdType:
    """A household type: its label, share of households and annual kWh distribution."""

    label: str
    share: float
    mean_kwh: float
    sigma: float


@dataclass(frozen=True)
class Appliance:
    """An appliance event type: share of events, power range, duration in 5-min steps."""

    name: str
    weight: float
    power_w: tuple[float, float]
    steps: tuple[int, int]

    @property
    def mean_wh(self) -> float:
        """Expected energy of one event (uniform power x uniform whole steps)."""
        return 0.5 * sum(self.power_w) * 0.5 * sum(self.steps) * STEP_H


@dataclass(frozen=True)
class LoadShape:
    """Shape parameters of one connection kind (see the comments in the TOML file)."""

    standby_share: tuple[float, float]
    event_share: float
    day_sigma: float
    step_sigma: float
    shift_sd_h: float
    at_home: tuple[float, float]
    seasonal_amplitude: float
    seasonal_peak_doy: float
    lighting_amplitude: float
    lighting_hours: tuple[float, float]
    event_reference_kwh: float
    hourly: Float64Array
    """Relative level per day type (weekday, Saturday, Sunday) and local hour: (3, 24)."""
    appliances: tuple[Appliance, ...]

    @property
    def mean_event_wh(self) -> float:
        """Expected energy of one appliance event of this kind (before power scaling)."""
        weights = np.array([a.weight for a in self.appliances])
        energy = np.array([a.mean_wh for a in self.appliances])
        return float((weights * energy).sum() / weights.sum())

    def day_tables(self) -> Float64Array:
        """The day shapes at 5-minute bins, normalised to a weekly mean of 1: (3, 288)."""
        hours = (np.arange(STEPS_PER_DAY) + 0.5) / STEPS_PER_HOUR
        centres = np.arange(24) + 0.5
        tables = np.stack([np.interp(hours, centres, row, period=24.0) for row in self.hourly])
        weekly = 5.0 * tables[WEEKDAY].mean() + tables[SATURDAY].mean() + tables[SUNDAY].mean()
        return np.asarray(tables / (weekly / 7.0), dtype=np.float64)


@dataclass(frozen=True)
class WeatherCalibration:
    """Monthly KNMI normals and the parameters of the synthetic weather processes."""

    monthly_ghi_kwh_m2: Float64Array
    monthly_temp_c: Float64Array
    temp_anomaly_sd_c: float
    temp_anomaly_persistence: float
    diurnal_half_range_c: Float64Array
    wind_speed_ms: float
    regime_persistence: float
    broken_share: float
    clear_kc: float
    clear_kc_sd: float
    broken_kc_cloud: float
    broken_kc_sun: float
    broken_correlation_min: float
    broken_threshold_sd: float
    overcast_kc: tuple[float, float]
    overcast_correlation_min: float
    overcast_relative_sd: float


@dataclass(frozen=True)
class PvCalibration:
    """PVWatts parameters and the per-system spread."""

    gamma_pdc: float
    system_losses: float
    dc_ac_ratio: float
    inverter_efficiency: float
    albedo: float
    system_factor_sd: float
    system_factor_range: tuple[float, float]
    single_phase_max_kwp: float


@dataclass(frozen=True)
class EvCalibration:
    """Home-charging session statistics."""

    sessions_per_week_mean: float
    sessions_per_week_shape: float
    weekend_factor: float
    energy_median_kwh: float
    energy_sigma: float
    energy_kwh_range: tuple[float, float]
    arrival_hour_weights: Float64Array


@dataclass(frozen=True)
class HeatPumpCalibration:
    """Heat pump annual electricity, degree-day base, sizing and daily shape."""

    all_electric_mean_kwh: float
    hybrid_mean_kwh: float
    sigma: float
    base_temperature_c: float
    dhw_share: float
    hybrid_dhw_share: float
    full_load_hours: float
    rated_w: tuple[float, float]
    min_modulation: float
    heating_hourly: Float64Array
    dhw_start_hours: tuple[int, ...]


@dataclass(frozen=True)
class GasCalibration:
    """Annual gas distributions, degree-day base and hourly shapes."""

    household_mean_m3: float
    household_sigma: float
    shop_m3: tuple[float, float]
    office_m3: tuple[float, float]
    base_temperature_c: float
    household_heating_share: float
    business_heating_share: float
    business_weekend_factor: float
    hourly_noise_shape: float
    household_heating_hourly: Float64Array
    household_dhw_hourly: Float64Array
    business_heating_hourly: Float64Array


@dataclass(frozen=True)
class Calibration:
    """Everything in ``twin_calibration.toml``, checked and typed."""

    version: str
    latitude: float
    longitude: float
    altitude_m: float
    household_types: tuple[HouseholdType, ...]
    business_kwh: Mapping[ConnectionKind, tuple[float, float]]
    loads: Mapping[ConnectionKind, LoadShape]
    weather: WeatherCalibration
    pv: PvCalibration
    ev: EvCalibration
    heat_pump: HeatPumpCalibration
    gas: GasCalibration


class _Table:
    """A TOML table with typed getters whose errors name the file and the key."""

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, Mapping):
            raise RulesDataError(f"{CALIBRATION_RULES}: [{where}] must be a table")
        self._raw: Mapping[str, Any] = raw
        self._where = where

    def _get(self, key: str) -> Any:
        if key not in self._raw:
            raise RulesDataError(f"{CALIBRATION_RULES}: [{self._where}] lacks {key!r}")
        return self._raw[key]

    def _fail(self, key: str, what: str) -> RulesDataError:
        return RulesDataError(f"{CALIBRATION_RULES}: [{self._where}] {key} must be {what}")

    def table(self, key: str) -> _Table:
        return _Table(self._get(key), f"{self._where}.{key}".lstrip("."))

    def tables(self, key: str) -> list[_Table]:
        raw = self._get(key)
        if not isinstance(raw, list) or not raw:
            raise self._fail(key, "a non-empty array of tables")
        return [_Table(item, f"{self._where}.{key}".lstrip(".")) for item in raw]

    def text(self, key: str) -> str:
        return str(self._get(key))

    def num(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number")
        return float(value)

    def nums(self, key: str, length: int | None = None, *, signed: bool = False) -> Float64Array:
        value = self._get(key)
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise self._fail(key, "an array of numbers")
        if length is not None and len(value) != length:
            raise self._fail(key, f"an array of {length} numbers")
        if not value or (not signed and any(v < 0 for v in value)):
            raise self._fail(key, "a non-empty array of non-negative numbers")
        return np.asarray(value, dtype=np.float64)

    def pair(self, key: str) -> tuple[float, float]:
        low, high = (float(v) for v in self.nums(key, 2))
        if low > high:
            raise self._fail(key, "[low, high] with low <= high")
        return low, high


def _load_shape(t: _Table) -> LoadShape:
    appliances = tuple(
        Appliance(
            name=a.text("name"),
            weight=a.num("weight"),
            power_w=a.pair("power_w"),
            steps=_duration_steps(a.pair("duration_min")),
        )
        for a in t.tables("appliances")
    )
    start, end = t.pair("lighting_hours")
    return LoadShape(
        standby_share=t.pair("standby_share"),
        event_share=t.num("event_share"),
        day_sigma=t.num("day_sigma"),
        step_sigma=t.num("step_sigma"),
        shift_sd_h=t.num("shift_sd_h"),
        at_home=t.pair("at_home"),
        seasonal_amplitude=t.num("seasonal_amplitude"),
        seasonal_peak_doy=t.num("seasonal_peak_doy"),
        lighting_amplitude=t.num("lighting_amplitude"),
        lighting_hours=(start, end),
        event_reference_kwh=t.num("event_reference_kwh"),
        hourly=np.stack([t.nums(day, 24) for day in ("weekday", "saturday", "sunday")]),
        appliances=appliances,
    )


def _duration_steps(minutes: tuple[float, float]) -> tuple[int, int]:
    low = max(1, round(minutes[0] * 60 / STEP_S))
    return low, max(low, round(minutes[1] * 60 / STEP_S))


def parse_calibration(body: Mapping[str, Any], version: str = "unversioned") -> Calibration:
    """Build a :class:`Calibration` from the body of the rule file (pure).

    Raises :class:`RulesDataError` naming the table and key when data is missing.
    """
    root = _Table(body, "")
    site, weather, pv = root.table("site"), root.table("weather"), root.table("pv")
    ev, hp, gas, loads = (
        root.table("ev"),
        root.table("heat_pump"),
        root.table("gas"),
        root.table("load"),
    )
    types = tuple(
        HouseholdType(t.text("label"), t.num("share"), t.num("mean_kwh"), t.num("sigma"))
        for t in root.tables("household_types")
    )
    business = root.table("business_annual_kwh")
    return Calibration(
        version=version,
        latitude=site.num("latitude"),
        longitude=site.num("longitude"),
        altitude_m=site.num("altitude_m"),
        household_types=types,
        business_kwh={
            ConnectionKind.SHOP: business.pair("shop"),
            ConnectionKind.OFFICE: business.pair("office"),
        },
        loads={kind: _load_shape(loads.table(kind.value)) for kind in _KINDS},
        weather=WeatherCalibration(
            monthly_ghi_kwh_m2=weather.nums("monthly_ghi_kwh_m2", 12),
            monthly_temp_c=weather.nums("monthly_temp_c", 12, signed=True),
            temp_anomaly_sd_c=weather.num("temp_anomaly_sd_c"),
            temp_anomaly_persistence=weather.num("temp_anomaly_persistence"),
            diurnal_half_range_c=weather.nums("diurnal_half_range_c", 3),
            wind_speed_ms=weather.num("wind_speed_ms"),
            regime_persistence=weather.num("regime_persistence"),
            broken_share=weather.num("broken_share"),
            clear_kc=weather.num("clear_kc"),
            clear_kc_sd=weather.num("clear_kc_sd"),
            broken_kc_cloud=weather.num("broken_kc_cloud"),
            broken_kc_sun=weather.num("broken_kc_sun"),
            broken_correlation_min=weather.num("broken_correlation_min"),
            broken_threshold_sd=weather.num("broken_threshold_sd"),
            overcast_kc=weather.pair("overcast_kc"),
            overcast_correlation_min=weather.num("overcast_correlation_min"),
            overcast_relative_sd=weather.num("overcast_relative_sd"),
        ),
        pv=PvCalibration(
            gamma_pdc=pv.num("gamma_pdc"),
            system_losses=pv.num("system_losses"),
            dc_ac_ratio=pv.num("dc_ac_ratio"),
            inverter_efficiency=pv.num("inverter_efficiency"),
            albedo=pv.num("albedo"),
            system_factor_sd=pv.num("system_factor_sd"),
            system_factor_range=pv.pair("system_factor_range"),
            single_phase_max_kwp=pv.num("single_phase_max_kwp"),
        ),
        ev=EvCalibration(
            sessions_per_week_mean=ev.num("sessions_per_week_mean"),
            sessions_per_week_shape=ev.num("sessions_per_week_shape"),
            weekend_factor=ev.num("weekend_factor"),
            energy_median_kwh=ev.num("energy_median_kwh"),
            energy_sigma=ev.num("energy_sigma"),
            energy_kwh_range=ev.pair("energy_kwh_range"),
            arrival_hour_weights=ev.nums("arrival_hour_weights", 24),
        ),
        heat_pump=HeatPumpCalibration(
            all_electric_mean_kwh=hp.num("all_electric_mean_kwh"),
            hybrid_mean_kwh=hp.num("hybrid_mean_kwh"),
            sigma=hp.num("sigma"),
            base_temperature_c=hp.num("base_temperature_c"),
            dhw_share=hp.num("dhw_share"),
            hybrid_dhw_share=hp.num("hybrid_dhw_share"),
            full_load_hours=hp.num("full_load_hours"),
            rated_w=hp.pair("rated_w"),
            min_modulation=hp.num("min_modulation"),
            heating_hourly=hp.nums("heating_hourly", 24),
            dhw_start_hours=tuple(int(h) % 24 for h in hp.nums("dhw_start_hours")),
        ),
        gas=GasCalibration(
            household_mean_m3=gas.num("household_mean_m3"),
            household_sigma=gas.num("household_sigma"),
            shop_m3=gas.pair("shop_m3"),
            office_m3=gas.pair("office_m3"),
            base_temperature_c=gas.num("base_temperature_c"),
            household_heating_share=gas.num("household_heating_share"),
            business_heating_share=gas.num("business_heating_share"),
            business_weekend_factor=gas.num("business_weekend_factor"),
            hourly_noise_shape=gas.num("hourly_noise_shape"),
            household_heating_hourly=gas.nums("household_heating_hourly", 24),
            household_dhw_hourly=gas.nums("household_dhw_hourly", 24),
            business_heating_hourly=gas.nums("business_heating_hourly", 24),
        ),
    )


@lru_cache(maxsize=4)
def _cached_calibration(_override: str | None) -> Calibration:
    loaded = load_rules(CALIBRATION_RULES)
    return parse_calibration(loaded.body, version=loaded.meta.version)


def load_calibration() -> Calibration:
    """The profile calibration (``twin_calibration`` rule file, override first), cached."""
    override = rules_path(CALIBRATION_RULES)
    return _cached_calibration(None if override is None else str(override))


# --- draws used by the topology builder --------------------------------------------------


def draw_annual_kwh(kind: ConnectionKind, rng: np.random.Generator) -> tuple[str, float]:
    """A household type label and annual base-load kWh (or ``kind`` and kWh for a business).

    Households: type by CBS share, kWh lognormal around the type's mean. Shops and
    offices: log-uniform in the calibration's range. EV and heat pump come on top.
    """
    cal = load_calibration()
    if kind is ConnectionKind.HOUSEHOLD:
        shares = np.array([t.share for t in cal.household_types])
        chosen = cal.household_types[int(rng.choice(len(shares), p=shares / shares.sum()))]
        factor = math.exp(chosen.sigma * float(rng.standard_normal()) - chosen.sigma**2 / 2)
        return chosen.label, round(chosen.mean_kwh * factor, 1)
    low, high = cal.business_kwh[kind]
    return kind.value, round(math.exp(float(rng.uniform(math.log(low), math.log(high)))), 1)


def draw_gas_m3(kind: ConnectionKind, rng: np.random.Generator) -> float:
    """Annual gas use in m3: lognormal for households, log-uniform for businesses."""
    gas = load_calibration().gas
    if kind is ConnectionKind.HOUSEHOLD:
        sigma = gas.household_sigma
        return round(
            gas.household_mean_m3 * math.exp(sigma * float(rng.standard_normal()) - sigma**2 / 2), 1
        )
    low, high = gas.shop_m3 if kind is ConnectionKind.SHOP else gas.office_m3
    return round(math.exp(float(rng.uniform(math.log(low), math.log(high)))), 1)


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvSession:
    """One home charging session (truth): ``[start_step, end_step)`` at ``power_w``.

    Clipped to the axis; ``energy_kwh`` is what was delivered within it.
    """

    index: int
    start_step: int
    end_step: int
    power_w: float
    energy_kwh: float


@dataclass(frozen=True)
class Weather:
    """The twin's synthetic weather at De Bilt (truth, and the driver of PV/heat)."""

    temp_daily_c: Float64Array
    """Daily mean outdoor temperature per local day of the axis."""
    temp_c: Float64Array
    """Outdoor temperature per step."""
    clear_sky_index: Float64Array
    """Global horizontal irradiance / clear-sky irradiance per step."""
    regime: IntArray
    """Weather regime per local day: 0 clear, 1 broken clouds, 2 overcast."""


@dataclass
class PowerProfiles:
    """What every connection consumes and generates; column ``j`` is ``conns[j]``.

    ``consumption_w`` and ``pv_w`` are float32 W shaped ``(n_steps, n_conn, 3)`` on the
    connection's phases; ``base_w``, ``ev_w`` and ``heat_pump_w`` are the float32 totals
    over phases shaped ``(n_steps, n_conn)``; ``gas_m3_hourly`` is float64
    ``(n_steps // 12, n_conn)``, 0 for connections without gas.
    """

    consumption_w: FloatArray
    pv_w: FloatArray
    base_w: FloatArray
    ev_w: FloatArray
    heat_pump_w: FloatArray
    ev_sessions: list[EvSession]
    gas_m3_hourly: Float64Array
    weather: Weather


# --- local clock -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clock:
    """The axis's local wall clock per step and per day, with day types."""

    n_steps: int
    n_days: int
    hours: Float64Array
    doy: IntArray
    day: IntArray
    bin5: IntArray
    daytype: IntArray
    day_type: IntArray
    day_doy: IntArray
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


def _clock(axis: TimeAxis) -> _Clock:
    hours, _weekday, doy, day = axis.local_clock()
    holidays = _holidays(axis.first_day - timedelta(days=1), axis.days + 1)
    dates = [axis.first_day + timedelta(days=d) for d in range(-1, axis.days)]
    day_type = np.array([_day_type(d, holidays) for d in dates], dtype=np.int64)
    day_doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.int64)
    return _Clock(
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


# --- random processes --------------------------------------------------------------------


def _ar1(n: int, correlation_steps: float, rng: np.random.Generator) -> Float64Array:
    """Stationary AR(1)-like Gaussian series, unit variance, e-folding time in steps.

    An exponential moving filter of white noise (truncated at 6 correlation times),
    computed by convolution so it is vectorised.
    """
    tau = max(correlation_steps, 1e-6)
    length = int(6 * tau) + 1
    kernel = np.exp(-np.arange(length) / tau)
    kernel /= np.sqrt((kernel**2).sum())
    noise = rng.standard_normal(n + length - 1)
    return np.asarray(np.convolve(noise, kernel, mode="valid"), dtype=np.float64)


def _persistence_steps(lag1: float) -> float:
    """The e-folding time (steps) of an AR(1) with this lag-1 correlation."""
    return -1.0 / math.log(min(max(lag1, 1e-6), 0.999))


def _lognormal_unit(sigma: Any, z: Any) -> Any:
    """exp(sigma z - sigma^2/2): mean-1 lognormal factors from standard normals ``z``."""
    return np.exp(sigma * z - 0.5 * np.square(sigma))


def _periodic_monthly(values: Float64Array, doy: IntArray) -> Float64Array:
    """Monthly values (Jan..Dec) as mid-month points, linearly interpolated by day of year."""
    month_len = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    mid = np.cumsum(month_len) - month_len / 2.0 + 0.5
    return np.asarray(np.interp(doy, mid, values, period=365.0), dtype=np.float64)


def _norm_cdf(x: Float64Array) -> Float64Array:
    erf = np.array([math.erf(v / math.sqrt(2.0)) for v in x.tolist()], dtype=np.float64)
    return np.asarray(0.5 * (1.0 + erf), dtype=np.float64)


def expected_degree_days(doy: IntArray, base_c: float, cal: Calibration) -> Float64Array:
    """Expected heating degree days max(0, base - T) per day of year under the twin's weather.

    Closed form for the Gaussian daily anomaly around the KNMI normal, so annual shares
    of heat demand are exact in expectation.
    """
    mean = _periodic_monthly(cal.weather.monthly_temp_c, doy)
    sd = cal.weather.temp_anomaly_sd_c
    z = (base_c - mean) / sd
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    return np.asarray(sd * pdf + (base_c - mean) * _norm_cdf(z), dtype=np.float64)


def annual_degree_days(base_c: float, cal: Calibration) -> float:
    """Expected heating degree days in an average year (365.25 days)."""
    return float(expected_degree_days(np.arange(1, 366), base_c, cal).mean() * DAYS_PER_YEAR)


# --- weather -----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _clear_sky_monthly(latitude: float, longitude: float, altitude: float) -> tuple[float, ...]:
    """Monthly clear-sky GHI (kWh/m2) at the site from pvlib's Ineichen model (2021, hourly)."""
    times = pd.date_range("2021-01-01 00:30", periods=8760, freq="h", tz="UTC")
    site = pvlib.location.Location(latitude, longitude, tz="UTC", altitude=altitude)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PVLIB_PANDAS_NOISE)
        ghi = np.asarray(site.get_clearsky(times, model="ineichen")["ghi"], dtype=np.float64)
    months = np.asarray(times.month, dtype=np.int64) - 1
    return tuple(float(v) for v in np.bincount(months, weights=ghi, minlength=12) / 1000.0)


def _regime_probabilities(
    target: Float64Array, w: WeatherCalibration
) -> tuple[Float64Array, Float64Array]:
    """P(clear), P(overcast) per day so the expected clear-sky index equals ``target``."""
    m_c = w.clear_kc
    m_b = w.broken_kc_cloud + 0.5 * (w.broken_kc_sun - w.broken_kc_cloud)
    m_o = 0.5 * sum(w.overcast_kc)
    p_b = np.full_like(target, w.broken_share)
    p_c = (target - p_b * m_b - (1 - p_b) * m_o) / (m_c - m_o)
    dull = p_c < 0  # duller than the mix allows: no clear days, fewer broken ones
    p_b = np.where(dull, np.clip((target - m_o) / (m_b - m_o), 0.0, 1.0), p_b)
    p_c = np.where(dull, 0.0, p_c)
    bright = p_c > 1 - p_b  # brighter: no overcast days, more clear ones
    p_c = np.where(bright, np.clip((target - m_b) / (m_c - m_b), 0.0, 1.0), p_c)
    p_b = np.where(bright, 1 - p_c, p_b)
    return p_c, np.clip(1 - p_c - p_b, 0.0, 1.0)


def _thresholds(p: Float64Array, upper: bool) -> Float64Array:
    normal = NormalDist()
    out = []
    for value in p:
        if value <= 0:
            out.append(math.inf if upper else -math.inf)
        elif value >= 1:
            out.append(-math.inf if upper else math.inf)
        else:
            out.append(normal.inv_cdf(1 - value) if upper else normal.inv_cdf(value))
    return np.asarray(out, dtype=np.float64)


def simulate_weather(
    axis: TimeAxis, rng: np.random.Generator, cal: Calibration | None = None
) -> Weather:
    """Daily temperature and 5-minute clear-sky index for the axis at De Bilt.

    The daily regime (clear / broken / overcast) follows a latent AR(1) index cut at
    thresholds that make each month's expected clear-sky index equal to KNMI radiation
    divided by clear-sky radiation; within a day the index fluctuates by regime.
    """
    cal = cal or load_calibration()
    return _simulate_weather(_clock(axis), rng, cal)


def _simulate_weather(clock: _Clock, rng: np.random.Generator, cal: Calibration) -> Weather:
    w = cal.weather
    n_days, n_steps = clock.n_days, clock.n_steps
    doy = clock.day_doy[1:]
    clear_sky = np.asarray(_clear_sky_monthly(cal.latitude, cal.longitude, cal.altitude_m))
    target = _periodic_monthly(w.monthly_ghi_kwh_m2 / clear_sky, doy)
    p_clear, p_overcast = _regime_probabilities(target, w)
    latent = _ar1(n_days, _persistence_steps(w.regime_persistence), rng)
    regime = np.full(n_days, BROKEN, dtype=np.int64)
    regime[latent > _thresholds(p_clear, upper=True)] = CLEAR
    regime[latent < _thresholds(p_overcast, upper=False)] = OVERCAST

    anomaly = w.temp_anomaly_sd_c * _ar1(
        n_days, _persistence_steps(w.temp_anomaly_persistence), rng
    )
    temp_daily = _periodic_monthly(w.monthly_temp_c, doy) + anomaly
    day_regime = regime[clock.day]
    diurnal = w.diurnal_half_range_c[day_regime] * np.cos(2 * np.pi * (clock.hours - 15.0) / 24.0)
    temp = temp_daily[clock.day] + diurnal

    clear = w.clear_kc + w.clear_kc_sd * rng.standard_normal(n_steps)
    field = _ar1(n_steps, w.broken_correlation_min * 60 / STEP_S, rng)
    threshold = w.broken_threshold_sd * rng.standard_normal(n_days)
    sunny = 1.0 / (1.0 + np.exp(-(field - threshold[clock.day]) / 0.25))
    broken = w.broken_kc_cloud + (w.broken_kc_sun - w.broken_kc_cloud) * sunny
    level = rng.uniform(*w.overcast_kc, size=n_days)
    slow = _ar1(n_steps, w.overcast_correlation_min * 60 / STEP_S, rng)
    overcast = level[clock.day] * (1.0 + w.overcast_relative_sd * slow)
    index = np.select([day_regime == CLEAR, day_regime == BROKEN], [clear, broken], overcast)
    return Weather(
        temp_daily_c=temp_daily,
        temp_c=temp,
        clear_sky_index=np.clip(index, 0.02, 1.2),
        regime=regime,
    )


# --- PV ----------------------------------------------------------------------------------


def pv_ac_per_kwp(
    axis: TimeAxis,
    weather: Weather,
    orientations: Sequence[tuple[float, float]],
    cal: Calibration | None = None,
) -> Float64Array:
    """AC output (W) of 1 kWp per step for each ``(tilt, azimuth)``: ``(n_steps, n_orient)``.

    pvlib at the calibration site (De Bilt): Ineichen clear sky times the clear-sky
    index, Erbs decomposition, Hay-Davies transposition, physical IAM on the beam,
    Faiman cell temperature, PVWatts DC (with system losses) and inverter.
    """
    cal = cal or load_calibration()
    n_orient = len(orientations)
    if n_orient == 0 or axis.n_steps == 0:
        return np.zeros((axis.n_steps, n_orient))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PVLIB_PANDAS_NOISE)
        return _pv_chain(axis, weather, orientations, cal)


def _pv_chain(
    axis: TimeAxis, weather: Weather, orientations: Sequence[tuple[float, float]], cal: Calibration
) -> Float64Array:
    pv = cal.pv
    times = pd.DatetimeIndex(axis.times_utc() + np.timedelta64(STEP_S // 2, "s")).tz_localize("UTC")
    site = pvlib.location.Location(cal.latitude, cal.longitude, tz="UTC", altitude=cal.altitude_m)
    solpos = site.get_solarposition(times)
    clear = site.get_clearsky(times, model="ineichen", solar_position=solpos)
    zenith = np.asarray(solpos["apparent_zenith"], dtype=np.float64)
    azimuth = np.asarray(solpos["azimuth"], dtype=np.float64)
    ghi = np.asarray(clear["ghi"], dtype=np.float64) * weather.clear_sky_index
    split = pvlib.irradiance.erbs(ghi, zenith, times)
    dni = np.nan_to_num(np.asarray(split["dni"], dtype=np.float64))
    dhi = np.nan_to_num(np.asarray(split["dhi"], dtype=np.float64))
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=np.float64)
    tilt = np.array([o[0] for o in orientations], dtype=np.float64)[None, :]
    surface_azimuth = np.array([o[1] for o in orientations], dtype=np.float64)[None, :]
    poa = pvlib.irradiance.get_total_irradiance(
        tilt,
        surface_azimuth,
        zenith[:, None],
        azimuth[:, None],
        dni[:, None],
        ghi[:, None],
        dhi[:, None],
        dni_extra=dni_extra[:, None],
        albedo=pv.albedo,
        model="haydavies",
    )
    aoi = pvlib.irradiance.aoi(tilt, surface_azimuth, zenith[:, None], azimuth[:, None])
    beam = np.nan_to_num(np.asarray(poa["poa_direct"], dtype=np.float64))
    diffuse = np.nan_to_num(np.asarray(poa["poa_diffuse"], dtype=np.float64))
    effective = beam * np.asarray(pvlib.iam.physical(aoi), dtype=np.float64) + diffuse
    cell = pvlib.temperature.faiman(
        beam + diffuse, weather.temp_c[:, None], cal.weather.wind_speed_ms
    )
    dc = pvlib.pvsystem.pvwatts_dc(effective, cell, 1000.0, pv.gamma_pdc) * (1.0 - pv.system_losses)
    inverter_dc = 1000.0 / pv.dc_ac_ratio / pv.inverter_efficiency
    ac = pvlib.inverter.pvwatts(np.maximum(dc, 0.0), inverter_dc, pv.inverter_efficiency)
    return np.clip(np.nan_to_num(np.asarray(ac, dtype=np.float64)), 0.0, None)


def _pv(
    conns: Sequence[TwinConnection],
    axis: TimeAxis,
    weather: Weather,
    cal: Calibration,
    rng: np.random.Generator,
) -> FloatArray:
    """Total AC output per connection (W): per-kWp output x kWp x system factor."""
    out = np.zeros((axis.n_steps, len(conns)), dtype=np.float32)
    cols = [j for j, c in enumerate(conns) if c.pv_kwp > 0]
    if not cols:
        return out
    keys = [(round(conns[j].pv_tilt_deg, 1), round(conns[j].pv_azimuth_deg, 1)) for j in cols]
    orientations = sorted(set(keys))
    per_kwp = pv_ac_per_kwp(axis, weather, orientations, cal).astype(np.float32)
    which = np.array([orientations.index(k) for k in keys])
    low, high = cal.pv.system_factor_range
    factor = np.clip(1.0 + cal.pv.system_factor_sd * rng.standard_normal(len(cols)), low, high)
    kwp = np.array([conns[j].pv_kwp for j in cols]) * factor
    out[:, cols] = per_kwp[:, which] * kwp.astype(np.float32)[None, :]
    return out


# --- base load ---------------------------------------------------------------------------


def _season(shape: LoadShape, clock: _Clock) -> Float64Array:
    """Seasonal factor per step: 1 + a cos(...) plus the evening-lighting swing (mean 1)."""
    swing = np.cos(2 * np.pi * (clock.doy - shape.seasonal_peak_doy) / DAYS_PER_YEAR)
    start, end = shape.lighting_hours
    evening = (clock.hours >= start) & (clock.hours < end)
    return np.asarray(
        1.0 + shape.seasonal_amplitude * swing + shape.lighting_amplitude * swing * evening,
        dtype=np.float64,
    )


def _rasterise(
    column: IntArray,
    start: IntArray,
    steps: Float64Array,
    power: Float64Array,
    n_steps: int,
    n_cols: int,
) -> tuple[Float64Array, Float64Array]:
    """Blocks at ``power`` from ``start`` for ``steps`` (fractional last step) on a grid.

    Returns the ``(n_steps, n_cols)`` power grid and the energy (Wh) of each block that
    falls inside the grid. Vectorised with repeat + bincount.
    """
    grid = np.zeros((n_steps, n_cols))
    if len(start) == 0 or n_steps == 0:
        return grid, np.zeros(len(start))
    full = np.floor(steps).astype(np.int64)
    frac = steps - full
    lengths = full + (frac > 1e-9)
    block = np.repeat(np.arange(len(start)), lengths)
    first = np.cumsum(lengths) - lengths
    offset = np.arange(len(block)) - np.repeat(first, lengths)
    value = power[block] * np.where(offset < full[block], 1.0, frac[block])
    position = start[block] + offset
    inside = (position >= 0) & (position < n_steps)
    flat = position[inside] * n_cols + column[block[inside]]
    grid += np.bincount(flat, weights=value[inside], minlength=n_steps * n_cols).reshape(
        n_steps, n_cols
    )
    energy = np.bincount(block[inside], weights=value[inside], minlength=len(start)) * STEP_H
    return grid, np.asarray(energy, dtype=np.float64)


def _base_load(
    conns: Sequence[TwinConnection], clock: _Clock, cal: Calibration, rng: np.random.Generator
) -> FloatArray:
    """Household and business base load (W) per step and connection, scaled to annual_kwh."""
    n_s, n_c = clock.n_steps, len(conns)
    if n_c == 0 or n_s == 0:
        return np.zeros((n_s, n_c), dtype=np.float32)
    shapes = [cal.loads[k] for k in _KINDS]
    kind = np.array([_KIND_ID[c.kind] for c in conns])
    tables = np.stack([s.day_tables() for s in shapes]).astype(np.float32)  # (kind, daytype, bin)
    weekday_mean = tables[:, WEEKDAY].mean(axis=1) / tables[:, SUNDAY].mean(axis=1)
    # "at home on weekdays": the Sunday shape carrying the weekday's energy
    at_home = (tables[:, SUNDAY] * weekday_mean[:, None]).astype(np.float32)
    season = np.stack([_season(s, clock) for s in shapes], axis=1).astype(np.float32)

    def per_kind(values: Sequence[float]) -> Float64Array:
        return np.asarray(np.asarray(values, dtype=np.float64)[kind], dtype=np.float64)

    standby = rng.uniform(
        per_kind([s.standby_share[0] for s in shapes]),
        per_kind([s.standby_share[1] for s in shapes]),
    )
    home = rng.uniform(
        per_kind([s.at_home[0] for s in shapes]), per_kind([s.at_home[1] for s in shapes])
    )
    shift = np.rint(
        rng.standard_normal(n_c) * per_kind([s.shift_sd_h for s in shapes]) * STEPS_PER_HOUR
    )
    event_share = per_kind([s.event_share for s in shapes])
    day_sigma = per_kind([s.day_sigma for s in shapes])
    step_sigma = per_kind([s.step_sigma for s in shapes]).astype(np.float32)
    mean_w = np.array([max(c.annual_kwh, 0.0) for c in conns]) * 1000.0 / HOURS_PER_YEAR
    day_factor = _lognormal_unit(day_sigma, rng.standard_normal((clock.n_days, n_c))).astype(
        np.float32
    )

    bins = (clock.bin5[:, None] - shift.astype(np.int64)[None, :]) % STEPS_PER_DAY
    shape = tables.reshape(-1)[(kind[None, :] * 3 + clock.daytype[:, None]) * STEPS_PER_DAY + bins]
    blend = (home[None, :] * (clock.daytype == WEEKDAY)[:, None]).astype(np.float32)
    shape += blend * (at_home.reshape(-1)[kind[None, :] * STEPS_PER_DAY + bins] - shape)
    del bins, blend
    intensity = shape * season[:, kind] * day_factor[clock.day]
    intensity *= ((1.0 - standby) * mean_w).astype(np.float32)[None, :]  # W, shaped part
    del shape

    noise = rng.standard_normal((n_s, n_c), dtype=np.float32)
    smooth = intensity * _lognormal_unit(step_sigma, noise).astype(np.float32)
    smooth *= (1.0 - event_share).astype(np.float32)[None, :]
    del noise
    events = _appliance_events(conns, kind, intensity, event_share, cal, rng)
    base = smooth + events.astype(np.float32)
    base += (standby * mean_w).astype(np.float32)[None, :]
    return np.asarray(base, dtype=np.float32)


def _appliance_events(
    conns: Sequence[TwinConnection],
    kind: IntArray,
    intensity: FloatArray,
    event_share: Float64Array,
    cal: Calibration,
    rng: np.random.Generator,
) -> Float64Array:
    """Appliance events (W): Poisson count per connection, start times ~ ``intensity``.

    The expected event energy equals ``event_share`` of the shaped energy; all
    connections are sampled at once through one cumulative sum over the
    connection-major flattened intensity.
    """
    n_s, n_c = intensity.shape
    cumulative = np.cumsum(intensity.T.ravel(), dtype=np.float64)
    ends = cumulative[n_s - 1 :: n_s]
    starts = np.concatenate([[0.0], ends[:-1]])
    shaped_wh = (ends - starts) * STEP_H
    scale = np.ones(n_c)
    for k, shape in enumerate(cal.loads[x] for x in _KINDS):
        if shape.event_reference_kwh > 0:
            mine = kind == k
            annual = np.array([conns[int(j)].annual_kwh for j in np.flatnonzero(mine)])
            scale[mine] = np.maximum(1.0, annual / shape.event_reference_kwh)
    mean_wh = np.array([cal.loads[k].mean_event_wh for k in _KINDS])[kind] * scale
    count = rng.poisson(event_share * shaped_wh / mean_wh)
    owner = np.repeat(np.arange(n_c), count)
    position = np.searchsorted(
        cumulative, starts[owner] + rng.random(len(owner)) * (ends - starts)[owner]
    )
    start = np.clip(position - owner * n_s, 0, n_s - 1)
    power = np.zeros(len(owner))
    steps = np.zeros(len(owner))
    for k, kind_name in enumerate(_KINDS):
        mine = np.flatnonzero(kind[owner] == k)
        if len(mine) == 0:
            continue
        appliances = cal.loads[kind_name].appliances
        weights = np.array([a.weight for a in appliances])
        chosen = rng.choice(len(appliances), size=len(mine), p=weights / weights.sum())
        low = np.array([a.power_w[0] for a in appliances])[chosen]
        high = np.array([a.power_w[1] for a in appliances])[chosen]
        power[mine] = rng.uniform(low, high) * scale[owner[mine]]
        s_low = np.array([a.steps[0] for a in appliances])[chosen]
        s_high = np.array([a.steps[1] for a in appliances])[chosen]
        steps[mine] = rng.integers(s_low, s_high + 1)
    grid, _ = _rasterise(owner, start, steps, power, n_s, n_c)
    return grid


# --- EV charging -------------------------------------------------------------------------


def _ev(
    conns: Sequence[TwinConnection], clock: _Clock, cal: Calibration, rng: np.random.Generator
) -> tuple[Float64Array, list[EvSession]]:
    """EV charging power (W) per step and connection, and the sessions (truth)."""
    ev = cal.ev
    n_s, n_c = clock.n_steps, len(conns)
    cols = np.array([j for j, c in enumerate(conns) if c.ev is not EvCharger.NONE], dtype=np.int64)
    out = np.zeros((n_s, n_c))
    if len(cols) == 0 or n_s == 0:
        return out, []
    n_days = clock.n_days + 1  # day -1 too: a car plugged in the evening before charges at 00:00
    shape = ev.sessions_per_week_shape
    rate = rng.gamma(shape, ev.sessions_per_week_mean / shape, size=len(cols))
    day_weight = np.where(clock.day_type == WEEKDAY, 1.0, ev.weekend_factor)
    day_weight /= (5.0 + 2.0 * ev.weekend_factor) / 7.0
    chance = np.clip(rate[None, :] / 7.0 * day_weight[:, None], 0.0, 0.95)
    day, which = np.nonzero(rng.random((n_days, len(cols))) < chance)
    hours = ev.arrival_hour_weights / ev.arrival_hour_weights.sum()
    arrival_bin = rng.choice(24, size=len(day), p=hours) * STEPS_PER_HOUR + rng.integers(
        0, STEPS_PER_HOUR, size=len(day)
    )
    start = clock.step_of_local(day - 1, arrival_bin)
    low, high = ev.energy_kwh_range
    energy = np.clip(
        ev.energy_median_kwh * np.exp(ev.energy_sigma * rng.standard_normal(len(day))), low, high
    )
    power = np.array([conns[j].ev.power_w for j in cols])[which]
    steps = energy * 1000.0 / power / STEP_H

    order = np.lexsort((start, which))
    start, which, steps, power = start[order], which[order], steps[order], power[order]
    for _ in range(100):  # a late long session delays the next plug-in of the same car
        end = start + np.ceil(steps).astype(np.int64)
        clash = (which[1:] == which[:-1]) & (start[1:] < end[:-1])
        if not clash.any():
            break
        start[1:][clash] = end[:-1][clash]
    end = start + np.ceil(steps).astype(np.int64)
    grid, delivered_wh = _rasterise(which, start, steps, power, n_s, len(cols))
    out[:, cols] = grid
    keep = (end > 0) & (start < n_s) & (delivered_wh > 0)
    sessions = [
        EvSession(
            index=conns[int(cols[w])].index,
            start_step=int(max(s, 0)),
            end_step=int(min(e, n_s)),
            power_w=float(p),
            energy_kwh=float(wh) / 1000.0,
        )
        for w, s, e, p, wh in zip(
            which[keep], start[keep], end[keep], power[keep], delivered_wh[keep], strict=True
        )
    ]
    return out, sessions


# --- heat pumps --------------------------------------------------------------------------


def _heat_pumps(
    conns: Sequence[TwinConnection],
    clock: _Clock,
    weather: Weather,
    cal: Calibration,
    rng: np.random.Generator,
) -> Float64Array:
    """Heat pump electric power (W): degree-day heating with cycling plus a hot-water block."""
    hp = cal.heat_pump
    n_s, n_c = clock.n_steps, len(conns)
    out = np.zeros((n_s, n_c))
    cols = np.array([j for j, c in enumerate(conns) if c.heat_pump], dtype=np.int64)
    if len(cols) == 0 or n_s == 0:
        return out
    hybrid = np.array([conns[j].gas_ean is not None for j in cols])
    mean = np.where(hybrid, hp.hybrid_mean_kwh, hp.all_electric_mean_kwh)
    annual = mean * _lognormal_unit(hp.sigma, rng.standard_normal(len(cols)))
    dhw_share = np.where(hybrid, hp.hybrid_dhw_share, hp.dhw_share)
    rated = np.clip(annual / hp.full_load_hours * 1000.0, *hp.rated_w)

    degree_days = np.maximum(hp.base_temperature_c - weather.temp_daily_c, 0.0)
    heat_kwh = degree_days[:, None] * (
        (1 - dhw_share) * annual / annual_degree_days(hp.base_temperature_c, cal)
    )
    hourly = hp.heating_hourly / hp.heating_hourly.mean()
    demand = (
        heat_kwh[clock.day]
        * 1000.0
        / 24.0
        * hourly[np.floor(clock.hours).astype(np.int64)][:, None]
    )
    fraction = demand / rated[None, :]
    cycling_on = rng.random((n_s, len(cols))) * hp.min_modulation < fraction
    power = np.where(
        fraction < hp.min_modulation, cycling_on * hp.min_modulation * rated[None, :], demand
    )

    days = np.repeat(np.arange(clock.n_days), len(cols))
    which = np.tile(np.arange(len(cols)), clock.n_days)
    program = np.array(hp.dhw_start_hours)[rng.integers(0, len(hp.dhw_start_hours), size=len(cols))]
    start_bin = program[which] * STEPS_PER_HOUR + rng.integers(0, STEPS_PER_HOUR, size=len(days))
    dhw_wh = dhw_share * annual / DAYS_PER_YEAR * 1000.0
    steps = (dhw_wh / rated / STEP_H)[which]
    grid, _ = _rasterise(
        which, clock.step_of_local(days, start_bin), steps, rated[which], n_s, len(cols)
    )
    out[:, cols] = power + grid
    return out


# --- gas ---------------------------------------------------------------------------------


def _gas(
    conns: Sequence[TwinConnection],
    clock: _Clock,
    weather: Weather,
    cal: Calibration,
    rng: np.random.Generator,
) -> Float64Array:
    """Hourly gas (m3) per connection: degree-day heating + hot water, with hourly noise."""
    gas = cal.gas
    n_h, n_c = clock.n_steps // STEPS_PER_HOUR, len(conns)
    out = np.zeros((n_h, n_c))
    cols = np.array(
        [j for j, c in enumerate(conns) if c.gas_ean and c.gas_annual_m3 > 0], dtype=np.int64
    )
    if len(cols) == 0 or n_h == 0:
        return out
    household = np.array([conns[j].kind is ConnectionKind.HOUSEHOLD for j in cols])
    annual = np.array([conns[j].gas_annual_m3 for j in cols])
    share = np.where(household, gas.household_heating_share, gas.business_heating_share)
    first = np.arange(n_h) * STEPS_PER_HOUR
    day = clock.day[first]
    shift = rng.integers(-1, 2, size=len(cols))
    hour = (np.floor(clock.hours[first]).astype(np.int64)[:, None] - shift[None, :]) % 24

    def unit(values: Float64Array) -> Float64Array:
        return np.asarray(values / values.mean(), dtype=np.float64)

    heat_w = np.where(
        household[None, :],
        unit(gas.household_heating_hourly)[hour],
        unit(gas.business_heating_hourly)[hour],
    )
    dhw_w = np.where(
        household[None, :],
        unit(gas.household_dhw_hourly)[hour],
        unit(gas.business_heating_hourly)[hour],
    )
    weekend = clock.daytype[first] != WEEKDAY
    business_day = np.where(weekend, gas.business_weekend_factor, 1.0) / (
        (5.0 + 2.0 * gas.business_weekend_factor) / 7.0
    )
    day_weight = np.where(household[None, :], 1.0, business_day[:, None])

    degree_days = np.maximum(gas.base_temperature_c - weather.temp_daily_c, 0.0)
    heat_day = degree_days[day][:, None] * (
        share * annual / annual_degree_days(gas.base_temperature_c, cal)
    )
    dhw_day = (1 - share) * annual / DAYS_PER_YEAR
    noise = rng.gamma(gas.hourly_noise_shape, 1.0 / gas.hourly_noise_shape, size=(n_h, len(cols)))
    out[:, cols] = (heat_day * heat_w + dhw_day[None, :] * dhw_w) / 24.0 * day_weight * noise
    return out


# --- putting it together -----------------------------------------------------------------


def _phase_weights(conn: TwinConnection, single_phase_device: bool) -> tuple[float, float, float]:
    """How a device's power splits over L1..L3 on this connection."""
    if conn.phase is not None:
        one_hot = [0.0, 0.0, 0.0]
        one_hot[conn.phase] = 1.0
        return one_hot[0], one_hot[1], one_hot[2]
    return (1.0, 0.0, 0.0) if single_phase_device else (1 / 3, 1 / 3, 1 / 3)


def _device_weights(
    conns: Sequence[TwinConnection], cal: Calibration
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per connection, how load (base, heat pump), EV and PV split over L1..L3:
    single-phase connections put everything on their phase; three-phase connections
    split load evenly, a 3x11 kW charger evenly and a single-phase charger on L1, and a
    PV inverter up to ``single_phase_max_kwp`` on L1."""

    def weights(single: Sequence[bool]) -> FloatArray:
        rows = [_phase_weights(c, one) for c, one in zip(conns, single, strict=True)]
        return np.array(rows, dtype=np.float32).reshape(-1, 3)

    small = cal.pv.single_phase_max_kwp
    return (
        weights([False] * len(conns)),
        weights([c.ev is not EvCharger.THREE_11 for c in conns]),
        weights([c.pv_kwp <= small for c in conns]),
    )


PHASE_V = 230.0
FUSE_HOLDS = 1.25
"""A gG main fuse carries 1.25 x its rating for at least an hour without blowing
(IEC 60269-1 conventional non-fusing current, 16-63 A) and blows within the hour at
1.6 x, the limit the hub checks (MTR-5.capacity)."""


def _within_fuse(
    conns: Sequence[TwinConnection],
    base: FloatArray,
    heat: FloatArray,
    ev: FloatArray,
    cal: Calibration,
) -> None:
    """Scale, in place, a connection's own load (``base`` and ``heat``) by one factor
    per step wherever a phase would otherwise draw more than its main fuse holds
    (:data:`FUSE_HOLDS` x amperes x 230 V) together with the EV charger, which is left
    whole so its sessions keep their energy. A household that blew its fuse would sit
    in the dark; the twin's households stay where the fuse holds."""
    load_w, ev_w, _ = _device_weights(conns, cal)
    amperes = [c.capacity.amperes * FUSE_HOLDS * PHASE_V for c in conns]
    limit = np.array(amperes, dtype=np.float32)
    house = base + heat
    scale = np.ones_like(house)
    for phase in range(3):
        on = house * load_w[:, phase]
        room = np.maximum(limit - ev * ev_w[:, phase], np.float32(0.0))
        fits = np.where(on > room, room / np.maximum(on, np.float32(1.0)), np.float32(1.0))
        np.minimum(scale, fits, out=scale)
    base *= scale
    heat *= scale


def _on_phases(
    conns: Sequence[TwinConnection],
    base: FloatArray,
    ev: FloatArray,
    heat: FloatArray,
    pv: FloatArray,
    cal: Calibration,
) -> tuple[FloatArray, FloatArray]:
    """Spread the totals over the phases of each connection (consumption, PV), as
    :func:`_device_weights` says."""
    load_w, ev_w, pv_w = _device_weights(conns, cal)
    n_s, n_c = base.shape
    consumption = np.empty((n_s, n_c, 3), dtype=np.float32)
    generation = np.empty((n_s, n_c, 3), dtype=np.float32)
    load = base + heat
    for phase in range(3):  # one strided 2-D write per phase: far faster than broadcasting
        np.multiply(load, load_w[:, phase], out=consumption[:, :, phase])
        np.multiply(pv, pv_w[:, phase], out=generation[:, :, phase])
    cols = np.array([j for j, c in enumerate(conns) if c.ev is not EvCharger.NONE], dtype=np.int64)
    if len(cols):
        consumption[:, cols, :] += ev[:, cols, None] * ev_w[None, cols, :]
    return consumption, generation


def _child_generators(rng: np.random.Generator, count: int) -> list[np.random.Generator]:
    """Independent generators seeded from ``rng``, so one part's draws don't shift another's."""
    return [np.random.default_rng(int(seed)) for seed in rng.integers(0, 2**63 - 1, size=count)]


def simulate_profiles(
    conns: Sequence[TwinConnection], axis: TimeAxis, rng: np.random.Generator
) -> PowerProfiles:
    """Simulate consumption, PV, EV, heat pumps and gas of ``conns`` over ``axis``.

    Column ``j`` of every array is ``conns[j]`` (the twin keeps ``conns[j].index == j``).
    Base load is scaled to ``annual_kwh``; EV and heat pump come on top. Only ``rng``
    is drawn from: the same seed gives identical arrays.
    """
    cal = load_calibration()
    clock = _clock(axis)
    weather_rng, load_rng, pv_rng, ev_rng, heat_rng, gas_rng = _child_generators(rng, 6)
    weather = _simulate_weather(clock, weather_rng, cal)
    base = _base_load(conns, clock, cal, load_rng)
    pv = _pv(conns, axis, weather, cal, pv_rng)
    ev, sessions = _ev(conns, clock, cal, ev_rng)
    heat = _heat_pumps(conns, clock, weather, cal, heat_rng)
    ev_w, heat_w = ev.astype(np.float32), heat.astype(np.float32)
    _within_fuse(conns, base, heat_w, ev_w, cal)
    consumption, generation = _on_phases(conns, base, ev_w, heat_w, pv, cal)
    return PowerProfiles(
        consumption_w=consumption,
        pv_w=generation,
        base_w=base,
        ev_w=ev_w,
        heat_pump_w=heat_w,
        ev_sessions=sessions,
        gas_m3_hourly=_gas(conns, clock, weather, cal, gas_rng),
        weather=weather,
    )


# --- calibration note --------------------------------------------------------------------


def reference_pv_yield(
    year: int, tilt_deg: float = 35.0, azimuth_deg: float = 180.0, seed: int = 0
) -> float:
    """kWh per kWp of a PV system over the whole calendar ``year`` of twin weather."""
    cal = load_calibration()
    first = date(year, 1, 1)
    axis = TimeAxis.for_days(first, (date(year + 1, 1, 1) - first).days)
    weather = simulate_weather(axis, np.random.default_rng(seed), cal)
    ac = pv_ac_per_kwp(axis, weather, [(tilt_deg, azimuth_deg)], cal)
    return float(ac.sum() * STEP_H / 1000.0)


def _expected_base_share(kind: ConnectionKind, clock: _Clock, cal: Calibration) -> float:
    """Expected fraction of a year's base load that falls in the axis (mean shape)."""
    shape = cal.loads[kind]
    table = shape.day_tables()[clock.daytype, clock.bin5] * _season(shape, clock)
    standby = 0.5 * sum(shape.standby_share)
    return float((standby * clock.n_steps + (1 - standby) * table.sum()) * STEP_H / HOURS_PER_YEAR)


def annual_equivalents(
    profiles: PowerProfiles, conns: Sequence[TwinConnection], axis: TimeAxis
) -> dict[str, Any]:
    """Annualised figures of a run for the calibration note.

    Base load per household type (and shop/office) is annualised with the model's
    expected seasonal share of the window; PV kWh/kWp with the KNMI monthly radiation
    weights, plus a full-year run of 1 kWp at 35 deg south; EV kWh per EV by days;
    heat pump kWh and gas m3 with the expected degree-day share of the window.
    """
    cal = load_calibration()
    clock = _clock(axis)
    years = axis.days / DAYS_PER_YEAR
    base_kwh = profiles.base_w.sum(axis=0, dtype=np.float64) * STEP_H / 1000.0
    groups: dict[str, list[int]] = {}
    for j, conn in enumerate(conns):
        label = conn.extra.get(HOUSEHOLD_TYPE_KEY) or conn.kind.value
        groups.setdefault(
            label if conn.kind is ConnectionKind.HOUSEHOLD else conn.kind.value, []
        ).append(j)
    loads: dict[str, dict[str, float]] = {}
    for label, members in sorted(groups.items()):
        share = _expected_base_share(conns[members[0]].kind, clock, cal)
        loads[label] = {
            "connections": float(len(members)),
            "annual_kwh_target": float(np.mean([conns[j].annual_kwh for j in members])),
            "annual_kwh_simulated": float(base_kwh[members].mean() / share),
        }

    month_len = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.float64)
    daily_weight = cal.weather.monthly_ghi_kwh_m2 / month_len / cal.weather.monthly_ghi_kwh_m2.sum()
    months = np.array([(axis.first_day + timedelta(days=d)).month - 1 for d in range(axis.days)])
    pv_cols = [j for j, c in enumerate(conns) if c.pv_kwp > 0]
    pv_kwh = profiles.pv_w.sum(axis=(0, 2), dtype=np.float64) * STEP_H / 1000.0
    window_share = float(daily_weight[months].sum())
    pv_window = (
        float(pv_kwh[pv_cols].sum() / sum(conns[j].pv_kwp for j in pv_cols))
        if pv_cols
        else math.nan
    )

    ev_cols = [j for j, c in enumerate(conns) if c.ev is not EvCharger.NONE]
    ev_kwh = profiles.ev_w.sum(axis=0, dtype=np.float64) * STEP_H / 1000.0
    starts = [
        clock.hours[s.start_step] for s in profiles.ev_sessions if s.start_step < axis.n_steps
    ]
    evening = float(np.mean([16.0 <= h < 23.0 for h in starts])) if starts else math.nan

    hp = cal.heat_pump
    hp_cols = [j for j, c in enumerate(conns) if c.heat_pump]
    doy = clock.day_doy[1:]
    hp_hdd = expected_degree_days(doy, hp.base_temperature_c, cal).sum() / annual_degree_days(
        hp.base_temperature_c, cal
    )
    hp_kwh = profiles.heat_pump_w.sum(axis=0, dtype=np.float64) * STEP_H / 1000.0
    hp_annual = []
    for j in hp_cols:
        dhw = hp.hybrid_dhw_share if conns[j].gas_ean else hp.dhw_share
        hp_annual.append(hp_kwh[j] / ((1 - dhw) * hp_hdd + dhw * years))

    gas = cal.gas
    gas_cols = [j for j, c in enumerate(conns) if c.gas_ean and c.gas_annual_m3 > 0]
    gas_hdd = expected_degree_days(doy, gas.base_temperature_c, cal).sum() / annual_degree_days(
        gas.base_temperature_c, cal
    )
    gas_m3 = profiles.gas_m3_hourly.sum(axis=0)
    gas_ratio = []
    for j in gas_cols:
        heat = (
            gas.household_heating_share
            if conns[j].kind is ConnectionKind.HOUSEHOLD
            else gas.business_heating_share
        )
        gas_ratio.append(gas_m3[j] / (heat * gas_hdd + (1 - heat) * years) / conns[j].gas_annual_m3)

    def mean(values: Sequence[float] | Float64Array) -> float:
        return float(np.mean(values)) if len(values) else math.nan

    return {
        "calibration_version": cal.version,
        "days": axis.days,
        "base_load": loads,
        "pv_kwh_per_kwp_window": pv_window,
        "pv_kwh_per_kwp_annualised": pv_window / window_share if pv_cols else math.nan,
        "pv_kwh_per_kwp_reference_year": reference_pv_yield(axis.first_day.year),
        "ev_count": len(ev_cols),
        "ev_kwh_per_year": mean(ev_kwh[ev_cols] / years),
        "ev_sessions_per_week": len(profiles.ev_sessions)
        / max(len(ev_cols), 1)
        / (axis.days / 7.0),
        "ev_evening_start_share": evening,
        "heat_pump_count": len(hp_cols),
        "heat_pump_kwh_per_year": mean(hp_annual),
        "gas_count": len(gas_cols),
        "gas_annualised_over_target": mean(gas_ratio),
    }
