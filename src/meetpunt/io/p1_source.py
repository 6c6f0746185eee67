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

DSMR 2.2/3 times carry no S/W flag; in the repeated October hour (02:00-03:00 local,
passed twice) the capture's order decides (MTR-2.ambiguous_time): the first pass is CEST
(+02:00), and a backwards jump of the wall clock inside that hour marks the switch to
the second pass, CET (+01:00). A telegram that follows one from just before 02:00 is in
the first pass; telegrams at the start of a capture wait for the jump. A telegram no
neighbour places (a single telegram, a capture that starts inside the hour and never
jumps back) is refused with ``MTR-2.ambiguous_time`` instead of being guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from meetpunt.domain.calendar import LOCAL_TZ
from meetpunt.domain.ean import is_valid_ean
from meetpunt.errors import MeterDataError
from meetpunt.io.files import refuse_file, sha256_of
from meetpunt.io.p1 import Telegram, TelegramSplitter, parse_telegram, repeated_hour_wall
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
                yield _piece(chunk, owner, name, state, final=False)
                chunk = []
        yield _piece(chunk, owner, name, state, final=True)

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


AMBIGUOUS_TIME = "MTR-2.ambiguous_time"
_HOUR = timedelta(hours=1)


class _Passes:
    """Which pass through the repeated October hour a capture is in (MTR-2.ambiguous_time)."""

    def __init__(self) -> None:
        self.first: set[date] = set()
        self.second: set[date] = set()
        self.last: datetime | None = None
        """The resolved UTC time of the last telegram placed."""
        self.held: list[tuple[int, Telegram, datetime]] = []
        """(number, telegram, wall time) of telegrams in the hour not yet placed."""

    def last_wall(self) -> datetime | None:
        if self.held:
            return self.held[-1][2]
        if self.last is None:
            return None
        return self.last.astimezone(LOCAL_TZ).replace(tzinfo=None)

    def place(self, at: datetime, wall: datetime) -> bool | None:
        """Whether a telegram read as ``at`` (CEST) at ``wall`` is in the second pass
        (CET, one hour later); None while no neighbour tells (it is then held)."""
        day = wall.date()
        before = self.last_wall()
        if day in self.second:
            return True
        if day in self.first or self.held:
            if before is not None and wall < before:  # the wall clock jumped back
                self.second.add(day)
                return True
            if day in self.first:
                return False
            return None
        hour_start = wall.replace(hour=2, minute=0, second=0, microsecond=0)
        if (
            self.last is not None
            and before is not None
            and before < hour_start
            and at - self.last <= _HOUR
        ):
            self.first.add(day)
            return False
        return None


def _unplaced(number: int, telegram: Telegram, ean: str, wall: datetime) -> Refusal:
    return Refusal(
        "p1_readings",
        number,
        ean,
        AMBIGUOUS_TIME,
        f"telegram time {wall:%Y-%m-%d %H:%M:%S} has no S/W flag (DSMR 2.2/3) and falls in "
        "the repeated October hour; no neighbouring telegram tells the first (CEST) from "
        "the second (CET) pass: send the capture with the telegrams around this hour",
        telegram.raw.decode("latin-1"),
    )


@dataclass
class _State:
    """What runs across the pieces of one capture: telegram numbering, the failure log
    entries and gas readings already taken (each is repeated in later telegrams), and
    the pass through a repeated October hour (a telegram held there waits for the next
    piece)."""

    number: int = 0
    seen_log: set[tuple[datetime, int]] = field(default_factory=set)
    seen_gas: set[tuple[int, datetime]] = field(default_factory=set)
    passes: _Passes = field(default_factory=_Passes)


def _piece(
    items: list[Telegram | _Garbage], ean: str, name: str, state: _State, final: bool
) -> SourceData:
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
    source = source_from_telegrams(
        telegrams, ean, name, "", numbers=numbers, state=state, final=final
    )
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
    final: bool = True,
) -> SourceData:
    """The rows of a sequence of telegrams of one connection (file or MQTT batch);
    ``numbers`` are their record numbers (1, 2, ... unless given), ``state`` what
    earlier pieces of the same capture took already; ``final`` is False for a piece
    that more of the capture follows (a telegram of the repeated October hour that no
    neighbour placed yet then waits instead of being refused)."""
    source = SourceData(name, digest)
    state = state or _State()
    rows = _Collected(ean, state.seen_log, state.seen_gas)
    _collect(source, rows, telegrams, ean, numbers, state, final)
    return _with_tables(source, rows.kinds)


def source_from_meters(
    meters: Iterable[tuple[str, Sequence[Telegram]]], name: str, digest: str
) -> SourceData:
    """The rows of several connections' telegrams as one source (an MQTT micro-batch
    of many meters, one transaction; MTR-4, issue 14): one table per kind for all.

    Each meter keeps its own state (failure log and gas readings taken once, the pass
    through a repeated October hour) and its telegrams are numbered after the previous
    meter's, so record numbers are unique in the source. The rows and refusals are
    those of :func:`source_from_telegrams` per meter, concatenated in order."""
    source = SourceData(name, digest)
    kinds = _kinds()
    first = 1
    for ean, telegrams in meters:
        state = _State()
        rows = _Collected(ean, state.seen_log, state.seen_gas, kinds)
        numbers = range(first, first + len(telegrams))
        _collect(source, rows, telegrams, ean, numbers, state, True)
        first += len(telegrams)
    return _with_tables(source, kinds)


def _with_tables(source: SourceData, kinds: dict[str, _Rows]) -> SourceData:
    for kind, collected in kinds.items():
        table = collected.table()
        if table.num_rows:
            source.tables[kind] = table
    return source


def _collect(
    source: SourceData,
    rows: _Collected,
    telegrams: Iterable[Telegram],
    ean: str,
    numbers: Iterable[int] | None,
    state: _State,
    final: bool,
) -> None:
    """The rows of ``telegrams`` into ``rows``, their refusals into ``source``."""
    passes = state.passes

    def emit(number: int, telegram: Telegram, at: datetime, wall: datetime | None) -> None:
        """Rows of one telegram at ``at``; ``wall`` is set for one in the second pass."""
        rows.add(number, telegram, at, wall)
        passes.last = at

    numbered = (
        zip(numbers, telegrams, strict=True)
        if numbers is not None
        else enumerate(telegrams, start=1)
    )
    for number, telegram in numbered:
        if not telegram.valid or telegram.timestamp is None:
            source.refused.append(telegram_refusal(number, ean, telegram))
            continue
        at = telegram.timestamp
        wall = repeated_hour_wall(at) if telegram.ambiguous_time else None
        if wall is None:
            source.refused += [_unplaced(n, t, ean, w) for n, t, w in passes.held]
            passes.held.clear()
            emit(number, telegram, at, None)
            continue
        second = passes.place(at, wall)
        if second is None:
            passes.held.append((number, telegram, wall))
            continue
        for n, t, _ in passes.held:  # the wall clock jumped back: those were the first pass
            emit(n, t, t.timestamp or at, None)
        passes.held.clear()
        emit(number, telegram, at + _HOUR if second else at, wall if second else None)
    source.refused += rows.refused
    if final:
        source.refused += [_unplaced(n, t, ean, w) for n, t, w in passes.held]
        passes.held.clear()


def telegram_refusal(number: int, ean: str, telegram: Telegram) -> Refusal:
    """The record of a telegram the parser refused (or one without a time): its rule,
    the parser's message and its raw text, whole (MTR-2)."""
    error = telegram.error
    return Refusal(
        "p1_readings",
        number,
        ean,
        error.rule if error else "MTR-2.timestamp",
        (error.message if error else "telegram has no timestamp (0-0:1.0.0)")
        + (f" (byte {error.offset} of the telegram)" if error else ""),
        telegram.raw.decode("latin-1"),
    )


UNKNOWN_CONNECTION = "MTR-5.unknown_connection"


def unknown_connection_refusal(number: int, ean: str, telegram: Telegram) -> Refusal:
    """One record for a whole telegram of an EAN the register does not know (MTR-5), not
    one per kind its rows would have been (readings, counters, failure log, voltage
    events, gas); a telegram the parser refused keeps the parser's rule."""
    if not telegram.valid or telegram.timestamp is None:
        return telegram_refusal(number, ean, telegram)
    return Refusal(
        "p1_readings",
        number,
        ean,
        UNKNOWN_CONNECTION,
        f"P1 telegram of {ean}, which is not an electricity connection in the register "
        "(kept whole: readings, counters, failure log, voltage events and gas); import "
        "the register first (meetpunt register import) or correct the EAN the meter "
        "publishes under",
        telegram.raw.decode("latin-1"),
    )


_P1_KINDS = ("p1_readings", "power_failures", "power_failure_log", "voltage_events", "p1_gas")


def _kinds() -> dict[str, _Rows]:
    return {kind: _Rows(kind) for kind in _P1_KINDS}


def _after_telegram(
    number: int, ean: str, end: datetime, at: datetime, telegram: Telegram
) -> Refusal:
    """A failure-log entry that ends after the telegram carrying it, by the same meter
    clock: the meter writes an entry when the voltage returns, so it cannot (MTR-5)."""
    return Refusal(
        "power_failure_log",
        number,
        ean,
        "MTR-5.implausible_time",
        f"failure log entry ends {end.isoformat()}, after its own telegram's time "
        f"{at.isoformat()} (the same meter clock): the entry or the clock is corrupt; "
        "read the meter's log again",
        telegram.raw.decode("latin-1"),
    )


class _Collected:
    """The rows of one capture per kind, each failure-log entry and gas reading once."""

    def __init__(
        self,
        ean: str,
        seen_log: set[tuple[datetime, int]],
        seen_gas: set[tuple[int, datetime]],
        kinds: dict[str, _Rows] | None = None,
    ) -> None:
        self.ean = ean
        self.kinds = _kinds() if kinds is None else kinds
        """Column lists per kind (shared by the meters of one source)."""
        self.seen_log = seen_log
        self.seen_gas = seen_gas
        self.refused: list[Refusal] = []
        """Failure-log entries that end after their own telegram (MTR-5.implausible_time)."""

    def add(
        self, number: int, telegram: Telegram, at: datetime, second_wall: datetime | None
    ) -> None:
        """The rows of one valid telegram at ``at`` (its resolved UTC time). In the
        second pass of the repeated hour (``second_wall``), an M-Bus capture time without
        flag in that hour and not after the telegram's wall time is CET as well (+1 h)."""
        ean = self.ean
        readings, counters, log = (
            self.kinds[k] for k in ("p1_readings", "power_failures", "power_failure_log")
        )
        events, gas = self.kinds["voltage_events"], self.kinds["p1_gas"]
        seen_log, seen_gas = self.seen_log, self.seen_gas
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
                if entry.end > at:
                    self.refused.append(_after_telegram(number, ean, entry.end, at, telegram))
                    continue
                log.add(record=number, ean=ean, end=entry.end, duration_s=entry.duration_s)
        for phase, (sags, swells) in enumerate(
            zip(telegram.sags, telegram.swells, strict=True), start=1
        ):
            if sags is not None or swells is not None:
                events.add(record=number, ean=ean, at=at, phase=phase, sags=sags, swells=swells)
        for channel in telegram.gas_readings:
            stamp = channel.captured_at
            if stamp is not None and second_wall is not None and channel.ambiguous_time:
                gas_wall = repeated_hour_wall(stamp)
                if gas_wall is not None and gas_wall <= second_wall:
                    stamp = stamp + _HOUR
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
