"""The API's parties and keys (issue 17), on SQLite and PostgreSQL: the key is shown
once and stored only as its SHA-256, every broken rule of a new party is refused at
once, a revoked key opens nothing, and ``meetpunt party add|list|revoke`` work."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.domain.ean import gs1_check_digit
from meetpunt.errors import RegisterError
from meetpunt.register import Register, schema
from meetpunt.register.parties import (
    ApiRole,
    check_party,
    check_redirect_uri,
    key_hash,
    new_key,
)
from tests.scenarios.test_scenarios import EANS, S1, build

NOW = datetime(2025, 8, 1, tzinfo=UTC)
GOOD_URIS = frozenset(
    {"https://app.example/cb", "http://127.0.0.1:8123/cb", "http://localhost/cb?x=1"}
)
BAD_URIS = frozenset(
    {
        "https://*.example/cb",
        "http://app.example/cb",
        "https://app.example/cb#top",
        "/cb",
        "app.example/cb",
        "ftp://app.example/cb",
        "https://app.example/c b",
    }
)


def test_the_key_is_stored_only_as_its_hash(register: Register) -> None:
    build(register)
    with register.session() as s:
        party, key = s.add_api_party(ApiRole.SUPPLIER, NOW, code=S1)
    with register.session() as s:
        rows = [tuple(r) for r in s.db.execute(select(schema.api_party))]
        assert not any(key in str(v) for row in rows for v in row)
        assert rows[0][4] == hashlib.sha256(key.encode()).hexdigest()
        found = s.api_party_by_key(key)
        assert found is not None
        assert (found.id, found.role, found.code) == (party.id, ApiRole.SUPPLIER, S1)
        assert s.api_party_by_key(key + "x") is None
        assert s.api_party_by_key("") is None


def test_a_customer_is_bound_to_their_connections_and_named_as_their_holder(
    register: Register,
) -> None:
    build(register)
    with register.session() as s:
        customer, _ = s.add_api_party(ApiRole.CUSTOMER, NOW, eans=[EANS["normal"]])
        mover, _ = s.add_api_party(ApiRole.CUSTOMER, NOW, eans=[EANS["moved"]], holder="P. Bakker")
    assert (customer.holder, customer.eans) == ("J. de Vries", (EANS["normal"],))
    assert mover.holder == "P. Bakker"
    with register.session() as s:
        listed = {p.id: p for p in s.api_parties()}
        assert listed[customer.id].eans == (EANS["normal"],)
        stretches = s.customer_stretches(listed[mover.id])
    assert list(stretches) == [EANS["moved"]]
    assert [end for _, end in stretches[EANS["moved"]]] == [datetime(2025, 7, 5).date()]


def test_every_broken_rule_of_a_new_party_is_refused_at_once(register: Register) -> None:
    build(register)
    cases = [
        ({"role": ApiRole.SUPPLIER}, {"API-party.code"}),
        ({"role": ApiRole.SUPPLIER, "code": "8710000000018"}, {"REG-6.supplier"}),
        (
            {"role": ApiRole.SUPPLIER, "code": S1, "eans": [EANS["normal"]]},
            {"API-party.ean"},
        ),
        ({"role": ApiRole.CUSTOMER}, {"API-party.ean"}),
        ({"role": ApiRole.CUSTOMER, "code": S1}, {"API-party.ean", "API-party.code"}),
        ({"role": ApiRole.CUSTOMER, "eans": ["871687400000009990"]}, {"API-party.ean"}),
        ({"role": ApiRole.CUSTOMER, "eans": [EANS["contractless"]]}, {"API-party.holder"}),
        (
            {"role": ApiRole.CUSTOMER, "eans": [EANS["normal"]], "holder": "A. Jansen"},
            {"API-party.holder"},
        ),
        ({"role": ApiRole.OPERATOR, "eans": [EANS["normal"]]}, {"API-party.ean"}),
    ]
    for kwargs, rules in cases:
        role = kwargs.pop("role")
        with pytest.raises(RegisterError) as refused, register.session() as s:
            s.add_api_party(role, NOW, **kwargs)  # type: ignore[arg-type]
        assert set(refused.value.rules) == rules, kwargs
    with register.session() as s:
        assert s.api_parties() == []


def test_a_revoked_party_keeps_its_row_and_its_first_revocation(register: Register) -> None:
    with register.session() as s:
        party, key = s.add_api_party(ApiRole.OPERATOR, NOW)
        first = s.revoke_api_party(party.id, NOW)
        again = s.revoke_api_party(party.id, datetime(2025, 9, 1, tzinfo=UTC))
        found = s.api_party_by_key(key)
    assert first.revoked_at == again.revoked_at == NOW
    assert found is not None and found.revoked
    with pytest.raises(RegisterError) as unknown, register.session() as s:
        s.revoke_api_party(party.id + 100, NOW)
    assert unknown.value.rules == ("API-party.unknown",)


@settings(max_examples=50)
@given(
    role=st.sampled_from(list(ApiRole)),
    code=st.none() | st.just(S1) | st.text("0123456789", min_size=1, max_size=14),
    eans=st.lists(st.just(EANS["normal"]), max_size=2),
    uris=st.lists(st.sampled_from(sorted(GOOD_URIS | BAD_URIS)), max_size=2),
)
def test_check_party_accepts_exactly_a_role_with_what_it_needs(
    role: ApiRole, code: str | None, eans: list[str], uris: list[str]
) -> None:
    """A supplier needs a valid market code and no connections, a customer connections
    and no code, an app at least one valid redirect URI (PRV-4) and no code or
    connections, an operator none of these (issue 17)."""
    findings = check_party(role, code, eans, uris)
    good_code = code is not None and len(code) == 13 and gs1_check_digit(code[:-1]) == int(code[-1])
    if role is ApiRole.SUPPLIER:
        valid = code is not None and good_code and not eans
    elif role is ApiRole.CUSTOMER:
        valid = code is None and bool(eans)
    elif role is ApiRole.APP:
        valid = code is None and not eans and bool(uris) and set(uris) <= GOOD_URIS
    else:
        valid = code is None and not eans
    valid = valid and (role is ApiRole.APP or not uris)
    assert (findings == []) == valid


def test_each_bad_redirect_uri_is_refused_with_its_reason() -> None:
    """Exact matching needs URIs that mean one thing: absolute, https (http only on the
    loopback, RFC 8252), no fragment, no wildcard (PRV-4, RFC 6749 3.1.2)."""
    for uri in BAD_URIS:
        found = check_redirect_uri(uri)
        assert found is not None and found.rule == "API-party.redirect_uri", uri
    assert all(check_redirect_uri(uri) is None for uri in GOOD_URIS)


def test_keys_are_long_random_and_hashed_with_sha256() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(k.startswith("mp_") and len(k) >= 43 for k in keys)
    assert key_hash("x") == hashlib.sha256(b"x").hexdigest()


def test_the_party_commands_add_list_and_revoke(db_url: str) -> None:
    from meetpunt.register import open_register

    register = open_register(db_url)
    try:
        build(register)
    finally:
        register.dispose()
    runner = CliRunner()
    added = runner.invoke(
        app, ["party", "add", "--role", "supplier", "--code", S1, "--db", db_url, "--json"]
    )
    assert added.exit_code == 0, added.output
    shown = json.loads(added.stdout)
    assert set(shown) == {"id", "role", "api_key"}
    assert shown["role"] == "supplier"
    customer = runner.invoke(
        app,
        ["party", "add", "--role", "customer", "--ean", EANS["normal"], "--db", db_url, "--json"],
    )
    assert customer.exit_code == 0, customer.output
    listed = runner.invoke(app, ["party", "list", "--db", db_url, "--json"])
    rows = json.loads(listed.stdout)
    assert [(r["role"], r["code"], r["holder"]) for r in rows] == [
        ("supplier", S1, None),
        ("customer", None, "J. de Vries"),
    ]
    assert shown["api_key"] not in listed.stdout
    revoked = runner.invoke(app, ["party", "revoke", str(shown["id"]), "--db", db_url, "--json"])
    assert revoked.exit_code == 0
    assert json.loads(revoked.stdout)["revoked_at"] is not None
    bad = runner.invoke(
        app, ["party", "add", "--role", "supplier", "--code", "123", "--db", db_url, "--json"]
    )
    assert bad.exit_code == 1
    assert "REG-6.supplier" in bad.output
    gone = runner.invoke(app, ["party", "revoke", "999", "--db", db_url])
    assert gone.exit_code == 1


def test_an_app_is_added_with_its_redirect_uris_and_refused_without(db_url: str) -> None:
    """``party add --role app --redirect-uri URI ...``: the OAuth client (PRV-4); a bad
    or missing URI is refused, and ``party list`` shows the URIs."""
    runner = CliRunner()
    uris = ["https://app.example/cb", "http://127.0.0.1:8123/cb"]
    args = ["party", "add", "--role", "app", "--db", db_url, "--json"]
    added = runner.invoke(app, [*args, "--redirect-uri", uris[0], "--redirect-uri", uris[1]])
    assert added.exit_code == 0, added.output
    listed = json.loads(runner.invoke(app, ["party", "list", "--db", db_url, "--json"]).stdout)
    assert [(r["role"], sorted(r["redirect_uris"])) for r in listed] == [("app", sorted(uris))]
    for extra in ([], ["--redirect-uri", "https://*.example/cb"]):
        bad = runner.invoke(app, [*args, *extra])
        assert bad.exit_code == 1 and "API-party.redirect_uri" in bad.output
    supplier = runner.invoke(
        app,
        [
            "party",
            "add",
            "--role",
            "supplier",
            "--code",
            S1,
            "--redirect-uri",
            uris[0],
            "--db",
            db_url,
            "--json",
        ],
    )
    assert supplier.exit_code == 1 and "API-party.redirect_uri" in supplier.output


def test_only_an_app_has_a_display_name_of_printable_text(register: Register) -> None:
    """``--name`` is an app's display name (issue 17): refused for other roles, empty,
    too long or with control characters; kept and listed for an app."""
    build(register)
    with register.session() as s:
        named, _ = s.add_api_party(
            ApiRole.APP, NOW, redirect_uris=["https://app.example/cb"], name=" Stroomwijzer "
        )
        assert named.name == "Stroomwijzer" and named.display_name == "Stroomwijzer"
        plain, _ = s.add_api_party(ApiRole.APP, NOW, redirect_uris=["https://app.example/cb"])
        assert plain.name is None and plain.display_name == f"app {plain.id}"
        for role, kw, name in (
            (ApiRole.SUPPLIER, {"code": S1}, "Energie BV"),
            (ApiRole.OPERATOR, {}, "Netbeheer"),
            (ApiRole.APP, {"redirect_uris": ["https://app.example/cb"]}, "  "),
            (ApiRole.APP, {"redirect_uris": ["https://app.example/cb"]}, "x" * 201),
            (ApiRole.APP, {"redirect_uris": ["https://app.example/cb"]}, "bad\nname"),
        ):
            with pytest.raises(RegisterError) as refused:
                s.add_api_party(role, NOW, name=name, **kw)  # type: ignore[arg-type]
            assert [f.rule for f in refused.value.findings] == ["API-party.name"], name
    with register.session() as s:
        listed = {p.id: p.name for p in s.api_parties()}
    assert listed[named.id] == "Stroomwijzer" and listed[plain.id] is None


def test_party_add_takes_an_apps_name_and_list_shows_it(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'register.sqlite'}"
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "party",
            "add",
            "--role",
            "app",
            "--name",
            "Stroomwijzer",
            "--redirect-uri",
            "https://app.example/cb",
            "--db",
            db,
            "--json",
        ],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["party", "list", "--db", db, "--json"])
    assert [p["name"] for p in json.loads(listed.output)] == ["Stroomwijzer"]
    refused = runner.invoke(
        app, ["party", "add", "--role", "operator", "--name", "Netbeheer", "--db", db, "--json"]
    )
    assert refused.exit_code != 0 and "API-party.name" in refused.output
