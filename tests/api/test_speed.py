"""What the API's speed-ups may not break (issue 17): a remembered key is still refused
at its next request once revoked, unknown keys are never remembered, the register's
writers queued in one process still write every audit record, in one unbroken hash
chain (PRV-7), and a read after another process's ingest sees its rows although the
server keeps the store attached between reads (MTR-1)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from meetpunt.api import app as api_app
from meetpunt.api import auth, create_app
from meetpunt.api.errors import ApiError
from meetpunt.api.readings import read_through_gate
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.store import naive_utc
from meetpunt.privacy import audit
from meetpunt.privacy.model import Party, Role
from meetpunt.register import open_register
from meetpunt.register.engine import write_transaction
from meetpunt.register.parties import ApiParties, ApiParty
from tests.api.conftest import NOW, World, scenario
from tests.scenarios.test_scenarios import EANS, S1

HOUR = timedelta(hours=1)
ROOT = Path(__file__).resolve().parents[2]


def party(world: World, name: str) -> ApiParty:
    gate = world.client.app.state.gate  # type: ignore[attr-defined]
    return auth.party_of_key(gate, world.keys[name])


def test_a_remembered_key_is_used_without_looking_it_up_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = party(world, "S1")

    def no_lookup(*_: Any) -> None:
        raise AssertionError("looked up again")

    monkeypatch.setattr(ApiParties, "api_party_by_key", no_lookup)
    assert party(world, "S1") == first
    monkeypatch.setattr(auth, "KEY_CACHE_S", -1.0)
    with pytest.raises(AssertionError, match="looked up again"):
        party(world, "S1")


def test_a_remembered_key_revoked_elsewhere_is_refused_at_its_next_request(
    world: World,
) -> None:
    assert party(world, "de_vries").eans == (EANS["normal"],)
    register = open_register(world.db_url)
    try:
        with register.session() as s:
            mine = next(p for p in s.api_parties() if p.eans == (EANS["normal"],))
            s.revoke_api_party(mine.id, datetime.now(UTC))
    finally:
        register.dispose()
    with pytest.raises(ApiError) as refused:
        party(world, "de_vries")
    assert refused.value.findings[0].rule == "API-auth.revoked"


def test_unknown_keys_are_never_remembered(world: World) -> None:
    gate = world.client.app.state.gate  # type: ignore[attr-defined]
    party(world, "S1")
    before = dict(auth._KEYS[gate.register.engine])
    for i in range(50):
        with pytest.raises(ApiError) as refused:
            auth.party_of_key(gate, f"mp_unknown{i}")
        assert refused.value.findings[0].rule == "API-auth.invalid"
    assert auth._KEYS[gate.register.engine] == before


def test_writers_queued_in_one_process_lose_no_audit_record(world: World) -> None:
    """Twenty threads read at once (a decision and a read record each, every one a
    write transaction on the register); every record is there, in one chain."""
    gate = world.client.app.state.gate  # type: ignore[attr-defined]
    with gate.register.session() as s:
        before = audit.count(s.db)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            read_through_gate(
                gate,
                Party(S1, Role.SUPPLIER),
                "supplier_daily",
                [EANS["normal"]],
                "daily_readings",
                date(2025, 7, 1),
                date(2025, 7, 8),
                "test",
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with gate.register.session() as s:
        assert audit.count(s.db) == before + 40
        assert audit.verify(s.db) == []


def test_a_granted_read_gives_what_the_joined_ordered_read_gives(world: World) -> None:
    """``read_connections`` looks the quality codes up and sorts in Arrow instead of a
    join and an ORDER BY in DuckDB (issue 17): the same columns, types, rows and order
    as :meth:`MeterStore.read` with the same filter, for one connection, several, a
    stretch with no rows and every kind the scenario store holds."""
    store = world.client.app.state.gate.store  # type: ignore[attr-defined]
    ids = list(range(1, 12))
    start, end = local_midnight_utc(date(2025, 7, 3)), local_midnight_utc(date(2025, 7, 20))
    for kind in ("daily_readings", "power_failure_log", "quarter_hours"):
        time = KINDS[kind].time
        for some, a, b in ((ids, start, end), (ids[:1], start, end), (ids, end, end + HOUR)):
            marks = ", ".join("?" for _ in some)
            where = f'connection IN ({marks}) AND "{time}" >= ? AND "{time}" < ?'
            joined = store.read(kind, where, [*some, naive_utc(a), naive_utc(b)])
            fast = store.read_connections(kind, reversed(some), a, b)
            assert fast.schema == joined.schema
            assert fast.equals(joined), kind
    assert store.read_connections("daily_readings", ids, start, end).num_rows > 1


WRITER = """
import sys
from datetime import UTC, datetime
from meetpunt.privacy import audit
from meetpunt.register import open_register
from meetpunt.register.engine import write_transaction
register = open_register(sys.argv[1])
entry = audit.AuditEntry(event="read", party="other-process", purpose="test", outcome="read")
for _ in range(int(sys.argv[2])):
    with write_transaction(register.engine) as db:
        audit.append(db, entry, datetime.now(UTC))
register.dispose()
"""


def test_writers_of_two_processes_queue_on_the_file_lock_and_keep_one_chain(
    tmp_path: Path,
) -> None:
    """``serve --workers N``: the register's writers of several processes queue on the
    file lock beside an embedded register (woken when it is free, not SQLite's sleeping
    busy handler) and every record is kept, in one unbroken chain (PRV-7)."""
    url = f"sqlite:///{tmp_path / 'register.sqlite'}"
    register = open_register(url)
    other = subprocess.Popen([sys.executable, "-c", WRITER, url, "40"])
    entry = audit.AuditEntry(event="read", party="this-process", purpose="test", outcome="read")
    try:
        for _ in range(40):
            with write_transaction(register.engine) as db:
                audit.append(db, entry, datetime.now(UTC))
        assert other.wait(timeout=120) == 0
        with register.session() as s:
            assert audit.count(s.db) == 80
            assert audit.verify(s.db) == []
        assert (tmp_path / "register.sqlite-writer").exists()
    finally:
        register.dispose()


INGEST_ONE = """
import sys
from datetime import date
from meetpunt import rulebook
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.store import open_store
from meetpunt.register import open_register
from tests.api.conftest import NOW, source
from tests.meterdata.conftest import reading
db, path, ean = sys.argv[1:4]
register = open_register(db)
with register.session() as s:
    index = ConnectionIndex(s.meter_index(), 230.0)
register.dispose()
store = open_store(path, wait_s=60)
row = reading(ean, local_midnight_utc(date(2025, 8, 2)), 1_160_000)
Ingestor(store, index, rulebook.vee_rules(), now=NOW).ingest(source("daily_readings", [row]))
store.close()
"""
"""Ingests one daily reading of argv[3] on 2 August 2025 into the store at argv[2]."""


def test_a_read_after_an_ingest_in_another_process_sees_its_rows(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server keeps the store attached between reads (MTR-1; here for an hour, so
    only the ingester's announcement can let it in); an ingest in another process gets
    in, and the server's next read sees the reading it committed."""
    monkeypatch.setattr(api_app, "SERVE_KEEP_S", 3600.0)
    store, keys = scenario(db_url, tmp_path)
    ean = EANS["normal"]
    august = [local_midnight_utc(date(2025, 8, d)).isoformat() for d in (1, 2)]
    app = create_app(db_url, store, clock=lambda: NOW, rate_limit=None)
    with TestClient(app) as client:

        def read() -> list[str]:
            answer = client.get(
                f"/v1/connections/{ean}/readings",
                params={"from": "2025-08-01", "to": "2025-08-03"},
                headers={"Authorization": f"Bearer {keys['S1']}"},
            )
            assert answer.status_code == 200, answer.json()
            return [r["at"] for r in answer.json()["readings"]]

        assert read() == august[:1]
        ingest = subprocess.run(
            [sys.executable, "-c", INGEST_ONE, db_url, str(store), ean],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert ingest.returncode == 0, ingest.stderr
        assert read() == august
