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

Side by side (MTR-1, issue 14): DuckDB lets one process hold the file read-write and
then no other process open it at all, so no process keeps it open: each holds a *lease*
for one unit of work (a micro-batch, a part of a file, a retention run, one gate read)
and closes the file after it. An opener that finds the file held waits with a short
backoff, says once on stderr what it waits for, and gives up after MEETPUNT_STORE_WAIT
seconds with MTR-1.store_busy (see :func:`_attach`).

A serving process may *keep* a read-only lease between reads (``keep_s``, issue 17
follow-up): the file stays attached until it has been idle that long or a writer
announces that it waits (a lock on ``<store>.writer``, see :class:`_Intent`); a read
lease does not begin while a writer waits, so a writer gets in after the reads under
way, and a read after its commit attaches the file again and sees it.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from meetpunt.domain.findings import Finding
from meetpunt.errors import MeterDataError, StoreUnavailableError
from meetpunt.meterdata.kinds import (
    KINDS,
    MEASURED,
    MEASURED_CODES,
    QUALITIES,
    REGISTERS,
    SWITCH_ESTIMATE,
    UTC_US,
)

STORE_ENV = "MEETPUNT_STORE"
STORE_WAIT_ENV = "MEETPUNT_STORE_WAIT"
DEFAULT_STORE_WAIT_S = 120.0
"""How long a lease waits for a store another process holds before MTR-1.store_busy."""
BACKOFF_START_S = 0.02
BACKOFF_CAP_S = 0.25
"""A waiting lease retries after 20 ms, doubling to at most 250 ms between tries."""
NOTICE_AFTER_S = 0.5
"""A lease that has waited this long says on stderr what it waits for (once)."""
SERVE_KEEP_S = 0.5
"""How long a serving process keeps the store attached after its last read (MTR-1,
issue 17 follow-up): a read then costs no ATTACH + DETACH (2.8 ms of CPU)."""
KEEP_POLL_S = 0.02
"""How often a kept, idle store looks whether a writer waits for it."""
WRITER_SUFFIX = ".writer"
"""The file beside the store on which a waiting writer holds a lock (:class:`_Intent`)."""
SCHEMA_VERSION = "4"
"""Layout version of the store's tables; a store of an older version listed in
``_MIGRATIONS`` is brought up to date when opened for writing, any other is refused."""

_TO_3 = (
    # 2 -> 3: switch and move readings (MKT-5, issue 20) and their estimate's quality code
    KINDS["switch_readings"].table_sql(),
    "INSERT OR IGNORE INTO quality VALUES "
    f"({SWITCH_ESTIMATE.code}, '{SWITCH_ESTIMATE.status.value}', '{SWITCH_ESTIMATE.rule}', "
    f"'{SWITCH_ESTIMATE.method}')",
)
_TO_4 = (
    # 3 -> 4: the gas register of a switch or move day, on the gas connection (MKT-5)
    KINDS["gas_switch_readings"].table_sql(),
)
_MIGRATIONS: dict[str, tuple[str, ...]] = {
    # 1 -> 2: refused records are retried (quarantine resolution, the batch retried)
    "1": (
        "ALTER TABLE batch ADD COLUMN retry_of INTEGER",
        "ALTER TABLE quarantine ADD COLUMN resolved_by INTEGER",
        "ALTER TABLE quarantine ADD COLUMN resolved_at TIMESTAMP",
        *_TO_3,
        *_TO_4,
    ),
    "2": (*_TO_3, *_TO_4),
    "3": _TO_4,
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


ChangeKey = tuple[int, str, int, datetime]
"""A stored row as the change feed names it: batch, kind, connection, naive UTC time."""


class MeterStore:
    """The DuckDB meter-data store; open it with :func:`open_store`.

    A file store is held only for one unit of work at a time, a *lease* (MTR-1 side by
    side; see :meth:`lease`): DuckDB lets one process hold a file read-write and then
    nobody else open it, so every process opens the file for one batch, one part, one
    retention run or one read, and closes it right after. Writes happen through
    :meth:`transaction`; reads return Arrow tables with UTC timestamps, each in its own
    lease unless the caller holds one. A ``:memory:`` store keeps its one connection
    (it is its own lease).
    """

    def __init__(
        self,
        path: str,
        read_only: bool = False,
        wait_s: float | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
        keep_s: float = 0.0,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.wait_s = wait_s
        """How long a lease waits for another process's lease before it gives up
        (``None``: :func:`store_wait_s`, MEETPUNT_STORE_WAIT)."""
        self.keep_s = keep_s if read_only else 0.0
        """How long a read-only lease keeps the file attached after it ends, for the
        next read, unless a writer waits (0: detached at once; :data:`SERVE_KEEP_S`)."""
        self._held = con
        self._closed = False
        self._qualities: dict[int, tuple[str, str | None, str | None]] | None = None
        """The ``quality`` table by code, read by the first granted read."""

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The connection of the lease this thread holds on the store (only inside
        :meth:`lease` or :meth:`transaction`, or the held ``:memory:`` connection)."""
        if self._held is not None:
            return self._held
        held = _leases().get(self._key())
        if held is None:
            raise RuntimeError(f"the meter-data store {self.path} is used outside a lease")
        return held.con

    def _key(self) -> str:
        return os.path.realpath(self.path)

    @contextmanager
    def lease(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the store for one unit of work: attach the file (waiting while another
        process holds it, see :func:`_attach`), yield a connection whose default
        database it is, detach it.

        Re-entrant: inside a lease this thread already holds on the same file (through
        this object or another one), the open connection is used again; a read-write
        lease inside a read-only one is refused (a programming error)."""
        if self._held is not None:
            yield self._held
            return
        if self._closed:
            raise RuntimeError(f"the meter-data store {self.path} was closed")
        leases = _leases()
        key = self._key()
        outer = leases.get(key)
        if outer is not None:
            if outer.read_only and not self.read_only:
                raise RuntimeError(
                    f"a write lease on {self.path} inside a read-only one: take the write "
                    "lease first"
                )
            outer.depth += 1
            try:
                yield outer.con
            finally:
                outer.depth -= 1
            return
        con = _attach(key, self.read_only, self.wait_s)
        leases[key] = _Lease(con, self.read_only)
        try:
            yield con
        finally:
            del leases[key]
            _detach(key, con, self.keep_s)

    def changed_since(
        self, kinds: Sequence[str], connections: Sequence[int], after: int
    ) -> tuple[int, list[tuple[int, str, int, int, datetime, datetime]], set[ChangeKey]]:
        """What batches after ``after`` stored for ``connections``, in one read lease
        (the change feed of issue 17): the newest committed batch id; per batch, kind
        and connection the row count and the first and last time (no values: those
        leave only through the gate); and the corrections among them as (batch, kind,
        connection, naive UTC time). Nothing but the head for ``after`` at or past it."""
        found: list[tuple[int, str, int, int, datetime, datetime]] = []
        corrected: set[ChangeKey] = set()
        with self.lease() as con:
            head = int(con.execute("SELECT coalesce(max(id), 0) FROM batch").fetchall()[0][0])
            if not connections or after >= head:
                return head, found, corrected
            marks = ", ".join("?" for _ in connections)
            present = {
                str(r[0])
                for r in con.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_catalog = "
                    "current_database()"
                ).fetchall()
            }
            # a store of an older layout opened read-only lacks the newer kinds' tables
            # (switch_readings, layout 3; gas_switch_readings, layout 4) until a writer
            # opens it: nothing changed there
            for name in (k for k in kinds if k in present):
                column = KINDS[name].time
                rows = con.execute(
                    f'SELECT batch, connection, count(*), min("{column}"), max("{column}") '
                    f'FROM "{name}" WHERE batch > ? AND batch <= ? AND connection IN ({marks}) '
                    "GROUP BY batch, connection",
                    [after, head, *connections],
                ).fetchall()
                found += [(int(b), name, int(c), int(n), f, last) for b, c, n, f, last in rows]
            kind_marks = ", ".join("?" for _ in kinds)
            for b, k, c, at in con.execute(
                f'SELECT batch, kind, connection, "at" FROM correction WHERE batch > ? '
                f"AND batch <= ? AND kind IN ({kind_marks}) AND connection IN ({marks})",
                [after, head, *kinds, *connections],
            ).fetchall():
                corrected.add((int(b), str(k), int(c), at))
        return head, found, corrected

    def close(self) -> None:
        """Close the store: the held ``:memory:`` connection; a file store holds
        nothing between leases but a kept one, detached now."""
        self._closed = True
        if self._held is not None:
            self._held.close()
        elif self.keep_s > 0:
            _release_kept(self._key())

    def __enter__(self) -> MeterStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic write in a lease (its own, unless the caller holds one): committed
        when the block ends, rolled back on any error."""
        with self.lease() as con:
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()

    def record_switch_reading(
        self,
        connection: int,
        at: datetime,
        registers: dict[str, int | None],
        event: str,
        estimated: bool,
        now: datetime,
    ) -> int:
        """Store the reading of a switch or move day (MKT-5, issue 20) as a batch of its
        own, so the change feed carries it to the old and the new supplier after their
        cursors; one recorded again for the same connection and moment replaces the
        earlier row (a corrected switch reaches the feed again). Returns the batch id."""
        values = [registers.get(name) for name in REGISTERS]
        return self._record_switch("switch_readings", connection, at, values, event, estimated, now)

    def record_gas_switch_reading(
        self,
        connection: int,
        at: datetime,
        reading_dm3: int,
        event: str,
        estimated: bool,
        now: datetime,
    ) -> int:
        """Store the gas register (dm3) of a switch or move day on the gas connection
        ``connection``, as :meth:`record_switch_reading` does for electricity (MKT-5)."""
        return self._record_switch(
            "gas_switch_readings", connection, at, [reading_dm3], event, estimated, now
        )

    def _record_switch(
        self,
        table: str,
        connection: int,
        at: datetime,
        values: list[int | None],
        event: str,
        estimated: bool,
        now: datetime,
    ) -> int:
        if event not in ("switch", "move"):
            raise MeterDataError(f"a switch reading's event is 'switch' or 'move', not {event!r}")
        code = SWITCH_ESTIMATE.code if estimated else MEASURED.code
        names = ", ".join(f'"{c.name}"' for c in KINDS[table].values)
        marks = ", ".join("?" for _ in KINDS[table].values)
        with self.transaction() as con:
            batch = int(con.execute("SELECT nextval('batch_id')").fetchall()[0][0])
            con.execute(
                f'DELETE FROM "{table}" WHERE connection = ? AND "at" = ?',
                [connection, naive_utc(at)],
            )
            con.execute(
                f'INSERT INTO "{table}" (connection, "at", {names}, quality, batch) '
                f"VALUES (?, ?, {marks}, ?, ?)",
                [connection, naive_utc(at), *values, event, code, batch],
            )
            con.execute(
                "INSERT INTO batch (id, source, sha256, committed_at, rows, accepted, "
                "duplicates, estimated, quarantined, retry_of) "
                "VALUES (?, ?, ?, ?, 1, 1, 0, ?, 0, NULL)",
                [
                    batch,
                    f"market {event}" + (" gas" if table == "gas_switch_readings" else ""),
                    f"{event}:{table}:{connection}:{naive_utc(at).isoformat()}:{batch}",
                    naive_utc(now),
                    int(estimated),
                ],
            )
        return batch

    def committed_batch(self, sha256: str) -> int | None:
        """The batch id under which a source with these bytes was committed, if any."""
        with self.lease() as con:
            rows = con.execute(
                "SELECT id FROM batch WHERE sha256 = ? ORDER BY id LIMIT 1", [sha256]
            ).fetchall()
        return int(rows[0][0]) if rows else None

    def unresolved_refusals(self, sha256: str) -> list[tuple[int, str, int, str, str]]:
        """The quarantined records of the source with these bytes that no later batch
        stored: (rowid, kind, record, EAN, rule), in quarantine order."""
        with self.lease() as con:
            rows = con.execute(
                "SELECT q.rowid, q.kind, q.record, q.ean, q.rule FROM quarantine q "
                "WHERE q.resolved_by IS NULL AND q.batch IN "
                "(SELECT id FROM batch WHERE sha256 = ?) ORDER BY q.batch, q.rowid",
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
        with self.lease() as con:
            return utc_times(arrow(con, sql, params))

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
        sql = (
            f'SELECT * FROM "{kind.name}" WHERE connection IN ({marks}) '
            f'AND "{kind.time}" >= ? AND "{kind.time}" < ?'
        )
        with self.lease() as con:
            table = arrow(con, sql, [*ids, naive_utc(start), naive_utc(end)])
            table = self._with_quality(con, table)
        order = [(k, "ascending") for k in kind.key]
        return utc_times(table.sort_by(order) if table.num_rows > 1 else table)

    def _with_quality(self, con: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
        """``table`` with each row's quality code replaced by its status, rule and method,
        as :meth:`read`'s join gives them (a row whose code the ``quality`` table lacks
        is dropped, as by the join). The join and the ``ORDER BY`` in DuckDB cost a
        granted read ~2 ms of CPU more than a lookup and a sort in Arrow (issue 17);
        the codes are read once per store object, again when one is new."""
        codes = table.column("quality")
        found = self._qualities
        seen = set(pc.unique(codes).to_pylist())
        if found is None or not seen <= found.keys():
            rows = con.execute("SELECT code, status, rule, method FROM quality").fetchall()
            found = {int(r[0]): (r[1], r[2], r[3]) for r in rows}
            self._qualities = found
        keep = table
        if not seen <= found.keys():
            keep = table.filter(pc.is_in(codes, pa.array(sorted(found), pa.uint8())))
            codes = keep.column("quality")
        index = pc.cast(codes, pa.int32())
        columns = {
            name: pa.array([found.get(c, (None,) * 3)[i] for c in range(256)], pa.string())
            for i, name in enumerate(("status", "rule", "method"))
        }
        out = keep.drop_columns(["quality"])
        for name, lookup in columns.items():
            out = out.append_column(name, pc.take(lookup, index))
        return out

    def interrupted_at(self, connections: Iterable[int], at: datetime) -> set[int]:
        """The connections among ``connections`` that would answer "no voltage" if asked
        at ``at`` (UC1): :meth:`voltage_at` False."""
        return {c for c, v in self.voltage_at(connections, at).items() if v is False}

    def voltage_at(self, connections: Iterable[int], at: datetime) -> dict[int, bool | None]:
        """What each meter among ``connections`` would answer if asked for voltage at
        ``at`` (UC1, issue 16): False when its failure log holds an interruption around
        ``at``, or when it recorded no energy from ``at``'s quarter-hour on (an outage
        still open when the data ends has no log entry yet); None when it measured
        nothing then (offline: estimates are no answer), recorded no energy nor voltage
        in ``at``'s quarter-hour without a log entry, or was replaced within a day of
        ``at``; see :func:`supply_answer`.
        Only this yes/no leaves the store's caller, never the values behind it."""
        ids = sorted(set(connections))
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        measured = ", ".join(str(c) for c in MEASURED_CODES)
        moment = naive_utc(at)
        quarter = quarter_start(moment)
        since, until = moment - SILENCE_HORIZON, moment + SILENCE_HORIZON
        with self.lease() as con:
            logged = con.execute(
                "SELECT DISTINCT connection FROM power_failure_log "
                f'WHERE connection IN ({marks}) AND "end" > ? '
                'AND "end" - to_seconds(duration_s) <= ?',
                [*ids, moment, moment],
            ).fetchall()
            gasps = con.execute(
                f"SELECT connection, max(sent_at) FROM last_gasp WHERE connection IN ({marks}) "
                "AND sent_at >= ? AND sent_at < ? GROUP BY connection",
                [*ids, quarter - QUARTER, quarter + QUARTER],
            ).fetchall()
            # only measured quarter-hours answer: a gap's estimate is no sign of supply
            quarters = con.execute(
                "SELECT connection, max(start), "
                "max(start) FILTER (WHERE import_wh + export_wh > 0), "
                "bool_or(start = ? AND import_wh + export_wh = 0) "
                f"FROM quarter_hours WHERE connection IN ({marks}) AND start >= ? "
                f"AND start <= ? AND quality IN ({measured}) GROUP BY connection",
                [quarter, *ids, since, until],
            ).fetchall()
            volts = con.execute(
                "SELECT connection, max(voltage_v) FROM voltages_10min "
                f"WHERE connection IN ({marks}) AND start = ? AND quality IN ({measured}) "
                "GROUP BY connection",
                [*ids, ten_minutes_start(moment)],
            ).fetchall()
            swapped = con.execute(
                f"SELECT DISTINCT connection FROM finding WHERE connection IN ({marks}) "
                'AND rule = ? AND "from" >= ? AND "from" <= ?',
                [*ids, METER_SWAP_RULE, moment - SWAP_HORIZON, moment + SWAP_HORIZON],
            ).fetchall()
        dark = {int(r[0]) for r in logged}
        gasp = {int(r[0]): r[1] for r in gasps}
        read = {int(r[0]): (r[1], r[2]) for r in quarters}
        idle_now = {int(r[0]) for r in quarters if r[3]}
        new_meter = {int(r[0]) for r in swapped}
        mean_v = {int(r[0]): float(r[1]) for r in volts if r[1] is not None}
        return {
            c: supply_answer(
                moment,
                c in dark,
                gasp.get(c),
                *read.get(c, (None, None)),
                since=since,
                zero_now=c in idle_now,
                replaced=c in new_meter,
                volts=mean_v.get(c),
            )
            for c in ids
        }

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
        with self.lease() as con:
            return utc_times(arrow(con, sql, params))

    def count(self, table: str) -> int:
        """Rows in a table of the store."""
        with self.lease() as con:
            return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])


#: A quarter-hour, the resolution of the energy a meter records.
QUARTER = timedelta(minutes=15)
#: How far around a moment :meth:`MeterStore.voltage_at` looks for recorded energy:
#: a meter that used energy in the day before and none in the day after (or until its
#: data ends) has no supply.
SILENCE_HORIZON = timedelta(days=1)
#: A meter exchange (MTR-5.meter_swap, found at the new meter's first daily reading)
#: this close to a moment makes the meter's log there unreliable (issue 16): the old
#: meter never logs the outage it was replaced in, the new one starts with an empty log.
SWAP_HORIZON = timedelta(days=1, hours=1)
METER_SWAP_RULE = "MTR-5.meter_swap"
#: A 10-minute mean voltage at or above this: the meter had voltage for part of the
#: interval at least (230 V nominal). Below it the mean says nothing sure: a meter
#: reports 0 V for a step it was not supplied all through (the twin: 5 minutes).
NO_VOLTAGE_V = 10.0


def quarter_start(moment: datetime) -> datetime:
    """The start of the quarter-hour holding ``moment`` (naive UTC)."""
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def ten_minutes_start(moment: datetime) -> datetime:
    """The start of the 10-minute voltage interval holding ``moment`` (naive UTC)."""
    return moment.replace(minute=moment.minute - moment.minute % 10, second=0, microsecond=0)


def supply_answer(
    at: datetime,
    logged: bool,
    gasp: datetime | None,
    last_read: datetime | None,
    last_supplied: datetime | None,
    since: datetime | None = None,
    *,
    zero_now: bool = False,
    replaced: bool = False,
    volts: float | None = None,
) -> bool | None:
    """A smart meter's voltage at ``at`` from what the store holds (UC1, issue 16):

    * ``logged``: its failure log holds an interruption around ``at``: no voltage;
    * ``last_read`` / ``last_supplied``: the last quarter-hour it measured and the last
      one with energy, within a day around ``at`` (estimates left out). Nothing
      measured from ``at``'s quarter-hour on: the meter is offline (its data arrives
      late or never, and it sends no last gasp while down): unknown (None), not lit;
    * a meter that used energy before (``since`` on) and none from the quarter-hour
      before ``at``'s to the last one read is dark: an outage still open when the data
      ends has no log entry yet (the meter logs an interruption when supply returns);
    * ``replaced``: the meter was exchanged within a day of ``at`` (the meter index's
      MTR-5.meter_swap): the old meter never logs the outage it was replaced in and the
      new one starts with an empty log, so no entry is no answer: unknown;
    * ``zero_now``: it measured no energy in ``at``'s quarter-hour though it used energy
      in the day before, its log holds nothing and no voltage was measured then: a lost
      or shifted log entry (issue 16: log overflow, a drifting clock) or a house using
      nothing: unknown. With voltage measured then (``volts``: the highest phase's
      10-minute mean of the interval holding ``at``, at least :data:`NO_VOLTAGE_V`) it
      is lit: its own breaker tripped;
    * supplied in ``at``'s quarter-hour or the one before and silent after: it went dark
      around ``at`` (a few minutes' supply can floor to 0 Wh); its last gasp (``gasp``,
      sent in those quarters) says whether before or after ``at``; without one the store
      cannot tell (None);
    * anything else: voltage.
    """
    if logged:
        return False
    quarter = quarter_start(at)
    if last_read is None or last_read < quarter:
        return None
    if last_supplied is None or (since is not None and last_supplied < since):
        return True
    if last_supplied != last_read and last_supplied < quarter - QUARTER:
        return False
    if last_supplied != last_read and last_supplied <= quarter:
        return None if gasp is None else gasp > at
    if replaced or (zero_now and (volts is None or volts < NO_VOLTAGE_V)):
        return None
    return True


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


@dataclass
class _Lease:
    """A lease this thread holds on one store file (see :meth:`MeterStore.lease`)."""

    con: duckdb.DuckDBPyConnection
    read_only: bool
    depth: int = 0


_THREAD = threading.local()


def _leases() -> dict[str, _Lease]:
    """The leases the current thread holds, by the store file's real path."""
    found: dict[str, _Lease] | None = getattr(_THREAD, "leases", None)
    if found is None:
        found = _THREAD.leases = {}
    return found


def store_wait_s() -> float:
    """How long an opener waits for a store another process holds: MEETPUNT_STORE_WAIT
    seconds, default :data:`DEFAULT_STORE_WAIT_S` (MTR-1.store_busy after it)."""
    text = os.environ.get(STORE_WAIT_ENV, "").strip()
    if not text:
        return DEFAULT_STORE_WAIT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise StoreUnavailableError(
            f"{STORE_WAIT_ENV}={text!r} is not a number of seconds",
            [Finding("MTR-1.store_wait", f"{STORE_WAIT_ENV} must be seconds, 0 or more")],
            hint=f"set {STORE_WAIT_ENV} (or --store-wait) to seconds, e.g. 120",
        )
    return value


def _say_waiting(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


on_wait: Callable[[str], None] = _say_waiting
"""Hears, once per lease that has to wait, what it waits for (default: a line on stderr)."""

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class _Host:
    """This process's one in-memory DuckDB, into which leases ATTACH the store files.

    Opening a DuckDB database builds its whole catalogue of built-in functions (measured
    80-150 ms an open on this machine under load, even for ``:memory:``); attaching a
    file to a database that lives on costs a few milliseconds and takes and releases the
    same file lock (benchmarks/store_leases.py)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET GLOBAL TimeZone = 'UTC'")
        self.attached: dict[str, _Attached] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        """Wakes the keeper when a lease is kept (see :func:`_keep`)."""
        self.keeper: threading.Thread | None = None
        self.serial = 0

    def detach(self, path: str) -> None:
        """Detach ``path`` (hold :attr:`lock`): DuckDB writes what it holds to the file
        and releases its lock."""
        found = self.attached.pop(path)
        self.con.execute(f"DETACH {found.alias}")


@dataclass
class _Attached:
    """A store file attached to the host: its alias, mode and the leases using it; a
    read-only one without users may be *kept* (``idle_since`` set) for ``keep_s``."""

    alias: str
    read_only: bool
    users: int
    keep_s: float = 0.0
    idle_since: float | None = None


_HOSTS: dict[int, _Host] = {}
"""The host database by process id (a forked child makes its own: DuckDB does not
survive a fork)."""
_HOST_LOCK = threading.Lock()


def _host() -> _Host:
    """This process's host database."""
    with _HOST_LOCK:
        pid = os.getpid()
        if pid not in _HOSTS:
            _HOSTS[pid] = _Host()
        return _HOSTS[pid]


class _WriterWaitsError(Exception):
    """A read lease finds a writer waiting for the store (:func:`writer_waiting`); the
    message says what the writer waits for, as the writer wrote it."""


class _Intent:
    """A writer's announcement that it waits for the store (MTR-1 side by side): an
    exclusive ``flock`` on ``<store>.writer``, taken when its first try finds the file
    held and released once it holds the store or gives up. The kernel drops it when
    the process dies, so a crashed writer announces nothing. Readers that see it start
    no lease and let a kept one go (:func:`writer_waiting`), so the writer waits only
    for the reads under way, never for a stream of reads without end. The file holds a
    line saying who holds the store and which writer waits, for the readers' notice."""

    def __init__(self, path: str) -> None:
        self.path = path + WRITER_SUFFIX
        self.fd: int | None = None
        self.said = ""

    def take(self, holder: str) -> None:
        """Announce, if not yet done, that this writer waits for ``holder``; a writer
        that cannot (another writer announced, a reader looking at this moment, a
        read-only folder) tries again next time."""
        if self.fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return
            self.fd = fd
        line = f"{holder}, and a writer (PID {os.getpid()}) waits for it first"
        if line != self.said:
            with suppress(OSError):
                os.ftruncate(self.fd, 0)
                os.pwrite(self.fd, line.encode(), 0)
                self.said = line

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the lock
            self.fd = None


def writer_waiting(path: str) -> bool:
    """Whether a writer has announced that it waits for the store at ``path``
    (:class:`_Intent`): its lock on ``<store>.writer`` refuses a shared one."""
    try:
        fd = os.open(path + WRITER_SUFFIX, os.O_RDONLY)
    except OSError:
        return False  # no writer ever waited here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock taken to look
    return False


def _no_writer_waits(path: str) -> None:
    """Raise :class:`_WriterWaitsError` when a writer waits for the store at ``path``."""
    if writer_waiting(path):
        try:
            line = Path(path + WRITER_SUFFIX).read_text("utf-8", errors="replace")[:500].strip()
        except OSError:
            line = ""
        raise _WriterWaitsError(line or "a writer waiting for it")


def _attach(path: str, read_only: bool, wait_s: float | None) -> duckdb.DuckDBPyConnection:
    """A connection of this process's host database whose default database is the store
    file at ``path``, attached now (waiting while another process holds it, see
    :func:`_waiting`) or already attached by another thread of this process or kept
    from an earlier read.

    A read lease first waits while a writer announces that it waits (:class:`_Intent`),
    outside the host's lock, so this process's other leases end meanwhile and the
    writer gets in; a kept attachment is then used again. A write lease lets a kept
    read-only attachment of this process go first."""
    host = _host()
    if read_only:
        _waiting(lambda: _no_writer_waits(path), path, wait_s)
    with host.lock:
        found = host.attached.get(path)
        if found is not None and found.users == 0 and found.read_only and not read_only:
            host.detach(path)  # kept for reads; the writer needs the file to itself
            found = None
        if found is not None:
            if found.read_only and not read_only:
                raise RuntimeError(
                    f"a write lease on {path} while this process holds a read-only one"
                )
            found.users += 1
            found.idle_since = None
            alias = found.alias
        else:
            host.serial += 1
            alias = f"meetpunt_store_{host.serial}"
            quoted = path.replace("'", "''")
            mode = " (READ_ONLY)" if read_only else ""

            def attach() -> None:
                if read_only:  # a writer that announced itself while this one waited
                    _no_writer_waits(path)
                host.con.execute(f"ATTACH '{quoted}' AS {alias}{mode}")

            _waiting(attach, path, wait_s, None if read_only else _Intent(path))
            host.attached[path] = _Attached(alias, read_only, 1)
            if not read_only:
                try:
                    con = host.con.cursor()
                    con.execute(f"USE {alias}")
                    _prepare(con, path)
                    con.close()
                except BaseException:
                    host.detach(path)
                    raise
    con = host.con.cursor()
    con.execute(f"USE {alias}")
    return con


def _detach(path: str, con: duckdb.DuckDBPyConnection, keep_s: float = 0.0) -> None:
    """End a lease of :func:`_attach`: detach the file when no thread uses it any more
    (DuckDB writes what it holds to the file then and releases the lock), unless it is
    read-only, ``keep_s`` is positive and no writer waits: then it is kept for the next
    read and the keeper thread lets it go after ``keep_s`` idle or when a writer
    announces itself (:func:`_keep`)."""
    con.close()
    host = _host()
    with host.lock:
        found = host.attached[path]
        found.users -= 1
        if found.users > 0:
            return
        if found.read_only and keep_s > 0 and not writer_waiting(path):
            found.keep_s = keep_s
            found.idle_since = time.monotonic()
            if host.keeper is None:
                host.keeper = threading.Thread(
                    target=_keep, args=(host,), name="meetpunt-store-keeper", daemon=True
                )
                host.keeper.start()
            host.changed.notify()
            return
        host.detach(path)


def _keep(host: _Host) -> None:
    """The keeper of a process's kept read leases: every :data:`KEEP_POLL_S` while one
    is kept and idle, detach each that has been idle for its ``keep_s`` or that a
    writer waits for (MTR-1: the writer waits at most about this long for an idle
    reader)."""
    with host.changed:
        while True:
            kept = [p for p, a in host.attached.items() if a.idle_since is not None]
            if not kept:
                host.changed.wait()
                continue
            now = time.monotonic()
            for path in kept:
                found = host.attached[path]
                assert found.idle_since is not None
                if now - found.idle_since >= found.keep_s or writer_waiting(path):
                    with suppress(duckdb.Error):  # forgotten; the next lease attaches anew
                        host.detach(path)
            host.changed.wait(KEEP_POLL_S)


def _release_kept(path: str) -> None:
    """Detach ``path`` now if it is kept and no lease uses it (a closing store)."""
    host = _host()
    with host.lock:
        found = host.attached.get(path)
        if found is not None and found.users == 0 and found.idle_since is not None:
            host.detach(path)


def connect_waiting(
    path: str, read_only: bool = False, wait_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection of its own to ``path`` (``:memory:`` stores), set to UTC."""
    found: list[duckdb.DuckDBPyConnection] = []
    _waiting(lambda: found.append(duckdb.connect(path, read_only=read_only)), path, wait_s)
    con = found[0]
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            _prepare(con, path)
    except BaseException:
        con.close()
        raise
    return con


def _waiting(
    open_file: Callable[[], None],
    path: str,
    wait_s: float | None = None,
    intent: _Intent | None = None,
) -> None:
    """Run ``open_file``, waiting while another process holds the store (MTR-1 side by
    side) or, for a read lease, while a writer waits for it (:class:`_WriterWaitsError`).

    DuckDB refuses a file another process holds ("Could not set lock", naming its PID):
    the opener retries with a backoff of :data:`BACKOFF_START_S` doubling to
    :data:`BACKOFF_CAP_S`, says once through :data:`on_wait` what it waits for when the
    wait passes :data:`NOTICE_AFTER_S` (the brief waits between other processes'
    leases are not news), and gives up after ``wait_s`` (default :func:`store_wait_s`)
    with MTR-1.store_busy, an environment error (exit 2), never a refusal. Any other
    failure is MTR-1.store_unavailable. A writer (``intent``) announces after its
    first refused try that it waits, until it holds the store or gives up."""
    limit = store_wait_s() if wait_s is None else wait_s
    deadline = time.monotonic() + limit
    delay = BACKOFF_START_S
    waited = False
    first = time.monotonic()
    try:
        while True:
            try:
                open_file()
                return
            except _WriterWaitsError as exc:
                who = str(exc)
                error: Exception = exc
            except duckdb.Error as exc:
                text = str(exc)
                if "could not set lock" not in text.lower():
                    raise _unavailable(path, exc) from exc
                holder = _LOCK_HOLDER.search(text)
                who = f"PID {holder['pid']} ({holder['program']})" if holder else "another process"
                error = exc
                if intent is not None:
                    intent.take(who)
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreUnavailableError(
                    f"the meter-data store {path} is still held by {who} after waiting {limit:g} s",
                    [Finding("MTR-1.store_busy", f"meter-data store {path} busy: held by {who}")],
                    hint=f"try again when that process has finished its work, stop it, or "
                    f"wait longer with --store-wait / {STORE_WAIT_ENV} (seconds)",
                ) from error
            if not waited and time.monotonic() - first >= NOTICE_AFTER_S:
                waited = True
                on_wait(
                    f"waiting for the meter-data store {path}, held by {who} "
                    f"(up to {limit:g} s, {STORE_WAIT_ENV})"
                )
            time.sleep(min(delay, left))
            delay = min(delay * 2, BACKOFF_CAP_S)
    finally:
        if intent is not None:
            intent.release()


def _unavailable(path: str, exc: duckdb.Error) -> StoreUnavailableError:
    missing = path != ":memory:" and not Path(path).exists()
    return StoreUnavailableError(
        f"cannot open the meter-data store {path}: "
        + ("there is no store there yet" if missing else str(exc).splitlines()[0]),
        [Finding("MTR-1.store_unavailable", f"no usable meter-data store at {path}")],
        hint="ingest meter data first (meetpunt ingest PATH) or point --store / "
        "MEETPUNT_STORE at the store",
    )


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Every table of the current layout (support tables, one per kind) and the quality
    codes, each only if missing: what a new store gets (MTR-1)."""
    for statement in _SUPPORT_TABLES:
        con.execute(statement)
    for kind in KINDS.values():
        con.execute(kind.table_sql())
    for q in QUALITIES:
        con.execute(
            "INSERT OR IGNORE INTO quality VALUES (?, ?, ?, ?)",
            [q.code, q.status.value, q.rule, q.method],
        )


def _prepare(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """Bring a store opened read-write to :data:`SCHEMA_VERSION`: nothing to do when
    ``meta`` says it is current (one small read per lease); else create the tables, or
    migrate an older layout listed in ``_MIGRATIONS``; refuse any other."""
    try:
        found = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except duckdb.CatalogException:
        found = []
    if found and found[0][0] == SCHEMA_VERSION:
        return
    con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    if found and found[0][0] in _MIGRATIONS:
        con.begin()
        for statement in _MIGRATIONS[found[0][0]]:
            con.execute(statement)
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [SCHEMA_VERSION])
        con.commit()
    elif found and found[0][0] != SCHEMA_VERSION:
        raise MeterDataError(
            f"the meter-data store {where} has layout version {found[0][0]}, this meetpunt "
            f"uses {SCHEMA_VERSION}; move the file away and ingest the sources again"
        )
    con.begin()
    create_tables(con)
    # the version last: a store whose creation was cut off is completed by the next open
    con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
    con.commit()


def open_store(
    path: Path | str | None = None,
    read_only: bool = False,
    wait_s: float | None = None,
    keep_s: float = 0.0,
) -> MeterStore:
    """The meter-data store at ``path`` (default: :func:`default_store_path`), created
    on first use unless ``read_only``; ``keep_s`` (read-only only) keeps the file
    attached between reads (see :attr:`MeterStore.keep_s`).

    A file store is opened once here (created or migrated, or checked to exist when
    ``read_only``: a missing store is refused, MTR-1.store_unavailable) and then only in
    leases (:meth:`MeterStore.lease`); ``wait_s`` bounds each lease's wait for another
    process (default MEETPUNT_STORE_WAIT). ``:memory:`` gives a store that keeps its one
    connection and lives as long as the object (tests, benchmarks).
    """
    where = str(path) if path is not None else str(default_store_path())
    if where == ":memory:":
        con = connect_waiting(where, read_only, wait_s)
        return MeterStore(where, read_only, wait_s, con=con)
    store = MeterStore(where, read_only, wait_s, keep_s=keep_s)
    if read_only:
        if not Path(where).is_file():
            raise _unavailable(where, duckdb.IOException("no such file"))
    else:
        with store.lease():
            pass  # creates or migrates the store now, not in the middle of a first batch
    return store
