"""``meetpunt ingest`` and ``meetpunt retention`` from the command line."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.register import Register, default_database_url
from tests.meterdata.conftest import E3X25, UNKNOWN, build_register

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
    row = json.loads(listed.output.splitlines()[0])
    assert (row["record"], row["rule"], row["ean"]) == (4, "MTR-5.unknown_connection", UNKNOWN)


def test_retention_run_reports_what_it_deleted(tmp_path: Path) -> None:
    _register().dispose()
    path = tmp_path / "daily_readings.csv"
    lines = ["ean,at,import_t1_wh,import_t2_wh,export_t1_wh,export_t2_wh"]
    lines += [f"{E3X25},2024-0{m}-01T00:00:00+02:00,{m * 1000},0,0,0" for m in range(4, 10)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert runner.invoke(app, ["ingest", str(path)]).exit_code == 0
    result = runner.invoke(app, ["retention", "run", "--today", str(date(2025, 6, 1)), "--json"])
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
