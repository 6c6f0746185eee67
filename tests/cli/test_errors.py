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
    result = runner.invoke(app, ["register", "show", VALID, "--json", "--db", db])
    assert result.exit_code == 1
    error = _json(result.stdout)["error"]
    assert isinstance(error, dict)
    assert error["rule"] == "REG-2.unknown"
    assert VALID in error["message"]
    assert set(error) >= {"rule", "message", "hint"}


def test_a_refusal_without_json_is_one_readable_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
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
    assert elsewhere.exit_code == 1  # the default home has no register rows
