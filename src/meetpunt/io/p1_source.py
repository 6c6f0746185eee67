"""P1 telegrams in, the hub's source shape out (MTR-2, MTR-4).

A P1 capture belongs to one connection: its EAN comes from ``--ean`` or from the file
name (``871687400000000014.p1``, as the grid twin writes them). From each valid
telegram come register readings and power (``p1_readings``), the failure counters
(``power_failures``), the failure log (``power_failure_log``, each entry once), the
sag/swell counters per phase (``voltage_events``) and the gas register of each M-Bus
channel at its capture time (``p1_gas``). A malformed or CRC-failed telegram is
refused whole with the parser's rule (``MTR-2.crc``, ...) and its raw text: never
half-stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from meetpunt.domain.ean import is_valid_ean
from meetpunt.errors import MeterDataError
from meetpunt.io.p1 import Telegram, read_p1_file
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.source import Refusal, SourceData


def ean_for_capture(path: Path, ean: str | None) -> str:
    """The EAN a capture belongs to: given, or the file's name."""
    if ean:
        return ean
    if is_valid_ean(path.stem):
        return path.stem
    raise MeterDataError(
        f"{path}: which connection is this P1 capture from? Name the file <EAN>.p1 or pass --ean"
    )


def read_p1_capture(path: Path, ean: str | None = None) -> SourceData:
    """Read a P1 capture file (a serial log: telegrams back to back, garbage allowed)."""
    owner = ean_for_capture(path, ean)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return source_from_telegrams(read_p1_file(path), owner, str(path), digest)


def _wh_from(value: Decimal | None, factor: int = 1000) -> int | None:
    return None if value is None else round(value * factor)


class _Rows:
    """Column lists of one kind, in its source shape."""

    def __init__(self, kind: str) -> None:
        self.schema = KINDS[kind].source_schema()
        self.columns: dict[str, list[Any]] = {f.name: [] for f in self.schema}

    def add(self, **values: Any) -> None:
        for name, column in self.columns.items():
            column.append(values.get(name))

    def table(self) -> pa.Table:
        return pa.Table.from_pydict(self.columns, schema=self.schema)


def source_from_telegrams(
    telegrams: Iterable[Telegram], ean: str, name: str, digest: str
) -> SourceData:
    """The rows of a sequence of telegrams of one connection (file or MQTT batch)."""
    source = SourceData(name, digest)
    readings = _Rows("p1_readings")
    counters = _Rows("power_failures")
    log = _Rows("power_failure_log")
    events = _Rows("voltage_events")
    gas = _Rows("p1_gas")
    seen_log: set[tuple[datetime, int]] = set()
    seen_gas: set[tuple[int, datetime]] = set()
    for number, telegram in enumerate(telegrams, start=1):
        if not telegram.valid or telegram.timestamp is None:
            error = telegram.error
            source.refused.append(
                Refusal(
                    "p1_readings",
                    number,
                    ean,
                    error.rule if error else "MTR-2.timestamp",
                    (error.message if error else "telegram has no timestamp (0-0:1.0.0)")
                    + (f" (byte {error.offset} of the telegram)" if error else ""),
                    telegram.raw.decode("latin-1"),
                )
            )
            continue
        at = telegram.timestamp
        readings.add(
            record=number,
            ean=ean,
            at=at,
            import_t1_wh=telegram.import_t1_wh,
            import_t2_wh=telegram.import_t2_wh,
            export_t1_wh=telegram.export_t1_wh,
            export_t2_wh=telegram.export_t2_wh,
            power_import_w=_wh_from(telegram.power_import_kw),
            power_export_w=_wh_from(telegram.power_export_kw),
        )
        if telegram.power_failures is not None:
            counters.add(
                record=number,
                ean=ean,
                at=at,
                failures=telegram.power_failures,
                long_failures=telegram.long_power_failures,
            )
        for entry in telegram.power_failure_log:
            if (entry.end, entry.duration_s) not in seen_log:
                seen_log.add((entry.end, entry.duration_s))
                log.add(record=number, ean=ean, end=entry.end, duration_s=entry.duration_s)
        for phase, (sags, swells) in enumerate(
            zip(telegram.sags, telegram.swells, strict=True), start=1
        ):
            if sags is not None or swells is not None:
                events.add(record=number, ean=ean, at=at, phase=phase, sags=sags, swells=swells)
        for channel in telegram.gas_readings:
            stamp = channel.captured_at
            if stamp is not None and channel.value is not None:
                if (channel.channel, stamp) in seen_gas:
                    continue
                seen_gas.add((channel.channel, stamp))
                gas.add(
                    record=number,
                    ean=ean,
                    at=stamp,
                    channel=channel.channel,
                    reading_dm3=_wh_from(channel.value),
                )
    for kind, rows in (
        ("p1_readings", readings),
        ("power_failures", counters),
        ("power_failure_log", log),
        ("voltage_events", events),
        ("p1_gas", gas),
    ):
        table = rows.table()
        if table.num_rows:
            source.tables[kind] = table
    return source
