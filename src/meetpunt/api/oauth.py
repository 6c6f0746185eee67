"""Apps with the customer's consent: OAuth 2.0 authorization code with PKCE (issue 17,
PRV-4), through Authlib's authorization server and resource protector.

An app is an API party of role ``app`` (client id = party id, client secret = its API
key) with its redirect URIs, matched exactly. ``GET /v1/oauth/authorize`` shows the
customer what the app asks (Dutch and English); the customer approves with their own
API key in the form (``POST``), which creates one PRV-4 consent per connection they
hold (``privacy.consent.give``: audited) and redirects with a one-use code, or refuses
(``error=access_denied``). ``POST /v1/oauth/token`` exchanges the code (S256 PKCE
only, bound to the app, the redirect URI and the verifier) for a short-lived access
token and a refresh token; refresh rotates both. The app reads through the gate as
``app_consent`` with its access token; the gate checks the consent on every read, so
revoking it (``DELETE /v1/me/consents/{id}`` or ``meetpunt consent revoke``) stops the
next read (403 PRV-4.consent) and a refresh (``invalid_grant``).

Authlib does the protocol (parameter checks, redirect and error responses, client
authentication, PKCE, token response); this module gives it the register: clients,
codes and tokens (stored as hashes, ``register.oauth``), the gate's clock and the
consent code.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, ClassVar
from urllib.parse import urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request, ResourceProtector
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InsecureTransportError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    TokenMixin,
    TokenValidator,
    grants,
)
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.security import OAuth2AuthorizationCodeBearer
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import Connection

from meetpunt.api.auth import Caller, gate_of, gate_party, party_of_key, require_role
from meetpunt.api.errors import ApiError, error_responses, json_response, refuse
from meetpunt.api.params import EAN, From, To
from meetpunt.api.readings import read_through_gate
from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.privacy import consent
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Period
from meetpunt.register import oauth as store
from meetpunt.register.parties import ApiParty, ApiRole

PURPOSE = "app_consent"
"""The catalogue's app purpose: every app read and consent is under it (PRV-4)."""

CODE_SECONDS = 120
"""An authorization code lives 2 minutes (RFC 6749 4.1.2: short, at most 10)."""
ACCESS_SECONDS = 900
"""An access token lives 15 minutes; the refresh token then gets a new one."""

SCOPE_KINDS = {
    "daily": ("daily_readings", "dagstanden", "daily readings", "per dag", "per day"),
    "monthly": ("monthly_readings", "maandstanden", "monthly readings", "per maand", "per month"),
    "quarter_hours": (
        "quarter_hours",
        "kwartierwaarden",
        "quarter-hour values",
        "per kwartier",
        "per 15 minutes",
    ),
}
"""Scope name -> (hub kind, Dutch, English, resolution in Dutch and English)."""
MAX_HISTORY_MONTHS = 24
"""How far back a consent may reach: the customer's own 24 months (issue 17) [choice]."""
MAX_VALID_MONTHS = 12
"""How long a consent may run ahead [choice]: a year, then the customer is asked again."""
DEFAULT_VALID_MONTHS = 12


@dataclass(frozen=True)
class Scope:
    """What an app asks: data kinds (``daily``, ``monthly``, ``quarter_hours``) and the
    consent's period, ``history:N`` months back (default 0) and ``valid:N`` months
    ahead (default 12), counted from the local day of the consent (PRV-4)."""

    kinds: tuple[str, ...]
    history: int
    valid: int

    def text(self) -> str:
        """The canonical scope string (what the token carries)."""
        return " ".join([*self.kinds, f"history:{self.history}", f"valid:{self.valid}"])

    def tables(self) -> frozenset[str]:
        """The hub kinds the consent names."""
        return frozenset(SCOPE_KINDS[k][0] for k in self.kinds)

    def days(self, today: date) -> tuple[date, date]:
        """The consent's local days: first, and the day after the last."""
        return add_months(today, -self.history), add_months(today, self.valid)


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month + 1, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def parse_scope(text: str | None) -> Scope:
    """The scope of an authorization request; :class:`InvalidScopeError` naming what is
    wrong: no data kind, an unknown word, a period out of bounds or given twice."""
    kinds: list[str] = []
    numbers: dict[str, int] = {}
    bounds = {"history": (0, MAX_HISTORY_MONTHS), "valid": (1, MAX_VALID_MONTHS)}
    for word in (text or "").split():
        name, _, value = word.partition(":")
        if word in SCOPE_KINDS and word not in kinds:
            kinds.append(word)
        elif name in bounds and value.isdigit() and name not in numbers:
            low, high = bounds[name]
            if not low <= int(value) <= high:
                raise InvalidScopeError(f"'{name}' must be {low} to {high} months")
            numbers[name] = int(value)
        else:
            raise InvalidScopeError(f"unknown or repeated scope '{word}'")
    if not kinds:
        raise InvalidScopeError(f"name at least one data kind: {', '.join(SCOPE_KINDS)}")
    ordered = tuple(k for k in SCOPE_KINDS if k in kinds)
    return Scope(ordered, numbers.get("history", 0), numbers.get("valid", DEFAULT_VALID_MONTHS))


# ----------------------------------------------------------------------------------
# Authlib's models over the register


@dataclass(frozen=True)
class AppClient(ClientMixin):  # type: ignore[misc]
    """An app party as an OAuth client: exact redirect URIs, a confidential client that
    authenticates with its API key at the token endpoint."""

    party: ApiParty
    gate: Gate

    def get_client_id(self) -> str:
        return str(self.party.id)

    def get_default_redirect_uri(self) -> str | None:
        return None  # the app always names its redirect URI

    def get_allowed_scope(self, scope: str | None) -> str | None:
        return None if not scope else parse_scope(scope).text()

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match with a registered URI: no prefix, no wildcard (PRV-4)."""
        return redirect_uri in self.party.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        """The secret is this app's API key (looked up by hash, constant-time)."""
        with self.gate.register.session() as session:
            found = session.api_party_by_key(client_secret)
        return found is not None and found.id == self.party.id and not found.revoked

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in {"authorization_code", "refresh_token"}


@dataclass(frozen=True)
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    """A stored authorization code for Authlib."""

    row: store.CodeRow

    @property
    def code_challenge(self) -> str:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


@dataclass(frozen=True)
class Token(TokenMixin):  # type: ignore[misc]
    """A stored access/refresh token for Authlib, judged on the gate's clock."""

    row: store.TokenRow
    now: datetime

    def check_client(self, client: AppClient) -> bool:
        return self.row.client_id == client.party.id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.now >= self.row.expires_at

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE required, S256 only (RFC 7636; ``plain`` and a missing method are refused,
    since plain gives nothing against a stolen code)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send 'code_challenge' (S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """The authorization code grant over the register (codes stored as hashes)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        approval: Approval = request.user
        server: OAuthServer = self.server
        data = request.payload.data
        with server.gate.register.session() as session:
            store.save_code(
                session.db,
                code,
                int(request.client.get_client_id()),
                approval.customer_id,
                approval.consents,
                request.payload.redirect_uri,
                request.scope,
                (data["code_challenge"], data["code_challenge_method"]),
                server.now + timedelta(seconds=CODE_SECONDS),
            )

    def query_authorization_code(self, code: str, client: AppClient) -> Code | None:
        """The code if it is this app's, unexpired and unused; it is marked used here, so
        it is spent even when a later check fails. A replay revokes the tokens the code
        gave (RFC 6749 4.1.2)."""
        server: OAuthServer = self.server
        with server.gate.register.session() as session:
            row = store.code_by_value(session.db, code)
            if row is None or row.client_id != client.party.id:
                return None
            if not store.use_code(session.db, row.id, server.now):
                store.revoke_tokens_of_code(session.db, row.id, server.now)
                return None
        return Code(row) if server.now < row.expires_at else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Nothing: the code was marked used when it was looked up."""

    def authenticate_user(self, authorization_code: Code) -> Approval:
        row = authorization_code.row
        return Approval(row.customer_id, row.consents, row)


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Refresh with rotation: the old access and refresh token are revoked. Refused
    (``invalid_grant``) once a consent of the token is no longer given and in force, or
    the customer's key is revoked. A rotated refresh token used again revokes every
    token of its approval (one of the two holders is a thief, RFC 9700 4.14.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        server: OAuthServer = self.server
        with server.gate.register.session() as session:
            row = store.token_by_refresh(session.db, refresh_token)
            if row is None:
                return None
            if row.revoked_at is not None:
                store.revoke_tokens_of_code(session.db, row.code_id, server.now)
                return None
            customer = session.api_party_by_id(row.customer_id)
            if customer is None or customer.revoked:
                return None
            found = token_consents(session.db, row)
        if len(found) != len(row.consents):
            return None
        if any(c.state != "given" or server.now >= c.valid_to for c in found):
            return None
        return Token(row, server.now)

    def authenticate_user(self, refresh_token: Token) -> Approval:
        row = refresh_token.row
        return Approval(row.customer_id, row.consents, row)

    def revoke_old_credential(self, refresh_token: Token) -> None:
        """Revoke the old token; when a concurrent refresh did so first, refuse: the new
        token was stored but never leaves, and only one refresh wins."""
        server: OAuthServer = self.server
        with server.gate.register.session() as session:
            if not store.revoke_token(session.db, refresh_token.row.id, server.now):
                raise InvalidGrantError("this refresh token was just used")


def token_consents(db: Connection, token: store.TokenRow) -> list[consent.Consent]:
    """The consents behind a token (one indexed query each; a token has one per
    connection the customer held when approving)."""
    return [c for cid in token.consents for c in consent.list_consents(db, consent_id=cid)]


@dataclass(frozen=True)
class Approval:
    """The customer's approval behind a code or token: who, and the consents it made."""

    customer_id: int
    consents: tuple[int, ...]
    source: store.CodeRow | store.TokenRow | None = None


def new_token(prefix: str) -> Any:
    """A token generator for Authlib: ``prefix`` + 256 random bits, URL-safe."""

    def generate(**_: Any) -> str:
        return prefix + secrets.token_urlsafe(32)

    return generate


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """Token revocation (RFC 7009): the app revokes its own access or refresh token;
    both halves of the row go, so the next read is 401 and the next refresh
    ``invalid_grant``. Another app's token is ``invalid_grant``; an unknown one is 200
    with nothing done, as the RFC asks (2.2)."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        server: OAuthServer = self.server
        with server.gate.register.session() as session:
            row = None
            if token_type_hint != "refresh_token":
                row = store.token_by_access(session.db, token_string)
            if row is None and token_type_hint != "access_token":
                row = store.token_by_refresh(session.db, token_string)
        return None if row is None else Token(row, server.now)

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        server: OAuthServer = self.server
        with server.gate.register.session() as session:
            store.revoke_token(session.db, token.row.id, server.now)


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's authorization server on the API's gate: its register and its clock."""

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate
        self.now = gate.clock()
        self.register_grant(CodeGrant, [S256Only(required=True)])
        self.register_grant(RefreshGrant)
        generator = BearerTokenGenerator(new_token("mpa_"), new_token("mpr_"), ACCESS_SECONDS)
        self.register_token_generator("default", generator)
        self.register_endpoint(Revocation)

    def query_client(self, client_id: str) -> AppClient | None:
        """An app party that is not revoked."""
        if not client_id.isdigit():
            return None
        with self.gate.register.session() as session:
            party = session.api_party_by_id(int(client_id))
        if party is None or party.role is not ApiRole.APP or party.revoked:
            return None
        return AppClient(party, self.gate)

    def validate_requested_scope(self, scope: str | None) -> None:
        parse_scope(scope)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        approval: Approval = request.user
        assert approval.source is not None
        with self.gate.register.session() as session:
            store.save_token(
                session.db,
                token["access_token"],
                token.get("refresh_token"),
                approval.source,
                token["scope"],
                self.now,
                self.now + timedelta(seconds=int(token["expires_in"])),
            )

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(
        self, status: int, body: Any, headers: Sequence[tuple[str, str]]
    ) -> Response:
        if isinstance(body, dict):
            return json_response(body, status, dict(headers))
        return Response(body, status, dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals."""


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    """The query and the form of a request, as Authlib reads them."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._datalist: dict[str, list[str]] = {}
        for k, v in pairs:
            self._datalist.setdefault(k, []).append(v)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class StarletteRequest(OAuth2Request):  # type: ignore[misc]
    """A FastAPI request as Authlib's ``OAuth2Request`` (its URL is checked for
    https, or http on the loopback: ``InsecureTransportError``)."""

    def __init__(self, request: Request, form: Sequence[tuple[str, str]]) -> None:
        super().__init__(request.method, str(request.url), headers=request.headers)
        self._args = dict(request.query_params)
        self._form = dict(form)
        self.payload = FormPayload([*request.query_params.multi_items(), *form])

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


async def oauth_request(request: Request) -> StarletteRequest:
    """The request with its form read (POST) for Authlib."""
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    try:
        return StarletteRequest(request, form)
    except InsecureTransportError as error:
        message = "OAuth needs https (or http on the loopback); put TLS in front of the server"
        raise refuse(400, "API-oauth.insecure_transport", message) from error


# ----------------------------------------------------------------------------------
# Routes

router = APIRouter(prefix="/v1", tags=["oauth"])

AUTHORIZE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "the consent page (Dutch and English)", "content": {"text/html": {}}},
    302: {"description": "back to the app's redirect URI with a code, or with an error"},
    400: {"description": "an unknown app or a redirect URI it did not register (no redirect)"},
}
FORM_ONLY = frozenset({"api_key", "decision"})
"""Fields of the customer's answer, never echoed into the page."""
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
"""The consent page may not be framed (clickjacking) or cached."""


@cache
def templates() -> Environment:
    """The consent page's template: packaged, autoescaped, undefined names fail."""
    loader = PackageLoader("meetpunt.api", "templates")
    return Environment(loader=loader, autoescape=True, undefined=StrictUndefined)


def consent_page(server: OAuthServer, grant: Any, request: StarletteRequest) -> HTMLResponse:
    """What the app asks, for the customer to approve or refuse: who, which data, which
    resolution, how far back, until when (PRV-4)."""
    scope = parse_scope(grant.request.scope)
    today = to_local(server.now).date()
    first, after = scope.days(today)
    rule = server.gate.catalogue.purposes[PURPOSE]
    client: AppClient = grant.request.client
    names = ("nl", "en", "resolution_nl", "resolution_en")
    html = (
        templates()
        .get_template("consent.html.j2")
        .render(
            app=client.party.display_name,
            host=urlsplit(grant.redirect_uri).netloc,
            kinds=[dict(zip(names, SCOPE_KINDS[k][1:], strict=True)) for k in scope.kinds],
            first=first.isoformat(),
            last=(after - timedelta(days=1)).isoformat(),
            history=scope.history,
            purpose_nl=rule.title_nl,
            purpose_en=rule.title_en,
            action="/v1/oauth/authorize",
            params=[(k, v) for k, v in request.payload.data.items() if k not in FORM_ONLY],
        )
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


@dataclass(frozen=True)
class Asked:
    """A valid authorization request: the server, the request and Authlib's grant."""

    server: OAuthServer
    request: StarletteRequest
    grant: Any


async def authorization(request: Request) -> Asked | Response:
    """The app's authorization request checked by Authlib (client, exact redirect URI,
    response type, scope, S256 PKCE), or the error response: 400 without a redirect for
    a bad client or redirect URI, else back to the app (RFC 6749 4.1.2.1)."""
    server = OAuthServer(gate_of(request))
    asked = await oauth_request(request)
    try:
        return Asked(server, asked, server.get_consent_grant(asked))
    except OAuth2Error as error:
        return server.handle_error_response(asked, error)  # type: ignore[no-any-return]


@router.get("/oauth/authorize", responses=AUTHORIZE_DOC, response_class=HTMLResponse)
async def authorize_page(request: Request) -> Response:
    """The consent page for an app's authorization request (``response_type=code``,
    ``client_id``, exact ``redirect_uri``, ``scope``, ``state``, ``code_challenge``
    with ``code_challenge_method=S256``)."""
    found = await authorization(request)
    if isinstance(found, Response):
        return found
    return consent_page(found.server, found.grant, found.request)


@router.post("/oauth/authorize", responses=AUTHORIZE_DOC | error_responses(401, 403))
async def authorize_decision(request: Request) -> Response:
    """The customer's answer: the page's fields, ``decision=approve|refuse`` and, to
    approve, their own API key as the form field ``api_key``. Approval creates one
    consent per connection the customer holds today (PRV-4 ``given``, audited) and
    redirects with a code; refusal redirects with ``error=access_denied``."""
    found = await authorization(request)
    if isinstance(found, Response):
        return found
    server, asked, approval = found.server, found.request, None
    if asked.form.get("decision") == "approve":
        customer = party_of_key(server.gate, asked.form.get("api_key"))
        require_role(customer, ApiRole.CUSTOMER)
        approval = give_consents(server, found.grant, customer)
    elif asked.form.get("api_key"):
        # a customer who signed the refusal with their key: kept as a refused consent
        customer = party_of_key(server.gate, asked.form.get("api_key"))
        require_role(customer, ApiRole.CUSTOMER)
        give_consents(server, found.grant, customer, refused=True)
    return server.create_authorization_response(asked, approval, found.grant)  # type: ignore[no-any-return]


def give_consents(
    server: OAuthServer, grant: Any, customer: ApiParty, refused: bool = False
) -> Approval:
    """One PRV-4 consent per connection the customer holds today, for the app, the
    scope's kinds and period; audited by the consent code. 403 PRV-1.own_data when the
    customer holds none today (a consent of a leaving resident would read nothing).
    ``refused``: the customer said no; each is kept in state ``refused`` (PRV-4), which
    their log shows and which opens nothing."""
    scope = parse_scope(grant.request.scope)
    today = to_local(server.now).date()
    first, after = scope.days(today)
    period = Period(local_midnight_utc(first), local_midnight_utc(after))
    app = gate_party(grant.request.client.party).id
    with server.gate.register.session() as session:
        stretches = session.customer_stretches(customer)
        held = [
            ean
            for ean, spans in stretches.items()
            if any(s <= today and (e is None or today < e) for s, e in spans)
        ]
        if not held:
            raise refuse(403, "PRV-1.own_data", "you hold no connection today")
        record = consent.refuse if refused else consent.give
        given = [
            record(
                session.db,
                app,
                PURPOSE,
                ean,
                scope.tables(),
                period,
                customer.holder or "",
                server.now,
            )
            for ean in sorted(held)
        ]
    return Approval(customer.id, tuple(c.id for c in given))


@router.post(
    "/oauth/token",
    responses={
        200: {"description": "access_token, refresh_token, expires_in, scope"},
        400: {"description": "an OAuth error (RFC 6749 5.2): invalid_grant, invalid_request..."},
        401: {"description": "invalid_client"},
    },
)
async def token(request: Request) -> Response:
    """The token endpoint (RFC 6749 4.1.3, 6): ``grant_type=authorization_code`` with
    ``code``, ``redirect_uri`` and ``code_verifier``, or ``grant_type=refresh_token``;
    the app authenticates with its id and API key (HTTP Basic or form fields)."""
    server = OAuthServer(gate_of(request))
    return server.create_token_response(await oauth_request(request))  # type: ignore[no-any-return]


@router.post(
    "/oauth/revoke",
    responses={
        200: {"description": "revoked, or an unknown token (RFC 7009 2.2): nothing to do"},
        400: {"description": "an OAuth error: invalid_request, invalid_grant (another app's)"},
        401: {"description": "invalid_client"},
    },
)
async def revoke(request: Request) -> Response:
    """Token revocation (RFC 7009): ``token`` (access or refresh) and optionally
    ``token_type_hint``; the app authenticates as at the token endpoint. The consent
    stays given: revoking it is the customer's (``DELETE /v1/me/consents/{id}``)."""
    server = OAuthServer(gate_of(request))
    answer = server.create_endpoint_response(Revocation.ENDPOINT_NAME, await oauth_request(request))
    return answer  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------
# The app's read, and the customer's consents


class AccessTokens(BearerTokenValidator):  # type: ignore[misc]
    """Authlib's bearer-token check on the register's tokens and the gate's clock."""

    def __init__(self, server: OAuthServer) -> None:
        super().__init__()
        self.server = server

    def authenticate_token(self, token_string: str) -> Token | None:
        with self.server.gate.register.session() as session:
            row = store.token_by_access(session.db, token_string)
        return None if row is None else Token(row, self.server.now)


@dataclass(frozen=True)
class AppCaller:
    """An app calling with an access token: the app and the token's row."""

    app: ApiParty
    token: store.TokenRow


def app_caller(request: Request, server: OAuthServer) -> AppCaller:
    """The app whose access token the request carries: 401 for none, an unknown, an
    expired or a revoked token, or a revoked app (RFC 6750)."""
    protector = ResourceProtector()
    protector.register_token_validator(AccessTokens(server))
    try:
        found: Token = protector.validate_request(None, request)
    except OAuth2Error as error:
        rule = "API-auth.missing" if error.error == "missing_authorization" else "API-oauth.token"
        message = "send the access token as 'Authorization: Bearer TOKEN'"
        if rule == "API-oauth.token":
            message = "the access token is unknown, expired or revoked: refresh it"
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        raise refuse(401, rule, message, challenge) from error
    with server.gate.register.session() as session:
        app = session.api_party_by_id(found.row.client_id)
    if app is None or app.revoked:
        raise refuse(401, "API-auth.revoked", "this app's key was revoked")
    return AppCaller(app, found.row)


class AppKind(StrEnum):
    """What an app reads: the scope names of the data kinds."""

    daily = "daily"
    monthly = "monthly"
    quarter_hours = "quarter_hours"


APP_FLOW = OAuth2AuthorizationCodeBearer(
    authorizationUrl="/v1/oauth/authorize",
    tokenUrl="/v1/oauth/token",
    refreshUrl="/v1/oauth/token",
    scopes={
        **{k: f"{v[2]} ({v[4]})" for k, v in SCOPE_KINDS.items()},
        "history:N": f"the consent reaches N months back (0-{MAX_HISTORY_MONTHS}, default 0)",
        "valid:N": f"the consent runs N months (1-{MAX_VALID_MONTHS}, default 12)",
    },
    scheme_name="AppConsent",
    description="An app's access token from the authorization code flow with S256 PKCE.",
    auto_error=False,
)
"""The flow in the OpenAPI document; Authlib checks the token (``app_caller``)."""


@router.get(
    "/app/connections/{ean}/readings",
    responses={200: {"description": "the granted readings"}, **error_responses(401, 403, 404, 422)},
    dependencies=[Depends(APP_FLOW)],
)
def app_readings(
    request: Request, ean: EAN, date_from: From, date_to: To, kind: AppKind = AppKind.daily
) -> Response:
    """An app's read of one connection with its access token (``Authorization: Bearer
    ACCESS_TOKEN``), through the gate as ``app_consent`` (PRV-1, PRV-4): the token must
    carry the kind's scope and name the connection (else 403, audited), and the gate
    checks the consent on every read: a revoked or expired one is 403 PRV-4.consent."""
    return read_as_app(request, ean, kind.value, date_from, date_to)


def read_as_app(request: Request, ean: str, kind: str, first: date, after: date) -> Response:
    """The read of :func:`app_readings`: the caller, the scope and the token's
    connections checked (a refusal audited, PRV-7), then the gate."""
    server = OAuthServer(gate_of(request))
    caller = app_caller(request, server)
    who = gate_party(caller.app)
    table = SCOPE_KINDS[kind][0]
    why = f"HTTP API {request.url.path}"
    with server.gate.register.session() as session:
        named = {c.ean for c in token_consents(session.db, caller.token)}
    broken = None
    if TokenValidator.scope_insufficient(caller.token.scope, [kind]):
        broken = ("API-oauth.scope", f"the token's scope does not include '{kind}'")
    elif ean not in named:
        broken = ("PRV-4.consent", "the consent behind this token does not name this connection")
    if broken is not None:
        asked = AccessRequest(
            who,
            PURPOSE,
            (ean,),
            frozenset({table}),
            Period(local_midnight_utc(first), local_midnight_utc(after)),
            server.now,
            justification=why,
        )
        server.gate.record(asked, "decision", "refused", [broken[0]])
        raise refuse(403, *broken)
    reading = read_through_gate(server.gate, who, PURPOSE, [ean], table, first, after, why)
    return json_response(reading.document())


@router.get("/me/consents", responses=error_responses(401, 403))
def my_consents(request: Request, party: Caller) -> Response:
    """The consents the customer gave on their connections (PRV-4), oldest first."""
    require_role(party, ApiRole.CUSTOMER)
    with gate_of(request).register.session() as session:
        mine = [c.as_dict() for c in customer_consents(session.db, party)]
    return json_response({"consents": mine})


def customer_consents(db: Connection, party: ApiParty) -> list[consent.Consent]:
    """The consents on the customer's bound connections that they gave."""
    return [
        c
        for ean in party.eans
        for c in consent.list_consents(db, ean=ean)
        if c.given_by == party.holder
    ]


@router.delete("/me/consents/{consent_id}", responses=error_responses(401, 403, 404, 409))
def revoke_my_consent(request: Request, party: Caller, consent_id: int) -> Response:
    """The customer withdraws a consent (PRV-4 ``given`` -> ``revoked``, audited): the
    app's next read is refused (403 PRV-4.consent) and so is its next refresh. Another's
    consent is 404; one that is no longer given is 409 PRV-4.transition."""
    require_role(party, ApiRole.CUSTOMER)
    gate = gate_of(request)
    with gate.register.session() as session:
        if consent_id not in {c.id for c in customer_consents(session.db, party)}:
            raise refuse(404, "PRV-4.unknown", f"you gave no consent {consent_id}")
        try:
            revoked = consent.revoke(session.db, consent_id, gate.clock())
        except consent.ConsentError as refused:
            raise ApiError(409, refused.findings) from refused
    return json_response(revoked.as_dict())
