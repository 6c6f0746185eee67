"""The API's test world: the scenario register of tests/scenarios (README.md there),
daily readings for July 2025 in a store, one API party per role, and a TestClient
over ``create_app`` on each register engine (issue 17)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from meetpunt import rulebook
from meetpunt.api import create_app
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import open_store
from meetpunt.register import open_register
from meetpunt.register.parties import ApiRole
from tests.meterdata.conftest import reading
from tests.scenarios.test_scenarios import EANS, S1, S2, build

JULY = date(2025, 7, 1)
DAYS = 31
APP_REDIRECT = "https://app.example/callback"
"""The app's one registered OAuth redirect URI (PRV-4)."""
NOW = datetime(2025, 8, 15, 12, tzinfo=UTC)
"""The gate's clock: after July, so July is not a future period (PRV-1.future_period)."""


def source(kind: str, rows: list[dict[str, Any]]) -> SourceData:
    """``rows`` as one source of ``kind`` in the readers' shape."""
    schema = pa.schema([f for f in KINDS[kind].source_schema() if f.name != "record"])
    table = pa.Table.from_pydict({f.name: [r.get(f.name) for r in rows] for f in schema}, schema)
    return SourceData(f"{kind}-{id(rows)}", "", {kind: table})


def july_readings(ean: str) -> list[dict[str, Any]]:
    """A daily reading at every local midnight of July and 1 August, 5 kWh a day."""
    return [
        reading(ean, local_midnight_utc(JULY + timedelta(days=i)), 1_000_000 + 5_000 * i)
        for i in range(DAYS + 1)
    ]


OUTAGE = {"ean": EANS["normal"], "end": datetime(2025, 7, 10, 12, tzinfo=UTC), "duration_s": 7_200}
"""A two-hour power failure of ``normal`` on 10 July (UC9 registers it)."""


@dataclass
class World:
    """A running API over the scenario register and its keys, by name."""

    client: TestClient
    db_url: str
    keys: dict[str, str]

    def get(self, path: str, who: str | None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return self.client.get(path, params=params, headers=headers)


def add_parties(db_url: str, now: datetime) -> dict[str, str]:
    """One party per role: suppliers S1 and S2, the customers of ``normal`` and
    ``moved`` (its leaving resident), an operator and an app; their keys by name."""
    register = open_register(db_url)
    keys: dict[str, str] = {}
    try:
        with register.session() as s:
            for name, role, kw in (
                ("S1", ApiRole.SUPPLIER, {"code": S1}),
                ("S2", ApiRole.SUPPLIER, {"code": S2}),
                ("de_vries", ApiRole.CUSTOMER, {"eans": [EANS["normal"]]}),
                ("bakker", ApiRole.CUSTOMER, {"eans": [EANS["moved"]], "holder": "P. Bakker"}),
                ("operator", ApiRole.OPERATOR, {}),
                ("app", ApiRole.APP, {"redirect_uris": [APP_REDIRECT]}),
            ):
                keys[name] = s.add_api_party(role, now, **kw)[1]
    finally:
        register.dispose()
    return keys


def make_store(db_url: str, path: Path) -> None:
    """The store at ``path`` with July's daily readings of every scenario connection."""
    register = open_register(db_url)
    try:
        with register.session() as s:
            index = ConnectionIndex(s.meter_index(), 230.0)
        store = open_store(path)
        try:
            ingestor = Ingestor(store, index, rulebook.vee_rules(), now=NOW)
            rows = [row for ean in EANS.values() for row in july_readings(ean)]
            ingestor.ingest(source("daily_readings", rows))
            ingestor.ingest(source("power_failure_log", [OUTAGE]))
        finally:
            store.close()
    finally:
        register.dispose()


def scenario(db_url: str, folder: Path) -> tuple[Path, dict[str, str]]:
    """The scenario register at ``db_url`` with its parties, and a store in ``folder``
    with July's readings: the store's path and the parties' keys."""
    register = open_register(db_url)
    try:
        build(register)
    finally:
        register.dispose()
    store = folder / "meterdata.duckdb"
    make_store(db_url, store)
    return store, add_parties(db_url, NOW)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """The API over a fresh scenario register (SQLite and PostgreSQL) and store, without
    a rate limit (test_limits.py tests it), so many requests with one key pass."""
    store, keys = scenario(db_url, tmp_path)
    with TestClient(create_app(db_url, store, clock=lambda: NOW, rate_limit=None)) as client:
        yield World(client, db_url, keys)
