"""Files are streamed in bounded pieces, and one source's quarantine is capped (MTR-4).

Streaming must change nothing but memory: a file ingested in pieces of a few rows
stores, estimates and refuses exactly what it does held whole. Past the cap, refusals
are counted in one summary record (``MTR-4.quarantine_cap``), nothing is lost, and the
fixed file ingested again tries every record again.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt import rulebook
from meetpunt.domain.capacity import Commodity
from meetpunt.io import p1_source
from meetpunt.io.files import read_meter_csv, read_meter_parquet
from meetpunt.io.p1 import parse_telegram, split_telegrams
from meetpunt.io.p1_source import read_p1_capture
from meetpunt.meterdata.ingest import CAP_RULE, ConnectionIndex, Ingestor
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import open_store
from tests.meterdata.conftest import E1X25, E3X25, NOW, UNKNOWN, Hub, build_register, utc
from tests.unit.domain.factories import attributes


def _quarter_hours_file(path: Path) -> None:
    """Two connections, a day each with a gap and a duplicate, an unknown EAN row and
    a row with no time: every path of the pipeline."""
    rows: list[dict[str, Any]] = []
    for ean in (E3X25, E1X25):
        for i in range(96):
            if 30 <= i < 34:
                continue  # a gap: estimated from history, or left missing
            rows.append(
                {
                    "ean": ean,
                    "start": utc(2025, 6, 2, 22) + timedelta(minutes=15 * i),
                    "import_wh": 50 + i % 7,
                    "export_wh": 0,
                }
            )
        rows.append(dict(rows[-10]))  # an identical copy: a duplicate
    rows.append({"ean": UNKNOWN, "start": utc(2025, 6, 3, 1), "import_wh": 5, "export_wh": 0})
    rows.append({"ean": E3X25, "start": None, "import_wh": 5, "export_wh": 0})
    pq.write_table(
        pa.Table.from_pylist(
            rows,
            schema=pa.schema(
                [
                    ("ean", pa.string()),
                    ("start", pa.timestamp("us", "UTC")),
                    ("import_wh", pa.int64()),
                    ("export_wh", pa.int64()),
                ]
            ),
        ),
        path,
    )


def _state(hub: Hub) -> tuple[Any, ...]:
    stored = hub.values("quarter_hours", "connection", "start", "import_wh", "status")
    refused = hub.store.query(
        "SELECT kind, record, ean, rule FROM quarantine ORDER BY record, rule"
    ).to_pylist()
    findings = hub.store.query("SELECT kind, rule, message FROM finding ORDER BY ALL").to_pylist()
    return stored, refused, findings


def _fresh_hub(tmp_path: Path, name: str, cap: int = 10_000) -> Hub:
    folder = tmp_path / name
    folder.mkdir()
    register = build_register(f"sqlite:///{folder / 'register.sqlite'}")
    rules = rulebook.vee_rules()
    with register.session() as s:
        entries = s.meter_index()
    store = open_store(folder / "meterdata.duckdb")
    index = ConnectionIndex(entries, rules.phase_voltage_v)
    ingestor = Ingestor(store, index, rules, now=NOW, quarantine_cap=cap)
    return Hub(register, store, ingestor, {e.ean: e.connection_id for e in entries})


def _close(hub: Hub) -> None:
    hub.store.close()
    hub.register.dispose()


def test_a_parquet_file_in_pieces_of_seven_rows_is_stored_as_one_held_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "quarter_hours.parquet"
    _quarter_hours_file(path)
    whole, pieces = _fresh_hub(tmp_path, "whole"), _fresh_hub(tmp_path, "pieces")
    try:
        a = whole.ingestor.ingest(read_meter_parquet(path).whole())
        streamed = read_meter_parquet(path, batch_rows=7)
        assert sum(1 for _ in streamed.pieces()) > 20
        b = pieces.ingestor.ingest(streamed)
        keep = ("rows", "accepted", "duplicates", "estimated", "quarantined")
        assert {k: a.as_dict()[k] for k in keep} == {k: b.as_dict()[k] for k in keep}
        assert (a.total("gaps_missing"), b.total("gaps_missing")) == (8, 8)  # once, at the end
        assert a.total("duplicates") == 2
        assert a.quarantined["MTR-3.missing_time"] == 1
        assert _state(whole) == _state(pieces)
    finally:
        _close(whole)
        _close(pieces)


def test_the_parquet_reader_holds_a_record_batch_not_the_file(tmp_path: Path) -> None:
    """Issue 13: pyarrow's ``pre_buffer`` read the column chunks of every row group
    ahead, so streaming a file held its whole compressed size in Arrow's pool."""
    path = tmp_path / "quarter_hours.parquet"
    n = 200_000  # random values: ~5 MB that do not compress
    rng = np.random.default_rng(3)
    table = pa.table(
        {
            "ean": pa.array([E3X25] * n),
            "start": pa.array(
                int(utc(2025, 6, 2, 22).timestamp()) * 1_000_000 + np.arange(n) * 900_000_000,
                pa.timestamp("us", "UTC"),
            ),
            "import_wh": pa.array(rng.integers(0, 1 << 40, n)),
            "export_wh": pa.array(rng.integers(0, 1 << 40, n)),
        }
    )
    pq.write_table(table, path, row_group_size=5_000)
    del table
    assert path.stat().st_size > 4_000_000
    before = pa.total_allocated_bytes()  # what the rest of the process holds
    held = 0
    for piece in read_meter_parquet(path, batch_rows=5_000).pieces():
        held = max(held, pa.total_allocated_bytes() - before)
        assert piece.tables["quarter_hours"].num_rows == 5_000
    assert held < 1_500_000  # about one record batch (~150 KB) and the reader's buffers


def test_a_csv_file_in_blocks_numbers_its_records_as_the_file_does(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.csv"
    lines = ["ean,start,import_wh,export_wh"]
    for i in range(20):
        cell = "x" if i % 6 == 0 else str(i)
        lines.append(f"{E3X25},2025-06-03T{i // 4:02d}:{15 * (i % 4):02d}:00Z,{cell},0")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    held = read_meter_csv(path, block_rows=10_000).whole()
    streamed = read_meter_csv(path, block_rows=3)
    assert sum(1 for _ in streamed.pieces()) == 7
    again = streamed.whole()
    assert [r.record for r in again.refused] == [r.record for r in held.refused] == [2, 8, 14, 20]
    assert again.tables["quarter_hours"].equals(held.tables["quarter_hours"])


def _folded(data: bytes) -> list[tuple[str, Any]]:
    """What the capture reader should give: the splitter's frames, runs of frames
    without a line end folded into one (count, bytes)."""
    out: list[tuple[str, Any]] = []
    for frame in split_telegrams(data):
        if b"\n" not in frame:
            if out and out[-1][0] == "garbage":
                count, size = out[-1][1]
                out[-1] = ("garbage", (count + 1, size + len(frame)))
            else:
                out.append(("garbage", (1, len(frame))))
        else:
            out.append(("telegram", parse_telegram(frame).raw))
    return out


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(
        st.sampled_from([b"/", b"!", b"\n", b"\r", b"a", b"1A2B", b"/ISK5\\2M550T\r\n"]),
        max_size=120,
    ).map(b"".join),
    block=st.integers(1, 40),
)
def test_the_capture_reader_finds_the_frames_the_splitter_finds_in_any_block_size(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, block: int
) -> None:
    path = tmp_path_factory.mktemp("p1") / "capture.p1"
    path.write_bytes(data)
    got: list[tuple[str, Any]] = []
    for item in p1_source._telegrams(path, block_size=block):
        if isinstance(item, p1_source._Garbage):
            got.append(("garbage", (item.frames, item.size)))
        else:
            got.append(("telegram", item.raw))
    assert got == _folded(data)


def test_a_megabyte_of_slashes_is_one_refused_record_and_telegrams_keep_their_numbers(
    tmp_path: Path, hub: Hub
) -> None:
    from meetpunt.domain.calendar import Tariff
    from meetpunt.twin.p1 import P1Snapshot, render_telegram

    def telegram(minute: int) -> bytes:
        at = utc(2025, 6, 3, 10, minute)
        return render_telegram(
            P1Snapshot(
                "XMX5LGF0010455364812",
                at,
                "E0045001045536481",
                (1000 + minute, 0),
                (0, 0),
                Tariff.T1,
                100,
                0,
                1,
                0,
                (),
                (0,),
                (0,),
                (230.0,),
                (1,),
                (100,),
                (0,),
            ),
            "5.0",
        )

    path = tmp_path / f"{E3X25}.p1"
    path.write_bytes(telegram(0) + b"/" * (1 << 20) + telegram(1))
    source = read_p1_capture(path).whole()
    assert [r.rule for r in source.refused] == ["MTR-2.truncated"]
    assert source.refused[0].record == 2
    assert "1048576 frame(s)" in source.refused[0].message
    assert len(source.refused[0].raw) == 4096
    assert source.tables["p1_readings"].column("record").to_pylist() == [1, 1048578]
    report = hub.ingestor.ingest(read_p1_capture(path))
    assert report.quarantined == {"MTR-2.truncated": 1}
    assert report.total("accepted") >= 2


def _unknown_rows(count: int) -> SourceData:
    schema = KINDS["quarter_hours"].source_schema()
    rows = [
        {
            "record": i + 1,
            "ean": UNKNOWN,
            "start": utc(2025, 6, 3) + timedelta(minutes=15 * i),
            "import_wh": 10,
            "export_wh": 0,
        }
        for i in range(count)
    ]
    return SourceData(
        "bad.csv", "sha-of-bad", {"quarter_hours": pa.Table.from_pylist(rows, schema)}
    )


def test_past_the_cap_refusals_are_counted_in_one_summary_record(tmp_path: Path) -> None:
    hub = _fresh_hub(tmp_path, "capped", cap=5)
    try:
        report = hub.ingestor.ingest(_unknown_rows(12))
        assert report.quarantined == {"MTR-5.unknown_connection": 12}
        rows = hub.store.query("SELECT record, rule, message, raw FROM quarantine ORDER BY record")
        rules = rows.column("rule").to_pylist()
        assert rules.count("MTR-5.unknown_connection") == 5
        assert rules.count(CAP_RULE) == 1
        summary = rows.filter(pa.compute.equal(rows.column("rule"), CAP_RULE)).to_pylist()[0]
        assert summary["record"] == 6
        assert "7 more refused record(s)" in summary["message"]
        assert "records 6..12" in summary["message"] and "ingest it again" in summary["message"]
        batch = hub.store.query("SELECT quarantined FROM batch").column(0).to_pylist()
        assert batch == [12]  # the batch counts every refusal
        again = hub.ingestor.ingest(_unknown_rows(12))
        assert again.already_ingested  # nothing changed: nothing written
        assert hub.store.query("SELECT count(*) FROM quarantine").column(0)[0].as_py() == 6
    finally:
        _close(hub)


def test_a_retry_of_a_capped_source_tries_every_record_again(tmp_path: Path) -> None:
    hub = _fresh_hub(tmp_path, "retry", cap=5)
    try:
        hub.ingestor.ingest(_unknown_rows(12))
        with hub.register.session() as s:
            s.record_connection(
                UNKNOWN, Commodity.ELECTRICITY, attributes("3x25"), date(2020, 1, 1)
            )
            entries = s.meter_index()
        hub.ingestor.index = ConnectionIndex(entries, rulebook.vee_rules().phase_voltage_v)
        retry = hub.ingestor.ingest(_unknown_rows(12))
        assert retry.retry_of is not None
        assert retry.total("accepted") == 12
        open_rows = hub.store.query("SELECT count(*) FROM quarantine WHERE resolved_by IS NULL")
        assert open_rows.column(0)[0].as_py() == 0
        assert len(hub.values("quarter_hours", "start")) == 12
    finally:
        _close(hub)


def test_below_the_cap_no_summary_is_written(hub: Hub) -> None:
    hub.ingestor.ingest(_unknown_rows(3))
    rules = hub.store.query("SELECT rule FROM quarantine").column(0).to_pylist()
    assert rules == ["MTR-5.unknown_connection"] * 3


def _content(hub: Hub) -> tuple[Any, ...]:
    refused = hub.store.query(
        "SELECT kind, record, ean, rule, message FROM quarantine ORDER BY record, rule"
    ).to_pylist()
    return _state(hub)[0], refused, _state(hub)[2]


def test_a_file_in_parts_of_a_few_rows_stores_what_one_transaction_stores(
    tmp_path: Path,
) -> None:
    path = tmp_path / "quarter_hours.parquet"
    _quarter_hours_file(path)
    one, parts = _fresh_hub(tmp_path, "one", cap=3), _fresh_hub(tmp_path, "parts", cap=3)
    parts.ingestor.part_rows = 20
    try:
        a = one.ingestor.ingest(read_meter_parquet(path, batch_rows=7))
        b = parts.ingestor.ingest(read_meter_parquet(path, batch_rows=7))
        assert (a.parts, b.parts) == (1, 9)
        keep = ("rows", "accepted", "duplicates", "estimated", "quarantined")
        assert {k: a.as_dict()[k] for k in keep} == {k: b.as_dict()[k] for k in keep}
        assert _content(one) == _content(parts)  # one summary of the refusals past the cap
        shas = parts.store.query("SELECT DISTINCT sha256 FROM batch").column(0).to_pylist()
        assert shas == [read_meter_parquet(path).sha256]  # every part renamed: committed
        again = parts.ingestor.ingest(read_meter_parquet(path, batch_rows=7))
        assert again.already_ingested or again.retry_of is not None
    finally:
        _close(one)
        _close(parts)


@pytest.mark.parametrize("checkpoint", [True, False])
def test_a_file_in_parts_leaves_nothing_to_checkpoint_at_close(
    tmp_path: Path, checkpoint: bool
) -> None:
    """Issue 13: the checkpoint settling a part held ~17 MB per million rows; left to
    the close it grew with the file. After each part the write-ahead log is empty, also
    when the caller holds the store for the whole file (one lease: no detach between
    the parts would settle it; the explicit checkpoint does). Without the checkpoint the
    log is left to the end of that lease."""
    path = tmp_path / "quarter_hours.parquet"
    _quarter_hours_file(path)
    hub = _fresh_hub(tmp_path, "parts")
    hub.ingestor.part_rows = 20
    hub.ingestor.checkpoint_parts = checkpoint
    wal = Path(hub.store.path + ".wal")
    try:
        with hub.store.lease():  # held across every part
            report = hub.ingestor.ingest(read_meter_parquet(path, batch_rows=7))
            left = wal.stat().st_size if wal.exists() else 0
        assert report.parts == 9
        assert (left == 0) is checkpoint
        assert not wal.exists() or wal.stat().st_size == 0  # the lease's end settles it
    finally:
        _close(hub)


def test_a_crash_between_parts_is_resumed_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.parquet"
    _quarter_hours_file(path)
    clean, crashed = _fresh_hub(tmp_path, "clean", cap=3), _fresh_hub(tmp_path, "crashed", cap=3)
    for hub in (clean, crashed):
        hub.ingestor.part_rows = 20
    try:
        clean.ingestor.ingest(read_meter_parquet(path, batch_rows=7))
        source = read_meter_parquet(path, batch_rows=7)
        stream = source.stream
        assert stream is not None

        def dies_after(count: int) -> Any:
            def pieces() -> Any:
                for n, piece in enumerate(stream(), start=1):
                    if n > count:
                        raise RuntimeError("killed")
                    yield piece

            return pieces

        source.stream = dies_after(10)
        with pytest.raises(RuntimeError):
            crashed.ingestor.ingest(source)
        committed = crashed.store.query("SELECT sha256 FROM batch").column(0).to_pylist()
        assert committed and all(":part" in sha for sha in committed)  # not yet the source
        assert crashed.store.committed_batch(source.sha256) is None
        source.stream = stream
        resumed = crashed.ingestor.ingest(source)
        assert resumed.parts == 9
        assert _content(clean) == _content(crashed)
    finally:
        _close(clean)
        _close(crashed)
