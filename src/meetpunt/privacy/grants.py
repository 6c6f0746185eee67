"""The gate's memory of what it granted and copied (PRV-1, PRV-5).

``privacy_grant`` holds one row per granted connection, so frequency and pause limits
hold across requests and restarts; ``privacy_copy`` holds every exported copy with its
expiry, for retention. Both live in the register database beside the audit log, so a
decision, its audit record and its grants commit together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, insert, select

from meetpunt.privacy.model import AccessRequest, stored_utc
from meetpunt.privacy.rules import PastGrant
from meetpunt.register import schema as t


def past_grants(db: Connection, connection_ids: Sequence[int]) -> dict[int, list[PastGrant]]:
    """Every earlier grant for each connection in ``connection_ids``. One query."""
    if not connection_ids:
        return {}
    g = t.privacy_grant
    out: dict[int, list[PastGrant]] = {}
    for p in db.execute(
        select(g.c.connection_id, g.c.purpose, g.c.period_start, g.c.period_end, g.c.kinds).where(
            g.c.connection_id.in_(list(connection_ids))
        )
    ):
        out.setdefault(p.connection_id, []).append(
            PastGrant(
                p.purpose,
                stored_utc(p.period_start),
                stored_utc(p.period_end),
                frozenset(json.loads(p.kinds)),
            )
        )
    return out


def remember(
    db: Connection,
    audit_seq: int,
    purpose: str,
    request: AccessRequest,
    connection_ids: Iterable[int],
    now: datetime,
    expires: datetime | None,
) -> None:
    """Record one grant row per connection under the decision's audit record."""
    kinds = json.dumps(sorted(request.kinds))
    rows = [
        {
            "audit_seq": audit_seq,
            "party": request.party.id,
            "purpose": purpose,
            "connection_id": cid,
            "kinds": kinds,
            "period_start": request.period.start,
            "period_end": request.period.end,
            "granted_at": now,
            "expires_at": expires,
        }
        for cid in connection_ids
    ]
    if rows:
        db.execute(insert(t.privacy_grant), rows)


def record_copy(
    db: Connection, audit_seq: int, purpose: str, path: Path, expires: datetime
) -> None:
    """Record an exported copy so retention can delete it when it expires (PRV-5)."""
    db.execute(
        insert(t.privacy_copy).values(
            audit_seq=audit_seq, purpose=purpose, path=str(path), expires_at=expires
        )
    )
