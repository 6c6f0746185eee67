"""``meetpunt p1 parse``: JSON lines per telegram, a summary table, exit codes (MTR-2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetpunt.cli import app
from tests.io.p1data import real

runner = CliRunner()
GOOD = real("dsmr50_iskra_am550_two_mbus.p1")
BROKEN = real("dsmr42_kaifa.p1").replace(b"001581.123", b"001581.124")  # CRC no longer fits


@pytest.fixture
def capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A short relative path, so the table does not wrap it."""
    monkeypatch.chdir(tmp_path)
    Path("capture.p1").write_bytes(b"noise" + GOOD + BROKEN)
    return "capture.p1"


def test_parse_json_one_good_one_crc_broken(capture: str) -> None:
    result = runner.invoke(app, ["p1", "parse", capture, "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(lines) == 2
    good, broken = lines
    assert good["valid"] is True and good["crc_ok"] is True and good["error"] is None
    assert good["version"] == "5.0" and good["timestamp"] == "2020-04-26T20:33:25Z"
    assert good["fields"]["1-0:1.8.1"] == {"value": 2130.115, "unit": "kWh"}
    assert good["mbus"][1]["id"] == "G0039001936990619"
    assert broken["valid"] is False and broken["crc_ok"] is False
    assert broken["error"]["rule"] == "MTR-2.crc"
    assert broken["error"]["offset"] == BROKEN.index(b"!") + 1
    assert set(broken) == set(good)


def test_parse_summary_table(capture: str) -> None:
    result = runner.invoke(app, ["p1", "parse", capture])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "capture.p1" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[1:] == ["2", "1", "1", "0", "5.0 (1), unknown (1)"]


def test_unreadable_file_exits_1(capture: str) -> None:
    result = runner.invoke(app, ["p1", "parse", capture, "nope.p1"])
    assert result.exit_code == 1
    assert "error: nope.p1" in result.output
    assert "capture.p1" in result.output  # the readable file is still reported


def test_help() -> None:
    result = runner.invoke(app, ["p1", "parse", "--help"])
    assert result.exit_code == 0 and "--json" in result.output


def test_the_fast_path_writes_what_the_typer_command_writes(
    capture: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``meetpunt p1 parse --json FILE`` skips Typer (start-up time, MTR-2 speed target)
    and must print the same lines and exit code as the command."""
    from meetpunt.cli.p1 import parse_json_fast

    assert parse_json_fast(["--json", capture]) == 0
    fast = capsys.readouterr().out
    typer_run = runner.invoke(app, ["p1", "parse", capture, "--json"])
    assert fast == typer_run.output and fast.count("\n") == 2
    assert parse_json_fast([capture, "--json", "nope.p1"]) == 1
    out, err = capsys.readouterr()
    assert out == fast and "error: nope.p1" in err


@pytest.mark.parametrize(
    "args", [["--help"], [], ["--json"], ["x.p1"], ["--json", "-x"], ["--jsonx", "x.p1"]]
)
def test_the_fast_path_leaves_everything_else_to_typer(args: list[str]) -> None:
    from meetpunt.cli.p1 import parse_json_fast

    assert parse_json_fast(args) is None


def test_the_installed_command_starts_without_the_rest_of_the_cli(capture: str) -> None:
    """The console script for ``p1 parse --json`` loads neither Typer nor the register."""
    code = (
        "import sys; sys.argv = ['meetpunt', 'p1', 'parse', '--json', sys.argv[1]]\n"
        "from meetpunt.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "heavy = {'typer', 'rich', 'sqlalchemy', 'duckdb', 'numpy', 'meetpunt.cli.main'}\n"
        "print(sorted(heavy & set(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, capture], capture_output=True, text=True, check=True
    )
    assert done.stderr.strip() == "[]"
    assert [json.loads(line)["valid"] for line in done.stdout.splitlines()] == [True, False]
