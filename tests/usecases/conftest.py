"""Twins shared by the use-case tests: generated once per seed for the whole session,
with the register imported, the meter data ingested and UC9 run through the gate.

Under xdist each seed's tests are one group (tests/xdist_plan.py), so a seed's twin is
built once in a run, on the worker that runs them. A test that writes (the CLI tests:
every run appends to the audit log) takes ``fresh_copy`` of the twin as it was built."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from meetpunt.app.hub import hub_store, ingest_paths
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.privacy import audit
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Period, Role
from meetpunt.register import Register, open_register
from meetpunt.register.csvio import import_file
from meetpunt.twin.generate import TwinSettings, generate
from meetpunt.usecases.uc09_interruption_registration import Uc09Result, register_interruptions

START = date(2025, 6, 2)
DAYS = 10
CONNECTIONS = 200
SEEDS = (1, 2, 4, 5)
OPERATOR = Party("8716874000009", Role.GRID_OPERATOR, "Meetnet")
AT = datetime(2025, 6, 20, 9, 0, tzinfo=UTC)
TRIGGER = "outage incident: interruption registration for Nestor"


def period() -> Period:
    return Period(local_midnight_utc(START), local_midnight_utc(START + timedelta(days=DAYS)))


@dataclass
class Twin:
    """A generated twin with its register, store, the UC9 result and the audit log."""

    seed: int
    folder: Path
    db_url: str
    store_path: Path
    result: Uc09Result
    audit_records: list[audit.AuditRecord]
    register: Register


def build_twin(folder: Path, seed: int, connections: int = CONNECTIONS, days: int = DAYS) -> Twin:
    generate(TwinSettings(connections, days, START, seed), folder / "twin")
    db_url = f"sqlite:///{folder / 'register.sqlite'}"
    register = open_register(db_url)
    for name in ("connections", "secondary_allocation_points", "contracts"):
        with register.session() as session:
            import_file(session, folder / "twin" / "register" / f"{name}.csv")
    store_path = folder / "meterdata.duckdb"
    with hub_store(store_path) as store:
        ingest_paths(store, register, [folder / "twin" / "meterdata"])
        gate = Gate(register, store, load_catalogue(), clock=lambda: AT)
        result = register_interruptions(gate, OPERATOR, period(), AT, TRIGGER)
    with register.session() as session:
        records = audit.records(session.db)
    return Twin(seed, folder, db_url, store_path, result, records, register)


BUILT = "as_built"
"""The folder, inside a session twin's, holding its register and store as built."""


def _copy_databases(source: Path, target: Path) -> None:
    """The register and the meter-data store in ``source``, each with its write-ahead
    log, copied to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("register.sqlite", "meterdata.duckdb"):
        for part in source.glob(name + "*"):
            shutil.copy(part, target / part.name)


def fresh_copy(twin: Twin, folder: Path) -> Twin:
    """The session ``twin`` as it was built (other tests' reads not in its audit log),
    with its own register and store in ``folder``: the test may write to them. The
    generated files (truth, meter data) stay the session twin's; read them only."""
    _copy_databases(twin.folder / BUILT, folder)
    db_url = f"sqlite:///{folder / 'register.sqlite'}"
    return replace(
        twin, db_url=db_url, store_path=folder / "meterdata.duckdb", register=open_register(db_url)
    )


@pytest.fixture(scope="session", params=SEEDS, ids=lambda s: f"seed{s}")
def twin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Twin]:
    built = build_twin(tmp_path_factory.mktemp(f"uc9_{request.param}"), request.param)
    _copy_databases(built.folder, built.folder / BUILT)
    yield built
    built.register.dispose()
