"""A small constructed world for UC10 and UC15: a register with a handful of
connections in the states the two use cases care about, and a store holding their daily
readings (ingested through the hub, as a head-end would deliver them)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from meetpunt import rulebook
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import AdminSwitch, PhysicalStatus
from meetpunt.domain.ean import ean_from_serial
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import MeterStore, open_store
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Role
from meetpunt.register import Register, open_register
from tests.unit.domain.factories import attributes, contract

GRID = Party("8716874000009", Role.GRID_OPERATOR, "Meetnet")
SUPPLIER = Party("8710000000017", Role.SUPPLIER, "Leverancier")
FIRST = date(2026, 3, 20)  # the run crosses the spring clock change (29 March 2026)
DAYS = 25
SUPPLIED = ean_from_serial("87168740", 11)
CONTRACTLESS = ean_from_serial("87168740", 12)
OOS_ON = ean_from_serial("87168740", 13)
OOS_OFF = ean_from_serial("87168740", 14)
NEW_CONTRACT = ean_from_serial("87168740", 15)
"""Contractless until a contract starts on :data:`CONTRACT_DAY` (mid-run)."""
IDLE = ean_from_serial("87168740", 16)
"""Contractless and empty: no consumption."""
CONTRACT_DAY = FIRST + timedelta(days=8)
DAILY_KWH = {SUPPLIED: 9.0, CONTRACTLESS: 7.0, OOS_ON: 3.0, OOS_OFF: 4.0, NEW_CONTRACT: 6.0}
START_KWH = {SUPPLIED: 12345.0, CONTRACTLESS: 4021.0, OOS_ON: 771.0, OOS_OFF: 3117.0,
             NEW_CONTRACT: 20517.0, IDLE: 1500.0}  # fmt: skip
NOW = local_midnight_utc(FIRST + timedelta(days=DAYS)) + timedelta(hours=12)


def build_register(url: str) -> Register:
    register = open_register(url)
    since = date(2020, 1, 1)
    with register.session() as s:
        for ean in (SUPPLIED, CONTRACTLESS, NEW_CONTRACT, IDLE):
            s.record_connection(ean, Commodity.ELECTRICITY, attributes("3x25"), since)
        out_on = replace(attributes("3x25"), status=PhysicalStatus.OUT_OF_SERVICE)
        out_off = replace(out_on, admin_switch=AdminSwitch.OFF)
        s.record_connection(OOS_ON, Commodity.ELECTRICITY, out_on, since)
        s.record_connection(OOS_OFF, Commodity.ELECTRICITY, out_off, since)
        s.add_contract(contract(SUPPLIED, date(2024, 1, 1)))
        s.add_contract(contract(CONTRACTLESS, date(2024, 1, 1), date(2025, 12, 1)))
        s.add_contract(contract(NEW_CONTRACT, date(2024, 1, 1), date(2025, 12, 1)))
        s.add_contract(contract(NEW_CONTRACT, CONTRACT_DAY, contract_holder="P. Nieuw"))
    return register


def registers_at(ean: str, at: datetime) -> tuple[float, float, float, float]:
    """The true registers (kWh) of a world meter at ``at``: T1 (night, 23-07 h UTC) and
    T2 (day) grow at its daily rate, a quarter of it by night; no export."""
    rate = DAILY_KWH.get(ean, 0.0)
    days = (at - local_midnight_utc(FIRST - timedelta(days=1))).total_seconds() / 86_400
    whole = int(days)
    part = days - whole
    night = min(part, 7 / 24) * rate * 0.25 / (7 / 24)
    day_part = max(0.0, part - 7 / 24) * rate * 0.75 / (17 / 24)
    t1 = START_KWH[ean] * 0.4 + whole * rate * 0.25 + night
    t2 = START_KWH[ean] * 0.6 + whole * rate * 0.75 + day_part
    return (t1, t2, 0.0, 0.0)


def daily_table(eans: list[str], skip: dict[str, set[date]] | None = None) -> pa.Table:
    skip = skip or {}
    schema = KINDS["daily_readings"].source_schema()
    rows: dict[str, list[object]] = {f.name: [] for f in schema}
    n = 0
    for ean in eans:
        for d in range(DAYS + 1):
            day = FIRST + timedelta(days=d)
            if day in skip.get(ean, set()):
                continue
            at = local_midnight_utc(day)
            regs = registers_at(ean, at)
            rows["record"].append(n)
            rows["ean"].append(ean)
            rows["at"].append(at)
            for name, v in zip(
                ("import_t1_wh", "import_t2_wh", "export_t1_wh", "export_t2_wh"), regs, strict=True
            ):
                rows[name].append(int(v * 1000))
            n += 1
    return pa.Table.from_pydict(rows, schema=schema)


def build_store(
    path: Path, register: Register, skip: dict[str, set[date]] | None = None
) -> MeterStore:
    with register.session() as s:
        index = ConnectionIndex(s.meter_index(), 230.0)
    store = open_store(path)
    ingestor = Ingestor(store, index, rulebook.vee_rules(), now=datetime(2026, 12, 1, tzinfo=UTC))
    eans = [SUPPLIED, CONTRACTLESS, OOS_ON, OOS_OFF, NEW_CONTRACT, IDLE]
    ingestor.ingest(SourceData("daily", "", {"daily_readings": daily_table(eans, skip)}))
    return store


def gate(register: Register, store: MeterStore | None, now: datetime = NOW) -> Gate:
    return Gate(register, store, load_catalogue(), clock=lambda: now)
