"""For tests that use UC3 as an ordinary grid purpose: a stored UC2 finding naming every
connection of the register, so their UC3 requests can cite it (population "flagged")."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, select

from meetpunt.privacy import flags
from meetpunt.register import schema as t

FLAG = 1
"""The id the first finding of a fresh register gets: the one :func:`flag_all` stores."""


def flag_all(db: Connection, party: str) -> int:
    """Store a UC2 finding by ``party`` that opens UC3 for every connection, valid for
    the whole test era; returns its id."""
    ids = list(db.execute(select(t.connection.c.id)).scalars())
    return flags.store(
        db,
        usecase="UC2",
        step="test",
        opens="UC3",
        party=party,
        connection_ids=ids,
        created_at=datetime(2000, 1, 1, tzinfo=UTC),
        valid_until=datetime(2100, 1, 1, tzinfo=UTC),
        audit_seq=0,
        summary="test: every connection flagged",
    )
