"""Who calls (issue 17): an API key as ``Authorization: Bearer KEY``.

The key is looked up by its hash (``register.parties``); a missing, unknown or revoked
key is 401 with ``WWW-Authenticate: Bearer``. The party's identity at the gate is what
the gate's rules compare: a supplier's market code (PRV-1.supplier_scope), a customer's
contract-holder name (PRV-1.own_data).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from meetpunt.api.errors import refuse
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Role
from meetpunt.register.parties import ApiParty, ApiRole

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
    with gate.register.session() as session:
        party = session.api_party_by_key(key)
    if party is None:
        raise refuse(401, "API-auth.invalid", "this API key is not known", CHALLENGE)
    if party.revoked:
        raise refuse(401, "API-auth.revoked", "this API key was revoked", CHALLENGE)
    return party


Caller = Annotated[ApiParty, Depends(caller)]


def require_role(party: ApiParty, role: ApiRole) -> None:
    """403 unless ``party`` has ``role`` (a route of one role only)."""
    if party.role is not role:
        raise refuse(403, f"API-role.{role.value}", f"only a {role.value} may call this")


def gate_party(party: ApiParty) -> Party:
    """The party as the gate knows it: a supplier by its market code, a customer by the
    contract holder's name, an app or operator by its API party id."""
    if party.role is ApiRole.SUPPLIER:
        return Party(party.code or "", Role.SUPPLIER)
    if party.role is ApiRole.CUSTOMER:
        return Party(party.holder or "", Role.CUSTOMER)
    if party.role is ApiRole.APP:
        return Party(f"api-app-{party.id}", Role.APP)
    return Party(f"api-operator-{party.id}", Role.GRID_OPERATOR)
