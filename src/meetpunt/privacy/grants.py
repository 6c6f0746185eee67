"""The gate's memory of what it granted and copied (PRV-1, PRV-5).

``privacy_grant`` holds one row per granted connection, so frequency and pause limits
hold across requests and restarts; ``privacy_copy`` holds every exported copy with its
expiry, for retention. Both live in the register database beside the audit log, so a
decision, its audit record and its grants commit together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, insert, select

from meetpunt.privacy.model import AccessRequest, Period, stored_utc
from meetpunt.privacy.rules import PastGrant
from meetpunt.register import schema as t
from meetpunt.register.read import GrantRow

_g = t.privacy_grant
_PAST = select(
    _g.c.connection_id, _g.c.purpose, _g.c.period_start, _g.c.period_end, _g.c.kinds
).where(_g.c.connection_id.in_(bindparam("ids", expanding=True)))
_INSERT = insert(_g)
_COLUMNS = (
    "audit_seq",
    "party",
    "purpose",
    "connection_id",
    "kinds",
    "period_start",
    "period_end",
    "granted_at",
    "expires_at",
)
PG_INSERT = (
    f"INSERT INTO privacy_grant ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({name})s' for name in _COLUMNS)})"
)
"""The grant row insert for psycopg called directly (the gate's pipeline)."""
_SQLITE_INSERT = (
    f"INSERT INTO privacy_grant ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(f':{name}' for name in _COLUMNS)})"
)
_TIMES = ("period_start", "period_end", "granted_at", "expires_at")


@cache
def _time_processors(dialect: Dialect) -> list[tuple[str, Any]]:
    """SQLAlchemy's own conversion of the time columns for ``dialect`` (SQLite stores
    text), so rows written past it are stored exactly as through it."""
    return [(n, _g.c[n].type.dialect_impl(dialect).bind_processor(dialect)) for n in _TIMES]


def _kinds(stored: str, cache: dict[str, frozenset[str]]) -> frozenset[str]:
    kinds = cache.get(stored)
    if kinds is None:
        kinds = cache[stored] = frozenset(json.loads(stored))
    return kinds


def past_grants(db: Connection, connection_ids: Sequence[int]) -> dict[int, list[PastGrant]]:
    """Every earlier grant for each connection in ``connection_ids``. One query."""
    if not connection_ids:
        return {}
    out: dict[int, list[PastGrant]] = {}
    seen: dict[str, frozenset[str]] = {}
    for cid, purpose, start, end, kinds in db.execute(_PAST, {"ids": list(connection_ids)}):
        out.setdefault(cid, []).append(
            PastGrant(purpose, stored_utc(start), stored_utc(end), _kinds(kinds, seen))
        )
    return out


def past_from_rows(rows: Mapping[int, Sequence[GrantRow]]) -> dict[int, list[PastGrant]]:
    """The earlier grants the register read found (:func:`read.facts_with_grants_on`),
    as the rules take them."""
    seen: dict[str, frozenset[str]] = {}
    return {
        cid: [
            PastGrant(
                g.purpose,
                stored_utc(g.start),
                stored_utc(g.end),
                _kinds(g.kinds, seen),
                g.audit_seq,
            )
            for g in found
        ]
        for cid, found in rows.items()
    }


def grant_rows(
    audit_seq: int,
    purpose: str,
    request: AccessRequest,
    granted: Iterable[tuple[int, Period]],
    now: datetime,
    expires: datetime | None,
) -> list[dict[str, Any]]:
    """The ``privacy_grant`` rows of one grant: one per connection and granted
    sub-period (``granted``: ``(connection id, sub-period)`` pairs), under the
    decision's audit record."""
    kinds = json.dumps(sorted(request.kinds))
    return [
        {
            "audit_seq": audit_seq,
            "party": request.party.id,
            "purpose": purpose,
            "connection_id": cid,
            "kinds": kinds,
            "period_start": period.start,
            "period_end": period.end,
            "granted_at": now,
            "expires_at": expires,
        }
        for cid, period in granted
    ]


def remember(
    db: Connection,
    audit_seq: int,
    purpose: str,
    request: AccessRequest,
    connection_ids: Iterable[int],
    now: datetime,
    expires: datetime | None,
) -> None:
    """Record one grant row per connection for the whole period under the decision's
    audit record."""
    granted = [(cid, request.period) for cid in connection_ids]
    insert_rows(db, grant_rows(audit_seq, purpose, request, granted, now, expires))


def insert_rows(db: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows made by :func:`grant_rows` (none: nothing to do); on SQLite straight
    through the driver (a third of the time of a SQLAlchemy statement)."""
    if not rows:
        return
    if db.dialect.name != "sqlite":
        db.execute(_INSERT, list(rows))
        return
    processors = [(n, p) for n, p in _time_processors(db.dialect) if p is not None]
    stored = []
    for row in rows:
        values = dict(row)
        for name, process in processors:
            values[name] = process(values[name])
        stored.append(values)
    cursor = db.connection.cursor()
    try:
        cursor.executemany(_SQLITE_INSERT, stored)
    finally:
        cursor.close()


def record_copy(
    db: Connection, audit_seq: int, purpose: str, path: Path, expires: datetime
) -> None:
    """Record an exported copy so retention can delete it when it expires (PRV-5)."""
    db.execute(
        insert(t.privacy_copy).values(
            audit_seq=audit_seq, purpose=purpose, path=str(path), expires_at=expires
        )
    )


_a = t.audit_log
_STORED = (
    select(
        _a.c.event,
        _a.c.outcome,
        _a.c.connections,
        _a.c.party.label("asked_by"),
        _a.c.purpose.label("asked_for"),
        _a.c.kinds.label("asked_kinds"),
        _a.c.period_start.label("asked_start"),
        _a.c.period_end.label("asked_end"),
        _g.c.connection_id,
        _g.c.party,
        _g.c.purpose,
        _g.c.kinds,
        _g.c.period_start,
        _g.c.period_end,
    )
    .select_from(_a)
    .outerjoin(
        _g,
        (_g.c.audit_seq == _a.c.seq) & _g.c.connection_id.in_(bindparam("ids", expanding=True)),
    )
    .where(_a.c.seq == bindparam("seq"))
)


def mismatch(
    db: Connection,
    audit_seq: int | None,
    purpose: str,
    request: AccessRequest,
    connection_ids: Mapping[str, int],
    periods: Mapping[str, Sequence[Period]] | None = None,
) -> str | None:
    """Why a grant for ``purpose`` that says it may read ``connection_ids`` in
    ``periods`` (per EAN; default the whole period) under ``request`` is not what the
    gate granted under audit record ``audit_seq``, or ``None`` when it is (PRV-1). One
    query, by the audit log's key and the grant rows' connection index: the record must
    be a granted decision naming exactly these EANs, and the grant rows under that
    record must be exactly one per connection and sub-period, with this party, purpose
    and kinds."""
    if audit_seq is None:
        return "the grant names no decision"
    ids = list(connection_ids.values())
    found = db.execute(_STORED, {"seq": audit_seq, "ids": ids}).all()
    if not found:
        return f"the gate recorded no decision {audit_seq}"
    first = found[0]
    if (first.event, first.outcome) != ("decision", "granted"):
        return f"audit record {audit_seq} is not a granted decision"
    if set(json.loads(first.connections)) != set(connection_ids):
        return f"decision {audit_seq} did not grant these connections"
    period = request.period
    asked = (
        first.asked_by,
        first.asked_for,
        frozenset(json.loads(first.asked_kinds)),
        None if first.asked_start is None else stored_utc(first.asked_start),
        None if first.asked_end is None else stored_utc(first.asked_end),
    )
    if asked != (request.party.id, purpose, request.kinds, period.start, period.end):
        return f"decision {audit_seq} granted another party, purpose, kinds or period"
    rows = [row for row in found if row.connection_id is not None]
    stored = {row.connection_id for row in rows}
    if len(set(ids)) != len(ids) or stored != set(ids):
        return f"decision {audit_seq} did not grant these connections"
    kinds = json.dumps(sorted(request.kinds))
    for row in rows:
        if (row.party, row.purpose, row.kinds) != (request.party.id, purpose, kinds):
            return f"decision {audit_seq} granted another party, purpose, kinds or period"
    wanted = sorted(
        (cid, p.start, p.end)
        for ean, cid in connection_ids.items()
        for p in (periods.get(ean, ()) if periods is not None else (request.period,))
    )
    held = sorted(
        (row.connection_id, stored_utc(row.period_start), stored_utc(row.period_end))
        for row in rows
    )
    inside = all(period.start <= start < end <= period.end for _, start, end in wanted)
    if wanted != held or not inside:
        return f"decision {audit_seq} granted another party, purpose, kinds or period"
    return None
