"""``meetpunt p1 parse``: JSON lines per telegram, a summary table, exit codes (MTR-2)."""

from __future__ import annotations

import json
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
