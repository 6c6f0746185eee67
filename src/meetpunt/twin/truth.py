"""The twin's truth folder: what really happened, per use case.

Each table is keyed by the internal integer ``connection`` (and the EAN where a use
case's answer is per customer), so an analysis can be scored against it:
UC1 outages and their extent, UC3 inverter trips, UC4 the compensation owed (from the
packaged scheme, planned work excluded), UC6 solar registration, UC7 GIS errors, UC9
interruptions to the second, UC12 the unsafe situation, UC13 EV sessions, UC15
contractless and out-of-service consumption, plus the whole connection truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pyarrow as pa

from meetpunt import rulebook
from meetpunt.domain.compensation import CapacityConnection, GridLevel
from meetpunt.twin.faults import Faults
from meetpunt.twin.model import STEP_S, UTC_TS, Interruption, TimeAxis
from meetpunt.twin.powerflow import InverterTrip
from meetpunt.twin.profiles import EvSession
from meetpunt.twin.topology import Region


def timestamps(values: Sequence[datetime]) -> pa.Array:
    """Aware datetimes as a UTC timestamp column (whole seconds)."""
    return pa.array(list(values), type=UTC_TS)


def connection_truth(region: Region, faults: Faults) -> pa.Table:
    """Everything about each electricity connection as it really is."""
    c = region.connections
    return pa.table(
        {
            "connection": pa.array([x.index for x in c], pa.int32()),
            "ean": [x.ean for x in c],
            "kind": [x.kind.value for x in c],
            "capacity": [str(x.capacity) for x in c],
            "substation": [x.substation for x in c],
            "feeder": [x.feeder for x in c],
            "registered_feeder": [x.registered_feeder or x.feeder for x in c],
            "phase": [None if x.phase is None else f"L{x.phase + 1}" for x in c],
            "registered_phase": [
                None if x.registered_phase is None else f"L{x.registered_phase + 1}" for x in c
            ],
            "position": pa.array([x.house_number for x in c], pa.int32()),
            "postcode": [x.postcode for x in c],
            "meter": [x.meter.value for x in c],
            "opt_out": [x.opt_out for x in c],
            "annual_kwh": pa.array([x.annual_kwh for x in c], pa.float32()),
            "household_type": [x.extra.get("household_type", "") for x in c],
            "pv_kwp": pa.array([x.pv_kwp for x in c], pa.float32()),
            "registered_pv_kwp": pa.array([x.registered_pv_kwp for x in c], pa.float32()),
            "ev": [x.ev.value for x in c],
            "heat_pump": [x.heat_pump for x in c],
            "gas_ean": [x.gas_ean for x in c],
            "contractless": [x.index in faults.contractless for x in c],
            "out_of_service_consuming": [x.index in faults.out_of_service_consuming for x in c],
            "broken_neutral": [x.index in faults.broken_neutral for x in c],
        }
    )


def outage_truth(faults: Faults) -> pa.Table:
    """UC1/UC9: each outage, its cause, extent, level, period, affected count and its
    hard-case classes (issue 16: scores per class)."""
    o = faults.outages
    return pa.table(
        {
            "outage_id": [x.id for x in o],
            "cause": [x.cause for x in o],
            "extent": [x.extent for x in o],
            "grid_level": [x.grid_level for x in o],
            "planned": [x.planned for x in o],
            "start": timestamps([x.start for x in o]),
            "end": timestamps([x.end for x in o]),
            "duration_s": pa.array([int((x.end - x.start).total_seconds()) for x in o], pa.int64()),
            "substation": [x.substation for x in o],
            "feeder": [x.feeder for x in o],
            "affected": pa.array([len(x.affected) for x in o], pa.int32()),
            "cases": pa.array([list(x.cases) for x in o], pa.list_(pa.string())),
        }
    )


Span = tuple[datetime, datetime, bool, str]
"""A customer's interruption: start, end, planned, and the outage it began with."""


def customer_spans(faults: Faults) -> dict[tuple[int, str], Span]:
    """Per (connection, outage) the interruption as the customer had it: overlapping or
    touching outages of one connection are one interruption, from the first start to
    the last end (issue 16: a cable fault nested in an MV outage is one interruption for
    the house, and the scheme pays per interruption). Planned only when every outage in
    it was planned; its grid level is that of the outage it began with. Keyed to each
    member outage."""
    per_conn: dict[int, list[Interruption]] = {}
    for cut in faults.interruptions:
        per_conn.setdefault(cut.index, []).append(cut)
    spans: dict[tuple[int, str], Span] = {}
    for conn, cuts in per_conn.items():
        group: list[Interruption] = []
        for cut in sorted(cuts, key=lambda c: (c.start, c.end)):
            if group and cut.start > max(c.end for c in group):
                _close(spans, conn, group)
                group = []
            group.append(cut)
        _close(spans, conn, group)
    return spans


def _close(spans: dict[tuple[int, str], Span], conn: int, group: Sequence[Interruption]) -> None:
    start, end = group[0].start, max(c.end for c in group)
    planned = all(c.planned for c in group)
    for c in group:
        spans[(conn, c.outage_id)] = (start, end, planned, group[0].outage_id)


def interruption_truth(region: Region, faults: Faults, axis: TimeAxis | None = None) -> pa.Table:
    """UC4/UC9: every interrupted connection, to the second, per outage, and what it is
    owed (MKT-8) for the interruption the customer had (:func:`customer_spans`): the
    amount stands on the first outage of that interruption, 0 on the others, so a sum
    per connection counts each interruption once. ``owed_in_period`` is False for an
    interruption still going at the end of ``axis``: it is owed once it ends, in the
    next period's run (the meter logs it then)."""
    scheme = rulebook.compensation_scheme()
    classes = rulebook.capacity_classes()
    levels = {o.id: GridLevel(o.grid_level) for o in faults.outages}
    spans = customer_spans(faults)
    period_end = None if axis is None else axis.start_utc + timedelta(seconds=axis.n_steps * STEP_S)
    names = (
        "connection",
        "ean",
        "outage_id",
        "start",
        "end",
        "duration_s",
        "planned",
        "compensation_eur",
        "compensation_class",
        "customer_start",
        "customer_end",
        "owed_in_period",
    )
    rows: dict[str, list[object]] = {k: [] for k in names}
    for cut in faults.interruptions:
        conn = region.connections[cut.index]
        start, end, planned, began = spans[(cut.index, cut.outage_id)]
        first = began == cut.outage_id
        owed = scheme.compensate(
            CapacityConnection.classify(conn.capacity, classes),
            levels[began],
            end - start,
            planned=planned,
            duration_source="twin truth",
        )
        for key, value in (
            ("connection", cut.index),
            ("ean", conn.ean),
            ("outage_id", cut.outage_id),
            ("start", cut.start),
            ("end", cut.end),
            ("duration_s", cut.duration_s),
            ("planned", cut.planned),
            ("compensation_eur", str(owed.amount) if first else "0.00"),
            ("compensation_class", owed.class_id),
            ("customer_start", start),
            ("customer_end", end),
            ("owed_in_period", period_end is None or end <= period_end),
        ):
            rows[key].append(value)
    return pa.table(
        {
            "connection": pa.array(rows["connection"], pa.int32()),
            "ean": pa.array(rows["ean"], pa.string()),
            "outage_id": pa.array(rows["outage_id"], pa.string()),
            "start": pa.array(rows["start"], UTC_TS),
            "end": pa.array(rows["end"], UTC_TS),
            "duration_s": pa.array(rows["duration_s"], pa.int64()),
            "planned": pa.array(rows["planned"], pa.bool_()),
            "compensation_eur": pa.array(rows["compensation_eur"], pa.string()),
            "compensation_class": pa.array(rows["compensation_class"], pa.string()),
            "customer_start": pa.array(rows["customer_start"], UTC_TS),
            "customer_end": pa.array(rows["customer_end"], UTC_TS),
            "owed_in_period": pa.array(rows["owed_in_period"], pa.bool_()),
        }
    )


def with_meter_cases(interruptions: pa.Table, seen: pa.Table) -> pa.Table:
    """``interruptions`` with each row's ``meter_cases`` from ``interruptions_seen``
    (issue 16: what happened to the meter of that interruption; empty when nothing)."""
    cases = {
        (int(r["connection"]), str(r["outage_id"])): list(r["meter_cases"] or [])
        for r in seen.select(["connection", "outage_id", "meter_cases"]).to_pylist()
    }
    keys = zip(
        interruptions.column("connection").to_pylist(),
        interruptions.column("outage_id").to_pylist(),
        strict=True,
    )
    column = pa.array([cases.get((int(c), str(o)), []) for c, o in keys], pa.list_(pa.string()))
    return interruptions.append_column("meter_cases", column)


QUARTER_STEPS = 900 // STEP_S
"""5-minute steps per quarter-hour: the resolution of the feed-in UC3 reads."""


def trip_episodes(
    trips: Sequence[InverterTrip], reconnect_steps: int, gap_quarters: int | None = None
) -> list[int]:
    """The episode of each trip (UC3), at the resolution of the data UC3 reads: a trip
    keeps its inverter off from its step for ``reconnect_steps``; the quarter-hours in
    which one connection's inverter was off for at least one step, at most
    ``gap_quarters`` apart (the rule file's ``episode_gap_quarters``, the same rule UC3
    groups its quarter-hours by), are one episode -- the inverter cycled on the
    over-voltage protection with at most one whole quarter-hour of normal feed-in in
    between (back for less than 30 to 40 minutes, by where the quarter-hours fall).
    The axis starts on a quarter-hour (a local midnight). Episodes are numbered 0.. in
    (connection, step) order."""
    gap = rulebook.voltage_quality().episode_gap_quarters if gap_quarters is None else gap_quarters
    order = sorted(range(len(trips)), key=lambda i: (trips[i].index, trips[i].step))
    out = [0] * len(trips)
    episode, last = -1, None
    for i in order:
        t = trips[i]
        if (
            last is None
            or t.index != last.index
            or t.step // QUARTER_STEPS - (last.step + reconnect_steps - 1) // QUARTER_STEPS > gap
        ):
            episode += 1
        out[i] = episode
        last = t
    return out


def trips_truth(
    axis: TimeAxis, trips: Sequence[InverterTrip], reconnect_steps: int = 3
) -> pa.Table:
    """UC3: PV inverters that disconnected on overvoltage, one row per trip and step
    (``phase`` is the grid phase), with its ``episode`` (:func:`trip_episodes`) and the
    moment the inverter was back (``until``: the last trip's step + the reconnect delay)."""
    episodes = trip_episodes(trips, reconnect_steps)
    last: dict[int, int] = {}
    for t, e in zip(trips, episodes, strict=True):
        last[e] = max(last.get(e, t.step), t.step)
    return pa.table(
        {
            "connection": pa.array([t.index for t in trips], pa.int32()),
            "phase": pa.array([t.phase + 1 for t in trips], pa.int8()),
            "at": timestamps([axis.step_start(t.step) for t in trips]),
            "voltage_v": pa.array([t.voltage_v for t in trips], pa.float32()),
            "episode": pa.array(episodes, pa.int32()),
            "until": timestamps([axis.step_start(last[e] + reconnect_steps) for e in episodes]),
        }
    )


def ev_session_truth(axis: TimeAxis, sessions: Sequence[EvSession]) -> pa.Table:
    """UC13: every home charging session, its power and the energy delivered."""
    return pa.table(
        {
            "connection": pa.array([s.index for s in sessions], pa.int32()),
            "start": timestamps([axis.step_start(s.start_step) for s in sessions]),
            "end": timestamps([axis.step_start(s.end_step) for s in sessions]),
            "power_w": pa.array([s.power_w for s in sessions], pa.float32()),
            "energy_kwh": pa.array([s.energy_kwh for s in sessions], pa.float32()),
        }
    )


def records_table(records: Sequence[dict[str, object]], schema: pa.Schema) -> pa.Table:
    """A list of dicts as a table with a fixed schema (empty lists keep their columns)."""
    return pa.Table.from_pylist(list(records), schema=schema)


GIS_SCHEMA = pa.schema(
    [
        ("connection", pa.int32()),
        ("kind", pa.string()),
        ("true", pa.string()),
        ("registered", pa.string()),
    ]
)
PV_SCHEMA = pa.schema(
    [
        ("connection", pa.int32()),
        ("kind", pa.string()),
        ("true_kwp", pa.float32()),
        ("registered_kwp", pa.float32()),
    ]
)
