"""The API's parties and keys (issue 17), on SQLite and PostgreSQL: the key is shown
once and stored only as its SHA-256, every broken rule of a new party is refused at
once, a revoked key opens nothing, and ``meetpunt party add|list|revoke`` work."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.domain.ean import gs1_check_digit
from meetpunt.errors import RegisterError
from meetpunt.register import Register, schema
from meetpunt.register.parties import ApiRole, check_party, key_hash, new_key
from tests.scenarios.test_scenarios import EANS, S1, build

NOW = datetime(2025, 8, 1, tzinfo=UTC)


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
)
def test_check_party_accepts_exactly_a_role_with_what_it_needs(
    role: ApiRole, code: str | None, eans: list[str]
) -> None:
    """A supplier needs a valid market code and no connections, a customer connections
    and no code, an app or operator neither (issue 17)."""
    findings = check_party(role, code, eans)
    good_code = code is not None and len(code) == 13 and gs1_check_digit(code[:-1]) == int(code[-1])
    if role is ApiRole.SUPPLIER:
        valid = code is not None and good_code and not eans
    elif role is ApiRole.CUSTOMER:
        valid = code is None and bool(eans)
    else:
        valid = code is None and not eans
    assert (findings == []) == valid


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
