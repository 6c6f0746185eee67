"""``meetpunt serve`` as a real process on a free port, called over HTTP (issue 17)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from typer.testing import CliRunner

from meetpunt.cli import app
from tests.api.conftest import APP_REDIRECT, scenario
from tests.api.test_oauth import pkce
from tests.scenarios.test_scenarios import EANS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(
    db: str, store: Path, home: Path, *extra: str, env_extra: dict[str, str] | None = None
) -> Iterator[str]:
    """``meetpunt serve`` on a free port of the loopback until the block ends; its URL."""
    port = free_port()
    env = {**os.environ, "MEETPUNT_HOME": str(home), **(env_extra or {})}
    command = [sys.executable, "-m", "meetpunt", "serve", "--port", str(port), *extra]
    server = subprocess.Popen(
        [*command, "--db", db, "--store", str(store)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_answers_over_http(db_url: str, tmp_path: Path) -> None:
    """On the embedded register and on PostgreSQL (``--db postgresql://...``)."""
    store, keys = scenario(db_url, tmp_path)
    with serving(db_url, store, tmp_path / "home") as base:
        spec = httpx.get(f"{base}/openapi.json")
        assert "/v1/connections/{ean}/readings" in spec.json()["paths"]
        path = f"{base}/v1/connections/{EANS['normal']}/readings"
        july = {"from": "2025-07-01", "to": "2025-08-01"}
        answer = httpx.get(path, params=july, headers={"Authorization": f"Bearer {keys['S1']}"})
        assert answer.status_code == 200
        assert len(answer.json()["readings"]) == 31
        assert httpx.get(path, params=july).status_code == 401


def approved_code(web: httpx.Client, asked: dict[str, str], key: str) -> str:
    """The customer approves on the consent form; the code from the redirect."""
    answer = web.post("/v1/oauth/authorize", data={**asked, "decision": "approve", "api_key": key})
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


def test_the_oauth_flow_over_real_http(db_url: str, tmp_path: Path) -> None:
    """Authorize -> consent -> token -> read -> revoke -> 403 against the running server
    on the wall clock (issue 17, PRV-4); a wrong redirect URI, a missing verifier and a
    replayed code are refused on the way."""
    store, keys = scenario(db_url, tmp_path)
    listed = CliRunner().invoke(app, ["party", "list", "--db", db_url, "--json"])
    client_id = str(next(p["id"] for p in json.loads(listed.stdout) if p["role"] == "app"))
    verifier, challenge = pkce()
    asked = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": APP_REDIRECT,
        "scope": "daily history:24",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    secret = (client_id, keys["app"])
    july = {"from": "2025-07-01", "to": "2025-08-01"}
    with serving(db_url, store, tmp_path / "home") as base, httpx.Client(base_url=base) as web:
        wrong = web.get("/v1/oauth/authorize", params={**asked, "redirect_uri": APP_REDIRECT + "x"})
        assert wrong.status_code == 400 and "location" not in wrong.headers
        assert "dagstanden" in web.get("/v1/oauth/authorize", params=asked).text
        code = approved_code(web, asked, keys["de_vries"])
        exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT}
        missing = web.post("/v1/oauth/token", data=exchange, auth=secret)
        assert missing.json()["error"] == "invalid_request"
        code = approved_code(web, asked, keys["de_vries"])
        exchange = {**exchange, "code": code, "code_verifier": verifier}
        token = web.post("/v1/oauth/token", data=exchange, auth=secret)
        assert token.status_code == 200, token.text
        replay = web.post("/v1/oauth/token", data=exchange, auth=secret)
        assert replay.json()["error"] == "invalid_grant"
        code = approved_code(web, asked, keys["de_vries"])
        token = web.post("/v1/oauth/token", data={**exchange, "code": code}, auth=secret)
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        path = f"/v1/app/connections/{EANS['normal']}/readings"
        read = web.get(path, params=july, headers=bearer)
        assert read.status_code == 200, read.text
        assert len(read.json()["readings"]) == 31
        customer = {"Authorization": f"Bearer {keys['de_vries']}"}
        for given in web.get("/v1/me/consents", headers=customer).json()["consents"]:
            if given["state"] == "given":
                assert web.delete(f"/v1/me/consents/{given['id']}", headers=customer).is_success
        refused = web.get(path, params=july, headers=bearer)
        assert refused.status_code == 403
        assert refused.json()["error"]["rule"] == "PRV-4.consent"


def test_serve_refuses_to_start_without_a_store(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'register.sqlite'}"
    result = CliRunner().invoke(
        app, ["serve", "--db", db, "--store", str(tmp_path / "missing.duckdb")]
    )
    assert result.exit_code == 2
    assert "MTR-1" in result.output


def test_serve_with_two_workers_shares_one_rate_limit(tmp_path: Path) -> None:
    """``serve --workers 2``: requests on new connections go to either process, and the
    two together allow the burst once, then 429 (issue 17); reads still answer."""
    db = f"sqlite:///{tmp_path / 'register.sqlite'}"
    store, keys = scenario(db, tmp_path)
    limit = {"MEETPUNT_RATE_LIMIT": "0.01,6"}
    with serving(db, store, tmp_path / "home", "--workers", "2", env_extra=limit) as base:
        path = f"{base}/v1/connections/{EANS['normal']}/readings"
        july = {"from": "2025-07-01", "to": "2025-08-01"}
        auth = {"Authorization": f"Bearer {keys['S1']}"}
        answers = []
        for _ in range(10):
            with httpx.Client(timeout=30) as fresh:  # a new connection each time
                answers.append(fresh.get(path, params=july, headers=auth).status_code)
    assert answers == [200] * 6 + [429] * 4
    assert (tmp_path / "register.sqlite-ratelimit").exists()
