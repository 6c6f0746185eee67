"""Recording many connection rows at once: the import's fast path (REG-1, REG-2, REG-6).

:meth:`~meetpunt.register.connections.ConnectionTimelines.record_connection` costs a
handful of queries per row. A register file has up to millions of rows, so the import
hands this module a batch of rows its own checks (``check_connection``) passed, and
the batch is written with a few queries in all:

1. read what the batch touches: which EANs are secondary points (REG-1.unique), which
   connections exist already, their versions, and which of them carry SAPs;
2. apply the rows to those timelines in memory, in file order, with exactly the rule
   of :meth:`~meetpunt.register.base.SessionBase._put_version` (REG-6), so every row
   gets the outcome the one-row path would give it;
3. write the result: new connections and their primary points, new versions, and the
   versions whose end date or values changed, each as one multi-row statement.

A connection that carries SAPs (whose lapse on going out of service is REG-5's) or
has a row with a value a database could refuse or change (see ``_stored_as_given``)
goes through ``record_connection`` itself, one savepoint per row. The caller runs a batch
inside a savepoint, so a database error undoes the whole batch and the caller can
retry it row by row.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Numeric,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from meetpunt.domain.allocation import AllocationPointKind
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import ConnectionAttributes
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.register import schema as t
from meetpunt.register.base import ChangeOutcome
from meetpunt.register.connections import (
    ConnectionTimelines,
    attributes_to_row,
    primary_point_row,
    sap_clash,
)

LOOKUP_CHUNK = 5000
"""EANs or keys per lookup: one array parameter on PostgreSQL and SQLite, an ``IN``
list under every database's bound-parameter limit elsewhere."""

_INTEGER_RANGE = range(-(2**31), 2**31)  # the narrowest Integer of the engines (PostgreSQL)

ATTRIBUTE_COLUMNS = tuple(
    c.name
    for c in t.connection_version.columns
    if c.name not in ("id", "connection_id", "valid_from", "valid_to")
)
_TEXT_LENGTHS = tuple(
    (name, t.connection_version.c[name].type.length or 0)  # type: ignore[attr-defined]
    for name in ATTRIBUTE_COLUMNS
    if isinstance(t.connection_version.c[name].type, String)
)

_INTEGERS = tuple(
    name for name in ATTRIBUTE_COLUMNS if isinstance(t.connection_version.c[name].type, Integer)
)
_NUMERICS = tuple(
    (name, kind.scale or 0, kind.precision)
    for name in ATTRIBUTE_COLUMNS
    if isinstance(kind := t.connection_version.c[name].type, Numeric)
)


Values = tuple[Any, ...]
"""A connection state as ``connection_version`` values, in the order of
:data:`ATTRIBUTE_COLUMNS`."""


class ConnectionRecord(NamedTuple):
    """One connection row that passed its checks, to record from ``valid_from`` on.

    ``values`` and ``sound`` (see :func:`prepare`) are computed where the row was
    checked, a worker process for a large file; ``attributes`` rebuilds the state for
    the rows that go through ``record_connection`` (few: it is not called otherwise).
    """

    ean: str
    commodity: str  # a Commodity value
    valid_from: date
    values: Values
    sound: bool
    attributes: Callable[[], ConnectionAttributes]


def prepare(attributes: ConnectionAttributes) -> tuple[Values, bool]:
    """The ``connection_version`` values of ``attributes``, and whether a database
    stores them as given (see ``_stored_as_given``)."""
    row = attributes_to_row(attributes)
    return tuple([row[name] for name in ATTRIBUTE_COLUMNS]), _stored_as_given(row)


@dataclass(slots=True)
class _Version:
    """A version on an in-memory timeline: ``id`` is None until it is written."""

    id: int | None
    valid_from: date
    valid_to: date | None
    values: Values
    dirty: bool = False


def record_connections(
    session: ConnectionTimelines, records: Sequence[ConnectionRecord]
) -> list[ChangeOutcome | Finding]:
    """Record ``records`` in order; per record its outcome, or the finding refusing it.

    The result equals calling ``record_connection`` for each record in turn (and
    turning a refusal into its first finding); run it inside a savepoint.
    """
    db = session.db
    eans = sorted({r.ean for r in records})
    ap = t.allocation_point
    secondary = AllocationPointKind.SECONDARY.value
    clashing = {
        ean
        for part in _chunks(eans)
        for ean in db.execute(
            select(ap.c.ean).where(_among(db, ap.c.ean, part), ap.c.kind == secondary)
        ).scalars()
    }
    known: dict[tuple[str, str], int] = {
        (row.ean, row.commodity): row.id
        for part in _chunks(eans)
        for row in db.execute(
            select(t.connection.c.id, t.connection.c.ean, t.connection.c.commodity).where(
                _among(db, t.connection.c.ean, part)
            )
        )
    }
    with_saps = {
        connection_id
        for part in _chunks(sorted(known.values()))
        for connection_id in db.execute(
            select(ap.c.connection_id).where(
                _among(db, ap.c.connection_id, part), ap.c.kind == secondary
            )
        ).scalars()
    }
    # connections the batch path leaves to record_connection (see the module docstring)
    one_by_one = {key for key, connection_id in known.items() if connection_id in with_saps} | {
        (r.ean, r.commodity) for r in records if not r.sound
    }
    timelines = _known_timelines(session, known, one_by_one)
    results: list[ChangeOutcome | Finding | None] = []
    slow: list[int] = []
    created: list[tuple[tuple[str, str], _Version]] = []
    new_keys: list[tuple[str, str]] = []  # in order of first sight, as one by one
    for index, record in enumerate(records):
        key = (record.ean, record.commodity)
        if record.ean in clashing:
            results.append(sap_clash(record.ean))
            continue
        if key not in known and key not in timelines:
            new_keys.append(key)
            timelines[key] = []
        if key in one_by_one:
            results.append(None)
            slow.append(index)
            continue
        outcome, version = _put(timelines[key], record.valid_from, record.values)
        if version is not None:
            created.append((key, version))
        results.append(outcome)
    _write(session, known, new_keys, created, timelines)
    for index in slow:
        record = records[index]
        try:
            with session.savepoint():
                results[index] = session.record_connection(
                    record.ean, Commodity(record.commodity), record.attributes(), record.valid_from
                )
        except MeetpuntError as exc:
            results[index] = (
                exc.findings[0] if exc.findings else Finding("REG-import.row", str(exc))
            )
    done = [r for r in results if r is not None]
    assert len(done) == len(records)  # every slow record got its result above
    return done


def _put(
    timeline: list[_Version], valid_from: date, values: Values
) -> tuple[ChangeOutcome, _Version | None]:
    """``_put_version`` on an in-memory timeline (sorted by ``valid_from``); the new
    version when one was opened."""
    if not timeline:  # a new connection: most rows of a first import
        version = _Version(None, valid_from, None, values)
        timeline.append(version)
        return ChangeOutcome.INSERTED, version
    covering = next(
        (
            v
            for v in timeline
            if v.valid_from <= valid_from and (v.valid_to is None or valid_from < v.valid_to)
        ),
        None,
    )
    if covering is None:
        later = [v.valid_from for v in timeline if v.valid_from > valid_from]
        version = _Version(None, valid_from, min(later, default=None), values)
        _insert_sorted(timeline, version)
        return ChangeOutcome.INSERTED, version
    same = covering.values == values
    if covering.valid_from == valid_from:
        if same:
            return ChangeOutcome.UNCHANGED, None
        covering.values = values
        covering.dirty = True
        return ChangeOutcome.CHANGED, None
    version = _Version(None, valid_from, covering.valid_to, values)
    covering.valid_to = valid_from
    covering.dirty = True
    _insert_sorted(timeline, version)
    return (ChangeOutcome.INSERTED if same else ChangeOutcome.CHANGED), version


def _insert_sorted(timeline: list[_Version], version: _Version) -> None:
    position = next(
        (i for i, v in enumerate(timeline) if v.valid_from > version.valid_from), len(timeline)
    )
    timeline.insert(position, version)


def _known_timelines(
    session: ConnectionTimelines,
    known: dict[tuple[str, str], int],
    one_by_one: set[tuple[str, str]],
) -> dict[tuple[str, str], list[_Version]]:
    """The stored versions of the batch's existing connections, oldest first."""
    by_id = {cid: key for key, cid in known.items() if key not in one_by_one}
    timelines: dict[tuple[str, str], list[_Version]] = {key: [] for key in by_id.values()}
    cv = t.connection_version
    for part in _chunks(sorted(by_id)):
        query = (
            select(cv)
            .where(_among(session.db, cv.c.connection_id, part))
            .order_by(cv.c.connection_id, cv.c.valid_from)
        )
        for row in session.db.execute(query):
            mapping = row._mapping
            values = tuple([mapping[name] for name in ATTRIBUTE_COLUMNS])
            timelines[by_id[row.connection_id]].append(
                _Version(row.id, row.valid_from, row.valid_to, values)
            )
    return timelines


def _write(
    session: ConnectionTimelines,
    known: dict[tuple[str, str], int],
    new_keys: list[tuple[str, str]],
    created: list[tuple[tuple[str, str], _Version]],
    timelines: dict[tuple[str, str], list[_Version]],
) -> None:
    """Write the batch's new connections, primary points, new and changed versions."""
    db = session.db
    ids = dict(known)
    if new_keys:
        _insert_rows(db, t.connection, ("ean", "commodity"), new_keys)
        # read the keys back rather than RETURNING them: SQLite's driver then inserts
        # one row per statement to keep their order
        wanted = set(new_keys)
        for part in _chunks(sorted({ean for ean, _ in new_keys})):
            for row in db.execute(
                select(t.connection.c.id, t.connection.c.ean, t.connection.c.commodity).where(
                    _among(db, t.connection.c.ean, part)
                )
            ):
                if (row.ean, row.commodity) in wanted:
                    ids[(row.ean, row.commodity)] = row.id
        points = [primary_point_row(ean, ids[(ean, commodity)]) for ean, commodity in new_keys]
        columns = tuple(points[0])
        values_of = operator.itemgetter(*columns)
        _insert_rows(db, t.allocation_point, columns, [values_of(p) for p in points])
    cv = t.connection_version
    changed = [
        {"version_id": v.id, "new_valid_to": v.valid_to}
        | {f"new_{name}": value for name, value in zip(ATTRIBUTE_COLUMNS, v.values, strict=True)}
        for timeline in timelines.values()
        for v in timeline
        if v.dirty and v.id is not None
    ]
    if changed:
        db.execute(
            update(cv)
            .where(cv.c.id == bindparam("version_id"))
            .values({name: bindparam(f"new_{name}") for name in ("valid_to", *ATTRIBUTE_COLUMNS)}),
            changed,
        )
    if created:
        rows = [(ids[key], v.valid_from, v.valid_to, *v.values) for key, v in created]
        _insert_rows(db, cv, ("connection_id", "valid_from", "valid_to", *ATTRIBUTE_COLUMNS), rows)


def _insert_rows(
    db: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in the order of ``columns``) in one go.

    PostgreSQL takes them by COPY, several times faster there than any INSERT. Other
    databases get one driver-level executemany of the compiled INSERT, the values
    converted by the column types' own bind processors: the same values SQLAlchemy
    would send, without its per-row bookkeeping (half the cost of a row on SQLite).
    """
    if not rows:
        return
    dialect = db.dialect
    if dialect.name == "postgresql":
        _copy_rows(db, table, columns, rows)
        return
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    names = list(compiled.positiontup or ()) if compiled.positional else list(columns)
    where = [columns.index(name) for name in names]
    in_order = where == list(range(len(columns)))
    processors = [
        (position, processor)
        for position, name in enumerate(names)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    params: list[Any] = []
    for row in rows:
        values = list(row) if in_order else [row[i] for i in where]
        for position, process in processors:
            if values[position] is not None:  # every processor keeps None as None
                values[position] = process(values[position])
        params.append(
            tuple(values) if compiled.positional else dict(zip(names, values, strict=True))
        )
    db.exec_driver_sql(str(compiled), params)


def _copy_rows(
    db: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """PostgreSQL's COPY of ``rows`` into ``table``, through the session's connection."""
    quote = db.dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    dbapi = db.dialect.loaded_dbapi
    driver = db.connection.driver_connection
    assert driver is not None  # an open transaction holds its connection
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except dbapi.Error as exc:  # the driver's own error: let callers see SQLAlchemy's
        raise DBAPIError.instance(sql, None, exc, dbapi.Error, dialect=db.dialect) from exc


def _stored_as_given(values: dict[str, Any]) -> bool:
    """False when a database could refuse a value (text too long or with NUL, an
    integer beyond 32 bits, a number beyond its precision) or store it changed (a
    number rounded to its scale). Such a connection takes the one-row path: later rows
    of the batch must be compared with what was stored, and a refusal must hit this
    row, not vanish because a later row of the batch overwrote it in memory."""
    for name, length in _TEXT_LENGTHS:
        text = values[name]
        if text is not None and ((length and len(text) > length) or "\0" in text):
            return False
    for name in _INTEGERS:
        if values[name] is not None and values[name] not in _INTEGER_RANGE:
            return False
    for name, scale, precision in _NUMERICS:
        number: Decimal | None = values[name]
        if number is None:
            continue
        if not number.is_finite():
            return False
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -scale:
            return False
        if precision is not None and number != 0 and number.adjusted() >= precision - scale:
            return False
    return True


def _among(db: Connection, column: ColumnElement[Any], values: list[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL as ``= ANY(array)``, one parameter instead of
    thousands (the driver and the planner handle that much faster)."""
    if db.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    if db.dialect.name == "sqlite":  # likewise, as a JSON array
        each = func.json_each(bindparam(None, json.dumps(values))).table_valued("value")
        return column.in_(select(each.c.value))
    return column.in_(values)


def _chunks(values: Iterable[Any], size: int = LOOKUP_CHUNK) -> Iterator[list[Any]]:
    iterator = iter(values)
    while part := list(islice(iterator, size)):
        yield part
