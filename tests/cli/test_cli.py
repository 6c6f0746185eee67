"""The meetpunt command: exit codes, JSON shapes, --help everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.register.csvio import RecordKind

runner = CliRunner()
VALID = "871694840008583575"
EXAMPLES = resources.files("meetpunt.data").joinpath("example_register")


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_ean_check_all_valid_exits_0() -> None:
    code, out = run("ean", "check", VALID, "871694840015271748", "--json")
    assert code == 0
    assert json_lines(out) == [
        {"ean": VALID, "valid": True, "rule": None, "message": None},
        {"ean": "871694840015271748", "valid": True, "rule": None, "message": None},
    ]


def test_ean_check_any_invalid_exits_1_with_rules() -> None:
    code, out = run(
        "ean", "check", VALID, "87169484000858357X", "1234", "871694840008583576", "--json"
    )
    assert code == 1
    rules = [o["rule"] for o in json_lines(out)]
    assert rules == [None, "REG-1.non_digit", "REG-1.length", "REG-1.check_digit"]
    assert all(o["message"] for o in json_lines(out)[1:])


def test_ean_generate_prints_valid_codes() -> None:
    code, out = run("ean", "generate", "--prefix", "8712", "--count", "3")
    assert code == 0
    generated = out.split()
    assert len(generated) == 3
    assert run("ean", "check", *generated)[0] == 0


def import_examples(db: str) -> None:
    files = [str(EXAMPLES.joinpath(f"{k.value}.csv")) for k in reversed(RecordKind)]
    code, out = run("register", "import", *files, "--db", db)
    assert code == 0, out


@pytest.fixture
def loaded_db(db_url: str) -> str:
    import_examples(db_url)
    return db_url


def test_request_sap_granted_and_refused(loaded_db: str) -> None:
    shop = "871234560000000055"  # Glaslaan 2, 3x35 A
    code, out = run(
        "register",
        "request-sap",
        shop,
        "--capacity",
        "1x40",
        "--json",
        "--at",
        "2026-11-23",
        "--db",
        loaded_db,
    )
    granted = json_lines(out)[0]
    assert code == 0 and granted["granted"] is True and granted["reasons"] == []
    code, out = run("ean", "check", str(granted["ean"]))
    assert code == 0

    code, out = run(
        "register",
        "request-sap",
        shop,
        "--capacity",
        "3x35",
        "--other-cabinet",
        "--residential",
        "--interconnected",
        "--woz",
        "other",
        "--json",
        "--at",
        "2026-11-23",
        "--db",
        loaded_db,
    )
    refused = json_lines(out)[0]
    assert code == 1 and refused["granted"] is False and refused["ean"] is None
    assert [r["rule"] for r in refused["reasons"]] == [  # type: ignore[union-attr]
        "REG-5.same_cabinet",
        "REG-5.woz",
        "REG-5.interconnected",
        "REG-5.residential",
        "REG-5.capacity",
    ]


def test_request_sap_bad_capacity_refused() -> None:
    code, out = run("register", "request-sap", VALID, "--capacity", "lots", "--json")
    assert code == 1 and json_lines(out)[0]["reasons"][0]["rule"] == "REG-3.capacity_format"  # type: ignore[index]


def test_show_at_a_date(loaded_db: str) -> None:
    household = "871234560000000017"  # Torenallee 10: solar registered 2024-05-01
    code, out = run(
        "register", "show", household, "--at", "2024-04-30", "--json", "--db", loaded_db
    )
    before = json_lines(out)[0]
    code2, out2 = run(
        "register", "show", household, "--at", "2024-05-01", "--json", "--db", loaded_db
    )
    after = json_lines(out2)[0]
    assert code == code2 == 0
    assert before["solar_kwp"] is None and after["solar_kwp"] == "4.2"
    assert after["size_class"] == "small" and after["contractless"] is False
    assert len(after["history"]) == 2  # type: ignore[arg-type]
    code, out = run(
        "register", "show", household, "--at", "2010-01-01", "--json", "--db", loaded_db
    )
    assert json_lines(out)[0]["exists"] is False


def test_show_secondary_point(loaded_db: str) -> None:
    code, out = run(
        "register", "show", "871234570000000016", "--at", "2026-11-23", "--json", "--db", loaded_db
    )
    shown = json_lines(out)[0]
    assert code == 0 and shown["kind"] == "secondary_allocation_point"
    assert shown["primary_ean"] == "871234560000000062"
    assert shown["contact"] == "Kantoorpand Glaslaan BV"
    assert {c["kind"] for c in shown["cost_lines"]} == {"one_off", "periodic"}  # type: ignore[union-attr]


def test_show_unknown_ean_exits_1(db_url: str) -> None:
    from meetpunt.register import open_register

    open_register(db_url).dispose()  # reading commands do not create a register
    code, out = run("register", "show", VALID, "--json", "--db", db_url)
    assert code == 1 and json_lines(out)[0]["error"]["rule"] == "REG-2.unknown"  # type: ignore[index]


def test_import_with_a_bad_row_exits_1_and_reports_the_line(db_url: str, tmp_path: Path) -> None:
    text = EXAMPLES.joinpath("connections.csv").read_text(encoding="utf-8").splitlines()
    text[3] = text[3].replace("3x25", "3x2x5")
    bad = tmp_path / "connections.csv"
    bad.write_text("\n".join(text) + "\n")
    code, out = run("register", "import", str(bad), "--json", "--db", db_url)
    report = json_lines(out)[0]
    assert code == 1
    assert report["refused"] == [
        {"line": 4, "rule": "REG-3.capacity_format", "message": report["refused"][0]["message"]}
    ]  # type: ignore[index]
    # every row but the header and the bad one went in (a second version counts as changed)
    assert report["inserted"] + report["changed"] == len(text) - 2  # type: ignore[operator]
    code, out = run("register", "quarantine", "--json", "--db", db_url)
    assert json_lines(out) == [] and json.loads(out)[0]["line"] == 4


def test_export_writes_the_three_files(loaded_db: str, tmp_path: Path) -> None:
    code, _ = run("register", "export", "--out", str(tmp_path / "x"), "--db", loaded_db)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == sorted(
        f"{k.value}.csv" for k in RecordKind
    )


def test_database_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'env.sqlite'}"
    monkeypatch.setenv("MEETPUNT_DATABASE_URL", db)
    import_examples(db)
    code, out = run("register", "show", "871234560000000017", "--json")
    assert code == 0 and json_lines(out)[0]["exists"] is True


def test_every_command_has_help() -> None:
    def walk(command: object, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    paths = walk(get_command(app), [])
    assert len(paths) >= 9
    for path in paths:
        code, out = run(*path, "--help")
        assert code == 0 and "Usage" in out, path


def test_demo_register_example_builds_and_shows_the_example_register(tmp_path: Path) -> None:
    code, out = run("demo", "--register-example", "--home", str(tmp_path))
    assert code == 0, out
    assert "REG-5.capacity" in out and "REG-5.max_count" in out and "granted" in out
    assert "lapsed" in out and "contractless" in out
    assert (tmp_path / "demo" / "example-register.sqlite").is_file()


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("meetpunt")
    done = subprocess.run(
        [str(exe), "ean", "check", VALID], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "valid" in done.stdout


def test_twin_generate_writes_an_importable_region(tmp_path: Path) -> None:
    out = tmp_path / "twin"
    code, output = run(
        "twin",
        "generate",
        "--connections",
        "30",
        "--days",
        "1",
        "--start",
        "2025-03-30",
        "--seed",
        "3",
        "--faults",
        "field",
        "--out",
        str(out),
    )
    assert code == 0, output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"] == {
        "connections": 30,
        "days": 1,
        "start": "2025-03-30",
        "seed": 3,
        "faults": "field",
        "meter_realities": True,  # on by default outside showcase (issue 16)
    }
    code, output = run("twin", "generate", "--faults", "storm", "--out", str(tmp_path / "x"))
    assert code == 2 and "storm" in output
    assert manifest["steps"] == 276  # the DST day: 23 hours of 5-minute steps
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    files = sorted(str(p) for p in (out / "register").glob("*.csv"))
    code, output = run("register", "import", *files, "--db", db)
    assert code == 0, output
