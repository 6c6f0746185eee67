"""``meetpunt usecase uc05|uc12``: registered, and bad operator files named before any read."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from meetpunt.cli import app


def test_uc05_and_uc12_are_use_case_commands() -> None:
    done = CliRunner().invoke(app, ["usecase", "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0
    assert "uc05" in done.stdout and "uc12" in done.stdout


def test_uc05_names_the_bad_line_of_the_interventions_file(tmp_path: Path) -> None:
    (tmp_path / "interventions.csv").write_text(
        "kind,substation,feeder,day,at\ntap_change,OS001,,2025-06-31,2025-06-31T08:00:00+00:00\n"
    )
    done = CliRunner().invoke(
        app, ["usecase", "uc05", "--operator", str(tmp_path), "--json"], env={"COLUMNS": "200"}
    )
    assert done.exit_code != 0
    error = json.loads(done.stdout)["error"]
    assert error["rule"] == "UC5.intervention_file"
    assert "interventions.csv:2" in error["message"]


def test_uc12_names_the_bad_line_of_the_cabinets_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    empty = pa.table({"feeder": pa.array([], pa.string())})
    pq.write_table(empty, tmp_path / "substation_measurements.parquet")
    pq.write_table(empty, tmp_path / "cabinet_measurements.parquet")
    (tmp_path / "cable_cabinets.csv").write_text("substation,feeder,cabinet,ean\nS,F,one,871\n")
    done = CliRunner().invoke(
        app,
        [
            "usecase",
            "uc12",
            "--operator",
            str(tmp_path),
            "--from",
            "2025-06-01",
            "--to",
            "2025-06-08",
            "--json",
        ],
        env={"COLUMNS": "200"},
    )
    assert done.exit_code != 0
    assert json.loads(done.stdout)["error"]["rule"] == "UC12.cabinet_file"
