"""UC5 on small constructed cases: the effect at equal conditions, and why it needs them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.usecases.uc05_intervention import (
    InterventionNote,
    Series,
    Uc05Error,
    Uc05Rules,
    compare_windows,
    conditions,
    estimate_effect,
    read_interventions,
    window_stats,
)

T0 = datetime(2025, 6, 2, tzinfo=UTC)
STEPS = 144 * 5  # five days of 10-minute values per window
RULES = Uc05Rules(min_values=100, values_per_regressor=10)


def _conditions(
    rng: np.random.Generator, load_shift: float, mv_shift: float = -0.006, mv_swing: float = 0.01
) -> pa.Table:
    """10-minute conditions of two windows: the after window has ``load_shift`` kW more
    load on the group (a colder week) and its own MV level (``mv_shift``, relative).
    A substation's group: the supply voltage is the MV voltage."""
    n = 2 * STEPS
    t = (np.arange(n) * 600 + int(T0.timestamp())).astype(np.int64)
    hours = (np.arange(n) % 144) / 6.0
    daily = 20 + 15 * np.sin((hours - 6) / 24 * 2 * np.pi)
    shift = np.r_[np.zeros(STEPS), np.full(STEPS, load_shift)]
    p = [daily + shift + rng.normal(0, 3, n) for _ in range(3)]
    mv = 10.5 * (
        1 + mv_swing * np.sin(np.arange(n) / 700) + np.r_[np.zeros(STEPS), np.full(STEPS, mv_shift)]
    )
    cols = {"t": t, "mv": mv, "p1": p[0], "p2": p[1], "p3": p[2], "p_rest": rng.normal(40, 5, n)}
    return pa.table(cols | {f"supply_l{ph}": mv for ph in (1, 2, 3)})


def _voltages(
    cond: pa.Table, effect: float, rng: np.random.Generator, meters: int = 6, drop: float = 0.05
) -> tuple[pa.Table, pa.Table, dict[int, str]]:
    """Voltages as a feeder makes them: the MV voltage times the no-load ratio less the
    drop of the currents (power over voltage, so a lower MV voltage draws more current
    for the same power), plus ``effect`` in the after window; 0.1 V meter noise."""
    t = np.asarray(cond["t"])
    rows: dict[str, list[object]] = {"connection": [], "start": [], "phase": [], "voltage_v": []}
    for m in range(meters):
        ph = m % 3 + 1
        z = drop + 0.02 * m
        mv = np.asarray(cond["mv"]) / 10.5
        v = (
            230 * mv
            - z * np.asarray(cond[f"p{ph}"]) / mv
            - 0.01 * np.asarray(cond["p_rest"]) / mv
            + rng.normal(0, 0.1, len(t))
        )
        v[STEPS:] += effect
        rows["connection"] += [m] * len(t)
        rows["start"] += [datetime.fromtimestamp(int(x), UTC) for x in t]
        rows["phase"] += [ph] * len(t)
        rows["voltage_v"] += v.tolist()
    table = pa.table(rows)
    start = table["start"].to_pylist()
    cut = T0 + timedelta(seconds=600 * STEPS)
    before = table.filter(pa.array([s < cut for s in start]))
    after = table.filter(pa.array([s >= cut for s in start]))
    return before, after, {m: f"ean{m}" for m in range(meters)}


def _phases(meters: int = 6) -> dict[str, str | None]:
    return {f"ean{m}": None for m in range(meters)}


def test_the_effect_is_found_at_equal_conditions() -> None:
    rng = np.random.default_rng(1)
    cond = _conditions(rng, load_shift=25.0)
    before, after, ids = _voltages(cond, -3.0, rng)
    effects, left_out = estimate_effect(before, after, cond, ids, _phases(), RULES)
    assert not left_out
    assert len(effects) == 6
    assert all(abs(e.effect_v + 3.0) < 0.1 for e in effects)


def test_without_the_load_and_weather_control_the_effect_is_wrong() -> None:
    """The key step removed: the difference of the windows' means carries the load and
    MV difference (here several volts) into the effect."""
    rng = np.random.default_rng(2)
    cond = _conditions(rng, load_shift=25.0)
    before, after, ids = _voltages(cond, -3.0, rng)
    naive, _ = estimate_effect(before, after, cond, ids, _phases(), RULES, control=False)
    assert all(abs(e.effect_v + 3.0) > 0.5 for e in naive)


def test_an_mv_voltage_beyond_the_before_window_needs_the_per_unit_fit() -> None:
    """The key step (UC5): the voltage in per unit of the supply voltage. Seed 5's case:
    the MV voltage moves 0.3 % within the before window and is 4 % lower after it,
    with more load on a long feeder. Fitting the MV voltage as a free regressor
    extrapolates its coefficient and misses that the same power draws more current at
    a lower voltage: wrong by more than 0.5 V; per unit it is right."""
    rng = np.random.default_rng(5)
    cond = _conditions(rng, load_shift=25.0, mv_shift=-0.04, mv_swing=0.003)
    before, after, ids = _voltages(cond, 0.8, rng, meters=3, drop=0.5)
    right, _ = estimate_effect(before, after, cond, ids, _phases(3), RULES)
    fitted, _ = estimate_effect(before, after, cond, ids, _phases(3), RULES, per_unit=False)
    assert all(abs(e.effect_v - 0.8) < 0.15 for e in right)
    assert max(abs(e.effect_v - 0.8) for e in fitted) > 0.5


@settings(max_examples=15, deadline=None)
@given(
    effect=st.floats(-8.0, 8.0),
    shift=st.floats(-20.0, 30.0),
    mv_shift=st.floats(-0.05, 0.05),
    seed=st.integers(0, 1000),
)
def test_any_effect_under_any_load_and_mv_difference(
    effect: float, shift: float, mv_shift: float, seed: int
) -> None:
    """UC5: per unit of the supply voltage the effect holds for any MV level after."""
    rng = np.random.default_rng(seed)
    cond = _conditions(rng, load_shift=shift, mv_shift=mv_shift)
    before, after, ids = _voltages(cond, effect, rng, meters=3)
    phases, effects, _, _ = compare_windows(before, after, cond, ids, _phases(3), RULES)
    assert len(effects) == 3
    for p in phases:
        assert p.effect_v is not None
        assert abs(p.effect_v - effect) < 0.15


def test_a_meter_with_too_few_values_is_left_out() -> None:
    rng = np.random.default_rng(3)
    cond = _conditions(rng, 0.0)
    before, after, ids = _voltages(cond, 1.0, rng, meters=3)
    sparse = after.filter(
        pa.array([c != 1 or i % 10 == 0 for i, c in enumerate(after["connection"].to_pylist())])
    )
    effects, left_out = estimate_effect(before, sparse, cond, ids, _phases(3), RULES)
    assert left_out == ["ean1"]
    assert {e.series.ean for e in effects} == {"ean0", "ean2"}


def test_window_stats_count_minutes_and_excursions() -> None:
    s = Series("e", 1, "L1")
    values = np.array([230, 254, 255, 230, 206, 230, 254], dtype=np.float64)
    stats = window_stats({s: values}, Uc05Rules())
    assert stats.minutes_above == 30
    assert stats.minutes_below == 10
    assert stats.excursions == 3
    assert stats.values == 7


def test_windows_leave_the_day_of_the_work_as_the_pause() -> None:
    note = InterventionNote("tap_change", "OS001", None, date(2025, 6, 12), T0)
    before, after = note.windows()
    assert before.days == 10
    assert after.days == 10
    assert (after.start - before.end) == timedelta(days=1)


def test_conditions_sum_the_group_and_refuse_an_unknown_substation() -> None:
    """The group's power, and its supply voltage (UC5): a feeder's is the busbar, a
    substation's the MV voltage (a tap change moves the busbar)."""
    times = [T0 + timedelta(minutes=5 * k) for k in range(4)]
    rows = []
    for feeder, kw in (("F1", 1.0), ("F2", 3.0)):
        for t in times:
            rows.append(
                {
                    "substation": "S",
                    "feeder": feeder,
                    "start": t,
                    "mv_kv": 10.5,
                    "busbar_v_l1": 231.0,
                    "busbar_v_l2": 232.0,
                    "busbar_v_l3": 233.0,
                    "power_kw_l1": kw,
                    "power_kw_l2": 0.0,
                    "power_kw_l3": 0.0,
                }
            )
    table = pa.Table.from_pylist(rows)
    feeder = conditions(table, "S", "F1")
    assert feeder.num_rows == 2
    assert feeder["p1"].to_pylist() == pytest.approx([1.0, 1.0])
    assert feeder["p_rest"].to_pylist() == pytest.approx([3.0, 3.0])
    assert feeder["supply_l2"].to_pylist() == pytest.approx([232.0, 232.0])
    whole = conditions(table, "S", None)
    assert whole["p1"].to_pylist() == pytest.approx([4.0, 4.0])
    assert whole["supply_l2"].to_pylist() == pytest.approx([10.5, 10.5])
    with pytest.raises(Uc05Error) as refused:
        conditions(table, "OTHER", None)
    assert refused.value.findings[0].rule == "UC5.conditions"


def test_a_bad_intervention_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "interventions.csv"
    path.write_text("kind,substation,feeder,day,at\ntap_change,OS001,,2025-13-01,x\n")
    with pytest.raises(Uc05Error) as refused:
        read_interventions(path)
    assert f"{path}:2" in str(refused.value)
    assert refused.value.findings[0].rule == "UC5.intervention_file"


def test_an_after_read_asked_before_its_window_ends_is_refused() -> None:
    """``asked_at`` (the CLI's ``--at``) before the after window has ended would read an
    incomplete window: refused (UC5.asked_early) before the gate is asked anything."""
    from meetpunt.privacy.model import Party, Role
    from meetpunt.usecases.uc05_intervention import assess_intervention

    note = InterventionNote("tap_change", "OS001", None, date(2025, 6, 12), T0)
    _before, after = note.windows()

    class NoGate:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the gate was asked ({name})")

    with pytest.raises(Uc05Error) as refused:
        assess_intervention(
            NoGate(),  # type: ignore[arg-type]
            Party("8716874000009", Role.GRID_OPERATOR),
            note,
            pa.table({}),
            asked_at=after.end - timedelta(hours=1),
        )
    assert [f.rule for f in refused.value.findings] == ["UC5.asked_early"]
