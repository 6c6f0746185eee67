"""``meetpunt serve`` as a real process on a free port, called over HTTP (issue 17)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from meetpunt.cli import app
from tests.api.conftest import scenario
from tests.scenarios.test_scenarios import EANS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_answers_over_http(db_url: str, tmp_path: Path) -> None:
    """On the embedded register and on PostgreSQL (``--db postgresql://...``)."""
    db = db_url
    store, keys = scenario(db, tmp_path)
    port = free_port()
    env = {**os.environ, "MEETPUNT_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "meetpunt", "serve", "--port", str(port)]
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
                spec = httpx.get(f"{base}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.2)
        assert "/v1/connections/{ean}/readings" in spec.json()["paths"]
        path = f"{base}/v1/connections/{EANS['normal']}/readings"
        july = {"from": "2025-07-01", "to": "2025-08-01"}
        answer = httpx.get(path, params=july, headers={"Authorization": f"Bearer {keys['S1']}"})
        assert answer.status_code == 200
        assert len(answer.json()["readings"]) == 31
        assert httpx.get(path, params=july).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_refuses_to_start_without_a_store(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'register.sqlite'}"
    result = CliRunner().invoke(
        app, ["serve", "--db", db, "--store", str(tmp_path / "missing.duckdb")]
    )
    assert result.exit_code == 2
    assert "MTR-1" in result.output
