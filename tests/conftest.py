"""Shared fixtures: the register on SQLite and on the real PostgreSQL server.

Every test that takes ``register`` (or ``db_url``) runs twice: once on a fresh SQLite
file and once on a throw-away PostgreSQL database created for this run on
127.0.0.1:5432 and dropped at the end. Without the server the PostgreSQL runs fail,
unless MEETPUNT_SKIP_POSTGRES=1 says to skip them.

`make test` runs the suite on every core with pytest-xdist (``--dist loadgroup``); the
hook below keeps each module on one worker, so a module's fixtures are built once, and
keeps the use cases' session twins (tests/usecases/conftest.py) on one worker too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from meetpunt.register import Register, open_register
from meetpunt.register.schema import metadata

PG_ADMIN = os.environ.get("MEETPUNT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
USECASE_TWINS = Path(__file__).parent / "usecases"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each test its xdist group: its module, or one group for every test that takes
    the use cases' session-scoped ``twin`` (built once per worker that needs it, ~2 min).
    Without pytest-xdist (a venv from before it) the tests run as they are."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        shares_twin = item.path.is_relative_to(USECASE_TWINS) and "twin" in getattr(
            item, "fixturenames", ()
        )
        group = "usecase-twins" if shares_twin else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's real meetpunt home and settings."""
    monkeypatch.setenv("MEETPUNT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEETPUNT_DATABASE_URL", raising=False)
    monkeypatch.delenv("MEETPUNT_RULES_DIR", raising=False)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test run (created, then dropped)."""
    if os.environ.get("MEETPUNT_SKIP_POSTGRES") == "1":
        pytest.skip("MEETPUNT_SKIP_POSTGRES=1: PostgreSQL runs skipped")
    name = f"meetpunt_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL not reachable at {PG_ADMIN} ({exc}); start it "
            "(scripts/ensure-services) or set MEETPUNT_SKIP_POSTGRES=1"
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    open_register(url).dispose()  # migrate once
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty register database URL on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'register.sqlite'}"
    url: str = request.getfixturevalue("postgres_database")
    register = open_register(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with register.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    register.dispose()
    return url


@pytest.fixture
def register(db_url: str) -> Iterator[Register]:
    """An open, migrated, empty register on each engine."""
    opened = open_register(db_url)
    try:
        yield opened
    finally:
        opened.dispose()
