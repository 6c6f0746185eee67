"""The operator's use-case runs over the API (issue 17): UC4 and UC9 run through the
application layer, kept in the register, fetched by id; other roles, future periods
and unknown runs refused with their rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from meetpunt.api import create_app
from tests.api.conftest import NOW, World
from tests.api.test_api import rules_of

JULY = {"from": "2025-07-01", "to": "2025-08-01"}


def post(world: World, path: str, who: str, body: dict[str, Any]) -> Any:
    return world.client.post(
        path, json=body, headers={"Authorization": f"Bearer {world.keys[who]}"}
    )


def test_a_uc09_run_is_the_cli_document_kept_and_fetched_by_id(
    world: World, tmp_path: Path
) -> None:
    ran = post(world, "/v1/usecases/uc09/runs", "operator", JULY)
    assert ran.status_code == 201, ran.text
    body = ran.json()
    assert ran.headers["location"] == f"/v1/usecases/uc09/runs/{body['id']}"
    direct = post(world, "/v1/usecases/uc09", "operator", JULY).json()
    assert {k: v for k, v in body["result"].items() if k != "audit_seq"} == {
        k: v for k, v in direct.items() if k != "audit_seq"
    }
    assert body["result"]["outages"], "the 10 July outage of 'normal' is registered"
    fetched = world.get(ran.headers["location"], "operator")
    assert fetched.status_code == 200
    assert fetched.json() == body
    other = world.get(f"/v1/usecases/uc04/runs/{body['id']}", "operator")
    assert (other.status_code, rules_of(other)) == (404, ["API-run.unknown"])


def test_a_uc04_run_is_kept_across_server_processes(world: World, tmp_path: Path) -> None:
    ran = post(world, "/v1/usecases/uc04/runs", "operator", {**JULY, "trigger": "storm"})
    assert ran.status_code == 201, ran.text
    body = ran.json()
    assert {"payments", "reviews", "outages"} <= set(body["result"])
    assert body["result"]["trigger"] == "storm"
    assert body["request"] == {**JULY, "trigger": "storm"}
    store = tmp_path / "meterdata.duckdb"  # the world's store (same tmp_path)
    with TestClient(create_app(world.db_url, store, clock=lambda: NOW)) as other:
        again = other.get(
            f"/v1/usecases/uc04/runs/{body['id']}",
            headers={"Authorization": f"Bearer {world.keys['operator']}"},
        )
    assert again.status_code == 200
    assert again.json() == body


def test_runs_are_the_operators_and_refused_with_their_rules(world: World) -> None:
    for who in ("S1", "de_vries", "app"):
        refused = post(world, "/v1/usecases/uc04/runs", who, JULY)
        assert (refused.status_code, rules_of(refused)) == (403, ["API-role.operator"])
        fetch = world.get("/v1/usecases/uc09/runs/1", who)
        assert rules_of(fetch) == ["API-role.operator"]
    future = post(
        world, "/v1/usecases/uc09/runs", "operator", {"from": "2025-09-01", "to": "2025-09-10"}
    )
    assert future.status_code == 403
    assert "PRV-1.future_period" in rules_of(future)
    backwards = post(
        world, "/v1/usecases/uc04/runs", "operator", {"from": "2025-08-01", "to": "2025-07-01"}
    )
    assert (backwards.status_code, rules_of(backwards)) == (403, ["PRV-1.period"])
    unknown = world.get("/v1/usecases/uc09/runs/1", "operator")  # refused runs are not kept
    assert (unknown.status_code, rules_of(unknown)) == (404, ["API-run.unknown"])
    assert world.get("/v1/usecases/uc07/runs/1", "operator").status_code == 422
