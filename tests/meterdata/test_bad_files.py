"""Meter files that are bad as a whole or in one record: a clear error naming the file or
record and the rule, never a traceback; the rest goes on (MTR-2, MTR-3, MTR-4)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from meetpunt.app.hub import ingest_paths, refused_files
from meetpunt.cli import app
from meetpunt.errors import MeterDataError
from meetpunt.io.files import MAX_FIELD_CHARS, kind_named, read_meter_file
from meetpunt.meterdata.kinds import KINDS
from meetpunt.register import default_database_url
from tests.meterdata.conftest import E3X25, Hub, build_register, utc

runner = CliRunner()
HEADER = "ean,start,import_wh,export_wh\n"


def _row(i: int, value: str = "10") -> str:
    return f"{E3X25},2025-06-03T{i // 4:02d}:{15 * (i % 4):02d}:00Z,{value},0\n"


def _rules(path: Path, kind: str | None = None) -> list[tuple[int, str]]:
    return [(r.record, r.rule) for r in read_meter_file(path, kind).whole().refused]


def _refused_whole(path: Path, rule: str, kind: str | None = None) -> MeterDataError:
    with pytest.raises(MeterDataError) as caught:
        read_meter_file(path, kind).whole()
    assert caught.value.rules == (rule,)
    assert str(path) in str(caught.value) and caught.value.hint
    return caught.value


def test_a_latin_1_line_is_refused_on_its_own_and_the_rest_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.csv"
    data = (HEADER + _row(0) + f"{E3X25},2025-06-03T00:15:00Z,10,0,caf\xe9\n" + _row(2)).encode(
        "latin-1"
    )
    path.write_bytes(data)
    assert _rules(path) == [(3, "MTR-2.encoding")]
    source = read_meter_file(path).whole()
    assert source.tables["quarter_hours"].num_rows == 2
    assert "\\xe9" in source.refused[0].raw  # the raw line kept, its byte spelled out


@pytest.mark.parametrize(
    ("data", "what"),
    [
        ((HEADER + _row(0)).encode("utf-16"), "UTF-16"),
        (b"\x00\x01\x02PK\x03\x04" + bytes(range(256)) * 4, "binary"),
    ],
)
def test_a_utf_16_or_binary_csv_is_refused_whole(tmp_path: Path, data: bytes, what: str) -> None:
    path = tmp_path / "quarter_hours.csv"
    path.write_bytes(data)
    error = _refused_whole(path, "MTR-2.encoding")
    assert what in str(error)


def test_a_utf_8_csv_with_a_byte_order_mark_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.csv"
    path.write_bytes(("\ufeff" + HEADER + _row(0)).encode("utf-8"))
    assert read_meter_file(path).whole().tables["quarter_hours"].num_rows == 1


@pytest.mark.parametrize("size", [MAX_FIELD_CHARS + 1, 3 << 20])
def test_a_field_over_128_kb_refuses_its_record_and_the_rest_goes_on(
    tmp_path: Path, size: int
) -> None:
    path = tmp_path / "quarter_hours.csv"
    path.write_text(HEADER + _row(0) + _row(1, "9" * size) + _row(2), encoding="utf-8")
    assert _rules(path) == [(3, "MTR-2.field_too_large")]
    source = read_meter_file(path).whole()
    assert source.tables["quarter_hours"].column("record").to_pylist() == [2, 4]
    assert len(source.refused[0].raw) < 5000  # the quarantine keeps a bounded raw


def test_a_quoted_field_over_128_kb_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.csv"
    huge = '"' + "a\n" * (MAX_FIELD_CHARS // 2 + 10) + '"'
    path.write_text(HEADER + _row(0) + f"{E3X25},{huge},1,0\n" + _row(2), encoding="utf-8")
    source = read_meter_file(path).whole()
    assert "MTR-2.field_too_large" in {r.rule for r in source.refused}
    assert source.tables["quarter_hours"].num_rows >= 1


@pytest.mark.parametrize(
    "header", ["ean,start,import_wh,import_kwh,export_wh", "ean,start,start,import_wh,export_wh"]
)
def test_a_duplicate_column_refuses_the_csv(tmp_path: Path, header: str) -> None:
    path = tmp_path / "quarter_hours.csv"
    path.write_text(header + "\n", encoding="utf-8")
    _refused_whole(path, "MTR-2.duplicate_column")


def test_a_duplicate_column_refuses_the_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.parquet"
    table = pa.table(
        {
            "ean": [E3X25],
            "start": pa.array([utc(2025, 6, 3)], pa.timestamp("us", "UTC")),
            "import_wh": [1],
            "import_kwh": [0.002],
            "export_wh": [0],
        }
    )
    pq.write_table(table, path)
    error = _refused_whole(path, "MTR-2.duplicate_column")
    assert "import_wh" in str(error) and "import_kwh" in str(error)


def test_a_folder_given_as_a_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "quarter_hours.csv"
    folder.mkdir()
    _refused_whole(folder, "MTR-2.not_a_file")


def test_an_unknown_kind_is_refused_listing_the_kinds() -> None:
    with pytest.raises(MeterDataError) as caught:
        kind_named("bogus")
    assert caught.value.rules == ("MTR-2.unknown_kind",)
    assert all(name in str(caught.value) for name in KINDS)
    assert kind_named("quarter_hours") is KINDS["quarter_hours"]


@pytest.mark.parametrize("cell", ["1e30", "inf", "-" + "9" * 30, "nan"])
def test_a_number_the_column_cannot_hold_refuses_its_row(tmp_path: Path, cell: str) -> None:
    path = tmp_path / "quarter_hours.csv"
    path.write_text(HEADER + _row(0) + _row(1, cell) + _row(2), encoding="utf-8")
    assert _rules(path) == [(3, "MTR-4.out_of_range")]


def test_a_big_number_that_fits_passes(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.csv"
    path.write_text(HEADER + _row(0, "1e15") + _row(1, "123456789012"), encoding="utf-8")
    assert _rules(path) == []


def test_parquet_values_a_column_cannot_hold_refuse_their_rows(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.parquet"
    table = pa.table(
        {
            "ean": [E3X25] * 4,
            "start": pa.array(
                [utc(2025, 6, 3, 0, 15 * i) for i in range(4)], pa.timestamp("us", "UTC")
            ),
            "import_kwh": [0.1, 1e30, float("inf"), 0.2],
            "export_kwh": [0.0, 0.0, 0.0, 0.0],
        }
    )
    pq.write_table(table, path)
    source = read_meter_file(path).whole()
    assert [(r.record, r.rule) for r in source.refused] == [
        (2, "MTR-4.out_of_range"),
        (3, "MTR-4.out_of_range"),
    ]
    assert source.tables["quarter_hours"].column("import_wh").to_pylist() == [100, 200]


def test_a_parquet_phase_outside_1_to_3_refuses_its_row(tmp_path: Path, hub: Hub) -> None:
    path = tmp_path / "voltages_10min.parquet"
    table = pa.table(
        {
            "ean": [E3X25] * 3,
            "start": pa.array([utc(2025, 6, 3, 0, 10)] * 3, pa.timestamp("us", "UTC")),
            "phase": pa.array([1, 9, 3], pa.int8()),
            "voltage_v": [230.0, 231.0, 229.0],
        }
    )
    pq.write_table(table, path)
    assert _rules(path) == [(2, "MTR-4.parse")]
    report = hub.ingestor.ingest(read_meter_file(path))
    assert (report.total("accepted"), report.quarantined) == (2, {"MTR-4.parse": 1})


def test_a_null_parquet_time_is_refused_as_a_missing_time(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.parquet"
    table = pa.table(
        {
            "ean": [E3X25, "not an EAN"],
            "start": pa.array([utc(2025, 6, 3), None], pa.timestamp("us", "UTC")),
            "import_wh": [1, 2],
            "export_wh": [0, 0],
        }
    )
    pq.write_table(table, path)
    assert _rules(path) == [(2, "MTR-3.missing_time")]  # not MTR-5.unknown_connection


def test_a_damaged_parquet_file_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 100)
    _refused_whole(path, "MTR-2.unreadable")


def _folder_with_a_corrupt_file(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "quarter_hours.csv").write_text(HEADER + _row(0) + _row(1), encoding="utf-8")
    (folder / "voltages_10min.csv").write_bytes((HEADER + _row(0)).encode("utf-16"))
    (folder / "quarter_hours.parquet").write_bytes(b"not parquet at all")
    return folder


def test_a_corrupt_file_in_a_folder_does_not_stop_the_others(tmp_path: Path, hub: Hub) -> None:
    reports = ingest_paths(hub.store, hub.register, [_folder_with_a_corrupt_file(tmp_path)])
    by_name = {Path(r.source).name: r for r in reports}
    assert by_name["quarter_hours.csv"].total("accepted") == 2
    assert by_name["voltages_10min.csv"].error is not None
    assert by_name["voltages_10min.csv"].error["rule"] == "MTR-2.encoding"
    assert by_name["quarter_hours.parquet"].error["rule"] == "MTR-2.unreadable"
    assert refused_files(reports) == 2


def test_the_cli_names_refused_files_goes_on_and_exits_1(tmp_path: Path) -> None:
    build_register(default_database_url()).dispose()
    folder = _folder_with_a_corrupt_file(tmp_path)
    result = runner.invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 1, result.output
    assert "1 file(s) ingested, 2 refused whole" in result.output
    assert "MTR-2.encoding" in result.output and "MTR-2.unreadable" in result.output
    as_json = runner.invoke(app, ["ingest", str(folder), "--json"])
    lines = [json.loads(line) for line in as_json.output.splitlines()]
    assert [r["error"]["rule"] for r in lines if r["error"]] == [
        "MTR-2.unreadable",
        "MTR-2.encoding",
    ]


def test_the_cli_refuses_an_unknown_kind_listing_the_kinds(tmp_path: Path) -> None:
    build_register(default_database_url()).dispose()
    path = tmp_path / "data.csv"
    path.write_text(HEADER + _row(0), encoding="utf-8")
    result = runner.invoke(app, ["ingest", "--kind", "bogus", str(path), "--json"])
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    assert error["rule"] == "MTR-2.unknown_kind"
    assert "quarter_hours" in error["message"] and "voltages_10min" in error["message"]


def test_the_cli_refuses_a_device_given_as_a_file_without_a_traceback() -> None:
    build_register(default_database_url()).dispose()
    result = runner.invoke(app, ["ingest", "/dev/null", "--json"])
    assert result.exit_code == 1, result.output
    (report,) = [json.loads(line) for line in result.output.splitlines()]
    assert report["error"]["rule"] == "MTR-2.not_a_file"


def test_a_csv_without_a_needed_column_is_refused_whole(tmp_path: Path) -> None:
    """A quarter-hour file without its import column cannot be read row by row: the
    file is refused, naming it (MTR-2.columns)."""
    path = tmp_path / "quarter_hours.csv"
    path.write_text("ean,start,export_wh\n" + f"{E3X25},2025-06-03T00:00:00Z,0\n")
    _refused_whole(path, "MTR-2.columns", "quarter_hours")
