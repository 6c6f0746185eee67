"""Heat pumps: heating by degree days with on/off cycling at low load, plus hot water.

Hybrids (a gas connection too) have their own annual mean and hot-water share. The
heating follows the weather's daily temperature; hot water is one block a day at a
programmed hour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from meetpunt.twin.model import Float64Array, TwinConnection
from meetpunt.twin.profiles.calibration import Calibration
from meetpunt.twin.profiles.clock import DAYS_PER_YEAR, STEP_H, STEPS_PER_HOUR, Clock
from meetpunt.twin.profiles.series import lognormal_unit, rasterise
from meetpunt.twin.profiles.weather import Weather, annual_degree_days


def simulate_heat_pumps(
    conns: Sequence[TwinConnection],
    clock: Clock,
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
    annual = mean * lognormal_unit(hp.sigma, rng.standard_normal(len(cols)))
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
    grid, _ = rasterise(
        which, clock.step_of_local(days, start_bin), steps, rated[which], n_s, len(cols)
    )
    out[:, cols] = power + grid
    return out
