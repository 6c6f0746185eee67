"""Consumption and generation profiles of the grid twin (issue 3).

Two shared runs keep the file fast: a 30-day January month for a mixed set of
connections and a whole year for a small set (annual energies, PV yield, EV, heat).
"""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pvlib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.domain.capacity import ElectricityCapacity
from meetpunt.rulebook import load_rules
from meetpunt.twin.model import (
    STEP_S,
    ConnectionKind,
    EvCharger,
    MeterKind,
    TimeAxis,
    TwinConnection,
)
from meetpunt.twin.profiles import (
    HOUSEHOLD_TYPE_KEY,
    PowerProfiles,
    annual_equivalents,
    draw_annual_kwh,
    draw_gas_m3,
    load_calibration,
    simulate_profiles,
)
from meetpunt.twin.profiles.phases import FUSE_HOLDS, PHASE_V, within_fuse
from meetpunt.twin.profiles.pv import reference_pv_yield

STEP_H = STEP_S / 3600.0


def _amperes(kind: ConnectionKind, ev: EvCharger) -> int:
    """Sized as the topology sizes them: a 7.4 kW charger needs 35 A, a shop more."""
    if kind is not ConnectionKind.HOUSEHOLD:
        return 50
    return 35 if ev is EvCharger.SINGLE_7_4 else 25


def _conn(
    index: int,
    *,
    kind: ConnectionKind = ConnectionKind.HOUSEHOLD,
    phase: int | None = 0,
    annual_kwh: float = 2500.0,
    pv_kwp: float = 0.0,
    ev: EvCharger = EvCharger.NONE,
    heat_pump: bool = False,
    gas_m3: float = 0.0,
    label: str | None = None,
) -> TwinConnection:
    conn = TwinConnection(
        index=index,
        ean=f"8710000000000{index:05d}",
        kind=kind,
        capacity=ElectricityCapacity(1 if phase is not None else 3, _amperes(kind, ev)),
        phase=phase,
        substation="S1",
        feeder="S1-F1",
        node=index,
        street="Dorpsstraat",
        house_number=index + 1,
        postcode="3731AB",
        woz_object_id=f"0310{index:08d}",
        meter=MeterKind.DSMR5,
        annual_kwh=annual_kwh,
        pv_kwp=pv_kwp,
        ev=ev,
        heat_pump=heat_pump,
        gas_ean=f"8710000000009{index:05d}" if gas_m3 > 0 else None,
        gas_annual_m3=gas_m3,
    )
    conn.extra[HOUSEHOLD_TYPE_KEY] = label or kind.value
    return conn


def _charger(wanted: EvCharger, three_phase: bool) -> EvCharger:
    """As the topology fits them: a 3x11 kW charger only on a three-phase connection."""
    return wanted if three_phase or wanted is not EvCharger.THREE_11 else EvCharger.SINGLE_3_7


def _mixed(n_households: int, seed: int) -> list[TwinConnection]:
    """Households drawn like the topology does, plus a shop, an office and devices."""
    rng = np.random.default_rng(seed)
    conns: list[TwinConnection] = []
    chargers = [EvCharger.SINGLE_3_7, EvCharger.SINGLE_7_4, EvCharger.THREE_11]
    for i in range(n_households):
        label, kwh = draw_annual_kwh(ConnectionKind.HOUSEHOLD, rng)
        three = i % 5 == 4
        conns.append(
            _conn(
                i,
                phase=None if three else i % 3,
                annual_kwh=kwh,
                pv_kwp=[0.0, 2.4, 6.5][i % 3],
                ev=_charger(chargers[i % 3], three) if i % 4 == 0 else EvCharger.NONE,
                heat_pump=i % 7 == 3,
                gas_m3=0.0 if i % 7 == 3 else 1000.0,
                label=label,
            )
        )
    n = len(conns)
    conns.append(_conn(n, kind=ConnectionKind.SHOP, phase=None, annual_kwh=30000.0, gas_m3=3000))
    conns.append(_conn(n + 1, kind=ConnectionKind.OFFICE, phase=None, annual_kwh=40000.0))
    return conns


@pytest.fixture(scope="module")
def month() -> tuple[list[TwinConnection], TimeAxis, PowerProfiles]:
    conns = _mixed(30, seed=3)
    axis = TimeAxis.for_days(date(2025, 1, 6), 30)
    return conns, axis, simulate_profiles(conns, axis, np.random.default_rng(11))


@pytest.fixture(scope="module")
def year() -> tuple[list[TwinConnection], TimeAxis, PowerProfiles]:
    rng = np.random.default_rng(5)
    chargers = [EvCharger.SINGLE_3_7, EvCharger.SINGLE_7_4, EvCharger.THREE_11]
    conns: list[TwinConnection] = []
    for i in range(30):  # households, 24 of them with an EV
        label, kwh = draw_annual_kwh(ConnectionKind.HOUSEHOLD, rng)
        ev = chargers[i % 3] if i < 24 else EvCharger.NONE
        phase = None if ev is EvCharger.THREE_11 else i % 3
        conns.append(_conn(i, phase=phase, annual_kwh=kwh, ev=ev, label=label))
    for _ in range(3):  # 1 kWp south-facing at 35 degrees
        conns.append(_conn(len(conns), phase=1, pv_kwp=1.0))
    conns.append(_conn(len(conns), phase=2, heat_pump=True))  # all-electric
    conns.append(_conn(len(conns), phase=0, heat_pump=True, gas_m3=400.0))  # hybrid
    for _ in range(4):
        conns.append(
            _conn(len(conns), phase=0, gas_m3=float(draw_gas_m3(ConnectionKind.HOUSEHOLD, rng)))
        )
    axis = TimeAxis.for_days(date(2025, 1, 1), 365)
    return conns, axis, simulate_profiles(conns, axis, np.random.default_rng(2025))


def _local_hours(axis: TimeAxis) -> np.ndarray:
    return axis.local_clock()[0]


def _solar_elevation(axis: TimeAxis) -> np.ndarray:
    times = pd.DatetimeIndex(axis.times_utc() + np.timedelta64(STEP_S // 2, "s")).tz_localize("UTC")
    position = pvlib.solarposition.get_solarposition(times, 52.10, 5.18)
    return np.asarray(position["apparent_elevation"])


# --- shapes, types, determinism ----------------------------------------------------------


def test_shapes_and_dtypes(month: tuple[list[TwinConnection], TimeAxis, PowerProfiles]) -> None:
    conns, axis, p = month
    n = len(conns)
    assert axis.n_steps == 30 * 288
    for arr in (p.consumption_w, p.pv_w):
        assert arr.shape == (axis.n_steps, n, 3)
        assert arr.dtype == np.float32
    for arr in (p.base_w, p.ev_w, p.heat_pump_w):
        assert arr.shape == (axis.n_steps, n)
        assert arr.dtype == np.float32
    assert p.gas_m3_hourly.shape == (axis.n_steps // 12, n)
    assert p.gas_m3_hourly.dtype == np.float64
    assert p.weather.temp_daily_c.shape == (30,)
    assert p.weather.clear_sky_index.shape == (axis.n_steps,)


def test_everything_is_finite_and_non_negative(
    month: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    _, _, p = month
    for arr in (p.consumption_w, p.pv_w, p.base_w, p.ev_w, p.heat_pump_w, p.gas_m3_hourly):
        assert np.isfinite(arr).all()
        assert arr.min() >= 0.0


def test_consumption_is_base_plus_ev_plus_heat_pump(
    month: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    _, _, p = month
    total = p.base_w.astype(np.float64) + p.ev_w + p.heat_pump_w
    np.testing.assert_allclose(p.consumption_w.sum(axis=2), total, rtol=1e-4, atol=1e-2)


def test_no_phase_draws_more_than_its_main_fuse_holds(
    month: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    """A January month with EVs and heat pumps: the hub's MTR-5.capacity never fires."""
    conns, _, p = month
    limit = np.array([c.capacity.amperes * FUSE_HOLDS * PHASE_V for c in conns])
    assert (p.consumption_w.max(axis=(0, 2)) <= limit + 0.5).all()


def test_a_load_above_the_fuse_is_scaled_and_the_car_keeps_its_power() -> None:
    conns = [_conn(0, phase=0, ev=EvCharger.SINGLE_3_7), _conn(1, phase=None)]  # 1x25, 3x25
    f32 = np.float32
    base = np.array([[6000, 18000], [1000, 1000]], dtype=f32)
    heat = np.array([[1000, 9000], [0, 0]], dtype=f32)
    ev = np.array([[3700, 0], [3700, 0]], dtype=f32)
    within_fuse(conns, base, heat, ev, load_calibration())
    holds = 25 * FUSE_HOLDS * PHASE_V
    assert base[0, 0] + heat[0, 0] + ev[0, 0] == pytest.approx(holds, rel=1e-5)
    assert base[0, 0] / heat[0, 0] == pytest.approx(6.0, rel=1e-5)  # one factor for both
    assert base[0, 1] + heat[0, 1] == pytest.approx(3 * holds, rel=1e-5)  # 9 kW per phase
    assert (ev == np.array([[3700, 0], [3700, 0]])).all()
    assert (base[1] == 1000).all() and (heat[1] == 0).all()  # under the limit: untouched


def test_devices_only_where_they_are(
    month: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    conns, _, p = month
    for j, c in enumerate(conns):
        assert (p.ev_w[:, j].max() > 0) == (c.ev is not EvCharger.NONE)
        assert (p.heat_pump_w[:, j].max() > 0) == c.heat_pump
        assert (p.pv_w[:, j].max() > 0) == (c.pv_kwp > 0)
        assert (p.gas_m3_hourly[:, j].max() > 0) == (c.gas_annual_m3 > 0)


def test_same_seed_same_arrays_other_seed_other_arrays() -> None:
    conns = _mixed(6, seed=1)
    axis = TimeAxis.for_days(date(2025, 5, 1), 2)
    a = simulate_profiles(conns, axis, np.random.default_rng(42))
    b = simulate_profiles(conns, axis, np.random.default_rng(42))
    c = simulate_profiles(conns, axis, np.random.default_rng(43))
    for name in ("consumption_w", "pv_w", "base_w", "ev_w", "heat_pump_w", "gas_m3_hourly"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.ev_sessions == b.ev_sessions
    assert not np.array_equal(a.consumption_w, c.consumption_w)
    assert not np.array_equal(a.pv_w, c.pv_w)


# --- phases ------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    phases=st.lists(st.sampled_from([0, 1, 2, None]), min_size=1, max_size=6),
    chargers=st.lists(st.sampled_from(list(EvCharger)), min_size=6, max_size=6),
    kwps=st.lists(st.sampled_from([0.0, 3.0, 5.0, 8.0]), min_size=6, max_size=6),
    heat=st.lists(st.booleans(), min_size=6, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_power_stays_on_the_connections_phases(
    phases: list[int | None],
    chargers: list[EvCharger],
    kwps: list[float],
    heat: list[bool],
    seed: int,
) -> None:
    conns = [
        _conn(i, phase=ph, pv_kwp=kwps[i], ev=chargers[i], heat_pump=heat[i])
        for i, ph in enumerate(phases)
    ]
    axis = TimeAxis.for_days(date(2025, 6, 2), 1)
    p = simulate_profiles(conns, axis, np.random.default_rng(seed))
    for j, c in enumerate(conns):
        if c.phase is not None:
            others = [ph for ph in range(3) if ph != c.phase]
            assert not p.consumption_w[:, j, others].any()
            assert not p.pv_w[:, j, others].any()
            continue
        cons, pv = p.consumption_w[:, j, :], p.pv_w[:, j, :]
        single_charger = c.ev in (EvCharger.SINGLE_3_7, EvCharger.SINGLE_7_4)
        # base load and heat pump split evenly; a single-phase charger adds to L1 only
        np.testing.assert_allclose(cons[:, 1], cons[:, 2], rtol=1e-5, atol=1e-3)
        extra_l1 = p.ev_w[:, j] if single_charger else 0.0
        np.testing.assert_allclose(cons[:, 0] - cons[:, 1], extra_l1, rtol=1e-4, atol=1e-2)
        if 0 < c.pv_kwp <= 5.0:
            assert not pv[:, 1:].any()
        else:
            np.testing.assert_allclose(pv[:, 0], pv[:, 1], rtol=1e-5, atol=1e-3)


# --- energy ------------------------------------------------------------------------------


def test_household_year_energy_matches_annual_kwh(
    year: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    conns, _, p = year
    hh = [j for j, c in enumerate(conns) if c.extra[HOUSEHOLD_TYPE_KEY] != "household"]
    simulated = p.base_w[:, hh].sum(axis=0, dtype=np.float64) * STEP_H / 1000.0
    ratio = simulated / np.array([conns[j].annual_kwh for j in hh])
    assert 0.85 <= ratio.mean() <= 1.15
    assert ratio.min() > 0.75
    assert ratio.max() < 1.25


def test_month_energy_follows_the_seasonal_share(
    month: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    """A January month carries more than 1/12 of the year (about 9.5-11 %)."""
    conns, _, p = month
    hh = [j for j, c in enumerate(conns) if c.kind is ConnectionKind.HOUSEHOLD]
    window = p.base_w[:, hh].sum(dtype=np.float64) * STEP_H / 1000.0
    share = window / sum(conns[j].annual_kwh for j in hh)
    assert 0.085 <= share <= 0.115


def test_households_have_kw_quarter_hour_peaks_and_an_evening_peak(
    month: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    conns, axis, p = month
    hh = [j for j, c in enumerate(conns) if c.kind is ConnectionKind.HOUSEHOLD]
    quarter = p.base_w[:, hh].reshape(-1, 3, len(hh)).mean(axis=1)
    assert np.median(quarter.max(axis=0)) >= 2500.0  # several kW in a month
    jumps = np.abs(np.diff(quarter, axis=0)).mean(axis=0) / quarter.mean(axis=0)
    assert np.median(jumps) > 0.2  # not a smooth standard profile
    hours = _local_hours(axis)
    total = p.base_w[:, hh].sum(axis=1)
    evening = total[(hours >= 18) & (hours < 21)].mean()
    night = total[(hours >= 2) & (hours < 5)].mean()
    assert evening > 2.0 * night


# --- PV ----------------------------------------------------------------------------------


def test_pv_is_zero_at_night(month: tuple[list[TwinConnection], TimeAxis, PowerProfiles]) -> None:
    _, axis, p = month
    night = _solar_elevation(axis) < -0.5
    assert night.any()
    assert not p.pv_w[night].any()
    assert p.pv_w[~night].max() > 0


def test_pv_yield_of_one_kwp_is_dutch(
    year: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    conns, _, p = year
    pv = [j for j, c in enumerate(conns) if c.pv_kwp > 0]
    yields = p.pv_w[:, pv].sum(axis=(0, 2), dtype=np.float64) * STEP_H / 1000.0
    assert 800.0 <= yields.mean() <= 1000.0
    for seed in (0, 1):  # the weather process itself, on another year and seed
        assert 800.0 <= reference_pv_yield(2024, seed=seed) <= 1000.0


def test_pv_peaks_in_summer_and_follows_clouds(
    year: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    conns, _, p = year
    j = next(j for j, c in enumerate(conns) if c.pv_kwp > 0)
    daily = p.pv_w[:, j, 1].reshape(-1, 288).sum(axis=1) * STEP_H / 1000.0
    assert daily[150:200].mean() > 3 * daily[:30].mean()  # June vs January
    assert daily[150:200].std() > 0.2 * daily[150:200].mean()  # cloudy and clear days
    assert p.pv_w[:, j, 1].max() <= 1000.0


# --- EV ----------------------------------------------------------------------------------


def test_ev_sessions_start_mostly_in_the_evening(
    year: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    _, axis, p = year
    hours = _local_hours(axis)
    starts = np.array([hours[s.start_step] for s in p.ev_sessions if s.start_step > 0])
    assert len(starts) > 1000
    assert ((starts >= 16) & (starts < 23)).mean() >= 0.6


def test_ev_annual_energy_in_spec_range(
    year: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    conns, _, p = year
    ev = [j for j, c in enumerate(conns) if c.ev is not EvCharger.NONE]
    per_ev = p.ev_w[:, ev].sum(axis=0, dtype=np.float64) * STEP_H / 1000.0
    assert 2000.0 <= per_ev.mean() <= 3000.0


def test_ev_sessions_are_the_ev_power(
    year: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    conns, _, p = year
    energy = np.zeros(len(conns))
    for s in p.ev_sessions:
        assert s.power_w == conns[s.index].ev.power_w
        assert 0 <= s.start_step < s.end_step <= p.ev_w.shape[0]
        energy[s.index] += s.energy_kwh
    np.testing.assert_allclose(
        energy, p.ev_w.sum(axis=0, dtype=np.float64) * STEP_H / 1000.0, rtol=1e-4, atol=1e-6
    )
    for j, c in enumerate(conns):
        assert p.ev_w[:, j].max() <= c.ev.power_w + 1e-3
    by_conn: dict[int, list[tuple[int, int]]] = {}
    for s in p.ev_sessions:
        by_conn.setdefault(s.index, []).append((s.start_step, s.end_step))
    for spans in by_conn.values():  # one car: sessions never overlap
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


# --- heat pumps and gas ------------------------------------------------------------------


def test_heat_pumps_and_gas_follow_the_winter(
    year: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    conns, _, p = year
    hp = [j for j, c in enumerate(conns) if c.heat_pump]
    daily_hp = p.heat_pump_w[:, hp].reshape(-1, 288, len(hp)).sum(axis=1)
    assert (daily_hp[:31].mean(axis=0) > 3 * daily_hp[181:212].mean(axis=0)).all()
    annual_hp = p.heat_pump_w[:, hp].sum(axis=0, dtype=np.float64) * STEP_H / 1000.0
    assert annual_hp[0] > annual_hp[1]  # all-electric above hybrid
    assert 1500.0 <= annual_hp[0] <= 5000.0
    gas = [j for j, c in enumerate(conns) if c.gas_annual_m3 > 0]
    daily_gas = p.gas_m3_hourly[:, gas].reshape(-1, 24, len(gas)).sum(axis=1)
    assert (daily_gas[:31].mean(axis=0) > 3 * daily_gas[181:212].mean(axis=0)).all()
    ratio = p.gas_m3_hourly[:, gas].sum(axis=0) / np.array([conns[j].gas_annual_m3 for j in gas])
    assert 0.85 <= ratio.mean() <= 1.15


# --- DST ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "quarters"), [(date(2025, 3, 30), 92), (date(2025, 10, 26), 100)])
def test_dst_days(day: date, quarters: int) -> None:
    conns = _mixed(8, seed=2)
    axis = TimeAxis.for_days(day, 1)
    p = simulate_profiles(conns, axis, np.random.default_rng(7))
    assert axis.n_steps // 3 == quarters
    assert p.consumption_w.shape == (quarters * 3, len(conns), 3)
    assert p.gas_m3_hourly.shape == (quarters // 4, len(conns))
    assert np.isfinite(p.consumption_w).all()
    assert p.consumption_w.min() >= 0
    assert p.base_w.min() > 0
    assert not p.pv_w[_solar_elevation(axis) < -0.5].any()
    assert p.gas_m3_hourly.sum() > 0


# --- draws and calibration ---------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(list(ConnectionKind)))
def test_draws_are_plausible(seed: int, kind: ConnectionKind) -> None:
    rng = np.random.default_rng(seed)
    label, kwh = draw_annual_kwh(kind, rng)
    m3 = draw_gas_m3(kind, rng)
    cal = load_calibration()
    if kind is ConnectionKind.HOUSEHOLD:
        assert label in {t.label for t in cal.household_types}
        assert 200.0 < kwh < 30000.0
        assert 50.0 < m3 < 10000.0
    else:
        low, high = cal.business_kwh[kind]
        assert label == kind.value
        assert low <= kwh <= high


def test_household_draws_match_cbs() -> None:
    rng = np.random.default_rng(0)
    draws = [draw_annual_kwh(ConnectionKind.HOUSEHOLD, rng) for _ in range(4000)]
    mean = np.mean([kwh for _, kwh in draws])
    assert 2300.0 <= mean <= 2800.0  # CBS 2024: 2,550 kWh per dwelling
    singles = np.mean([label == "1 person" for label, _ in draws])
    assert 0.37 <= singles <= 0.43  # CBS: 39.9 % one-person households
    gas = np.mean([draw_gas_m3(ConnectionKind.HOUSEHOLD, rng) for _ in range(2000)])
    assert 950.0 <= gas <= 1150.0


def test_calibration_file_is_rules_data() -> None:
    loaded = load_rules("twin_calibration")
    assert loaded.meta.name == "twin_calibration"
    assert "CBS" in loaded.meta.source
    assert "KNMI" in loaded.meta.source
    cal = load_calibration()
    assert abs(sum(t.share for t in cal.household_types) - 1.0) < 0.01


def test_annual_equivalents_report(
    year: tuple[list[TwinConnection], TimeAxis, PowerProfiles],
) -> None:
    conns, axis, p = year
    report = annual_equivalents(p, conns, axis)
    for label, row in report["base_load"].items():
        if label != "household":
            assert 0.85 <= row["annual_kwh_simulated"] / row["annual_kwh_target"] <= 1.15
    assert 2000.0 <= report["ev_kwh_per_year"] <= 3000.0
    assert 800.0 <= report["pv_kwh_per_kwp_reference_year"] <= 1000.0
    assert 800.0 <= report["pv_kwh_per_kwp_annualised"] <= 1000.0
    assert report["ev_evening_start_share"] >= 0.6
    assert 0.85 <= report["gas_annualised_over_target"] <= 1.15
    assert report["heat_pump_count"] == 2
