"""The customer's account over the API (issue 17): activation by the letter's code
(API-activate.*) and opt-out of remote reading (REG-7) that the next supplier read
obeys (PRV-3), audited (PRV-7)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from meetpunt.cli.main import app as cli
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.register import open_register
from meetpunt.register.activation import ALPHABET, CODE_LENGTH, code_hash, new_code
from meetpunt.register.parties import ApiRole
from tests.api import test_oauth
from tests.api.conftest import NOW, World
from tests.api.test_api import records, rules_of
from tests.scenarios.test_scenarios import EANS

ACTIVATE = "/v1/me/activate"
TODAY = "2025-08-15"
TOMORROW = "2025-08-16"


def customer_with_code(
    world: World, ean: str, days: int = 30, issued_days_ago: int = 0, revoke: bool = False
) -> str:
    """A customer bound to ``ean`` with an activation code issued ``issued_days_ago``."""
    register = open_register(world.db_url)
    try:
        with register.session() as s:
            party, _ = s.add_api_party(ApiRole.CUSTOMER, NOW, eans=[ean])
            code, _ = s.issue_activation(party, NOW - timedelta(days=issued_days_ago), days)
            if revoke:
                s.revoke_api_party(party.id, NOW)
    finally:
        register.dispose()
    return code


def test_a_code_activates_the_account_once_and_its_key_reads_the_own_data(world: World) -> None:
    code = customer_with_code(world, EANS["neighbour"])
    typed = code.lower().replace("-", " ")
    answer = world.client.post(ACTIVATE, json={"code": typed})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["role"], body["eans"]) == ("customer", [EANS["neighbour"]])
    world.keys["jansen"] = body["api_key"]
    own = world.get("/v1/me/readings", "jansen", **{"from": "2025-07-01", "to": "2025-07-03"})
    assert own.status_code == 200
    assert {r["ean"] for r in own.json()["readings"]} == {EANS["neighbour"]}
    again = world.client.post(ACTIVATE, json={"code": code})
    assert (again.status_code, rules_of(again)) == (403, ["API-activate.used"])


def test_an_unknown_expired_or_revoked_code_is_refused(world: World) -> None:
    expired = customer_with_code(world, EANS["neighbour"], days=1, issued_days_ago=2)
    revoked = customer_with_code(world, EANS["switched"], revoke=True)
    for code, rule in (
        (new_code(), "API-activate.unknown"),
        (expired, "API-activate.expired"),
        (revoked, "API-activate.revoked"),
    ):
        answer = world.client.post(ACTIVATE, json={"code": code})
        assert (answer.status_code, rules_of(answer)) == (403, [rule])
    assert world.client.post(ACTIVATE, json={"code": ""}).status_code == 422


def test_wrong_codes_are_limited_per_address_even_before_a_right_one(world: World) -> None:
    right = customer_with_code(world, EANS["neighbour"])
    for _ in range(5):
        assert world.client.post(ACTIVATE, json={"code": new_code()}).status_code == 403
    blocked = world.client.post(ACTIVATE, json={"code": right})
    assert (blocked.status_code, rules_of(blocked)) == (429, ["API-activate.attempts"])
    assert int(blocked.headers["retry-after"]) >= 1


@given(
    picks=st.lists(st.sampled_from(ALPHABET), min_size=CODE_LENGTH, max_size=CODE_LENGTH),
    noise=st.lists(st.sampled_from(["-", " ", ""]), min_size=CODE_LENGTH, max_size=CODE_LENGTH),
    lower=st.booleans(),
)
def test_a_typed_code_matches_whatever_its_dashes_spaces_and_case(
    picks: list[str], noise: list[str], lower: bool
) -> None:
    code = "".join(picks)
    typed = "".join(c + n for c, n in zip(picks, noise, strict=True))
    assert code_hash(typed.lower() if lower else typed) == code_hash(code)


def test_codes_are_random_typable_and_grouped() -> None:
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(ALPHABET)
        assert not set("01OIL") & set(code)


def test_party_add_customer_prints_a_code_not_a_key(world: World) -> None:
    runner = CliRunner()
    args = ["party", "add", "--role", "customer", "--ean", EANS["neighbour"], "--days", "7"]
    added = runner.invoke(cli, [*args, "--db", world.db_url, "--json"])
    assert added.exit_code == 0, added.output
    shown = json.loads(added.stdout)
    assert set(shown) == {"id", "role", "activation_code", "expires_at"}
    again = runner.invoke(cli, ["party", "activate", str(shown["id"]), "--db", world.db_url])
    assert again.exit_code == 0 and "activation code" in again.output
    supplier = runner.invoke(cli, ["party", "activate", "1", "--db", world.db_url, "--json"])
    assert supplier.exit_code == 1 and "API-activate.role" in supplier.output
    answer = world.client.post(ACTIVATE, json={"code": shown["activation_code"]})
    assert answer.status_code == 200


def remote(world: World, who: str, **body: object) -> Any:
    headers = {"Authorization": f"Bearer {world.keys[who]}"}
    return world.client.put("/v1/me/remote-reading", json=body, headers=headers)


def s1_reads(world: World, first: str, after: str) -> Any:
    return world.get(
        f"/v1/connections/{EANS['normal']}/readings", "S1", **{"from": first, "to": after}
    )


def test_opting_out_stops_the_next_supplier_read_from_today_and_back_on_restores_it(
    world: World,
) -> None:
    assert s1_reads(world, TODAY, TOMORROW).status_code == 200
    off = remote(world, "de_vries", on=False)
    assert off.status_code == 200, off.text
    assert off.json()["connections"] == [
        {
            "ean": EANS["normal"],
            "remote_reading": "administratively_off",
            "from": TODAY,
            "changed": True,
        }
    ]
    refused = s1_reads(world, TODAY, TOMORROW)
    assert refused.status_code == 403
    assert "PRV-3.opt_out" in rules_of(refused)
    assert s1_reads(world, "2025-07-01", "2025-08-01").status_code == 200
    audited = [r for r in records(world.db_url) if r.entry.purpose == "remote_reading"]
    assert [(r.entry.outcome, r.entry.connections) for r in audited] == [
        ("opted_out", (EANS["normal"],))
    ]
    mine = world.get("/v1/me/audit", "de_vries", lang="en").json()["records"]
    assert any(r["purpose"] == "remote_reading" for r in mine)
    twice = remote(world, "de_vries", on=False)
    assert twice.json()["connections"][0]["changed"] is False
    assert remote(world, "de_vries", on=True).status_code == 200
    assert s1_reads(world, TODAY, TOMORROW).status_code == 200


def test_only_the_holder_of_today_switches_and_only_a_smart_meter_goes_off(world: World) -> None:
    left = remote(world, "bakker", on=False)  # moved out on MOVE
    assert (left.status_code, rules_of(left)) == (403, ["PRV-1.own_data"])
    other = remote(world, "de_vries", on=False, ean=EANS["neighbour"])
    assert (other.status_code, rules_of(other)) == (404, ["PRV-1.own_data"])
    supplier = remote(world, "S1", on=False)
    assert rules_of(supplier) == ["API-role.customer"]
    register = open_register(world.db_url)
    try:
        with register.session() as s:
            now = s.connection_at(EANS["normal"], date(2025, 8, 1))
            assert now is not None
            ferraris = replace(now.attributes, meter_type=MeterType.FERRARIS)
            s.record_connection(EANS["normal"], Commodity.ELECTRICITY, ferraris, date(2025, 8, 1))
    finally:
        register.dispose()
    old_meter = remote(world, "de_vries", on=False)
    assert old_meter.status_code == 409
    assert "REG-7.remote_reading" in rules_of(old_meter)
    assert not [r for r in records(world.db_url) if r.entry.purpose == "remote_reading"]


flow = test_oauth.flow
"""The OAuth tests' world, for the app's read after an opt-out."""


def test_the_apps_next_read_obeys_the_opt_out_too(flow: test_oauth.Flow) -> None:
    access = test_oauth.tokens(flow)["access_token"]

    def app_reads_today() -> Any:
        return flow.client.get(
            f"/v1/app/connections/{EANS['normal']}/readings",
            params={"kind": "daily", "from": TODAY, "to": TOMORROW},
            headers={"Authorization": f"Bearer {access}"},
        )

    assert app_reads_today().status_code == 200
    customer = {"Authorization": f"Bearer {flow.keys['de_vries']}"}
    off = flow.client.put("/v1/me/remote-reading", json={"on": False}, headers=customer)
    assert off.status_code == 200
    refused = app_reads_today()
    assert refused.status_code == 403
    assert "PRV-3.opt_out" in rules_of(refused)
    assert records(flow.db_url)[-1].entry.rules == ("PRV-3.opt_out",)
