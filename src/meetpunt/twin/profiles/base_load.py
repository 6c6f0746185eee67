"""Base load of households, shops and offices: everything but EV and heat pump.

An hourly day shape per kind and day type (weekday, Saturday, Sunday/holiday), a
seasonal and evening-lighting swing, a per-connection timing shift, "at home on
weekdays" blend and daily level; split into flat standby, a smooth part with 5-minute
noise and appliance events (Poisson, placed with the shape as intensity) so
quarter-hours show kW peaks. Scaled to the connection's ``annual_kwh``, which
:func:`draw_annual_kwh` gives the topology.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from meetpunt.twin.model import (
    ConnectionKind,
    Float64Array,
    FloatArray,
    IntArray,
    TwinConnection,
)
from meetpunt.twin.profiles.calibration import KINDS, Calibration, LoadShape, load_calibration
from meetpunt.twin.profiles.clock import (
    DAYS_PER_YEAR,
    HOURS_PER_YEAR,
    STEP_H,
    STEPS_PER_DAY,
    STEPS_PER_HOUR,
    SUNDAY,
    WEEKDAY,
    Clock,
)
from meetpunt.twin.profiles.series import lognormal_unit, rasterise

HOUSEHOLD_TYPE_KEY = "household_type"
"""Key in :attr:`TwinConnection.extra` holding the label :func:`draw_annual_kwh` gave."""
_KIND_ID = {kind: i for i, kind in enumerate(KINDS)}


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


def seasonal_factor(shape: LoadShape, clock: Clock) -> Float64Array:
    """Seasonal factor per step: 1 + a cos(...) plus the evening-lighting swing (mean 1)."""
    swing = np.cos(2 * np.pi * (clock.doy - shape.seasonal_peak_doy) / DAYS_PER_YEAR)
    start, end = shape.lighting_hours
    evening = (clock.hours >= start) & (clock.hours < end)
    return np.asarray(
        1.0 + shape.seasonal_amplitude * swing + shape.lighting_amplitude * swing * evening,
        dtype=np.float64,
    )


def simulate_base_load(
    conns: Sequence[TwinConnection], clock: Clock, cal: Calibration, rng: np.random.Generator
) -> FloatArray:
    """Household and business base load (W) per step and connection, scaled to annual_kwh."""
    n_s, n_c = clock.n_steps, len(conns)
    if n_c == 0 or n_s == 0:
        return np.zeros((n_s, n_c), dtype=np.float32)
    shapes = [cal.loads[k] for k in KINDS]
    kind = np.array([_KIND_ID[c.kind] for c in conns])
    tables = np.stack([s.day_tables() for s in shapes]).astype(np.float32)  # (kind, daytype, bin)
    weekday_mean = tables[:, WEEKDAY].mean(axis=1) / tables[:, SUNDAY].mean(axis=1)
    # "at home on weekdays": the Sunday shape carrying the weekday's energy
    at_home = (tables[:, SUNDAY] * weekday_mean[:, None]).astype(np.float32)
    season = np.stack([seasonal_factor(s, clock) for s in shapes], axis=1).astype(np.float32)

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
    day_factor = lognormal_unit(day_sigma, rng.standard_normal((clock.n_days, n_c))).astype(
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
    smooth = intensity * lognormal_unit(step_sigma, noise).astype(np.float32)
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
    for k, shape in enumerate(cal.loads[x] for x in KINDS):
        if shape.event_reference_kwh > 0:
            mine = kind == k
            annual = np.array([conns[int(j)].annual_kwh for j in np.flatnonzero(mine)])
            scale[mine] = np.maximum(1.0, annual / shape.event_reference_kwh)
    mean_wh = np.array([cal.loads[k].mean_event_wh for k in KINDS])[kind] * scale
    count = rng.poisson(event_share * shaped_wh / mean_wh)
    owner = np.repeat(np.arange(n_c), count)
    position = np.searchsorted(
        cumulative, starts[owner] + rng.random(len(owner)) * (ends - starts)[owner]
    )
    start = np.clip(position - owner * n_s, 0, n_s - 1)
    power = np.zeros(len(owner))
    steps = np.zeros(len(owner))
    for k, kind_name in enumerate(KINDS):
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
    grid, _ = rasterise(owner, start, steps, power, n_s, n_c)
    return grid
