"""The reading of a switch or move day (MKT-5, issue 20): read through the gate, stored
in the hub for the change feed.

``meetpunt market switch|move`` records the new contract first; then the new supplier's
purpose ``supplier_switch`` / ``supplier_move`` (the catalogue's purposes for exactly
this: one day, with the switch or move notice as trigger, scoped to the supplier's
contract) reads the smart meter's daily reading at local midnight of the day. The
reading (or its estimate for a meter that cannot be read remotely, marked so) is stored
as a ``switch_readings`` row in a batch of its own, which the change feed
(``GET /v1/feed``) gives to the old and to the new supplier.

Gas: a switch or move of a gas connection reads the gas meter's register at local
midnight of the day from the hourly gas values the smart meter collects over M-Bus
(``gas_hourly``: the register at the end of the hour starting at midnight less that
hour's volume), under the same purpose, and stores it as ``gas_switch_readings`` on the
gas connection.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from meetpunt.app.gate import open_gate
from meetpunt.app.hub import hub_store
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.errors import StoreUnavailableError
from meetpunt.meterdata.kinds import REGISTERS
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period, Role

PURPOSES = {"switch": "supplier_switch", "move": "supplier_move"}
"""The catalogue's purpose for the reading of each event (the new supplier asks)."""


def trigger(event: str, supplier: str, day: date) -> str:
    """The evidence the purpose needs: the notice of the switch or move."""
    return f"{event} notice: {supplier} from {day.isoformat()}"


def meter_reading(
    db: str | None,
    store: Path | None,
    event: str,
    supplier: str,
    ean: str,
    day: date,
    now: datetime,
    commodity: Commodity = Commodity.ELECTRICITY,
) -> tuple[dict[str, int | None] | None, list[str]]:
    """The smart meter's reading at local midnight of ``day``, read through the gate as
    the new ``supplier`` under the event's purpose (audited, PRV-1/PRV-7): electricity,
    the daily reading's registers in Wh; gas, ``{"reading_dm3": ...}`` from the hourly
    gas values. None with the rules of a refusal (empty when the meter simply has no
    reading of that moment)."""
    at = local_midnight_utc(day)
    kind = "gas_hourly" if commodity is Commodity.GAS else "daily_readings"
    request = AccessRequest(
        Party(supplier, Role.SUPPLIER),
        PURPOSES[event],
        (ean,),
        frozenset({kind}),
        Period(at, local_midnight_utc(day + timedelta(days=1))),
        now,
        justification=f"meetpunt market {event}",
        trigger=trigger(event, supplier, day),
    )
    try:
        with open_gate(db, store, create=False) as gate:
            outcome = gate.request(request)
            if isinstance(outcome, Decision):
                return None, list(outcome.rules)
            table = outcome.read(kind)
    except StoreUnavailableError as missing:
        return None, [f.rule for f in missing.findings]
    if commodity is Commodity.GAS:
        return gas_day_row(table, at), []
    return day_row(table, at), []


def gas_day_row(table: pa.Table, at: datetime) -> dict[str, int | None] | None:
    """The gas register at ``at`` (local midnight): the hour starting then, its register
    at the hour's end less its volume; None without that hour or its values."""
    for row in table.to_pylist():
        when = row["start"]
        if when.tzinfo is None:
            when = when.replace(tzinfo=at.tzinfo)
        if when == at and row.get("reading_dm3") is not None:
            return {"reading_dm3": int(row["reading_dm3"]) - int(row.get("volume_dm3") or 0)}
    return None


def day_row(table: pa.Table, at: datetime) -> dict[str, int | None] | None:
    """The registers of the row stored at ``at`` (local midnight), if there is one."""
    for row in table.to_pylist():
        when = row["at"]
        if when.tzinfo is None:
            when = when.replace(tzinfo=at.tzinfo)
        if when == at:
            return {name: row.get(name) for name in REGISTERS}
    return None


def store_reading(
    store: Path | None,
    connection: int,
    day: date,
    registers: dict[str, int | None],
    event: str,
    estimated: bool,
    now: datetime,
) -> int:
    """Store the day's reading for the feed (``switch_readings``; a gas reading,
    ``{"reading_dm3": ...}``, as ``gas_switch_readings``); the batch id."""
    at = local_midnight_utc(day)
    with hub_store(store) as hub:
        if "reading_dm3" in registers:
            dm3 = registers["reading_dm3"]
            if dm3 is None:
                raise ValueError("a gas switch reading needs reading_dm3")
            return hub.record_gas_switch_reading(connection, at, dm3, event, estimated, now)
        return hub.record_switch_reading(connection, at, registers, event, estimated, now)
