"""``meetpunt market switch|move|terminate|invoice`` (issue 20, MKT-5) on the example register."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetpunt import rulebook
from meetpunt.cli import app
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.store import open_store
from meetpunt.register import open_register
from tests.api.conftest import source
from tests.api.test_api import records
from tests.cli.test_cli import import_examples
from tests.meterdata.conftest import reading

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


def test_the_model_contract_is_named_on_the_invoice_and_in_its_json(tmp_path: Path) -> None:
    """MKT-2: ``model = "fixed"`` in the terms shows on the Dutch document and in --json."""
    contract = tmp_path / "c.toml"
    contract.write_text(
        'reference = "C-M"\ncontract_type = "fixed"\nmodel = "fixed"\ntariff = "single"\n'
        'start = 2026-07-01\nend = 2027-07-01\ngrid_class = "electricity_3x25A"\n'
        '[[prices]]\nvalid_from = 2026-07-01\nsingle = "0.25"\nfeed_in = "0.15"\n',
        encoding="utf-8",
    )
    html = tmp_path / "f.html"
    code, out = run(
        "market", "invoice", "--contract", str(contract), "--from", "2026-07-01", "--to",
        "2026-08-01", "--opening-reading", "1.8.0=1000", "--closing-reading", "1.8.0=1200",
        "--kind", "final", "--html", str(html),
    )  # fmt: skip
    assert code == 0, out
    assert out["model"] == "fixed"
    page = html.read_text(encoding="utf-8")
    assert "C-M: Modelcontract vast (vaste looptijd, vaste prijzen), tot 1 juli 2027" in page


# -- the reading of the switch or move day, stored for the feed (issue 20, MKT-5) --

BAKKER = "871234560000000031"  # ferraris meter, fixed until 2026-07-01


def ingest_rows(db: str, store: Path, kind: str, rows: list[dict[str, object]]) -> None:
    """``rows`` of ``kind`` into ``store``, placed by the register at ``db``."""
    register = open_register(db)
    try:
        with register.session() as s:
            index = ConnectionIndex(s.meter_index(), 230.0)
        hub = open_store(store)
        try:
            Ingestor(hub, index, rulebook.vee_rules()).ingest(source(kind, rows))
        finally:
            hub.close()
    finally:
        register.dispose()


def stored(store: Path, kind: str) -> list[dict[str, object]]:
    """Every row of ``kind`` in ``store``."""
    hub = open_store(store, read_only=True)
    try:
        return hub.read(kind).to_pylist()
    finally:
        hub.close()


def ingest_day_reading(db: str, store: Path, ean: str, day: date, t1: int, t2: int) -> None:
    """One daily reading at local midnight of ``day`` into ``store``."""
    ingest_rows(db, store, "daily_readings", [reading(ean, local_midnight_utc(day), t1, t2)])


def stored_switch_readings(store: Path) -> list[dict[str, object]]:
    return stored(store, "switch_readings")


def test_switch_takes_the_smart_meters_reading_of_the_day_through_the_gate_and_stores_it(
    loaded_db: str, tmp_path: Path
) -> None:
    store = tmp_path / "hub.duckdb"
    day = date(2026, 5, 1)
    ingest_day_reading(loaded_db, store, DE_VRIES, day, 1_200_500, 900_250)
    code, out = run(
        "market", "switch", DE_VRIES, "--day", day.isoformat(), "--supplier", NEW_SUPPLIER,
        "--holder", "J. de Vries", "--db", loaded_db, "--store", str(store),
    )  # fmt: skip
    assert code == 0, out
    got = out["reading"]
    assert got["source"] == "smart_meter" and got["estimated"] is False  # type: ignore[index]
    assert got["registers"]["import_t1_wh"] == "1200500"  # type: ignore[index]
    [row] = stored_switch_readings(store)
    assert (row["import_t1_wh"], row["import_t2_wh"], row["event"]) == (
        1_200_500,
        900_250,
        "switch",
    )
    assert row["batch"] == out["reading_batch"]
    # the read went through the gate as the new supplier, under supplier_switch, audited
    events = {(r.entry.purpose, r.entry.event) for r in records(loaded_db)}
    assert ("supplier_switch", "read") in events


def test_a_traditional_meter_gets_an_estimate_marked_so_and_stored(
    loaded_db: str, tmp_path: Path
) -> None:
    store = tmp_path / "hub.duckdb"
    code, out = run(
        "market", "move", BAKKER, "--day", "2026-07-01", "--supplier", NEW_SUPPLIER,
        "--holder", "K. Nieuw", "--last-reading", "1.8.0=12000", "--last-day", "2026-01-01",
        "--yearly", "1.8.0=3650", "--db", loaded_db, "--store", str(store),
    )  # fmt: skip
    assert code == 0, out
    assert out["reading"]["estimated"] is True  # type: ignore[index]
    [row] = stored_switch_readings(store)
    assert row["event"] == "move"
    assert row["import_t1_wh"] == 1000 * (12000 + 181 * 10)  # 181 days of 10 kWh
    assert (row["status"], row["rule"]) == ("estimated_final", "MKT-5.switch_reading")


def test_a_traditional_meter_without_anything_to_estimate_from_stores_nothing(
    loaded_db: str, tmp_path: Path
) -> None:
    store = tmp_path / "hub.duckdb"
    code, out = run(
        "market", "switch", BAKKER, "--day", "2026-07-01", "--supplier", NEW_SUPPLIER,
        "--holder", "P. Bakker", "--db", loaded_db, "--store", str(store),
    )  # fmt: skip
    assert code == 0, out
    assert out["reading"] is None and out["reading_batch"] is None
    assert "--last-reading" in str(out["reading_note"])


# -- the gas reading of the switch or move day (MKT-5): the gas meter on the M-Bus --

GAS_DE_VRIES = "871234560000000116"  # gas, smart (M-Bus), variable since 2020-01-01


def ingest_gas_hour(db: str, store: Path, ean: str, day: date, volume: int, end: int) -> None:
    """The hourly gas value of the hour from local midnight of ``day`` (dm3): its volume
    and the register at the hour's end."""
    row = {
        "gas_ean": ean,
        "start": local_midnight_utc(day),
        "volume_dm3": volume,
        "reading_dm3": end,
    }
    ingest_rows(db, store, "gas_hourly", [row])


def stored_gas_switch_readings(store: Path) -> list[dict[str, object]]:
    return stored(store, "gas_switch_readings")


def test_a_gas_switch_reads_the_gas_register_at_midnight_through_the_gate_and_stores_it(
    loaded_db: str, tmp_path: Path
) -> None:
    store = tmp_path / "hub.duckdb"
    day = date(2026, 5, 1)
    # the hour from midnight: 420 dm3 used, 5,400,420 dm3 at its end -> 5,400,000 at midnight
    ingest_gas_hour(loaded_db, store, GAS_DE_VRIES, day, 420, 5_400_420)
    code, out = run(
        "market", "switch", GAS_DE_VRIES, "--commodity", "gas", "--day", day.isoformat(),
        "--supplier", NEW_SUPPLIER, "--holder", "J. de Vries", "--db", loaded_db,
        "--store", str(store),
    )  # fmt: skip
    assert code == 0, out
    assert out["commodity"] == "gas"
    assert out["reading"]["registers"] == {"24.2.1": "5400"}  # type: ignore[index]
    assert out["reading"]["source"] == "smart_meter"  # type: ignore[index]
    [row] = stored_gas_switch_readings(store)
    assert (row["reading_dm3"], row["event"], row["status"]) == (5_400_000, "switch", "measured")
    assert row["batch"] == out["reading_batch"]
    assert stored_switch_readings(store) == []  # nothing on the electricity connection
    reads = [r.entry for r in records(loaded_db) if r.entry.event == "read"]
    assert [(e.purpose, e.kinds) for e in reads][-1] == ("supplier_switch", ("gas_hourly",))


def test_a_gas_move_without_the_hour_estimates_from_the_last_reading_in_m3(
    loaded_db: str, tmp_path: Path
) -> None:
    store = tmp_path / "hub.duckdb"
    code, out = run(
        "market", "move", GAS_DE_VRIES, "--commodity", "gas", "--day", "2026-07-01",
        "--supplier", NEW_SUPPLIER, "--holder", "K. Nieuw", "--last-reading",
        "24.2.1=5000", "--last-day", "2026-01-01", "--yearly", "24.2.1=730",
        "--db", loaded_db, "--store", str(store),
    )  # fmt: skip
    assert code == 0, out
    [row] = stored_gas_switch_readings(store)
    # the smart meter has no hour at that midnight: 5,000 m³ + 181 days x 2 m³ = 5,362 m³
    assert row["reading_dm3"] == 5_362_000
    assert (row["event"], row["status"], row["rule"]) == (
        "move",
        "estimated_final",
        "MKT-5.switch_reading",
    )


def test_a_gas_reading_named_as_an_electricity_register_is_refused(
    loaded_db: str, tmp_path: Path
) -> None:
    store = tmp_path / "hub.duckdb"
    code, out = run(
        "market", "switch", GAS_DE_VRIES, "--commodity", "gas", "--day", "2026-07-01",
        "--supplier", NEW_SUPPLIER, "--holder", "J. de Vries", "--reading", "1.8.1=5000",
        "--db", loaded_db, "--store", str(store),
    )  # fmt: skip
    assert code != 0
    assert "24.2.1" in json.dumps(out)
    register = open_register(loaded_db)
    try:
        with register.session() as s:  # refused before anything changed
            held = s.contract_on(GAS_DE_VRIES, date(2026, 7, 1), Commodity.GAS)
    finally:
        register.dispose()
    assert held is not None and held.supplier != NEW_SUPPLIER


def test_a_gas_final_invoice_from_the_switch_reading_converts_and_shows_the_readings(
    tmp_path: Path,
) -> None:
    """The old supplier's final invoice closes on the switch reading (MKT-5), marked
    estimated here; gas is converted to 35.17 MJ/m³ (MKT-1). Packaged tariffs: the area
    has no published factor for June 2026, so 1.0 is used and the invoice says so.
    30 m³: supply 30 x 1.20 = 36.00; energy tax 30 x 0.60066 = 18.02; grid gas_G4
    150.37 x 30/365 = 12.36; subtotal 66.38, VAT 21 % 13.94, total 80.32."""
    contract = tmp_path / "g.toml"
    contract.write_text(
        'reference = "G-1"\ncommodity = "gas"\ncontract_type = "variable"\n'
        'start = 2026-01-01\ngrid_class = "gas_G4"\nholder = "J. de Vries"\n'
        'gas_area = "871718518003006694"\n'
        '[[prices]]\nvalid_from = 2026-01-01\nsingle = "1.20"\n',
        encoding="utf-8",
    )
    html = tmp_path / "final.html"
    code, out = run(
        "market", "invoice", "--contract", str(contract), "--from", "2026-06-01", "--to",
        "2026-07-01", "--opening-reading", "24.2.1=5000", "--closing-reading",
        "24.2.1=5030", "--estimated", "closing", "--kind", "final", "--html", str(html),
    )  # fmt: skip
    assert code == 0, out
    lines = {x["description"]: (x["quantity"], x["amount"]) for x in out["lines"]}  # type: ignore[union-attr]
    assert lines["Levering enkeltarief"] == ("30.000", "36.00")
    assert lines["Energiebelasting schijf 1"] == ("30.000", "18.02")
    assert (out["subtotal"], out["vat"], out["total"]) == ("66.38", "13.94", "80.32")
    [volume] = out["gas_volumes"]  # type: ignore[misc]
    assert (volume["measured_m3"], volume["factor"]) == ("30.000", "1.000000")
    assert any("2026-06" in u for u in out["unconfirmed"])  # type: ignore[union-attr]
    page = html.read_text(encoding="utf-8")
    assert "Eindafrekening" in page and "Omrekening gas" in page
    assert "24.2.1: 5.030 m³" in page and "geschat" in page


DOUBLE_TERMS = (
    'reference = "E-2"\ncontract_type = "variable"\ntariff = "double"\n'
    'start = 2026-01-01\ngrid_class = "electricity_3x25A"\n'
    '[[prices]]\nvalid_from = 2026-01-01\nnormal = "0.30"\noffpeak = "0.20"\nfeed_in = "0.15"\n'
    '[[prices]]\nvalid_from = 2026-07-01\nnormal = "0.40"\noffpeak = "0.25"\nfeed_in = "0.15"\n'
)


def test_a_double_tariff_final_invoice_from_two_readings_prices_each_register(
    tmp_path: Path,
) -> None:
    """MKT-2/MKT-5: both registers' readings, spread by the packaged profile: each
    register's kWh are all invoiced, on its own tariff, split at the 1 July price change."""
    contract = tmp_path / "e.toml"
    contract.write_text(DOUBLE_TERMS, encoding="utf-8")
    code, out = run(
        "market", "invoice", "--contract", str(contract), "--from", "2026-06-15", "--to",
        "2026-07-15", "--opening-reading", "1.8.1=1000,1.8.2=2000",
        "--closing-reading", "1.8.1=1120,1.8.2=2150", "--kind", "final",
    )  # fmt: skip
    assert code == 0, out
    rows = [(x["part"], x["description"], Decimal(x["quantity"])) for x in out["lines"]]  # type: ignore[union-attr]
    normal = [q for _, d, q in rows if d.startswith("Levering normaaltarief")]
    offpeak = [q for _, d, q in rows if d.startswith("Levering daltarief")]
    assert sum(normal) == Decimal(150) and sum(offpeak) == Decimal(120)
    assert len(normal) == len(offpeak) == 2 and all(q > 0 for q in normal + offpeak)


def test_a_double_tariff_invoice_from_a_single_register_is_refused(tmp_path: Path) -> None:
    contract = tmp_path / "e.toml"
    contract.write_text(DOUBLE_TERMS, encoding="utf-8")
    code, out = run(
        "market", "invoice", "--contract", str(contract), "--from", "2026-06-15", "--to",
        "2026-07-15", "--opening-reading", "1.8.0=1000", "--closing-reading", "1.8.0=1270",
    )  # fmt: skip
    assert code != 0
    assert out["error"]["rule"] == "MKT-2.double_tariff_readings"  # type: ignore[index]


def test_a_dynamic_invoice_from_two_readings_is_refused(tmp_path: Path) -> None:
    """MKT-1: a dynamic price per slot needs the use per slot, not two readings."""
    contract = tmp_path / "d.toml"
    contract.write_text(
        'reference = "D-1"\ncontract_type = "dynamic"\nstart = 2026-01-01\n'
        'grid_class = "electricity_3x25A"\n[[prices]]\nvalid_from = 2026-01-01\n'
        'markup = "0.02"\nfeed_in = "0.00"\n',
        encoding="utf-8",
    )
    code, out = run(
        "market", "invoice", "--contract", str(contract), "--from", "2026-06-15", "--to",
        "2026-07-15", "--opening-reading", "1.8.0=1000", "--closing-reading", "1.8.0=1270",
    )  # fmt: skip
    assert code != 0
    assert out["error"]["rule"] == "MKT-1.dynamic_readings"  # type: ignore[index]


def test_an_invoice_with_both_usage_and_readings_is_refused(tmp_path: Path) -> None:
    contract = tmp_path / "g.toml"
    contract.write_text(
        'reference = "G-1"\ncommodity = "gas"\ncontract_type = "variable"\n'
        'start = 2026-01-01\ngrid_class = "gas_G4"\n'
        '[[prices]]\nvalid_from = 2026-01-01\nsingle = "1.20"\n',
        encoding="utf-8",
    )
    usage = tmp_path / "u.csv"
    usage.write_text("start_utc,import,export\n2026-06-10T10:00:00Z,30,0\n", encoding="utf-8")
    code, out = run(
        "market", "invoice", "--contract", str(contract), "--from", "2026-06-01", "--to",
        "2026-07-01", "--usage", str(usage), "--opening-reading", "24.2.1=5000",
        "--closing-reading", "24.2.1=5030",
    )  # fmt: skip
    assert code != 0
    assert out["error"]["rule"] == "CLI.usage"  # type: ignore[index]
