"""``meetpunt ingest`` and ``meetpunt retention`` from the command line."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.domain.calendar import Tariff
from meetpunt.register import Register, default_database_url, open_register
from meetpunt.twin.p1 import P1Snapshot, render_telegram
from tests.meterdata.conftest import E1X25, E3X25, UNKNOWN, build_register

runner = CliRunner()


def _register() -> Register:
    return build_register(default_database_url())


def test_ingest_prints_what_was_accepted_duplicated_and_quarantined(tmp_path: Path) -> None:
    _register().dispose()
    path = tmp_path / "quarter_hours.csv"
    path.write_text(
        "ean,start,import_wh,export_wh\n"
        f"{E3X25},2025-06-01T00:00:00Z,100,0\n"
        f"{E3X25},2025-06-01T00:15:00Z,120,0\n"
        f"{UNKNOWN},2025-06-01T00:15:00Z,120,0\n",
        encoding="utf-8",
    )
    first = runner.invoke(app, ["ingest", str(path), "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert (report["accepted"], report["duplicates"]) == (2, 0)
    assert report["quarantined"] == {"MTR-5.unknown_connection": 1}
    again = json.loads(runner.invoke(app, ["ingest", "files", str(path), "--json"]).output)
    assert again["already_ingested"] and again["duplicates"] == 3
    table = runner.invoke(app, ["ingest", str(path)])
    assert "already ingested" in table.output
    listed = runner.invoke(app, ["ingest", "quarantine", "--json"])
    row = json.loads(listed.stdout.splitlines()[0])
    assert (row["record"], row["rule"], row["ean"]) == (4, "MTR-5.unknown_connection", UNKNOWN)


def test_retention_run_reports_what_it_deleted(tmp_path: Path) -> None:
    _register().dispose()
    path = tmp_path / "daily_readings.csv"
    lines = ["ean,at,import_t1_wh,import_t2_wh,export_t1_wh,export_t2_wh"]
    lines += [f"{E3X25},2024-0{m}-01T00:00:00+02:00,{m * 1000},0,0,0" for m in range(4, 10)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert runner.invoke(app, ["ingest", str(path)]).exit_code == 0
    result = runner.invoke(app, ["retention", "run", "--at", str(date(2025, 6, 1)), "--json"])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.output)["daily_readings"]
    assert (record["rows"], record["cutoff"]) == (6, "2025-01-01")  # the contract's start


def test_completeness_reports_per_area(tmp_path: Path) -> None:
    _register().dispose()
    path = tmp_path / "quarter_hours.csv"
    lines = ["ean,start,import_wh,export_wh"]
    lines += [
        f"{E3X25},2025-06-01T{h:02d}:{m:02d}:00+02:00,10,0"
        for h in range(24)
        for m in (0, 15, 30, 45)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert runner.invoke(app, ["ingest", str(path)]).exit_code == 0
    result = runner.invoke(app, ["ingest", "completeness", "--day", "2025-06-01", "--json"])
    assert result.exit_code == 0, result.output
    (area,) = [json.loads(line) for line in result.output.splitlines()]
    # three in-service smart electricity connections in 5617; one delivered all 96
    assert (area["area"], area["connections"], area["expected"]) == ("5617", 3, 288)
    assert area["measured"] == round(96 / 288, 4)


def _quarter_hours(path: Path, *eans: str) -> Path:
    """A quarter-hour CSV with one row per EAN on 2025-06-01 00:00 UTC."""
    rows = "".join(f"{ean},2025-06-01T00:00:00Z,100,0\n" for ean in eans)
    path.write_text("ean,start,import_wh,export_wh\n" + rows, encoding="utf-8")
    return path


def _quarantine() -> list[dict[str, object]]:
    listed = runner.invoke(app, ["ingest", "quarantine", "--json"])
    assert listed.exit_code == 0, listed.output
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_an_ingest_no_row_of_which_is_in_the_register_exits_1_and_says_what_to_do(
    tmp_path: Path,
) -> None:
    _register().dispose()
    path = _quarter_hours(tmp_path / "quarter_hours.csv", UNKNOWN, UNKNOWN, UNKNOWN)
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 1, result.output
    line, hint = result.stderr.splitlines()  # the one line says it all; then the hint
    assert line.startswith("error: no row matched a connection in the register")
    assert "3 row(s) refused" in line and "meetpunt register import" in line
    assert "MTR-5.unknown_connection" in line
    assert hint.startswith("hint: ") and "--db" in hint
    as_json = runner.invoke(app, ["ingest", str(path), "--json"])
    assert as_json.exit_code == 1
    report, refusal = (json.loads(line) for line in as_json.stdout.splitlines())
    assert (report["batch"], report["rows"], report["accepted"]) == (None, 3, 0)
    assert report["quarantined"] == {"MTR-5.unknown_connection": 3}
    assert refusal["error"]["rule"] == "MTR-5.unknown_connection"
    assert "no row matched" in refusal["error"]["message"]
    assert "meetpunt register import" in refusal["error"]["hint"]
    assert _quarantine() == []  # nothing stored, so the same file can come again


def test_an_empty_register_refuses_the_same_way_and_the_file_ingests_after_the_import(
    tmp_path: Path,
) -> None:
    open_register(default_database_url()).dispose()  # the register exists, empty
    path = _quarter_hours(tmp_path / "quarter_hours.csv", E3X25, E1X25)
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 1
    assert "no row matched a connection in the register" in result.stderr
    assert "2 row(s) refused" in result.stderr
    _register().dispose()  # the register import the message asks for
    again = runner.invoke(app, ["ingest", str(path), "--json"])
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert (report["already_ingested"], report["accepted"]) == (False, 2)


def test_a_file_that_matches_nothing_beside_one_that_matches_is_quarantined_as_today(
    tmp_path: Path,
) -> None:
    _register().dispose()
    (tmp_path / "a").mkdir()
    first = _quarter_hours(tmp_path / "a" / "quarter_hours.csv", UNKNOWN)  # read first
    second = _quarter_hours(tmp_path / "quarter_hours.2025-06.csv", E3X25)
    result = runner.invoke(app, ["ingest", str(first), str(second), "--json"])
    assert result.exit_code == 0, result.output
    reports = {r["source"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert reports[str(first)]["quarantined"] == {"MTR-5.unknown_connection": 1}
    assert reports[str(first)]["batch"] is not None
    assert reports[str(second)]["accepted"] == 1
    assert [row["ean"] for row in _quarantine()] == [UNKNOWN]


READINGS = "ean,at,import_t1_wh,import_t2_wh,export_t1_wh,export_t2_wh\n"


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_kind_goes_before_or_after_the_paths(tmp_path: Path, before: bool) -> None:
    _register().dispose()
    path = tmp_path / "readings.csv"  # daily, monthly or manual: the name does not say
    path.write_text(READINGS + f"{E3X25},2025-06-01T00:00:00+02:00,1000,0,0,0\n")
    option = ["--kind", "daily_readings"]
    args = ["ingest", *option, str(path)] if before else ["ingest", str(path), *option]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kinds"] == {
        "daily_readings": {
            "rows": 1,
            "accepted": 1,
            "duplicates": 0,
            "corrected": 0,
            "estimated": 0,
            "gaps_missing": 0,
            "quarantined": {},
        }
    }


def _capture(path: Path) -> Path:
    """A P1 capture of one DSMR 5 telegram; its name does not say the EAN."""
    snapshot = P1Snapshot(
        identification="XMX5LGF0000000000042",
        timestamp=datetime(2025, 6, 1, 10, tzinfo=UTC),
        equipment_id="E0045000012345678",
        import_wh=(1_234_567, 2_345_678),
        export_wh=(345_678, 456_789),
        tariff=Tariff.T2,
        power_import_w=500,
        power_export_w=0,
        failures=4,
        long_failures=2,
        failure_log=(),
        sags=(0, 0, 0),
        swells=(0, 0, 0),
        voltages_v=(230.1, 229.2, 231.3),
        currents_a=(1, 2, 3),
        phase_import_w=(500, 0, 0),
        phase_export_w=(0, 0, 0),
    )
    path.write_bytes(render_telegram(snapshot, "5.0"))
    return path


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_ean_goes_before_or_after_the_paths(tmp_path: Path, before: bool) -> None:
    _register().dispose()
    path = _capture(tmp_path / "capture.p1")
    option = ["--ean", E3X25]
    args = ["ingest", *option, str(path)] if before else ["ingest", str(path), *option]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kinds"]["p1_readings"]["accepted"] == 1


def test_the_commands_of_ingest_keep_their_names_beside_the_default(tmp_path: Path) -> None:
    _register().dispose()
    listed = runner.invoke(app, ["ingest", "quarantine", "--json"])
    assert listed.exit_code == 2 and "MTR-1.store_unavailable" in listed.output  # no store yet
    missing = runner.invoke(app, ["ingest", "--kind", "quarter_hours"])
    assert missing.exit_code == 2 and "paths" in missing.output.lower()
