"""The twin's synthetic weather at De Bilt: temperature and cloudiness.

A daily temperature (KNMI normals + AR(1) anomaly, diurnal cycle) and a clear-sky
index (daily regimes clear / broken / overcast from a latent AR(1), with within-day
fluctuation), calibrated month by month to KNMI De Bilt radiation. It drives PV, heat
pumps and gas; the expected heating degree days here are what those are scaled by.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pvlib

from meetpunt.twin.model import STEP_S, Float64Array, IntArray, TimeAxis
from meetpunt.twin.profiles.calibration import Calibration, WeatherCalibration, load_calibration
from meetpunt.twin.profiles.clock import DAYS_PER_YEAR, Clock, clock_for

CLEAR, BROKEN, OVERCAST = 0, 1, 2
"""Weather regimes of a day."""
PVLIB_PANDAS_NOISE = r".*dayofyear is deprecated.*"
"""pvlib 0.16 still calls a pandas accessor that pandas 3 deprecates; harmless here."""


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


@lru_cache(maxsize=4)
def _clear_sky_monthly(latitude: float, longitude: float, altitude: float) -> tuple[float, ...]:
    """Monthly clear-sky GHI (kWh/m2) at the site from pvlib's Ineichen model (2021, hourly)."""
    times = pd.date_range("2021-01-01 00:30", periods=8760, freq="h", tz="UTC")
    site = pvlib.location.Location(latitude, longitude, tz="UTC", altitude=altitude)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PVLIB_PANDAS_NOISE)
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
    return weather_on_clock(clock_for(axis), rng, cal)


def weather_on_clock(clock: Clock, rng: np.random.Generator, cal: Calibration) -> Weather:
    """:func:`simulate_weather` on a clock already built (the profiles run shares one)."""
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
