"""The register's server engine: a pooled connection that sat idle is checked before
use, so a connection the server dropped (a restart, a network cut) is replaced instead
of failing the next transaction; a busy caller pays no ping."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from meetpunt.register import engine as register_engine
from meetpunt.register import open_register
from tests.conftest import PG_ADMIN

pytestmark = pytest.mark.postgres


def _cut_then_use(url: str, idle_ping: float, monkeypatch: pytest.MonkeyPatch) -> int:
    """Open a register, use one pooled connection, have the server drop it, use the
    register again; the backend pid of the second use."""
    monkeypatch.setattr(register_engine, "IDLE_PING_SECONDS", idle_ping)
    register = open_register(url)
    try:
        with register.engine.connect() as conn:
            first = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [first])
        with register.engine.connect() as conn:
            second = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        assert second != first
        return second
    finally:
        register.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cut_then_use(postgres_database, 0.0, monkeypatch) > 0


def test_without_the_idle_check_the_dropped_connection_fails_its_transaction(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above is what saves the transaction: with a window longer than the
    pause, the first use after the cut fails (and the pool then starts afresh)."""
    with pytest.raises(OperationalError):
        _cut_then_use(postgres_database, 3600.0, monkeypatch)
