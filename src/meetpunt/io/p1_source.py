"""P1 telegrams in, the hub's source shape out (MTR-2, MTR-4).

A P1 capture belongs to one connection: its EAN comes from ``--ean`` or from the file
name (``871687400000000014.p1``, as the grid twin writes them). From each valid
telegram come register readings and power (``p1_readings``), the failure counters
(``power_failures``), the failure log (``power_failure_log``, each entry once), the
sag/swell counters per phase (``voltage_events``) and the gas register of each M-Bus
channel at its capture time (``p1_gas``). A malformed or CRC-failed telegram is
refused whole with the parser's rule (``MTR-2.crc``, ...) and its raw text: never
half-stored.

A capture is streamed: read in small blocks (a few KB, so the splitter's search for a
telegram's end stays short however much garbage there is), split, parsed and handed
on in pieces of :data:`TELEGRAMS_PER_PIECE` telegrams, so memory stays flat however
long the capture. A run of frames that are not even an identification line (``/``
without a line end: garbage such as ``////``) is refused as one record per run with
its rule, ``MTR-2.truncated``, keeping the telegram numbers of what follows, instead of
one record per byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from meetpunt.domain.ean import is_valid_ean
from meetpunt.errors import MeterDataError
from meetpunt.io.files import refuse_file, sha256_of
from meetpunt.io.p1 import Telegram, TelegramSplitter, parse_telegram
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


TELEGRAMS_PER_PIECE = 2_000
"""Telegrams per piece of a streamed capture (a few MB of rows at most)."""
READ_BYTES = 16 * 1024
"""Bytes read at a time: the splitter searches a block for a telegram's end, so a
small block keeps garbage without one from costing time quadratic in the block."""
_RAW_KEPT = 4096
"""Bytes of a garbage run kept as its raw record (the capture on disk holds the rest)."""


def read_p1_capture(path: Path, ean: str | None = None) -> SourceData:
    """Read a P1 capture file (a serial log: telegrams back to back, garbage allowed),
    streamed telegram by telegram in pieces (see the module's notes)."""
    owner = ean_for_capture(path, ean)
    digest = sha256_of(path)
    name = str(path)

    def stream() -> Iterator[SourceData]:
        state = _State()
        chunk: list[Telegram | _Garbage] = []
        for item in _telegrams(path):
            chunk.append(item)
            if len(chunk) >= TELEGRAMS_PER_PIECE:
                yield _piece(chunk, owner, name, state)
                chunk = []
        yield _piece(chunk, owner, name, state)

    return SourceData(name, digest, stream=stream)


@dataclass
class _Garbage:
    """A run of frames without an identification line end (see the module's notes)."""

    frames: int
    size: int
    raw: bytes

    def add(self, frames: int, raw: bytes, size: int | None = None) -> None:
        self.frames += frames
        self.size += len(raw) if size is None else size
        if len(self.raw) < _RAW_KEPT:
            self.raw += raw[: _RAW_KEPT - len(self.raw)]

    def taken(self) -> _Garbage:
        """This run, handed on; the collector starts empty again."""
        run = _Garbage(self.frames, self.size, self.raw)
        self.frames, self.size, self.raw = 0, 0, b""
        return run


def _frames_of(splitter: TelegramSplitter, block: bytes) -> list[bytes | Telegram | _Garbage]:
    """The frames ``block`` completes (all that is left when it is empty: the end).

    A block without a line end holds no telegram start: every ``/`` in it but the last
    starts a garbage frame that ends at the next ``/``. Those come back counted as one
    :class:`_Garbage` (``bytes.count``) instead of going through the splitter one by
    one (a second per megabyte of ``/``): the splitter is fed the block up to its first
    ``/`` (which ends a frame begun before) and from its last ``/`` on, so its state is
    as if it had read the whole block."""
    if not block:
        return list(splitter.flush())
    first = block.find(b"/")
    last = block.rfind(b"/")
    if first < 0 or first == last or b"\n" in block:
        return list(splitter.feed_frames(block))
    out: list[bytes | Telegram | _Garbage] = list(splitter.feed_frames(block[: first + 1]))
    run = block[first:last]
    out.append(_Garbage(run.count(b"/"), len(run), run[:_RAW_KEPT]))
    out += splitter.feed_frames(block[last + 1 :])  # (none: no "/" and no line end)
    return out


def _telegrams(path: Path, block_size: int = READ_BYTES) -> Iterator[Telegram | _Garbage]:
    """The capture's telegrams in order; runs of garbage frames folded into one."""
    splitter = TelegramSplitter()
    garbage = _Garbage(0, 0, b"")
    try:
        with path.open("rb") as handle:
            while True:
                block = handle.read(block_size)
                for frame in _frames_of(splitter, block):
                    if isinstance(frame, _Garbage):
                        garbage.add(frame.frames, frame.raw, frame.size)
                        continue
                    raw = frame.raw if isinstance(frame, Telegram) else frame
                    if b"\n" not in raw:  # parse_telegram: MTR-2.truncated, no line end
                        garbage.add(1, raw)
                        continue
                    if garbage.frames:
                        yield garbage.taken()
                    yield frame if isinstance(frame, Telegram) else parse_telegram(frame)
                if not block:
                    break
    except OSError as exc:
        raise refuse_file(
            path, "MTR-2.unreadable", f"cannot read the capture ({exc})", "check the file"
        ) from exc
    if garbage.frames:
        yield garbage.taken()


@dataclass
class _State:
    """What runs across the pieces of one capture: telegram numbering, and the failure
    log entries and gas readings already taken (each is repeated in later telegrams)."""

    number: int = 0
    seen_log: set[tuple[datetime, int]] = field(default_factory=set)
    seen_gas: set[tuple[int, datetime]] = field(default_factory=set)


def _piece(items: list[Telegram | _Garbage], ean: str, name: str, state: _State) -> SourceData:
    telegrams: list[Telegram] = []
    garbage: list[Refusal] = []
    numbers: list[int] = []
    for item in items:
        if isinstance(item, _Garbage):
            garbage.append(
                Refusal(
                    "p1_readings",
                    state.number + 1,
                    ean,
                    "MTR-2.truncated",
                    f"{item.frames} frame(s), {item.size} byte(s) starting with / but without "
                    "a line end: not a telegram (telegrams "
                    f"{state.number + 1}..{state.number + item.frames}); check the serial line",
                    item.raw.decode("latin-1"),
                )
            )
            state.number += item.frames
            continue
        state.number += 1
        numbers.append(state.number)
        telegrams.append(item)
    source = source_from_telegrams(telegrams, ean, name, "", numbers=numbers, state=state)
    source.refused = sorted([*source.refused, *garbage], key=lambda r: r.record)
    return source


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
    telegrams: Iterable[Telegram],
    ean: str,
    name: str,
    digest: str,
    numbers: Iterable[int] | None = None,
    state: _State | None = None,
) -> SourceData:
    """The rows of a sequence of telegrams of one connection (file or MQTT batch);
    ``numbers`` are their record numbers (1, 2, ... unless given), ``state`` what
    earlier pieces of the same capture took already."""
    source = SourceData(name, digest)
    readings = _Rows("p1_readings")
    counters = _Rows("power_failures")
    log = _Rows("power_failure_log")
    events = _Rows("voltage_events")
    gas = _Rows("p1_gas")
    state = state or _State()
    seen_log = state.seen_log
    seen_gas = state.seen_gas
    numbered = (
        zip(numbers, telegrams, strict=True)
        if numbers is not None
        else enumerate(telegrams, start=1)
    )
    for number, telegram in numbered:
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
