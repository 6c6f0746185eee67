"""Customers' activation codes (issue 17): how a customer account is bound to its
connections, the way Dutch portals bind an account by the code in a letter.

``meetpunt party add --role customer --ean EAN`` adds the customer party, bound to the
connection and named as its holder, and issues a one-time code instead of showing the
key. The customer sends the code to ``POST /v1/me/activate`` and gets the account's API
key then, once: the party's key is replaced by a fresh one, so the key made at ``add``
was never seen by anyone. A code is 12 characters of a 31-letter alphabet without the
look-alikes 0/O, 1/I/L and U (about 59 random bits), grouped by four for typing, kept
only as its SHA-256, used once and expires (30 days by default).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError
from meetpunt.register import schema as t
from meetpunt.register.parties import ApiParties, ApiParty, ApiRole, key_hash, new_key

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
"""The code's letters: digits and capitals without 0/O, 1/I/L and U (read aloud or
typed from a letter without mistakes)."""
CODE_LENGTH = 12
ACTIVATION_DAYS = 30
"""How long a code is valid by default."""


def new_code() -> str:
    """A fresh activation code, ``XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normal_code(code: str) -> str:
    """The code as stored: capitals, without dashes and spaces (a typed code may have
    either)."""
    return "".join(c for c in code.upper() if c not in "- ")


def code_hash(code: str) -> str:
    """The stored form of a code: the SHA-256 of its normal form."""
    return key_hash(normal_code(code))


def _refuse(rule: str, message: str) -> RegisterError:
    return RegisterError(message, [Finding(rule, message)])


def _utc(moment: datetime) -> datetime:
    """A stored time as aware UTC (SQLite returns it naive; it was written as UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class ActivationCodes(ApiParties):
    """Issuing and redeeming customers' activation codes (issue 17)."""

    def issue_activation(
        self, party: ApiParty, now: datetime, days: int = ACTIVATION_DAYS
    ) -> tuple[str, datetime]:
        """A new one-time code for the customer ``party``, valid ``days`` days from
        ``now``; returns the code (shown this once) and when it expires."""
        if party.role is not ApiRole.CUSTOMER:
            raise _refuse("API-activate.role", "only a customer account is activated by a code")
        if days < 1:
            raise _refuse("API-activate.days", "an activation code is valid at least one day")
        code = new_code()
        expires = now + timedelta(days=days)
        self._conn.execute(
            insert(t.api_activation).values(
                party_id=party.id, code_hash=code_hash(code), created_at=now, expires_at=expires
            )
        )
        return code, expires

    def activate(self, code: str, now: datetime) -> tuple[ApiParty, str]:
        """Redeem ``code`` at ``now``: the customer party with a fresh API key (shown
        once; the old key stops working). Refused: an unknown code
        (``API-activate.unknown``), a used one (``API-activate.used``), an expired one
        (``API-activate.expired``), a revoked account (``API-activate.revoked``). The code
        is spent in one ``UPDATE ... WHERE used_at IS NULL``, so two concurrent
        activations cannot both win."""
        a = t.api_activation
        digest = code_hash(code)
        row = self._conn.execute(select(a).where(a.c.code_hash == digest)).first()
        if row is None:
            raise _refuse("API-activate.unknown", "this activation code is not known")
        if row.used_at is not None:
            raise _refuse("API-activate.used", "this activation code was used already")
        if _utc(row.expires_at) <= now:
            raise _refuse("API-activate.expired", "this activation code has expired")
        party = self.api_party_by_id(row.party_id)
        if party is None or party.revoked:
            raise _refuse("API-activate.revoked", "this account was revoked")
        spent = self._conn.execute(
            update(a).where(a.c.id == row.id, a.c.used_at.is_(None)).values(used_at=now)
        )
        if spent.rowcount != 1:
            raise _refuse("API-activate.used", "this activation code was used already")
        key = new_key()
        self._conn.execute(
            update(t.api_party).where(t.api_party.c.id == party.id).values(key_hash=key_hash(key))
        )
        return party, key
