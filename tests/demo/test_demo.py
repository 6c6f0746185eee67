"""``meetpunt demo`` (issue 6) on a small region: the whole chain runs, every use case
is scored against the twin's truth, the report holds the maps, and the audit log holds
exactly the use cases' decisions and reads. The checks themselves are shown to fail on
doctored results."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from rich.console import Console
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.demo.chain import DemoRun, DemoSettings, check_audit, run_demo
from meetpunt.demo.report import write_report
from meetpunt.demo.score import Truth, score_uc1, score_uc4, score_uc9
from meetpunt.privacy import audit
from meetpunt.register import open_register
from meetpunt.usecases.uc01_outage_localisation import SINGLE, SUBSTATION
from meetpunt.usecases.uc04_outage_compensation import Review

SMALL: dict[str, Any] = {"connections": 200, "days": 10, "start": date(2025, 6, 2), "seed": 1}
SVG = "{http://www.w3.org/2000/svg}"
SCORED = {"UC1", "UC4", "UC9", "UC7", "UC8", "UC10", "UC15", "UC5", "UC12", "UC2"}
"""The use cases the demo runs and scores (UC1, UC4, UC9 first); UC3 too when UC2 named a
feeder (issue 18)."""
STEPS = [
    "twin", "register", "ingest", "UC1", "UC9", "UC4", "UC7", "UC8", "UC10/UC15", "UC5/UC12",
    "UC2", "UC3",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    folder = tmp_path_factory.mktemp("demo")
    console = Console(record=True, width=160)
    return run_demo(console, DemoSettings(folder, **SMALL))


@pytest.fixture(scope="module")
def truth(demo: DemoRun) -> Truth:
    return Truth.read(demo.twin)


def test_every_use_case_is_scored_and_right_on_the_twin(demo: DemoRun) -> None:
    names = [s.use_case for s in demo.scores]
    assert names[:3] == ["UC1", "UC4", "UC9"] and set(names) - {"UC3"} == SCORED
    for score in demo.scores[:3]:  # the outage use cases are exact on the showcase twin
        assert score.total > 0 and score.perfect, (score.use_case, score.accuracy, score.misses)
    assert [s.name for s in demo.steps] == STEPS
    for score in demo.scores:  # UC5 and UC12 are right on the showcase twin too (issue 18)
        if score.use_case in ("UC5", "UC12"):
            assert score.total > 0 and score.perfect, (score.use_case, score.accuracy)
    assert all(s.seconds > 0 and s.summary for s in demo.steps)
    assert demo.uc1 and len(demo.uc1) == len(demo.reports)


def test_uc07_finds_the_twins_gis_errors_and_deletes_what_it_read(demo: DemoRun) -> None:
    """Issue 19's goals on the demo's twin: every GIS error found, < 1 % false flags."""
    uc7 = next(s for s in demo.scores if s.use_case == "UC7")
    m = uc7.metrics
    assert m["gis_phase_errors_found"] == m["gis_phase_errors"], uc7.misses
    assert m["gis_feeder_errors_found"] == m["gis_feeder_errors"], uc7.misses
    assert m["false_flags"] < 0.01 * m["connections"], uc7.misses
    assert m["phase_right"] >= 0.95
    assert demo.uc7 and all(r.deleted for r in demo.uc7)
    assert not any(Path(p).exists() for r in demo.uc7 for p in r.deleted)


def test_uc10_and_uc15_meet_their_goals_on_the_twin(demo: DemoRun) -> None:
    """Issue 20: misreads caught, far fewer false alarms than the naive check, the
    consuming contractless and out-of-service connections found, no read after a stop."""
    by = {s.use_case: s for s in demo.scores}
    uc10, uc15 = by["UC10"].metrics, by["UC15"].metrics
    assert uc10["misreads_truth"] > 0 and uc10["right_readings"] > 0
    assert uc10["misreads_caught"] >= 0.9 * uc10["misreads_truth"], by["UC10"].misses
    assert uc10["false_alarms"] <= 0.1 * uc10["naive_false_alarms"], by["UC10"].misses
    assert uc15["consuming_found"] == uc15["consuming_truth"], by["UC15"].misses
    assert uc15["reads_after_stop"] == 0 and uc15["consuming_false"] == 0


def test_the_audit_log_holds_each_use_case_and_nothing_else(demo: DemoRun) -> None:
    summary = demo.require_audit()
    assert summary.as_expected and not summary.findings
    # UC8 asks only when the register has contractless smart meters
    counts = {p for p, _, _ in summary.counts}
    assert {"UC1", "UC4", "UC9", "UC7", "UC5", "UC12"} <= counts <= SCORED | {"UC3"}
    assert summary.counts[("UC1", "read", "read")] == sum(r.reads for r in demo.uc1)
    assert demo.refusal is not None
    assert [f.rule for f in demo.refusal.findings] == ["UC1.kinds"]


def test_the_audit_check_catches_a_read_the_demo_did_not_make(
    demo: DemoRun, tmp_path: Path
) -> None:
    shutil.copy(demo.settings.folder / "register.sqlite", tmp_path / "register.sqlite")
    copy = replace(demo, settings=replace(demo.settings, folder=tmp_path))
    before = check_audit(copy)
    assert before.as_expected
    register = open_register(copy.db_url)
    try:
        with register.session() as session:
            reporter = demo.uc1[0].ean
            entry = audit.AuditEntry("read", "8716874000009", "UC3", "read", (reporter,))
            audit.append(session.db, entry, datetime.now(UTC))
    finally:
        register.dispose()
    caught = check_audit(copy)
    assert not caught.as_expected
    key = ("UC3", "read", "read")
    assert caught.counts[key] == before.counts.get(key, 0) + 1


def test_the_report_holds_the_summary_the_maps_and_the_audit(demo: DemoRun) -> None:
    assert demo.report_path is not None
    html = demo.report_path.read_text(encoding="utf-8")
    summary = html[
        html.index('data-testid="summary"') : html.index(
            "</table>", html.index('data-testid="summary"')
        )
    ]
    for use_case in ("UC1", "UC4", "UC9", "UC8"):
        assert f"<td>{use_case}</td>" in summary
    result = demo.require_uc4()
    uc7_picture = html.count('data-testid="uc7-picture"')  # issue 19: one cable's picture
    assert uc7_picture == 1 and 'data-testid="uc7"' in html
    assert 'id="uc5"' in html and 'id="uc12"' in html
    outage_part = re.split(r'<h2 id="uc(?:2|5)">', html)[0]  # UC2/3's and UC5/12's charts follow
    assert outage_part.count("<svg") - uc7_picture == len(result.maps) == len(result.outages) >= 1
    assert "holds exactly the use cases" in html
    shapes: set[str] = set()
    labels: set[str] = set()
    for path in sorted((demo.settings.folder / "maps").glob("*.svg")):
        root = ElementTree.fromstring(path.read_text(encoding="utf-8"))
        for group in root.iter(f"{SVG}g"):
            if group.get("data-shape"):
                shapes.add(str(group.get("data-shape")))
                labels.add(str(group.get("data-state")))
    assert shapes == {"circle", "diamond"}
    assert {"1", "N"} <= labels
    letters = sorted((demo.settings.folder / "letters").glob("*.txt"))
    assert len(letters) == len(result.payments) >= 1
    assert letters[0].read_text(encoding="utf-8").startswith("Geachte ")


def test_the_report_escapes_what_comes_from_the_register(
    demo: DemoRun, truth: Truth, tmp_path: Path
) -> None:
    result = demo.require_uc4()
    evil = replace(result.payments[0], customer="<script>alert(1)</script>")
    doctored = replace(
        demo,
        settings=replace(demo.settings, folder=tmp_path),
        uc4=replace(result, payments=(evil, *result.payments[1:])),
    )
    html = write_report(doctored, truth, datetime.now(UTC)).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html


def test_the_scores_name_a_missed_and_an_overpaid_payment(demo: DemoRun, truth: Truth) -> None:
    result = demo.require_uc4()
    first, *rest = result.payments
    missed = score_uc4(replace(result, payments=tuple(rest)), truth)
    assert not missed.perfect and any(f"{first.ean} missed" in m for m in missed.misses)
    more = replace(first, compensation=replace(first.compensation, amount=first.amount + 1))
    overpaid = score_uc4(replace(result, payments=(more, *rest)), truth)
    assert any(f"{first.ean} overpaid" in m for m in overpaid.misses)
    unflagged = score_uc4(replace(result, reviews=()), truth)
    assert any("GIS feeder error not flagged" in m for m in unflagged.misses)
    parked = Review(first.ean, first.outage_id, "a person should look at it")
    needless = score_uc4(replace(result, payments=tuple(rest), reviews=(parked,)), truth)
    assert any(f"{first.ean} owed" in m and "no reason in the truth" in m for m in needless.misses)


def test_the_scores_name_a_wrong_classification_and_a_wrong_duration(
    demo: DemoRun, truth: Truth
) -> None:
    first = demo.uc1[0]
    wrong = SUBSTATION if first.classification == SINGLE else SINGLE
    swapped = replace(first, verdict=replace(first.verdict, classification=wrong))
    score = score_uc1([swapped, *demo.uc1[1:]], truth)
    assert score.correct == len(demo.uc1) - 1 and first.ean in score.misses[0]
    result = demo.require_uc9()
    outage = result.outages[0]
    customer = outage.customers[0]
    late = replace(customer, duration_s=customer.duration_s + 1)
    shifted = replace(outage, customers=(late, *outage.customers[1:]))
    asked = {c.ean for o in result.outages for c in o.customers}
    score9 = score_uc9(replace(result, outages=(shifted, *result.outages[1:])), truth, asked)
    assert not score9.perfect and any(customer.ean in m for m in score9.misses)


def test_meetpunt_demo_on_the_command_line(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        app,
        ["demo", "--home", str(tmp_path), "--connections", "200", "--days", "7", "--seed", "2"],
        env={"COLUMNS": "200"},
    )
    assert done.exit_code == 0, done.output
    out = done.output
    assert re.search(r"UC1 .*classified as the truth", out)
    assert re.search(r"UC4 .*paid exactly", out)
    assert re.search(r"UC9 .*to the second", out)
    assert "holds exactly the use cases' decisions and reads" in out
    assert (tmp_path / "demo" / "report.html").is_file()
    # the follow-up commands it prints work as printed after `export MEETPUNT_HOME=...`
    home = re.search(r"export MEETPUNT_HOME=(\S+)", out)
    follow = re.search(r"meetpunt (usecase uc09 --from \S+ --to \S+)", out)
    assert home and follow, out
    again = CliRunner().invoke(
        app, [*follow.group(1).split(), "--json"], env={"MEETPUNT_HOME": home.group(1)}
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["outages"]


def test_meetpunt_demo_json_is_one_object_with_the_scores(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        app,
        ["demo", "--json", "--home", str(tmp_path), "--connections", "150", "--days", "5"],
        env={"COLUMNS": "200"},
    )
    assert done.exit_code == 0, done.output
    run = json.loads(done.stdout)
    assert (run["seed"], run["connections"], run["days"]) == (1, 150, 5)
    assert run["start"] == "2025-06-02"
    assert [s["name"] for s in run["steps"]] == STEPS
    assert all(isinstance(s["seconds"], float) for s in run["steps"])
    uc = run["use_cases"]
    assert set(uc) - {"UC3"} == SCORED
    assert set(uc["UC2"]["metrics"]) >= {  # issue 18's scored keys
        "connections",
        "event_counts_exact",
        "notable_right",
        "notable_missed",
    }
    assert set(uc["UC8"]["found"]) >= {"invoices"} and "energy_exact" in uc["UC8"]["metrics"]
    assert set(uc["UC7"]["metrics"]) >= {  # issue 19's scored keys
        "single_phase_connections",
        "phase_right",
        "gis_phase_errors",
        "gis_phase_errors_found",
        "gis_feeder_errors",
        "gis_feeder_errors_found",
        "false_flags",
    }
    assert set(uc["UC4"]["metrics"]) >= {
        "owed",
        "paid_exactly",
        "missed",
        "overpaid",
        "gis_flagged",
        "gis_errors",
    }
    assert set(uc["UC9"]["metrics"]) >= {"interruptions_truth", "interruptions_exact"}
    assert set(uc["UC1"]["metrics"]) >= {"reports", "classified_right"}
    m4 = uc["UC4"]["metrics"]
    assert m4["paid_exactly"] + m4["owed_on_review"] + m4["missed"] <= m4["owed"]
    for entry in uc.values():
        assert all(isinstance(v, int | float) for v in entry["metrics"].values())
        assert entry["correct"] <= entry["total"]
    assert uc["UC9"]["metrics"]["interruptions_exact"] == uc["UC9"]["correct"] - (
        1 if not any("outages registered" in m for m in uc["UC9"]["misses"]) else 0
    )
    assert run["audit"]["as_expected"] is True


def test_meetpunt_demo_refuses_a_region_too_small_to_mean_anything(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["demo", "--home", str(tmp_path), "--connections", "10"])
    assert done.exit_code == 2
    assert not (tmp_path / "demo").exists()


def test_the_period_covers_the_days_in_local_time() -> None:
    settings = DemoSettings(Path(), days=30, start=date(2025, 10, 1))
    span = settings.period.end - settings.period.start
    assert span == timedelta(days=30, hours=1)  # the October DST change adds an hour


def test_the_customer_reads_each_use_case_once_in_plain_words(demo: DemoRun) -> None:
    """PRV-7 for a reporter of an outage: the gate's permission and the read are two
    different sentences, with the purpose's title from the catalogue, in either language."""
    reporter = demo.uc1[0].ean
    runner = CliRunner()
    done = runner.invoke(
        app, ["audit", "list", "--ean", reporter, "--lang", "en", "--db", demo.db_url]
    )
    assert done.exit_code == 0, done.output
    lines = done.output.strip().splitlines()
    assert any(
        "the privacy gate gave your grid operator access to 1 day of" in line
        and line.endswith("for: Outage localisation.")
        for line in lines
    )
    assert any(
        "your grid operator read 1 day of" in line and "Outage localisation" in line
        for line in lines
    )
    granted = [line for line in lines if "the privacy gate gave" in line]
    read = [line for line in lines if "your grid operator read" in line]
    # each UC1 asking this meter, UC9 and UC4; UC1 may read more than once per grant
    # (presence at the report and around the reporter's onset, last gasps: issue 16)
    assert len(read) >= len(granted) >= 3
    dutch = runner.invoke(app, ["audit", "list", "--ean", reporter, "--db", demo.db_url]).output
    assert "voor: het opsporen van storingen (storingslokalisatie)." in dutch
