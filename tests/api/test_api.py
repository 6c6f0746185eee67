"""The HTTP API end to end over the TestClient (issue 17): each rule refusing what it
must (401, 403, 404), every gate refusal in the audit log (PRV-7), and the reads that
are allowed returning exactly the granted days (PRV-1, PRV-3)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.domain.ean import ean_from_serial
from meetpunt.privacy import audit
from meetpunt.privacy.audit import AuditRecord
from meetpunt.register import open_register
from tests.api.conftest import JULY, World
from tests.scenarios.test_scenarios import EANS, MOVE

AUG = date(2025, 8, 1)
READINGS = "/v1/connections/{}/readings"


def records(db_url: str) -> list[AuditRecord]:
    register = open_register(db_url)
    try:
        with register.session() as s:
            return audit.records(s.db)
    finally:
        register.dispose()


def rules_of(response: Any) -> list[str]:
    return [f["rule"] for f in response.json()["error"]["findings"]]


def july(world: World, ean: str, who: str | None, **extra: Any) -> Any:
    return world.get(
        READINGS.format(ean), who, **{"from": "2025-07-01", "to": "2025-08-01"}, **extra
    )


def test_a_missing_bad_or_revoked_key_is_401(world: World) -> None:
    missing = july(world, EANS["normal"], None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert rules_of(missing) == ["API-auth.missing"]
    world.keys["forged"] = world.keys["S1"][:-2] + "xx"
    assert rules_of(july(world, EANS["normal"], "forged")) == ["API-auth.invalid"]
    assert july(world, EANS["normal"], "S1").status_code == 200
    register = open_register(world.db_url)
    try:
        with register.session() as s:
            s1 = next(p for p in s.api_parties() if p.code and p.role == "supplier")
            s.revoke_api_party(s1.id, datetime.now().astimezone())
    finally:
        register.dispose()
    revoked = july(world, EANS["normal"], "S1")
    assert (revoked.status_code, rules_of(revoked)) == (401, ["API-auth.revoked"])


def test_a_supplier_reads_its_own_connection_during_its_contract(world: World) -> None:
    answer = july(world, EANS["normal"], "S1")
    assert answer.status_code == 200
    body = answer.json()
    assert body["purpose"] == "supplier_daily"
    assert {r["ean"] for r in body["readings"]} == {EANS["normal"]}
    ats = [datetime.fromisoformat(r["at"]) for r in body["readings"]]
    assert ats == [local_midnight_utc(JULY + timedelta(days=i)) for i in range(31)]
    assert "connection" not in body["readings"][0]
    last = records(world.db_url)[-2:]
    assert [(r.entry.event, r.entry.outcome) for r in last] == [
        ("decision", "granted"),
        ("read", "read"),
    ]
    assert last[0].seq == body["audit_seq"]


def test_a_supplier_is_refused_another_suppliers_connection_and_it_is_audited(
    world: World,
) -> None:
    answer = july(world, EANS["normal"], "S2")
    assert answer.status_code == 403
    assert rules_of(answer) == ["PRV-1.supplier_scope"]
    assert answer.json()["error"]["rule"] == "PRV-1.supplier_scope"
    last = records(world.db_url)[-1]
    assert (last.entry.outcome, last.entry.rules) == ("refused", ("PRV-1.supplier_scope",))
    assert last.entry.party == "8710000000024"


def test_a_supplier_gets_only_the_days_of_its_contract(world: World) -> None:
    """`switched` goes from S1 to S2 on 5 July: a July read gives S1 the days of its
    contract and the final reading at the switch day's midnight, which belongs to both
    suppliers (MKT-5), and cuts the rest (PRV-1.supplier_scope); the one-day read of
    the switch day gives it that reading too, and a read after it nothing."""
    body = july(world, EANS["switched"], "S1").json()
    ats = [datetime.fromisoformat(r["at"]) for r in body["readings"]]
    assert ats == [local_midnight_utc(JULY + timedelta(days=i)) for i in range(5)]
    assert ats[-1] == local_midnight_utc(MOVE)
    assert {c["rule"] for c in body["cuts"]} == {"PRV-1.supplier_scope"}
    assert [c["start"] for c in body["cuts"]] == [
        local_midnight_utc(MOVE + timedelta(days=1)).isoformat()
    ]
    final = world.get(
        READINGS.format(EANS["switched"]), "S1", **{"from": "2025-07-05", "to": "2025-07-06"}
    ).json()
    assert [r["at"] for r in final["readings"]] == [local_midnight_utc(MOVE).isoformat()]
    after = world.get(
        READINGS.format(EANS["switched"]), "S1", **{"from": "2025-07-06", "to": "2025-07-20"}
    )
    assert (after.status_code, rules_of(after)) == (403, ["PRV-1.supplier_scope"])


def test_a_long_read_across_a_switch_day_gives_each_supplier_the_switch_reading(
    world: World,
) -> None:
    """Both edges of a contract in one long read (issue 17, MKT-5): the leaving supplier
    S1 reads up to and including the switch-day reading, the arriving S2 from it on;
    neither gets a day outside its contract, and a read that starts on the switch day
    gives S1 exactly that one reading."""

    def days(who: str, first: str, after: str) -> list[date]:
        answer = world.get(READINGS.format(EANS["switched"]), who, **{"from": first, "to": after})
        assert answer.status_code == 200, answer.json()
        return [to_local(datetime.fromisoformat(r["at"])).date() for r in answer.json()["readings"]]

    s1 = days("S1", "2025-07-02", "2025-07-20")
    s2 = days("S2", "2025-07-02", "2025-07-20")
    assert s1 == [date(2025, 7, d) for d in range(2, 6)]
    assert s2 == [date(2025, 7, d) for d in range(5, 20)]
    assert set(s1) & set(s2) == {MOVE}
    assert days("S1", "2025-07-05", "2025-07-20") == [MOVE]
    assert days("S2", "2025-06-20", "2025-07-06") == [MOVE]
    granted = july(world, EANS["switched"], "S2").json()["granted"][EANS["switched"]]
    assert granted == [
        {"start": local_midnight_utc(MOVE).isoformat(), "end": local_midnight_utc(AUG).isoformat()}
    ]


def test_opt_out_refuses_the_supplier_with_every_broken_rule(world: World) -> None:
    answer = july(world, EANS["opted_out"], "S2")
    assert answer.status_code == 403
    assert set(rules_of(answer)) == {"PRV-3.opt_out", "PRV-1.supplier_scope"}
    assert records(world.db_url)[-1].entry.outcome == "refused"


def test_an_unknown_connection_is_404_and_audited(world: World) -> None:
    unknown = ean_from_serial("87168740", 999)
    answer = july(world, unknown, "S1")
    assert (answer.status_code, rules_of(answer)) == (404, ["PRV-1.unknown_connection"])
    assert records(world.db_url)[-1].entry.connections == (unknown,)
    assert july(world, "12345", "S1").status_code == 422


def test_parties_that_are_not_suppliers_are_refused_supplier_reads(world: World) -> None:
    for who in ("de_vries", "operator", "app"):
        answer = july(world, EANS["normal"], who)
        assert answer.status_code == 403, who
        assert "supplier_daily.party" in rules_of(answer), who
        assert set(rules_of(answer)) <= {"supplier_daily.party", "PRV-1.supplier_scope"}
    assert [r.entry.outcome for r in records(world.db_url)[-3:]] == ["refused"] * 3


def test_a_supplier_gets_monthly_readings_only_where_stored(world: World) -> None:
    answer = july(world, EANS["normal"], "S1", kind="monthly")
    assert answer.status_code == 200
    assert answer.json()["purpose"] == "supplier_monthly"
    assert answer.json()["readings"] == []
    assert july(world, EANS["normal"], "S1", kind="hourly").status_code == 422


def _mine(world: World, who: str, **extra: Any) -> Any:
    return world.get("/v1/me/readings", who, **{"from": "2025-07-01", "to": "2025-08-01"}, **extra)


def test_a_customer_reads_their_own_data_as_json_and_csv(world: World) -> None:
    body = _mine(world, "de_vries").json()
    assert body["purpose"] == "customer_own"
    assert len(body["readings"]) == 31
    for asked in ({"format": "csv"}, {}):
        headers = {"Authorization": f"Bearer {world.keys['de_vries']}"}
        if not asked:
            headers["Accept"] = "text/csv"
        answer = world.client.get(
            "/v1/me/readings",
            params={"from": "2025-07-01", "to": "2025-08-01", **asked},
            headers=headers,
        )
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert len(rows) == 31
        assert {r["ean"] for r in rows} == {EANS["normal"]}
        assert rows[0]["import_t1_wh"] == "1000000"


def test_a_customer_asking_for_another_connection_gets_404_either_way(world: World) -> None:
    """Another's connection and an unknown one answer alike (no hint that it exists),
    and the attempt is audited (PRV-1.own_data, PRV-7)."""
    unknown = ean_from_serial("87168740", 999)
    answers = [_mine(world, "de_vries", ean=e) for e in (EANS["neighbour"], unknown)]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json() == answers[1].json()
    tail = records(world.db_url)[-2:]
    assert [(r.entry.outcome, r.entry.rules) for r in tail] == [
        ("refused", ("PRV-1.own_data",))
    ] * 2
    assert tail[0].entry.connections == (EANS["neighbour"],)


def test_a_leaving_customer_reads_only_until_the_move(world: World) -> None:
    body = _mine(world, "bakker").json()
    ats = [datetime.fromisoformat(r["at"]) for r in body["readings"]]
    assert ats and max(ats) < local_midnight_utc(MOVE + timedelta(days=1))
    later = world.get("/v1/me/readings", "bakker", **{"from": "2025-07-10", "to": "2025-08-01"})
    assert (later.status_code, rules_of(later)) == (403, ["PRV-1.own_data"])


def test_only_a_customer_has_a_me(world: World) -> None:
    for path in ("/v1/me/readings", "/v1/me/audit"):
        answer = world.get(path, "S1", **{"from": "2025-07-01", "to": "2025-08-01"})
        assert (answer.status_code, rules_of(answer)) == (403, ["API-role.customer"])


def test_who_read_my_meter_shows_the_customer_their_connections_records(world: World) -> None:
    july(world, EANS["normal"], "S1")
    july(world, EANS["normal"], "S2")
    july(world, EANS["neighbour"], "S2")
    en = world.get("/v1/me/audit", "de_vries", lang="en").json()["records"]
    assert {r["ean"] for r in en} == {EANS["normal"]}
    assert [(r["party"], r["event"], r["outcome"]) for r in en] == [
        ("8710000000017", "decision", "granted"),
        ("8710000000017", "read", "read"),
        ("8710000000024", "decision", "refused"),
    ]
    nl = world.get("/v1/me/audit", "de_vries").json()["records"]
    assert [r["seq"] for r in nl] == [r["seq"] for r in en]
    assert all(a["text"] != b["text"] for a, b in zip(en, nl, strict=True))
    assert world.get("/v1/me/audit", "de_vries", lang="de").status_code == 422


def test_the_leaving_customer_does_not_see_who_read_the_new_residents_days(
    world: World,
) -> None:
    moved = EANS["moved"]
    world.get(READINGS.format(moved), "S2", **{"from": "2025-07-10", "to": "2025-07-20"})
    world.get(READINGS.format(moved), "S1", **{"from": "2025-07-01", "to": "2025-07-03"})
    seen = world.get("/v1/me/audit", "bakker").json()["records"]
    assert {r["party"] for r in seen} == {"8710000000017"}


def test_health_is_for_the_operator(world: World) -> None:
    july(world, EANS["normal"], "S1")
    body = world.get("/v1/health", "operator").json()
    assert body["status"] == "ok"
    assert body["audit_head"]["seq"] == records(world.db_url)[-1].seq
    answer = world.get("/v1/health", "S1")
    assert (answer.status_code, rules_of(answer)) == (403, ["API-role.operator"])


def test_the_openapi_document_and_the_docs_are_served(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/v1/connections/{ean}/readings",
        "/v1/me/readings",
        "/v1/me/audit",
        "/v1/health",
        "/v1/usecases/uc09",
        "/v1/oauth/authorize",
        "/v1/oauth/token",
        "/v1/oauth/revoke",
        "/v1/app/connections/{ean}/readings",
        "/v1/me/consents",
        "/v1/me/consents/{consent_id}",
        "/v1/me/activate",
        "/v1/me/remote-reading",
        "/v1/usecases/uc04/runs",
        "/v1/usecases/uc09/runs",
        "/v1/usecases/{usecase}/runs/{run_id}",
        "/v1/feed",
        "/v1/app/feed",
    }
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    readings = spec["paths"]["/v1/connections/{ean}/readings"]["get"]
    assert {"401", "403", "404"} <= set(readings["responses"])
    assert world.client.get("/docs").status_code == 200


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    first=st.dates(date(2025, 6, 20), date(2025, 8, 10)),
    days=st.integers(1, 40),
    who=st.sampled_from(["S1", "S2"]),
    name=st.sampled_from(["normal", "neighbour", "switched", "opted_out", "moved"]),
)
def test_a_supplier_never_gets_a_reading_outside_its_contract(
    world: World, first: date, days: int, who: str, name: str
) -> None:
    """Whatever the period, a supplier's answer is a refusal naming the rules or only
    readings inside the period on days it supplied (the switch or move day's final
    reading included), for a connection not opted out (PRV-1, PRV-3)."""
    after = first + timedelta(days=days)
    answer = world.get(
        READINGS.format(EANS[name]), who, **{"from": first.isoformat(), "to": after.isoformat()}
    )
    supplies = {
        ("S1", "normal"): (date(2024, 1, 1), None),
        ("S2", "neighbour"): (date(2024, 1, 1), None),
        ("S1", "switched"): (date(2024, 1, 1), MOVE),
        ("S2", "switched"): (MOVE, None),
        ("S1", "moved"): (date(2024, 1, 1), MOVE),
        ("S2", "moved"): (MOVE, None),
    }
    if answer.status_code != 200:
        assert answer.status_code == 403
        assert set(rules_of(answer)) <= {
            "PRV-1.supplier_scope",
            "PRV-3.opt_out",
            "PRV-1.future_period",
        }
        assert records(world.db_url)[-1].entry.outcome == "refused"
        return
    assert name != "opted_out"
    start, end = supplies[(who, name)]
    for row in answer.json()["readings"]:
        at = datetime.fromisoformat(row["at"])
        assert local_midnight_utc(first) <= at < local_midnight_utc(after)
        assert at >= local_midnight_utc(start)
        if end is not None:
            assert at <= local_midnight_utc(end)


def test_the_operator_runs_uc09_through_the_gate(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.keys['operator']}"}
    body = {"from": "2025-07-01", "to": "2025-08-01"}
    answer = world.client.post("/v1/usecases/uc09", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["use_case"] == "UC9"
    [outage] = result["outages"]
    assert [c["ean"] for c in outage["customers"]] == [EANS["normal"]]
    assert outage["duration_s"] == 7_200
    assert result["figures"]["customer_interruptions"] == 1
    last = records(world.db_url)
    assert any(r.entry.purpose == "UC9" and r.entry.outcome == "granted" for r in last)
    future = world.client.post(
        "/v1/usecases/uc09", json={"from": "2025-09-01", "to": "2025-09-10"}, headers=headers
    )
    assert future.status_code == 403
    assert "PRV-1.future_period" in rules_of(future)
    assert records(world.db_url)[-1].entry.outcome == "refused"
    supplier = {"Authorization": f"Bearer {world.keys['S1']}"}
    refused = world.client.post("/v1/usecases/uc09", json=body, headers=supplier)
    assert (refused.status_code, rules_of(refused)) == (403, ["API-role.operator"])


def test_a_reversed_or_future_period_is_refused_by_the_gate(world: World) -> None:
    path = READINGS.format(EANS["normal"])
    reversed_ = world.get(path, "S1", **{"from": "2025-07-10", "to": "2025-07-01"})
    assert (reversed_.status_code, rules_of(reversed_)) == (403, ["PRV-1.period"])
    future = world.get(path, "S1", **{"from": "2025-09-01", "to": "2025-09-10"})
    assert (future.status_code, rules_of(future)) == (403, ["PRV-1.future_period"])
    assert records(world.db_url)[-1].entry.outcome == "refused"
    bad_date = world.get(path, "S1", **{"from": "2025-02-30", "to": "2025-03-01"})
    assert (bad_date.status_code, rules_of(bad_date)[0]) == (422, "API-request.invalid")
