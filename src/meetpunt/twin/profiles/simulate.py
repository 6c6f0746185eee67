"""One profiles run: every part simulated, the fuse applied, spread over the phases.

The profiles stage of a twin run hands in one generator; it is split into one child
generator per part, in a fixed order (weather, base load, PV, EV, heat pumps, gas), so
that a change in one part's draws does not shift another's. Keep that order: the same
seed must give the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from meetpunt.twin.model import Float64Array, FloatArray, TimeAxis, TwinConnection
from meetpunt.twin.profiles.base_load import simulate_base_load
from meetpunt.twin.profiles.calibration import load_calibration
from meetpunt.twin.profiles.clock import clock_for
from meetpunt.twin.profiles.ev import EvSession, simulate_ev
from meetpunt.twin.profiles.gas import simulate_gas
from meetpunt.twin.profiles.heat_pumps import simulate_heat_pumps
from meetpunt.twin.profiles.phases import on_phases, within_fuse
from meetpunt.twin.profiles.pv import simulate_pv
from meetpunt.twin.profiles.weather import Weather, weather_on_clock


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
    clock = clock_for(axis)
    weather_rng, load_rng, pv_rng, ev_rng, heat_rng, gas_rng = _child_generators(rng, 6)
    weather = weather_on_clock(clock, weather_rng, cal)
    base = simulate_base_load(conns, clock, cal, load_rng)
    pv = simulate_pv(conns, axis, weather, cal, pv_rng)
    ev, sessions = simulate_ev(conns, clock, cal, ev_rng)
    heat = simulate_heat_pumps(conns, clock, weather, cal, heat_rng)
    ev_w, heat_w = ev.astype(np.float32), heat.astype(np.float32)
    within_fuse(conns, base, heat_w, ev_w, cal)
    consumption, generation = on_phases(conns, base, ev_w, heat_w, pv, cal)
    return PowerProfiles(
        consumption_w=consumption,
        pv_w=generation,
        base_w=base,
        ev_w=ev_w,
        heat_pump_w=heat_w,
        ev_sessions=sessions,
        gas_m3_hourly=simulate_gas(conns, clock, weather, cal, gas_rng),
        weather=weather,
    )
