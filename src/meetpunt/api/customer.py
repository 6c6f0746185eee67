"""The customer's account over the API (issue 17): activation by the letter's code and
opt-out of remote reading (REG-7, PRV-3).

**Activation.** ``meetpunt party add --role customer --ean EAN`` adds the customer,
bound to the connection and named as its holder, and prints a one-time code for the
letter; the account exists from then on (``party list`` shows it) but nobody has its
key. ``POST /v1/me/activate {"code": ...}`` needs no key: it spends the code and
answers the account's API key, once (``register.activation``). Wrong codes are counted
per client address (:class:`~meetpunt.api.limits.Attempts`: 5, then one every 3
minutes, 429 ``API-activate.attempts``).

**Remote reading.** ``PUT /v1/me/remote-reading {"on": false}`` records the customer's
connections as ``administratively_off`` from today's local day on, the register's own
opt-out (REG-7, a new version of the connection); the gate refuses every purpose but grid
management for the days from then on (PRV-3.opt_out), so the next supplier or app read
of those days is refused. ``{"on": true}`` switches it back to ``standard``. Only a
customer who holds the contract today may switch, and each change is audited (PRV-7).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from meetpunt.api.auth import Caller, gate_of, gate_party, require_role
from meetpunt.api.errors import ApiError, error_responses, json_response, refuse
from meetpunt.api.limits import TOO_MANY_DOC, Attempts, retry_after
from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.domain.connection import RemoteReading
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.privacy import audit
from meetpunt.register.parties import ApiRole

router = APIRouter(prefix="/v1")


class Activation(BaseModel):
    """The code from the customer's letter (dashes and spaces ignored, any case)."""

    code: str = Field(min_length=1, max_length=64)


def attempts_of(request: Request) -> Attempts:
    """The server's count of wrong activation codes per client address, shared by its
    worker processes (the file ``create_app`` names)."""
    state = request.app.state
    if not hasattr(state, "activation_attempts"):
        state.activation_attempts = Attempts(path=getattr(state, "activation_path", None))
    found: Attempts = state.activation_attempts
    return found


@router.post(
    "/me/activate",
    responses={
        200: {"description": "the account's API key, shown this once"},
        **error_responses(403, 422),
        429: TOO_MANY_DOC,
    },
)
def activate(request: Request, body: Activation) -> Response:
    """Activate a customer account with the one-time code from its letter, and get its
    API key (shown once; stored only as a hash). No key is needed. A wrong, used or
    expired code or a revoked account is 403 (``API-activate.unknown``, ``.used``,
    ``.expired``, ``.revoked``); after 5 wrong codes from one address, 429
    ``API-activate.attempts`` with ``Retry-After``."""
    attempts = attempts_of(request)
    address = request.client.host if request.client else "-"
    wait = attempts.blocked(address)
    if wait > 0:
        raise refuse(
            429,
            "API-activate.attempts",
            "too many wrong activation codes from this address; try again later",
            {"Retry-After": retry_after(wait)},
        )
    gate = gate_of(request)
    try:
        with gate.register.session() as session:
            party, key = session.activate(body.code, gate.clock())
    except MeetpuntError as refused:
        attempts.failed(address)
        raise ApiError(403, refused.findings) from refused
    return json_response(
        {"id": party.id, "role": party.role.value, "eans": list(party.eans), "api_key": key}
    )


class RemoteReadingChange(BaseModel):
    """Remote reading on (``standard``) or off (``administratively_off``, REG-7), for
    one of the customer's connections or (no ``ean``) all they hold today."""

    on: bool
    ean: str | None = Field(default=None, pattern=r"^\d{18}$")


@router.put("/me/remote-reading", responses=error_responses(401, 403, 404, 409, 422))
def set_remote_reading(request: Request, party: Caller, change: RemoteReadingChange) -> Response:
    """Switch remote reading of the customer's connections off administratively (REG-7)
    or back on, from today's local day: the gate then refuses suppliers and apps those
    days (PRV-3.opt_out). Only connections the customer holds today (PRV-1.own_data: 404
    for one not bound to the account, 403 for one they no longer hold); a meter that is
    not smart cannot be switched off (409 REG-7.remote_reading). Audited (PRV-7)."""
    require_role(party, ApiRole.CUSTOMER)
    gate = gate_of(request)
    if change.ean is not None and change.ean not in party.eans:
        raise refuse(404, "PRV-1.own_data", "this connection is not one of yours")
    now = gate.clock()
    today = to_local(now).date()
    wanted = RemoteReading.STANDARD if change.on else RemoteReading.ADMINISTRATIVELY_OFF
    who = gate_party(party)
    done: list[dict[str, Any]] = []
    try:
        with gate.register.session() as session:
            stretches = session.customer_stretches(party)
            held = [
                ean
                for ean, spans in stretches.items()
                if any(
                    first <= today and (after is None or today < after) for first, after in spans
                )
            ]
            asked = [change.ean] if change.ean is not None else sorted(held)
            if not asked or any(ean not in held for ean in asked):
                raise refuse(
                    403, "PRV-1.own_data", "you do not hold the contract on this connection today"
                )
            for ean in asked:
                current = session.connection_at(ean, today)
                if current is None:
                    raise refuse(404, "PRV-1.unknown_connection", f"no connection {ean} today")
                changed = current.attributes.remote_reading is not wanted
                if changed:
                    attributes = replace(current.attributes, remote_reading=wanted)
                    session.record_connection(ean, current.commodity, attributes, today)
                    audit.append(
                        session.db,
                        audit.AuditEntry(
                            event="consent",
                            party=who.id,
                            purpose="remote_reading",
                            outcome="opted_in" if change.on else "opted_out",
                            connections=(ean,),
                            period_start=local_midnight_utc(today),
                            period_end=local_midnight_utc(today + timedelta(days=1)),
                            rules=("REG-7.remote_reading", "PRV-3.opt_out"),
                            detail={"role": who.role.value, "api_party": party.id},
                        ),
                        now,
                    )
                done.append(
                    {"ean": ean, "remote_reading": wanted.value, "from": today, "changed": changed}
                )
    except MeetpuntError as refused:
        findings = refused.findings or (Finding("REG-7.remote_reading", str(refused)),)
        raise ApiError(409, findings) from refused
    return json_response({"connections": done})
