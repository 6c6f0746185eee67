"""OAuth authorization codes and tokens of apps in the register (issue 17, PRV-4).

Codes, access tokens and refresh tokens are random strings (256 bits) that leave once
and are kept only as their SHA-256, like API keys (``parties.key_hash``): a lookup is
one indexed query by the hash. A code is used once (``use_code`` marks it in one
``UPDATE ... WHERE used_at IS NULL``, so two concurrent exchanges cannot both win); a
replayed code revokes the tokens issued from it (RFC 6749 4.1.2).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row, insert, select, update

from meetpunt.domain.calendar import stored_utc
from meetpunt.register import schema as t
from meetpunt.register.parties import key_hash


@dataclass(frozen=True)
class CodeRow:
    """An authorization code as stored (never the code itself)."""

    id: int
    client_id: int
    customer_id: int
    consents: tuple[int, ...]
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class TokenRow:
    """An access token with its refresh token as stored (only their hashes)."""

    id: int
    client_id: int
    customer_id: int
    code_id: int
    consents: tuple[int, ...]
    scope: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


def save_code(
    db: Connection,
    code: str,
    client_id: int,
    customer_id: int,
    consents: Sequence[int],
    redirect_uri: str,
    scope: str,
    challenge: tuple[str, str],
    expires_at: datetime,
) -> int:
    """Store a new code by its hash, bound to the app, the customer's consents, the
    redirect URI, the scope and the PKCE challenge ``(challenge, method)``."""
    row = {
        "code_hash": key_hash(code),
        "client_id": client_id,
        "customer_id": customer_id,
        "consents": json.dumps(list(consents)),
        "redirect_uri": redirect_uri,
        "scope": scope,
        "code_challenge": challenge[0],
        "code_challenge_method": challenge[1],
        "expires_at": expires_at,
    }
    inserted = db.execute(insert(t.oauth_code).values(row)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def code_by_value(db: Connection, code: str) -> CodeRow | None:
    """The stored code whose hash this is, used or not, or None."""
    c = t.oauth_code
    row = db.execute(select(c).where(c.c.code_hash == key_hash(code))).first()
    if row is None:
        return None
    return CodeRow(
        row.id,
        row.client_id,
        row.customer_id,
        tuple(json.loads(row.consents)),
        row.redirect_uri,
        row.scope,
        row.code_challenge,
        row.code_challenge_method,
        stored_utc(row.expires_at),
        None if row.used_at is None else stored_utc(row.used_at),
    )


def use_code(db: Connection, code_id: int, at: datetime) -> bool:
    """Mark the code used; False when it already was (a replay)."""
    c = t.oauth_code
    done = db.execute(update(c).where(c.c.id == code_id, c.c.used_at.is_(None)).values(used_at=at))
    return done.rowcount == 1


def save_token(
    db: Connection,
    access: str,
    refresh: str | None,
    code: CodeRow | TokenRow,
    scope: str,
    issued_at: datetime,
    expires_at: datetime,
) -> int:
    """Store an access token (and its refresh token) by their hashes, bound to the app,
    the customer and the consents of the code or the token it was issued from."""
    code_id = code.id if isinstance(code, CodeRow) else code.code_id
    row = {
        "access_hash": key_hash(access),
        "refresh_hash": None if refresh is None else key_hash(refresh),
        "client_id": code.client_id,
        "customer_id": code.customer_id,
        "code_id": code_id,
        "consents": json.dumps(list(code.consents)),
        "scope": scope,
        "issued_at": issued_at,
        "expires_at": expires_at,
    }
    inserted = db.execute(insert(t.oauth_token).values(row)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def _token(row: Row[object] | None) -> TokenRow | None:
    if row is None:
        return None
    r = row._mapping
    return TokenRow(
        r["id"],
        r["client_id"],
        r["customer_id"],
        r["code_id"],
        tuple(json.loads(r["consents"])),
        r["scope"],
        stored_utc(r["issued_at"]),
        stored_utc(r["expires_at"]),
        None if r["revoked_at"] is None else stored_utc(r["revoked_at"]),
    )


def token_by_access(db: Connection, access: str) -> TokenRow | None:
    """The token whose access token this is (revoked or expired too), or None."""
    o = t.oauth_token
    return _token(db.execute(select(o).where(o.c.access_hash == key_hash(access))).first())


def token_by_refresh(db: Connection, refresh: str) -> TokenRow | None:
    """The token whose refresh token this is (revoked too), or None."""
    o = t.oauth_token
    return _token(db.execute(select(o).where(o.c.refresh_hash == key_hash(refresh))).first())


def revoke_token(db: Connection, token_id: int, at: datetime) -> bool:
    """Revoke the access and refresh token of one row; False when it already was."""
    o = t.oauth_token
    done = db.execute(
        update(o).where(o.c.id == token_id, o.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return done.rowcount == 1


def revoke_tokens_of_code(db: Connection, code_id: int, at: datetime) -> int:
    """Revoke every token issued from a code (a replayed code, RFC 6749 4.1.2)."""
    o = t.oauth_token
    done = db.execute(
        update(o).where(o.c.code_id == code_id, o.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return int(done.rowcount)
