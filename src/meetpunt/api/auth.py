"""Who calls (issue 17): an API key as ``Authorization: Bearer KEY``.

The key is looked up by its hash (``register.parties``); a missing, unknown or revoked
key is 401 with ``WWW-Authenticate: Bearer``. A key found is remembered for a few
seconds (``KEY_CACHE_S``), but whether it was revoked is read on every request. The
party's identity at the gate is what the gate's rules compare: a supplier's market code
(PRV-1.supplier_scope), a customer's contract-holder name (PRV-1.own_data).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Annotated
from weakref import WeakKeyDictionary

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, bindparam, select

from meetpunt.api.errors import refuse
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Role
from meetpunt.register import schema as t
from meetpunt.register.parties import ApiParty, ApiRole, key_hash

bearer = HTTPBearer(
    auto_error=False,
    description="The party's API key from 'meetpunt party add' (shown once).",
)

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def gate_of(request: Request) -> Gate:
    """The app's gate (opened at start-up, closed at shut-down)."""
    gate: Gate = request.app.state.gate
    return gate


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiParty:
    """The party whose key the request carries; 401 for none, an unknown or a revoked
    key (issue 17)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise refuse(
            401, "API-auth.missing", "send the API key as 'Authorization: Bearer KEY'", CHALLENGE
        )
    return party_of_key(gate_of(request), credentials.credentials)


def party_of_key(gate: Gate, key: str | None) -> ApiParty:
    """The party whose API key this is; 401 for none, an unknown or a revoked key. Also
    the customer's key in the OAuth consent form (PRV-4)."""
    if not key:
        raise refuse(401, "API-auth.missing", "give the API key", CHALLENGE)
    party = known_party(gate.register.engine, key)
    if party is None:
        with gate.register.session() as session:
            party = session.api_party_by_key(key)
        if party is not None and not party.revoked:
            remember(gate.register.engine, key, party)
    if party is None:
        raise refuse(401, "API-auth.invalid", "this API key is not known", CHALLENGE)
    if party.revoked:
        raise refuse(401, "API-auth.revoked", "this API key was revoked", CHALLENGE)
    return party


KEY_CACHE_S = 5.0
"""How long a key's party (role, code, bound connections) is taken from memory instead
of three register queries; its revocation is still read every time (one indexed query),
so a revoked key is refused at its next request (issue 17)."""
KEY_CACHE_MAX = 10_000
"""Keys kept at most per register; the cache is emptied when full (only keys that were
found go in, so unknown keys cannot fill it)."""

_KEYS: WeakKeyDictionary[Engine, dict[str, tuple[float, ApiParty]]] = WeakKeyDictionary()
_KEYS_LOCK = threading.Lock()
_REVOKED_AT = select(t.api_party.c.revoked_at).where(t.api_party.c.id == bindparam("id"))


def known_party(engine: Engine, key: str) -> ApiParty | None:
    """The party of ``key`` remembered in the last ``KEY_CACHE_S`` seconds, with its
    revocation read now (revoked from the CLI or another server included); None when
    not remembered."""
    digest = key_hash(key)
    with _KEYS_LOCK:
        found = _KEYS.get(engine, {}).get(digest)
    if found is None or time.monotonic() - found[0] > KEY_CACHE_S:
        return None
    party = found[1]
    with engine.connect() as conn:
        row = conn.execute(_REVOKED_AT, {"id": party.id}).first()
    if row is None:
        return None
    if row.revoked_at is not None:
        forget(engine, key)
        return replace(party, revoked_at=row.revoked_at)
    return party


def remember(engine: Engine, key: str, party: ApiParty) -> None:
    """Keep ``party`` as the party of ``key`` for ``KEY_CACHE_S`` seconds."""
    with _KEYS_LOCK:
        keys = _KEYS.setdefault(engine, {})
        if len(keys) >= KEY_CACHE_MAX:
            keys.clear()
        keys[key_hash(key)] = (time.monotonic(), party)


def forget(engine: Engine, key: str) -> None:
    """Drop ``key`` from the cache (it was revoked)."""
    with _KEYS_LOCK:
        _KEYS.get(engine, {}).pop(key_hash(key), None)


Caller = Annotated[ApiParty, Depends(caller)]


def require_role(party: ApiParty, role: ApiRole) -> None:
    """403 unless ``party`` has ``role`` (a route of one role only)."""
    if party.role is not role:
        raise refuse(403, f"API-role.{role.value}", f"only a {role.value} may call this")


def app_party_id(party_id: int) -> str:
    """An app's id at the gate and in the audit log (``api-app-N``)."""
    return f"api-app-{party_id}"


def gate_party(party: ApiParty) -> Party:
    """The party as the gate knows it: a supplier by its market code, a customer by the
    contract holder's name, an app or operator by its API party id (an app with its
    display name, which the audit records keep for "who read my meter")."""
    if party.role is ApiRole.SUPPLIER:
        return Party(party.code or "", Role.SUPPLIER)
    if party.role is ApiRole.CUSTOMER:
        return Party(party.holder or "", Role.CUSTOMER)
    if party.role is ApiRole.APP:
        return Party(app_party_id(party.id), Role.APP, party.name or "")
    return Party(f"api-operator-{party.id}", Role.GRID_OPERATOR)
