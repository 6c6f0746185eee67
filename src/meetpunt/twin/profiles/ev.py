"""Home EV charging: at most one plug-in per car per day, full power until done.

Sessions per week vary by car (gamma), arrivals are evening-heavy by the calibration's
hourly weights, energy is lognormal; a car plugged in the evening before the axis
starts still charges at its first step. The sessions are kept for the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from meetpunt.twin.model import EvCharger, Float64Array, TwinConnection
from meetpunt.twin.profiles.calibration import Calibration
from meetpunt.twin.profiles.clock import STEP_H, STEPS_PER_HOUR, WEEKDAY, Clock
from meetpunt.twin.profiles.series import rasterise


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


def simulate_ev(
    conns: Sequence[TwinConnection], clock: Clock, cal: Calibration, rng: np.random.Generator
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
    grid, delivered_wh = rasterise(which, start, steps, power, n_s, len(cols))
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
