"""Stored findings that open a flagged purpose (population "flagged": UC3, UC12).

UC3 may read only where UC2 "shows notably many events", and UC12 reads individual
connections only "when the step before points there". A use case records such a finding
here with :meth:`meetpunt.privacy.gate.Gate.flag`: which step found it, which purpose it
opens, for which connections and until when. A follow-up request cites the finding's id
(``AccessRequest.cites``), and :func:`meetpunt.privacy.rules.decide` checks the citation
against this record, not just that a trigger text is present (``<purpose>.flagged``).
Both tables live in the register database, so a finding commits with its audit record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select

from meetpunt.privacy.model import stored_utc
from meetpunt.privacy.rules import FlagFact
from meetpunt.register import schema as t

_f = t.privacy_flag
_m = t.privacy_flag_member


def store(
    db: Connection,
    *,
    usecase: str,
    step: str,
    opens: str,
    party: str,
    connection_ids: Sequence[int],
    created_at: datetime,
    valid_until: datetime,
    audit_seq: int,
    summary: str,
) -> int:
    """Keep a finding and the connections it names; its id is what a request cites."""
    key = db.execute(
        insert(_f).values(
            usecase=usecase,
            step=step,
            opens=opens,
            party=party,
            created_at=created_at,
            valid_until=valid_until,
            audit_seq=audit_seq,
            summary=summary,
        )
    ).inserted_primary_key
    if key is None:  # pragma: no cover - the table has an integer key
        raise RuntimeError("no key returned for privacy_flag")
    flag_id = int(key[0])
    members = sorted(set(connection_ids))
    if members:
        db.execute(insert(_m), [{"flag_id": flag_id, "connection_id": c} for c in members])
    return int(flag_id)


def load(db: Connection, flag_id: int) -> FlagFact | None:
    """The finding ``flag_id`` as the gate's rules see it, or None if there is none."""
    row = db.execute(select(_f).where(_f.c.id == flag_id)).first()
    if row is None:
        return None
    members = db.execute(select(_m.c.connection_id).where(_m.c.flag_id == flag_id)).scalars()
    return FlagFact(
        id=row.id,
        usecase=row.usecase,
        step=row.step,
        opens=row.opens,
        party=row.party,
        valid_until=stored_utc(row.valid_until),
        members=frozenset(int(c) for c in members),
    )
