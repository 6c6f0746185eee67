"""PV generation: pvlib at De Bilt once per distinct orientation, times the weather.

Each system's output is the 1 kWp output of its (tilt, azimuth) times its kWp and a
per-system performance factor (shading, soiling, ageing). :func:`reference_pv_yield`
gives the yearly kWh/kWp that the calibration note compares with 850-950 kWh/kWp.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pvlib

from meetpunt.twin.model import STEP_S, Float64Array, FloatArray, TimeAxis, TwinConnection
from meetpunt.twin.profiles.calibration import Calibration, load_calibration
from meetpunt.twin.profiles.clock import STEP_H
from meetpunt.twin.profiles.weather import PVLIB_PANDAS_NOISE, Weather, simulate_weather


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
        warnings.filterwarnings("ignore", message=PVLIB_PANDAS_NOISE)
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


def simulate_pv(
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
