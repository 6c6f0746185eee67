"""The change feed (issue 17): ``GET /v1/feed?cursor=C`` gives what changed for the
connections the caller may see since ``C``, and the next cursor.

The cursor is the store's batch id. Every curated row carries the batch that stored it
(``kinds.Kind.table_sql``), ids come from one DuckDB sequence (``batch_id``) that lives
in the store file, and batches commit one after another: a store file has one writer
at a time (DuckDB's file lock, the write lease of ``meterdata.store``), which takes its
id inside its transaction. So the batches committed form a growing prefix of the ids,
and "every row with ``batch > C``" is exactly what a party has not seen yet, across
restarts of the server and of ingestion alike (the sequence is stored with the data).
A correction of an estimate (MTR-5) is stored as a new row of a new batch, with the
estimate's old values in ``correction``: it appears in the feed marked ``correction``.

The feed never reads meter values past the gate (PRV-1): the store is asked only which
batches after ``C`` touched which of the caller's candidate connections (its supply
contracts, its bound connections), and the values go out through a gate request with
the caller's purpose, clipped by the gate to the days it may see and audited as any
read (PRV-7). A page ends on a batch boundary, so a client that stores the next cursor
only after handling the page gets everything at least once and loses nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc
from authlib.oauth2.rfc6749 import TokenValidator
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from meetpunt.api.auth import Caller, gate_of, gate_party
from meetpunt.api.errors import ApiError, error_responses, json_response, refuse
from meetpunt.api.oauth import (
    APP_FLOW,
    SCOPE_KINDS,
    OAuthServer,
    app_caller,
    token_consents,
)
from meetpunt.api.oauth import PURPOSE as APP_PURPOSE
from meetpunt.api.readings import rows_with_eans, status_of
from meetpunt.app.feed import ChangeKey, change_key, changed_since, time_column
from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.privacy.gate import Gate, GateError
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period
from meetpunt.register import schema as t
from meetpunt.register.parties import ApiParty, ApiRole

FEED_PURPOSES: dict[ApiRole, dict[str, tuple[str, ...]]] = {
    ApiRole.SUPPLIER: {
        "supplier_daily": ("daily_readings",),
        "supplier_monthly": ("monthly_readings",),
    },
    ApiRole.CUSTOMER: {"customer_own": ("daily_readings", "monthly_readings", "quarter_hours")},
}
"""What each role's feed carries: per purpose, the kinds (the catalogue's supplier and
customer purposes; a daily reading on a switch or move day is a daily reading)."""

FEED_KINDS = frozenset({"daily_readings", "monthly_readings", "quarter_hours"})
"""The kinds a feed carries."""

SWITCH_KIND = "switch_readings"
"""The hub's kind of the reading of a switch or move day (MKT-5, issue 20)."""
SWITCH_KINDS = (SWITCH_KIND, "gas_switch_readings")
"""The switch or move day's readings: electricity, and gas on the gas connection."""
SWITCH_CHANGE = "switch_reading"
"""How the feed marks it: ``change`` is ``switch_reading``, ``event`` switch or move."""

CURSOR = re.compile(r"^\d{1,18}$")
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000

router = APIRouter(prefix="/v1")

Cursor = Annotated[
    str, Query(description="'0' for everything, then the 'next_cursor' of the last page.")
]
Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description="About this many rows a page (whole batches).")
]

Stretches = list[tuple[date, date | None]]


@dataclass(frozen=True)
class Candidate:
    """A connection the caller may be granted: its EAN and the days it held it."""

    ean: str
    stretches: Stretches


@dataclass(frozen=True)
class Changed:
    """What a batch stored for one candidate connection and kind: rows, first, last."""

    batch: int
    kind: str
    connection: int
    rows: int
    first: datetime
    last: datetime


def parse_cursor(cursor: str) -> int:
    """The batch id in ``cursor``; 400 ``API-feed.cursor`` for anything else."""
    if not CURSOR.match(cursor):
        raise refuse(
            400, "API-feed.cursor", "the cursor is '0' or a 'next_cursor' this feed returned"
        )
    return int(cursor)


def candidates(gate: Gate, party: ApiParty) -> dict[int, Candidate]:
    """The connections whose data the caller's feed may carry, by connection id, with
    the days it held them: a supplier's supply contracts (PRV-1.supplier_scope), a
    customer's bound connections while they held them (PRV-1.own_data). The gate still
    decides every read; this only keeps other connections out of the question."""
    out: dict[int, Candidate] = {}
    with gate.register.session() as session:
        db = session.db
        if party.role is ApiRole.SUPPLIER:
            query = (
                select(
                    t.connection.c.id,
                    t.connection.c.ean,
                    t.supply_contract.c.start_date,
                    t.supply_contract.c.end_date,
                )
                .join(t.allocation_point, t.allocation_point.c.connection_id == t.connection.c.id)
                .join(
                    t.supply_contract,
                    t.supply_contract.c.allocation_point_id == t.allocation_point.c.id,
                )
                .where(
                    t.supply_contract.c.supplier == (party.code or ""),
                    t.allocation_point.c.kind == "primary",
                )
            )
            for cid, ean, start, end in db.execute(query):
                out.setdefault(cid, Candidate(ean, [])).stretches.append((start, end))
        elif party.role is ApiRole.CUSTOMER:
            held = session.customer_stretches(party)
            ids = select(t.connection.c.ean, t.connection.c.id).where(
                t.connection.c.ean.in_(list(held))
            )
            for ean, cid in db.execute(ids):
                out[cid] = Candidate(ean, held[ean])
    return out


def changes(
    gate: Gate, kinds: Sequence[str], ids: Sequence[int], after: int
) -> tuple[int, list[Changed], set[ChangeKey]]:
    """In one read-only lease (``app.feed``): the newest committed batch, what each
    batch after ``after`` stored per candidate connection and kind (counts and time
    span only, no values), and the corrections among it (batch, kind, connection,
    time). 400 ``API-feed.cursor_ahead`` for a cursor past the newest batch."""
    store = gate.store
    if store is None:
        raise refuse(503, "API-feed.store", "this server has no meter-data store")
    head, rows, corrected = changed_since(store, kinds, ids, after)
    if after > head:
        raise refuse(
            400,
            "API-feed.cursor_ahead",
            f"cursor {after} is past the newest change ({head}): not a cursor of this feed",
        )
    return head, [Changed(*row) for row in rows], corrected


def page_end(found: Sequence[Changed], head: int, limit: int) -> int:
    """The last batch of this page: batches in order until ``limit`` rows are reached
    (at least one batch, never half of one), or ``head`` when everything fits."""
    per_batch: dict[int, int] = {}
    for c in found:
        per_batch[c.batch] = per_batch.get(c.batch, 0) + c.rows
    total = 0
    for batch in sorted(per_batch):
        total += per_batch[batch]
        if total >= limit and batch != max(per_batch):
            return batch
    return head


def _local_day(moment: datetime) -> date:
    """The local day of a stored (naive UTC) time."""
    return to_local(moment.replace(tzinfo=moment.tzinfo or UTC)).date()


def _overlaps(stretches: Stretches, first: date, after: date) -> bool:
    """Whether a held stretch meets the days ``first`` up to ``after`` (the end day
    included: the final reading on a switch or move day)."""
    return any(s < after and (e is None or e >= first) for s, e in stretches)


def final_days(
    known: dict[int, Candidate], mine: Sequence[Changed]
) -> list[tuple[dict[str, int], date, date]]:
    """One-day reads of the days a supplier's contract ended on which a changed row
    lies: the final reading at that midnight belongs to the leaving supplier too, but
    the gate grants it only in a read of that one day (PRV-1, MKT-5); a day on which
    another of its contracts begins is covered by the main read already."""
    out: list[tuple[dict[str, int], date, date]] = []
    for cid in sorted({c.connection for c in mine}):
        held = known[cid].stretches
        starts = {s for s, _ in held}
        days = [(_local_day(c.first), _local_day(c.last)) for c in mine if c.connection == cid]
        for _, end in held:
            if end is None or end in starts:
                continue
            if any(a <= end <= b for a, b in days):
                out.append(({known[cid].ean: cid}, end, end + timedelta(days=1)))
    return out


def read_changes(
    gate: Gate,
    who: Party,
    purpose: str,
    kinds: tuple[str, ...],
    eans: dict[str, int],
    first: date,
    after: date,
    batches: tuple[int, int],
    why: str,
    trigger: str | None = None,
) -> tuple[dict[str, pa.Table], list[dict[str, Any]]]:
    """The gate's request for ``kinds`` of ``eans`` over the local days ``first`` up to
    ``after`` under ``purpose``, each granted kind read (audited) and kept to the rows
    of ``batches`` (``(after, upto]``). A refusal of several connections is asked again
    one connection at a time, so one connection the caller may not see (an opt-out,
    PRV-3) does not hold back the others; each refusal is audited and listed."""
    period = Period(local_midnight_utc(first), local_midnight_utc(after))
    request = AccessRequest(
        who,
        purpose,
        tuple(sorted(eans)),
        frozenset(kinds),
        period,
        gate.clock(),
        justification=why,
        trigger=trigger,
    )
    outcome = gate.request(request)
    if isinstance(outcome, Decision):
        if len(eans) > 1:
            tables: dict[str, list[pa.Table]] = {}
            refusals: list[dict[str, Any]] = []
            for ean, cid in sorted(eans.items()):
                got, refused = read_changes(
                    gate, who, purpose, kinds, {ean: cid}, first, after, batches, why, trigger
                )
                for kind, table in got.items():
                    tables.setdefault(kind, []).append(table)
                refusals += refused
            return {k: pa.concat_tables(v) for k, v in tables.items()}, refusals
        if status_of(outcome.rules) == 404:
            raise ApiError(404, outcome.findings)
        return {}, [
            {
                "ean": ean,
                "purpose": purpose,
                "rules": list(outcome.rules),
                "audit_seq": outcome.audit_seq,
            }
            for ean in eans
        ]
    out: dict[str, pa.Table] = {}
    for kind in kinds:
        try:
            table = outcome.read(kind)
        except GateError as refused:
            raise ApiError(403, refused.findings) from refused
        batch = table.column("batch")
        keep = pc.and_(pc.greater(batch, batches[0]), pc.less_equal(batch, batches[1]))
        out[kind] = table.filter(keep)
    return out, []


def feed_rows(
    kind: str, table: pa.Table, ids: dict[str, int], corrected: set[ChangeKey]
) -> list[dict[str, Any]]:
    """The rows of one kind as the feed gives them: the EAN, the kind, the batch
    (``seq``, what the cursor counts), ``change`` (``new`` or ``correction``) and the
    stored values with their status (MTR-5)."""
    time = time_column(kind)
    batches = table.column("batch").to_pylist()
    connections = table.column("connection").to_pylist()
    out = []
    for batch, cid, row in zip(batches, connections, rows_with_eans(table, ids), strict=True):
        key = change_key(int(batch), kind, int(cid), row[time])
        change = (
            SWITCH_CHANGE if kind in SWITCH_KINDS else "correction" if key in corrected else "new"
        )
        out.append({"seq": int(batch), "kind": kind, "change": change, **row})
    return out


ERRORS_400: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "not a cursor of this feed, or one past its newest change",
        "content": error_responses(401)[401]["content"],
    }
}


@router.get("/feed", responses={**error_responses(401, 403, 404, 422), **ERRORS_400})
def feed(
    request: Request,
    party: Caller,
    cursor: Cursor = "0",
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """What changed for the connections this party may see since ``cursor`` (new
    values, corrections of estimates, readings on a switch or move day), each read
    through the gate with the party's purpose and audited (PRV-1, PRV-7), and the next
    cursor. Gap-free and at-least-once: store ``next_cursor`` after handling a page; a
    cursor past the newest change or not a cursor is 400 (issue 17)."""
    after = parse_cursor(cursor)
    purposes = FEED_PURPOSES.get(party.role)
    if purposes is None:
        raise refuse(
            403, "API-role.feed", "the feed is for suppliers and customers; apps: /v1/app/feed"
        )
    gate = gate_of(request)
    known = candidates(gate, party)
    finals = party.role is ApiRole.SUPPLIER
    return json_response(
        changes_page(request, gate, gate_party(party), known, purposes, finals, after, limit)
    )


def changes_page(
    request: Request,
    gate: Gate,
    who: Party,
    known: dict[int, Candidate],
    purposes: dict[str, tuple[str, ...]],
    finals: bool,
    after: int,
    limit: int,
) -> dict[str, Any]:
    """One page of the feed for ``who``: the changes after batch ``after`` of the
    ``known`` connections, read through the gate under each purpose for its kinds
    (one-day reads of contract end days too when ``finals``), and the next cursor."""
    kinds = sorted(
        {k for ks in purposes.values() for k in ks} | (set(SWITCH_KINDS) if finals else set())
    )
    head, found, corrected = changes(gate, kinds, sorted(known), after)
    upto = page_end(found, head, limit)
    why = f"HTTP API {request.url.path}"
    rows: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for purpose, its_kinds in purposes.items():
        mine = [c for c in found if c.kind in its_kinds and c.batch <= upto]
        if not mine:
            continue
        first = min(_local_day(c.first) for c in mine)
        last = max(_local_day(c.last) for c in mine) + timedelta(days=1)
        eans = {
            known[c.connection].ean: c.connection
            for c in mine
            if _overlaps(known[c.connection].stretches, first, last)
        }
        if not eans:
            continue
        asks = [(eans, first, last)]
        if finals:
            asks += final_days(known, mine)
        for some, since, until in asks:
            tables, no = read_changes(
                gate, who, purpose, its_kinds, some, since, until, (after, upto), why
            )
            refused += no
            for kind, table in tables.items():
                rows += feed_rows(kind, table, some, corrected)
    if finals:
        got, no = switch_rows(gate, who, known, found, (after, upto), why)
        rows += got
        refused += no
    once = {(r["seq"], r["kind"], r["ean"], str(r[time_column(r["kind"])])): r for r in rows}
    rows = [once[k] for k in sorted(once)]
    return {
        "cursor": str(after),
        "next_cursor": str(upto),
        "more": upto < head,
        "changes": rows,
        "refused": refused,
    }


def switch_event(gate: Gate, connection: int, day: date) -> str:
    """``move`` when the contract ending on ``day`` and the one starting on it have
    different holders (MKT-5.move_holder), else ``switch``: the register's contract
    history decides which catalogue purpose reads the day's reading."""
    with gate.register.session() as session:
        query = (
            select(t.supply_contract.c.contract_holder)
            .join(
                t.allocation_point,
                t.supply_contract.c.allocation_point_id == t.allocation_point.c.id,
            )
            .where(
                t.allocation_point.c.connection_id == connection,
                t.allocation_point.c.kind == "primary",
                (t.supply_contract.c.start_date == day) | (t.supply_contract.c.end_date == day),
            )
        )
        holders = {h for (h,) in session.db.execute(query)}
    return "move" if len(holders) > 1 else "switch"


def switch_rows(
    gate: Gate,
    who: Party,
    known: dict[int, Candidate],
    found: Sequence[Changed],
    batches: tuple[int, int],
    why: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The switch and move readings of this page for a supplier: each a one-day read
    of the day it opened or closed a contract, under the catalogue's ``supplier_switch``
    or ``supplier_move`` with the notice as trigger (PRV-1, MKT-5), so the old and the
    new supplier each get it once; the rest of the page goes as before. A gas
    connection's reading (``gas_switch_readings``) is read the same way, the gate
    taking the gas connection under the EAN for the gas kind."""
    rows: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    asked: set[tuple[int, str, date]] = set()
    for c in found:
        if c.kind not in SWITCH_KINDS or c.batch > batches[1]:
            continue
        held = known[c.connection].stretches
        edges = {s for s, _ in held} | {e for _, e in held if e is not None}
        day = _local_day(c.first)
        while day <= _local_day(c.last):
            if day in edges and (c.connection, c.kind, day) not in asked:
                asked.add((c.connection, c.kind, day))
                event = switch_event(gate, c.connection, day)
                eans = {known[c.connection].ean: c.connection}
                tables, no = read_changes(
                    gate,
                    who,
                    f"supplier_{event}",
                    (c.kind,),
                    eans,
                    day,
                    day + timedelta(days=1),
                    batches,
                    why,
                    f"{event} notice: {known[c.connection].ean} on {day.isoformat()}",
                )
                refused += no
                for kind, table in tables.items():
                    rows += feed_rows(kind, table, eans, set())
            day += timedelta(days=1)
    return rows, refused


@router.get(
    "/app/feed",
    responses={**error_responses(401, 403, 422), **ERRORS_400},
    dependencies=[Depends(APP_FLOW)],
)
def app_feed(
    request: Request,
    cursor: Cursor = "0",
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """The feed for an app with its access token: what changed of the connections and
    kinds the customer's consent behind the token names, within the consent's period,
    read through the gate as ``app_consent`` (PRV-4: a revoked or expired consent is
    refused, audited, and listed in ``refused``); otherwise as ``/v1/feed``."""
    after = parse_cursor(cursor)
    server = OAuthServer(gate_of(request))
    caller = app_caller(request, server)
    scoped = {
        SCOPE_KINDS[s][0]
        for s in SCOPE_KINDS
        if not TokenValidator.scope_insufficient(caller.token.scope, [s])
    }
    known: dict[int, Candidate] = {}
    kinds: set[str] = set()
    with server.gate.register.session() as session:
        for c in token_consents(session.db, caller.token):
            span = (_local_day(c.valid_from), _local_day(c.valid_to))
            known.setdefault(c.connection_id, Candidate(c.ean, [])).stretches.append(span)
            kinds |= set(c.kinds) & scoped & FEED_KINDS
    purposes = {APP_PURPOSE: tuple(sorted(kinds))} if kinds else {}
    who = gate_party(caller.app)
    return json_response(
        changes_page(request, server.gate, who, known, purposes, False, after, limit)
    )
