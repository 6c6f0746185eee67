"""``meetpunt market switch|move|terminate|invoice`` (issue 20, MKT-5) on the example register."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetpunt.cli import app
from tests.cli.test_cli import import_examples

runner = CliRunner()
DE_VRIES = "871234560000000017"  # variable, double, smart meter, since 2024-01-01
BAKKERIJ = "871234560000000055"  # fixed, double, 2024-01-01 .. 2027-01-01
NEW_SUPPLIER = "8712423010208"


def run(*args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, [*args, "--json"])
    lines = [json.loads(x) for x in result.output.splitlines() if x.startswith("{")]
    return result.exit_code, (lines[-1] if lines else {"output": result.output})


@pytest.fixture
def loaded_db(db_url: str) -> str:
    import_examples(db_url)
    return db_url


def test_switch_ends_the_old_contract_and_starts_the_new(loaded_db: str) -> None:
    code, out = run(
        "market", "switch", DE_VRIES, "--day", "2026-05-01", "--supplier", NEW_SUPPLIER,
        "--holder", "J. de Vries", "--reading", "1.8.1=1200,1.8.2=900", "--db", loaded_db,
    )  # fmt: skip
    assert code == 0, out
    assert out["old_contract"]["end"] is None  # type: ignore[index]
    assert out["reading"]["source"] == "smart_meter"  # type: ignore[index]
    runner_out = runner.invoke(app, ["register", "show", DE_VRIES, "--db", loaded_db]).output
    assert "2026-05-01" in runner_out and NEW_SUPPLIER in runner_out


def test_move_to_the_same_holder_is_refused_and_changes_nothing(loaded_db: str) -> None:
    code, out = run(
        "market", "move", DE_VRIES, "--day", "2026-05-01", "--supplier", NEW_SUPPLIER,
        "--holder", "J. de Vries", "--db", loaded_db,
    )  # fmt: skip
    assert code == 1
    assert out["error"]["rule"] == "MKT-5.move_holder"  # type: ignore[index]
    shown = runner.invoke(app, ["register", "show", DE_VRIES, "--db", loaded_db]).output
    assert NEW_SUPPLIER not in shown


def test_terminate_fixed_contract_with_fee_and_variable_without(loaded_db: str) -> None:
    code, out = run(
        "market", "terminate", BAKKERIJ, "--notice-day", "2026-03-01", "--contract-price",
        "0.30", "--reference-price", "0.25", "--remaining-volume", "2000", "--db", loaded_db,
    )  # fmt: skip
    assert code == 0, out
    assert out["ends"] == "2026-04-01"  # 30 days from the day after notice
    assert out["termination_fee_eur"] == "100.00"  # (0.30 - 0.25) x 2000
    code, out = run(
        "market", "terminate", DE_VRIES, "--notice-day", "2026-03-01", "--db", loaded_db
    )
    assert code == 0 and out["termination_fee_eur"].startswith("none")  # type: ignore[union-attr]


def test_terminate_with_notice_over_30_days_is_refused(loaded_db: str) -> None:
    code, out = run(
        "market", "terminate", DE_VRIES, "--notice-day", "2026-03-01", "--notice-days", "60",
        "--db", loaded_db,
    )  # fmt: skip
    assert code == 1
    assert out["error"]["rule"] == "MKT-5.notice_period"  # type: ignore[index]


def test_invoice_with_documents(tmp_path: Path) -> None:
    contract = tmp_path / "c.toml"
    contract.write_text(
        'reference = "C-1"\ncontract_type = "fixed"\ntariff = "single"\n'
        'start = 2026-07-01\nend = 2027-07-01\ngrid_class = "electricity_3x25A"\n'
        'holder = "J. de Vries"\n'
        '[[prices]]\nvalid_from = 2026-07-01\nsingle = "0.25"\nfeed_in = "0.15"\n',
        encoding="utf-8",
    )
    usage = tmp_path / "u.csv"
    usage.write_text(
        "start_utc,import,export\n2026-08-01T10:00:00Z,1200,1500\n2027-02-01T10:00:00Z,1400,200\n",
        encoding="utf-8",
    )
    html, pdf = tmp_path / "a.html", tmp_path / "a.pdf"
    code, out = run(
        "market", "invoice", "--contract", str(contract), "--usage", str(usage), "--from",
        "2026-07-01", "--to", "2027-07-01", "--advances", "100,100", "--html", str(html),
        "--pdf", str(pdf),
    )  # fmt: skip
    assert code == 0, out
    assert [p["regime"] for p in out["parts"]] == ["netting", "separate"]  # type: ignore[union-attr]
    assert out["unconfirmed"]  # the packaged 2027 amounts are marked unconfirmed
    assert "Jaarafrekening" in html.read_text(encoding="utf-8")
    assert pdf.read_bytes().startswith(b"%PDF")
