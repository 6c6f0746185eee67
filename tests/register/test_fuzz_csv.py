"""The CI sample of the register CSV fuzz run (``benchmarks/fuzz_parsers.py`` runs a
million): hostile cells (``²``, Arabic-Indic digits, NaN, 1e30, NUL, long text, stray
quotes, bytes that are not UTF-8, doubled columns) and hostile characters in sound
register files never make the import raise; every row is either in or refused by a
rule, and the batch path and the one-row path end the same."""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetpunt.register import Register, open_register
from meetpunt.register.csvio import import_csv

EXAMPLES = resources.files("meetpunt.data").joinpath("example_register")
SEEDS = [EXAMPLES.joinpath(f"{kind}.csv").read_text(encoding="utf-8") for kind in (
    "connections", "secondary_allocation_points", "contracts")]  # fmt: skip

HOSTILE = [
    "",
    "²",
    "١٢",
    "NaN",
    "Infinity",
    "1e30",
    "-1",
    "99999999999",
    "\0",
    "\x1b",
    "\udcf6",  # a Latin-1 byte read as UTF-8
    "\ufeff",
    '"',
    '"a\nb"',
    "x\ry",  # csv.writer leaves a lone \r unquoted: csv cannot read that record
    ",",
    "3x99999",
    "2025-02-30",
    "x" * 201,
]


@st.composite
def hostile_files(draw: st.DrawFn) -> str:
    rows = list(csv.reader(io.StringIO(draw(st.sampled_from(SEEDS)))))
    for _ in range(draw(st.integers(1, 4))):
        row = rows[draw(st.integers(0, len(rows) - 1))]
        at = draw(st.integers(0, len(row) - 1))
        op = draw(st.integers(0, 4))
        if op == 0:
            row.append(draw(st.sampled_from(HOSTILE)))
        elif op == 1:
            rows[0].append(rows[0][at])  # a doubled column
        else:
            row[at] = draw(st.sampled_from(HOSTILE) | st.text(max_size=30))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    text = out.getvalue()
    if draw(st.booleans()):  # a character level change: quotes, line ends, anything
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', "\n", "\r", ",", "\0"])) + text[at:]
    return text


@pytest.fixture(scope="module")
def fuzz_register(tmp_path_factory: pytest.TempPathFactory) -> Register:
    return open_register(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'r.sqlite'}")


class _UndoError(Exception):
    """Roll the import back: every example starts from an empty register."""


def _import(register: Register, text: str, row_by_row: bool) -> tuple[object, ...]:
    seen: list[tuple[object, ...]] = []
    with pytest.raises(_UndoError), register.session() as s:
        report = import_csv(s, text, "fuzz.csv", row_by_row=row_by_row)
        quarantined = [(q.line, q.rule) for q in s.quarantined()]
        seen.append((report.rows, report.inserted, report.changed, report.unchanged,
                     [(r.line, r.rule) for r in report.refused], quarantined))  # fmt: skip
        raise _UndoError
    return seen[0]


@settings(max_examples=120, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(text=hostile_files())
def test_a_hostile_register_file_never_raises_and_both_paths_agree(
    fuzz_register: Register, text: str
) -> None:
    batch = _import(fuzz_register, text, row_by_row=False)
    one_by_one = _import(fuzz_register, text, row_by_row=True)
    assert batch == one_by_one
    rows, inserted, changed, unchanged, refused, quarantined = batch
    assert isinstance(rows, int) and isinstance(refused, list)
    assert inserted + changed + unchanged + len(refused) >= rows  # a header refusal: 0 rows
    assert quarantined == refused  # nothing lost


def test_a_hostile_file_on_disk_in_any_encoding_never_raises(
    fuzz_register: Register, tmp_path: Path
) -> None:
    from meetpunt.register.csvio import import_file

    text = SEEDS[0].replace("Torenallee", "Fröbelstraat")
    for encoding in ("utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-32"):
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes(text.encode(encoding))
        with pytest.raises(_UndoError), fuzz_register.session() as s:
            report = import_file(s, path)
            assert report.rows == 0 or report.inserted + len(report.refused) >= 1
            raise _UndoError
