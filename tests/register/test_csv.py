"""Register import/export: bad rows reported by line and rule, kept in quarantine;
good rows in; re-import changes nothing; export round-trips (REG-2..8)."""

from __future__ import annotations

import csv
import io
from datetime import date
from importlib import resources
from pathlib import Path

from meetpunt.register import Register
from meetpunt.register.csvio import RecordKind, export_register, import_csv

EXAMPLES = resources.files("meetpunt.data").joinpath("example_register")


def example(kind: RecordKind) -> str:
    return EXAMPLES.joinpath(f"{kind.value}.csv").read_text(encoding="utf-8")


def load_examples(register: Register) -> None:
    for kind in RecordKind:
        with register.session() as s:
            report = import_csv(s, example(kind), kind.value)
        assert report.refused == [], report.refused


def with_bad_rows(text: str, replacements: dict[int, tuple[str, str]]) -> str:
    """Edit cells of data rows: {row_index: (column, new value)}."""
    rows = list(csv.DictReader(io.StringIO(text)))
    for index, (column, value) in replacements.items():
        rows[index][column] = value
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_bad_rows_are_reported_by_line_and_rule_good_rows_go_in(register: Register) -> None:
    text = with_bad_rows(
        example(RecordKind.CONNECTIONS),
        {
            0: ("ean", "871234560000000018"),  # line 2: wrong check digit
            2: ("postcode", "56A7BD"),  # line 4
            3: ("phase", ""),  # line 5: a single-phase connection without its phase
            4: ("status", "ACTIVE"),  # line 6
            5: ("capacity", "2x25"),  # line 7
            6: ("valid_from", "01-03-2024"),  # line 8
        },
    )
    total = len(text.strip().splitlines()) - 1
    with register.session() as s:
        report = import_csv(s, text, "connections.csv")
    assert [(r.line, r.rule) for r in report.refused] == [
        (2, "REG-1.check_digit"),
        (4, "REG-2.postcode"),
        (5, "REG-2.phase"),
        (6, "REG-2.status"),
        (7, "REG-3.capacity_format"),
        (8, "REG-6.date"),
    ]
    assert "expected one of IAL, IBD, UBD, SLP" in report.refused[3].message
    assert report.inserted + report.changed == total - 6
    with register.session() as s:
        quarantined = s.quarantined()
        assert [(q.line, q.rule) for q in quarantined] == [(r.line, r.rule) for r in report.refused]
        assert "871234560000000018" in quarantined[0].record
        # the refused row wrote nothing: its EAN is unknown, neighbours are in
        eans = {v.ean for v in s.connection_versions()}
    assert "871234560000000018" not in eans
    assert len(eans) >= total - 6 - 2  # some EANs have two versions


def test_reimport_changes_nothing(register: Register) -> None:
    load_examples(register)
    for kind in RecordKind:
        with register.session() as s:
            report = import_csv(s, example(kind), kind.value)
        assert report.inserted == report.changed == 0
        assert report.unchanged == report.rows


def test_export_round_trips_with_history(register: Register, tmp_path: Path, db_url: str) -> None:
    load_examples(register)
    with register.session() as s:
        first = export_register(s, tmp_path / "a")
    assert first[RecordKind.CONNECTIONS].read_text().replace("\r\n", "\n") == example(
        RecordKind.CONNECTIONS
    ).replace("\r\n", "\n")
    # import the export into a second, empty register and export again: identical
    other_url = f"sqlite:///{tmp_path / 'second.sqlite'}"
    from meetpunt.register import open_register

    second = open_register(other_url)
    try:
        for kind in RecordKind:
            with second.session() as s:
                assert import_csv(s, first[kind].read_text(), kind.value).refused == []
        with second.session() as s:
            again = export_register(s, tmp_path / "b")
    finally:
        second.dispose()
    for kind in RecordKind:
        assert again[kind].read_text() == first[kind].read_text(), kind


def test_unknown_header_refused_whole_file(register: Register) -> None:
    with register.session() as s:
        report = import_csv(s, "name,amount\nx,1\n", "weird.csv")
        assert report.kind is None
        assert [(r.line, r.rule) for r in report.refused] == [(1, "REG-import.header")]
        assert s.quarantined()[0].rule == "REG-import.header"


def test_missing_required_column_refused(register: Register) -> None:
    with register.session() as s:
        report = import_csv(s, "ean,commodity,valid_from,capacity\n", "short.csv")
    assert report.refused[0].rule == "REG-import.header"
    assert "status" in report.refused[0].message


def test_contract_rows_refused_by_rule(register: Register) -> None:
    load_examples(register)
    text = with_bad_rows(
        example(RecordKind.CONTRACTS),
        {
            0: ("start_date", "2024-02-01"),
            1: ("supplier", "Energie BV"),
            2: ("contract_type", "forever"),
        },
    )
    with register.session() as s:
        report = import_csv(s, text, "contracts.csv")
    assert [(r.line, r.rule) for r in report.refused] == [
        (2, "REG-6.overlap"),
        (3, "REG-6.supplier"),
        (4, "MKT-1.contract_type"),
    ]


def test_lapse_shows_in_the_exported_history(register: Register, tmp_path: Path) -> None:
    load_examples(register)
    with register.session() as s:
        primary = next(
            p.primary_ean
            for p, _ in s.all_secondary_status_versions()
            if p.purpose.startswith("public charge point")
        )
        from meetpunt.domain.connection import PhysicalStatus

        s.set_status(primary, PhysicalStatus.OUT_OF_SERVICE, date(2026, 12, 1))
        written = export_register(s, tmp_path)
    rows = list(csv.DictReader(written[RecordKind.SECONDARY_POINTS].open()))
    lapsed = [r for r in rows if r["status"] == "lapsed"]
    assert [(r["primary_ean"], r["valid_from"]) for r in lapsed] == [(primary, "2026-12-01")]
