"""Consents of customers for apps (PRV-4): a state machine per consent, every step audited.

States: ``requested`` -> ``given`` | ``refused``; ``given`` -> ``revoked`` | ``expired``
| ``fulfilled``. A consent is for one party, one purpose, one connection, a set of data
kinds and a validity period. Only a ``given`` consent inside its period lets the gate
read; revocation takes effect on the next read, expiry the moment the period ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.privacy import audit
from meetpunt.privacy.model import Period, stored_utc
from meetpunt.register import schema as t

TRANSITIONS = {
    "requested": {"given", "refused"},
    "given": {"revoked", "expired", "fulfilled"},
}
"""Allowed state changes; every other change is refused (``PRV-4.transition``)."""


class ConsentError(MeetpuntError):
    """A consent operation the state machine or the register refuses."""


@dataclass(frozen=True)
class Consent:
    """One consent as stored."""

    id: int
    party: str
    purpose: str
    connection_id: int
    ean: str
    given_by: str
    kinds: frozenset[str]
    valid_from: datetime
    valid_to: datetime
    state: str

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "party": self.party,
            "purpose": self.purpose,
            "ean": self.ean,
            "given_by": self.given_by,
            "kinds": sorted(self.kinds),
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat(),
            "state": self.state,
        }


def _audit(db: Connection, c: Consent, outcome: str, at: datetime) -> None:
    audit.append(
        db,
        audit.AuditEntry(
            event="consent",
            party=c.party,
            purpose=c.purpose,
            outcome=outcome,
            connections=(c.ean,),
            kinds=tuple(sorted(c.kinds)),
            period_start=c.valid_from,
            period_end=c.valid_to,
            rules=(),
            detail={"role": "app", "consent": c.id, "given_by": c.given_by},
        ),
        at,
    )


def give(
    db: Connection,
    party: str,
    purpose: str,
    ean: str,
    kinds: Iterable[str],
    period: Period,
    given_by: str,
    at: datetime,
) -> Consent:
    """Record a consent the customer gave (requested and given in one step)."""
    return _record(db, party, purpose, ean, kinds, period, given_by, at, "given")


def refuse(
    db: Connection,
    party: str,
    purpose: str,
    ean: str,
    kinds: Iterable[str],
    period: Period,
    given_by: str,
    at: datetime,
) -> Consent:
    """Record that the customer refused what an app asked (requested and refused in one
    step; PRV-4): kept and audited like a consent given, so the customer's log shows the
    refusal, and it opens nothing."""
    return _record(db, party, purpose, ean, kinds, period, given_by, at, "refused")


def _record(
    db: Connection,
    party: str,
    purpose: str,
    ean: str,
    kinds: Iterable[str],
    period: Period,
    given_by: str,
    at: datetime,
    state: str,
) -> Consent:
    """A consent asked and answered in one step, ``given`` or ``refused``; audited."""
    found = db.execute(
        select(t.connection.c.id).where(
            t.connection.c.ean == ean, t.connection.c.commodity == "electricity"
        )
    ).first()
    if found is None:
        finding = Finding("PRV-1.unknown_connection", f"no electricity connection {ean}")
        raise ConsentError(finding.message, [finding])
    if period.end <= period.start:
        finding = Finding("PRV-4.period", "the consent ends before it starts")
        raise ConsentError(finding.message, [finding])
    kinds_set = frozenset(kinds)
    new_id = db.execute(
        insert(t.consent).values(
            party=party,
            purpose=purpose,
            connection_id=found.id,
            given_by=given_by,
            kinds=json.dumps(sorted(kinds_set)),
            valid_from=period.start,
            valid_to=period.end,
            state=state,
            created_at=at,
            changed_at=at,
        )
    ).inserted_primary_key
    assert new_id is not None
    c = Consent(
        int(new_id[0]),
        party,
        purpose,
        found.id,
        ean,
        given_by,
        kinds_set,
        period.start,
        period.end,
        state,
    )
    _audit(db, c, state, at)
    return c


def change(db: Connection, consent_id: int, state: str, at: datetime) -> Consent:
    """Move a consent to ``state`` if the state machine allows it; audited."""
    current = get(db, consent_id)
    if state not in TRANSITIONS.get(current.state, set()):
        finding = Finding(
            "PRV-4.transition", f"consent {consent_id} is {current.state}; it cannot become {state}"
        )
        raise ConsentError(finding.message, [finding])
    db.execute(
        update(t.consent).where(t.consent.c.id == consent_id).values(state=state, changed_at=at)
    )
    changed = Consent(**{**current.__dict__, "state": state})
    _audit(db, changed, state, at)
    return changed


def revoke(db: Connection, consent_id: int, at: datetime) -> Consent:
    """The customer withdraws the consent: the next read is refused."""
    return change(db, consent_id, "revoked", at)


def get(db: Connection, consent_id: int) -> Consent:
    """One consent; ``ConsentError`` when there is none with that id."""
    found = list_consents(db, consent_id=consent_id)
    if not found:
        finding = Finding("PRV-4.unknown", f"there is no consent {consent_id}")
        raise ConsentError(finding.message, [finding])
    return found[0]


def list_consents(
    db: Connection,
    ean: str | None = None,
    party: str | None = None,
    consent_id: int | None = None,
) -> list[Consent]:
    """Consents, optionally of one connection, one party or one id."""
    c = t.consent
    query = select(c, t.connection.c.ean).join(t.connection, t.connection.c.id == c.c.connection_id)
    if ean is not None:
        query = query.where(t.connection.c.ean == ean)
    if party is not None:
        query = query.where(c.c.party == party)
    if consent_id is not None:
        query = query.where(c.c.id == consent_id)
    return [
        Consent(
            r.id,
            r.party,
            r.purpose,
            r.connection_id,
            r.ean,
            r.given_by,
            frozenset(json.loads(r.kinds)),
            stored_utc(r.valid_from),
            stored_utc(r.valid_to),
            r.state,
        )
        for r in db.execute(query.order_by(c.c.id))
    ]


def expire(db: Connection, at: datetime) -> list[Consent]:
    """Mark given consents whose period has ended as expired (audited)."""
    ended = [x for x in list_consents(db) if x.state == "given" and x.valid_to <= at]
    return [change(db, x.id, "expired", at) for x in ended]


def consented_connections(
    db: Connection,
    party: str,
    purpose: str,
    connection_ids: Sequence[int],
    kinds: frozenset[str],
    period: Period,
    at: datetime,
) -> set[int]:
    """The connections with a given consent covering the kinds and the whole period,
    in force at ``at`` (PRV-4)."""
    c = t.consent
    rows = db.execute(
        select(c.c.connection_id, c.c.kinds, c.c.valid_from, c.c.valid_to).where(
            c.c.party == party,
            c.c.purpose == purpose,
            c.c.state == "given",
            c.c.connection_id.in_(list(connection_ids)),
        )
    )
    out: set[int] = set()
    for r in rows:
        start, end = stored_utc(r.valid_from), stored_utc(r.valid_to)
        if (
            kinds <= frozenset(json.loads(r.kinds))
            and start <= period.start
            and period.end <= end
            and at < end
        ):
            out.add(r.connection_id)
    return out
