"""The operator's use-case runs over the API (issue 17): ``POST /v1/usecases/uc04/runs``
and ``POST /v1/usecases/uc09/runs`` run UC4 and UC9 through the application layer as
``meetpunt usecase uc04|uc09 --json`` does (one gate request for the population,
audited), keep the result in the register (``usecase_run``, migration 0007) and answer
201 with it and its ``Location``; ``GET /v1/usecases/{uc}/runs/{id}`` fetches it again,
from any server process on the same register. A run is synchronous: the POST answers
when the use case is done. A gate refusal is 403 with its rules and stores nothing (the
gate audited it). ``POST /v1/usecases/uc09`` (app.py) stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from meetpunt.api.auth import Caller, gate_of, gate_party, require_role
from meetpunt.api.errors import ApiError, error_responses, json_response, refuse
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import dumps_bytes
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Period
from meetpunt.register.parties import ApiParty, ApiRole

router = APIRouter(prefix="/v1")


class UseCase(StrEnum):
    """The use cases the operator runs over the API."""

    uc04 = "uc04"
    uc09 = "uc09"


class Uc04Request(BaseModel):
    """A UC4 run: the local days ``from`` up to ``to`` (exclusive) and the outage
    incident it answers (the gate audits it). Planned works are not sent over the API:
    the run treats every outage as unplanned or for review, as the CLI without
    ``--planned``."""

    model_config = ConfigDict(populate_by_name=True)

    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")
    trigger: str = Field(default="outage incident: compensation", max_length=200)


class Uc09Request(Uc04Request):
    """A UC9 run: as UC4, and optionally one municipality or postcode-4 area."""

    area: str | None = Field(default=None, max_length=100)
    trigger: str = Field(default="interruption registration for Nestor", max_length=200)


def _period(run: Uc04Request) -> Period:
    if run.date_to <= run.date_from:
        raise refuse(403, "PRV-1.period", "the period must end after it starts")
    return Period(local_midnight_utc(run.date_from), local_midnight_utc(run.date_to))


def _uc04(gate: Gate, who: Party, run: Uc04Request) -> dict[str, Any]:
    from meetpunt.usecases.uc04_outage_compensation import compensate

    result = compensate(gate, who, _period(run), gate.clock(), run.trigger, [])
    return result.as_dict()


def _uc09(gate: Gate, who: Party, run: Uc04Request) -> dict[str, Any]:
    from meetpunt.usecases.uc09_interruption_registration import register_interruptions

    area = run.area if isinstance(run, Uc09Request) else None
    result = register_interruptions(gate, who, _period(run), gate.clock(), run.trigger, area)
    return result.as_dict()


RUNNERS: dict[UseCase, Callable[[Gate, Party, Uc04Request], dict[str, Any]]] = {
    UseCase.uc04: _uc04,
    UseCase.uc09: _uc09,
}


def _run(request: Request, party: ApiParty, usecase: UseCase, run: Uc04Request) -> Response:
    """Run ``usecase`` as ``party``, store the run, answer 201 with it (UC4, UC9, PRV-1)."""
    require_role(party, ApiRole.OPERATOR)
    gate = gate_of(request)
    try:
        result = RUNNERS[usecase](gate, gate_party(party), run)
    except MeetpuntError as refused:
        findings = refused.findings or (Finding(usecase.value.upper(), str(refused)),)
        raise ApiError(403, findings) from refused
    asked = run.model_dump(mode="json", by_alias=True)
    with gate.register.session() as session:
        stored = session.store_run(
            usecase.value,
            party.id,
            dumps_bytes(asked).decode("utf-8"),
            dumps_bytes(result).decode("utf-8"),
            gate.clock(),
        )
    location = f"/v1/usecases/{usecase.value}/runs/{stored.id}"
    body = {
        "id": stored.id,
        "usecase": usecase.value,
        "created_at": stored.created_at,
        "request": asked,
        "result": result,
    }
    return json_response(body, 201, {"Location": location})


RUN_DOC: dict[int | str, dict[str, Any]] = {
    201: {"description": "the finished run: its id, what was asked and the result"},
    **error_responses(401, 403, 422),
}


@router.post("/usecases/uc04/runs", status_code=201, responses=RUN_DOC)
def run_uc04(request: Request, party: Caller, run: Uc04Request) -> Response:
    """Run UC4 Outage compensation (MKT-8) as ``meetpunt usecase uc04 --json``: who is
    owed what for the outages in the period, and what goes to review; kept as a run."""
    return _run(request, party, UseCase.uc04, run)


@router.post("/usecases/uc09/runs", status_code=201, responses=RUN_DOC)
def run_uc09(request: Request, party: Caller, run: Uc09Request) -> Response:
    """Run UC9 Interruption registration as ``meetpunt usecase uc09 --json``: outages
    and SAIFI, CAIDI, SAIDI for the period (and area); kept as a run."""
    return _run(request, party, UseCase.uc09, run)


@router.get("/usecases/{usecase}/runs/{run_id}", responses=error_responses(401, 403, 404, 422))
def get_run(
    request: Request,
    party: Caller,
    usecase: UseCase,
    run_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    """A stored run of UC4 or UC9 by its id (any operator's: the operator's staff share
    them); another use case's id or an unknown one is 404 ``API-run.unknown``."""
    require_role(party, ApiRole.OPERATOR)
    with gate_of(request).register.session() as session:
        stored = session.run_by_id(usecase.value, run_id)
    if stored is None:
        raise refuse(404, "API-run.unknown", f"no {usecase.value} run {run_id}")
    return json_response(
        {
            "id": stored.id,
            "usecase": stored.usecase,
            "created_at": stored.created_at,
            "request": json.loads(stored.request),
            "result": json.loads(stored.result),
        }
    )
