"""The audit log of the privacy gate (PRV-7): append-only, hash-chained, in the register.

Every decision of the gate (granted or refused), every read, every consent step, every
retention deletion and every release of aggregates is one :class:`AuditEntry`, stored
as one row of the register table ``audit_log`` by :func:`append`. Rows are numbered
``seq`` = 1, 2, 3, ... without gaps; each row carries ``prev_hash`` (the hash of the
row before it; 64 zeros for the first) and ``hash`` = SHA-256 over the row's canonical
serialisation (:func:`canonical_bytes`: ``seq``, ``at``, every entry field and
``prev_hash``). :func:`verify` walks the chain and reports, with rule IDs:

``PRV-7.edited``
    a row's content (or ``seq``) no longer matches its hash;
``PRV-7.broken_chain``
    a row's ``prev_hash`` is not the hash of the row before it: that row was
    rewritten *and* its hash recomputed, or a row was replaced;
``PRV-7.deleted``
    a ``seq`` is missing (a row in the middle or at the start was deleted);
``PRV-7.reordered``
    rows were moved or swapped (a row's hash verifies under another ``seq``, or its
    content under another row's ``seq``/``prev_hash``), or a row is dated more than
    ``time_tolerance`` before the row before it;
``PRV-7.truncated`` / ``PRV-7.rewritten``
    against a head noted elsewhere (:func:`head`, ``verify(expect_head=...)``): the
    log now ends before that head, or the row at that position is another row.

What a hash chain cannot show on its own: deleting rows at the end (note the head
elsewhere and pass ``expect_head``), and a rewrite of every row from some point on with
all hashes recomputed (again caught by ``expect_head`` when the rewrite reaches the
noted head). The hashes are not keyed: they prove the log was not changed *since the
head was noted*, not who wrote it.

Appending is fast (one indexed read of the last row, one insert) and safe with
concurrent writers: on PostgreSQL :func:`append` first takes a transaction-level
advisory lock (held until the caller's transaction ends, so appends are serialised in
commit order; it needs no table privileges beyond INSERT and SELECT), and SQLite has
one writer at a time. The primary key on ``seq`` would refuse a fork in any case.

The records as the customer reads them, in Dutch or English, are
:mod:`meetpunt.privacy.explain`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from functools import cache
from typing import Any

from sqlalchemy import Connection, Dialect, String, func, insert, select, text, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from meetpunt.domain.calendar import require_aware
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.model import Decision
from meetpunt.register.schema import audit_log

GENESIS = "0" * 64
"""``prev_hash`` of the first record."""
FORMAT = "meetpunt.audit/1"
"""Tag inside every serialisation, so a later format can be told apart."""
LOCK_KEY = int.from_bytes(hashlib.sha256(b"meetpunt.audit_log").digest()[:8], "big", signed=True)
"""The PostgreSQL advisory-lock key that serialises appends."""
DEFAULT_TIME_TOLERANCE = timedelta(minutes=5)
"""How far a record may be dated before its predecessor without being reported.

``at`` is the writer's clock, taken before the append lock is granted, so concurrent
writers (and servers with slightly different clocks) commit in an order that can differ
from their ``at`` by a little; the ``seq`` order is the order of commit."""
EVENTS = ("decision", "read", "consent", "retention", "release", "flag")
"""The kinds of audited event."""

_LIMITS = {"event": 16, "party": 64, "purpose": 40, "outcome": 16}
_SWAP_ANALYSIS_LIMIT = 200


class AuditError(MeetpuntError):
    """The audit log refused an entry, or a stored record cannot be read (PRV-7)."""


# --- values --------------------------------------------------------------------------------


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(str(v) for v in value))
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class AuditEntry:
    """One audited event: who (``party``), why (``purpose``), what happened (``outcome``),
    which connections (EANs), data kinds and period, the rule IDs involved and details.

    ``event`` is one of :data:`EVENTS`; ``outcome`` is ``granted``/``refused`` for a
    decision, ``read`` (or ``refused``) for a read, ``given``/``revoked``/``expired``/...
    for a consent, ``deleted``/``expired`` for retention, ``released`` for a release,
    ``recorded`` for a flag (a finding that opens a flagged purpose, UC3/UC12).
    ``detail`` is JSON-able (``role`` = the party's :class:`~meetpunt.privacy.model.Role`
    value, ``justification``, row counts, ...). Sets given for the tuples are sorted.
    """

    event: str
    party: str
    purpose: str
    outcome: str
    connections: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    period_start: datetime | None = None
    period_end: datetime | None = None
    rules: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("connections", "kinds", "rules"):
            object.__setattr__(self, name, _strings(getattr(self, name)))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (datetimes in the canonical UTC format)."""
        return {
            "event": self.event,
            "party": self.party,
            "purpose": self.purpose,
            "outcome": self.outcome,
            "connections": list(self.connections),
            "kinds": list(self.kinds),
            "period_start": _fmt_opt(self.period_start),
            "period_end": _fmt_opt(self.period_end),
            "rules": list(self.rules),
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class AuditRecord:
    """A stored entry: its place in the chain (``seq``, ``prev_hash``, ``hash``) and when
    it was recorded (``at``, aware UTC)."""

    seq: int
    at: datetime
    entry: AuditEntry
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``seq``, ``at``, the entry's fields, ``prev_hash``, ``hash``."""
        return {
            "seq": self.seq,
            "at": _fmt(self.at),
            **self.entry.as_dict(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def decision_entry(decision: Decision, **detail: Any) -> AuditEntry:
    """The audit entry of a gate :class:`~meetpunt.privacy.model.Decision` (a helper)."""
    request = decision.request
    info: dict[str, Any] = {"role": request.party.role.value}
    if request.party.name:
        info["party_name"] = request.party.name
    if request.justification:
        info["justification"] = request.justification
    if request.trigger:
        info["trigger"] = request.trigger
    info.update(detail)
    return AuditEntry(
        event="decision",
        party=request.party.id,
        purpose=request.purpose,
        outcome="granted" if decision.granted else "refused",
        connections=tuple(request.connections),
        kinds=tuple(sorted(request.kinds)),
        period_start=request.period.start,
        period_end=request.period.end,
        rules=decision.rules,
        detail=info,
    )


# --- canonical serialisation ---------------------------------------------------------------


def _fmt(instant: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC: the one datetime format of the hash."""
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _fmt_opt(instant: datetime | None) -> str | None:
    return None if instant is None else _fmt(instant)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _fmt(require_aware(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON-able")


_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_json_default,
)
"""The one JSON form of the log, built once (``json.dumps`` with these options builds
an encoder per call)."""


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def canonical_bytes(seq: int, at: datetime, entry: AuditEntry, prev_hash: str) -> bytes:
    """What the hash covers: UTF-8 JSON with sorted keys, no spaces, datetimes as
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC), absent periods as ``null``; keys ``format``,
    ``seq``, ``at``, the entry's fields and ``prev_hash``."""
    payload = {
        "format": FORMAT,
        "seq": seq,
        "at": _fmt(at),
        **entry.as_dict(),
        "prev_hash": prev_hash,
    }
    return _dumps(payload).encode("utf-8")


def entry_hash(seq: int, at: datetime, entry: AuditEntry, prev_hash: str) -> str:
    """SHA-256 (hex) of :func:`canonical_bytes`."""
    return hashlib.sha256(canonical_bytes(seq, at, entry, prev_hash)).hexdigest()


def record_hash(record: AuditRecord) -> str:
    """The hash ``record`` should carry, recomputed from its content."""
    return entry_hash(record.seq, record.at, record.entry, record.prev_hash)


# --- writing -------------------------------------------------------------------------------


def _utc(instant: datetime) -> datetime:
    return require_aware(instant).astimezone(UTC)


def _normalised(entry: AuditEntry) -> AuditEntry:
    """The entry as it reads back from the database (UTC, plain JSON detail)."""
    for name, limit in _LIMITS.items():
        value = getattr(entry, name)
        if not isinstance(value, str) or not value or len(value) > limit:
            finding = Finding(
                "PRV-7.entry", f"{name} must be a text of 1 to {limit} characters, not {value!r}"
            )
            raise AuditError(finding.message, [finding])
    try:
        detail = json.loads(_dumps(dict(entry.detail)))
    except (TypeError, ValueError) as exc:
        finding = Finding("PRV-7.entry", f"detail is not JSON-able: {exc}")
        raise AuditError(finding.message, [finding]) from exc
    return AuditEntry(
        event=str(entry.event),
        party=str(entry.party),
        purpose=str(entry.purpose),
        outcome=str(entry.outcome),
        connections=entry.connections,
        kinds=entry.kinds,
        period_start=None if entry.period_start is None else _utc(entry.period_start),
        period_end=None if entry.period_end is None else _utc(entry.period_end),
        rules=entry.rules,
        detail=detail,
    )


_LAST = select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
PG_LOCK = f"SELECT pg_advisory_xact_lock({LOCK_KEY})"
"""Take the append lock (PostgreSQL), held until the transaction ends."""
LAST = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
"""``(seq, hash)`` of the last record, for the driver called directly; on PostgreSQL
run it as its own statement after :data:`PG_LOCK` (under READ COMMITTED each statement
takes a new snapshot, so it sees the last record committed by the writer that held the
lock before)."""
_PG_LOCK_AND_LAST = f"{PG_LOCK}; {LAST}"
"""One round trip on psycopg: a query string without parameters goes as a simple query,
and under READ COMMITTED each of its statements takes a new snapshot, so the second one
sees the last record committed by the writer that held the lock before."""


def _last_locked(db: Connection) -> tuple[int, str] | None:
    """``(seq, hash)`` of the last record, after taking the append lock."""
    dialect = db.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        cursor = db.connection.cursor()
        try:
            cursor.execute(_PG_LOCK_AND_LAST)
            cursor.nextset()
            row = cursor.fetchone()
        finally:
            cursor.close()
    elif dialect.name == "sqlite":  # one writer at a time: no lock to take
        cursor = db.connection.cursor()
        try:
            cursor.execute(LAST)
            row = cursor.fetchone()
        finally:
            cursor.close()
    else:
        if dialect.name == "postgresql":
            db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        row = db.execute(_LAST).first()
    return None if row is None else (int(row[0]), str(row[1]))


_COLUMN_NAMES = [c.name for c in audit_log.c]
PG_INSERT = (
    f"INSERT INTO audit_log ({', '.join(_COLUMN_NAMES)}) "
    f"VALUES ({', '.join(f'%({name})s' for name in _COLUMN_NAMES)})"
)
"""The record insert for psycopg called directly (a third of the time of SQLAlchemy's)."""
_SQLITE_INSERT = (
    f"INSERT INTO audit_log ({', '.join(_COLUMN_NAMES)}) "
    f"VALUES ({', '.join(f':{name}' for name in _COLUMN_NAMES)})"
)
_INSERT = insert(audit_log)
_TIMES = ("at", "period_start", "period_end")


@cache
def _time_processors(dialect: Dialect) -> list[tuple[str, Any]]:
    """SQLAlchemy's own conversion of the time columns for ``dialect`` (SQLite stores
    text), so a row written past it is stored exactly as through it."""
    return [(n, audit_log.c[n].type.dialect_impl(dialect).bind_processor(dialect)) for n in _TIMES]


def _insert(db: Connection, values: dict[str, Any]) -> None:
    """Insert one row; straight through the driver on PostgreSQL (psycopg) and SQLite
    (a third of the time of a SQLAlchemy statement)."""
    dialect = db.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        sql = PG_INSERT
    elif dialect.name == "sqlite":
        sql = _SQLITE_INSERT
        values = dict(values)
        for name, process in _time_processors(dialect):
            if process is not None:
                values[name] = process(values[name])
    else:
        db.execute(_INSERT, values)
        return
    cursor = db.connection.cursor()
    try:
        cursor.execute(sql, values)
    finally:
        cursor.close()


def prepare(
    entry: AuditEntry, at: datetime, last: tuple[int, str] | None
) -> tuple[AuditRecord, dict[str, Any]]:
    """The record that follows ``last`` (``(seq, hash)`` of the last record, read under
    the append lock; ``None`` for an empty log) and its ``audit_log`` row. No I/O: for a
    caller that reads the last record and inserts the row itself, in one transaction
    (the gate sends both along with its other statements, PRV-7)."""
    return _chained(_normalised(entry), _utc(at), last)


def _chained(
    stored: AuditEntry, at: datetime, last: tuple[int, str] | None
) -> tuple[AuditRecord, dict[str, Any]]:
    seq, prev_hash = (1, GENESIS) if last is None else (last[0] + 1, last[1])
    digest = entry_hash(seq, at, stored, prev_hash)
    row = {
        "seq": seq,
        "at": at,
        "event": stored.event,
        "party": stored.party,
        "purpose": stored.purpose,
        "outcome": stored.outcome,
        "connections": _dumps(list(stored.connections)),
        "kinds": _dumps(list(stored.kinds)),
        "period_start": stored.period_start,
        "period_end": stored.period_end,
        "rules": _dumps(list(stored.rules)),
        "detail": _dumps(stored.detail),
        "prev_hash": prev_hash,
        "hash": digest,
    }
    return AuditRecord(seq, at, stored, prev_hash, digest), row


def append(db: Connection, entry: AuditEntry, at: datetime) -> AuditRecord:
    """Append ``entry``, recorded at ``at`` (aware), to the chain; return the record.

    Runs in the caller's transaction: the record is there when it commits and gone when
    it rolls back. On PostgreSQL the append lock is held until then.
    """
    stored = _normalised(entry)
    at = _utc(at)
    record, row = _chained(stored, at, _last_locked(db))
    _insert(db, row)
    return record


# --- reading -------------------------------------------------------------------------------


class _UnreadableError(Exception):
    pass


def _columns(db: Connection) -> list[ColumnElement[Any]]:
    """All columns; on SQLite the datetimes as stored text (a tampered value must not
    stop the walk; PostgreSQL refuses such values itself)."""
    sqlite = db.dialect.name == "sqlite"
    out: list[ColumnElement[Any]] = []
    for column in audit_log.c:
        if sqlite and column.name in ("at", "period_start", "period_end"):
            out.append(type_coerce(column, String).label(column.name))
        else:
            out.append(column)
    return out


def _instant(value: Any, nullable: bool) -> datetime | None:
    if value is None:
        if nullable:
            return None
        raise _UnreadableError("missing time")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise _UnreadableError(f"unreadable time {value!r}") from exc
    if not isinstance(value, datetime):
        raise _UnreadableError(f"unreadable time {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _texts(raw: Any, name: str) -> tuple[str, ...]:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise _UnreadableError(f"{name} is not JSON") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _UnreadableError(f"{name} is not a list of texts")
    return tuple(value)


def _record(row: Any) -> AuditRecord:
    try:
        detail = json.loads(row.detail)
    except (TypeError, ValueError) as exc:
        raise _UnreadableError("detail is not JSON") from exc
    if not isinstance(detail, dict):
        raise _UnreadableError("detail is not a JSON object")
    at = _instant(row.at, nullable=False)
    assert at is not None
    entry = AuditEntry(
        event=row.event,
        party=row.party,
        purpose=row.purpose,
        outcome=row.outcome,
        connections=_texts(row.connections, "connections"),
        kinds=_texts(row.kinds, "kinds"),
        period_start=_instant(row.period_start, nullable=True),
        period_end=_instant(row.period_end, nullable=True),
        rules=_texts(row.rules, "rules"),
        detail=detail,
    )
    return AuditRecord(int(row.seq), at, entry, str(row.prev_hash), str(row.hash))


def head(db: Connection) -> tuple[int, str]:
    """``(seq, hash)`` of the last record, ``(0, GENESIS)`` for an empty log: note it
    somewhere else and pass it to ``verify(expect_head=...)`` later."""
    last = db.execute(_LAST).first()
    return (0, GENESIS) if last is None else (int(last.seq), str(last.hash))


def count(db: Connection) -> int:
    """How many records the log holds."""
    return int(db.execute(select(func.count()).select_from(audit_log)).scalar_one())


def records(
    db: Connection,
    ean: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditRecord]:
    """The records in ``seq`` order: all, or those naming ``ean`` among their
    connections, recorded at ``since <= at < until`` (either bound optional)."""
    query = select(*_columns(db)).order_by(audit_log.c.seq)
    if ean is not None:
        pattern = '%"' + _escape_like(ean) + '"%'
        query = query.where(audit_log.c.connections.like(pattern, escape="\\"))
    if since is not None:
        query = query.where(audit_log.c.at >= _utc(since))
    if until is not None:
        query = query.where(audit_log.c.at < _utc(until))
    out: list[AuditRecord] = []
    for row in db.execute(query):
        try:
            record = _record(row)
        except _UnreadableError as exc:
            finding = Finding("PRV-7.edited", f"record {row.seq} cannot be read: {exc}")
            raise AuditError(finding.message, [finding]) from exc
        if ean is None or ean in record.entry.connections:
            out.append(record)
    return out


def export(db: Connection, ean: str | None = None) -> Iterator[dict[str, Any]]:
    """The log to keep elsewhere (PRV-7): every record (or those naming ``ean``) as
    :meth:`AuditRecord.as_dict`, then one line ``{"head": {"seq", "hash"}, "records",
    "ean"}``. Whoever keeps it can later show with :func:`check_kept` that a record was
    removed or changed, and with the head that the log was cut back or rewritten."""
    found = records(db, ean=ean)
    for record in found:
        yield record.as_dict()
    seq, digest = head(db)
    yield {"head": {"seq": seq, "hash": digest}, "records": len(found), "ean": ean}


def kept_head(lines: Sequence[Mapping[str, Any]]) -> tuple[int, str] | None:
    """The head an :func:`export` ends with, or ``None`` when there is none."""
    for line in reversed(lines):
        mark = line.get("head")
        if isinstance(mark, Mapping):
            return int(mark["seq"]), str(mark["hash"])
    return None


def check_kept(db: Connection, lines: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """Each record kept from an :func:`export` must still be in the log, unchanged, at
    its ``seq`` (``PRV-7.deleted``, ``PRV-7.rewritten``); the head it ends with is
    checked by :func:`verify` with ``expect_head`` (PRV-7)."""
    kept = {int(line["seq"]): line for line in lines if "seq" in line and "hash" in line}
    if not kept:
        return []
    query = select(*_columns(db)).where(audit_log.c.seq.in_(sorted(kept)))
    stored: dict[int, dict[str, Any]] = {}
    for row in db.execute(query):
        try:
            stored[int(row.seq)] = _record(row).as_dict()
        except _UnreadableError:
            stored[int(row.seq)] = {}
    out: list[Finding] = []
    for seq, line in sorted(kept.items()):
        now = stored.get(seq)
        if now is None:
            out.append(
                Finding("PRV-7.deleted", f"record {seq}, kept in the export, is gone from the log")
            )
        elif now != dict(line):
            changed = sorted(k for k in set(now) | set(line) if now.get(k) != line.get(k))
            out.append(
                Finding(
                    "PRV-7.rewritten",
                    f"record {seq} differs from the copy kept in the export "
                    f"({', '.join(changed) or 'unreadable'})",
                )
            )
    return out


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- verifying -----------------------------------------------------------------------------


@dataclass
class _Row:
    seq: int
    prev_hash: str
    hash: str
    record: AuditRecord | None  # None: unreadable
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.record is not None and record_hash(self.record) == self.hash


def _rows(db: Connection) -> Iterator[_Row]:
    query = select(*_columns(db)).order_by(audit_log.c.seq)
    for row in db.execute(query, execution_options={"yield_per": 1000}):
        try:
            yield _Row(int(row.seq), str(row.prev_hash), str(row.hash), _record(row))
        except _UnreadableError as exc:
            yield _Row(int(row.seq), str(row.prev_hash), str(row.hash), None, str(exc))


def _written_at(row: _Row, candidates: Iterable[int]) -> int | None:
    """The ``seq`` under which ``row`` (content, ``prev_hash`` and ``hash``) verifies."""
    if row.record is None:
        return None
    r = row.record
    for seq in sorted(set(candidates) - {row.seq}):
        if seq >= 1 and entry_hash(seq, r.at, r.entry, r.prev_hash) == row.hash:
            return seq
    return None


def _content_of(row: _Row, others: Sequence[_Row]) -> int | None:
    """The ``seq`` of the row whose ``seq``/``prev_hash``/``hash`` ``row``'s content
    was written with (contents moved, chain columns left in place)."""
    if row.record is None:
        return None
    r = row.record
    for other in others:
        if other is not row and entry_hash(other.seq, r.at, r.entry, other.prev_hash) == other.hash:
            return other.seq
    return None


def _ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def _pairs(moves: Mapping[int, int]) -> Iterator[tuple[int, int, bool]]:
    """``(a, b, swapped)`` per move ``a -> b``; a swap ``a <-> b`` once."""
    for a, b in sorted(moves.items()):
        if moves.get(b) == a:
            if a < b:
                yield a, b, True
        else:
            yield a, b, False


@dataclass
class _Walk:
    """What one pass over the chain saw."""

    failing: list[_Row] = field(default_factory=list)
    broken: list[int] = field(default_factory=list)
    missing: set[int] = field(default_factory=set)
    backwards: list[tuple[int, int, datetime, datetime]] = field(default_factory=list)
    last_seq: int = 0
    hash_at: str | None = None  # hash of the record at the seq asked for


def _walk(db: Connection, look_at: int | None, tolerance: timedelta) -> _Walk:
    walk = _Walk()
    prev: _Row | None = None
    for row in _rows(db):
        if not row.intact:
            walk.failing.append(row)
        if row.seq < 1:
            continue
        expected = prev.seq + 1 if prev is not None else 1
        if row.seq > expected:
            walk.missing.update(range(expected, row.seq))
        elif row.prev_hash != (prev.hash if prev is not None else GENESIS):
            walk.broken.append(row.seq)
        if (
            prev is not None
            and prev.record is not None
            and row.record is not None
            and row.record.at < prev.record.at - tolerance
        ):
            walk.backwards.append((row.seq, prev.seq, row.record.at, prev.record.at))
        if row.seq == look_at:
            walk.hash_at = row.hash
        prev = row
        walk.last_seq = row.seq
    return walk


def _moves(db: Connection, failing: Sequence[_Row]) -> tuple[dict[int, int], dict[int, int]]:
    """Rows moved to another seq with their own chain columns (``stored -> written``),
    and contents moved between rows whose chain columns stayed (``stored -> written``)."""
    moved: dict[int, int] = {}
    contents: dict[int, int] = {}
    if not failing:
        return moved, contents
    analysed = failing[:_SWAP_ANALYSIS_LIMIT]
    origins = _origins(db, analysed)
    for row in analysed:
        candidates = {other.seq for other in analysed} | {origins.get(row.prev_hash, 0)}
        written = _written_at(row, candidates)
        if written is not None:
            moved[row.seq] = written
            continue
        source = _content_of(row, analysed)
        if source is not None:
            contents[row.seq] = source
    return moved, contents


def _reorder_findings(
    moved: Mapping[int, int], contents: Mapping[int, int]
) -> Iterator[tuple[int, Finding]]:
    for a, b, swapped in _pairs(moved):
        message = (
            f"records {a} and {b} were swapped: each verifies only at the other's position"
            if swapped
            else f"the record stored as {a} was written as record {b} and moved"
        )
        yield a, Finding("PRV-7.reordered", message)
    for a, b, swapped in _pairs(contents):
        message = (
            f"records {a} and {b} hold each other's contents (swapped)"
            if swapped
            else f"record {a} holds the content written as record {b}"
        )
        yield a, Finding("PRV-7.reordered", message)


def _chain_findings(
    db: Connection, walk: _Walk, moved: Mapping[int, int], explained: set[int]
) -> Iterator[tuple[int, Finding]]:
    for row in walk.failing:
        if row.seq not in explained:
            why = row.problem or "its content does not match its hash"
            yield row.seq, Finding("PRV-7.edited", f"record {row.seq}: {why} (edited)")
    for seq in walk.broken:
        if seq not in explained and seq - 1 not in explained:
            yield (
                seq,
                Finding(
                    "PRV-7.broken_chain",
                    f"record {seq} does not point to the hash of record {seq - 1}: record "
                    f"{seq - 1} was rewritten with a new hash, or replaced",
                ),
            )
    gone = walk.missing - set(moved.values())
    if moved:  # a record moved beyond the end leaves a phantom gap, not a deletion
        query = select(func.max(audit_log.c.seq)).where(audit_log.c.seq.not_in(list(moved)))
        top = max(int(db.execute(query).scalar() or 0), *moved.values())
        gone = {s for s in gone if s <= top}
    for first, last in _ranges(gone):
        what = f"record {first} is" if first == last else f"records {first}-{last} are"
        yield first, Finding("PRV-7.deleted", f"{what} missing (deleted)")
    for seq, before, at, at_before in walk.backwards:
        if not {seq, before} & explained:
            yield (
                seq,
                Finding(
                    "PRV-7.reordered",
                    f"record {seq} is dated {_fmt(at)}, before record {before} "
                    f"({_fmt(at_before)}): time order differs from sequence order",
                ),
            )


def _head_findings(walk: _Walk, expect_head: tuple[int, str]) -> Iterator[tuple[int, Finding]]:
    head_seq, head_hash = expect_head
    if walk.last_seq < head_seq:
        where = f"record {walk.last_seq}" if walk.last_seq else "no record (empty)"
        yield (
            head_seq,
            Finding(
                "PRV-7.truncated",
                f"the log ends at {where}, but the head noted was record {head_seq}: "
                "records at the end were removed",
            ),
        )
    elif walk.hash_at is not None and walk.hash_at != head_hash:
        yield (
            head_seq,
            Finding(
                "PRV-7.rewritten",
                f"record {head_seq} is not the record noted as head (hash "
                f"{walk.hash_at[:12]}..., noted {head_hash[:12]}...): the log was cut "
                "back and written again, or rewritten",
            ),
        )


def verify(
    db: Connection,
    expect_head: tuple[int, str] | None = None,
    time_tolerance: timedelta = DEFAULT_TIME_TOLERANCE,
) -> list[Finding]:
    """Walk the chain in ``seq`` order; every problem found, as findings (see the module
    docstring for the rules). Empty = intact (and, with ``expect_head``, still holding
    the head noted before). ``time_tolerance``: how far a record may be dated before
    its predecessor (concurrent writers) before ``PRV-7.reordered`` is reported."""
    walk = _walk(db, expect_head[0] if expect_head else None, time_tolerance)
    moved, contents = _moves(db, walk.failing)
    explained = set(moved) | set(contents)
    found = [
        *_reorder_findings(moved, contents),
        *_chain_findings(db, walk, moved, explained),
        *(_head_findings(walk, expect_head) if expect_head is not None else ()),
    ]
    found.sort(key=lambda item: (item[0], item[1].rule))
    return [finding for _, finding in found]


def _origins(db: Connection, rows: Sequence[_Row]) -> dict[str, int]:
    """``prev_hash -> seq the row was written as`` (the predecessor's seq + 1)."""
    wanted = {row.prev_hash for row in rows} - {GENESIS}
    out = {GENESIS: 1}
    if wanted:
        query = select(audit_log.c.seq, audit_log.c.hash).where(audit_log.c.hash.in_(wanted))
        for seq, digest in db.execute(query):
            out[str(digest)] = int(seq) + 1
    return out
