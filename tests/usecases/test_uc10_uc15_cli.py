"""The faces of issue 20's UC10 and UC15: ``meetpunt usecase uc10|uc15`` and
``meetpunt schedule run|list`` over a constructed register and store."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.domain.calendar import local_midnight_utc, to_local
from tests.usecases import uc10_uc15_world as w

runner = CliRunner()


def _world(tmp_path: Path) -> list[str]:
    db = f"sqlite:///{tmp_path / 'register.sqlite'}"
    register = w.build_register(db)
    w.build_store(tmp_path / "meterdata.duckdb", register).close()
    register.dispose()
    return ["--db", db, "--store", str(tmp_path / "meterdata.duckdb")]


def test_uc10_approves_and_flags_readings_from_the_operator_file(tmp_path: Path) -> None:
    where = _world(tmp_path)
    visit = local_midnight_utc(w.FIRST + timedelta(days=4)) + timedelta(hours=15)
    t1, t2, _, _ = (math.floor(v) for v in w.registers_at(w.SUPPLIED, visit))
    csv_file = tmp_path / "manual_readings.csv"
    csv_file.write_text(
        "reading_id,ean,taken_at,import_t1_kwh,import_t2_kwh,export_t1_kwh,export_t2_kwh\n"
        f"A,{w.SUPPLIED},{to_local(visit).isoformat()},{t1},{t2},0,0\n"
        f"B,{w.SUPPLIED},{to_local(visit).isoformat()},{t2},{t1},0,0\n"
    )
    at = ["--at", "2026-04-20T10:00+02:00"]
    out = runner.invoke(
        app, ["usecase", "uc10", "--readings", str(csv_file), *at, *where, "--json"]
    )
    assert out.exit_code == 0, out.output
    verdicts = {v["reading_id"]: v for v in json.loads(out.stdout)["verdicts"]}
    assert verdicts["A"]["approved"] is True
    assert verdicts["B"]["suspected"] == "tariff_swap"
    assert verdicts["B"]["proposal"] == [t1, t2, 0, 0]
    bad = tmp_path / "bad.csv"
    bad.write_text("reading_id,ean,taken_at,import_t1_kwh,import_t2_kwh\nX,1,yesterday,1,2\n")
    refused = runner.invoke(app, ["usecase", "uc10", "--readings", str(bad), *where, "--json"])
    assert refused.exit_code == 1
    assert "row 2" in json.loads(refused.stdout)["error"]["message"]


def test_schedule_run_is_idempotent_and_list_shows_the_watches(tmp_path: Path) -> None:
    where = _world(tmp_path)
    until = ["--until", "2026-04-05T08:00+02:00", "--since", w.FIRST.isoformat()]
    first = runner.invoke(app, ["schedule", "run", *until, *where, "--json"])
    assert first.exit_code == 0, first.output
    done = json.loads(first.stdout)
    assert done["checks"] > 0 and done["watches_stopped"] == [
        {"ean": w.NEW_CONTRACT, "reason": "contract_started"}
    ]
    again = runner.invoke(app, ["schedule", "run", *until, *where, "--json"])
    assert json.loads(again.stdout)["checks"] == 0
    listed = runner.invoke(app, ["schedule", "list", *where, "--json"])
    watches = {r["ean"]: r for r in json.loads(listed.stdout)["watches"]}
    assert watches[w.OOS_OFF]["group"] == "out_of_service_off"
    one = runner.invoke(
        app, ["usecase", "uc15", "--ean", w.SUPPLIED, "--day", "2026-03-25", *where, "--json"]
    )
    assert json.loads(one.stdout)["outcome"] == "not_watched"
