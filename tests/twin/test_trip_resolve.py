"""The inverter-trip re-solve (issue 18): solving each step a trip changed once, lazily,
decides the same trips and writes the same voltages as re-solving the
``reconnect_steps`` after every trip, which is kept here as the reference. The bound is
exact equality: a power flow's result does not depend on the batch it is solved in."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.twin import powerflow, profiles
from meetpunt.twin.interventions import Intervention
from meetpunt.twin.model import FloatArray, Interruption, TimeAxis
from meetpunt.twin.powerflow import InverterTrip, PhysicsResult, PhysicsSettings
from meetpunt.twin.topology import Region, build_region

AXIS = TimeAxis.for_days(date(2025, 6, 2), 2)  # two days: the second starts from the first
Resolve = Callable[[npt.NDArray[np.int64]], None]


def reference_trip(
    u: FloatArray,
    gen: FloatArray,
    voltage: FloatArray,
    day_start: int,
    idx: npt.NDArray[np.int64],
    phases: npt.NDArray[np.bool_],
    settings: PhysicsSettings,
    trips: list[InverterTrip],
    resolve: Resolve,
) -> None:
    """The protection as it was before issue 18's speed-up: after each step's trips the
    ``reconnect_steps`` after it are solved again at once, and every decision is taken
    again from the whole day's means."""
    n = u.shape[0]
    prev = voltage[day_start - 1, idx, :] if day_start > 0 else u[0]
    cursor = 0
    while True:
        mean10 = (np.concatenate([prev[None], u[:-1]]) + u) / 2.0
        mean10 = np.where((u > 0) & phases[None, :, :], mean10, 0.0)
        feeding = gen.sum(axis=2) > 0
        over = (mean10[:-1] > settings.inverter_trip_v).any(axis=2) & feeding[1:]
        over[:cursor] = False
        hot = np.flatnonzero(over.any(axis=1))
        if not hot.size:
            return
        t = int(hot[0])
        first, end = t + 1, min(t + 1 + settings.reconnect_steps, n)
        for k in np.flatnonzero(over[t]).tolist():
            ph = int(np.argmax(mean10[t, k]))
            trips.append(InverterTrip(int(idx[k]), ph, day_start + first, float(mean10[t, k, ph])))
            gen[first:end, k, :] = 0.0
        resolve(np.arange(first, end, dtype=np.int64))
        cursor = t + 1


@functools.cache
def small_region() -> Region:
    return build_region(120, np.random.default_rng(7))


def physics(
    region: Region,
    limit: float,
    reconnect: int,
    kind: str | None,
    trip: Callable[..., None] | None = None,
) -> PhysicsResult:
    """The twin's physics over two June days, one connection cut for an hour at noon and,
    with ``kind``, an intervention at noon of the second day (its steps after it are a
    batch of their own); ``trip`` replaces the protection."""
    power = profiles.simulate_profiles(region.connections, AXIS, np.random.default_rng(2))
    noon = AXIS.step_start(144)
    cut = Interruption(5, "o1", noon, AXIS.step_start(156))
    sub = region.substations[0]
    feeder = max(sub.feeders, key=lambda f: len(region.feeders[f].connections))
    intervention = (
        None
        if kind is None
        else Intervention(
            kind,
            sub.id,
            None if kind == "tap_change" else feeder,
            AXIS.first_day,
            AXIS.step_start(288 + 144),
        )
    )
    original = powerflow._trip
    if trip is not None:
        powerflow._trip = trip
    try:
        return powerflow.simulate_physics(
            region,
            AXIS,
            power.consumption_w,
            power.pv_w,
            [cut],
            np.random.default_rng(1),
            settings=PhysicsSettings(inverter_trip_v=limit, reconnect_steps=reconnect),
            intervention=intervention,
        )
    finally:
        powerflow._trip = original


def same(a: PhysicsResult, b: PhysicsResult) -> bool:
    """The same trips and bit for bit the same arrays."""
    arrays = ("voltage_v", "pv_w", "transformer_p_w", "load_p_w", "busbar_v", "effect_v")
    return [vars(t) for t in a.trips] == [vars(t) for t in b.trips] and all(
        (getattr(a, f) is None and getattr(b, f) is None)
        or np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)
        for f in arrays
    )


@settings(max_examples=8, deadline=None)
@given(
    limit=st.floats(236.0, 250.0),
    reconnect=st.integers(1, 4),
    kind=st.sampled_from([None, "reinforcement", "split", "tap_change"]),
)
def test_the_lazy_re_solve_decides_the_same_trips_and_writes_the_same_voltages(
    limit: float, reconnect: int, kind: str | None
) -> None:
    region = small_region()
    reference = physics(region, limit, reconnect, kind, reference_trip)
    lazy = physics(region, limit, reconnect, kind)
    assert same(lazy, reference)
    assert lazy.trip_power_flows <= reference.trip_power_flows


def test_it_solves_fewer_steps_when_trips_overlap() -> None:
    """A cycling spell: the reference solves a step once per trip whose delay covers it."""
    region = small_region()
    reference = physics(region, 240.0, 3, None, reference_trip)
    lazy = physics(region, 240.0, 3, None)
    assert len(reference.trips) > 100
    assert lazy.trip_power_flows < 0.9 * reference.trip_power_flows


def test_deciding_on_voltages_not_yet_solved_again_changes_the_trips() -> None:
    """The comparison above catches a lost re-solve: with every re-solve put off to the
    day's end, the first trip no longer lowers its neighbours' voltage in time."""
    region = small_region()

    lazy_trip = powerflow._trip

    def late(*args: object) -> None:
        put_off: list[int] = []
        *head, resolve = args
        lazy_trip(*head, lambda rows: put_off.extend(rows.tolist()))  # type: ignore[arg-type, call-arg]
        if put_off:
            resolve(np.unique(np.asarray(put_off, dtype=np.int64)))  # type: ignore[operator]

    reference = physics(region, 240.0, 3, None, reference_trip)
    stale = physics(region, 240.0, 3, None, late)
    assert powerflow._trip is lazy_trip
    assert [vars(t) for t in stale.trips] != [vars(t) for t in reference.trips]


def test_a_step_on_the_kept_model_is_the_batch_step_and_a_diverging_one_goes_back() -> None:
    """``solve_step`` (the trip re-solve's path) gives a step bit for bit as the batch
    solves it, says ``None`` where the iterative current method gives up, so the batch
    with its Newton-Raphson fallback takes the step, and is not thrown off by that."""
    region = small_region()
    sub = region.substations[0]
    model = powerflow._SubstationModel(
        region, sub, set(), PhysicsSettings(), np.random.default_rng(3)
    )
    power = profiles.simulate_profiles(region.connections, AXIS, np.random.default_rng(2))
    load = (power.consumption_w - power.pv_w)[140:143][:, model.indices]
    q = power.consumption_w[140:143][:, model.indices] * 0.1
    ref = np.array([1.0, 1.01, 0.99], dtype=np.float32)
    u, p, bus = model.solve(load, q, ref)
    heavy = np.zeros_like(load[0])
    heavy[:, 0] = 3000.0  # on one phase of every connection: beyond the transformer
    assert model.solve_step(heavy, heavy * 0.1, 1.0) is None
    for r in range(3):
        step = model.solve_step(load[r], q[r], float(ref[r]))
        assert step is not None
        assert np.array_equal(step[0], u[r]) and np.array_equal(step[2], bus[r])
        assert np.float32(step[1]) == p[r]
