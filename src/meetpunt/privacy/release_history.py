"""The release history of aggregate cells, by connection id (PRV-6.history).

Every shown cell is stored with its period and its contributors (connection ids) in the
register table ``disclosure_release``, shared by all purposes and parties, so the
checks of :func:`meetpunt.privacy.disclosure.decide` see every earlier cell whose period
overlaps, whatever its area's label was then: a register correction of a street name
changes nothing, and the history survives restarts. The differential-privacy budget
each connection spent is in ``disclosure_budget`` (PRV-6.budget).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, func, insert, select

from meetpunt.domain.calendar import to_local
from meetpunt.privacy.disclosure import Candidate, Earlier
from meetpunt.privacy.model import Party, Period, stored_utc
from meetpunt.register.schema import disclosure_budget, disclosure_release

REACH = timedelta(days=62)
"""How far around a release the history is read: the longest grid period (a month),
twice, so cells that overlap a cell that overlaps the release are seen too."""


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(UTC)


def overlapping(db: Connection, span: Period, connections: Iterable[int]) -> list[Earlier]:
    """The cells released before (any purpose, any party) whose period lies within
    :data:`REACH` of ``span`` and that share a contributor with ``connections``."""
    wanted = set(connections)
    t = disclosure_release
    start = _utc(span.start, "span.start") - REACH
    end = _utc(span.end, "span.end") + REACH
    rows = db.execute(
        select(t.c.period_start, t.c.period_end, t.c.connections)
        .where(t.c.period_start < end, t.c.period_end > start)
        .order_by(t.c.id)
    )
    out: list[Earlier] = []
    for period_start, period_end, text in rows:
        contributors = frozenset(int(c) for c in json.loads(text))
        if contributors & wanted:
            out.append(
                Earlier(Period(stored_utc(period_start), stored_utc(period_end)), contributors)
            )
    return out


def record(
    db: Connection,
    purpose: str,
    party: Party | str,
    cells: Sequence[Candidate],
    at: datetime,
    epsilon: float = 0.0,
) -> int:
    """Store the shown ``cells`` (their contributors as a sorted JSON list); returns the
    rows written."""
    party_id = party.id if isinstance(party, Party) else party
    released_at = _utc(at, "at")
    rows = [
        {
            "purpose": purpose,
            "party": party_id,
            "area_level": cell.level,
            "area": cell.area,
            "period_start": _utc(cell.period.start, "period_start"),
            "period_end": _utc(cell.period.end, "period_end"),
            "connections": json.dumps(sorted(cell.contributors)),
            "released_at": released_at,
            "epsilon": epsilon,
        }
        for cell in cells
    ]
    if rows:
        db.execute(insert(disclosure_release), rows)
    return len(rows)


def budget_year(period: Period) -> int:
    """The local calendar year a period's budget is counted in (its first day's)."""
    return to_local(period.start).year


def spent(db: Connection, connections: Iterable[int], year: int) -> dict[int, float]:
    """The epsilon each connection already spent in ``year`` (absent: nothing)."""
    ids = sorted(set(connections))
    if not ids:
        return {}
    t = disclosure_budget
    rows = db.execute(
        select(t.c.connection_id, func.sum(t.c.epsilon))
        .where(t.c.connection_id.in_(ids), t.c.year == year)
        .group_by(t.c.connection_id)
    )
    return {int(cid): float(total) for cid, total in rows}


def spend(
    db: Connection,
    purpose: str,
    charges: Iterable[tuple[int, int, float]],
    at: datetime,
) -> int:
    """Write ``(connection, year, epsilon)`` charges; returns the rows written."""
    when = _utc(at, "at")
    rows = [
        {"connection_id": c, "year": y, "purpose": purpose, "epsilon": e, "spent_at": when}
        for c, y, e in charges
        if e > 0
    ]
    if rows:
        db.execute(insert(disclosure_budget), rows)
    return len(rows)
