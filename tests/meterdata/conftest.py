"""Fixtures of the meter-data hub tests: a small register, a store, an ingestor."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from meetpunt import rulebook
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.ean import ean_from_serial
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import MeterStore, open_store
from meetpunt.register import Register, open_register
from tests.meterdata.private_broker import PrivateBroker
from tests.unit.domain.factories import attributes, contract

E3X25 = ean_from_serial("87168740", 1)
E1X25 = ean_from_serial("87168740", 2)
E_CHANGES = ean_from_serial("87168740", 3)
"""1x35 until 2025-06-01, 3x25 from then on."""
GAS = ean_from_serial("87168741", 4)
UNKNOWN = ean_from_serial("87168740", 99)
CONTRACT_START = date(2025, 1, 1)
NOW = datetime(2025, 12, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def build_register(url: str) -> Register:
    """Three electricity connections and a gas connection; a contract on E3X25."""
    register = open_register(url)
    with register.session() as s:
        s.record_connection(E3X25, Commodity.ELECTRICITY, attributes("3x25"), date(2020, 1, 1))
        s.record_connection(E1X25, Commodity.ELECTRICITY, attributes("1x25"), date(2020, 1, 1))
        s.record_connection(E_CHANGES, Commodity.ELECTRICITY, attributes("1x35"), date(2020, 1, 1))
        s.record_connection(E_CHANGES, Commodity.ELECTRICITY, attributes("3x25"), date(2025, 6, 1))
        s.record_connection(GAS, Commodity.GAS, attributes("G4", Commodity.GAS), date(2020, 1, 1))
        s.add_contract(contract(E3X25, CONTRACT_START))
    return register


@dataclass
class Hub:
    """A register, a store and an ingestor over them."""

    register: Register
    store: MeterStore
    ingestor: Ingestor
    ids: dict[str, int]

    def source(self, kind: str, rows: Sequence[dict[str, Any]], name: str = "") -> SourceData:
        """A source of ``kind`` from row dicts (times as aware datetimes)."""
        schema = KINDS[kind].source_schema()
        columns: dict[str, list[Any]] = {f.name: [] for f in schema}
        for i, row in enumerate(rows, start=1):
            for f in schema:
                columns[f.name].append(row.get(f.name, i if f.name == "record" else None))
        table = pa.Table.from_pydict(columns, schema=schema)
        label = name or f"test-{kind}-{id(rows)}"
        return SourceData(label, "", {kind: table})

    def ingest(self, kind: str, rows: Sequence[dict[str, Any]], name: str = "") -> Any:
        return self.ingestor.ingest(self.source(kind, rows, name))

    def values(self, kind: str, *columns: str) -> list[tuple[Any, ...]]:
        """Stored rows of ``kind`` as tuples of ``columns``, in key order."""
        table = self.store.read(kind)
        return list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    register = build_register(f"sqlite:///{tmp_path / 'register.sqlite'}")
    rules = rulebook.vee_rules()
    with register.session() as s:
        entries = s.meter_index()
    index = ConnectionIndex(entries, rules.phase_voltage_v)
    store = open_store(tmp_path / "meterdata.duckdb")
    ids = {e.ean: e.connection_id for e in entries}
    yield Hub(register, store, Ingestor(store, index, rules, now=NOW), ids)
    store.close()
    register.dispose()


def quarters(ean: str, first: datetime, count: int, wh: int = 100) -> list[dict[str, Any]]:
    """``count`` consecutive quarter-hour rows of ``wh`` import from ``first``."""
    return [
        {"ean": ean, "start": first + timedelta(minutes=15 * i), "import_wh": wh, "export_wh": 0}
        for i in range(count)
    ]


def reading(
    ean: str, at: datetime, t1: int, t2: int = 0, e1: int | None = 0, e2: int | None = 0
) -> dict[str, Any]:
    """A register reading row (daily/monthly/manual): 1.8.1, 1.8.2, 2.8.1, 2.8.2 in Wh."""
    return {
        "ean": ean,
        "at": at,
        "import_t1_wh": t1,
        "import_t2_wh": t2,
        "export_t1_wh": e1,
        "export_t2_wh": e2,
    }


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    """A private Mosquitto on a free loopback port with meetpunt's configuration
    (persistence off: each test starts clean); its port."""
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("needs the mosquitto program")
    with PrivateBroker(tmp_path, {"persistence": "false"}) as running:
        yield running.port
