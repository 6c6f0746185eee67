"""The twin's mechanic's readings (UC10): right readings are the floor of the true
registers at any moment, bracketed by the meter's own daily readings; every misread in
the truth really differs from the truth and is of the kind it names."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from meetpunt.twin.generate import TwinSettings, generate
from meetpunt.twin.manual_readings import MISREADS, misread

SMALL = TwinSettings(connections=80, days=4, start=date(2025, 6, 2), seed=3, faults="field")


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("manual") / "twin"
    generate(SMALL, out)
    return out


def test_each_misread_kind_changes_what_it_says() -> None:
    rng = np.random.default_rng(1)
    true, neighbour = [12345, 6789, 17, 0], [555, 444, 0, 0]
    assert misread("tariff_swap", true, neighbour, rng) == [6789, 12345, 0, 17]
    assert misread("direction_swap", true, neighbour, rng) == [17, 0, 12345, 6789]
    assert misread("neighbour_meter", true, neighbour, rng) == neighbour
    slipped = misread("transposition", true, neighbour, rng)
    changed = [i for i in range(4) if slipped[i] != true[i]]
    assert len(changed) == 1
    assert sorted(str(slipped[changed[0]])) == sorted(str(true[changed[0]]))
    one_seven = misread("misread_1_7", true, neighbour, rng)
    i = next(i for i in range(4) if one_seven[i] != true[i])
    diff = [(a, b) for a, b in zip(str(true[i]), str(one_seven[i]), strict=True) if a != b]
    assert diff in ([("1", "7")], [("7", "1")])


def test_readings_file_and_truth_agree_with_the_meters(twin: Path) -> None:
    with (twin / "operator" / "manual_readings.csv").open(newline="") as f:
        rows = {r["reading_id"]: r for r in csv.DictReader(f)}
    truth = pq.read_table(twin / "truth" / "manual_readings.parquet").to_pylist()
    assert rows and len(rows) == len(truth)
    daily = pq.read_table(twin / "meterdata" / "daily_readings.parquet").to_pylist()
    by_ean: dict[str, list[dict[str, object]]] = {}
    for d in daily:
        by_ean.setdefault(str(d["ean"]), []).append(d)
    hours = set()
    for t in truth:
        row = rows[t["reading_id"]]
        reported = [float(row[k]) for k in list(row)[3:]]
        assert reported == t["reported_kwh"]
        taken = datetime.fromisoformat(row["taken_at"])
        assert taken == t["taken_at"] and taken.utcoffset() is not None
        hours.add(taken.hour)
        assert (t["misread"] == "") == (reported == t["true_kwh"])
        assert t["misread"] in ("", *MISREADS)
        # the true values lie between the meter's own daily readings around the visit
        regs = sorted(by_ean.get(t["ean"], []), key=lambda d: d["at"])  # type: ignore[arg-type,return-value]
        before = [d for d in regs if d["at"] <= t["taken_at"]]  # type: ignore[operator]
        after = [d for d in regs if d["at"] > t["taken_at"]]  # type: ignore[operator]
        if before and after and not t["offline_visit"]:
            b, a = before[-1], after[0]
            low = float(b["import_t1_kwh"]) - 1  # type: ignore[arg-type]
            high = float(a["import_t1_kwh"]) + 1  # type: ignore[arg-type]
            assert low <= t["true_kwh"][0] <= high
    assert len(hours) > 3  # visits at any time of day, not office hours only
