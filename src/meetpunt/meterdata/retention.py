"""Retention of meter data (MTR-6).

Daily readings are kept 24 months (the period is in the ``vee_rules`` file), and never
from before the start of the contract in force: a new resident does not inherit the
previous one's readings. ``run_retention`` deletes what is older, per connection, and
writes a ``retention_log`` row for every deletion (what, whose, up to which date, how
many rows, which rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.vee import VeeRules
from meetpunt.meterdata.store import MeterStore

RETENTION_RULE = "MTR-6.daily_readings"


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
) -> list[RetentionRecord]:
    """Delete daily readings older than the retention cutoff of each connection.

    ``contract_starts`` gives the start of the contract in force ``today`` per
    connection id (None: no contract, the 24 months apply). One transaction: the
    deletions and their log rows go in together.
    """
    run_at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    records: list[RetentionRecord] = []
    with store.transaction() as con:
        oldest = con.execute(
            'SELECT connection, min("at") FROM daily_readings GROUP BY connection ORDER BY 1'
        ).fetchall()
        for connection, first in oldest:
            cutoff = rules.retention_cutoff(today, contract_starts.get(int(connection)))
            limit = local_midnight_utc(cutoff).replace(tzinfo=None)
            if first >= limit:
                continue
            rows = con.execute(
                'DELETE FROM daily_readings WHERE connection = ? AND "at" < ?',
                [connection, limit],
            ).fetchall()
            deleted = int(rows[0][0]) if rows else 0
            record = RetentionRecord("daily_readings", int(connection), cutoff, deleted)
            con.execute(
                "INSERT INTO retention_log VALUES (?, ?, ?, ?, ?, ?)",
                [run_at, record.kind, record.connection, cutoff, deleted, record.rule],
            )
            records.append(record)
    return records
