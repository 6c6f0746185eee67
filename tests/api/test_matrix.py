"""The authorisation matrix (issue 17), generated from the route table: every /v1
operation in the app's OpenAPI document x every role (none, supplier, customer,
operator, app) x own/other connection, asserting the status and the rule ID (or the
OAuth error code on the OAuth endpoints). A route without a row here fails the test,
so a new endpoint cannot ship without saying who may call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from meetpunt.privacy import consent
from meetpunt.privacy.model import Period
from meetpunt.register import open_register
from meetpunt.register.parties import ApiRole
from tests.api import test_oauth
from tests.api.conftest import NOW
from tests.api.test_oauth import Flow, ask, code_for, consents, pkce, tokens
from tests.scenarios.test_scenarios import EANS

flow = test_oauth.flow
"""The OAuth tests' world (https, redirects not followed, a clock), as a fixture here."""

ROLES = ("none", "supplier", "customer", "operator", "app")
KEYS = {"supplier": "S1", "customer": "de_vries", "operator": "operator", "app": "app"}
"""The world's party of each role: S1 supplies ``normal``, J. de Vries holds it."""
OWN, OTHER = EANS["normal"], EANS["neighbour"]
"""Own: the connection the supplier supplies, the customer holds and the app has consent
for; other: the neighbour's (supplier S2, A. Jansen)."""
JULY = {"from": "2025-07-01", "to": "2025-08-01"}

WITH_CONNECTION = frozenset(
    {
        ("get", "/v1/connections/{ean}/readings"),
        ("get", "/v1/app/connections/{ean}/readings"),
        ("get", "/v1/me/readings"),
        ("put", "/v1/me/remote-reading"),
        ("delete", "/v1/me/consents/{consent_id}"),
    }
)
"""The routes that name a connection (or a consent on one): asked for own and other."""

Expect = tuple[int, str | None]
"""The status and the rule ID (None for a success)."""


@dataclass
class Ctx:
    """The world of one matrix run: the flow's client, keys, ids and prepared objects."""

    flow: Flow
    ids: dict[str, int] = field(default_factory=dict)
    access: str = ""
    run_id: int = 0
    own_consent: int = 0
    other_consent: int = 0

    def headers(self, role: str) -> dict[str, str]:
        if role == "none":
            return {}
        return {"Authorization": f"Bearer {self.flow.keys[KEYS[role]]}"}

    def key(self, role: str) -> str | None:
        return None if role == "none" else self.flow.keys[KEYS[role]]


Call = Callable[[Ctx, str, str], Any]
"""A request of the route as ``role`` for the ``own`` or ``other`` connection."""


def _ean(which: str) -> str:
    return OWN if which == "own" else OTHER


def _new_code(ctx: Ctx) -> str:
    register = open_register(ctx.flow.db_url)
    try:
        with register.session() as s:
            party, _ = s.add_api_party(ApiRole.CUSTOMER, NOW, eans=[OTHER])
            return s.issue_activation(party, NOW)[0]
    finally:
        register.dispose()


def _token(ctx: Ctx, role: str, which: str) -> Any:
    data = {"grant_type": "authorization_code", "code": "mpc_wrong", "redirect_uri": "x"}
    if role == "none":
        return ctx.flow.client.post("/v1/oauth/token", data=data)
    return ctx.flow.client.post(
        "/v1/oauth/token", data=data, auth=(str(ctx.ids[role]), ctx.flow.keys[KEYS[role]])
    )


def _approve(ctx: Ctx, role: str, which: str) -> Any:
    form = {**ask(ctx.flow, pkce()[1]), "decision": "approve"}
    key = ctx.key(role)
    if key is not None:
        form["api_key"] = key
    return ctx.flow.client.post("/v1/oauth/authorize", data=form)


def _app_read(ctx: Ctx, role: str, which: str) -> Any:
    headers = {"Authorization": f"Bearer {ctx.access}"} if role == "app" else ctx.headers(role)
    return ctx.flow.client.get(
        f"/v1/app/connections/{_ean(which)}/readings",
        params={"kind": "daily", **JULY},
        headers=headers,
    )


CALLS: dict[tuple[str, str], Call] = {
    ("get", "/v1/connections/{ean}/readings"): lambda c, r, w: c.flow.client.get(
        f"/v1/connections/{_ean(w)}/readings", params=JULY, headers=c.headers(r)
    ),
    ("get", "/v1/me/readings"): lambda c, r, w: c.flow.client.get(
        "/v1/me/readings", params={**JULY, "ean": _ean(w)}, headers=c.headers(r)
    ),
    ("get", "/v1/me/audit"): lambda c, r, w: c.flow.client.get(
        "/v1/me/audit", headers=c.headers(r)
    ),
    ("get", "/v1/health"): lambda c, r, w: c.flow.client.get("/v1/health", headers=c.headers(r)),
    ("post", "/v1/usecases/uc09"): lambda c, r, w: c.flow.client.post(
        "/v1/usecases/uc09", json=JULY, headers=c.headers(r)
    ),
    ("post", "/v1/usecases/uc04/runs"): lambda c, r, w: c.flow.client.post(
        "/v1/usecases/uc04/runs", json=JULY, headers=c.headers(r)
    ),
    ("post", "/v1/usecases/uc09/runs"): lambda c, r, w: c.flow.client.post(
        "/v1/usecases/uc09/runs", json=JULY, headers=c.headers(r)
    ),
    ("get", "/v1/usecases/{usecase}/runs/{run_id}"): lambda c, r, w: c.flow.client.get(
        f"/v1/usecases/uc09/runs/{c.run_id}", headers=c.headers(r)
    ),
    ("post", "/v1/me/activate"): lambda c, r, w: c.flow.client.post(
        "/v1/me/activate", json={"code": _new_code(c)}, headers=c.headers(r)
    ),
    ("put", "/v1/me/remote-reading"): lambda c, r, w: c.flow.client.put(
        "/v1/me/remote-reading", json={"on": False, "ean": _ean(w)}, headers=c.headers(r)
    ),
    ("get", "/v1/me/consents"): lambda c, r, w: c.flow.client.get(
        "/v1/me/consents", headers=c.headers(r)
    ),
    ("delete", "/v1/me/consents/{consent_id}"): lambda c, r, w: c.flow.client.delete(
        f"/v1/me/consents/{c.own_consent if w == 'own' else c.other_consent}",
        headers=c.headers(r),
    ),
    ("get", "/v1/oauth/authorize"): lambda c, r, w: c.flow.client.get(
        "/v1/oauth/authorize", params=ask(c.flow, pkce()[1]), headers=c.headers(r)
    ),
    ("post", "/v1/oauth/authorize"): _approve,
    ("post", "/v1/oauth/token"): _token,
    ("post", "/v1/oauth/revoke"): lambda c, r, w: c.flow.client.post(
        "/v1/oauth/revoke",
        data={"token": "mpa_never_issued"},
        auth=None if r == "none" else (str(c.ids[r]), c.flow.keys[KEYS[r]]),
    ),
    ("get", "/v1/app/connections/{ean}/readings"): _app_read,
    ("get", "/v1/feed"): lambda c, r, w: c.flow.client.get(
        "/v1/feed", params={"cursor": "0"}, headers=c.headers(r)
    ),
    ("get", "/v1/app/feed"): lambda c, r, w: c.flow.client.get(
        "/v1/app/feed",
        params={"cursor": "0"},
        headers={"Authorization": f"Bearer {c.access}"} if r == "app" else c.headers(r),
    ),
}

NO_KEY: Expect = (401, "API-auth.missing")
CUSTOMERS_ONLY: Expect = (403, "API-role.customer")
OPERATORS_ONLY: Expect = (403, "API-role.operator")


def customer_route(own: Expect, other: Expect | None = None) -> dict[str, Any]:
    """A route of the customer's: the others are refused by role."""
    mine: Any = own if other is None else {"own": own, "other": other}
    return {
        "none": NO_KEY,
        "supplier": CUSTOMERS_ONLY,
        "customer": mine,
        "operator": CUSTOMERS_ONLY,
        "app": CUSTOMERS_ONLY,
    }


def operator_route(ok: int) -> dict[str, Any]:
    """A route of the operator's: the others are refused by role."""
    return {
        "none": NO_KEY,
        "supplier": OPERATORS_ONLY,
        "customer": OPERATORS_ONLY,
        "operator": (ok, None),
        "app": OPERATORS_ONLY,
    }


MATRIX: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/v1/connections/{ean}/readings"): {
        "none": NO_KEY,
        "supplier": {"own": (200, None), "other": (403, "PRV-1.supplier_scope")},
        "customer": (403, "supplier_daily.party"),
        "operator": (403, "supplier_daily.party"),
        "app": (403, "supplier_daily.party"),
    },
    ("get", "/v1/me/readings"): customer_route((200, None), (404, "PRV-1.own_data")),
    ("get", "/v1/me/audit"): customer_route((200, None)),
    ("get", "/v1/me/consents"): customer_route((200, None)),
    ("delete", "/v1/me/consents/{consent_id}"): customer_route((200, None), (404, "PRV-4.unknown")),
    ("put", "/v1/me/remote-reading"): customer_route((200, None), (404, "PRV-1.own_data")),
    ("get", "/v1/health"): operator_route(200),
    ("post", "/v1/usecases/uc09"): operator_route(200),
    ("post", "/v1/usecases/uc04/runs"): operator_route(201),
    ("post", "/v1/usecases/uc09/runs"): operator_route(201),
    ("get", "/v1/usecases/{usecase}/runs/{run_id}"): operator_route(200),
    # activation needs no key: whoever holds the letter's code activates the account
    ("post", "/v1/me/activate"): dict.fromkeys(ROLES, (200, None)),
    # the consent page is public; the decision carries the customer's key as a field
    ("get", "/v1/oauth/authorize"): dict.fromkeys(ROLES, (200, None)),
    ("post", "/v1/oauth/authorize"): {
        "none": NO_KEY,
        "supplier": CUSTOMERS_ONLY,
        "customer": (302, None),
        "operator": CUSTOMERS_ONLY,
        "app": CUSTOMERS_ONLY,
    },
    # only an app is a client; its wrong code is invalid_grant (RFC 6749 5.2)
    ("post", "/v1/oauth/token"): {
        "none": (401, "invalid_client"),
        "supplier": (401, "invalid_client"),
        "customer": (401, "invalid_client"),
        "operator": (401, "invalid_client"),
        "app": (400, "invalid_grant"),
    },
    # revocation is the client's too; an unknown token is 200 (RFC 7009 2.2)
    ("post", "/v1/oauth/revoke"): {
        "none": (401, "invalid_client"),
        "supplier": (401, "invalid_client"),
        "customer": (401, "invalid_client"),
        "operator": (401, "invalid_client"),
        "app": (200, None),
    },
    # the app reads with its access token; an API key on this path is no token (PRV-4)
    ("get", "/v1/app/connections/{ean}/readings"): {
        "none": NO_KEY,
        "supplier": (401, "API-oauth.token"),
        "customer": (401, "API-oauth.token"),
        "operator": (401, "API-oauth.token"),
        "app": {"own": (200, None), "other": (403, "PRV-4.consent")},
    },
    # the feed is the supplier's and the customer's; an app has its own, by token
    ("get", "/v1/feed"): {
        "none": NO_KEY,
        "supplier": (200, None),
        "customer": (200, None),
        "operator": (403, "API-role.feed"),
        "app": (403, "API-role.feed"),
    },
    ("get", "/v1/app/feed"): {
        "none": NO_KEY,
        "supplier": (401, "API-oauth.token"),
        "customer": (401, "API-oauth.token"),
        "operator": (401, "API-oauth.token"),
        "app": (200, None),
    },
}


def rule_of(response: Any) -> str | None:
    """The first rule of an error answer (the OAuth error code on the OAuth
    endpoints), None for a success or a redirect."""
    if response.status_code < 400:
        return None
    error = response.json()["error"]
    return error if isinstance(error, str) else str(error["rule"])


def prepare(flow: Flow) -> Ctx:
    """The parties' ids, an app access token and a consent on ``normal`` (J. de Vries),
    a consent of the neighbour's, and a stored UC9 run."""
    ctx = Ctx(flow)
    register = open_register(flow.db_url)
    try:
        with register.session() as s:
            for p in s.api_parties():
                if p.code == "8710000000017":
                    ctx.ids["supplier"] = p.id
                elif p.holder == "J. de Vries":
                    ctx.ids["customer"] = p.id
                elif p.role is ApiRole.OPERATOR:
                    ctx.ids["operator"] = p.id
            theirs = consent.give(
                s.db,
                "api-app-1",
                "app_consent",
                OTHER,
                ["daily_readings"],
                Period(datetime(2025, 7, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),
                "A. Jansen",
                NOW,
            )
            ctx.other_consent = theirs.id
    finally:
        register.dispose()
    ctx.ids["app"] = flow.ids["app"]
    ctx.access = tokens(flow)["access_token"]
    code_for(flow)  # a second approval: its consent is the one the customer revokes
    ctx.own_consent = max(c.id for c in consents(flow) if c.ean == OWN)
    operator = {"Authorization": f"Bearer {flow.keys['operator']}"}
    ctx.run_id = flow.client.post("/v1/usecases/uc09/runs", json=JULY, headers=operator).json()[
        "id"
    ]
    return ctx


def test_every_route_has_a_row_for_every_role_and_connection(flow: Flow) -> None:
    document = flow.client.get("/openapi.json").json()
    routes = {
        (method, path)
        for path, operations in document["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
    assert routes == set(MATRIX), (
        f"rows missing: {routes - set(MATRIX)}, stale: {set(MATRIX) - routes}"
    )
    assert set(CALLS) == set(MATRIX)
    for route, row in MATRIX.items():
        assert set(row) == set(ROLES), route
        for role, cell in row.items():
            if isinstance(cell, dict):
                assert route in WITH_CONNECTION and set(cell) == {"own", "other"}, (route, role)


def test_the_matrix(flow: Flow) -> None:
    ctx = prepare(flow)
    wrong: list[str] = []
    for route, row in MATRIX.items():
        for role in ROLES:
            cell = row[role]
            if isinstance(cell, dict):
                cases = list(cell.items())
            elif route in WITH_CONNECTION:
                cases = [("own", cell), ("other", cell)]
            else:
                cases = [("own", cell)]
            for which, expected in cases:
                response = CALLS[route](ctx, role, which)
                got = (response.status_code, rule_of(response))
                if got != expected:
                    wrong.append(f"{route} {role} {which}: {got} != {expected}")
    assert not wrong, "\n".join(wrong)
