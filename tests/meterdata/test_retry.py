"""Refused records are retried (MTR-4/5, "nothing lost, nothing false"): a source whose
records are still in quarantine is read again and those records tried again; a source
taken in full is still skipped, and a retry that changes nothing writes nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from meetpunt import rulebook
from meetpunt.domain.capacity import Commodity
from meetpunt.io.p1_source import read_p1_capture
from meetpunt.meterdata.ingest import ConnectionIndex
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import SCHEMA_VERSION, open_store
from tests.meterdata.conftest import E3X25, NOW, UNKNOWN, Hub, quarters, utc
from tests.meterdata.test_cli import _capture
from tests.unit.domain.factories import attributes

T0 = utc(2025, 6, 2, 22, 0)


def _source(hub: Hub) -> SourceData:
    """Four quarter-hours of a known connection, two of one the register lacks."""
    source = hub.source("quarter_hours", quarters(E3X25, T0, 4) + quarters(UNKNOWN, T0, 2))
    source.sha256 = "retry-me"
    return source


def _record_unknown(hub: Hub) -> None:
    """``meetpunt register import`` of the missing connection; a new run's index."""
    with hub.register.session() as s:
        s.record_connection(UNKNOWN, Commodity.ELECTRICITY, attributes("3x25"), date(2020, 1, 1))
    with hub.register.session() as s:
        entries = s.meter_index()
    hub.ingestor.index = ConnectionIndex(entries, rulebook.vee_rules().phase_voltage_v)
    hub.ids = {e.ean: e.connection_id for e in entries}


def _quarantine(hub: Hub) -> list[tuple[object, ...]]:
    with hub.store.lease() as con:
        return con.execute(
            "SELECT batch, record, ean, rule, resolved_by, resolved_at FROM quarantine "
            "ORDER BY batch, record"
        ).fetchall()


def _batches(hub: Hub) -> list[tuple[object, ...]]:
    with hub.store.lease() as con:
        return con.execute(
            "SELECT id, rows, accepted, duplicates, quarantined, retry_of FROM batch ORDER BY id"
        ).fetchall()


def test_a_retry_after_the_register_is_fixed_stores_the_rows_and_resolves_the_quarantine(
    hub: Hub,
) -> None:
    first = hub.ingestor.ingest(_source(hub))
    assert first.total("accepted") == 4
    assert first.quarantined == {"MTR-5.unknown_connection": 2}
    _record_unknown(hub)

    again = hub.ingestor.ingest(_source(hub))

    assert not again.already_ingested
    assert again.batch is not None and again.batch != first.batch
    assert again.retry_of == first.batch
    assert (again.total("rows"), again.total("accepted"), again.total("duplicates")) == (6, 2, 4)
    assert not again.quarantined
    stored = hub.values("quarter_hours", "connection", "start")
    assert [c for c, _ in stored].count(hub.ids[UNKNOWN]) == 2
    assert hub.store.count("quarter_hours") == 6
    naive_now = NOW.replace(tzinfo=None)
    assert _quarantine(hub) == [
        (first.batch, 5, UNKNOWN, "MTR-5.unknown_connection", again.batch, naive_now),
        (first.batch, 6, UNKNOWN, "MTR-5.unknown_connection", again.batch, naive_now),
    ]
    assert _batches(hub) == [
        (first.batch, 6, 4, 0, 2, None),
        (again.batch, 6, 2, 4, 0, first.batch),
    ]

    listed = hub.store.quarantined()  # what `meetpunt ingest quarantine` shows
    assert [(r["record"], r["resolved_by"]) for r in listed] == [(5, again.batch), (6, again.batch)]

    third = hub.ingestor.ingest(_source(hub))  # nothing refused any more: skipped
    assert third.already_ingested and third.total("duplicates") == 6
    assert len(_batches(hub)) == 2 and hub.store.count("quarter_hours") == 6


def test_records_of_a_source_without_record_numbers_are_retried_by_position(hub: Hub) -> None:
    """A Parquet file has no record column: its records are numbered by position."""
    source = _source(hub)
    source.tables["quarter_hours"] = source.tables["quarter_hours"].drop_columns(["record"])
    first = hub.ingestor.ingest(source)
    assert [r[1] for r in _quarantine(hub)] == [5, 6]
    _record_unknown(hub)
    again = hub.ingestor.ingest(source)
    assert (again.total("accepted"), again.total("duplicates")) == (2, 4)
    assert [(r[1], r[4]) for r in _quarantine(hub)] == [(5, again.batch), (6, again.batch)]
    assert hub.store.count("quarter_hours") == 6 and first.batch != again.batch


def test_a_rerun_without_a_fix_changes_nothing(hub: Hub) -> None:
    first = hub.ingestor.ingest(_source(hub))
    quarantine, batches = _quarantine(hub), _batches(hub)
    stored = hub.values("quarter_hours", "connection", "start", "import_wh", "batch")

    again = hub.ingestor.ingest(_source(hub))

    assert again.already_ingested and again.batch == first.batch
    assert again.retry_of is None
    assert _quarantine(hub) == quarantine  # no second quarantine row, nothing resolved
    assert [r[4] for r in quarantine] == [None, None]
    assert _batches(hub) == batches
    assert hub.values("quarter_hours", "connection", "start", "import_wh", "batch") == stored


def test_a_source_taken_in_full_is_still_skipped(hub: Hub) -> None:
    source = hub.source("quarter_hours", quarters(E3X25, T0, 4))
    source.sha256 = "whole"
    first = hub.ingestor.ingest(source)
    again = hub.ingestor.ingest(source)
    assert first.retry_of is None and again.retry_of is None
    assert again.already_ingested and again.batch == first.batch
    assert _batches(hub) == [(first.batch, 4, 4, 0, 0, None)]


def test_a_p1_capture_with_a_mistyped_ean_is_retried_with_the_right_one(
    hub: Hub, tmp_path: Path
) -> None:
    path = _capture(tmp_path / "capture.p1")
    wrong = hub.ingestor.ingest(read_p1_capture(path, UNKNOWN))
    assert wrong.total("accepted") == 0
    assert set(wrong.quarantined) == {"MTR-5.unknown_connection"}

    right = hub.ingestor.ingest(read_p1_capture(path, E3X25))

    assert right.retry_of == wrong.batch
    assert right.total("accepted") == wrong.total("rows") and not right.quarantined
    assert hub.values("p1_readings", "connection") == [(hub.ids[E3X25],)]
    assert {r[4] for r in _quarantine(hub)} == {right.batch}


def test_a_store_of_layout_1_gets_the_retry_columns(tmp_path: Path) -> None:
    path = tmp_path / "v1.duckdb"
    open_store(path).close()
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE batch DROP COLUMN retry_of")
    con.execute("ALTER TABLE quarantine DROP COLUMN resolved_by")
    con.execute("ALTER TABLE quarantine DROP COLUMN resolved_at")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    with open_store(path) as store, store.lease() as con:
        columns = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() "
                "WHERE table_name IN ('batch', 'quarantine')"
            ).fetchall()
        }
        assert {"retry_of", "resolved_by", "resolved_at"} <= columns
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchall() == [(SCHEMA_VERSION,)]
