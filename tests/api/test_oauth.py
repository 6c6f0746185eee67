"""Apps with the customer's consent (issue 17, PRV-4): the OAuth 2.0 authorization code
flow with S256 PKCE end to end over the TestClient, on SQLite and PostgreSQL, and each
refusal: a wrong redirect URI, missing or plain PKCE, a wrong verifier, a reused or
expired code, an expired access token, a refresh after revocation, another app's code
or token, a scope not granted, a read after the consent was revoked. Refusals that
name meter data are in the audit log (PRV-7)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, select
from typer.testing import CliRunner

from meetpunt.api import create_app
from meetpunt.api.oauth import (
    ACCESS_SECONDS,
    CODE_SECONDS,
    MAX_HISTORY_MONTHS,
    MAX_VALID_MONTHS,
    SCOPE_KINDS,
    add_months,
    parse_scope,
)
from meetpunt.cli import app as cli
from meetpunt.privacy import audit, consent
from meetpunt.privacy.audit import AuditRecord
from meetpunt.register import open_register, schema
from meetpunt.register.parties import ApiRole
from tests.api.conftest import APP_REDIRECT, NOW, scenario
from tests.scenarios.test_scenarios import EANS

OTHER_REDIRECT = "https://other.example/cb"
SCOPE = "daily history:2"
"""Daily readings from two months back (15 June, the clock being 15 August)."""


@dataclass
class Flow:
    """The API on a clock the test moves, with the apps' client ids and keys."""

    client: TestClient
    db_url: str
    keys: dict[str, str]
    ids: dict[str, int]
    now: list[datetime]

    def tick(self, seconds: int) -> None:
        self.now[0] += timedelta(seconds=seconds)


@pytest.fixture
def flow(db_url: str, tmp_path: Path) -> Iterator[Flow]:
    """The scenario register with its parties plus a second app, served over https."""
    store, keys = scenario(db_url, tmp_path)
    register = open_register(db_url)
    try:
        with register.session() as s:
            other, keys["other"] = s.add_api_party(ApiRole.APP, NOW, redirect_uris=[OTHER_REDIRECT])
            ids = {"other": other.id}
            ids["app"] = next(
                p.id for p in s.api_parties() if p.role is ApiRole.APP and p.id != other.id
            )
    finally:
        register.dispose()
    now = [NOW]
    app = create_app(db_url, store, clock=lambda: now[0])
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield Flow(client, db_url, keys, ids, now)


def pkce() -> tuple[str, str]:
    """A verifier and its S256 challenge (RFC 7636 4.2), computed here, not by Authlib."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def ask(flow: Flow, challenge: str | None, **over: Any) -> dict[str, str]:
    """An authorization request of the app (over: parameters replaced or dropped)."""
    params = {
        "response_type": "code",
        "client_id": str(flow.ids["app"]),
        "redirect_uri": APP_REDIRECT,
        "scope": SCOPE,
        "state": "st-42",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(over)
    return {k: v for k, v in params.items() if v is not None}


def approve(flow: Flow, params: dict[str, str], who: str = "de_vries") -> Any:
    return flow.client.post(
        "/v1/oauth/authorize", data={**params, "decision": "approve", "api_key": flow.keys[who]}
    )


def query(response: Any) -> dict[str, str]:
    """The parameters of a redirect's Location (one value each)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def code_for(flow: Flow, scope: str = SCOPE) -> tuple[str, str]:
    """A fresh code the customer approved, and its verifier."""
    verifier, challenge = pkce()
    answer = approve(flow, ask(flow, challenge, scope=scope))
    assert answer.status_code == 302, answer.text
    return query(answer)["code"], verifier


def exchange(
    flow: Flow,
    code: str,
    verifier: str | None,
    app: str = "app",
    secret: str | None = None,
    url: str = "/v1/oauth/token",
    **over: str,
) -> Any:
    """The app exchanges a code at the token endpoint (HTTP Basic with its id and key,
    or ``secret`` instead of its key)."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(over)
    return flow.client.post(url, data=data, auth=(str(flow.ids[app]), secret or flow.keys[app]))


def tokens(flow: Flow, scope: str = SCOPE) -> dict[str, Any]:
    code, verifier = code_for(flow, scope)
    answer = exchange(flow, code, verifier)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def refresh(flow: Flow, token: str, app: str = "app", **extra: str) -> Any:
    return flow.client.post(
        "/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token, **extra},
        auth=(str(flow.ids[app]), flow.keys[app]),
    )


def read(flow: Flow, access: str, ean: str = EANS["normal"], kind: str = "daily") -> Any:
    return flow.client.get(
        f"/v1/app/connections/{ean}/readings",
        params={"kind": kind, "from": "2025-07-01", "to": "2025-08-01"},
        headers={"Authorization": f"Bearer {access}"},
    )


def rules_of(response: Any) -> list[str]:
    return [f["rule"] for f in response.json()["error"]["findings"]]


T = TypeVar("T")


def in_register(flow: Flow, look: Callable[[Connection], T]) -> T:
    """What ``look`` finds in the register, in a session of its own."""
    register = open_register(flow.db_url)
    try:
        with register.session() as s:
            return look(s.db)
    finally:
        register.dispose()


def records(flow: Flow) -> list[AuditRecord]:
    return in_register(flow, audit.records)


def consents(flow: Flow) -> list[consent.Consent]:
    return in_register(flow, consent.list_consents)


def assert_refusal_audited(flow: Flow, rule: str) -> None:
    last = records(flow)[-1].entry
    assert (last.event, last.outcome, last.rules) == ("decision", "refused", (rule,))
    assert last.party == f"api-app-{flow.ids['app']}" and last.purpose == "app_consent"


def test_the_whole_flow_consent_token_read_refresh_revoke(flow: Flow) -> None:
    verifier, challenge = pkce()
    page = flow.client.get("/v1/oauth/authorize", params=ask(flow, challenge))
    assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
    for words in ("dagstanden", "daily readings", "per dag", "2025-06-15", "2026-08-14"):
        assert words in page.text
    assert "app.example" in page.text and 'name="api_key"' in page.text

    answer = approve(flow, ask(flow, challenge))
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(APP_REDIRECT + "?")
    back = query(answer)
    assert back["state"] == "st-42"
    given_ = consents(flow)
    assert [(c.party, c.ean, c.kinds, c.state) for c in given_] == [
        (f"api-app-{flow.ids['app']}", EANS["normal"], frozenset({"daily_readings"}), "given")
    ]
    assert records(flow)[-1].entry.event == "consent"

    issued = exchange(flow, back["code"], verifier)
    assert issued.status_code == 200, issued.text
    token = issued.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == ACCESS_SECONDS
    assert token["scope"] == "daily history:2 valid:12"
    assert issued.headers["cache-control"] == "no-store"

    first = read(flow, token["access_token"])
    assert first.status_code == 200, first.text
    assert first.json()["purpose"] == "app_consent"
    assert len(first.json()["readings"]) == 31
    granted, done = records(flow)[-2:]
    assert (granted.entry.outcome, done.entry.event) == ("granted", "read")
    assert granted.entry.party == f"api-app-{flow.ids['app']}"

    renewed = refresh(flow, token["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    again = renewed.json()
    assert again["refresh_token"] != token["refresh_token"]
    assert read(flow, token["access_token"]).status_code == 401  # rotated: the old one is revoked
    assert read(flow, again["access_token"]).status_code == 200

    mine = flow.client.get(
        "/v1/me/consents", headers={"Authorization": f"Bearer {flow.keys['de_vries']}"}
    )
    assert [c["id"] for c in mine.json()["consents"]] == [given_[0].id]
    gone = flow.client.delete(
        f"/v1/me/consents/{given_[0].id}",
        headers={"Authorization": f"Bearer {flow.keys['de_vries']}"},
    )
    assert gone.status_code == 200 and gone.json()["state"] == "revoked"
    stopped = read(flow, again["access_token"])
    assert (stopped.status_code, rules_of(stopped)) == (403, ["PRV-4.consent"])
    assert_refusal_audited(flow, "PRV-4.consent")
    assert refresh(flow, again["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_rotated_refresh_token_used_again_revokes_the_whole_approval(flow: Flow) -> None:
    token = tokens(flow)
    again = refresh(flow, token["refresh_token"]).json()
    reuse = refresh(flow, token["refresh_token"])
    assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
    assert read(flow, again["access_token"]).status_code == 401
    assert refresh(flow, again["refresh_token"]).json()["error"] == "invalid_grant"


def test_the_openapi_document_describes_the_flow(flow: Flow) -> None:
    spec = flow.client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["AppConsent"]["flows"]["authorizationCode"]
    assert (scheme["authorizationUrl"], scheme["tokenUrl"]) == (
        "/v1/oauth/authorize",
        "/v1/oauth/token",
    )
    assert set(SCOPE_KINDS) <= set(scheme["scopes"])
    read_op = spec["paths"]["/v1/app/connections/{ean}/readings"]["get"]
    assert read_op["security"] == [{"AppConsent": []}]


def test_the_consent_page_escapes_what_the_app_sends(flow: Flow) -> None:
    _, challenge = pkce()
    state = '"><script>alert(1)</script>'
    page = flow.client.get("/v1/oauth/authorize", params=ask(flow, challenge, state=state))
    assert page.status_code == 200 and "<script>" not in page.text
    assert "&lt;script&gt;" in page.text and 'name="api_key"' in page.text


def test_codes_and_tokens_are_stored_only_as_hashes(flow: Flow) -> None:
    code, verifier = code_for(flow)
    token = exchange(flow, code, verifier).json()
    stored = in_register(
        flow,
        lambda db: [
            str(v)
            for table in (schema.oauth_code, schema.oauth_token)
            for row in db.execute(select(table))
            for v in row
        ],
    )
    assert hashlib.sha256(code.encode()).hexdigest() in stored
    for secret in (code, token["access_token"], token["refresh_token"], verifier):
        assert not any(secret in v for v in stored)


@pytest.mark.parametrize(
    "uri",
    [
        APP_REDIRECT + "/more",  # a longer path: no prefix matching
        "https://app.example/",  # a prefix of the registered one
        APP_REDIRECT + "?x=1",
        "https://APP.example/callback",
        OTHER_REDIRECT,  # another app's
        None,  # missing: there is no default
    ],
)
def test_a_redirect_uri_not_registered_exactly_is_refused_without_redirect(
    flow: Flow, uri: str | None
) -> None:
    _, challenge = pkce()
    params = ask(flow, challenge, redirect_uri=uri)
    page = flow.client.get("/v1/oauth/authorize", params=params)
    assert page.status_code == 400 and "location" not in page.headers
    assert page.json()["error"] == "invalid_request"
    posted = approve(flow, params)
    assert posted.status_code == 400 and "location" not in posted.headers
    assert consents(flow) == []


def test_an_unknown_or_non_app_client_is_refused(flow: Flow) -> None:
    _, challenge = pkce()
    for client_id in ("999", "x", None):
        page = flow.client.get(
            "/v1/oauth/authorize", params=ask(flow, challenge, client_id=client_id)
        )
        assert (page.status_code, page.json()["error"]) == (400, "invalid_client")


@pytest.mark.parametrize(
    ("challenge", "method"),
    [(None, "S256"), (None, None), ("plain", "plain"), ("plain", None), ("s256", "s256")],
)
def test_pkce_is_required_and_only_s256(
    flow: Flow, challenge: str | None, method: str | None
) -> None:
    """A missing challenge or another method than S256 goes back to the app as
    invalid_request, and no consent is made."""
    verifier, s256 = pkce()
    value = {None: None, "plain": verifier, "s256": s256}[challenge]
    params = ask(flow, value, code_challenge_method=method)
    page = flow.client.get("/v1/oauth/authorize", params=params)
    assert page.status_code == 302
    assert query(page)["error"] == "invalid_request" and query(page)["state"] == "st-42"
    assert approve(flow, params).status_code == 302
    assert "code" not in query(approve(flow, params))
    assert consents(flow) == []


def test_a_wrong_or_missing_verifier_is_refused_and_spends_the_code(flow: Flow) -> None:
    code, verifier = code_for(flow)
    missing = exchange(flow, code, None)
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    code, verifier = code_for(flow)
    wrong = exchange(flow, code, pkce()[0])
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert exchange(flow, code, verifier).json()["error"] == "invalid_grant"


def test_a_reused_code_is_refused_and_revokes_its_tokens(flow: Flow) -> None:
    code, verifier = code_for(flow)
    first = exchange(flow, code, verifier)
    assert first.status_code == 200
    assert read(flow, first.json()["access_token"]).status_code == 200
    replay = exchange(flow, code, verifier)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert read(flow, first.json()["access_token"]).status_code == 401
    assert refresh(flow, first.json()["refresh_token"]).json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused(flow: Flow) -> None:
    code, verifier = code_for(flow)
    flow.tick(CODE_SECONDS)
    late = exchange(flow, code, verifier)
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")
    fresh, verifier = code_for(flow)
    flow.tick(CODE_SECONDS - 1)
    assert exchange(flow, fresh, verifier).status_code == 200


def test_the_code_is_bound_to_its_redirect_uri(flow: Flow) -> None:
    code, verifier = code_for(flow)
    other = exchange(flow, code, verifier, redirect_uri=APP_REDIRECT + "/x")
    assert other.json()["error"] == "invalid_grant"


def test_an_expired_access_token_is_401_and_refresh_gives_a_new_one(flow: Flow) -> None:
    token = tokens(flow)
    flow.tick(ACCESS_SECONDS - 1)
    assert read(flow, token["access_token"]).status_code == 200
    flow.tick(1)
    late = read(flow, token["access_token"])
    assert (late.status_code, rules_of(late)) == (401, ["API-oauth.token"])
    assert 'error="invalid_token"' in late.headers["www-authenticate"]
    renewed = refresh(flow, token["refresh_token"])
    assert read(flow, renewed.json()["access_token"]).status_code == 200


def test_another_apps_code_token_or_secret_is_refused(flow: Flow) -> None:
    code, verifier = code_for(flow)
    stolen = exchange(flow, code, verifier, app="other")
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    token = tokens(flow)
    assert refresh(flow, token["refresh_token"], app="other").json()["error"] == "invalid_grant"
    code, verifier = code_for(flow)
    forged = exchange(flow, code, verifier, secret=flow.keys["other"])
    assert (forged.status_code, forged.json()["error"]) == (401, "invalid_client")
    # the app's own API key is not an access token, nor an access token an API key
    assert read(flow, flow.keys["app"]).status_code == 401
    supplier_path = flow.client.get(
        f"/v1/connections/{EANS['normal']}/readings",
        params={"from": "2025-07-01", "to": "2025-08-01"},
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert rules_of(supplier_path) == ["API-auth.invalid"]


def test_a_scope_not_granted_is_refused_and_audited(flow: Flow) -> None:
    token = tokens(flow)
    wider = read(flow, token["access_token"], kind="quarter_hours")
    assert (wider.status_code, rules_of(wider)) == (403, ["API-oauth.scope"])
    assert_refusal_audited(flow, "API-oauth.scope")
    assert refresh(flow, token["refresh_token"], app="app").status_code == 200
    widen = refresh(
        flow, tokens(flow)["refresh_token"], scope="daily quarter_hours history:2 valid:12"
    )
    assert widen.json()["error"] == "invalid_scope"


def test_a_connection_the_consent_does_not_name_is_refused_and_audited(flow: Flow) -> None:
    token = tokens(flow)
    other = read(flow, token["access_token"], ean=EANS["neighbour"])
    assert (other.status_code, rules_of(other)) == (403, ["PRV-4.consent"])
    assert_refusal_audited(flow, "PRV-4.consent")


def test_history_outside_the_consent_is_cut_by_the_gate(flow: Flow) -> None:
    """history:0 on 15 August: July lies before the consent (PRV-4.consent)."""
    token = tokens(flow, "daily")
    early = read(flow, token["access_token"])
    assert (early.status_code, rules_of(early)) == (403, ["PRV-4.consent"])
    assert_refusal_audited(flow, "PRV-4.consent")


def test_a_read_after_the_consent_is_revoked_with_the_cli_is_refused(flow: Flow) -> None:
    token = tokens(flow)
    assert read(flow, token["access_token"]).status_code == 200
    [given_] = consents(flow)
    done = CliRunner().invoke(cli, ["consent", "revoke", str(given_.id), "--db", flow.db_url])
    assert done.exit_code == 0, done.output
    stopped = read(flow, token["access_token"])
    assert (stopped.status_code, rules_of(stopped)) == (403, ["PRV-4.consent"])
    assert_refusal_audited(flow, "PRV-4.consent")
    assert refresh(flow, token["refresh_token"]).json()["error"] == "invalid_grant"


def test_refusal_redirects_with_access_denied_and_makes_no_consent(flow: Flow) -> None:
    _, challenge = pkce()
    answer = flow.client.post(
        "/v1/oauth/authorize", data={**ask(flow, challenge), "decision": "refuse"}
    )
    assert answer.status_code == 302
    back = query(answer)
    assert (back["error"], back["state"]) == ("access_denied", "st-42") and "code" not in back
    assert consents(flow) == []


def test_a_signed_refusal_is_kept_as_a_refused_consent_and_opens_nothing(flow: Flow) -> None:
    _, challenge = pkce()
    data = {**ask(flow, challenge), "decision": "refuse", "api_key": flow.keys["de_vries"]}
    answer = flow.client.post("/v1/oauth/authorize", data=data)
    assert query(answer)["error"] == "access_denied"
    [kept] = consents(flow)
    assert kept.state == "refused"
    last = records(flow)[-1].entry
    assert (last.event, last.outcome) == ("consent", "refused")
    mine = flow.client.get(
        "/v1/me/audit?lang=en", headers={"Authorization": f"Bearer {flow.keys['de_vries']}"}
    )
    assert any("you refused" in r["text"] for r in mine.json()["records"])
    forged = {**data, "api_key": flow.keys["S1"]}
    assert rules_of(flow.client.post("/v1/oauth/authorize", data=forged)) == ["API-role.customer"]


def test_only_the_customer_with_a_valid_key_can_approve(flow: Flow) -> None:
    _, challenge = pkce()
    params = {**ask(flow, challenge), "decision": "approve"}
    missing = flow.client.post("/v1/oauth/authorize", data=params)
    assert (missing.status_code, rules_of(missing)) == (401, ["API-auth.missing"])
    bad = flow.client.post("/v1/oauth/authorize", data={**params, "api_key": "mp_nope"})
    assert rules_of(bad) == ["API-auth.invalid"]
    supplier = approve(flow, ask(flow, challenge), who="S1")
    assert (supplier.status_code, rules_of(supplier)) == (403, ["API-role.customer"])
    leaving = approve(flow, ask(flow, challenge), who="bakker")  # moved out on 5 July
    assert (leaving.status_code, rules_of(leaving)) == (403, ["PRV-1.own_data"])
    assert consents(flow) == []


def test_a_customer_revokes_only_their_own_given_consents(flow: Flow) -> None:
    tokens(flow)
    [given_] = consents(flow)
    path = f"/v1/me/consents/{given_.id}"
    other = flow.client.delete(path, headers={"Authorization": f"Bearer {flow.keys['bakker']}"})
    assert (other.status_code, rules_of(other)) == (404, ["PRV-4.unknown"])
    supplier = flow.client.delete(path, headers={"Authorization": f"Bearer {flow.keys['S1']}"})
    assert supplier.status_code == 403
    own = {"Authorization": f"Bearer {flow.keys['de_vries']}"}
    assert flow.client.delete(path, headers=own).status_code == 200
    twice = flow.client.delete(path, headers=own)
    assert (twice.status_code, rules_of(twice)) == (409, ["PRV-4.transition"])


def test_oauth_refuses_plain_http_off_the_loopback(flow: Flow) -> None:
    code, verifier = code_for(flow)
    plain = exchange(flow, code, verifier, url="http://testserver/v1/oauth/token")
    assert (plain.status_code, rules_of(plain)) == (400, ["API-oauth.insecure_transport"])


WORDS = [
    *SCOPE_KINDS,
    "history:0",
    "history:24",
    "history:25",
    "valid:0",
    "valid:12",
    "valid:13",
    "gas",
    "history:x",
    "openid",
]


@given(st.lists(st.sampled_from(WORDS), max_size=5))
def test_a_scope_is_accepted_exactly_when_it_names_a_kind_and_bounded_periods(
    words: list[str],
) -> None:
    """Scopes map onto data kinds and the consent's period (PRV-4): at least one kind,
    history 0..24 and validity 1..12 months, each at most once, nothing else."""
    names = [w.partition(":")[0] for w in words]
    numbers = {w.partition(":")[0]: w.partition(":")[2] for w in words if ":" in w}
    valid = (
        any(w in SCOPE_KINDS for w in words)
        and all(
            w in SCOPE_KINDS or n in {"history", "valid"} for w, n in zip(words, names, strict=True)
        )
        and len(words) == len(set(words))
        and names.count("history") <= 1
        and names.count("valid") <= 1
        and all(v.isdigit() for v in numbers.values())
        and int(numbers.get("history", "0") or 0) <= MAX_HISTORY_MONTHS
        and 1 <= int(numbers.get("valid", "1") or 0) <= MAX_VALID_MONTHS
    )
    try:
        scope = parse_scope(" ".join(words))
    except Exception:
        assert not valid
        return
    assert valid
    assert set(scope.kinds) == {w for w in words if w in SCOPE_KINDS}
    assert parse_scope(scope.text()) == scope


@given(st.dates(date(2000, 1, 1), date(2090, 12, 31)), st.integers(-36, 36))
def test_add_months_moves_whole_months_and_clamps_to_the_month_end(day: date, n: int) -> None:
    moved = add_months(day, n)
    assert (moved.year * 12 + moved.month) - (day.year * 12 + day.month) == n
    assert moved.day == day.day or (moved.day < day.day and (moved + timedelta(days=1)).day == 1)


def test_a_bad_scope_goes_back_to_the_app_as_invalid_scope(flow: Flow) -> None:
    _, challenge = pkce()
    for scope in ("history:2", "daily history:25", "daily valid:0", "daily gas", None):
        page = flow.client.get("/v1/oauth/authorize", params=ask(flow, challenge, scope=scope))
        assert page.status_code == 302, scope
        assert query(page)["error"] == "invalid_scope", scope
    assert consents(flow) == []


def test_revoked_keys_stop_refresh_and_reads(flow: Flow) -> None:
    """A customer whose key is revoked cannot refresh their approval's tokens; an app
    whose key is revoked cannot read with its access token (issue 17)."""
    token = tokens(flow)

    def revoke(name: str) -> None:
        register = open_register(flow.db_url)
        try:
            with register.session() as s:
                party = s.api_party_by_key(flow.keys[name])
                assert party is not None
                s.revoke_api_party(party.id, NOW)
        finally:
            register.dispose()

    revoke("de_vries")
    assert refresh(flow, token["refresh_token"]).json()["error"] == "invalid_grant"
    assert read(flow, token["access_token"]).status_code == 200  # the consent still stands
    revoke("app")
    late = read(flow, token["access_token"])
    assert (late.status_code, rules_of(late)) == (401, ["API-auth.revoked"])


def revoke(flow: Flow, token: str, app: str = "app", **extra: str) -> Any:
    return flow.client.post(
        "/v1/oauth/revoke",
        data={"token": token, **extra},
        auth=(str(flow.ids[app]), flow.keys[app]),
    )


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_an_app_revokes_its_token_and_both_halves_stop(flow: Flow, which: str) -> None:
    token = tokens(flow)
    assert read(flow, token["access_token"]).status_code == 200
    assert revoke(flow, token["access_token"], app="other").json()["error"] == "invalid_grant"
    assert read(flow, token["access_token"]).status_code == 200  # another app revoked nothing
    assert revoke(flow, token[which], token_type_hint=which).status_code == 200
    assert read(flow, token["access_token"]).status_code == 401
    assert refresh(flow, token["refresh_token"]).json()["error"] == "invalid_grant"
    assert [c.state for c in consents(flow)] == ["given"]  # the consent is the customer's


def test_revoking_an_unknown_token_is_fine_but_needs_the_app(flow: Flow) -> None:
    assert revoke(flow, "mpa_never_issued").status_code == 200  # RFC 7009 2.2
    anonymous = flow.client.post("/v1/oauth/revoke", data={"token": "mpa_never_issued"})
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")
    assert revoke(flow, "x", token_type_hint="id_token").json()["error"] == (
        "unsupported_token_type"
    )


def test_a_named_app_is_shown_by_its_name_on_the_consent_page_and_in_who_read_my_meter(
    flow: Flow,
) -> None:
    """An app added with a display name (``party add --role app --name``) is called by
    it on the consent page and in the customer's audit sentences, in both languages,
    for the consent step and the reads alike; its party id is no longer shown there
    (issue 17, PRV-4, PRV-7)."""
    register = open_register(flow.db_url)
    try:
        with register.session() as s:
            named, flow.keys["app"] = s.add_api_party(
                ApiRole.APP, NOW, redirect_uris=[APP_REDIRECT], name="Stroomwijzer <b>"
            )
    finally:
        register.dispose()
    flow.ids["app"] = named.id
    _, challenge = pkce()
    page = flow.client.get("/v1/oauth/authorize", params=ask(flow, challenge))
    assert "Stroomwijzer &lt;b&gt; vraagt uw toestemming" in page.text
    assert f"app {named.id}" not in page.text
    token = tokens(flow)
    assert read(flow, token["access_token"]).status_code == 200
    assert records(flow)[-1].entry.detail["party_name"] == "Stroomwijzer <b>"
    mine = {"Authorization": f"Bearer {flow.keys['de_vries']}"}
    for lang, words in (("en", "the app Stroomwijzer <b>"), ("nl", "de app Stroomwijzer <b>")):
        answer = flow.client.get("/v1/me/audit", params={"lang": lang}, headers=mine)
        its = [r for r in answer.json()["records"] if r["party"] == f"api-app-{named.id}"]
        assert {r["event"] for r in its} == {"consent", "decision", "read"}
        assert all(words.lower() in r["text"].lower() for r in its), its
        assert not any(f"api-app-{named.id}" in r["text"] for r in its)
