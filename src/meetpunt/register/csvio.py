"""Register import and export as CSV files (REG-2..8).

Three kinds of file, told apart by their header:

* connections: one row per connection version (``valid_from`` = from when the row is
  true); the same row twice changes nothing, a later ``valid_from`` records a change;
* secondary allocation points: one row per status version of an existing SAP;
* contracts: one row per supply contract.

Transactions: one transaction per file; a bad row is refused on its own, reported
with its line number and rule, and kept in the register's import quarantine with the
raw record; the good rows go in. Either the whole file's outcome is committed or (on a
crash) none of it, and rerunning the file is harmless because recording an unchanged
version changes nothing.

Connections files go in by batches of :data:`BATCH_ROWS` rows: each row is parsed and
checked (``_check_rows``), and the rows that pass are recorded together by
:mod:`meetpunt.register.bulk` inside one SAVEPOINT. When the database refuses the batch
(a value too long for its column, say), the batch is undone and recorded again in
halves, down to a few rows recorded one by one, each in a SAVEPOINT of its own, so
only the bad row is refused. A file of more than :data:`PARALLEL_ABOVE` rows is parsed
and checked in worker processes, :data:`CHUNK_ROWS` text lines at a time cut at record
ends, while this process writes the previous chunks; the results come back in file
order, so the outcome is the same as checking here. Secondary points and contracts
files (small) take the one-row path throughout.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import functools
import gc
import io
import itertools
import multiprocessing
import multiprocessing.context
import operator
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple, TypeVar

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from meetpunt.domain.allocation import SapStatus
from meetpunt.domain.capacity import Capacity, CapacityClasses, Commodity, parse_capacity
from meetpunt.domain.connection import (
    HOUSE_NUMBER_MAX,
    Address,
    AdminSwitch,
    ConnectionAttributes,
    ConnectionVersion,
    GridPosition,
    MeterType,
    Phase,
    PhysicalStatus,
    RemoteReading,
    check_connection,
)
from meetpunt.domain.contract import ContractType, SupplyContract, TariffKind
from meetpunt.domain.customer import CustomerType
from meetpunt.domain.ean import check_ean
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.register import schema as t
from meetpunt.register.bulk import (
    ATTRIBUTE_COLUMNS,
    ConnectionRecord,
    Values,
    prepare,
    record_connections,
)
from meetpunt.register.connections import storage_finding
from meetpunt.register.report import decimal_text
from meetpunt.register.store import ChangeOutcome, RegisterSession


class RecordKind(StrEnum):
    """The three register file kinds."""

    CONNECTIONS = "connections"
    SECONDARY_POINTS = "secondary_allocation_points"
    CONTRACTS = "contracts"


CONNECTION_COLUMNS = (
    "ean",
    "commodity",
    "valid_from",
    "capacity",
    "status",
    "admin_switch",
    "meter_type",
    "remote_reading",
    "postcode",
    "house_number",
    "house_number_suffix",
    "street",
    "city",
    "municipality",
    "woz_object_id",
    "substation",
    "feeder",
    "phase",
    "customer_type",
    "active_customer",
    "solar_kwp",
    "solar_registered_on",
)
SECONDARY_COLUMNS = ("ean", "primary_ean", "capacity", "status", "valid_from", "purpose")
CONTRACT_COLUMNS = (
    "ean",
    "commodity",
    "supplier",
    "contract_holder",
    "contract_type",
    "tariff",
    "start_date",
    "end_date",
)
COLUMNS = {
    RecordKind.CONNECTIONS: CONNECTION_COLUMNS,
    RecordKind.SECONDARY_POINTS: SECONDARY_COLUMNS,
    RecordKind.CONTRACTS: CONTRACT_COLUMNS,
}
REQUIRED = {
    RecordKind.CONNECTIONS: (
        "ean",
        "commodity",
        "valid_from",
        "capacity",
        "status",
        "postcode",
        "house_number",
        "customer_type",
    ),
    RecordKind.SECONDARY_POINTS: SECONDARY_COLUMNS[:5],
    RecordKind.CONTRACTS: (
        "ean",
        "supplier",
        "contract_holder",
        "contract_type",
        "tariff",
        "start_date",
    ),
}
BATCH_ROWS = 5000
"""Connection rows recorded together (see the module docstring): large enough that the
per-statement cost vanishes, small enough that a refused batch is cheap to redo."""

ONE_BY_ONE_BELOW = 64
"""A refused batch smaller than this is recorded one row per SAVEPOINT."""

PARALLEL_ABOVE = 50_000
"""A connections file of more rows is parsed and checked in worker processes while
this one writes to the database; a smaller one here (starting workers costs more)."""

CHUNK_ROWS = 20_000
"""Rows handed to a worker process at a time."""

MAX_WORKERS = 3
"""Worker processes at most: besides them this process writes, and the database works."""


def _length(column: object) -> int:
    """The width of a text column of the register's schema."""
    return int(column.type.length)  # type: ignore[attr-defined]  # a String column


MAX_FIELD_CHARS = csv.field_size_limit()
"""The longest cell ``csv`` reads (128 KiB): a record with a longer one is refused on
its own (REG-import.record), the rest of the file goes on."""

TEXT_LIMITS: dict[RecordKind, dict[str, int]] = {
    RecordKind.CONNECTIONS: {},  # checked on the stored values: bulk.storage_finding
    RecordKind.SECONDARY_POINTS: {"purpose": _length(t.allocation_point.c.purpose)},
    RecordKind.CONTRACTS: {
        "supplier": _length(t.supply_contract.c.supplier),
        "contract_holder": _length(t.supply_contract.c.contract_holder),
    },
}
"""The free-text columns of the secondary points and contracts files and their longest
value: the register's column widths, checked here so that SQLite (which stores any
length) and PostgreSQL (which refuses) refuse the same rows with the same rule
(REG-import.too_long)."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UNDECODABLE = re.compile(r"[\udc80-\udcff]")

_ALIASES = {"aan": "on", "uit": "off"}
_TRUE, _FALSE = {"true", "1", "yes", "ja"}, {"false", "0", "no", "nee", ""}


@dataclass(frozen=True)
class RowRefusal:
    """A refused row: where, which rule, what to do."""

    line: int
    rule: str
    message: str


@dataclass
class ImportReport:
    """What importing one file did."""

    source: str
    kind: RecordKind | None
    rows: int = 0
    inserted: int = 0
    changed: int = 0
    unchanged: int = 0
    refused: list[RowRefusal] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {
            "source": self.source,
            "kind": self.kind.value if self.kind else None,
            "rows": self.rows,
            "inserted": self.inserted,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "refused": [r.__dict__ for r in self.refused],
        }


class _RowError(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


E = TypeVar("E", bound=StrEnum)


def _text(row: Mapping[str, str], column: str) -> str:
    return (row.get(column) or "").strip()


def cell_finding(kind: RecordKind, column: str, value: str) -> Finding | None:
    """Why the register cannot keep ``value`` in ``column`` as given, or None: a control
    character such as NUL (REG-import.control_character), bytes that were not UTF-8
    (REG-import.encoding), or text longer than the column (REG-import.too_long). The
    same on every engine, so SQLite and PostgreSQL refuse the same rows."""
    if value.isascii():
        if value.isprintable() or not _CONTROL.search(value):
            limit = TEXT_LIMITS[kind].get(column)
            if limit is not None and len(value) > limit:
                return _too_long(column, value, limit)
            return None
    elif _UNDECODABLE.search(value):
        return Finding(
            "REG-import.encoding",
            f"column {column!r} has bytes that are not UTF-8 "
            f"({_shown(value)!r}); save the file as UTF-8 and import it again",
        )
    if _CONTROL.search(value):
        return Finding(
            "REG-import.control_character",
            f"column {column!r} has a control character ({_shown(value)!r}); "
            "remove it (a NUL byte often means the file is binary or UTF-16)",
        )
    limit = TEXT_LIMITS[kind].get(column)
    if limit is not None and len(value) > limit:
        return _too_long(column, value, limit)
    return None


def _too_long(column: str, value: str, limit: int) -> Finding:
    return Finding(
        "REG-import.too_long",
        f"column {column!r} has {len(value)} characters ({_shown(value)!r}); "
        f"the register keeps at most {limit}: shorten it",
    )


def _shown(value: str, width: int = 40) -> str:
    """``value`` readable in a message: undecodable bytes as ``\\xNN``, cut to ``width``."""
    text = value[:width] + ("..." if len(value) > width else "")
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _row_finding(kind: RecordKind, row: Mapping[str | None, object]) -> Finding | None:
    """The first cell of ``row`` (a ``DictReader`` row) the register cannot keep, in
    the order of the kind's columns (a column the import does not read is ignored, as
    the batch path ignores it)."""
    for column in COLUMNS[kind]:
        value = row.get(column)
        if isinstance(value, str):
            finding = cell_finding(kind, column, value.strip())
            if finding is not None:
                return finding
    return None


_ENUM_CACHE: dict[tuple[type[StrEnum], str], StrEnum] = {}
_ENUM_CACHE_SIZE = 4096


def _enum(row: Mapping[str, str], column: str, kind: type[E], rule: str, default: E | None) -> E:
    return _member(_text(row, column), column, kind, rule, default)


def _member(raw: str, column: str, kind: type[E], rule: str, default: E | None) -> E:
    """The member of ``kind`` that ``raw`` spells (any case, Dutch aliases)."""
    if not raw and default is not None:
        return default
    cached = _ENUM_CACHE.get((kind, raw))
    if cached is not None:
        return cached  # type: ignore[return-value]  # stored under its own kind
    value = _ALIASES.get(raw.lower(), raw)
    for member in kind:
        if value in (member.value, member.value.lower()) or value.upper() == member.value:
            if len(_ENUM_CACHE) < _ENUM_CACHE_SIZE:  # a file has few distinct spellings
                _ENUM_CACHE[(kind, raw)] = member
            return member
    allowed = ", ".join(m.value for m in kind)
    raise _RowError(Finding(rule, f"column {column!r} has {raw!r}; expected one of {allowed}"))


def _date(row: Mapping[str, str], column: str, rule: str, optional: bool = False) -> date | None:
    return _day(_text(row, column), column, rule, optional)


def _day(raw: str, column: str, rule: str, optional: bool = False) -> date | None:
    if not raw and optional:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _RowError(
            Finding(rule, f"column {column!r} has {raw!r}; write the date as YYYY-MM-DD")
        ) from None


def _required_date(row: Mapping[str, str], column: str, rule: str) -> date:
    value = _date(row, column, rule)
    assert value is not None  # _date without optional never returns None
    return value


def _bool(raw: str, column: str, rule: str) -> bool:
    raw = raw.lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise _RowError(Finding(rule, f"column {column!r} has {raw!r}; write true or false"))


def _ean(row: Mapping[str, str], column: str) -> str:
    return _checked_ean(_text(row, column))


def _checked_ean(code: str) -> str:
    finding = check_ean(code)
    if finding is not None:
        raise _RowError(finding)
    return code


CapacityParser = Callable[[Commodity, str], Capacity | Finding]


def capacity_parser(classes: CapacityClasses) -> CapacityParser:
    """``parse_capacity`` with the register's classes, remembering the few distinct
    capacities of a file (REG-3; the results are immutable)."""
    return functools.lru_cache(maxsize=1024)(functools.partial(_parse_capacity, classes))


def _parse_capacity(
    classes: CapacityClasses, commodity: Commodity, text: str
) -> Capacity | Finding:
    return parse_capacity(commodity, text, classes)


def _connection_row(
    row: Mapping[str, str], capacity_of: CapacityParser
) -> tuple[str, Commodity, date, ConnectionAttributes]:
    """Parse a connections row given as a mapping (the one-row path)."""
    cells = [(row.get(column) or "").strip() for column in CONNECTION_COLUMNS]
    return _connection_cells(cells, capacity_of)


def _connection_cells(
    cells: Sequence[str], capacity_of: CapacityParser
) -> tuple[str, Commodity, date, ConnectionAttributes]:
    """Parse a connections row, its stripped cells in the order of
    :data:`CONNECTION_COLUMNS`; the first unreadable cell refuses it, in column order.

    Runs once per row of files of millions of rows: the helpers take the text.
    """
    (
        ean,
        commodity_raw,
        valid_from_raw,
        capacity_raw,
        status,
        admin_switch,
        meter_type,
        remote_reading,
        postcode,
        number,
        suffix,
        street,
        city,
        municipality,
        woz_object_id,
        substation,
        feeder,
        phase,
        customer_type,
        active_customer,
        kwp_raw,
        solar_registered_on,
    ) = cells
    joined = "".join(cells)
    if not (joined.isascii() and joined.isprintable()):
        for column, value in zip(CONNECTION_COLUMNS, cells, strict=True):
            finding = cell_finding(RecordKind.CONNECTIONS, column, value)
            if finding is not None:
                raise _RowError(finding)
    _checked_ean(ean)
    commodity = _member(commodity_raw, "commodity", Commodity, "REG-2.commodity", None)
    valid_from = _day(valid_from_raw, "valid_from", "REG-6.date")
    assert valid_from is not None  # not optional
    capacity = capacity_of(commodity, capacity_raw)
    if isinstance(capacity, Finding):
        raise _RowError(capacity)
    if not (number.isascii() and number.isdigit()) or len(number) > _HOUSE_NUMBER_DIGITS:
        raise _RowError(
            Finding(
                "REG-2.house_number",
                f"column 'house_number' has {_shown(number)!r}; give the house number as "
                f"1 to {HOUSE_NUMBER_MAX} in the digits 0-9 (a letter goes in "
                "house_number_suffix)",
            )
        )
    solar_kwp = _kwp(kwp_raw) if kwp_raw else None
    attributes = ConnectionAttributes(
        capacity=capacity,
        status=_member(status, "status", PhysicalStatus, "REG-2.status", None),
        admin_switch=_member(
            admin_switch, "admin_switch", AdminSwitch, "REG-2.admin_switch", AdminSwitch.ON
        ),
        meter_type=_member(
            meter_type, "meter_type", MeterType, "REG-2.meter_type", MeterType.SMART
        ),
        remote_reading=_member(
            remote_reading,
            "remote_reading",
            RemoteReading,
            "REG-7.remote_reading",
            RemoteReading.STANDARD,
        ),
        address=Address(
            postcode=postcode,
            house_number=int(number),
            house_number_suffix=suffix,
            street=street,
            city=city,
            municipality=municipality,
            woz_object_id=woz_object_id,
        ),
        grid=GridPosition(
            substation=substation,
            feeder=feeder,
            phase=_member(phase, "phase", Phase, "REG-2.phase", None) if phase else None,
        ),
        customer_type=_member(
            customer_type, "customer_type", CustomerType, "REG-4.customer_type", None
        ),
        active_customer=_bool(active_customer, "active_customer", "REG-4.active_customer"),
        solar_kwp=solar_kwp,
        solar_registered_on=_day(solar_registered_on, "solar_registered_on", "REG-8.date", True),
    )
    return ean, commodity, valid_from, attributes


_HOUSE_NUMBER_DIGITS = len(str(HOUSE_NUMBER_MAX))

_KWP_SCALE = t.connection_version.c.solar_kwp.type.scale or 0  # type: ignore[attr-defined]
_KWP_LIMIT = Decimal(10) ** ((t.connection_version.c.solar_kwp.type.precision or 0) - _KWP_SCALE)  # type: ignore[attr-defined]


def _kwp(raw: str) -> Decimal:
    """The registered solar kWp (REG-8.solar_kwp): a finite number the register keeps
    exactly (below 10^9, at most three decimals), so no engine rounds or refuses it."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    exponent = value.as_tuple().exponent
    if (
        not value.is_finite()
        or abs(value) >= _KWP_LIMIT
        or (isinstance(exponent, int) and exponent < -_KWP_SCALE)
    ):
        raise _RowError(
            Finding(
                "REG-8.solar_kwp",
                f"column 'solar_kwp' has {_shown(raw)!r}; give a number in kWp "
                f"(below {_KWP_LIMIT}, at most {_KWP_SCALE} decimals), like 4.2",
            )
        )
    return value


def _apply_connection(row: Mapping[str, str], session: RegisterSession) -> ChangeOutcome:
    parse = functools.partial(_parse_capacity, session.rules.classes)
    ean, commodity, valid_from, attributes = _connection_row(row, parse)
    return session.record_connection(ean, commodity, attributes, valid_from)


def _apply_secondary(row: Mapping[str, str], session: RegisterSession) -> ChangeOutcome:
    sap_ean, primary_ean = _ean(row, "ean"), _ean(row, "primary_ean")
    capacity = parse_capacity(Commodity.ELECTRICITY, _text(row, "capacity"), session.rules.classes)
    if isinstance(capacity, Finding):
        raise _RowError(capacity)
    return session.record_secondary(
        sap_ean,
        primary_ean,
        str(capacity),
        _enum(row, "status", SapStatus, "REG-5.sap_status", None),
        _required_date(row, "valid_from", "REG-6.date"),
        _text(row, "purpose"),
    )


def _apply_contract(row: Mapping[str, str], session: RegisterSession) -> ChangeOutcome:
    commodity_raw = _text(row, "commodity")
    commodity = (
        _enum(row, "commodity", Commodity, "REG-2.commodity", None) if commodity_raw else None
    )
    contract = SupplyContract(
        allocation_point_ean=_ean(row, "ean"),
        supplier=_text(row, "supplier"),
        contract_holder=_text(row, "contract_holder"),
        contract_type=_enum(row, "contract_type", ContractType, "MKT-1.contract_type", None),
        tariff=_enum(row, "tariff", TariffKind, "MKT-2.tariff", None),
        start=_required_date(row, "start_date", "REG-6.date"),
        end=_date(row, "end_date", "REG-6.date", optional=True),
    )
    return session.add_contract(contract, commodity)


_APPLY: dict[RecordKind, Callable[[Mapping[str, str], RegisterSession], ChangeOutcome]] = {
    RecordKind.CONNECTIONS: _apply_connection,
    RecordKind.SECONDARY_POINTS: _apply_secondary,
    RecordKind.CONTRACTS: _apply_contract,
}


def detect_kind(header: Iterable[str]) -> RecordKind | Finding:
    """Tell the file kind from its header; a :class:`Finding` naming missing columns or
    a column named twice (REG-import.duplicate_column: which cell counts would be a
    guess)."""
    names = [c.strip() for c in header]
    columns = set(names)
    twice = sorted(c for c, n in collections.Counter(names).items() if n > 1 and c)
    if twice:
        return Finding(
            "REG-import.duplicate_column",
            f"the header names column(s) {', '.join(twice)} more than once; which cell "
            "counts would be a guess: keep one of each",
        )
    if "primary_ean" in columns:
        kind = RecordKind.SECONDARY_POINTS
    elif "supplier" in columns:
        kind = RecordKind.CONTRACTS
    elif "valid_from" in columns:
        kind = RecordKind.CONNECTIONS
    else:
        return Finding(
            "REG-import.header",
            "the header is not a register file: a connections file has valid_from and "
            "capacity, a contracts file has supplier, a secondary points file has primary_ean",
        )
    missing = [c for c in REQUIRED[kind] if c not in columns]
    if missing:
        return Finding(
            "REG-import.header", f"the {kind.value} file lacks column(s) {', '.join(missing)}"
        )
    return kind


def import_csv(
    session: RegisterSession,
    text: str,
    source: str,
    *,
    row_by_row: bool = False,
    parallel_above: int = PARALLEL_ABOVE,
) -> ImportReport:
    """Import one register CSV (see module docstring for the transaction rule).

    ``row_by_row`` takes the one-row path for a connections file too: slower, the
    reference the batch path is tested and measured against. A connections file of
    more than ``parallel_above`` rows is parsed and checked in worker processes.
    """
    return _import_lines(session, io.StringIO(text), source, row_by_row, parallel_above)


def import_file(
    session: RegisterSession,
    path: Path,
    *,
    row_by_row: bool = False,
    parallel_above: int = PARALLEL_ABOVE,
) -> ImportReport:
    """Read ``path`` as it is imported, and import it. UTF-8 (a BOM tolerated) or
    UTF-16 with its BOM; in a file of another encoding (Latin-1, say) each record with
    bytes that are not UTF-8 is refused on its own (REG-import.encoding). A path that
    cannot be read as a file (a folder, say) is refused whole (REG-import.file)."""
    try:
        handle = open_text(path)
    except OSError as exc:
        finding = Finding(
            "REG-import.file",
            f"{path} cannot be read: {exc.strerror or type(exc).__name__}; "
            "name a register CSV file",
        )
        finding = _safe_finding(finding)
        report = ImportReport(source=_safe(str(path)), kind=None)
        report.refused.append(RowRefusal(0, finding.rule, finding.message))
        session.quarantine(report.source, 0, "", finding)
        return report
    with handle:
        return _import_lines(session, handle, _safe(str(path)), row_by_row, parallel_above)


def open_text(path: Path) -> io.TextIOWrapper:
    """``path`` opened as text for an import: UTF-16 when it starts with a UTF-16 byte
    order mark, else UTF-8 (a BOM skipped) with bytes that are not UTF-8 kept as lone
    surrogates, so that the record holding them is refused, not the whole file."""
    raw = path.open("rb")
    try:
        start = raw.read(2)
        raw.seek(0)
    except OSError:
        raw.close()
        raise
    if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return io.TextIOWrapper(raw, encoding="utf-16", errors="surrogateescape")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape")


_TOO_MANY_CELLS = Finding(
    "REG-import.columns", "the row has more cells than the header has columns"
)


class _Tee:
    """The lines of ``stream``, keeping those read since ``taken`` was last cleared
    (the text of a record ``csv`` could not read, for the quarantine)."""

    def __init__(self, stream: Iterator[str]) -> None:
        self.stream = stream
        self.taken: list[str] = []

    def __iter__(self) -> _Tee:
        return self

    def __next__(self) -> str:
        text = next(self.stream)
        self.taken.append(text)
        return text


def _import_lines(
    session: RegisterSession,
    lines: Iterable[str],
    source: str,
    row_by_row: bool,
    parallel_above: int,
) -> ImportReport:
    stream = iter(lines)
    first = next(stream, "")
    stream = itertools.chain([first], stream)
    tee = _Tee(stream)
    reader = csv.DictReader(tee)
    try:
        kind = detect_kind(reader.fieldnames or [])
    except csv.Error as exc:
        kind = Finding("REG-import.header", f"the header cannot be read as CSV ({exc})")
    if isinstance(kind, Finding):
        report = ImportReport(source=source, kind=None)
        kind = _safe_finding(kind)
        report.refused.append(RowRefusal(1, kind.rule, kind.message))
        header = first.splitlines()
        session.quarantine(source, 1, _safe(header[0]) if header else "", kind)
        return report
    report = ImportReport(source=source, kind=kind)
    if kind is RecordKind.CONNECTIONS and not row_by_row:
        with _gc_paused():
            _import_connections(session, reader, stream, report, parallel_above)
        return report
    _import_rows(session, reader, tee, report, _APPLY[kind])
    return report


def _import_rows(
    session: RegisterSession,
    reader: csv.DictReader[str],
    tee: _Tee,
    report: ImportReport,
    apply: Callable[[Mapping[str, str], RegisterSession], ChangeOutcome],
) -> None:
    """The one-row path: each record in a SAVEPOINT of its own."""
    assert report.kind is not None
    kind = report.kind
    line = 1
    rows = iter(reader)
    while True:
        tee.taken.clear()
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # a cell over MAX_FIELD_CHARS: this record only
            line += 1
            report.rows += 1
            _refuse(
                session,
                report,
                line,
                {None: "".join(tee.taken)},
                Finding(
                    "REG-import.record",
                    f"the record cannot be read as CSV ({exc}); a cell holds at most "
                    f"{MAX_FIELD_CHARS} characters: look for a missing closing quote",
                ),
            )
            line = reader.reader.line_num  # DictReader's own line_num stays behind
            continue
        line += 1
        report.rows += 1
        if None in row:  # more cells than header columns
            _refuse(session, report, line, row, _TOO_MANY_CELLS)
            line = reader.line_num
            continue
        finding = _row_finding(kind, row)
        if finding is not None:
            _refuse(session, report, line, row, finding)
            line = reader.line_num
            continue
        outcome = _apply_one(session, functools.partial(apply, row, session))
        if isinstance(outcome, Finding):
            _refuse(session, report, line, row, outcome)
        else:
            _count(report, outcome)
        line = reader.line_num


def _apply_one(
    session: RegisterSession, apply: Callable[[], ChangeOutcome]
) -> ChangeOutcome | Finding:
    """Run ``apply`` in a SAVEPOINT of its own: its outcome, or the finding that refused
    the row (a rule, or the database refusing a value) with the row's writes undone."""
    try:
        with session.savepoint():
            return apply()
    except _RowError as exc:
        return exc.finding
    except MeetpuntError as exc:
        return exc.findings[0] if exc.findings else Finding("REG-import.row", str(exc))
    except (DataError, IntegrityError) as exc:
        return Finding("REG-import.row", f"the database refused the row: {exc.orig}")
    except OverflowError as exc:  # SQLite's driver: an integer beyond 64 bits
        return Finding("REG-import.row", f"the database refused the row: {exc}")


class _Source(NamedTuple):
    """Where a record is in its chunk's lines, to read its cells again (rarely)."""

    lines: list[str]
    start: int
    stop: int

    def cells(self) -> list[str]:
        return next(csv.reader(self.lines[self.start : self.stop]))


_Passed = list[tuple[int, _Source, ConnectionRecord]]
_Refused = list[tuple[int, str, Finding]]  # line, raw record, finding
_Checked = list[tuple[str, str, date, Values, bool] | tuple[str, str, str] | None]
"""Per record of a chunk: None for a blank line, what ``ConnectionRecord`` needs but
``attributes``, or the refusing rule, message and raw record."""


class _Chunk(NamedTuple):
    """Consecutive records of a connections file as its text lines: where each record
    starts in ``lines`` and the file line it ends on."""

    lines: list[str]
    starts: list[int]
    ends: list[int]

    def source(self, index: int) -> _Source:
        stop = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.lines)
        return _Source(self.lines, self.starts[index], stop)


def _chunks(stream: Iterator[str], line: int) -> Iterator[_Chunk]:
    """The records of ``stream`` (after line ``line``) by :data:`CHUNK_ROWS`, cut where
    ``csv.reader`` ends a record: a line without a quote character is one record (or a
    blank line); a record with one is read by ``csv.reader`` here, which takes the
    following lines while a quoted cell spans them, and no more."""
    chunk = _Chunk([], [], [])
    for text in stream:
        chunk.starts.append(len(chunk.lines))
        chunk.lines.append(text)
        if '"' in text:
            record = csv.reader(_taking(text, stream, chunk.lines))
            # a cell over MAX_FIELD_CHARS ends the record; _check_rows refuses it
            with contextlib.suppress(csv.Error):
                next(record, None)
            line += record.line_num
        else:
            line += 1
        chunk.ends.append(line)
        if len(chunk.starts) >= CHUNK_ROWS:
            yield chunk
            chunk = _Chunk([], [], [])
    if chunk.starts:
        yield chunk


def _taking(first: str, stream: Iterator[str], taken: list[str]) -> Iterator[str]:
    """``first`` and then ``stream``, keeping what is taken from ``stream`` in ``taken``."""
    yield first
    for text in stream:
        taken.append(text)
        yield text


def _picker(fieldnames: Sequence[str]) -> Callable[[list[str]], list[str]]:
    """A function from a row's cells (no more than the header's) to its stripped cells
    in the order of :data:`CONNECTION_COLUMNS` ("" where absent), as ``DictReader`` and
    ``_text`` would read them (the last of two equal column names counts)."""
    width = len(fieldnames)
    where = {name: index for index, name in enumerate(fieldnames)}
    get = operator.itemgetter(*[where.get(column, width) for column in CONNECTION_COLUMNS])
    pad = [""] * (width + 1)

    def pick(row: list[str]) -> list[str]:
        return [cell.strip() for cell in get(row + pad[len(row) :])]

    return pick


def _records(lines: list[str], starts: Sequence[int]) -> list[list[str] | Finding]:
    """The CSV records of a chunk (``starts``: where each begins in ``lines``): read in
    one go, or, when a record cannot be read (a cell over :data:`MAX_FIELD_CHARS`),
    record by record, that one refused (REG-import.record) and the others read."""
    try:
        rows: list[list[str] | Finding] = list(csv.reader(lines))
    except csv.Error:
        rows = []
    if len(rows) == len(starts):
        return rows
    ends = [*starts[1:], len(lines)]
    return [_record(lines[start:stop]) for start, stop in zip(starts, ends, strict=True)]


def _record(lines: list[str]) -> list[str] | Finding:
    """One CSV record of ``lines``, or the finding that it cannot be read."""
    try:
        return next(csv.reader(lines), [])
    except csv.Error as exc:
        return Finding(
            "REG-import.record",
            f"the record cannot be read as CSV ({exc}); a cell holds at most "
            f"{MAX_FIELD_CHARS} characters: look for a missing closing quote",
        )


def _check_rows(
    fieldnames: Sequence[str],
    capacity_of: CapacityParser,
    lines: list[str],
    starts: Sequence[int],
) -> _Checked:
    """Read, parse and check connection records (REG-2..4, REG-7, REG-8, as
    ``record_connection`` would): the part of the import a worker process can do."""
    width = len(fieldnames)
    pick = _picker(fieldnames)
    checked: _Checked = []
    for index, row in enumerate(_records(lines, starts)):
        if isinstance(row, Finding):
            stop = starts[index + 1] if index + 1 < len(starts) else len(lines)
            record = _safe("".join(lines[starts[index] : stop]))
            checked.append((row.rule, row.message, record))
            continue
        if not row:
            checked.append(None)  # DictReader skips a blank line
            continue
        if len(row) > width:
            finding = _TOO_MANY_CELLS
        else:
            try:
                ean, commodity, valid_from, attributes = _connection_cells(pick(row), capacity_of)
            except _RowError as exc:
                finding = exc.finding
            else:
                findings = check_connection(ean, commodity, attributes)
                if not findings:
                    values, sound = prepare(attributes)
                    stored = (
                        None
                        if sound
                        else storage_finding(dict(zip(ATTRIBUTE_COLUMNS, values, strict=True)))
                    )
                    if stored is None:
                        checked.append((ean, commodity.value, valid_from, values, sound))
                        continue
                    findings = [stored]
                finding = findings[0]
        checked.append((finding.rule, finding.message, _raw(_dict_row(fieldnames, row))))
    return checked


_IN_WORKER: dict[str, CapacityParser] = {}
"""A worker process's capacity parser, set when it starts."""


def _start_worker(classes: CapacityClasses) -> None:
    gc.disable()  # see _gc_paused; the worker only parses, and frees by reference count
    _IN_WORKER["capacity_of"] = capacity_parser(classes)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cycle collector off while a connections file goes in: the import keeps
    hundreds of thousands of small objects alive at a time, which the collector would
    walk over and over (a third of the time of this process on a large file) for no
    garbage; what is freed, is freed by reference count. Restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_in_worker(
    fieldnames: Sequence[str], lines: list[str], starts: Sequence[int]
) -> _Checked:
    return _check_rows(fieldnames, _IN_WORKER["capacity_of"], lines, starts)


def _worker_count() -> int:
    """Worker processes for a large file: the cores but one (the database writer's)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores - 1, MAX_WORKERS))


def _process_context() -> multiprocessing.context.BaseContext:
    """ "fork" on Linux while this process runs no other thread (then a fork copies
    nothing half-done), else "spawn"; the workers import this module either way."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _checked_chunks(
    chunks: Iterator[_Chunk],
    fieldnames: Sequence[str],
    classes: CapacityClasses,
    parallel_above: int,
) -> Iterator[tuple[_Chunk, _Checked]]:
    """Each chunk with its checked rows, in file order. A file of more than
    ``parallel_above`` rows is checked by worker processes, a few chunks ahead of the
    caller writing them to the database; a smaller one here."""
    ahead: list[_Chunk] = []
    for chunk in chunks:
        ahead.append(chunk)
        if sum(len(c.starts) for c in ahead) > parallel_above:
            break
    else:  # a small file
        capacity_of = capacity_parser(classes)
        for chunk in ahead:
            yield chunk, _check_rows(fieldnames, capacity_of, chunk.lines, chunk.starts)
        return
    workers = _worker_count()
    pool = ProcessPoolExecutor(
        workers, _process_context(), initializer=_start_worker, initargs=(classes,)
    )
    try:
        pending: collections.deque[tuple[_Chunk, Future[_Checked]]] = collections.deque()
        for chunk in itertools.chain(ahead, chunks):
            pending.append(
                (chunk, pool.submit(_check_in_worker, fieldnames, chunk.lines, chunk.starts))
            )
            if len(pending) > 2 * workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _import_connections(
    session: RegisterSession,
    reader: csv.DictReader[str],
    stream: Iterator[str],
    report: ImportReport,
    parallel_above: int,
) -> None:
    """The batch path for a connections file (see the module docstring); ``reader``
    has read the header from ``stream``."""
    fieldnames = list(reader.fieldnames or [])
    classes = session.rules.classes
    capacity_of = capacity_parser(classes)
    pick = _picker(fieldnames)
    chunks = _chunks(stream, reader.line_num)
    passed: _Passed = []
    refused: _Refused = []
    line = 2  # where the next record starts: after the previous one, blank lines and all
    for chunk, checked in _checked_chunks(chunks, fieldnames, classes, parallel_above):
        assert len(checked) == len(chunk.starts)  # one result per record
        for index, result in enumerate(checked):
            if result is None:
                continue
            report.rows += 1
            if len(result) == 3:
                rule, message, raw = result
                refused.append((line, raw, Finding(rule, message)))
            else:
                ean, commodity, valid_from, values, sound = result
                source = chunk.source(index)
                rebuild = functools.partial(_attributes_of, pick, capacity_of, source)
                record = ConnectionRecord(ean, commodity, valid_from, values, sound, rebuild)
                passed.append((line, source, record))
            line = chunk.ends[index] + 1
            if len(passed) + len(refused) >= BATCH_ROWS:
                _record_batch(session, report.source, fieldnames, passed, refused).add_to(report)
                passed, refused = [], []
    _record_batch(session, report.source, fieldnames, passed, refused).add_to(report)


def _attributes_of(
    pick: Callable[[list[str]], list[str]], capacity_of: CapacityParser, source: _Source
) -> ConnectionAttributes:
    """A checked record's state again, for the rows that go through ``record_connection``."""
    return _connection_cells(pick(source.cells()), capacity_of)[3]


@dataclass
class _BatchOutcome:
    """What writing one batch did, for the report."""

    counts: dict[ChangeOutcome, int]
    refused: list[RowRefusal]

    def add_to(self, report: ImportReport) -> None:
        for outcome, count in self.counts.items():
            setattr(report, outcome.value, getattr(report, outcome.value) + count)
        report.refused.extend(self.refused)


def _record_batch(
    session: RegisterSession,
    source: str,
    fieldnames: Sequence[str],
    passed: _Passed,
    refused: _Refused,
) -> _BatchOutcome:
    """Record the rows that passed in one go, or one by one when the database refuses
    the batch; quarantine every refusal in line order."""
    results = _record_halving(session, [record for _, _, record in passed])
    counts = dict.fromkeys(ChangeOutcome, 0)
    for (line, where, _), result in zip(passed, results, strict=True):
        if isinstance(result, Finding):
            refused.append((line, _raw(_dict_row(fieldnames, where.cells())), result))
        else:
            counts[result] += 1
    refused.sort(key=lambda r: r[0])
    refused = [(line, raw, _safe_finding(finding)) for line, raw, finding in refused]
    session.quarantine_many(source, refused)
    return _BatchOutcome(counts, [RowRefusal(line, f.rule, f.message) for line, _, f in refused])


def _dict_row(fieldnames: Sequence[str], row: list[str]) -> dict[str | None, object]:
    """The row as ``csv.DictReader`` gives it (extra cells under None, missing ones None)."""
    mapping: dict[str | None, object] = dict(zip(fieldnames, row, strict=False))
    if len(fieldnames) < len(row):
        mapping[None] = row[len(fieldnames) :]
    else:
        for name in fieldnames[len(row) :]:
            mapping[name] = None
    return mapping


def _record_halving(
    session: RegisterSession, records: list[ConnectionRecord]
) -> list[ChangeOutcome | Finding]:
    """``record_connections`` in a SAVEPOINT; when the database refuses the rows, each
    half again, down to :data:`ONE_BY_ONE_BELOW` rows that go one by one. A few bad
    rows in a batch then cost a few retries each, not the whole batch's one-row cost."""
    try:
        with session.savepoint():
            return record_connections(session, records)
    except (DBAPIError, OverflowError):  # OverflowError: SQLite's, beyond 64 bits
        if len(records) < ONE_BY_ONE_BELOW:
            return [_apply_one(session, _recorder(session, r)) for r in records]
        middle = len(records) // 2
        return _record_halving(session, records[:middle]) + _record_halving(
            session, records[middle:]
        )


def _recorder(session: RegisterSession, record: ConnectionRecord) -> Callable[[], ChangeOutcome]:
    return lambda: session.record_connection(
        record.ean, Commodity(record.commodity), record.attributes(), record.valid_from
    )


def _count(report: ImportReport, outcome: ChangeOutcome) -> None:
    setattr(report, outcome.value, getattr(report, outcome.value) + 1)


def _raw(row: Mapping[str | None, object]) -> str:
    """The record as kept in quarantine: its cells joined by commas."""
    return _safe(",".join(str(v) for v in row.values()))


def _safe(text: str) -> str:
    """``text`` as every database and the JSON writer keep it: bytes that were not
    UTF-8 as ``\\xNN``, NUL as ``\\0``."""
    if not text.isascii():
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("\0", "\\0")


def _safe_finding(finding: Finding) -> Finding:
    """``finding`` with a message :func:`_safe` to store and print."""
    message = _safe(finding.message)
    return finding if message == finding.message else Finding(finding.rule, message)


def _refuse(
    session: RegisterSession,
    report: ImportReport,
    line: int,
    row: Mapping[str | None, object],
    finding: Finding,
) -> None:
    finding = _safe_finding(finding)
    report.refused.append(RowRefusal(line, finding.rule, finding.message))
    session.quarantine(report.source, line, _raw(row), finding)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)


def connection_record(version: ConnectionVersion) -> dict[str, str]:
    """A connection version as a CSV row (the inverse of the import)."""
    a = version.attributes
    values: dict[str, object] = {
        "ean": version.ean,
        "commodity": version.commodity,
        "valid_from": version.valid_from,
        "capacity": a.capacity,
        "status": a.status,
        "admin_switch": a.admin_switch,
        "meter_type": a.meter_type,
        "remote_reading": a.remote_reading,
        "postcode": a.address.postcode,
        "house_number": a.address.house_number,
        "house_number_suffix": a.address.house_number_suffix,
        "street": a.address.street,
        "city": a.address.city,
        "municipality": a.address.municipality,
        "woz_object_id": a.address.woz_object_id,
        "substation": a.grid.substation,
        "feeder": a.grid.feeder,
        "phase": a.grid.phase,
        "customer_type": a.customer_type,
        "active_customer": a.active_customer,
        "solar_kwp": a.solar_kwp,
        "solar_registered_on": a.solar_registered_on,
    }
    return {k: _fmt(v) for k, v in values.items()}


def export_register(session: RegisterSession, out_dir: Path) -> dict[RecordKind, Path]:
    """Write the whole register, history included, as the three import files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[RecordKind, Iterable[Mapping[str, str]]] = {
        RecordKind.CONNECTIONS: (connection_record(v) for v in session.connection_versions()),
        RecordKind.SECONDARY_POINTS: (
            {
                "ean": p.ean,
                "primary_ean": p.primary_ean,
                "capacity": p.capacity,
                "status": s.status.value,
                "valid_from": s.valid_from.isoformat(),
                "purpose": p.purpose,
            }
            for p, s in session.all_secondary_status_versions()
        ),
        RecordKind.CONTRACTS: (
            {
                "ean": c.allocation_point_ean,
                "commodity": commodity.value,
                "supplier": c.supplier,
                "contract_holder": c.contract_holder,
                "contract_type": c.contract_type.value,
                "tariff": c.tariff.value,
                "start_date": c.start.isoformat(),
                "end_date": _fmt(c.end),
            }
            for c, commodity in session.all_contracts()
        ),
    }
    return write_register_files(out_dir, rows)


def write_register_files(
    out_dir: Path, rows: Mapping[RecordKind, Iterable[Mapping[str, str]]]
) -> dict[RecordKind, Path]:
    """Write one ``<kind>.csv`` per record kind, in the import format, into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[RecordKind, Path] = {}
    for kind, records in rows.items():
        path = out_dir / f"{kind.value}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS[kind])
            writer.writeheader()
            writer.writerows(records)
        written[kind] = path
    return written
