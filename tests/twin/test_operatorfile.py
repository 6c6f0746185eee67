"""The operator's own files the twin writes (UC1's outage reports, UC4's planned works):
drawn from the injected outages, readable by the use cases, never taken for meter data."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from meetpunt.io.files import find_sources
from meetpunt.twin.generate import TwinSettings, generate
from meetpunt.usecases.planned_works import read_planned


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("operator") / "twin"
    generate(TwinSettings(connections=200, days=10, start=date(2025, 6, 2), seed=2), out)
    return out


def _truth(twin: Path, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(twin / "truth" / f"{name}.parquet").to_pylist()
    return rows


def test_every_planned_outage_is_in_the_work_planning_and_nothing_else(twin: Path) -> None:
    works = read_planned(twin / "operator" / "planned_works.csv")
    planned = [o for o in _truth(twin, "outages") if o["planned"]]
    unplanned = [o for o in _truth(twin, "outages") if not o["planned"]]
    assert planned and len(works) == len(planned)
    for outage in planned:
        assert any(
            w.covers(outage["substation"], [outage["feeder"]], outage["start"], outage["end"])
            and w.start <= outage["start"]
            and w.end >= outage["end"]
            and w.start.minute % 15 == 0
            for w in works
        ), outage
    for outage in unplanned:  # the planning must not excuse an unplanned fault
        feeders = [outage["feeder"]] if outage["feeder"] else []
        assert not any(
            w.covers(outage["substation"], feeders, outage["start"], outage["end"]) for w in works
        ), outage


def test_one_call_per_unplanned_outage_from_an_affected_customer_during_it(twin: Path) -> None:
    with (twin / "operator" / "outage_reports.csv").open(encoding="utf-8") as handle:
        calls = list(csv.DictReader(handle))
    outages = {o["outage_id"]: o for o in _truth(twin, "outages")}
    cut_off: dict[str, list[dict[str, Any]]] = {}
    for row in _truth(twin, "interruptions"):
        cut_off.setdefault(row["ean"], []).append(row)
    called: list[str] = []
    for call in calls:
        at = datetime.fromisoformat(call["reported_at"])
        assert at.tzinfo is not None and call["channel"] == "phone"
        hits = [r for r in cut_off.get(call["ean"], []) if r["start"] <= at < r["end"]]
        assert len(hits) == 1, call
        outage = outages[hits[0]["outage_id"]]
        assert not outage["planned"]
        assert at <= outage["start"] + (outage["end"] - outage["start"]) / 2
        called.append(outage["outage_id"])
    assert sorted(called) == sorted(o for o, v in outages.items() if not v["planned"])


def test_a_folder_search_for_meter_data_skips_the_operator_files(twin: Path) -> None:
    found = {p.relative_to(twin).parts[0] for p in find_sources([twin])}
    assert found == {"meterdata", "p1"}
