"""Gas: hourly m3 per connection from heating degree days plus hot water.

:func:`draw_gas_m3` gives the topology each gas connection's annual use;
:func:`simulate_gas` spreads it over the hours by the weather's daily temperature,
with hourly shapes per kind, a weekend factor for businesses and hourly noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from meetpunt.twin.model import ConnectionKind, Float64Array, TwinConnection
from meetpunt.twin.profiles.calibration import Calibration, load_calibration
from meetpunt.twin.profiles.clock import DAYS_PER_YEAR, STEPS_PER_HOUR, WEEKDAY, Clock
from meetpunt.twin.profiles.weather import Weather, annual_degree_days


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


def simulate_gas(
    conns: Sequence[TwinConnection],
    clock: Clock,
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
