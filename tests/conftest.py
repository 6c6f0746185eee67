"""Shared fixtures: the register on SQLite and on the real PostgreSQL server.

Every test that takes ``register`` (or ``db_url``) runs twice: once on a fresh SQLite
file and once on a throw-away PostgreSQL database created for this run on
127.0.0.1:5432 and dropped at the end. Without the server the PostgreSQL runs fail,
unless MEETPUNT_SKIP_POSTGRES=1 says to skip them.

`make test` runs the suite on every core with pytest-xdist (``--dist loadgroup``); the
hooks below (with tests/xdist_plan.py) keep each module on one worker, so a module's
fixtures are built once, and each seed's session twin (tests/usecases/conftest.py) too,
and hand the expensive groups out first so the workers finish together.
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
from tests import xdist_plan

PG_ADMIN = os.environ.get("MEETPUNT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadgroup`` with the groups of tests/xdist_plan.py: a module, or a seed's
    session ``twin``, runs whole on one worker, the expensive groups first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return xdist_plan.scheduler(config, log)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a use-case test whose id does not say which seed's twin it takes (its group
    would be wrong, xdist_plan.misgrouped); on an xdist worker with loadgroup, once pytest
    has ordered the tests, put the groups in order of cost (xdist_plan.by_cost): the
    controller hands them out in the order the workers collected them."""
    wrong = xdist_plan.misgrouped(
        (
            item.nodeid,
            getattr(item, "fixturenames", ()),
            item.callspec.params if hasattr(item, "callspec") else {},
        )
        for item in items
    )
    if wrong:
        raise pytest.UsageError(
            "a use-case test taking the session twin must name its seed in its id "
            f"(ids=['seed1']), one not taking it must not: {wrong}"
        )
    if getattr(config.option, "loadgroup", False):
        items[:] = xdist_plan.by_cost(items, lambda item: xdist_plan.group_of(item.nodeid))


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
    # DELETE and a sequence restart, not TRUNCATE: each TRUNCATE gives every table new
    # files, and the ~25,000 files of a run made the session's DROP DATABASE wait ~40 s
    # for a checkpoint at the end of every run
    with register.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))
        sequences = conn.execute(
            text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
        ).scalars()
        for sequence in list(sequences):
            conn.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
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
