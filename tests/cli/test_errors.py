"""The CLI's one error shape, its exit codes, ``--version`` and the one ``--home``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.register import open_register

runner = CliRunner()
VALID = "871694840008583575"
EXAMPLES = resources.files("meetpunt.data").joinpath("example_register")
DEAD_PG = "postgresql://nobody@127.0.0.1:1/none"  # port 1: nothing listens there


def _json(output: str) -> dict[str, object]:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert len(lines) == 1, output
    parsed: dict[str, object] = json.loads(lines[0])
    return parsed


def test_a_refusal_has_the_error_shape_and_exit_1(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    open_register(db).dispose()
    result = runner.invoke(app, ["register", "show", VALID, "--json", "--db", db])
    assert result.exit_code == 1
    error = _json(result.stdout)["error"]
    assert isinstance(error, dict)
    assert error["rule"] == "REG-2.unknown"
    assert VALID in error["message"]
    assert set(error) >= {"rule", "message", "hint"}


def test_a_refusal_without_json_is_one_readable_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    open_register(db).dispose()
    result = runner.invoke(app, ["register", "show", VALID, "--db", db])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "[REG-2.unknown]" in lines[0]


@pytest.mark.parametrize(
    ("url", "rule"),
    [(DEAD_PG, "CLI.database_unreachable"), ("nosuchdb://x/y", "CLI.database_url")],
)
def test_a_database_that_cannot_be_used_exits_2_with_one_line(url: str, rule: str) -> None:
    result = runner.invoke(app, ["register", "show", VALID, "--db", url])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"[{rule}]" in result.output.splitlines()[0]
    as_json = runner.invoke(app, ["register", "show", VALID, "--db", url, "--json"])
    assert as_json.exit_code == 2
    error = _json(as_json.stdout)["error"]
    assert isinstance(error, dict) and error["rule"] == rule and error["hint"]


def test_a_missing_store_exits_2(tmp_path: Path) -> None:
    store = tmp_path / "nothing-here.duckdb"
    open_register(f"sqlite:///{tmp_path / 'r.sqlite'}").dispose()
    result = runner.invoke(
        app,
        ["usecase", "uc09", "--from", "2025-06-02", "--to", "2025-06-03", "--store", str(store)],
        env={"MEETPUNT_DATABASE_URL": f"sqlite:///{tmp_path / 'r.sqlite'}"},
    )
    assert result.exit_code == 2, result.output
    assert "[MTR-1.store_unavailable]" in result.output
    assert not store.exists()


def test_an_unreachable_database_prints_no_traceback_as_a_process(tmp_path: Path) -> None:
    """The whole process, as a user runs it: a few lines on stderr, exit 2."""
    env = {**os.environ, "MEETPUNT_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "meetpunt", "register", "show", VALID, "--db", DEAD_PG],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"meetpunt {version('meetpunt')}"


def _commands() -> list[tuple[str, ...]]:
    root = get_command(app)
    found: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, (*path, name))
        else:
            found.append(path)

    walk(root, ())
    return found


def test_every_command_takes_home() -> None:
    commands = _commands()
    assert len(commands) > 20
    root = get_command(app)
    for path in commands:
        command = root
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        names = {opt for p in command.params for opt in getattr(p, "opts", ())}
        assert "--home" in names, path


def test_home_puts_the_register_there_and_is_forgotten_after(tmp_path: Path) -> None:
    before = os.environ.get("MEETPUNT_HOME")
    home = tmp_path / "elsewhere"
    connections = str(EXAMPLES.joinpath("connections.csv"))
    result = runner.invoke(app, ["register", "import", connections, "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert (home / "register.sqlite").exists()
    assert os.environ.get("MEETPUNT_HOME") == before
    shown = runner.invoke(app, ["register", "show", "871234560000000017", "--home", str(home)])
    assert shown.exit_code == 0, shown.output
    elsewhere = runner.invoke(app, ["register", "show", "871234560000000017"])
    assert elsewhere.exit_code == 2  # the default home has no register: not created
    assert "[REG-db.missing]" in elsewhere.output


# -- nothing lost, nothing false: a mistyped --db or --at --------------------------------

READING_COMMANDS = [
    ["register", "show", VALID],
    ["register", "export", "--out", "OUT"],
    ["register", "quarantine"],
    ["register", "request-sap", VALID, "--capacity", "1x40"],
    ["audit", "verify"],
    ["audit", "list"],
    ["audit", "head"],
    ["consent", "list"],
    ["consent", "revoke", "1"],
    ["usecase", "uc09", "--from", "2025-06-02", "--to", "2025-06-03"],
    ["ingest", "completeness", "--day", "2025-06-01"],
    ["retention", "run", "--at", "2025-06-01"],
]


@pytest.mark.parametrize("args", READING_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_reading_command_refuses_a_missing_register_and_creates_none(
    tmp_path: Path, args: list[str]
) -> None:
    typo = tmp_path / "typo.sqlite"
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    if args[:2] != ["register", "export"]:  # export has no --json
        result = runner.invoke(app, [*args, "--db", f"sqlite:///{typo}", "--json"])
        assert result.exit_code == 2, result.output
        error = _json(result.stdout)["error"]
        assert isinstance(error, dict)
        assert error["rule"] == "REG-db.missing"
        assert "register import" in str(error["hint"])
        assert not typo.exists()
    plain = runner.invoke(app, [*args, "--db", f"sqlite:///{typo}"])
    assert plain.exit_code == 2 and "[REG-db.missing]" in plain.output
    assert "Traceback" not in plain.output and not typo.exists()


def test_audit_verify_on_a_mistyped_db_is_not_intact_with_0_records(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "verify", "--db", "sqlite:///typo.sqlite"])
    assert result.exit_code == 2
    assert "intact" not in result.output and "[REG-db.missing]" in result.output


def test_the_default_register_is_not_created_by_a_reading_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, ["audit", "list", "--home", str(home)])
    assert result.exit_code == 2 and "[REG-db.missing]" in result.output
    assert not (home / "register.sqlite").exists()


@pytest.mark.parametrize(
    "args", [["ingest", "quarantine"], ["ingest", "completeness", "--day", "2025-06-01"]]
)
def test_a_reading_ingest_command_refuses_a_missing_store(tmp_path: Path, args: list[str]) -> None:
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    open_register(db).dispose()
    store = tmp_path / "typo.duckdb"
    result = runner.invoke(app, [*args, "--store", str(store), "--db", db])
    assert result.exit_code == 2, result.output
    assert "[MTR-1.store_unavailable]" in result.output
    assert not store.exists()


def _daily_readings_in_store(tmp_path: Path, days: int) -> str:
    """A register with a contract on E3X25 from 2025-01-01 and ``days`` daily readings of
    E3X25 from 2024-01-01 (all before the contract) ingested into the default store."""
    from datetime import date, timedelta

    from meetpunt.register import default_database_url
    from tests.meterdata.conftest import E3X25, build_register

    build_register(default_database_url()).dispose()
    path = tmp_path / "daily_readings.csv"
    lines = ["ean,at,import_t1_wh,import_t2_wh,export_t1_wh,export_t2_wh"]
    first = date(2024, 1, 1)
    lines += [
        f"{E3X25},{first + timedelta(days=d)}T12:00:00+01:00,{d * 1000},0,0,0" for d in range(days)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingested = runner.invoke(app, ["ingest", str(path)])
    assert ingested.exit_code == 0, ingested.output
    return E3X25


def _stored_daily_readings() -> int:
    from meetpunt.meterdata.store import open_store

    store = open_store(read_only=True)
    try:
        return store.count("daily_readings")
    finally:
        store.close()


@pytest.mark.parametrize("option", ["--at", "--today"])
def test_a_retention_date_in_the_future_is_refused(tmp_path: Path, option: str) -> None:
    _daily_readings_in_store(tmp_path, 5)
    result = runner.invoke(app, ["retention", "run", option, "2099-01-01", "--json", "--yes"])
    assert result.exit_code == 1, result.output
    error = _json(result.stdout)["error"]
    assert isinstance(error, dict)
    assert error["rule"] == "MTR-6.future_date" and error["hint"]
    assert _stored_daily_readings() == 5
    plain = runner.invoke(app, ["retention", "run", option, "2099-01-01"])
    assert plain.exit_code == 1 and "[MTR-6.future_date]" in plain.output
    assert "hint:" in plain.output and _stored_daily_readings() == 5


def test_a_large_retention_deletion_needs_yes_and_dry_run_deletes_nothing(tmp_path: Path) -> None:
    _daily_readings_in_store(tmp_path, 200)
    refused = runner.invoke(app, ["retention", "run", "--at", "2025-06-01", "--json"])
    assert refused.exit_code == 1, refused.output
    error = _json(refused.stdout)["error"]
    assert isinstance(error, dict)
    assert error["rule"] == "MTR-6.large_deletion"
    assert "--dry-run" in str(error["hint"]) and "--yes" in str(error["hint"])
    assert _stored_daily_readings() == 200

    looked = runner.invoke(app, ["retention", "run", "--at", "2025-06-01", "--dry-run", "--json"])
    assert looked.exit_code == 0, looked.output
    plan = _json(looked.stdout)
    assert plan["dry_run"] is True
    assert [r["rows"] for r in plan["daily_readings"]] == [200]  # type: ignore[union-attr,index]
    shown = runner.invoke(app, ["retention", "run", "--at", "2025-06-01", "--dry-run"])
    assert shown.exit_code == 0 and "would delete 200" in shown.output
    assert _stored_daily_readings() == 200

    done = runner.invoke(app, ["retention", "run", "--at", "2025-06-01", "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert [r["rows"] for r in _json(done.stdout)["daily_readings"]] == [200]  # type: ignore[union-attr,index]
    assert _stored_daily_readings() == 0


def test_a_small_retention_deletion_needs_no_yes(tmp_path: Path) -> None:
    _daily_readings_in_store(tmp_path, 50)
    done = runner.invoke(app, ["retention", "run", "--at", "2025-06-01"])
    assert done.exit_code == 0, done.output
    assert "deleted 50 daily reading(s)" in done.output
    assert _stored_daily_readings() == 0


def test_retention_refuses_a_missing_store_and_creates_none(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    open_register(db).dispose()
    store = tmp_path / "typo.duckdb"
    result = runner.invoke(app, ["retention", "run", "--db", db, "--store", str(store)])
    assert result.exit_code == 2 and "[MTR-1.store_unavailable]" in result.output
    assert not store.exists()
