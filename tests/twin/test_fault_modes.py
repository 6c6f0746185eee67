"""The twin's outage modes (issue 16): showcase, field statistics and stress cases,
each outage labelled with its hard-case classes from its geometry."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.errors import RulesDataError, TwinError
from meetpunt.rulebook import load_rules
from meetpunt.twin.faults import (
    CASE_CLASSES,
    Faults,
    Outage,
    OutageStatistics,
    case_classes,
    inject_faults,
)
from meetpunt.twin.generate import TwinSettings, generate
from meetpunt.twin.model import Interruption, TimeAxis
from meetpunt.twin.operatorfile import write_operator_files
from meetpunt.twin.topology import Region, build_region
from meetpunt.twin.truth import interruption_truth

JUNE = TimeAxis.for_days(date(2025, 6, 2), 30)
OCTOBER = TimeAxis.for_days(date(2025, 10, 6), 30)  # holds the change to winter time


def region_of(seed: int, connections: int = 1000) -> Region:
    return build_region(connections, np.random.default_rng([seed, 1]))


def outage(
    oid: str,
    start: datetime,
    minutes: float,
    substation: str = "S1",
    feeder: str | None = "S1-F1",
    affected: tuple[int, ...] = (1, 2),
) -> Outage:
    return Outage(
        oid,
        "cable_fault",
        "part_of_feeder",
        "LV",
        False,
        start,
        start + timedelta(minutes=minutes),
        substation,
        feeder,
        list(affected),
    )


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(TwinError, match="unknown fault mode 'storm'"):
        inject_faults(region_of(1, 200), JUNE, np.random.default_rng(1), "storm")


def test_field_counts_differ_per_seed_and_a_month_is_often_quiet() -> None:
    counts = [
        len(inject_faults(region_of(s), JUNE, np.random.default_rng([s, 2]), "field").outages)
        for s in range(1, 11)
    ]
    assert 0 in counts, "a month of 1,000 connections at field rates is often quiet"
    assert len(set(counts)) > 1, "counts must differ per seed"


def test_field_rates_give_the_national_figures_over_a_year() -> None:
    """Over 20 seeds of a year: about 0.35 unplanned interruptions and about 22 minutes
    per connection a year, as the twin_outages rule file says (national figures)."""
    year = TimeAxis.for_days(date(2025, 1, 1), 365)
    interruptions = minutes = served = 0.0
    planned = 0
    for seed in range(20):
        region = region_of(seed)
        faults = inject_faults(region, year, np.random.default_rng([seed, 2]), "field")
        for o in faults.outages:
            if o.planned:
                planned += 1
                continue
            interruptions += len(o.affected)
            minutes += len(o.affected) * (o.end - o.start).total_seconds() / 60
        served += len(region.connections)
    assert 0.25 <= interruptions / served <= 0.45
    assert 15 <= minutes / served <= 30
    assert planned > 0


def test_planned_work_starts_on_a_working_day_in_working_hours() -> None:
    year = TimeAxis.for_days(date(2025, 1, 1), 365)
    faults = inject_faults(region_of(3), year, np.random.default_rng(3), "field")
    planned = [o for o in faults.outages if o.planned]
    assert planned
    for o in planned:
        local = o.start.astimezone(ZoneInfo("Europe/Amsterdam"))
        assert local.weekday() < 5 and 8 <= local.hour <= 13 and local.minute % 15 == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stress_holds_several_of_every_hard_case(seed: int) -> None:
    faults = inject_faults(region_of(seed), OCTOBER, np.random.default_rng([seed, 2]), "stress")
    seen = Counter(c for o in faults.outages for c in o.cases)
    for case in CASE_CLASSES:
        if case != "plain":
            assert seen[case] >= 2, f"stress seed {seed}: {case} {seen[case]}x"
    interrupted = {i.outage_id for i in faults.interruptions}
    assert interrupted == {o.id for o in faults.outages}


def test_showcase_has_no_hard_cases() -> None:
    """The demo's story: every outage on its own feeder, inside the period."""
    faults = inject_faults(region_of(1), JUNE, np.random.default_rng([1, 2]))
    assert faults.outages
    hard = {"overlapping", "nested", "repeated", "starts_before_period", "ends_after_period"}
    assert not hard & {c for o in faults.outages for c in o.cases}


def test_case_classes_from_geometry() -> None:
    t = datetime(2025, 6, 10, 8, tzinfo=UTC)
    a = outage("A", t, 180)
    b = outage("B", t + timedelta(minutes=30), 60, feeder="S1-F2", affected=(5,))
    mv = outage("M", t + timedelta(minutes=60), 30, feeder=None, affected=(1, 2, 5, 9))
    later = outage("L", t + timedelta(hours=6), 2)
    other = outage("X", t, 60, substation="S2", feeder="S2-F1", affected=(40,))
    everything = [a, b, mv, later, other]
    assert case_classes(a, everything, JUNE) == ("overlapping", "nested", "repeated")
    assert case_classes(b, everything, JUNE) == ("overlapping", "nested")
    assert case_classes(later, everything, JUNE) == ("repeated", "short")
    assert case_classes(other, everything, JUNE) == ("plain",)
    night = outage("N", datetime(2025, 6, 10, 21, 30, tzinfo=UTC), 120)  # 23:30 local
    assert "crosses_midnight" in case_classes(night, [night], JUNE)
    edge = outage("E", JUNE.start_utc - timedelta(hours=1), 120)
    assert "starts_before_period" in case_classes(edge, [edge], JUNE)
    end = JUNE.start_utc + timedelta(days=30)
    tail = outage("T", end - timedelta(hours=1), 120)
    assert "ends_after_period" in case_classes(tail, [tail], JUNE)
    change = datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST, clocks go back at 01:00
    dst = outage("D", change, 90)
    assert "crosses_dst" in case_classes(dst, [dst], OCTOBER)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 40 * 24 * 60),
            st.integers(1, 600),
            st.sampled_from(["S1", "S2"]),
            st.sampled_from(["F1", "F2", None]),
            st.frozensets(st.integers(0, 6), min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_case_classes_are_consistent(draws: list[Any]) -> None:
    """Overlapping and nested are mutual, nested implies overlapping, plain stands alone."""
    t0 = JUNE.start_utc - timedelta(days=2)
    outages = [
        outage(f"O{n}", t0 + timedelta(minutes=m), d, s, f"{s}-{f}" if f else None, tuple(a))
        for n, (m, d, s, f, a) in enumerate(draws)
    ]
    labels = {o.id: set(case_classes(o, outages, JUNE)) for o in outages}
    for o in outages:
        mine = labels[o.id]
        assert ("plain" in mine) == (mine == {"plain"})
        if "nested" in mine:
            assert "overlapping" in mine
        for p in outages:
            if p is o or p.substation != o.substation:
                continue
            if p.start < o.end and o.start < p.end:
                assert "overlapping" in labels[p.id] and "overlapping" in mine
                if set(p.affected) & set(o.affected):
                    assert "nested" in labels[p.id] and "nested" in mine


def test_the_rule_file_is_checked() -> None:
    body = load_rules("twin_outages").body
    broken = {"classes": {k: v for k, v in body["classes"].items() if k != "cabinet_fuse"}}
    with pytest.raises(RulesDataError, match="cabinet_fuse"):
        OutageStatistics.from_mapping(broken)
    reversed_ = {"classes": dict(body["classes"])}
    reversed_["classes"]["cable_fault"] = {
        **body["classes"]["cable_fault"],
        "min_min": 50.0,
        "max_min": 10.0,
    }
    with pytest.raises(RulesDataError, match="cable_fault"):
        OutageStatistics.from_mapping(reversed_)
    assert OutageStatistics.load().version


def test_a_stress_twin_writes_its_cases_and_meters_log_only_what_ended(tmp_path: Path) -> None:
    """End to end: the truth carries the case classes; an outage still going at the
    period's end is in no meter's log (the meter writes it when the voltage returns), a
    short one is counted but not logged, one that began before the period is logged
    with its whole duration."""
    out = tmp_path / "twin"
    generate(TwinSettings(120, 4, date(2025, 10, 24), seed=2, faults="stress"), out)
    outages = pq.read_table(out / "truth" / "outages.parquet")
    seen = pq.read_table(out / "truth" / "interruptions_seen.parquet").to_pylist()
    cases = {r["outage_id"]: set(r["cases"]) for r in outages.to_pylist()}
    assert {"ends_after_period", "starts_before_period", "crosses_dst"} <= set().union(
        *cases.values()
    )

    def alone(row: dict[str, Any]) -> bool:  # no other cut of its connection touches it
        return not any(
            r is not row
            and r["connection"] == row["connection"]
            and r["start"] <= row["end"]
            and row["start"] <= r["end"]
            for r in seen
        )

    checked: Counter[str] = Counter()
    for row in seen:  # merged with others or not, the voltage has not returned yet
        if "ends_after_period" in cases[row["outage_id"]]:
            assert not row["counted"] and not row["logged"], row
            checked["ends_after_period"] += 1
    for row in filter(alone, seen):
        if row["meter"] == "ferraris":  # a traditional meter counts and logs nothing
            continue
        classes = cases[row["outage_id"]]
        if "ends_after_period" in classes:
            continue
        if "short" in classes:
            assert row["counted"] and not row["logged"], row
            checked["short"] += 1
        elif "starts_before_period" in classes:
            assert row["logged"] and row["log_duration_s"] == row["duration_s"], row
            checked["starts_before_period"] += 1
    assert checked["ends_after_period"] and checked["starts_before_period"], checked
    assert pc.sum(outages["affected"]).as_py() > 0
    assert json_settings(out)["faults"] == "stress"


def json_settings(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "manifest.json").read_text())["settings"]
    return data


def test_field_calls_come_as_calls_really_come(tmp_path: Path) -> None:
    """Several calls for a larger outage, none for a short one, and calls from
    customers whose own breaker tripped, at moments their connection had supply."""
    region = region_of(4)
    faults = inject_faults(region, OCTOBER, np.random.default_rng(4), "stress")
    write_operator_files(region, faults, tmp_path, np.random.default_rng(5), "stress", OCTOBER)
    with (tmp_path / "outage_reports.csv").open(encoding="utf-8") as handle:
        calls = [
            (row["ean"], datetime.fromisoformat(row["reported_at"]))
            for row in csv.DictReader(handle)
        ]
    index = {c.ean: c.index for c in region.connections}
    per_outage: Counter[str] = Counter()
    own = 0
    for ean, at in calls:
        cut = [
            i
            for i in faults.interruptions
            if i.index == index[ean] and i.start <= at < i.end and not i.planned
        ]
        if not cut:
            own += 1
        for i in cut:
            per_outage[i.outage_id] += 1
    outages = {o.id: o for o in faults.outages}
    assert own >= 1, "own-breaker calls"
    assert max(per_outage.values()) >= 2, "several calls for one outage"
    short = [
        o
        for o in faults.outages
        if (o.end - o.start) <= timedelta(minutes=5) and "overlapping" not in o.cases
    ]
    assert short and not any(per_outage[o.id] for o in short)
    assert all(not outages[o].planned for o in per_outage)
    assert [at for _, at in calls] == sorted(at for _, at in calls)


def test_overlapping_outages_are_one_interruption_for_the_customer() -> None:
    """Two 3-hour faults overlapping by an hour leave a house 5 hours without power:
    one interruption over the 4-hour threshold (owed), not two under it (nothing);
    counted once. One still going at the period's end is not owed in this period."""
    region = region_of(6, 200)
    house = region.connections[0]
    t = JUNE.start_utc + timedelta(days=3)
    first = outage("O0001", t, 180, house.substation, house.feeder, (house.index,))
    second = outage("O0002", t + timedelta(hours=2), 180, house.substation, None, (house.index,))
    end = JUNE.start_utc + timedelta(days=30)
    late = outage("O0003", end - timedelta(hours=1), 600, house.substation, None, (house.index,))
    faults = Faults(outages=[first, second, late])
    for o in faults.outages:
        faults.interruptions.append(Interruption(house.index, o.id, o.start, o.end, False))
    rows = {r["outage_id"]: r for r in interruption_truth(region, faults, JUNE).to_pylist()}
    assert Decimal(rows["O0001"]["compensation_eur"]) > 0
    assert Decimal(rows["O0002"]["compensation_eur"]) == 0
    assert rows["O0002"]["customer_start"] == first.start
    assert rows["O0001"]["customer_end"] == second.end
    assert rows["O0001"]["owed_in_period"] and not rows["O0003"]["owed_in_period"]
    alone = Faults(outages=[first], interruptions=[faults.interruptions[0]])
    assert Decimal(interruption_truth(region, alone, JUNE)["compensation_eur"][0].as_py()) == 0
