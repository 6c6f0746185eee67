"""Readers (MTR-3/4): CSV and Parquet in our names and units, bad cells refused by row."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.errors import MeterDataError
from meetpunt.io.files import detect_kind, parse_meter_csv, parse_phase, read_meter_file
from meetpunt.meterdata.store import open_store
from tests.meterdata.conftest import E3X25, Hub, utc

READER_RULES = {
    "MTR-4.parse",
    "MTR-3.naive",
    "MTR-3.missing_time",
    "MTR-4.out_of_range",
    "MTR-2.encoding",
    "MTR-2.field_too_large",
}
"""The rules a CSV reader refuses a single record with."""


def test_a_csv_with_bad_cells_refuses_those_rows_and_keeps_the_rest(
    hub: Hub, tmp_path: Path
) -> None:
    path = tmp_path / "daily.csv"
    path.write_text(
        "ean,at,import_t1_kwh,import_t2_kwh,export_t1_kwh,export_t2_kwh\n"
        f"{E3X25},2025-06-01T00:00:00+02:00,1000.5,2000.25,0,0\n"
        f"{E3X25},2025-06-02T00:00:00,1001,2001,0,0\n"
        f"{E3X25},2025-06-03T00:00:00+02:00,lots,2002,0,0\n"
        f"{E3X25},2025-06-04T00:00:00Z,1003.125,2003,,\n",
        encoding="utf-8",
    )
    source = read_meter_file(path, "daily_readings").whole()
    assert [(r.record, r.rule) for r in source.refused] == [(3, "MTR-3.naive"), (4, "MTR-4.parse")]
    assert "lots" in source.refused[1].raw
    report = hub.ingestor.ingest(source)
    assert report.total("accepted") == 2 and report.quarantined == {
        "MTR-3.naive": 1,
        "MTR-4.parse": 1,
    }
    stored = hub.values("daily_readings", "at", "import_t1_wh", "import_t2_wh", "export_t1_wh")
    assert stored == [
        (utc(2025, 5, 31, 22), 1_000_500, 2_000_250, 0),
        (utc(2025, 6, 4), 1_003_125, 2_003_000, None),
    ]


def test_parquet_columns_are_mapped_to_our_names_and_units(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "gas_hourly.parquet"
    pq.write_table(
        pa.table(
            {
                "gas_ean": ["871687410000000044"],
                "start": pa.array([utc(2025, 6, 1, 10)], pa.timestamp("ms", "UTC")),
                "volume_m3": [0.125],
                "reading_m3": [1234.5],
            }
        ),
        path,
    )
    source = read_meter_file(path).whole()
    table = source.tables["gas_hourly"]
    assert table.column("volume_dm3").to_pylist() == [125]
    assert table.column("reading_dm3").to_pylist() == [1_234_500]


def test_timestamps_without_a_zone_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "quarter_hours.parquet"
    pq.write_table(
        pa.table(
            {
                "ean": [E3X25],
                "start": pa.array([0], pa.timestamp("s")),
                "import_wh": [1],
                "export_wh": [0],
            }
        ),
        path,
    )
    with pytest.raises(MeterDataError, match="no time zone"):
        read_meter_file(path)


def test_the_kind_comes_from_the_name_or_the_columns() -> None:
    assert detect_kind("quarter_hours.2025-06", []).name == "quarter_hours"
    assert detect_kind("x", ["ean", "start", "phase", "voltage_v"]).name == "voltages_10min"
    with pytest.raises(MeterDataError, match="pass --kind"):
        detect_kind(
            "x", ["ean", "at", "import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh"]
        )


cells = st.one_of(
    st.text(alphabet='0123456789.-+eE:TZ ,"abc', max_size=12),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["", "nan", "inf", "2025-06-01T00:00:00Z", "2025-06-01T00:00:00"]),
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=6), max_size=12))
def test_the_csv_reader_accounts_for_every_row_whatever_the_cells_hold(
    rows: list[list[str]],
) -> None:
    header = "ean,start,import_wh,export_wh"
    lines = [",".join(f'"{c}"' if "," in c or '"' in c else c for c in row) for row in rows]
    text = "\n".join([header, *lines]) + "\n"
    source = parse_meter_csv(text, "fuzz.csv", "quarter_hours", "x")
    parsed = list(csv.reader(io.StringIO(text)))[1:]
    non_empty = sum(1 for row in parsed if any(c.strip() for c in row))
    assert source.tables["quarter_hours"].num_rows + len(source.refused) == non_empty
    assert all(r.rule in READER_RULES and r.record >= 2 for r in source.refused)


VOLTAGES = "ean,start,phase,voltage_v\n"


def _voltages(*phases: str) -> str:
    return VOLTAGES + "".join(f"{E3X25},2025-06-01T00:00:00Z,{p},230.0\n" for p in phases)


def test_a_csv_phase_is_l1_to_l3_as_dsmr_names_it_or_its_number(hub: Hub) -> None:
    text = _voltages("L1", "l2", " L3 ", "1", "2", "3")
    source = parse_meter_csv(text, "voltages.csv", "voltages_10min", "x")
    assert source.refused == []
    assert source.tables["voltages_10min"].column("phase").to_pylist() == [1, 2, 3, 1, 2, 3]
    # L1 and 1 are the same key: the second is a duplicate, the rest is stored
    report = hub.ingestor.ingest(parse_meter_csv(_voltages("L1", "1", "L2"), "v.csv", None, "y"))
    assert (report.total("accepted"), report.total("duplicates")) == (2, 1)


def test_any_other_phase_refuses_its_row_with_mtr_4_parse() -> None:
    text = _voltages("L4", "L0", "0", "4", "N", "phase 1", "-1", "300", "L1", "1.5")
    source = parse_meter_csv(text, "voltages.csv", "voltages_10min", "x")
    assert source.tables["voltages_10min"].column("phase").to_pylist() == [1]
    assert [r.record for r in source.refused] == [2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert {r.rule for r in source.refused} == {"MTR-4.parse"}
    assert "not a phase; write L1, L2 or L3" in source.refused[0].message


@settings(max_examples=100, deadline=None)
@given(
    number=st.sampled_from([1, 2, 3]),
    spelling=st.sampled_from(["L{}", "l{}", "{}", "{}.0"]),
    left=st.sampled_from(["", " ", "\t"]),
    right=st.sampled_from(["", " ", "\t"]),
)
def test_every_accepted_spelling_of_a_phase_is_its_number(
    number: int, spelling: str, left: str, right: str
) -> None:
    cell = left + spelling.format(number) + right
    assert parse_phase(cell) == number
    source = parse_meter_csv(_voltages(cell), "v.csv", "voltages_10min", "x")
    assert source.refused == []
    assert source.tables["voltages_10min"].column("phase").to_pylist() == [number]


@settings(max_examples=200, deadline=None)
@given(cell=st.text(alphabet="Ll0123456789.-+ eEnN", min_size=1, max_size=5))
def test_a_phase_cell_is_1_2_or_3_or_refused(cell: str) -> None:
    try:
        assert parse_phase(cell) in (1, 2, 3)
    except ValueError as exc:
        assert "not a phase" in str(exc)


def test_a_store_of_another_layout_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    open_store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(MeterDataError, match=r"layout version 0.*ingest the sources again"):
        open_store(path)
