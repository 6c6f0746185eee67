"""The register in the application layer: open one, import files into it (REG-2..8).

The CLI's ``register import`` and the demo import the same way: connections first,
then secondary allocation points, then contracts, each file in its own transaction
(bad rows are refused and quarantined inside it, good rows go in).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from meetpunt.register import Register, RegisterSession, open_register
from meetpunt.register.csvio import (
    MAX_FIELD_CHARS,
    ImportReport,
    RecordKind,
    detect_kind,
    import_file,
    open_text,
)


@contextmanager
def register_at(db: str | None = None, create: bool = True) -> Iterator[Register]:
    """The register at ``db`` (default: the embedded one in the meetpunt home), disposed
    of when the block ends; with ``create`` False a missing SQLite register is refused
    (REG-db.missing) instead of created empty."""
    register = open_register(db, create=create)
    try:
        yield register
    finally:
        register.dispose()


def import_order(path: Path) -> int:
    """Where a register file goes in the import: by the kind its header names;
    unrecognised files last (their refusal is reported then)."""
    order = list(RecordKind)
    try:
        with open_text(path) as handle:
            kind = detect_kind(next(csv.reader([handle.readline(MAX_FIELD_CHARS)]), []))
    except (OSError, UnicodeError, csv.Error):
        return len(order)  # the import refuses it (REG-import.file)
    return order.index(kind) if isinstance(kind, RecordKind) else len(order)


def import_register_files(
    register: Register,
    paths: Sequence[Path],
    on_file: Callable[[Path, ImportReport], None] | None = None,
) -> list[ImportReport]:
    """Import ``paths`` in the register's order, one transaction per file."""
    reports: list[ImportReport] = []
    for path in sorted(paths, key=import_order):
        with register.session() as session:
            report = import_file(session, path)
        reports.append(report)
        if on_file is not None:
            on_file(path, report)
    return reports


@contextmanager
def register_session(db: str | None = None, create: bool = True) -> Iterator[RegisterSession]:
    """One transaction on the register at ``db``, the register disposed of afterwards:
    what a command that reads or changes the register once needs (``create`` as in
    :func:`register_at`)."""
    with register_at(db, create) as register, register.session() as session:
        yield session
