"""The reading of a switch or move day (MKT-5, issue 20): read through the gate, stored
in the hub for the change feed.

``meetpunt market switch|move`` records the new contract first; then the new supplier's
purpose ``supplier_switch`` / ``supplier_move`` (the catalogue's purposes for exactly
this: one day, with the switch or move notice as trigger, scoped to the supplier's
contract) reads the smart meter's daily reading at local midnight of the day. The
reading (or its estimate for a meter that cannot be read remotely, marked so) is stored
as a ``switch_readings`` row in a batch of its own, which the change feed
(``GET /v1/feed``) gives to the old and to the new supplier.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from meetpunt.app.gate import open_gate
from meetpunt.app.hub import hub_store
from meetpunt.domain.calendar import local_midnight_utc
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
) -> tuple[dict[str, int | None] | None, list[str]]:
    """The smart meter's daily reading at local midnight of ``day``, read through the
    gate as the new ``supplier`` under the event's purpose (audited, PRV-1/PRV-7):
    the registers in Wh, or None with the rules of a refusal (empty when the meter
    simply has no reading of that moment)."""
    at = local_midnight_utc(day)
    request = AccessRequest(
        Party(supplier, Role.SUPPLIER),
        PURPOSES[event],
        (ean,),
        frozenset({"daily_readings"}),
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
            table = outcome.read("daily_readings")
    except StoreUnavailableError as missing:
        return None, [f.rule for f in missing.findings]
    return day_row(table, at), []


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
    """Store the day's reading for the feed (``switch_readings``); the batch id."""
    with hub_store(store) as hub:
        return hub.record_switch_reading(
            connection, local_midnight_utc(day), registers, event, estimated, now
        )
