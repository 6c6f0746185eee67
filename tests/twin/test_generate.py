"""The whole twin run (issue 3): same seed same bytes, calendar sanity, counters, and
the meters' failure logs matching the injected outages."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from meetpunt.domain.calendar import local_date_of
from meetpunt.twin.generate import TwinSettings, generate

SMALL = TwinSettings(connections=60, days=3, start=date(2025, 10, 25), seed=4)


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("twin") / "a"
    generate(SMALL, out)
    return out


def manifest(folder: Path) -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = json.loads((folder / "manifest.json").read_text())[
        "files"
    ]
    return files


def test_same_seed_same_bytes_other_seed_other_data(twin: Path, tmp_path: Path) -> None:
    again = tmp_path / "b"
    generate(SMALL, again)
    first, second = manifest(twin), manifest(again)
    assert first.keys() == second.keys()
    assert {k: v["sha256"] for k, v in first.items()} == {k: v["sha256"] for k, v in second.items()}
    other = tmp_path / "c"
    generate(TwinSettings(SMALL.connections, SMALL.days, SMALL.start, seed=5), other)
    differs = [
        k for k, v in manifest(other).items() if v["sha256"] != first.get(k, {}).get("sha256")
    ]
    assert "meterdata/quarter_hours.parquet" in differs


def test_output_layout(twin: Path) -> None:
    files = manifest(twin)
    for kind in (
        "quarter_hours",
        "daily_readings",
        "monthly_readings",
        "gas_hourly",
        "voltages_10min",
        "voltage_events",
        "power_failures",
        "power_failure_log",
        "last_gasp",
        "manual_readings",
    ):
        assert f"meterdata/{kind}.parquet" in files
    for name in (
        "connections",
        "outages",
        "interruptions",
        "gis_errors",
        "pv_registration",
        "ev_sessions",
        "inverter_trips",
        "voltages_15min",
    ):
        assert f"truth/{name}.parquet" in files
    assert {
        "register/connections.csv",
        "register/contracts.csv",
        "register/secondary_allocation_points.csv",
        "operator/planned_works.csv",
        "operator/outage_reports.csv",
    } <= files.keys()
    assert any(k.startswith("p1/") for k in files)


def test_dst_day_has_100_quarter_hours_per_meter(twin: Path) -> None:
    table = pq.read_table(twin / "meterdata/quarter_hours.parquet")
    starts = table.column("start").to_pylist()
    conns = table.column("connection").to_numpy()
    first = conns[0]
    days = [local_date_of(t) for t, c in zip(starts, conns, strict=True) if c == first]
    counts = {d: days.count(d) for d in set(days)}
    assert counts == {date(2025, 10, 25): 96, date(2025, 10, 26): 100, date(2025, 10, 27): 96}


def test_weekend_energy_goes_to_the_offpeak_register(twin: Path) -> None:
    daily = pq.read_table(twin / "meterdata/daily_readings.parquet").to_pandas()
    daily = daily.sort_values(["connection", "at"])
    # readings at local midnight of 25, 26, 27 and 28 Oct; Sat 25 and Sun 26 are weekend
    for _, rows in daily.groupby("connection"):
        t2 = rows["import_t2_kwh"].to_numpy()
        assert t2[1] == t2[0] and t2[2] == t2[1]  # no normal-tariff import at the weekend
        assert (np.diff(rows["import_t1_kwh"].to_numpy()) >= 0).all()


def test_counters_only_go_up(twin: Path) -> None:
    for kind, columns in (
        ("voltage_events", ("sags", "swells")),
        ("power_failures", ("failures", "long_failures")),
    ):
        table = pq.read_table(twin / f"meterdata/{kind}.parquet").to_pandas()
        keys = ["connection", "phase"] if "phase" in table else ["connection"]
        for _, rows in table.sort_values("at").groupby(keys):
            for column in columns:
                assert (np.diff(rows[column].to_numpy()) >= 0).all()


def test_failure_logs_match_the_injected_outages(twin: Path) -> None:
    truth = pq.read_table(twin / "truth/interruptions.parquet").to_pandas()
    seen = pq.read_table(twin / "truth/interruptions_seen.parquet").to_pandas()
    log = pq.read_table(twin / "meterdata/power_failure_log.parquet")
    start = pq.read_table(twin / "meterdata/quarter_hours.parquet").column("start")
    log = log.filter(pc.greater_equal(log.column("end"), pc.min(start))).to_pandas()
    meters = (
        pq.read_table(twin / "truth/connections.parquet")
        .to_pandas()
        .set_index("connection")["meter"]
    )
    assert len(truth) > 0
    for _, cut in truth.iterrows():
        smart = meters[cut["connection"]] != "ferraris"
        mine = log[log["connection"] == cut["connection"]]
        match = mine[(mine["end"] == cut["end"]) & (mine["duration_s"] == cut["duration_s"])]
        assert len(match) == (1 if smart and cut["duration_s"] > 180 else 0), cut.to_dict()
    assert len(seen) == len(truth)
    assert len(log) == int((truth["connection"].map(meters) != "ferraris").sum())


def test_a_meter_swap_restarts_the_registers(twin: Path) -> None:
    from meetpunt.twin.model import TimeAxis
    from meetpunt.twin.swaps import apply_meter_swaps
    from meetpunt.twin.topology import build_region

    tables = {
        k: pq.read_table(twin / f"meterdata/{k}.parquet")
        for k in ("daily_readings", "monthly_readings", "manual_readings")
    }
    before = tables["daily_readings"].to_pandas()
    connection = int(before["connection"].iloc[0])
    region = build_region(SMALL.connections, np.random.default_rng(0))
    axis = TimeAxis.for_days(SMALL.start, SMALL.days)
    swaps = {connection: -1}
    truth = apply_meter_swaps(tables, swaps, region, axis, np.random.default_rng(1))
    assert truth.num_rows == 1 and swaps[connection] > 0
    at = truth.column("swapped_at")[0].as_py()
    after = tables["daily_readings"].to_pandas()
    mine_before = before[before["connection"] == connection].sort_values("at")
    mine_after = after[after["connection"] == connection].sort_values("at")
    moved = mine_after["at"] >= at
    assert (
        mine_after.loc[~moved, "import_t1_kwh"].to_numpy()
        == mine_before.loc[~moved, "import_t1_kwh"].to_numpy()
    ).all()
    new_start = truth.column("new_import_t1_kwh")[0].as_py()
    assert mine_after.loc[moved, "import_t1_kwh"].iloc[0] == pytest.approx(new_start)
    # energy between readings after the swap is unchanged
    assert np.allclose(
        np.diff(mine_after.loc[moved, "import_t1_kwh"].to_numpy()),
        np.diff(mine_before.loc[moved, "import_t1_kwh"].to_numpy()),
        atol=1e-6,
    )
    others = after["connection"] != connection
    assert (
        after.loc[others, "import_t1_kwh"].to_numpy()
        == before.loc[others, "import_t1_kwh"].to_numpy()
    ).all()
