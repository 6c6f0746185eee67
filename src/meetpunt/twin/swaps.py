"""Meter swaps: a smart meter replaced at a local midnight, its registers restart.

The energy per quarter-hour does not change; the cumulative registers after the swap
come from a new meter that starts near zero. The readings tables are adjusted and the
truth records when each swap happened and the old meter's final registers (MTR-5
checks must recognise a swap rather than a counter going backwards).

With the meter realities (issue 16) a meter can also be replaced during an outage
(:func:`replace_during_outages`): the new meter's registers start at zero at that
moment, and the truth row names the outage.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meetpunt.twin.meters import MeterState
from meetpunt.twin.model import STEP_S, UTC_TS, TimeAxis
from meetpunt.twin.realities import Replacement, replacement_moment
from meetpunt.twin.topology import Region

REGISTERS = ("import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh")
SCHEMA = pa.schema(
    [("connection", pa.int32()), ("ean", pa.string()), ("swapped_at", UTC_TS)]
    + [(f"old_{r}", pa.float64()) for r in REGISTERS]
    + [(f"new_{r}", pa.float64()) for r in REGISTERS]
    + [("outage_id", pa.string())]
)
"""The ``meter_swaps`` truth: ``outage_id`` names the outage a meter was replaced in."""


def apply_meter_swaps(
    tables: dict[str, pa.Table],
    swaps: dict[int, int],
    region: Region,
    axis: TimeAxis,
    rng: np.random.Generator,
) -> pa.Table:
    """Swap the meters of ``swaps`` (connection -> step, -1 = draw a midnight) in place.

    Returns the truth table (:data:`SCHEMA`): connection, ean, swapped_at, the old
    meter's final and the new meter's first registers.
    """
    daily = tables["daily_readings"]
    rows: list[dict[str, object]] = []
    for connection in sorted(swaps):
        mine = daily.filter(pc.equal(daily.column("connection"), connection))
        if mine.num_rows < 3:
            continue
        moments = sorted(mine.column("at").to_pylist())[1:-1]  # a midnight inside the run
        at: datetime = moments[int(rng.integers(0, len(moments)))]
        at_reading = mine.filter(pc.equal(mine.column("at"), pa.scalar(at, UTC_TS)))
        old = {r: float(at_reading.column(r)[0].as_py() or 0.0) for r in REGISTERS}
        new = {r: round(float(rng.uniform(0.0, 3.0)), 3) for r in REGISTERS}
        rows.append(_swap(tables, region, connection, at, old, new, None))
        if "voltage_events" in tables:
            tables["voltage_events"] = reset_event_counters(
                tables["voltage_events"], connection, at
            )
        swaps[connection] = axis.step_of(at)
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def replace_during_outages(
    tables: dict[str, pa.Table],
    replaced: dict[int, Replacement],
    state: MeterState,
    region: Region,
) -> pa.Table:
    """Replace the meters of ``replaced`` inside their outage (issue 16): the readings
    from that moment on come from a new meter whose registers started at zero. The old
    meter's registers are those at the replacement (no energy flows in an outage).
    Returns truth rows in :data:`SCHEMA`."""
    rows: list[dict[str, object]] = []
    zero = dict.fromkeys(REGISTERS, 0.0)
    for connection in sorted(replaced):
        replacement = replaced[connection]
        at = replacement_moment(state.axis, replacement)
        mwh = state.registers_mwh(connection)[replacement.at_s // STEP_S]
        old = {r: float(v // 1000) / 1000.0 for r, v in zip(REGISTERS, mwh.tolist(), strict=True)}
        rows.append(_swap(tables, region, connection, at, old, zero, replacement.outage_id))
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _swap(
    tables: dict[str, pa.Table],
    region: Region,
    connection: int,
    at: datetime,
    old: dict[str, float],
    new: dict[str, float],
    outage_id: str | None,
) -> dict[str, object]:
    """Shift every reading table of ``connection`` from ``at`` on; the truth row."""
    for kind, time_column in (
        ("daily_readings", "at"),
        ("monthly_readings", "at"),
        ("manual_readings", "read_at"),
    ):
        tables[kind] = _shift(tables[kind], connection, time_column, at, old, new)
    return {
        "connection": connection,
        "ean": region.connections[connection].ean,
        "swapped_at": at,
        **{f"old_{r}": old[r] for r in REGISTERS},
        **{f"new_{r}": new[r] for r in REGISTERS},
        "outage_id": outage_id,
    }


def _shift(
    table: pa.Table,
    connection: int,
    time_column: str,
    at: datetime,
    old: dict[str, float],
    new: dict[str, float],
) -> pa.Table:
    """Registers of ``connection`` from ``at`` on restart from ``new`` instead of ``old``."""
    after = pc.and_(
        pc.equal(table.column("connection"), connection),
        pc.greater_equal(table.column(time_column), pa.scalar(at, UTC_TS)),
    )
    for register in REGISTERS:
        column = table.column(register)
        moved = pc.round(pc.add(pc.subtract(column, old[register] - new[register]), 0.0), 3)
        index = table.schema.get_field_index(register)
        table = table.set_column(index, table.schema.field(index), pc.if_else(after, moved, column))
    return table


EVENT_COUNTERS = ("sags", "swells")


def reset_event_counters(table: pa.Table, connection: int, at: datetime) -> pa.Table:
    """The new meter's sag/swell counters (UC2): from the swap at local midnight ``at`` on,
    each phase's counters restart at 0, so the reading at ``at`` is the new meter's 0
    and later ones count only its own events. The old meter's events of the day before
    the swap were never read: they are in the truth, not in the data (as in the field)."""
    mine = pc.equal(table.column("connection"), connection)
    after = pc.and_(mine, pc.greater_equal(table.column("at"), pa.scalar(at, UTC_TS)))
    at_swap = table.filter(pc.and_(mine, pc.equal(table.column("at"), pa.scalar(at, UTC_TS))))
    phases = table.column("phase")
    for counter in EVENT_COUNTERS:
        column = table.column(counter)
        base = pa.array(np.zeros(table.num_rows, dtype=np.int64))
        for phase, value in zip(
            at_swap.column("phase").to_pylist(), at_swap.column(counter).to_pylist(), strict=True
        ):
            here = pc.and_(after, pc.equal(phases, phase))
            base = pc.if_else(here, pa.scalar(int(value), pa.int64()), base)
        index = table.schema.get_field_index(counter)
        shifted = pc.if_else(after, pc.subtract(column, base), column)
        table = table.set_column(index, table.schema.field(index), shifted)
    return table
