"""The register in the application layer: open one, import files into it (REG-2..8).

The CLI's ``register import`` and the demo import the same way: connections first,
then secondary allocation points, then contracts, each file in its own transaction
(bad rows are refused and quarantined inside it, good rows go in).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.exc import OperationalError

from meetpunt.domain.findings import Finding
from meetpunt.errors import UnavailableError
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


BUSY_WAIT_SECONDS = 600.0
"""How long an import waits for another process that is writing the SQLite register
(another import, say) before it gives up (REG-db.busy): longer than a 1,000,000-row
file takes."""

BUSY_RETRY_SECONDS = 0.5


def import_register_files(
    register: Register,
    paths: Sequence[Path],
    on_file: Callable[[Path, ImportReport], None] | None = None,
    on_wait: Callable[[Path], None] | None = None,
    wait_seconds: float = BUSY_WAIT_SECONDS,
) -> list[ImportReport]:
    """Import ``paths`` in the register's order, one transaction per file.

    SQLite lets one process write at a time: a file whose transaction meets another
    writer is undone whole and imported again once the other is done (``on_wait`` is
    told once), for at most ``wait_seconds``; then :class:`UnavailableError`
    REG-db.busy says which files went in. Never half a file.
    """
    reports: list[ImportReport] = []
    for path in sorted(paths, key=import_order):
        report = _import_waiting(register, path, on_wait, wait_seconds, reports)
        reports.append(report)
        if on_file is not None:
            on_file(path, report)
    return reports


def _import_waiting(
    register: Register,
    path: Path,
    on_wait: Callable[[Path], None] | None,
    wait_seconds: float,
    done: list[ImportReport],
) -> ImportReport:
    deadline = time.monotonic() + wait_seconds
    told = False
    while True:
        try:
            with register.session() as session:
                return import_file(session, path)
        except OperationalError as exc:
            if not _busy(exc):
                raise
            if time.monotonic() >= deadline:
                imported = ", ".join(r.source for r in done) or "none"
                finding = Finding(
                    "REG-db.busy",
                    f"another process kept the register busy for {wait_seconds:.0f} s; "
                    f"nothing of {path} was imported (files imported before it: "
                    f"{imported})",
                )
                raise UnavailableError(
                    finding.message,
                    [finding],
                    "wait for the other import to end, then run this import again "
                    "(files already imported change nothing when imported again)",
                ) from exc
            if on_wait is not None and not told:
                on_wait(path)
                told = True
            time.sleep(BUSY_RETRY_SECONDS)


def _busy(exc: OperationalError) -> bool:
    """True when SQLite refused because another connection writes (not a real fault)."""
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


@contextmanager
def register_session(db: str | None = None, create: bool = True) -> Iterator[RegisterSession]:
    """One transaction on the register at ``db``, the register disposed of afterwards:
    what a command that reads or changes the register once needs (``create`` as in
    :func:`register_at`)."""
    with register_at(db, create) as register, register.session() as session:
        yield session
