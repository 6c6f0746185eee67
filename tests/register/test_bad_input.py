"""Bad register files give a refusal naming the record and the rule, never a traceback,
and one bad record never aborts the file (REG-import.*, REG-2, REG-3, REG-8); SQLite and
PostgreSQL refuse the same rows with the same rules."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetpunt.register import Register
from meetpunt.register.connections import attributes_to_row, storage_finding
from meetpunt.register.csvio import (
    CONNECTION_COLUMNS,
    MAX_FIELD_CHARS,
    ImportReport,
    import_csv,
    import_file,
)
from tests.unit.domain.factories import attributes

from .test_bulk_import import as_csv, good_row

SAP_HEADER = "ean,primary_ean,capacity,status,valid_from,purpose\n"
CONTRACT_HEADER = (
    "ean,commodity,supplier,contract_holder,contract_type,tariff,start_date,end_date\n"
)

# the bad rows, each between good ones, and the rule that must refuse it
BAD_CELLS: list[tuple[dict[str, str], str]] = [
    ({"street": "Toren\0allee"}, "REG-import.control_character"),
    ({"street": "x" * 200}, "REG-import.too_long"),
    ({"house_number": "12345678901"}, "REG-2.house_number"),
    ({"house_number": "²"}, "REG-2.house_number"),
    ({"house_number": "1" + "0" * 22}, "REG-2.house_number"),
    ({"house_number": "10²²"}, "REG-2.house_number"),  # str.isdigit() says yes
    ({"house_number": "١٢"}, "REG-2.house_number"),  # Arabic-Indic digits
    ({"house_number": "100000"}, "REG-2.house_number"),
    ({"solar_kwp": "NaN"}, "REG-8.solar_kwp"),
    ({"solar_kwp": "Infinity"}, "REG-8.solar_kwp"),
    ({"solar_kwp": "-inf"}, "REG-8.solar_kwp"),
    ({"solar_kwp": "1e30"}, "REG-8.solar_kwp"),
    ({"capacity": "3x99999", "phase": ""}, "REG-3.capacity_range"),
    ({"capacity": "١x٣٥"}, "REG-3.capacity_format"),  # digits 0-9 only, as in EANs
    ({"city": "y" * 81}, "REG-import.too_long"),
    ({"feeder": "K\x1b[31m"}, "REG-import.control_character"),
]


def _file_with(bad: list[dict[str, str]]) -> str:
    rows: list[dict[str, str] | list[str]] = []
    for index, changes in enumerate(bad):
        rows.append(good_row(2 * index + 2))
        rows.append(good_row(2 * index + 3) | changes)
    rows.append(good_row(1000))
    return as_csv(rows)


def _outcome(report: ImportReport) -> tuple[object, ...]:
    return report.rows, report.inserted, [(r.line, r.rule) for r in report.refused]


@pytest.mark.parametrize("row_by_row", [False, True])
def test_each_bad_row_refused_by_its_rule_on_every_engine(
    register: Register, row_by_row: bool
) -> None:
    """The same file on SQLite and PostgreSQL (the ``register`` fixture runs both):
    the same rows refused with the same rules, in the batch path and the one-row path,
    the good rows in, the refused ones in quarantine."""
    text = _file_with([changes for changes, _ in BAD_CELLS])
    with register.session() as s:
        report = import_csv(s, text, "bad.csv", row_by_row=row_by_row)
    expected = [(2 * index + 3, rule) for index, (_, rule) in enumerate(BAD_CELLS)]
    assert _outcome(report) == (2 * len(BAD_CELLS) + 1, len(BAD_CELLS) + 1, expected)
    with register.session() as s:
        assert [(q.line, q.rule) for q in s.quarantined()] == expected


def test_good_values_near_the_limits_still_pass(register: Register) -> None:
    edge = [
        {"street": "x" * 120, "house_number": "99999"},
        {"solar_kwp": "999999999.999"},
        {"capacity": "3x1600", "phase": ""},
        {"city": "’s-Hertogenbosch", "street": "Café Ölstraße"},
        {"street": "tab\tin street"},
    ]
    with register.session() as s:
        report = import_csv(s, _file_with(edge), "edge.csv")
    assert report.refused == []
    assert report.inserted == 2 * len(edge) + 1


def test_a_cell_over_128_kib_refuses_its_record_only(register: Register) -> None:
    text = _file_with([{"street": "z" * (MAX_FIELD_CHARS + 10)}])
    unquoted = text
    quoted = text.replace("z" * 20, '"' + "z" * 20, 1).replace(",Meetdorp", '",Meetdorp', 1)
    for source in (unquoted, quoted):
        for row_by_row in (False, True):
            with register.session() as s:
                report = import_csv(s, source, "long.csv", row_by_row=row_by_row)
            assert [(r.line, r.rule) for r in report.refused] == [(3, "REG-import.record")]
            assert report.rows == 3


def test_latin1_file_refuses_only_rows_with_non_utf8_bytes(
    register: Register, tmp_path: Path
) -> None:
    rows: list[dict[str, str] | list[str]] = [
        good_row(2),
        good_row(3, street="Fröbelstraat"),
        good_row(4),
    ]
    path = tmp_path / "latin1.csv"
    path.write_bytes(as_csv(rows).encode("latin-1"))
    with register.session() as s:
        report = import_file(s, path)
    assert _outcome(report) == (3, 2, [(3, "REG-import.encoding")])
    assert "\\xf6" in report.refused[0].message
    with register.session() as s:
        assert "Fr\\xf6belstraat" in s.quarantined()[0].record


def test_utf16_file_with_its_bom_is_read(register: Register, tmp_path: Path) -> None:
    rows: list[dict[str, str] | list[str]] = [good_row(2, street="Fröbelstraat"), good_row(3)]
    path = tmp_path / "utf16.csv"
    path.write_text(as_csv(rows), encoding="utf-16")
    with register.session() as s:
        report = import_file(s, path)
    assert _outcome(report) == (2, 2, [])


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01\x02\xff\xfe\x00binary\n\x89PNG\r\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "ean,commodity\n".encode("utf-16-le"),  # UTF-16 without its BOM
        b"",
    ],
)
def test_binary_file_refused_at_its_header(
    register: Register, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(content)
    with register.session() as s:
        report = import_file(s, path)
    assert [(r.line, r.rule) for r in report.refused] == [(1, "REG-import.header")]


def test_a_folder_is_refused_as_a_file(register: Register, tmp_path: Path) -> None:
    with register.session() as s:
        report = import_file(s, tmp_path)
    assert [(r.line, r.rule) for r in report.refused] == [(0, "REG-import.file")]


def test_a_column_named_twice_refuses_the_file(register: Register) -> None:
    header = ",".join([*CONNECTION_COLUMNS, "street"])
    row = ",".join([*good_row(2).values(), "Other street"])
    with register.session() as s:
        report = import_csv(s, f"{header}\n{row}\n", "twice.csv")
    assert [(r.line, r.rule) for r in report.refused] == [(1, "REG-import.duplicate_column")]
    assert "street" in report.refused[0].message
    assert report.inserted == 0


def test_secondary_and_contract_files_refuse_the_same_on_every_engine(
    register: Register,
) -> None:
    from meetpunt.domain.ean import ean_from_serial

    with register.session() as s:
        import_csv(s, as_csv([good_row(3, capacity="3x25", phase="")]), "c.csv")
    primary = ean_from_serial("871234", 3)
    sap = ean_from_serial("871235", 1)
    saps = SAP_HEADER + f"{sap},{primary},3x25,in_service,2023-01-01,{'p' * 201}\n"
    saps += f"{sap},{primary},3x25,in_service,2023-01-01,char\0ger\n"
    saps += f"{sap},{primary},3x99999,in_service,2023-01-01,charger\n"
    contracts = CONTRACT_HEADER + f"{primary},electricity,8710000000017,{'h' * 201},"
    contracts += "variable,double,2024-01-01,\n"
    contracts += f"{primary},electricity,8710000000017,J.\0Doe,variable,double,2024-01-01,\n"
    with register.session() as s:
        sap_report = import_csv(s, saps, "saps.csv")
        contract_report = import_csv(s, contracts, "contracts.csv")
    assert [(r.line, r.rule) for r in sap_report.refused] == [
        (2, "REG-import.too_long"),
        (3, "REG-import.control_character"),
        (4, "REG-3.capacity_range"),
    ]
    assert [(r.line, r.rule) for r in contract_report.refused] == [
        (2, "REG-import.too_long"),
        (3, "REG-import.control_character"),
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    street=st.text(min_size=0, max_size=140),
    number=st.text(min_size=1, max_size=12),
    kwp=st.text(max_size=12) | st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
def test_any_cells_give_one_outcome_per_row_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory, street: str, number: str, kwp: str
) -> None:
    """Any text in a free cell, a house number or kWp: no exception, the good rows in,
    the row either in or refused by a rule, the same in both paths."""
    from meetpunt.register import open_register

    folder = tmp_path_factory.mktemp("fuzz")
    out = io.StringIO()
    # every cell quoted: the hostile cells stay in their row (a lone \r unquoted would
    # end the record for csv, which test_fuzz_csv covers)
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CONNECTION_COLUMNS)
    writer.writerow(good_row(2).values())
    writer.writerow(
        (good_row(3) | {"street": street, "house_number": number, "solar_kwp": kwp}).values()
    )
    writer.writerow(good_row(4).values())
    outcomes = []
    for row_by_row in (False, True):
        register = open_register(f"sqlite:///{folder / str(row_by_row)}.sqlite")
        try:
            with register.session() as s:
                report = import_csv(s, out.getvalue(), "any.csv", row_by_row=row_by_row)
        finally:
            register.dispose()
        assert report.inserted + len(report.refused) == report.rows
        assert report.inserted >= 2
        outcomes.append(_outcome(report))
    assert outcomes[0] == outcomes[1]


class _UndoError(Exception):
    """Roll an import back."""


@pytest.mark.parametrize(
    "text",
    [
        # a lone \r in an unquoted cell: csv cannot read the record; the next lines
        # count on from where csv stopped, in both paths
        "{header}\n{good2}\n{bad}\n{good4}\n",
        # an unnamed column the import does not read, holding NUL: ignored in both paths
        "{header},\n{good2},\0\n{good4},\n",
        # a column named twice, and named in bytes that are not UTF-8
        "{header},\udcf6,\udcf6\n{good2},,\n",
    ],
)
def test_fuzz_findings_stay_fixed(register: Register, text: str) -> None:
    """Inputs the fuzz run (benchmarks/fuzz_parsers.py) found the two paths ending
    differently on, or a refusal that could not be stored."""
    cells = good_row(3) | {"house_number": "1\r2"}
    filled = text.format(
        header=",".join(CONNECTION_COLUMNS),
        good2=",".join(good_row(2).values()),
        bad=",".join(cells.values()),
        good4=",".join(good_row(4).values()),
    )
    outcomes = []
    for row_by_row in (False, True):
        with pytest.raises(_UndoError), register.session() as s:
            report = import_csv(s, filled, "found.csv", row_by_row=row_by_row)
            outcomes.append((_outcome(report), [(q.line, q.rule) for q in s.quarantined()]))
            raise _UndoError  # each path starts from the empty register
    assert outcomes[0] == outcomes[1]
    (rows, inserted, refused), quarantined = outcomes[0]
    assert quarantined == refused
    if "\udcf6" in text:
        assert refused == [(1, "REG-import.duplicate_column")]
    elif "\0" in text:
        assert (rows, inserted, refused) == (2, 2, [])
    else:
        assert refused[0] == (3, "REG-import.record")


@pytest.mark.parametrize(
    ("column", "value"),
    [("house_number", 2**31), ("solar_kwp", Decimal("1E+12")), ("solar_kwp", Decimal("NaN"))],
)
def test_a_number_the_column_cannot_hold_is_refused_before_any_write(
    column: str, value: object
) -> None:
    """The last guard before the database, the same on both engines: whatever a row's
    domain checks let through, a value its column cannot hold is refused by rule
    (REG-import.out_of_range), and the row as it is passes."""
    row = attributes_to_row(attributes("3x25"))
    assert storage_finding(row) is None
    finding = storage_finding({**row, column: value})
    assert finding is not None and finding.rule == "REG-import.out_of_range"
