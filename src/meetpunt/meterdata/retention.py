"""Retention of meter data (MTR-6).

Daily readings are kept 24 months (the period is in the ``vee_rules`` file), and never
from before the start of the contract in force: a new resident does not inherit the
previous one's readings. ``run_retention`` deletes what is older, per connection, and
writes a ``retention_log`` row for every deletion (what, whose, up to which date, how
many rows, which rule).

A mistyped date must not delete everything: a retention date after today is refused
(``MTR-6.future_date``), and an unconfirmed run that would delete more than
``LARGE_DELETION_ROWS`` rows, or more than ``LARGE_DELETION_SHARE`` of the daily
readings (and more than ``LARGE_DELETION_FLOOR`` rows), is refused
(``MTR-6.large_deletion``); ``dry_run`` counts what would go and deletes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb

from meetpunt.domain.calendar import local_date_of, local_midnight_utc
from meetpunt.domain.findings import Finding
from meetpunt.domain.vee import VeeRules
from meetpunt.errors import MeterDataError
from meetpunt.meterdata.store import MeterStore

RETENTION_RULE = "MTR-6.daily_readings"
FUTURE_DATE_RULE = "MTR-6.future_date"
LARGE_DELETION_RULE = "MTR-6.large_deletion"

LARGE_DELETION_ROWS = 10_000
"""An unconfirmed run that would delete more daily readings than this is refused."""
LARGE_DELETION_SHARE = 0.10
"""... and so is one that would delete more than this share of the daily readings,"""
LARGE_DELETION_FLOOR = 100
"""... unless it deletes at most this many rows (a small store is not asked each time)."""


@dataclass(frozen=True)
class RetentionRecord:
    """What one retention run deleted for one connection."""

    kind: str
    connection: int
    cutoff: date
    rows: int
    rule: str = RETENTION_RULE


def run_retention(
    store: MeterStore,
    contract_starts: Mapping[int, date | None],
    rules: VeeRules,
    today: date,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    confirmed: bool = True,
) -> list[RetentionRecord]:
    """Delete daily readings older than the retention cutoff of each connection.

    ``contract_starts`` gives the start of the contract in force ``today`` per
    connection id (None: no contract, the 24 months apply). One transaction: the
    deletions and their log rows go in together.

    ``today`` after the local date of ``now`` is refused (MTR-6.future_date). With
    ``dry_run`` the records say what would be deleted and nothing is. Without
    ``confirmed``, a large deletion (:func:`is_large_deletion`) is refused
    (MTR-6.large_deletion) and nothing is deleted.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    require_not_future(today, moment)
    run_at = moment.replace(tzinfo=None)
    with store.transaction() as con:
        planned = _plan(con, contract_starts, rules, today)
        if dry_run:
            return [record for record, _limit in planned]
        if not confirmed:
            total = int(con.execute("SELECT count(*) FROM daily_readings").fetchall()[0][0])
            doomed = sum(record.rows for record, _limit in planned)
            if is_large_deletion(doomed, total):
                raise MeterDataError(
                    f"retention on {today} would delete {doomed} of {total} daily readings; "
                    "a deletion that large needs confirmation",
                    [
                        Finding(
                            LARGE_DELETION_RULE,
                            f"{doomed} of {total} daily readings would be deleted (more than "
                            f"{LARGE_DELETION_ROWS} rows or {LARGE_DELETION_SHARE:.0%} of them)",
                        )
                    ],
                    hint="look first with: meetpunt retention run --dry-run (same --at); "
                    "then confirm with --yes",
                )
        records: list[RetentionRecord] = []
        for planned_record, limit in planned:
            rows = con.execute(
                'DELETE FROM daily_readings WHERE connection = ? AND "at" < ?',
                [planned_record.connection, limit],
            ).fetchall()
            deleted = int(rows[0][0]) if rows else 0
            record = RetentionRecord(
                planned_record.kind, planned_record.connection, planned_record.cutoff, deleted
            )
            con.execute(
                "INSERT INTO retention_log VALUES (?, ?, ?, ?, ?, ?)",
                [run_at, record.kind, record.connection, record.cutoff, deleted, record.rule],
            )
            records.append(record)
    return records


def require_not_future(today: date, now: datetime) -> None:
    """Refuse a retention date after the local date of ``now`` (MTR-6.future_date): a
    mistyped year would otherwise delete every daily reading."""
    current = local_date_of(now.astimezone(UTC))
    if today > current:
        raise MeterDataError(
            f"the retention date {today} is after today ({current}); retention runs as of "
            "today or a day in the past",
            [Finding(FUTURE_DATE_RULE, f"retention date {today} is in the future")],
            hint="leave out --at to run as of today, or check the date you typed (YYYY-MM-DD)",
        )


def is_large_deletion(rows: int, total: int) -> bool:
    """Whether deleting ``rows`` of ``total`` daily readings needs confirmation: more than
    ``LARGE_DELETION_ROWS`` rows, or more than ``LARGE_DELETION_SHARE`` of them when more
    than ``LARGE_DELETION_FLOOR`` rows."""
    if rows > LARGE_DELETION_ROWS:
        return True
    return rows > LARGE_DELETION_FLOOR and rows > LARGE_DELETION_SHARE * total


def _plan(
    con: duckdb.DuckDBPyConnection,
    contract_starts: Mapping[int, date | None],
    rules: VeeRules,
    today: date,
) -> list[tuple[RetentionRecord, datetime]]:
    """Per connection with readings before its cutoff: what would go, and the limit."""
    found = con.execute(
        'SELECT connection, min("at") FROM daily_readings GROUP BY connection ORDER BY 1'
    ).fetchall()
    planned: list[tuple[RetentionRecord, datetime]] = []
    for connection, first in found:
        cutoff = rules.retention_cutoff(today, contract_starts.get(int(connection)))
        limit = local_midnight_utc(cutoff).replace(tzinfo=None)
        if first >= limit:
            continue
        count = con.execute(
            'SELECT count(*) FROM daily_readings WHERE connection = ? AND "at" < ?',
            [connection, limit],
        ).fetchall()
        rows = int(count[0][0]) if count else 0
        planned.append((RetentionRecord("daily_readings", int(connection), cutoff, rows), limit))
    return planned
