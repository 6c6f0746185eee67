"""UC12's three steps on small constructed cases, each right, and wrong without its key step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.usecases.uc12_unsafe import (
    Uc12Error,
    Uc12Rules,
    cable_step,
    connection_step,
    read_cabinets,
    substation_step,
)

T0 = datetime(2025, 6, 2, tzinfo=UTC)
N = 2 * 288  # two days of 5-minute values
RULES = Uc12Rules()


def _load(rng: np.random.Generator, n: int = N) -> np.ndarray:
    """A house's current (A): a base with appliances switching on and off."""
    on = rng.random(n) < 0.15
    return 1.0 + on * rng.uniform(4, 12, n)


def _residual_table(rows: dict[tuple[str, int | None], np.ndarray]) -> pa.Table:
    out: dict[str, list[object]] = {"feeder": [], "cabinet": [], "start": [], "residual_a": []}
    for (feeder, cabinet), r in rows.items():
        out["feeder"] += [feeder] * len(r)
        out["cabinet"] += [cabinet] * len(r)
        out["start"] += [T0 + timedelta(minutes=5 * k) for k in range(len(r))]
        out["residual_a"] += r.tolist()
    return pa.table(out)


def _feeders(rng: np.random.Generator, share: float) -> dict[tuple[str, int | None], np.ndarray]:
    noise = lambda: rng.normal(0, 0.08, N)  # noqa: E731 - a one-line helper
    drift = np.cumsum(rng.normal(0, 0.01, N))
    return {
        ("healthy", None): np.abs(0.2 + noise()),
        ("leak", None): np.abs(2.5 + drift - drift.mean() + noise()),  # a standing leak
        ("broken", None): np.abs(0.2 + share * _load(rng) + noise()),
    }


@settings(max_examples=10, deadline=None)
@given(share=st.floats(0.2, 0.6), seed=st.integers(0, 500))
def test_the_substation_step_points_at_the_feeder_whose_residual_follows_the_load(
    share: float, seed: int
) -> None:
    found = substation_step(_residual_table(_feeders(np.random.default_rng(seed), share)), RULES)
    assert [f.feeder for f in found if f.points] == ["broken"]


def test_a_level_rule_instead_of_the_jumps_would_send_the_crew_to_a_standing_leak() -> None:
    """The key step removed: judged by its level, the harmless leak (2.5 A standing)
    outranks the broken neutral; the jumps tell them apart."""
    found = {
        f.feeder: f
        for f in substation_step(_residual_table(_feeders(np.random.default_rng(1), 0.3)), RULES)
    }
    assert found["leak"].mean_a > found["broken"].mean_a
    assert found["broken"].points and not found["leak"].points


def test_the_cable_step_points_at_the_last_cabinet_that_still_sees_it() -> None:
    rng = np.random.default_rng(4)
    earth = 0.4 * _load(rng)
    cabinets = {
        ("F", k): np.abs((earth if k <= 1 else 0.0) + 0.1 + rng.normal(0, 0.08, N))
        for k in range(4)
    }
    cabinets[("G", 0)] = np.abs(0.4 * _load(rng) + rng.normal(0, 0.08, N))  # not flagged
    found = cable_step(_residual_table(cabinets), ["F"], RULES)
    assert [(f.feeder, f.cabinet) for f in found if f.points] == [("F", 1)]
    assert {f.feeder for f in found} == {"F"}
    jumping = [f.cabinet for f in found if f.jump_a > RULES.residual_jump_a]
    assert jumping == [0, 1]  # without "the last one", cabinet 0 would widen the read


def _voltages(rng: np.random.Generator, broken: int | None) -> pa.Table:
    """Six single-phase meters on one phase (10-minute values, 3 days): a shared swing
    of +/- 8 V (MV and the feeder's load); the broken one also swings with its own load."""
    n = 3 * 144
    common = 230 + 8 * np.sin(np.arange(n) / 144 * 2 * np.pi) + rng.normal(0, 1.0, n)
    rows: dict[str, list[object]] = {"connection": [], "start": [], "phase": [], "voltage_v": []}
    for m in range(6):
        v = common - 0.3 * m + rng.normal(0, 0.3, n)
        if m == broken:
            on = rng.random(n) < 0.2
            v = v - on * rng.uniform(8, 25, n)  # its own load pulls its star point away
        rows["connection"] += [m] * n
        rows["start"] += [T0 + timedelta(minutes=10 * k) for k in range(n)]
        rows["phase"] += [1] * n
        rows["voltage_v"] += np.round(v, 1).tolist()
    return pa.table(rows)


IDS = {m: f"ean{m}" for m in range(6)}


def test_the_individual_step_finds_the_meter_that_swings_with_its_own_load() -> None:
    found, series = connection_step(_voltages(np.random.default_rng(5), 3), None, IDS, RULES)
    assert [f.ean for f in found if f.unsafe] == ["ean3"]
    assert list(series) == ["ean3"]


def test_no_broken_neutral_no_visit() -> None:
    found, _ = connection_step(_voltages(np.random.default_rng(6), None), None, IDS, RULES)
    assert len(found) == 6
    assert not [f for f in found if f.unsafe]


def test_without_the_neighbours_reference_every_meter_looks_unsafe() -> None:
    """The key step removed: each meter against its own median (no neighbours) sees
    the shared swing of the feeder and the MV voltage, and all exceed the threshold."""
    table = _voltages(np.random.default_rng(7), 3)
    v = np.asarray(table["voltage_v"]).reshape(6, -1)
    own = np.quantile(
        np.abs(v - np.median(v, axis=1, keepdims=True)), RULES.deviation_quantile, axis=1
    )
    assert (own > RULES.deviation_v).all()
    found, _ = connection_step(table, None, IDS, RULES)
    assert sum(f.unsafe for f in found) == 1


def test_feed_in_gives_the_correlation_as_evidence() -> None:
    rng = np.random.default_rng(8)
    table = _voltages(rng, None)
    # meter 2 feeds in at midday and its voltage rises with it (a floating star point)
    n = 3 * 144
    sun = np.clip(np.sin((np.arange(n) % 144 - 36) / 72 * np.pi), 0, None)
    v = np.asarray(table["voltage_v"]).copy().reshape(6, n)
    v[2] += 12 * sun
    table = table.set_column(3, "voltage_v", pa.array(v.reshape(-1)))
    quarters = [T0 + timedelta(minutes=15 * k) for k in range(n * 2 // 3)]
    export = [
        float(800 * np.clip(np.sin((((k * 15) // 10) % 144 - 36) / 72 * np.pi), 0, None))
        for k in range(len(quarters))
    ]
    feed_in = pa.table({"connection": [2] * len(quarters), "start": quarters, "export_wh": export})
    found, _ = connection_step(table, feed_in, IDS, RULES)
    meter = next(f for f in found if f.ean == "ean2")
    assert meter.unsafe
    assert meter.feed_in_correlation is not None and meter.feed_in_correlation > 0.8


def test_a_bad_cabinet_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cable_cabinets.csv"
    path.write_text("substation,feeder,cabinet,ean\nS,F,zero,871\n")
    with pytest.raises(Uc12Error) as refused:
        read_cabinets(path)
    assert f"{path}:2" in str(refused.value)
    assert refused.value.findings[0].rule == "UC12.cabinet_file"


def test_the_individual_read_covers_the_days_the_cable_step_saw_the_fault() -> None:
    """A broken neutral shows only under load: the read takes the 10 days in which the
    pointed cabinet's residual jumped most, not simply the last 10."""
    from meetpunt.privacy.model import Period
    from meetpunt.usecases.uc12_unsafe import busiest_window

    rng = np.random.default_rng(9)
    days, per_day = 30, 288
    r = 0.2 + rng.normal(0, 0.08, days * per_day)
    busy = slice(3 * per_day, 9 * per_day)  # an EV charging on days 3-8 only
    r[busy] += 0.4 * _load(rng, 6 * per_day)
    table = pa.table(
        {
            "feeder": ["F"] * len(r),
            "cabinet": [2] * len(r),
            "start": [T0 + timedelta(minutes=5 * k) for k in range(len(r))],
            "residual_a": np.abs(r),
        }
    )
    measured = Period(T0, T0 + timedelta(days=days))
    window = busiest_window(table, [("F", 2)], measured, RULES)
    assert window.days == RULES.read_days
    assert window.start <= T0 + timedelta(days=3)
    assert window.end >= T0 + timedelta(days=9)
    last = Period(measured.end - timedelta(days=RULES.read_days), measured.end)
    assert window != last


def test_each_pointed_section_is_read_over_its_own_window_citing_its_own_finding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two feeders whose broken neutrals work in different weeks: the cable step records
    one finding per pointed section, each naming the days ITS residual jumped, and step
    3 asks once per section, citing that section's finding, for that window and that
    section's meters only. One window for both (the step before) would read one of the
    two sections in days its fault did not show."""
    from meetpunt.privacy.model import Party, Period, Role
    from meetpunt.usecases import uc12_unsafe

    days = 20
    n = days * 288
    rng = np.random.default_rng(11)
    quiet = lambda: np.abs(0.1 + rng.normal(0, 0.05, n))  # noqa: E731 - a one-line helper
    early, late = np.zeros(n), np.zeros(n)
    early[: 5 * 288] = 0.5 * _load(rng, 5 * 288)  # feeder A: days 0-4
    late[14 * 288 :] = 0.5 * _load(rng, 6 * 288)  # feeder B: days 14-19
    stations = _residual_table(
        {("A", None): early + quiet(), ("B", None): late + quiet(), ("C", None): quiet()}
    )
    cabinets = _residual_table(
        {("A", 0): early + quiet(), ("A", 1): quiet(), ("B", 0): late + quiet()}
    )
    sections = {("A", 0): ["ean0", "ean1", "ean2"], ("A", 1): ["x"], ("B", 0): ["ean3", "ean4"]}
    flags: list[tuple[str, tuple[str, ...], str]] = []
    asked: list[object] = []

    class Gate:
        def flag(self, party, usecase, step, opens, eans, until, summary):  # type: ignore[no-untyped-def]
            flags.append((step, tuple(eans), summary))
            return len(flags)

    class Grant:
        def __init__(self, eans: tuple[str, ...]) -> None:
            self.connection_ids = {e: int(e[-1]) for e in eans}

        def read(self, kind: str) -> pa.Table:
            table = _voltages(np.random.default_rng(3), None)
            keep = pa.array(
                np.isin(np.asarray(table["connection"]), list(self.connection_ids.values()))
            )
            table = table.filter(keep)
            if kind == "voltages_10min":
                return table
            return table.append_column("export_wh", pa.array([0] * table.num_rows))

        def finish(self) -> None:
            pass

    def ask(gate: object, request: object, error: object) -> Grant:
        asked.append(request)
        return Grant(request.connections)  # type: ignore[attr-defined]

    monkeypatch.setattr(uc12_unsafe, "ask", ask)
    measured = Period(T0, T0 + timedelta(days=days))
    party = Party("8716874000009", Role.GRID_OPERATOR)
    result = uc12_unsafe.find_unsafe(
        Gate(),
        party,
        stations,
        cabinets,
        sections,
        measured,
        measured.end,
        RULES,  # type: ignore[arg-type]
    )
    assert [f[0] for f in flags] == ["substation", "cable", "cable"]
    assert [r.cites for r in asked] == [2, 3]  # type: ignore[attr-defined]
    assert [set(r.connections) for r in asked] == [{"ean0", "ean1", "ean2"}, {"ean3", "ean4"}]  # type: ignore[attr-defined]
    a, b = (r.period for r in asked)  # type: ignore[attr-defined]
    assert a.start <= T0 + timedelta(days=1) and a.end >= T0 + timedelta(days=4)
    assert b.start <= T0 + timedelta(days=15) and b.end >= T0 + timedelta(days=19)
    assert a != b and (a.end - a.start) <= timedelta(days=RULES.read_days)
    assert f"{b.start:%Y-%m-%d}" in flags[2][2] and f"{a.start:%Y-%m-%d}" in flags[1][2]
    assert [(r.feeder, r.cabinet, r.flag_id, r.period) for r in result.reads] == [
        ("A", 0, 2, a),
        ("B", 0, 3, b),
    ]
    assert result.individual_reads == 5
    # the one window of the step before, over both sections' cabinets, misses one of them
    one = uc12_unsafe.busiest_window(cabinets, [("A", 0), ("B", 0)], measured, RULES)
    assert not (one.start <= T0 + timedelta(days=1) and T0 + timedelta(days=19) <= one.end)
