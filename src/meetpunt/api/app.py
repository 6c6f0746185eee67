"""The routes of the HTTP API, version 1 (issue 17).

``create_app`` opens one gate over the register and the store when the server starts
(``app.gate.open_gate``) and closes it when the server stops. The store stays attached
between reads until it is idle for ``SERVE_KEEP_S`` or a writer waits for it (MTR-1),
so ingestion runs beside the server. Every read of meter data names the
caller's purpose and goes through the gate (PRV-1); the gate audits grants, reads and
refusals alike (PRV-7).

Who may call what: a supplier reads its connections' daily or monthly readings during
its contract (``supplier_daily``, ``supplier_monthly``); a customer reads the
connections bound to their account (``customer_own``) and who read them; the operator
asks for the server's health and runs UC9. Any party may call ``/v1/connections/{ean}/readings``:
the gate refuses, audited, a party whose role the supplier purposes do not name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from enum import StrEnum
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from meetpunt.api import customer, operator
from meetpunt.api.auth import Caller, app_party_id, gate_of, gate_party, require_role
from meetpunt.api.errors import (
    ApiError,
    api_error_handler,
    error_responses,
    json_response,
    refuse,
    validation_error_handler,
)
from meetpunt.api.feed import router as feed_router
from meetpunt.api.limits import RateLimit, limit_rate, shared_path
from meetpunt.api.oauth import router as oauth_router
from meetpunt.api.params import EAN, From, To
from meetpunt.api.readings import read_through_gate
from meetpunt.app.gate import SERVE_KEEP_S, audit_head, open_gate
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.privacy import audit, explain
from meetpunt.privacy.model import AccessRequest, Period
from meetpunt.register.parties import ApiRole


class SupplierKind(StrEnum):
    """What a supplier reads (the catalogue's supplier purposes)."""

    daily = "daily"
    monthly = "monthly"


class CustomerKind(StrEnum):
    """What a customer reads of their own connection (``customer_own``)."""

    daily = "daily"
    monthly = "monthly"
    quarter_hours = "quarter_hours"


KIND_TABLES = {
    "daily": "daily_readings",
    "monthly": "monthly_readings",
    "quarter_hours": "quarter_hours",
}
SUPPLIER_PURPOSES = {"daily": "supplier_daily", "monthly": "supplier_monthly"}

router = APIRouter(prefix="/v1")

READINGS_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the granted readings with the grant's sub-periods and cuts",
        "content": {"application/json": {}, "text/csv": {}},
    }
}


@router.get(
    "/connections/{ean}/readings",
    responses={**READINGS_DOC, **error_responses(401, 403, 404, 422)},
)
def connection_readings(
    request: Request,
    party: Caller,
    ean: EAN,
    date_from: From,
    date_to: To,
    kind: SupplierKind = SupplierKind.daily,
) -> Response:
    """A supplier's daily or monthly readings of one connection it supplies, for the
    days of its contract in the period (PRV-1.supplier_scope; the final reading on the
    day the contract ends included). Opt-out (PRV-3) and any other broken rule are a
    403 listing every rule; an unknown connection is 404. Audited (PRV-7)."""
    reading = read_through_gate(
        gate_of(request),
        gate_party(party),
        SUPPLIER_PURPOSES[kind.value],
        [ean],
        KIND_TABLES[kind.value],
        date_from,
        date_to,
        f"HTTP API {request.url.path}",
    )
    return json_response(reading.document())


@router.get("/me/readings", responses={**READINGS_DOC, **error_responses(401, 403, 404, 422)})
def my_readings(
    request: Request,
    party: Caller,
    date_from: From,
    date_to: To,
    kind: CustomerKind = CustomerKind.daily,
    ean: Annotated[
        str | None, Query(description="One of your connections (default: all of them).")
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None,
        Query(description="csv for a download; also 'Accept: text/csv'."),
    ] = None,
) -> Response:
    """The customer's own readings (``customer_own``): only the connections bound to
    their account and only the days they held the contract (PRV-1.own_data); after an
    administrative opt-out none (PRV-3). Another connection is 404, whether it exists
    or not, and the attempt is audited (PRV-7). JSON, or CSV with ``format=csv`` or
    ``Accept: text/csv``."""
    require_role(party, ApiRole.CUSTOMER)
    gate, who = gate_of(request), gate_party(party)
    eans = list(party.eans)
    why = f"HTTP API {request.url.path}"
    if ean is not None:
        if ean not in party.eans:
            period = Period(local_midnight_utc(date_from), local_midnight_utc(date_to))
            asked = AccessRequest(
                who,
                "customer_own",
                (ean,),
                frozenset({KIND_TABLES[kind.value]}),
                period,
                gate.clock(),
                justification=why,
            )
            gate.record(asked, "decision", "refused", ["PRV-1.own_data"])
            raise refuse(404, "PRV-1.own_data", "this connection is not one of yours")
        eans = [ean]
    reading = read_through_gate(
        gate, who, "customer_own", eans, KIND_TABLES[kind.value], date_from, date_to, why
    )
    if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
        name = f"meetpunt-{kind.value}-{date_from}-{date_to}.csv"
        return Response(
            reading.csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return json_response(reading.document())


@router.get("/me/audit", responses=error_responses(401, 403, 422))
def my_audit(
    request: Request,
    party: Caller,
    lang: Literal["nl", "en"] = "nl",
) -> Response:
    """ "Who read my meter" (PRV-7): every decision and read naming the customer's
    connections during the days they held them, one sentence each in Dutch or English
    (the sentences of ``meetpunt audit list``), newest last."""
    require_role(party, ApiRole.CUSTOMER)
    gate = gate_of(request)
    titles = {
        p.id: p.title_nl if lang == "nl" else p.title_en for p in gate.catalogue.purposes.values()
    }
    out: list[dict[str, Any]] = []
    with gate.register.session() as session:
        stretches = session.customer_stretches(party)
        found = {ean: audit.records(session.db, ean=ean) for ean in stretches}
        apps = {app_party_id(pid): name for pid, name in session.app_names().items()}
    for ean, records in found.items():
        for stored in records:
            if not _during(stored.entry.period_start, stored.entry.period_end, stretches[ean]):
                continue
            record = _named(stored, apps)
            out.append(
                {
                    "seq": record.seq,
                    "at": record.at,
                    "ean": ean,
                    "party": record.entry.party,
                    "purpose": record.entry.purpose,
                    "event": record.entry.event,
                    "outcome": record.entry.outcome,
                    "rules": list(record.entry.rules),
                    "text": explain.describe(record, lang, titles, ean),
                }
            )
    out.sort(key=lambda r: (r["seq"], r["ean"]))
    return json_response({"records": out})


def _named(record: audit.AuditRecord, apps: dict[str, str]) -> audit.AuditRecord:
    """``record`` with the app's display name for the sentence when the record itself
    does not carry one (a consent step, a record from before the app was named); the
    stored record is not changed (PRV-7)."""
    entry = record.entry
    name = apps.get(entry.party)
    if name is None or entry.detail.get("party_name"):
        return record
    named = replace(entry, detail={**entry.detail, "party_name": name})
    return replace(record, entry=named)


def _during(
    start: datetime | None, end: datetime | None, stretches: list[tuple[date, date | None]]
) -> bool:
    """Whether ``[start, end)`` overlaps a day the customer held the connection."""
    if start is None or end is None:
        return False
    for first, after in stretches:
        if end > local_midnight_utc(first) and (after is None or start < local_midnight_utc(after)):
            return True
    return False


@router.get("/health", responses=error_responses(401, 403))
def health(request: Request, party: Caller) -> Response:
    """The operator's check that the server, the register and the audit log answer:
    the audit log's head (PRV-7) and the server's clock."""
    require_role(party, ApiRole.OPERATOR)
    gate = gate_of(request)
    seq, digest = audit_head(gate.register)
    return json_response(
        {
            "status": "ok",
            "version": version("meetpunt"),
            "now": datetime.now(UTC),
            "audit_head": {"seq": seq, "hash": digest},
        }
    )


class Uc09Run(BaseModel):
    """A UC9 run: the local days ``from`` up to ``to`` (exclusive), optionally one
    municipality or postcode-4 area, and the reason (the gate audits it)."""

    model_config = ConfigDict(populate_by_name=True)

    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")
    area: str | None = None
    trigger: str = "interruption registration for Nestor"


@router.post("/usecases/uc09", responses=error_responses(401, 403, 422))
def run_uc09(request: Request, party: Caller, run: Uc09Run) -> Response:
    """UC9 Interruption registration for the operator, as ``meetpunt usecase uc09``:
    outages and reliability figures (SAIFI, CAIDI, SAIDI) from the meters' power failure
    logs, one gate request for the population (UC9.*, PRV-1), audited."""
    require_role(party, ApiRole.OPERATOR)
    from meetpunt.usecases.uc09_interruption_registration import register_interruptions

    gate = gate_of(request)
    period = Period(local_midnight_utc(run.date_from), local_midnight_utc(run.date_to))
    try:
        result = register_interruptions(
            gate, gate_party(party), period, gate.clock(), run.trigger, run.area
        )
    except MeetpuntError as refused:
        findings = refused.findings or (Finding("UC9", str(refused)),)
        raise ApiError(403, findings) from refused
    return json_response(result.as_dict())


def create_app(
    db: str | None = None,
    store: Path | None = None,
    clock: Callable[[], datetime] | None = None,
    rate_limit: RateLimit | Literal["env"] | None = "env",
) -> FastAPI:
    """The API over the register at ``db`` (default: the embedded one) and the store at
    ``store`` (default: the home's), opened when the server starts. ``clock`` replaces
    the wall clock of the gate (tests); ``rate_limit`` is the limit per credential
    (default: ``MEETPUNT_RATE_LIMIT`` or 50/s with bursts of 100; None: no limit), counted
    in a file beside the register that every worker process shares (``limits``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with open_gate(db, store, clock=clock, keep_s=SERVE_KEEP_S) as gate:
            app.state.gate = gate
            yield

    app = FastAPI(
        title="meetpunt",
        version=version("meetpunt"),
        summary="Smart-meter data for suppliers, customers and the grid operator, "
        "every read through the privacy gate (PRV-1..7).",
        lifespan=lifespan,
    )
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.include_router(router)
    app.include_router(oauth_router)
    app.include_router(customer.router)
    app.include_router(operator.router)
    app.include_router(feed_router)
    limit_rate(
        app,
        RateLimit.from_env() if rate_limit == "env" else rate_limit,
        shared_path(db, "ratelimit"),
    )
    app.state.activation_path = shared_path(db, "activations")
    return app
