"""The measurement kinds of the hub: columns, merge keys and write policy (MTR-1, MTR-4).

Every kind is one curated DuckDB table keyed by the register's integer connection id
(design rule 5; the EAN lives in the register), a UTC time column and, for some kinds,
one more key column (phase, meter, M-Bus channel). Every write declares its merge key
and policy: ``append_if_not_exists`` stores a row whose key is new, counts an identical
row as a duplicate, lets a measured value replace an estimate (the estimate moves to
the corrections history), and quarantines a different measured value for a stored key
(``MTR-5.conflict``).

Readers (``meetpunt.io``) deliver each kind as an Arrow table in the kind's *source*
shape: ``record`` (position in the source, for error messages; optional, default the
row's position), the EAN column (string, or dictionary-encoded strings), the time
column as a UTC timestamp (``timestamp[us, UTC]``; other units are accepted) and the
value columns in meetpunt's units (Wh, W, dm3, V, s, counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

from meetpunt.domain.capacity import Commodity
from meetpunt.domain.vee import Status

UTC_US = pa.timestamp("us", tz="UTC")
"""Time type of source tables: microseconds, UTC (MTR-3)."""

Policy = Literal["append_if_not_exists"]


@dataclass(frozen=True)
class Column:
    """A column: our name, its DuckDB type and its Arrow type."""

    name: str
    sql: str
    arrow: pa.DataType


def _int(name: str) -> Column:
    return Column(name, "BIGINT", pa.int64())


@dataclass(frozen=True)
class Quality:
    """What a stored value's ``quality`` code means: its status, the check that fired
    (rule ID) and the estimation method (MTR-5; every value carries a status)."""

    code: int
    status: Status
    rule: str | None = None
    method: str | None = None


MEASURED = Quality(0, Status.MEASURED)
METER_SWAP = Quality(1, Status.MEASURED, "MTR-5.meter_swap")
FROM_HISTORY = Quality(2, Status.ESTIMATED_TEMPORARY, "MTR-5.gap", "own_history")
FROM_READINGS = Quality(3, Status.ESTIMATED_FINAL, "MTR-5.gap", "register_readings")
SWITCH_ESTIMATE = Quality(4, Status.ESTIMATED_FINAL, "MKT-5.switch_reading", "yearly_volume")
"""A switch or move reading of a meter that cannot be read remotely: estimated from the
last known reading and the yearly volume, and marked so (MKT-5, issue 20)."""
QUALITIES = (MEASURED, METER_SWAP, FROM_HISTORY, FROM_READINGS, SWITCH_ESTIMATE)
"""Every quality code; the store keeps them in its ``quality`` table. One small code
per row instead of three text columns keeps appends fast (measured: each extra column
costs about a quarter of a raw append)."""
ESTIMATED_CODES = tuple(q.code for q in QUALITIES if q.status is not Status.MEASURED)
MEASURED_CODES = tuple(q.code for q in QUALITIES if q.status is Status.MEASURED)


REGISTERS = ("import_t1_wh", "import_t2_wh", "export_t1_wh", "export_t2_wh")
"""The four energy registers (1.8.1, 1.8.2, 2.8.1, 2.8.2) in Wh; T1 = off-peak (dal)."""


@dataclass(frozen=True)
class Kind:
    """One measurement kind (MTR-1) and how it is validated and stored (MTR-4/5).

    ``interval_s`` is set for interval values (start of the interval in ``time``), which
    must sit on the interval grid (MTR-5.clock) and are checked for gaps (MTR-5.gap);
    ``counters`` are cumulative registers that may not go backwards
    (MTR-5.counter_backwards) unless the meter was swapped (MTR-5.meter_swap);
    ``energy`` columns are checked against the connection's capacity (MTR-5.capacity);
    ``voltage`` columns against the physical range (MTR-5.range).
    """

    name: str
    time: str
    values: tuple[Column, ...]
    commodity: Commodity = Commodity.ELECTRICITY
    ean_column: str = "ean"
    extra_key: tuple[Column, ...] = ()
    interval_s: int | None = None
    counters: tuple[str, ...] = ()
    energy: tuple[str, ...] = ()
    voltage: tuple[str, ...] = ()
    estimate_gaps: bool = False
    policy: Policy = "append_if_not_exists"
    description: str = ""
    optional: frozenset[str] = field(default_factory=frozenset)
    """Value columns that may be empty (a ferraris meter has no export register)."""

    @property
    def key(self) -> tuple[str, ...]:
        """The merge key: connection, time and the extra key columns."""
        return ("connection", self.time, *(c.name for c in self.extra_key))

    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.values)

    def source_schema(self) -> pa.Schema:
        """The Arrow schema readers deliver for this kind."""
        fields = [
            pa.field("record", pa.int64()),
            pa.field(self.ean_column, pa.string()),
            pa.field(self.time, UTC_US),
        ]
        fields += [pa.field(c.name, c.arrow) for c in (*self.extra_key, *self.values)]
        return pa.schema(fields)

    def table_sql(self) -> str:
        """DuckDB DDL of the curated table (times are naive TIMESTAMP holding UTC).

        ``quality`` refers to the ``quality`` table (status, rule, method); ``batch`` to
        the batch that stored the row. No NOT NULL constraints: ingestion checks every
        row before it is written, and the constraints cost a third of the append rate.
        """
        columns = ["connection INTEGER", f'"{self.time}" TIMESTAMP']
        columns += [f'"{c.name}" {c.sql}' for c in (*self.extra_key, *self.values)]
        columns += ["quality UTINYINT", "batch INTEGER"]
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" ({", ".join(columns)})'


def _registers() -> tuple[Column, ...]:
    return tuple(_int(name) for name in REGISTERS)


_EXPORT_OPTIONAL = frozenset({"export_t1_wh", "export_t2_wh"})

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "quarter_hours",
            "start",
            (_int("import_wh"), _int("export_wh")),
            interval_s=900,
            energy=("import_wh", "export_wh"),
            estimate_gaps=True,
            description="quarter-hour import/export in Wh (interval start)",
        ),
        Kind(
            "daily_readings",
            "at",
            _registers(),
            counters=REGISTERS,
            optional=_EXPORT_OPTIONAL,
            description="register readings at local midnight, Wh per T1/T2",
        ),
        Kind(
            "monthly_readings",
            "at",
            _registers(),
            counters=REGISTERS,
            optional=_EXPORT_OPTIONAL,
            description="register readings on the first of the month, Wh per T1/T2",
        ),
        Kind(
            "gas_hourly",
            "start",
            (_int("volume_dm3"), _int("reading_dm3")),
            commodity=Commodity.GAS,
            ean_column="gas_ean",
            interval_s=3600,
            counters=("reading_dm3",),
            description="hourly gas volume and register in dm3 (litres)",
        ),
        Kind(
            "voltages_10min",
            "start",
            (Column("voltage_v", "DOUBLE", pa.float64()),),
            extra_key=(Column("phase", "TINYINT", pa.int8()),),
            interval_s=600,
            voltage=("voltage_v",),
            description="10-minute mean voltage per meter phase",
        ),
        Kind(
            "voltage_events",
            "at",
            (_int("sags"), _int("swells")),
            extra_key=(Column("phase", "TINYINT", pa.int8()),),
            counters=("sags", "swells"),
            description="sag and swell counters per meter phase",
        ),
        Kind(
            "power_failures",
            "at",
            (_int("failures"), _int("long_failures")),
            counters=("failures", "long_failures"),
            description="power failure counters (all, long)",
        ),
        Kind(
            "power_failure_log",
            "end",
            (_int("duration_s"),),
            description="power failure event log: END of each long failure and its duration",
        ),
        Kind("last_gasp", "sent_at", (), description="last-gasp messages of DSMR 5 meters"),
        Kind(
            "manual_readings",
            "read_at",
            _registers(),
            extra_key=(Column("meter", "VARCHAR", pa.string()),),
            counters=REGISTERS,
            optional=_EXPORT_OPTIONAL,
            description="register readings taken by a mechanic",
        ),
        Kind(
            "p1_readings",
            "at",
            (*_registers(), _int("power_import_w"), _int("power_export_w")),
            counters=REGISTERS,
            optional=frozenset({"power_import_w", "power_export_w", *_EXPORT_OPTIONAL}),
            description="register readings and power from P1 telegrams",
        ),
        Kind(
            "p1_gas",
            "at",
            (_int("reading_dm3"),),
            extra_key=(Column("channel", "TINYINT", pa.int8()),),
            counters=("reading_dm3",),
            description="gas register from a P1 telegram's M-Bus channel (capture time)",
        ),
        Kind(
            "switch_readings",
            "at",
            (*_registers(), Column("event", "VARCHAR", pa.string())),
            optional=_EXPORT_OPTIONAL,
            description="the reading of a switch or move day at local midnight, for the old "
            "and the new supplier (MKT-5; event 'switch' or 'move'; estimated when marked)",
        ),
        Kind(
            "gas_switch_readings",
            "at",
            (_int("reading_dm3"), Column("event", "VARCHAR", pa.string())),
            commodity=Commodity.GAS,
            ean_column="gas_ean",
            description="the gas register (dm3) of a switch or move day at local midnight, "
            "on the gas connection, for the old and the new supplier (MKT-5; as "
            "switch_readings)",
        ),
    )
}
"""Every kind the hub stores, by table name."""

READINGS_FIRST = ("daily_readings", "monthly_readings", "manual_readings", "p1_readings")
"""Kinds ingested before interval values, so gap estimates can use the readings."""


def kind(name: str) -> Kind:
    """The kind called ``name``; ``KeyError`` names the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown meter data kind {name!r}; known: {', '.join(KINDS)}") from None
