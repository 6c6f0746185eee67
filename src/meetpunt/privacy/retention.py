"""Retention after purpose (PRV-5): meter data copied out under a grant is deleted when
its purpose says so, and the deletion is audited.

:meth:`Grant.export <meetpunt.privacy.gate.Grant.export>` writes a copy (Parquet, with
the purpose, the audit record of the grant and the expiry in its metadata) and records
it in ``privacy_copy``. UC7 ("delete the source data after the analysis") and every
purpose whose retention ends with the analysis get an expiry of *now*: the use case
deletes its copies when it is done (:func:`delete_copies` for its grant), and
``meetpunt retention run`` deletes whatever is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, select, update

from meetpunt.privacy import audit
from meetpunt.privacy.model import stored_utc
from meetpunt.register import schema as t


@dataclass(frozen=True)
class DeletedCopy:
    """A copy that retention deleted."""

    path: str
    purpose: str
    audit_seq: int
    expires_at: datetime


def delete_copies(db: Connection, now: datetime, audit_seq: int | None = None) -> list[DeletedCopy]:
    """Delete the copies whose expiry has come (or every copy of one grant) and audit it."""
    c = t.privacy_copy
    query = select(c).where(c.c.deleted_at.is_(None))
    if audit_seq is None:
        query = query.where(c.c.expires_at <= now)
    else:
        query = query.where(c.c.audit_seq == audit_seq)
    deleted: list[DeletedCopy] = []
    for row in db.execute(query.order_by(c.c.id)).all():
        Path(row.path).unlink(missing_ok=True)
        db.execute(update(c).where(c.c.id == row.id).values(deleted_at=now))
        copy = DeletedCopy(row.path, row.purpose, row.audit_seq, stored_utc(row.expires_at))
        audit.append(
            db,
            audit.AuditEntry(
                event="retention",
                party="meetpunt",
                purpose=row.purpose,
                outcome="deleted",
                connections=(),
                kinds=(),
                period_start=None,
                period_end=None,
                rules=("PRV-5.retention",),
                detail={
                    "path": row.path,
                    "grant": row.audit_seq,
                    "expired": copy.expires_at.isoformat(),
                },
            ),
            now,
        )
        deleted.append(copy)
    return deleted
