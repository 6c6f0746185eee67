"""``meetpunt demo --faults stress`` (issue 16): the chain runs end to end on the hard
cases, and every use case is scored per fault class, so a weak class shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from rich.console import Console

from meetpunt.demo.chain import DemoRun, DemoSettings, run_demo
from meetpunt.demo.score import (
    NO_OUTAGE,
    Truth,
    owed_by_truth,
    score_uc1,
    score_uc4,
    score_uc9,
    truth_outage_of,
)
from meetpunt.demo.summary import as_json, per_case_table
from meetpunt.twin.faults import CASE_CLASSES
from meetpunt.twin.realities import METER_CASES
from meetpunt.usecases.uc01_outage_localisation import NONE_FOUND, SINGLE

# six days around the change to winter time, so every hard case can occur
STRESS: dict[str, Any] = {
    "connections": 200,
    "days": 6,
    "start": date(2025, 10, 22),
    "seed": 3,
    "faults": "stress",
}


@pytest.fixture(scope="module")
def stress(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    folder = tmp_path_factory.mktemp("stress")
    return run_demo(Console(record=True, width=160), DemoSettings(folder, **STRESS))


def test_the_stress_demo_runs_and_scores_every_use_case_per_class(stress: DemoRun) -> None:
    assert [s.use_case for s in stress.scores][:3] == ["UC1", "UC4", "UC9"]
    known = {*CASE_CLASSES, *METER_CASES, NO_OUTAGE}
    for score in stress.scores[:3]:  # the others have no outage classes
        assert score.total > 0
        assert score.by_case and set(score.by_case) <= known, score.use_case
        assert len(set(score.by_case) - {"plain"}) >= 3, score.use_case
    uc9 = next(s for s in stress.scores if s.use_case == "UC9")
    total = uc9.metrics["interruptions_truth"]
    counted = [row["interruptions_truth"] for row in uc9.by_case.values()]
    assert max(counted) <= total <= sum(counted), "each item counts in each of its classes"
    table = per_case_table(stress)
    assert table is not None and table.row_count == len(
        {c for s in stress.scores for c in s.by_case}
    )
    out = as_json(stress)
    assert out["faults"] == "stress"
    assert out["use_cases"]["UC4"]["by_case"] == next(
        s.by_case for s in stress.scores if s.use_case == "UC4"
    )


def test_a_missed_payment_shows_in_the_classes_of_its_outages(stress: DemoRun) -> None:
    truth = Truth.read(stress.twin)
    result = stress.require_uc4()
    owed = owed_by_truth(truth)
    reviewed = {r.ean for r in result.reviews}
    owed_and_paid = [p for p in result.payments if p.ean in owed and p.ean not in reviewed]
    assert owed_and_paid, "the stress twin must owe someone UC4 pays"
    first = owed_and_paid[0]
    rest = [p for p in result.payments if p.ean != first.ean]
    before = score_uc4(result, truth).by_case
    after = score_uc4(replace(result, payments=tuple(rest)), truth).by_case
    ids = [r["outage_id"] for r in truth.interruptions if r["ean"] == first.ean]
    for case in truth.cases_of(ids):
        assert after[case].get("missed", 0) == before[case].get("missed", 0) + 1, case
        assert after[case].get("paid_exactly", 0) <= before[case].get("paid_exactly", 0)


def test_uc9_scoring_matches_repeated_interruptions_by_their_logged_end(stress: DemoRun) -> None:
    """A meter in several outages is scored per logged end; the same entry registered
    twice is a miss."""
    truth = Truth.read(stress.twin)
    result = stress.require_uc9()
    asked = {c.ean for o in result.outages for c in o.customers}
    score = score_uc9(result, truth, asked)
    twice = score_uc9(replace(result, outages=(*result.outages, result.outages[0])), truth, asked)
    assert twice.correct < score.correct or score.correct == 0
    doubled = result.outages[0].customers[0].ean
    assert any(doubled in m and "in 2 registered outages" in m for m in twice.misses)


def test_a_call_without_a_grid_outage_is_right_only_as_no_outage_found(stress: DemoRun) -> None:
    """A customer whose own breaker tripped calls too: UC1 must find no grid outage."""
    truth = Truth.read(stress.twin)
    first = stress.uc1[0]
    quiet = stress.settings.period.start - timedelta(days=30)  # long before any outage
    assert truth_outage_of(truth, first.ean, quiet) is None
    own = replace(first, at=quiet, verdict=replace(first.verdict, classification=NONE_FOUND))
    assert score_uc1([own], truth).correct == 1
    guessed = replace(own, verdict=replace(own.verdict, classification=SINGLE))
    score = score_uc1([guessed], truth)
    assert score.correct == 0 and "own installation" in score.misses[0]
    assert score.by_case == {
        NO_OUTAGE: {"reports": 1, "classified_right": 0, "on_review": 0, "wrong": 1}
    }
