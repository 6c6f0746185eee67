"""Switch and move readings in the hub (issue 20, MKT-5), electricity and gas: one batch
each, a reading recorded again replaces the earlier one in a new batch, anything but a
switch or a move is refused, and a store of layout 2 or 3 gains the tables when opened
for writing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from meetpunt.errors import MeterDataError
from meetpunt.meterdata.store import SCHEMA_VERSION, open_store

AT = datetime(2025, 7, 4, 22, tzinfo=UTC)
NOW = datetime(2025, 7, 6, tzinfo=UTC)


def test_recorded_again_it_replaces_the_row_in_a_new_batch() -> None:
    store = open_store(":memory:")
    first = store.record_switch_reading(7, AT, {"import_t1_wh": 10}, "switch", False, NOW)
    second = store.record_switch_reading(7, AT, {"import_t1_wh": 11}, "switch", False, NOW)
    rows = store.read("switch_readings").to_pylist()
    assert second > first
    assert [(r["batch"], r["import_t1_wh"], r["status"]) for r in rows] == [
        (second, 11, "measured")
    ]
    store.close()


@pytest.mark.parametrize("event", ["", "terminate", "Switch"])
def test_anything_but_a_switch_or_a_move_is_refused(event: str) -> None:
    store = open_store(":memory:")
    with pytest.raises(MeterDataError, match="'switch' or 'move'"):
        store.record_switch_reading(7, AT, {"import_t1_wh": 10}, event, False, NOW)
    assert store.read("switch_readings").num_rows == 0
    store.close()


def test_a_layout_2_store_gains_the_switch_readings_table(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    open_store(path).close()
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE switch_readings")
    con.execute("DELETE FROM quality WHERE code = 4")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    store = open_store(path)
    store.record_switch_reading(7, AT, {"import_t1_wh": 10}, "move", True, NOW)
    [row] = store.read("switch_readings").to_pylist()
    assert (row["event"], row["status"], row["rule"]) == (
        "move",
        "estimated_final",
        "MKT-5.switch_reading",
    )
    assert store.query("SELECT value FROM meta WHERE key = 'schema_version'").to_pylist() == [
        {"value": SCHEMA_VERSION}
    ]
    store.close()


def test_the_feed_question_to_a_layout_2_store_opened_read_only_skips_the_new_kind(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    writer = open_store(path)
    writer.record_switch_reading(7, AT, {"import_t1_wh": 10}, "switch", False, NOW)
    writer.close()
    head, found, _ = open_store(path, read_only=True).changed_since(["switch_readings"], [7], 0)
    assert [(f[1], f[2], f[3]) for f in found] == [("switch_readings", 7, 1)]
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE switch_readings")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    reader = open_store(path, read_only=True)
    assert reader.changed_since(["daily_readings", "switch_readings"], [7], 0) == (head, [], set())
    reader.close()


def test_a_layout_3_store_gains_the_gas_switch_readings_table(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    open_store(path).close()
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE gas_switch_readings")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.close()
    store = open_store(path)
    batch = store.record_gas_switch_reading(9, AT, 5_400_000, "switch", False, NOW)
    [row] = store.read("gas_switch_readings").to_pylist()
    assert (row["connection"], row["reading_dm3"], row["event"], row["batch"]) == (
        9,
        5_400_000,
        "switch",
        batch,
    )
    assert store.query("SELECT value FROM meta WHERE key = 'schema_version'").to_pylist() == [
        {"value": SCHEMA_VERSION}
    ]
    store.close()


def test_a_gas_reading_of_anything_but_a_switch_or_a_move_is_refused() -> None:
    store = open_store(":memory:")
    with pytest.raises(MeterDataError, match="'switch' or 'move'"):
        store.record_gas_switch_reading(9, AT, 5_400_000, "terminate", False, NOW)
    assert store.read("gas_switch_readings").num_rows == 0
    store.close()
