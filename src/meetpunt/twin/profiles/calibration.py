"""The profile calibration: ``twin_calibration.toml`` read, checked and typed.

Public Dutch figures (CBS household types, KNMI De Bilt normals, EV and heat pump
statistics) are kept as data, not code; this module turns the rule file into frozen
dataclasses, one per concern, and says which table and key is wrong when data is
missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from meetpunt.errors import RulesDataError
from meetpunt.rulebook import load_rules, rules_path
from meetpunt.twin.model import STEP_S, ConnectionKind, Float64Array
from meetpunt.twin.profiles.clock import (
    SATURDAY,
    STEP_H,
    STEPS_PER_DAY,
    STEPS_PER_HOUR,
    SUNDAY,
    WEEKDAY,
)

CALIBRATION_RULES = "twin_calibration"
KINDS = (ConnectionKind.HOUSEHOLD, ConnectionKind.SHOP, ConnectionKind.OFFICE)
"""The connection kinds with a load shape, in the order of the base-load tables."""


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
        loads={kind: _load_shape(loads.table(kind.value)) for kind in KINDS},
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
