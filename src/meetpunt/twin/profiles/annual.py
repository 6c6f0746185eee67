"""Annualised figures of a profiles run, for the calibration note in the twin docs.

Compares what the twin produced with the public targets it is calibrated on (CBS
household kWh, PV kWh/kWp, EV and heat pump kWh, gas m3): a window shorter than a year
is scaled up by its expected share of the year under the same model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from meetpunt.twin.model import ConnectionKind, EvCharger, Float64Array, TimeAxis, TwinConnection
from meetpunt.twin.profiles.base_load import HOUSEHOLD_TYPE_KEY, seasonal_factor
from meetpunt.twin.profiles.calibration import Calibration, load_calibration
from meetpunt.twin.profiles.clock import DAYS_PER_YEAR, HOURS_PER_YEAR, STEP_H, Clock, clock_for
from meetpunt.twin.profiles.pv import reference_pv_yield
from meetpunt.twin.profiles.simulate import PowerProfiles
from meetpunt.twin.profiles.weather import annual_degree_days, expected_degree_days


def _expected_base_share(kind: ConnectionKind, clock: Clock, cal: Calibration) -> float:
    """Expected fraction of a year's base load that falls in the axis (mean shape)."""
    shape = cal.loads[kind]
    table = shape.day_tables()[clock.daytype, clock.bin5] * seasonal_factor(shape, clock)
    standby = 0.5 * sum(shape.standby_share)
    return float((standby * clock.n_steps + (1 - standby) * table.sum()) * STEP_H / HOURS_PER_YEAR)


def annual_equivalents(
    profiles: PowerProfiles, conns: Sequence[TwinConnection], axis: TimeAxis
) -> dict[str, Any]:
    """Annualised figures of a run for the calibration note.

    Base load per household type (and shop/office) is annualised with the model's
    expected seasonal share of the window; PV kWh/kWp with the KNMI monthly radiation
    weights, plus a full-year run of 1 kWp at 35 deg south; EV kWh per EV by days;
    heat pump kWh and gas m3 with the expected degree-day share of the window.
    """
    cal = load_calibration()
    clock = clock_for(axis)
    years = axis.days / DAYS_PER_YEAR
    base_kwh = profiles.base_w.sum(axis=0, dtype=np.float64) * STEP_H / 1000.0
    groups: dict[str, list[int]] = {}
    for j, conn in enumerate(conns):
        label = conn.extra.get(HOUSEHOLD_TYPE_KEY) or conn.kind.value
        groups.setdefault(
            label if conn.kind is ConnectionKind.HOUSEHOLD else conn.kind.value, []
        ).append(j)
    loads: dict[str, dict[str, float]] = {}
    for label, members in sorted(groups.items()):
        share = _expected_base_share(conns[members[0]].kind, clock, cal)
        loads[label] = {
            "connections": float(len(members)),
            "annual_kwh_target": float(np.mean([conns[j].annual_kwh for j in members])),
            "annual_kwh_simulated": float(base_kwh[members].mean() / share),
        }

    month_len = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.float64)
    daily_weight = cal.weather.monthly_ghi_kwh_m2 / month_len / cal.weather.monthly_ghi_kwh_m2.sum()
    months = np.array([(axis.first_day + timedelta(days=d)).month - 1 for d in range(axis.days)])
    pv_cols = [j for j, c in enumerate(conns) if c.pv_kwp > 0]
    pv_kwh = profiles.pv_w.sum(axis=(0, 2), dtype=np.float64) * STEP_H / 1000.0
    window_share = float(daily_weight[months].sum())
    pv_window = (
        float(pv_kwh[pv_cols].sum() / sum(conns[j].pv_kwp for j in pv_cols))
        if pv_cols
        else math.nan
    )

    ev_cols = [j for j, c in enumerate(conns) if c.ev is not EvCharger.NONE]
    ev_kwh = profiles.ev_w.sum(axis=0, dtype=np.float64) * STEP_H / 1000.0
    starts = [
        clock.hours[s.start_step] for s in profiles.ev_sessions if s.start_step < axis.n_steps
    ]
    evening = float(np.mean([16.0 <= h < 23.0 for h in starts])) if starts else math.nan

    hp = cal.heat_pump
    hp_cols = [j for j, c in enumerate(conns) if c.heat_pump]
    doy = clock.day_doy[1:]
    hp_hdd = expected_degree_days(doy, hp.base_temperature_c, cal).sum() / annual_degree_days(
        hp.base_temperature_c, cal
    )
    hp_kwh = profiles.heat_pump_w.sum(axis=0, dtype=np.float64) * STEP_H / 1000.0
    hp_annual = []
    for j in hp_cols:
        dhw = hp.hybrid_dhw_share if conns[j].gas_ean else hp.dhw_share
        hp_annual.append(hp_kwh[j] / ((1 - dhw) * hp_hdd + dhw * years))

    gas = cal.gas
    gas_cols = [j for j, c in enumerate(conns) if c.gas_ean and c.gas_annual_m3 > 0]
    gas_hdd = expected_degree_days(doy, gas.base_temperature_c, cal).sum() / annual_degree_days(
        gas.base_temperature_c, cal
    )
    gas_m3 = profiles.gas_m3_hourly.sum(axis=0)
    gas_ratio = []
    for j in gas_cols:
        heat = (
            gas.household_heating_share
            if conns[j].kind is ConnectionKind.HOUSEHOLD
            else gas.business_heating_share
        )
        gas_ratio.append(gas_m3[j] / (heat * gas_hdd + (1 - heat) * years) / conns[j].gas_annual_m3)

    def mean(values: Sequence[float] | Float64Array) -> float:
        return float(np.mean(values)) if len(values) else math.nan

    return {
        "calibration_version": cal.version,
        "days": axis.days,
        "base_load": loads,
        "pv_kwh_per_kwp_window": pv_window,
        "pv_kwh_per_kwp_annualised": pv_window / window_share if pv_cols else math.nan,
        "pv_kwh_per_kwp_reference_year": reference_pv_yield(axis.first_day.year),
        "ev_count": len(ev_cols),
        "ev_kwh_per_year": mean(ev_kwh[ev_cols] / years),
        "ev_sessions_per_week": len(profiles.ev_sessions)
        / max(len(ev_cols), 1)
        / (axis.days / 7.0),
        "ev_evening_start_share": evening,
        "heat_pump_count": len(hp_cols),
        "heat_pump_kwh_per_year": mean(hp_annual),
        "gas_count": len(gas_cols),
        "gas_annualised_over_target": mean(gas_ratio),
    }
