"""Bad values on the command line give the one error shape with a rule (CLI.*, PRV-4,
REG-1, REG-db.busy), exit 2 when the command could not run, exit 1 when a rule refused,
and never a traceback."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from meetpunt.app.register import import_register_files
from meetpunt.cli import app
from meetpunt.domain.ean import InvalidEanError, check_ean, ean_from_serial
from meetpunt.errors import UnavailableError
from meetpunt.register import Register, open_register

runner = CliRunner()
EXAMPLES = resources.files("meetpunt.data").joinpath("example_register")
EAN = "871234560000000017"  # in the example register


def _line_error(args: list[str], exit_code: int) -> dict[str, object]:
    """The error of a command without --json: one line ``error: MESSAGE [RULE]``."""
    result = runner.invoke(app, args)
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    line = result.output.splitlines()[0]
    assert line.startswith("error: ") and line.endswith("]"), result.output
    message, rule = line[len("error: ") : -1].rsplit(" [", 1)
    return {"rule": rule, "message": message}


def _error(args: list[str], exit_code: int) -> dict[str, object]:
    if args[0] in ("twin",) or args[:2] == ["register", "export"]:  # no --json there
        return _line_error(args, exit_code)
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"error"')]
    assert len(lines) == 1, result.output
    error: dict[str, object] = json.loads(lines[0])["error"]
    assert set(error) >= {"rule", "message", "hint", "findings"}
    return error


def _loaded(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    files = [Path(str(EXAMPLES.joinpath(f"{n}.csv"))) for n in ("connections", "contracts")]
    with _opened(db) as register:
        import_register_files(register, files)
    return db


class _opened:  # noqa: N801 (used as a context manager, like open)
    def __init__(self, db: str) -> None:
        self.register = open_register(db)

    def __enter__(self) -> Register:
        return self.register

    def __exit__(self, *exc: object) -> None:
        self.register.dispose()


CONSENT = ["consent", "give", EAN, "--party", "app1", "--kinds", "quarter_hours"]


@pytest.mark.parametrize(
    "args",
    [
        [*CONSENT, "--from", "2025-02-30", "--to", "2025-03-05", "--given-by", "J. de Vries"],
        ["ingest", "completeness", "--at", "2025-02-30"],
        ["retention", "run", "--at", "2025-02-30"],
        ["usecase", "uc09", "--from", "2025-02-30", "--to", "2025-03-05"],
        ["usecase", "uc04", "--from", "2025-06-01", "--to", "2025-13-01"],
        ["twin", "generate", "--out", "x", "--start", "2025-02-29"],
    ],
)
def test_a_day_that_does_not_exist_is_refused_with_its_option(args: list[str]) -> None:
    error = _error(args, 2)
    assert error["rule"] == "CLI.date"
    assert str(error["message"]).startswith("--")  # names the option


def test_uc09_over_ten_thousand_years_is_refused_not_overflowed() -> None:
    error = _error(["usecase", "uc09", "--from", "0001-01-01", "--to", "9999-12-31"], 2)
    assert error["rule"] == "CLI.date_range"
    assert "--from" in str(error["message"])


def test_a_negative_quarantine_limit_is_refused() -> None:
    assert _error(["ingest", "quarantine", "--limit", "-1"], 2)["rule"] == "CLI.range"


def test_twin_out_that_is_a_file_and_a_negative_seed_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "a-file"
    file.write_text("x")
    error = _error(["twin", "generate", "--out", str(file)], 2)
    assert error["rule"] == "CLI.not_a_folder"
    error = _error(["twin", "generate", "--out", str(tmp_path / "t"), "--seed", "-1"], 2)
    assert error["rule"] == "CLI.range" and "--seed" in str(error["message"])
    assert not (tmp_path / "t").exists()
    assert _error(["register", "export", "--out", str(file)], 2)["rule"] == "CLI.not_a_folder"


@pytest.mark.parametrize(
    ("extra", "rules"),
    [
        (["--kinds", "bogus", "--given-by", "J."], ["PRV-4.kinds"]),
        (["--kinds", "voltage_presence", "--given-by", "J."], ["PRV-4.kinds"]),
        (["--kinds", "quarter_hours", "--given-by", "  "], ["PRV-4.given_by"]),
        (
            ["--kinds", "quarter_hours", "--purpose", "uc01_outage", "--given-by", ""],
            ["PRV-4.purpose", "PRV-4.given_by"],
        ),
        (["--kinds", ",", "--given-by", "J."], ["PRV-4.kinds"]),
    ],
)
def test_consent_give_refuses_unknown_kinds_purposes_and_no_customer(
    tmp_path: Path, extra: list[str], rules: list[str]
) -> None:
    db = _loaded(tmp_path)
    args = ["consent", "give", EAN, "--party", "app1", "--from", "2025-03-01"]
    error = _error([*args, "--to", "2025-03-05", *extra, "--db", db], 1)
    assert [f["rule"] for f in error["findings"]] == rules  # type: ignore[union-attr]
    listed = runner.invoke(app, ["consent", "list", "--json", "--db", db])
    assert listed.exit_code == 0 and listed.stdout.strip() == ""  # nothing was stored


def test_consent_list_shows_the_local_days_given(tmp_path: Path) -> None:
    db = _loaded(tmp_path)
    args = [*CONSENT, "--from", "2099-03-01", "--to", "2099-11-05", "--given-by", "J. de Vries"]
    given = runner.invoke(app, [*args, "--db", db])
    assert given.exit_code == 0, given.output
    listed = runner.invoke(app, ["consent", "list", "--db", db])
    assert listed.exit_code == 0
    row = next(line for line in listed.stdout.splitlines() if "app1" in line)
    assert "2099-03-01" in row and "2099-11-05" in row  # not the UTC day before
    assert "2099-02-28" not in row and "2099-11-04" not in row


def test_ean_generate_refuses_digits_ean_check_refuses() -> None:
    result = runner.invoke(app, ["ean", "generate", "--prefix", "١٢"])
    assert result.exit_code == 1
    assert "[REG-1.non_digit]" in result.output and "Traceback" not in result.output


@given(prefix=st.text(min_size=0, max_size=18), serial=st.integers(0, 10**6))
def test_a_generated_ean_is_one_ean_check_accepts(prefix: str, serial: int) -> None:
    """Whatever the prefix: ean generate refuses it by a REG-1 rule, or every code it
    makes passes ean check (they agree on what a digit is)."""
    try:
        code = ean_from_serial(prefix, serial)
    except InvalidEanError as exc:
        assert exc.rules[0].startswith("REG-1.")
        return
    assert check_ean(code) is None


def test_a_folder_among_register_files_is_refused_and_the_rest_goes_in(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    folder = tmp_path / "a-folder"
    folder.mkdir()
    connections = str(EXAMPLES.joinpath("connections.csv"))
    result = runner.invoke(app, ["register", "import", str(folder), connections, "--db", db])
    assert result.exit_code == 1
    assert "REG-import.file" in result.output and "Traceback" not in result.output
    shown = runner.invoke(app, ["register", "show", EAN, "--db", db])
    assert shown.exit_code == 0


def _hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another writer: holds SQLite's write lock on ``path`` for ``seconds``."""
    ready = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait()
    return thread


def test_an_import_waits_for_another_writer_and_then_goes_in(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    db = f"sqlite:///{path}?timeout=0.05"
    open_register(db).dispose()
    waited: list[Path] = []
    thread = _hold_write_lock(path, 1.0)
    with _opened(db) as register:
        reports = import_register_files(
            register, [Path(str(EXAMPLES.joinpath("connections.csv")))], on_wait=waited.append
        )
    thread.join()
    assert len(waited) == 1
    assert reports[0].inserted > 0 and not reports[0].refused


def test_an_import_that_waits_too_long_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    db = f"sqlite:///{path}?timeout=0.05"
    open_register(db).dispose()
    thread = _hold_write_lock(path, 1.5)
    with _opened(db) as register, pytest.raises(UnavailableError) as refused:
        import_register_files(
            register, [Path(str(EXAMPLES.joinpath("connections.csv")))], wait_seconds=0.3
        )
    thread.join()
    assert refused.value.rules == ("REG-db.busy",)
    with _opened(db) as register, register.session() as s:
        assert list(s.connection_versions()) == []  # not half a file: nothing


def test_consent_give_refuses_an_empty_party(tmp_path: Path) -> None:
    db = _loaded(tmp_path)
    args = ["consent", "give", EAN, "--party", " ", "--kinds", "quarter_hours"]
    args += ["--from", "2025-03-01", "--to", "2025-03-05", "--given-by", "J.", "--db", db]
    error = _error(args, 1)
    assert [f["rule"] for f in error["findings"]] == ["PRV-4.party"]  # type: ignore[union-attr]
