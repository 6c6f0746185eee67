"""The embedded meter-data store: one DuckDB file (MTR-1, MTR-4, MTR-6; design rule 5).

One curated table per kind (see :mod:`meetpunt.meterdata.kinds`), keyed by the
register's integer connection id; times are ``TIMESTAMP`` values holding UTC (no time
zone casts inside the database: local-time logic goes through the calendar). Beside
them: ``batch`` (one row per committed source, with its SHA-256 and counts), ``quality``
(what each row's quality code means: status, rule, method),
``quarantine`` (refused records with rule, message and the raw record; ``resolved_by``
and ``resolved_at`` name the batch that stored the record on a retry), ``finding``
(checks that failed on stored values: gaps, meter swaps), ``correction`` (earlier
versions of values that a later one replaced) and ``retention_log`` (what retention
deleted).

A batch is written in one transaction: a crash (even ``kill -9``) leaves either the
whole batch or none of it, and the batch row is written last inside it, so a source is
"done" exactly when its rows are.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from meetpunt.domain.findings import Finding
from meetpunt.errors import MeterDataError, StoreUnavailableError
from meetpunt.meterdata.kinds import KINDS, QUALITIES, UTC_US

STORE_ENV = "MEETPUNT_STORE"
SCHEMA_VERSION = "2"
"""Layout version of the store's tables; a store of an older version listed in
``_MIGRATIONS`` is brought up to date when opened for writing, any other is refused."""

_MIGRATIONS: dict[str, tuple[str, ...]] = {
    # 1 -> 2: refused records are retried (quarantine resolution, the batch retried)
    "1": (
        "ALTER TABLE batch ADD COLUMN retry_of INTEGER",
        "ALTER TABLE quarantine ADD COLUMN resolved_by INTEGER",
        "ALTER TABLE quarantine ADD COLUMN resolved_at TIMESTAMP",
    ),
}

_SUPPORT_TABLES = (
    "CREATE SEQUENCE IF NOT EXISTS batch_id START 1",
    """CREATE TABLE IF NOT EXISTS batch (
        id INTEGER PRIMARY KEY, source VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
        committed_at TIMESTAMP NOT NULL, rows BIGINT NOT NULL, accepted BIGINT NOT NULL,
        duplicates BIGINT NOT NULL, estimated BIGINT NOT NULL, quarantined BIGINT NOT NULL,
        retry_of INTEGER)""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        batch INTEGER NOT NULL, kind VARCHAR NOT NULL, source VARCHAR NOT NULL,
        record BIGINT NOT NULL, ean VARCHAR NOT NULL, rule VARCHAR NOT NULL,
        message VARCHAR NOT NULL, raw VARCHAR NOT NULL, resolved_by INTEGER,
        resolved_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS finding (
        batch INTEGER NOT NULL, kind VARCHAR NOT NULL, connection INTEGER NOT NULL,
        "from" TIMESTAMP NOT NULL, "until" TIMESTAMP NOT NULL, rule VARCHAR NOT NULL,
        message VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS correction (
        batch INTEGER NOT NULL, kind VARCHAR NOT NULL, connection INTEGER NOT NULL,
        "at" TIMESTAMP NOT NULL, "key" VARCHAR NOT NULL, old_values VARCHAR NOT NULL,
        old_status VARCHAR NOT NULL, old_batch INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS quality (
        code UTINYINT PRIMARY KEY, status VARCHAR NOT NULL, rule VARCHAR, method VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS retention_log (
        run_at TIMESTAMP NOT NULL, kind VARCHAR NOT NULL, connection INTEGER NOT NULL,
        cutoff DATE NOT NULL, rows BIGINT NOT NULL, rule VARCHAR NOT NULL)""",
)


def default_store_path() -> Path:
    """``MEETPUNT_STORE`` or ``meterdata.duckdb`` in the meetpunt home folder."""
    from meetpunt.register.engine import meetpunt_home

    return Path(os.environ.get(STORE_ENV) or meetpunt_home() / "meterdata.duckdb")


class MeterStore:
    """The DuckDB meter-data store; open it with :func:`open_store`.

    Writes happen through :meth:`transaction`; reads return Arrow tables with UTC
    timestamps.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str) -> None:
        self.con = con
        self.path = path

    def close(self) -> None:
        """Close the database file."""
        self.con.close()

    def __enter__(self) -> MeterStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic write: committed when the block ends, rolled back on any error."""
        self.con.begin()
        try:
            yield self.con
        except BaseException:
            self.con.rollback()
            raise
        self.con.commit()

    def committed_batch(self, sha256: str) -> int | None:
        """The batch id under which a source with these bytes was committed, if any."""
        rows = self.con.execute(
            "SELECT id FROM batch WHERE sha256 = ? ORDER BY id LIMIT 1", [sha256]
        ).fetchall()
        return int(rows[0][0]) if rows else None

    def unresolved_refusals(self, sha256: str) -> list[tuple[int, str, int, str, str]]:
        """The quarantined records of the source with these bytes that no later batch
        stored: (rowid, kind, record, EAN, rule), in quarantine order."""
        rows = self.con.execute(
            "SELECT q.rowid, q.kind, q.record, q.ean, q.rule FROM quarantine q "
            "WHERE q.resolved_by IS NULL AND q.batch IN (SELECT id FROM batch WHERE sha256 = ?) "
            "ORDER BY q.batch, q.rowid",
            [sha256],
        ).fetchall()
        return [(int(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]

    def read(self, kind_name: str, where: str = "", params: list[Any] | None = None) -> pa.Table:
        """A curated table with each value's status, rule and method (MTR-5), optionally
        filtered by a SQL ``where`` clause on its columns; times in UTC."""
        kind = KINDS[kind_name]
        sql = (
            f'SELECT t.* EXCLUDE (quality), q.status, q.rule, q.method FROM "{kind.name}" t '
            "JOIN quality q ON q.code = t.quality"
        ) + (f" WHERE {where}" if where else "")
        order = ", ".join(f'"{k}"' for k in kind.key)
        sql += f" ORDER BY {order}"
        return utc_times(arrow(self.con, sql, params))

    def read_connections(
        self, kind_name: str, connections: Iterable[int], start: datetime, end: datetime
    ) -> pa.Table:
        """The curated rows of ``kind_name`` for ``connections`` with their time in
        ``[start, end)`` (aware datetimes), as :meth:`read` returns them: the one query
        behind every granted read (PRV-1)."""
        kind = KINDS[kind_name]
        ids = sorted(set(connections))
        if not ids:
            return self.read(kind_name, "false")
        marks = ", ".join("?" for _ in ids)
        return self.read(
            kind_name,
            f'connection IN ({marks}) AND "{kind.time}" >= ? AND "{kind.time}" < ?',
            [*ids, naive_utc(start), naive_utc(end)],
        )

    def interrupted_at(self, connections: Iterable[int], at: datetime) -> set[int]:
        """The connections among ``connections`` whose power-failure log holds an
        interruption around ``at`` (start = end - duration <= at < end): the meters that
        would answer "no voltage" if asked at ``at`` (UC1)."""
        ids = sorted(set(connections))
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        moment = naive_utc(at)
        rows = self.con.execute(
            f"SELECT DISTINCT connection FROM power_failure_log WHERE connection IN ({marks}) "
            'AND "end" > ? AND "end" - to_seconds(duration_s) <= ?',
            [*ids, moment, moment],
        ).fetchall()
        return {int(row[0]) for row in rows}

    def quarantined(self, rule: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Refused records with their reasons and raw records (MTR-4/5), oldest first; a
        record a later retry stored carries the batch that resolved it (``resolved_by``,
        ``resolved_at``). They hold EANs and values: read them only through
        :func:`meetpunt.privacy.stewardship.read_quarantine` (PRV-1)."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        where = "WHERE rule = ?" if rule else ""
        rows: list[dict[str, Any]] = self.query(
            "SELECT batch, kind, source, record, ean, rule, message, raw, resolved_by, "
            f"resolved_at FROM quarantine {where} ORDER BY batch, record LIMIT {int(limit)}",
            [rule] if rule else [],
        ).to_pylist()
        return rows

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Any read-only SQL over the store's tables, as Arrow with UTC times."""
        return utc_times(arrow(self.con, sql, params))

    def count(self, table: str) -> int:
        """Rows in a table of the store."""
        return int(self.con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])


def naive_utc(instant: datetime) -> datetime:
    """An aware instant as the store keeps times: naive UTC."""
    return instant.astimezone(UTC).replace(tzinfo=None)


def arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pa.Table:
    """Run ``sql`` and return the result as an Arrow table (no extra copy)."""
    return con.sql(sql, params=params or None).to_arrow_table()


def utc_times(table: pa.Table) -> pa.Table:
    """Mark the store's naive UTC timestamps as UTC for the world outside (MTR-3)."""
    columns = []
    for column in table.columns:
        naive_time = pa.types.is_timestamp(column.type) and column.type.tz is None
        columns.append(column.cast(pa.timestamp("us")).cast(UTC_US) if naive_time else column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def open_store(path: Path | str | None = None, read_only: bool = False) -> MeterStore:
    """Open (and create on first use) the meter-data store at ``path``.

    Default: :func:`default_store_path`. ``:memory:`` gives a store that lives as long
    as the object (tests, benchmarks).
    """
    where = str(path) if path is not None else str(default_store_path())
    try:
        con = duckdb.connect(where, read_only=read_only)
    except duckdb.Error as exc:
        missing = read_only and not Path(where).exists()
        raise StoreUnavailableError(
            f"cannot open the meter-data store {where}: "
            + ("there is no store there yet" if missing else str(exc).splitlines()[0]),
            [Finding("MTR-1.store_unavailable", f"no usable meter-data store at {where}")],
            hint="ingest meter data first (meetpunt ingest PATH) or point --store / "
            "MEETPUNT_STORE at the store; a store held by another writer opens once it stops",
        ) from exc
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        found = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        if found and found[0][0] in _MIGRATIONS:
            con.begin()
            for statement in _MIGRATIONS[found[0][0]]:
                con.execute(statement)
            con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [SCHEMA_VERSION])
            con.commit()
        elif found and found[0][0] != SCHEMA_VERSION:
            con.close()
            raise MeterDataError(
                f"the meter-data store {where} has layout version {found[0][0]}, this meetpunt "
                f"uses {SCHEMA_VERSION}; move the file away and ingest the sources again"
            )
        con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
        for statement in _SUPPORT_TABLES:
            con.execute(statement)
        for kind in KINDS.values():
            con.execute(kind.table_sql())
        for q in QUALITIES:
            con.execute(
                "INSERT OR IGNORE INTO quality VALUES (?, ?, ?, ?)",
                [q.code, q.status.value, q.rule, q.method],
            )
    return MeterStore(con, where)
