"""The batch import of connections files (REG-1..8): a bad row among many good ones is
refused with its rule and quarantined, the rest goes in, re-import changes nothing, and
the batch path ends where the one-row path ends for any mix of rows."""

from __future__ import annotations

import csv
import io
import itertools
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetpunt.domain.allocation import SapRequest
from meetpunt.domain.capacity import Commodity, require_electricity_capacity
from meetpunt.domain.ean import ean_from_serial
from meetpunt.register import Register, RegisterSession, csvio, open_register
from meetpunt.register.csvio import CONNECTION_COLUMNS, ImportReport, import_csv, import_file

from ..unit.domain.factories import attributes

PREFIX = "871234"


def good_row(serial: int, valid_from: str = "2020-01-01", **changes: str) -> dict[str, str]:
    """A sound connection row; single-phase on two serials in three."""
    single = serial % 3 != 0
    row = {
        "ean": ean_from_serial(PREFIX, serial),
        "commodity": "electricity",
        "valid_from": valid_from,
        "capacity": "1x35" if single else "3x25",
        "status": "IBD",
        "admin_switch": "on",
        "meter_type": "smart",
        "remote_reading": "standard",
        "postcode": f"{1000 + serial % 9000}AB",
        "house_number": str(1 + serial % 300),
        "house_number_suffix": "",
        "street": "Dorpsstraat",
        "city": "Meetdorp",
        "municipality": "Meetdorp",
        "woz_object_id": f"{serial:012d}",
        "substation": f"OS-{serial % 50}",
        "feeder": f"OS-{serial % 50}/K1",
        "phase": f"L{1 + serial % 3}" if single else "",
        "customer_type": "household",
        "active_customer": "false",
        "solar_kwp": "",
        "solar_registered_on": "",
    }
    return row | changes


def as_csv(rows: Sequence[dict[str, str] | list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CONNECTION_COLUMNS)
    for row in rows:
        writer.writerow(list(row.values()) if isinstance(row, dict) else row)
    return out.getvalue()


def register_state(s: RegisterSession) -> tuple[object, ...]:
    """Everything a connections import can change, comparable across registers."""
    return (
        list(s.connection_versions()),
        [(e.ean, e.commodity, e.valid_from, e.valid_to, e.status) for e in s.meter_index()],
        list(s.all_secondary_status_versions()),
    )


def summary(report: ImportReport) -> tuple[object, ...]:
    refused = [(r.line, r.rule, r.message) for r in report.refused]
    return report.rows, report.inserted, report.changed, report.unchanged, refused


def test_bad_rows_among_many_are_refused_by_rule_and_the_rest_goes_in(
    register: Register, db_url: str, tmp_path: Path
) -> None:
    with register.session() as s:  # a connection with an extra metering point (REG-5)
        s.record_connection(
            ean_from_serial(PREFIX, 1), Commodity.ELECTRICITY, attributes("3x25"), date(2019, 1, 1)
        )
        granted = s.request_sap(
            ean_from_serial(PREFIX, 1),
            SapRequest(capacity=require_electricity_capacity("3x25")),
            date(2019, 6, 1),
        )
    assert granted.ean is not None
    rows: list[dict[str, str] | list[str]] = [good_row(n) for n in range(2, 1202)]
    rows += [good_row(n, "2023-06-01", solar_kwp="4.2", solar_registered_on="2023-06-01")
             for n in range(2, 1202, 10)]  # fmt: skip
    bad: dict[int, tuple[dict[str, str] | list[str], str]] = {
        5: (good_row(9001, ean="871234000000000000"), "REG-1.check_digit"),
        130: (good_row(9002, postcode="56A7BD"), "REG-2.postcode"),
        400: (good_row(9004, phase=""), "REG-2.phase"),
        401: (good_row(9005, status="ACTIVE"), "REG-2.status"),
        777: (good_row(9006, capacity="2x25"), "REG-3.capacity_format"),
        900: (good_row(9007, valid_from="01-03-2024"), "REG-6.date"),
        1000: (good_row(9008, ean=granted.ean), "REG-1.unique"),
        1100: ([*good_row(9009).values(), "extra"], "REG-import.columns"),
        1250: (good_row(9010, solar_kwp="-1"), "REG-8.solar_kwp"),
        # beyond the BAG's house numbers and the database's integers
        1260: (good_row(9012, house_number="9" * 20), "REG-2.house_number"),
        # too long for its column: refused before the database sees it, on every engine
        1300: (good_row(9011, street="x" * 200), "REG-import.too_long"),
    }
    for index, (row, _) in sorted(bad.items()):
        rows.insert(index, row)
    # the connection with the SAP goes out of service: its SAP lapses (REG-5)
    rows.append(good_row(1, "2024-01-01", capacity="3x25", phase="", status="UBD"))
    path = tmp_path / "connections.csv"
    path.write_text(as_csv(rows), encoding="utf-8")
    with mock.patch.object(csvio, "BATCH_ROWS", 250), register.session() as s:
        report = import_file(s, path)
    expected = [(index + 2, rule) for index, (_, rule) in sorted(bad.items())]
    assert [(r.line, r.rule) for r in report.refused] == expected
    assert report.rows == len(rows)
    assert report.inserted + report.changed == len(rows) - len(bad)
    with register.session() as s:
        assert [(q.line, q.rule) for q in s.quarantined()] == expected
    with register.session() as s:
        before = register_state(s)
        eans = {v.ean for v in s.connection_versions()}
        assert len(eans) == 1201  # the good ones, and nothing of a refused row
        assert ean_from_serial(PREFIX, 9002) not in eans
        statuses = [(v.status.value, v.valid_from) for _, v in s.all_secondary_status_versions()]
        assert statuses == [("in_construction", date(2019, 6, 1)), ("lapsed", date(2024, 1, 1))]
    with mock.patch.object(csvio, "BATCH_ROWS", 250), register.session() as s:
        again = import_file(s, path)
    assert (again.inserted, again.changed) == (0, 0)
    assert again.unchanged == len(rows) - len(bad)
    assert [(r.line, r.rule) for r in again.refused] == expected
    with register.session() as s:
        assert register_state(s) == before


# -- the batch path equals the one-row path, for any mix of rows ------------------------


@pytest.fixture(scope="module")
def twin_registers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Register, ...]]:
    """Two SQLite registers that receive the same imports: batch and one-row path."""
    folder = tmp_path_factory.mktemp("paths")
    registers = tuple(open_register(f"sqlite:///{folder / name}.sqlite") for name in "ab")
    for register in registers:  # the same connection with a SAP in both (REG-5)
        with register.session() as s:
            s.record_connection(
                ean_from_serial(PREFIX, 1), Commodity.ELECTRICITY, attributes(), date(2019, 1, 1)
            )
            s.request_sap(
                ean_from_serial(PREFIX, 1),
                SapRequest(capacity=require_electricity_capacity("3x25")),
                date(2019, 6, 1),
            )
    yield registers
    for register in registers:
        register.dispose()


_POOL = itertools.count(100)
DAYS = ["2020-01-01", "2020-06-01", "2021-01-01", "2021-06-01", "2022-01-01"]
CHANGES = st.sampled_from(
    [
        {},
        {},
        {"status": "UBD"},
        {"status": "SLP"},
        {"capacity": "1x25", "phase": "L2"},
        {"capacity": "3x25", "phase": ""},
        {"solar_kwp": "4.2", "solar_registered_on": "2021-01-01"},
        {"solar_kwp": "1.23456"},  # beyond the column's scale: the one-row path
        {"active_customer": "true"},
        {"postcode": "1234 ab"},
        {"postcode": "0000AA"},  # REG-2.postcode
        {"phase": "L4"},  # REG-2.phase
        {"commodity": "gas", "capacity": "G4", "phase": ""},
        {"commodity": "gas", "capacity": "G4", "phase": "L1"},  # REG-2.phase
        {"house_number": "-3"},  # REG-2.house_number
        {"meter_type": "ferraris", "remote_reading": "administratively_off"},  # REG-7
        {"valid_from": "2021-13-01"},  # REG-6.date
        {"house_number": "9" * 20},  # the database refuses the batch: halves, then rows
    ]
)


@st.composite
def connection_files(draw: st.DrawFn) -> list[list[dict[str, str]]]:
    """One to three files of rows over a few connections (new and known ones, one with
    a SAP, one a SAP's own EAN), any dates, any order, good and bad rows mixed."""
    fresh = [next(_POOL) for _ in range(3)]
    serials = st.sampled_from([1, 2, *fresh])  # 1 carries a SAP, 2 is shared by examples
    row = st.builds(
        lambda serial, day, changes: good_row(serial, day) | changes,
        serials,
        st.sampled_from(DAYS),
        CHANGES,
    )
    return draw(st.lists(st.lists(row, max_size=10), min_size=1, max_size=3))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(connection_files())
def test_the_batch_path_ends_where_the_one_row_path_ends(
    twin_registers: tuple[Register, Register], files: list[list[dict[str, str]]]
) -> None:
    batch, one_by_one = twin_registers
    for number, rows in enumerate(files):
        text = as_csv(rows)
        with mock.patch.object(csvio, "BATCH_ROWS", 4), batch.session() as s:
            fast = import_csv(s, text, f"file{number}.csv")
        with one_by_one.session() as s:
            slow = import_csv(s, text, f"file{number}.csv", row_by_row=True)
        assert summary(fast) == summary(slow)
    with batch.session() as a, one_by_one.session() as b:
        assert register_state(a) == register_state(b)
        assert [(q.line, q.rule, q.record) for q in a.quarantined()] == [
            (q.line, q.rule, q.record) for q in b.quarantined()
        ]


# -- the parallel path (worker processes parse and check) equals the one-row path -------


class _UndoError(Exception):
    """Rolls back the session it leaves, so both paths start from the same register."""


def _import_twice(register: Register, text: str, **options: Any) -> tuple[object, ...]:
    """What importing ``text`` twice does (reports, register, quarantine), undone after."""
    seen: list[tuple[object, ...]] = []
    with pytest.raises(_UndoError), register.session() as s:
        first = import_csv(s, text, "big.csv", **options)
        again = import_csv(s, text, "big.csv", **options)
        quarantined = [(q.source, q.line, q.rule, q.record) for q in s.quarantined()]
        seen.append((summary(first), summary(again), register_state(s), quarantined))
        raise _UndoError
    return seen[0]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_parallel_path_ends_where_the_one_row_path_ends(
    register: Register, db_url: str, method: str
) -> None:
    with register.session() as s:  # a connection with a SAP: its rows go one by one
        s.record_connection(
            ean_from_serial(PREFIX, 1), Commodity.ELECTRICITY, attributes("3x25"), date(2019, 1, 1)
        )
        s.request_sap(
            ean_from_serial(PREFIX, 1),
            SapRequest(capacity=require_electricity_capacity("3x25")),
            date(2019, 6, 1),
        )
    rows: list[dict[str, str] | list[str]] = [good_row(n) for n in range(2, 120)]
    rows += [good_row(n, "2021-01-01", status="UBD") for n in range(2, 120, 7)]
    rows[10] = good_row(500, street='De "Lange"\nStraat')  # a quoted cell over two lines
    rows[20] = good_row(501, postcode="56A7BD")  # REG-2.postcode
    rows[30] = [*good_row(502).values(), "extra"]  # REG-import.columns
    rows[40] = list(good_row(503).values())[:12]  # too few cells: REG-4.customer_type
    rows[50] = good_row(504, house_number="9" * 20)  # REG-2.house_number
    rows[60] = good_row(1, "2024-01-01", capacity="3x25", phase="", status="UBD")  # SAP lapses
    rows[70] = good_row(505, solar_kwp="1.23456")  # a database would round it: REG-8.solar_kwp
    rows[80] = good_row(506, street="x" * 200)  # too long for the column: REG-import.too_long
    lines = as_csv(rows).splitlines(keepends=True)
    lines[25:25] = ["\n", "\n"]  # blank lines are skipped, and still counted as lines
    lines[90] = lines[90].replace("Dorpsstraat", 'Dorps"straat')  # a stray quote, unquoted
    text = "".join(lines)
    expected = _import_twice(register, text, row_by_row=True)
    spawned = mock.patch.object(
        csvio, "_process_context", lambda: multiprocessing.get_context(method)
    )
    pools = mock.patch.object(csvio, "ProcessPoolExecutor", wraps=ProcessPoolExecutor)
    with (
        mock.patch.object(csvio, "CHUNK_ROWS", 9),
        mock.patch.object(csvio, "BATCH_ROWS", 25),
        spawned,
        pools as pool,
    ):
        assert _import_twice(register, text, parallel_above=20) == expected
    assert pool.call_count == 2  # once per import: the workers did check the rows
    quarantined = expected[3]
    assert isinstance(quarantined, list)
    assert {rule for _, _, rule, _ in quarantined} >= {
        "REG-2.postcode",
        "REG-import.columns",
        "REG-4.customer_type",
        "REG-2.house_number",
        "REG-8.solar_kwp",
        "REG-import.too_long",
    }
    with mock.patch.object(csvio, "ProcessPoolExecutor") as unused:  # a small file: no pool
        assert _import_twice(register, text) == expected
    unused.assert_not_called()
