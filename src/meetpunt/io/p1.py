"""DSMR P1 telegrams in, meetpunt values out (MTR-2; DSMR P1 companion standard 5.0.2).

Versions: DSMR 2.2 and 3.0 (no CRC, gas record ``0-n:24.3.0`` with the value on the next
line, timestamps without S/W flag), 4.x (4.0.4, 4.0.7, 4.2.x), 5.0.x and the Belgian
e-MUCS variant (``0-0:96.1.4`` instead of ``1-3:0.2.8``, gas on ``0-n:24.2.3``). Other
meters that speak the same framing (Sagemcom T210-D, Iskra IE, E.ON Hungary, EasyMeter
Q3D) parse too: every OBIS line is kept, unknown ones as text.

A telegram is ``/`` identification line, blank line, OBIS lines, ``!`` and, from DSMR 4
on, the CRC16/ARC of everything from ``/`` to ``!`` inclusive as 4 hex digits.

Values. Numbers are :class:`~decimal.Decimal` exactly as printed (``001581.123*kWh`` ->
``Decimal("1581.123")``, unit ``kWh``); the energy accessors give integer Wh. Counters
and M-Bus device types are ``int``; equipment identifiers and text messages are
hex-decoded where they are printable hex ASCII, else kept as sent; timestamps
``YYMMDDhhmmssX`` are aware UTC datetimes, X = ``S`` summer time (UTC+2) or ``W``
winter time (UTC+1). DSMR 2.2/3.0 timestamps have no flag and are read as
Europe/Amsterdam wall clock; a time in the repeated autumn hour (or the skipped spring
hour) sets :attr:`Telegram.ambiguous_time`. The e-MUCS maximum demand ``1-0:1.6.0``
and its 13-month history ``0-0:98.1.0`` are :class:`MaxDemand` values, each with its
own time. In :meth:`Telegram.to_json` decimals are
JSON numbers (every DSMR value has at most 15 significant digits, so the float prints
back exactly as the meter sent it).

Refusals are values, never exceptions: a telegram that fails its CRC or is malformed
comes back with ``valid=False`` and a :class:`P1Error` ``(rule, message, offset)``,
with its raw bytes kept for quarantine. Rules:

- ``MTR-2.header``: no ``/XXX5`` identification line at the start.
- ``MTR-2.truncated``: no ``!`` end (the telegram was cut off), or an identification
  line without line end.
- ``MTR-2.crc``: CRC mismatch, CRC not hex, or no CRC where the version needs one.
- ``MTR-2.malformed``: a line that is not an OBIS object, a repeated object, no object
  at all, a value that does not fit its object (a counter that is not digits, a
  register without unit, a failure log whose count does not match, an M-Bus reading
  that is not a number, an e-MUCS maximum demand or history that has the e-MUCS shape
  but does not fit it), bytes after the CRC.
- ``MTR-2.timestamp``: the telegram time, a failure-log end, an M-Bus capture time or
  an e-MUCS maximum demand time that is not a valid ``YYMMDDhhmmss[SW]`` (the meters'
  no-time stamp ``632525252525W`` for a maximum is accepted: no maximum yet).

Speed (``benchmarks/p1_parse.py``, target 25x dsmr_parser, also for the whole
``meetpunt p1 parse --json`` process). Measured on one core: a regex pass over a
900-byte body costs 12-20 us (Python's ``re`` runs ~15 ns a character). So a body is
split into lines with ``str.split``; a line met before (most lines repeat from one
telegram to the next) is looked up split and checked in :data:`_LINES_SEEN`, a new one
is split at its first ``(`` and checked with counts (:func:`_split_line`); the regex
grammar (:data:`_LINE`) only runs when that fails, to find the bad line. Values stay
text until asked for, only the objects that decide validity are read at parse time,
the CRC is C code (:mod:`meetpunt.io.crc`), and the checks of failure logs, M-Bus
readings and maximum demands are cached. About 20 us per DSMR 5 telegram;
:meth:`Telegram.to_json_bytes` adds about 12 us, writing lines met before from
:data:`_LINES_WRITTEN`. This module does not import pathlib or the domain calendar
(numpy, pyarrow) at load: start-up counts for the command.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import filterfalse
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

from meetpunt.io import obis as ob
from meetpunt.io.crc import crc16_arc
from meetpunt.jsonout import dumps_bytes, raw

if TYPE_CHECKING:  # at run time imported where used: it loads numpy and pyarrow
    from meetpunt.domain.calendar import Tariff

__all__ = [
    "MAX_TELEGRAM_BYTES",
    "RULES",
    "MBusChannel",
    "MaxDemand",
    "P1Error",
    "PowerFailure",
    "Telegram",
    "TelegramSplitter",
    "Value",
    "clear_caches",
    "parse_stream",
    "parse_telegram",
    "parse_timestamp",
    "read_p1_file",
    "split_telegrams",
]

#: A candidate telegram without ``!`` after this many bytes is given up as truncated.
MAX_TELEGRAM_BYTES: Final = 16_384

#: The version reported for a telegram without version object and without CRC.
LEGACY_VERSION: Final = "2.2/3.0"

#: Rule IDs of MTR-2 and what they mean (docs/p1.md has what to do about each).
RULES: Final = {
    "MTR-2.header": "no /XXX5 identification line at the start",
    "MTR-2.truncated": "the telegram ends before its ! end marker or line end",
    "MTR-2.crc": "the CRC16 does not match, is not hex, or is missing",
    "MTR-2.malformed": "a line or value that does not follow the P1 format",
    "MTR-2.timestamp": "a timestamp that is not YYMMDDhhmmss[SW]",
}


_OBIS = re.compile(r"\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}(?:\*\d{1,3})?", re.ASCII)
_GROUP = r"\([^()\r\n]*\)"
# The reference grammar of one object (used when the fast split gives up): OBIS code,
# value groups, DSMR 2.2/3.0 continuation lines (the gas value on the next line).
_LINE = re.compile(rf"({_OBIS.pattern})((?:{_GROUP})+(?:\r?\n(?:{_GROUP})+)*)\r?\n", re.ASCII)
_HEADER = re.compile(r"[A-Za-z]{3}\d", re.ASCII)
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_FRAME_END = re.compile(rb"[0-9A-Fa-f]{0,4}(\r?\n)?")
_OFFSETS = {"S": timedelta(hours=2), "W": timedelta(hours=1)}
# e-MUCS meters send this stamp (month 25, day 25...) for "no time": a month of the
# maximum demand history without a maximum (the meter was not yet installed).
_NO_TIME = "632525252525"
_BLANK = " \t\r\n\x00"  # what may stand around a telegram (not str.isspace: no \x1c-\x1f)
# Failure logs, M-Bus readings and their timestamps repeat from telegram to telegram
# (the log for weeks, a gas reading for 5 minutes to an hour): their checks are cached.
_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class P1Error:
    """Why a telegram was refused: rule ID, plain message, byte offset in the telegram."""

    rule: str
    message: str
    offset: int

    def as_dict(self) -> dict[str, Any]:
        """``{"rule", "message", "offset"}``."""
        return {"rule": self.rule, "message": self.message, "offset": self.offset}


class PowerFailure(NamedTuple):
    """One entry of the power failure event log 1-0:99.97.0: the END of a long failure."""

    end: datetime
    duration_s: int

    @property
    def start(self) -> datetime:
        """When the failure began: end minus duration."""
        return self.end - timedelta(seconds=self.duration_s)


class MaxDemand(NamedTuple):
    """An e-MUCS maximum demand (MTR-2): the highest quarter-hour average import power
    of a month and when it was reached.

    ``1-0:1.6.0`` is the running month's; every entry of the 13-month history
    ``0-0:98.1.0`` also has :attr:`closed_at`, when its month closed.
    """

    at: datetime | None
    """When the maximum was reached; None for the meters' no-time stamp
    ``632525252525W`` (a month without a maximum)."""
    value: Decimal
    unit: str
    closed_at: datetime | None = None
    """History entries: when the month closed and the meter stored it (00:00 local
    time on the 1st of the next month); None for ``1-0:1.6.0``."""

    def as_dict(self) -> dict[str, Any]:
        """``{"value", "unit", "timestamp"}``, history entries with ``"closed_at"`` too."""
        entry = {"value": float(self.value), "unit": self.unit, "timestamp": _iso(self.at)}
        if self.closed_at is not None:
            entry["closed_at"] = _iso(self.closed_at)
        return entry


Value = Decimal | int | str | datetime | MaxDemand | tuple[MaxDemand, ...] | None


@dataclass(frozen=True, slots=True)
class MBusChannel:
    """An M-Bus device on channel 1..4: type (3 = gas), id, last reading and its capture time."""

    channel: int
    device_type: int | None
    equipment_id: str | None
    captured_at: datetime | None
    value: Decimal | None
    unit: str | None
    ambiguous_time: bool = False
    """The capture time has no S/W flag (DSMR 2.2/3) and fell in a DST change hour."""

    @property
    def is_gas(self) -> bool:
        """Device type 3, or no device type but a reading in m3."""
        if self.device_type is not None:
            return self.device_type == ob.MBUS_GAS
        return self.unit == "m3"

    @property
    def is_placeholder(self) -> bool:
        """An empty channel: no equipment id and no reading (or a unitless zero)."""
        return not self.equipment_id and (self.value is None or (not self.unit and not self.value))

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape ``{"channel", "device_type", "id", "timestamp", "value", "unit"}``."""
        return {
            "channel": self.channel,
            "device_type": self.device_type,
            "id": self.equipment_id,
            "timestamp": _iso(self.captured_at),
            "value": _jsonable(self.value),
            "unit": self.unit,
        }


# --- timestamps -----------------------------------------------------------------------


def parse_timestamp(text: str) -> tuple[datetime, bool] | None:
    """``YYMMDDhhmmss[SW]`` -> (aware UTC datetime, ambiguous), or None when invalid.

    S = summer time (UTC+2), W = winter time (UTC+1). Without the flag (DSMR 2.2/3.0)
    the time is Europe/Amsterdam wall clock; ``ambiguous`` is True when it falls in
    the repeated autumn hour (read as its first, summer-time occurrence) or in the
    skipped spring hour. Years 69-99 are 1969-1999 (the meters' ``700101010000W``
    placeholder is 1970), 00-68 are 2000-2068.
    """
    n = len(text)
    if n not in (12, 13) or not text[:12].isdecimal() or text[6:8] > "23":
        return None  # (newer Pythons read hour 24 as the next midnight: not here)
    yy = text[0:2]
    century = "19" if yy >= "69" else "20"
    iso = f"{century}{yy}-{text[2:4]}-{text[4:6]}T{text[6:8]}:{text[8:10]}:{text[10:12]}"
    if n == 13:
        offset = _OFFSETS.get(text[12])
        if offset is None:
            return None
        try:  # fromisoformat checks the calendar (no 30 February, no hour 25)
            return datetime.fromisoformat(iso + "+00:00") - offset, False
        except ValueError:
            return None
    try:
        wall = datetime.fromisoformat(iso)
    except ValueError:
        return None
    from meetpunt.domain.calendar import LOCAL_TZ  # DSMR 2.2/3.0 only

    first = wall.replace(tzinfo=LOCAL_TZ, fold=0)
    utc = first.astimezone(UTC)
    ambiguous = (
        first.utcoffset() != wall.replace(tzinfo=LOCAL_TZ, fold=1).utcoffset()
        or utc.astimezone(LOCAL_TZ).replace(tzinfo=None) != wall
    )
    return utc, ambiguous


def repeated_hour_wall(utc: datetime) -> datetime | None:
    """The Europe/Amsterdam wall time (naive) of a flagless time read as its first
    (summer-time) occurrence, when that wall time falls in the repeated autumn hour
    (02:00-03:00 on the last Sunday of October, passed twice); None otherwise.

    ``parse_timestamp`` reads such a time as CEST (+02:00); the second pass is one hour
    later in UTC (CET, +01:00). Which one a telegram was is decided from the order of
    the capture (:mod:`meetpunt.io.p1_source`, MTR-2.ambiguous_time).
    """
    from meetpunt.domain.calendar import LOCAL_TZ  # DSMR 2.2/3.0 only

    local = utc.astimezone(LOCAL_TZ)
    if local.fold or local.utcoffset() == local.replace(fold=1).utcoffset():
        return None
    return local.replace(tzinfo=None)


@lru_cache(maxsize=_CACHE_SIZE)
def _stamp(text: str) -> tuple[datetime, bool] | None:
    """:func:`parse_timestamp`, cached: failure-log ends and M-Bus capture times repeat
    from one telegram to the next (the telegram time does not, and is not cached)."""
    return parse_timestamp(text)


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat().replace("+00:00", "Z")


# --- values ---------------------------------------------------------------------------
# Inside a Telegram an object's value is kept as sent minus its first "(" (and the line
# break before a DSMR 2.2/3.0 continuation line): "(001.19*kW)" is "001.19*kW)",
# "(ts)(1.0*m3)" is "ts)(1.0*m3)".


def _groups(value: str) -> list[str]:
    """``ts)(v*m3)`` -> ``["ts", "v*m3"]``."""
    return value[:-1].split(")(")


def _is_number(text: str) -> bool:
    """Digits with at most one decimal point and an optional leading minus."""
    digits = text.replace(".", "", 1)
    return (digits[1:] if digits[:1] == "-" else digits).isdecimal()


def _number(group: str) -> tuple[Decimal | None, str | None]:
    """``001.19*kW`` -> (Decimal("1.19"), "kW"); ``00000000`` -> (Decimal(0), None)."""
    number, star, unit = group.partition("*")
    return (Decimal(number) if _is_number(number) else None), (unit if star else None)


def _hex_text(text: str) -> str:
    """Hex ASCII decoded when it is printable text, else the text as sent."""
    if len(text) % 2 or not text or not _HEXDIGITS.issuperset(text):
        return text
    decoded = bytes.fromhex(text)
    if decoded.isascii():
        ascii_text = decoded.decode("ascii")
        if ascii_text.isprintable():
            return ascii_text
    return text


def _typed(obis: str, value: str) -> tuple[Value, str | None]:
    """The typed value and unit of one object; never raises (unreadable -> text)."""
    kind = ob.kind_of(obis)
    if kind == "failure_log":
        head = _groups(value)[0]
        return (int(head) if head.isdecimal() else None), None
    if kind == "mbus_value":
        parts = _groups(value)
        if len(parts) == 2:
            number, unit = _number(parts[1])
            if number is not None:
                return number, unit
        return "(" + value, None
    if kind == "legacy_gas":
        parts = _groups(value)
        if len(parts) >= 7 and _is_number(parts[-1]):
            return Decimal(parts[-1]), parts[5] or None
        return "(" + value, None
    if kind == "max_demand":
        demand = _max_demand(value)[0]
        if demand is not None:
            return demand, demand.unit
    elif kind == "max_demand_history":
        history = _max_demand_history(value)[0]
        if history is not None:
            return history, None
    if "(" in value:
        return "(" + value, None
    inner = value[:-1]
    if not inner:
        return None, None
    if "*" in inner:
        number, unit = _number(inner)
        return (inner, None) if number is None else (number, unit)
    if kind == "int":
        return (int(inner) if inner.isdecimal() else inner), None
    if kind == "hex":
        return _hex_text(inner), None
    if kind == "timestamp":
        parsed = parse_timestamp(inner)
        return (parsed[0] if parsed else inner), None
    return inner, None


def _jsonable(value: Value) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return _iso(value)
    return value


def _field_json(obis: str, value: str) -> dict[str, Any]:
    """The JSON entry of one object: ``{"value", "unit"}``; a maximum demand adds its
    ``"timestamp"``, a maximum demand history has a list of them as value."""
    number, star, unit_text = value[:-1].partition("*")
    if star and "(" not in value and _is_number(number):  # the common number*unit
        return {"value": float(number), "unit": unit_text}
    typed, unit = _typed(obis, value)
    if isinstance(typed, MaxDemand):
        return typed.as_dict()
    if isinstance(typed, tuple):  # the maximum demand history
        history = cast("tuple[MaxDemand, ...]", typed)
        return {"value": [entry.as_dict() for entry in history], "unit": None}
    return {"value": _jsonable(typed), "unit": unit}


# The JSON of an object line, its code included, written once for every telegram that
# has it: most lines repeat from one telegram to the next (identifiers, counters, zero
# powers, voltages), and a cached lookup is a tenth of building and writing the entry.
def _line_written(line: str) -> None:
    obis, _, value = line.partition("(")
    number, star, unit = value[:-1].partition("*")
    if star and "(" not in value and _is_number(number):  # the common number*unit
        entry = (obis.encode(), dumps_bytes(float(number)), dumps_bytes(unit))
        written = b'"%b":{"value":%b,"unit":%b}' % entry  # (an OBIS code needs no escape)
    else:
        written = dumps_bytes({obis: _field_json(obis, value)})[1:-1]
    _LINES_WRITTEN[line] = written


def _lines_written(lines: list[str]) -> bytes:
    """The JSON object of the object lines, each from :data:`_LINES_WRITTEN` when met
    before."""
    for line in filterfalse(_LINES_WRITTEN.__contains__, lines):  # not met before
        _line_written(line)
    return b"{%b}" % b",".join(map(_LINES_WRITTEN.__getitem__, lines))


@lru_cache(maxsize=_CACHE_SIZE)
def _log_written(value: str) -> Any:
    entries = _failure_log(value)[0]
    return raw(dumps_bytes([{"end": _iso(e.end), "duration_s": e.duration_s} for e in entries]))


# --- the telegram ---------------------------------------------------------------------


TELEGRAM_VALUES: tuple[str, ...] = (
    "equipment_id",
    "import_t1_wh",
    "import_t2_wh",
    "export_t1_wh",
    "export_t2_wh",
    "tariff",
    "power_failures",
    "long_power_failures",
    "sags",
    "swells",
    "voltages",
    "currents",
    "power_import_kw",
    "power_export_kw",
    "power_failure_log",
    "mbus",
    "gas_readings",
    "gas",
    "max_demand",
    "max_demand_history",
)
"""The typed values a :class:`Telegram` offers as properties, by name: what a reader
of telegrams may ask for, and what the fuzz suites ask of every input."""


class Telegram:
    """One parsed P1 telegram (MTR-2): verdict, raw bytes, and the objects it carries.

    Typed values are computed when asked for (:meth:`value`, the accessors,
    :meth:`to_json`). A refused telegram has ``valid=False`` and :attr:`error`; it
    keeps what was read before the refusal (nothing after a header, truncation, CRC
    or line-format refusal), but ingestion must store only valid telegrams.
    """

    __slots__ = (
        "_fields",
        "_lines",
        "_log",
        "_mbus",
        "ambiguous_time",
        "crc_ok",
        "error",
        "header",
        "raw",
        "timestamp",
        "valid",
        "version",
    )

    def __init__(self, raw: bytes) -> None:
        self.raw: bytes = raw
        self.valid: bool = False
        self.crc_ok: bool | None = None
        self.version: str | None = None
        self.header: str | None = None
        self.timestamp: datetime | None = None
        self.error: P1Error | None = None
        self.ambiguous_time: bool = False
        self._fields: dict[str, str] = {}
        self._lines: list[str] | None = None  # the object lines, when split the fast way
        self._log: tuple[PowerFailure, ...] | None = None
        self._mbus: tuple[MBusChannel, ...] | None = None

    def __repr__(self) -> str:
        verdict = "valid" if self.valid else f"invalid {self.error}"
        return f"<Telegram {self.header!r} {self.version} {_iso(self.timestamp)} {verdict}>"

    # typed access ---------------------------------------------------------------

    @property
    def fields(self) -> dict[str, str]:
        """Every OBIS object in telegram order, its value text as sent: ``{"1-0:1.8.1":
        "(001581.123*kWh)"}``. Unknown objects are here too."""
        return {obis: "(" + value for obis, value in self._fields.items()}

    def raw_value(self, obis: str) -> str | None:
        """An object's value text as sent, ``(...)`` groups included; None when absent."""
        value = self._fields.get(obis)
        return None if value is None else "(" + value

    def value(self, obis: str) -> Value:
        """The typed value of an object (Decimal, int, str, datetime) or None."""
        value = self._fields.get(obis)
        return None if value is None else _typed(obis, value)[0]

    def unit(self, obis: str) -> str | None:
        """The unit printed with an object's value (``kWh``, ``V``, ``m3``...), or None."""
        value = self._fields.get(obis)
        return None if value is None else _typed(obis, value)[1]

    def _int(self, obis: str) -> int | None:
        value = self._fields.get(obis)
        if value is None:
            return None
        inner = value[:-1]
        return int(inner) if inner.isdecimal() else None

    def _wh(self, obis: str) -> int | None:
        value = self._fields.get(obis)
        if value is None or "(" in value:
            return None
        number, unit = _number(value[:-1])
        if number is None:
            return None
        if unit == "kWh":
            return int(number * 1000)  # exact for 3 decimals; finer digits are truncated
        if unit == "Wh":
            return int(number)
        return None

    @property
    def equipment_id(self) -> str | None:
        """The meter's equipment identifier (0-0:96.1.1, else 0-0:96.1.0), hex-decoded."""
        for obis in (ob.EQUIPMENT_ID, ob.EQUIPMENT_ID_ALT):
            found = self.value(obis)
            if isinstance(found, str):
                return found
        return None

    @property
    def import_t1_wh(self) -> int | None:
        """Energy delivered to the client, tariff 1 (1-0:1.8.1), Wh."""
        return self._wh(ob.IMPORT_T1)

    @property
    def import_t2_wh(self) -> int | None:
        """Energy delivered to the client, tariff 2 (1-0:1.8.2), Wh."""
        return self._wh(ob.IMPORT_T2)

    @property
    def export_t1_wh(self) -> int | None:
        """Energy delivered by the client, tariff 1 (1-0:2.8.1), Wh."""
        return self._wh(ob.EXPORT_T1)

    @property
    def export_t2_wh(self) -> int | None:
        """Energy delivered by the client, tariff 2 (1-0:2.8.2), Wh."""
        return self._wh(ob.EXPORT_T2)

    @property
    def tariff(self) -> Tariff | None:
        """The register counting now (0-0:96.14.0): ``0001`` -> T1, ``0002`` -> T2.

        The indicator names the register (x.8.1 or x.8.2); in the Netherlands T1 is
        off-peak, Belgium numbers them the other way round.
        """
        return _tariffs().get(self._fields.get(ob.TARIFF, ""))

    @property
    def power_failures(self) -> int | None:
        """Number of power failures in any phase (0-0:96.7.21)."""
        return self._int(ob.FAILURES)

    @property
    def long_power_failures(self) -> int | None:
        """Number of long power failures in any phase (0-0:96.7.9)."""
        return self._int(ob.LONG_FAILURES)

    @property
    def sags(self) -> tuple[int | None, int | None, int | None]:
        """Voltage sag counters L1, L2, L3 (1-0:32.32.0 / 52.32.0 / 72.32.0)."""
        l1, l2, l3 = ob.SAGS
        return self._int(l1), self._int(l2), self._int(l3)

    @property
    def swells(self) -> tuple[int | None, int | None, int | None]:
        """Voltage swell counters L1, L2, L3 (1-0:32.36.0 / 52.36.0 / 72.36.0)."""
        l1, l2, l3 = ob.SWELLS
        return self._int(l1), self._int(l2), self._int(l3)

    def _decimal(self, obis: str) -> Decimal | None:
        found = self.value(obis)
        return found if isinstance(found, Decimal) else None

    @property
    def voltages(self) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
        """Instantaneous voltage L1, L2, L3 in V (1-0:32.7.0 / 52.7.0 / 72.7.0)."""
        l1, l2, l3 = ob.VOLTAGES
        return self._decimal(l1), self._decimal(l2), self._decimal(l3)

    @property
    def currents(self) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
        """Instantaneous current L1, L2, L3 in A (1-0:31.7.0 / 51.7.0 / 71.7.0)."""
        l1, l2, l3 = ob.CURRENTS
        return self._decimal(l1), self._decimal(l2), self._decimal(l3)

    @property
    def power_import_kw(self) -> Decimal | None:
        """Actual power delivered to the client (1-0:1.7.0), kW."""
        return self._decimal(ob.POWER_IMPORT)

    @property
    def power_export_kw(self) -> Decimal | None:
        """Actual power delivered by the client (1-0:2.7.0), kW."""
        return self._decimal(ob.POWER_EXPORT)

    @property
    def power_failure_log(self) -> tuple[PowerFailure, ...]:
        """The long power failures of 1-0:99.97.0, as sent: END time and duration."""
        if self._log is None:
            value = self._fields.get(ob.FAILURE_LOG)
            self._log = _failure_log(value)[0] if value else ()
        return self._log

    @property
    def mbus(self) -> tuple[MBusChannel, ...]:
        """The M-Bus devices on channels 1..4 that the telegram mentions, by channel."""
        if self._mbus is None:
            keys = [_mbus_key(self._fields, n) for n in ob.MBUS_CHANNELS]
            self._mbus = tuple(_mbus_channel(*key) for key in keys if key is not None)
        return self._mbus

    @property
    def gas_readings(self) -> tuple[MBusChannel, ...]:
        """The gas meters, on whichever channel, without empty placeholder channels."""
        return tuple(ch for ch in self.mbus if ch.is_gas and not ch.is_placeholder)

    @property
    def gas(self) -> MBusChannel | None:
        """The gas meter (the first of :attr:`gas_readings`), or None."""
        readings = self.gas_readings
        return readings[0] if readings else None

    @property
    def max_demand(self) -> MaxDemand | None:
        """e-MUCS: this month's maximum demand (1-0:1.6.0) and when it was reached."""
        value = self._fields.get(ob.MAX_DEMAND)
        return None if value is None else _max_demand(value)[0]

    @property
    def max_demand_history(self) -> tuple[MaxDemand, ...]:
        """e-MUCS: the maximum demand of each of the last (up to 13) months, in the order
        sent (0-0:98.1.0); empty without one (or with another meter's object)."""
        value = self._fields.get(ob.MAX_DEMAND_HISTORY)
        return (None if value is None else _max_demand_history(value)[0]) or ()

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of docs/p1.md: verdict, header, fields, failure log, M-Bus.

        A new dict every call, free to change; :meth:`to_json_bytes` is the fast way to
        write it out."""
        return {
            "valid": self.valid,
            "crc_ok": self.crc_ok,
            "version": self.version,
            "header": self.header,
            "timestamp": _iso(self.timestamp),
            "fields": {obis: _field_json(obis, value) for obis, value in self._fields.items()},
            "power_failure_log": [
                {"end": _iso(e.end), "duration_s": e.duration_s} for e in self.power_failure_log
            ],
            "mbus": [ch.as_dict() for ch in self.mbus],
            "error": None if self.error is None else self.error.as_dict(),
        }

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json` written as compact UTF-8 JSON (:func:`meetpunt.jsonout.dumps_bytes`).

        Several times faster than ``dumps_bytes(to_json())`` on a stream of one meter
        (MTR-2 speed target): the entries of objects, failure logs and M-Bus channels
        that repeat from one telegram to the next are built once and shared."""
        fields = self._fields
        lines = self._lines
        if lines is None:
            lines = [f"{obis}({value}" for obis, value in fields.items()]
        stamp = _iso(self.timestamp)
        if len(_LINES_WRITTEN) >= _CACHE_SIZE:
            _LINES_WRITTEN.clear()
        if stamp is not None:  # the telegram time never repeats and is read already
            line = f"{ob.TIMESTAMP}({fields[ob.TIMESTAMP]}"
            _LINES_WRITTEN[line] = b'"%b":{"value":"%b","unit":null}' % (_TIME_KEY, stamp.encode())
        log = fields.get(ob.FAILURE_LOG)
        error = self.error
        return dumps_bytes(
            {
                "valid": self.valid,
                "crc_ok": self.crc_ok,
                "version": self.version,
                "header": self.header,
                "timestamp": stamp,
                "fields": raw(_lines_written(lines)),
                "power_failure_log": _log_written(log) if log else [],
                "mbus": _mbus_written(tuple(map(fields.get, _MBUS_ALL))),
                "error": None if error is None else error.as_dict(),
            }
        )


_TIME_KEY: Final = ob.TIMESTAMP.encode()


def _tariffs() -> dict[str, Tariff]:
    from meetpunt.domain.calendar import Tariff

    return {"0001)": Tariff.T1, "0002)": Tariff.T2}


# --- object readers used by the checks and the accessors --------------------------------


@lru_cache(maxsize=_CACHE_SIZE)
def _failure_log(value: str) -> tuple[tuple[PowerFailure, ...], str | None]:
    """The entries of 1-0:99.97.0 and, when it does not parse, what is wrong."""
    parts = _groups(value)
    if parts == [""]:  # 1-0:99.97.0() : an empty log (Iskra AM550)
        return (), None
    if not parts[0].isdecimal():
        return (), f"the failure log count {parts[0]!r} is not a number"
    count = int(parts[0])
    if count == 0 and len(parts) <= 2:
        return (), None
    if len(parts) != 2 + 2 * count:
        held = (len(parts) - 2) / 2
        return (), f"the failure log says {count} entries but holds {held:g}"
    entries = []
    for i in range(2, len(parts), 2):
        end = _stamp(parts[i])
        if end is None:
            return (), f"timestamp: failure log entry {parts[i]!r} is not YYMMDDhhmmss[SW]"
        seconds, _, unit = parts[i + 1].partition("*")
        if not seconds.isdecimal() or unit != "s":
            return (), f"the failure duration {parts[i + 1]!r} is not seconds"
        entries.append(PowerFailure(end[0], int(seconds)))
    return tuple(entries), None


_Reading = tuple[datetime | None, Decimal | None, str | None, str, bool]


@lru_cache(maxsize=_CACHE_SIZE)
def _mbus_reading(obis: str, value: str) -> _Reading:
    """(capture time, value, unit, problem, ambiguous time) of an M-Bus reading; the
    problem is '' when the reading is fine."""
    parts = _groups(value)
    if obis.endswith("24.3.0"):
        if len(parts) < 7:
            return None, None, None, "the DSMR 2.2/3 gas record misses its value line", False
        stamp, number, unit = parts[0], parts[-1], parts[5] or None
    elif len(parts) == 2:
        stamp = parts[0]
        number, star, unit_text = parts[1].partition("*")
        unit = unit_text if star else None
    else:
        return None, None, None, f"{obis} needs (time)(value), has {len(parts)} groups", False
    parsed = _stamp(stamp)
    if parsed is None:
        problem = f"timestamp: capture time {stamp!r} is not YYMMDDhhmmss[SW]"
        return None, None, None, problem, False
    if not _is_number(number):
        return None, None, None, f"the reading {number!r} is not a number", False
    return parsed[0], Decimal(number), unit, "", parsed[1]


# Per channel: the device type object, the id objects, the reading objects, all three.
_MBUS_KEYS: Final = {
    n: (
        f"0-{n}:{ob.MBUS_DEVICE_TYPE}",
        tuple(f"0-{n}:{code}" for code in ob.MBUS_IDS),
        tuple(f"0-{n}:{code}" for code in ob.MBUS_VALUES),
        (
            f"0-{n}:{ob.MBUS_DEVICE_TYPE}",
            *(f"0-{n}:{code}" for code in ob.MBUS_IDS),
            *(f"0-{n}:{code}" for code in ob.MBUS_VALUES),
        ),
    )
    for n in ob.MBUS_CHANNELS
}

_MBusKey = tuple[int, str | None, str | None, str | None, str | None]


def _mbus_key(fields: dict[str, str], n: int) -> _MBusKey | None:
    """(channel, device type, id, reading object, reading) as sent, or None when the
    telegram does not mention channel ``n``."""
    type_key, id_keys, value_keys, every_key = _MBUS_KEYS[n]
    if fields.keys().isdisjoint(every_key):
        return None
    type_value = fields.get(type_key)
    id_value = reading = None
    for key in id_keys:
        if (id_value := fields.get(key)) is not None:
            break
    for reading_key in value_keys:
        if (reading := fields.get(reading_key)) is not None:
            break
    if type_value is None and id_value is None and reading is None:
        return None
    return n, type_value, id_value, (reading_key if reading is not None else None), reading


@lru_cache(maxsize=_CACHE_SIZE)
def _mbus_channel(
    n: int, type_value: str | None, id_value: str | None, obis: str | None, reading: str | None
) -> MBusChannel:
    device_type = int(type_value[:-1]) if type_value and type_value[:-1].isdecimal() else None
    equipment_id = (_hex_text(id_value[:-1]) or None) if id_value is not None else None
    captured = number = unit = None
    ambiguous = False
    if obis is not None and reading is not None:
        captured, number, unit, _, ambiguous = _mbus_reading(obis, reading)
    return MBusChannel(n, device_type, equipment_id, captured, number, unit, ambiguous)


#: Every M-Bus object of every channel.
_MBUS_ALL: Final = tuple(key for keys in _MBUS_KEYS.values() for key in keys[3])


@lru_cache(maxsize=_CACHE_SIZE)
def _mbus_written(values: tuple[str | None, ...]) -> Any:
    """The JSON list of the M-Bus channels, from the values of :data:`_MBUS_ALL` (which
    change every 5 minutes to an hour)."""
    fields = {key: value for key, value in zip(_MBUS_ALL, values, strict=True) if value}
    keys = [_mbus_key(fields, n) for n in ob.MBUS_CHANNELS]
    return raw(dumps_bytes([_mbus_channel(*key).as_dict() for key in keys if key is not None]))


def _demand_stamp(stamp: str) -> tuple[datetime | None, str | None]:
    """The time of a maximum (None for the no-time stamp), or what is wrong with it."""
    if stamp[:12] == _NO_TIME and stamp[12:] in ("", "S", "W"):
        return None, None
    parsed = _stamp(stamp)
    if parsed is None:
        return None, f"timestamp: maximum demand time {stamp!r} is not YYMMDDhhmmss[SW]"
    return parsed[0], None


def _demand(group: str) -> tuple[Decimal, str] | None:
    """``02.589*kW`` -> (Decimal("2.589"), "kW"); None without number or unit."""
    number, star, unit = group.partition("*")
    return (Decimal(number), unit) if star and unit and _is_number(number) else None


@lru_cache(maxsize=_CACHE_SIZE)
def _max_demand(value: str) -> tuple[MaxDemand | None, str | None]:
    """e-MUCS ``1-0:1.6.0(time)(value*kW)``: (the maximum, None) or (None, what is wrong).

    (None, None) for another shape: a single ``(value*kW)`` stays a number, more
    groups stay text, as for any object without a type."""
    parts = _groups(value)
    if len(parts) != 2:
        return None, None
    at, problem = _demand_stamp(parts[0])
    if problem is not None:
        return None, problem
    demand = _demand(parts[1])
    if demand is None:
        return None, f"the maximum demand {parts[1]!r} is not a number with its unit"
    return MaxDemand(at, *demand), None


@lru_cache(maxsize=_CACHE_SIZE)
def _max_demand_history(value: str) -> tuple[tuple[MaxDemand, ...] | None, str | None]:
    """e-MUCS ``0-0:98.1.0``: (the entries, None) or (None, what is wrong).

    The format is a profile-generic list: the number of entries n, the two capture
    objects ``(1-0:1.6.0)(1-0:1.6.0)``, then n times (month closed)(time of the
    maximum)(value*kW); a meter with no history yet sends ``(0)(1-0:1.6.0)(1-0:1.6.0)()``.
    Another shape under the same code (E.ON Hungary's monthly billing history starts
    with a time, not a count and capture objects) is (None, None): kept as text."""
    parts = _groups(value)
    if len(parts) < 3 or _OBIS.fullmatch(parts[1]) is None:
        return None, None
    count_text, _, captured, *rows = parts
    if not count_text.isdecimal():
        return None, f"the maximum demand history count {count_text!r} is not a number"
    if _OBIS.fullmatch(captured) is None:
        return None, f"the maximum demand history object {captured!r} is not an OBIS code"
    count = int(count_text)
    if count == 0 and rows in ([], [""]):
        return (), None
    if len(rows) != 3 * count:
        held = len(rows) / 3
        return None, f"the maximum demand history says {count} months but holds {held:.3g}"
    entries: list[MaxDemand] = []
    for i in range(0, len(rows), 3):
        closed = _stamp(rows[i])
        if closed is None:
            problem = f"timestamp: maximum demand month end {rows[i]!r} is not YYMMDDhhmmss[SW]"
            return None, problem
        at, wrong = _demand_stamp(rows[i + 1])
        if wrong is not None:
            return None, wrong
        demand = _demand(rows[i + 2])
        if demand is None:
            return None, f"the maximum demand {rows[i + 2]!r} is not a number with its unit"
        entries.append(MaxDemand(at, *demand, closed[0]))
    return tuple(entries), None


# --- parsing --------------------------------------------------------------------------


def _refuse(telegram: Telegram, rule: str, message: str, offset: int) -> Telegram:
    telegram.valid = False
    telegram.error = P1Error(rule, message, offset)
    return telegram


def _line_offset(text: str, obis: str) -> int:
    found = text.find("\n" + obis + "(")
    return found + 1 if found >= 0 else max(text.find(obis), 0)


def _version(fields: dict[str, str], has_crc: bool) -> str | None:
    code = fields.get(ob.VERSION)
    if code is not None:
        digits = code[:-1]
        return ".".join(digits) if digits.isdecimal() and len(digits) <= 3 else digits
    if ob.VERSION_BE in fields:
        return "e-MUCS"
    return None if has_crc else LEGACY_VERSION


def _needs_crc(version: str | None) -> bool:
    """DSMR 4 and later (and e-MUCS) always send a CRC."""
    if version is None or version == LEGACY_VERSION:
        return False
    return version == "e-MUCS" or (version[:1].isdecimal() and version >= "4")


def _split_fast(body: str) -> tuple[dict[str, str], list[str]] | None:
    """The objects of a well-formed body (CRLF lines, no blank lines) and its lines, or
    None to let :func:`_split_slow` decide.

    A line seen before is split already (:data:`_LINES_SEEN`: most lines repeat from
    one telegram to the next); a new one is split and checked by :func:`_split_line`.
    Only C-level work for the lines seen before."""
    if not body:
        return {}, []
    if body[-2:] != "\r\n":
        return None
    if "\n(" in body:  # DSMR 2.2/3.0: the gas value on its own line joins its object
        body = body.replace("\r\n(", "(")
    lines = body[:-2].split("\r\n")
    if len(_LINES_SEEN) >= _CACHE_SIZE:
        _LINES_SEEN.clear()
    try:
        fields = dict(map(_LINES_SEEN.get, lines))  # type: ignore[arg-type]
    except TypeError:  # None: a line not seen before
        for line in set(lines).difference(_LINES_SEEN):
            if not _split_line(line):
                return None
        fields = dict(map(_LINES_SEEN.__getitem__, lines))
    if len(fields) != len(lines):
        return None  # an object twice
    return fields, lines


def _split_line(line: str) -> bool:
    """Splits ``obis(v1)(v2)`` into (``obis``, ``v1)(v2)``) when the line is an OBIS code
    and a row of ``(...)`` groups (every ``(`` after a ``)``, one ``)`` more than ``(``, ``)`` at
    the end) and remembers it in :data:`_LINES_SEEN`; False when it is not."""
    obis, paren, value = line.partition("(")
    if not paren or value[-1:] != ")" or "\n" in value or "\r" in value:
        return False
    opened = value.count("(")
    if value.count(")(") != opened or value.count(")") != opened + 1:
        return False
    if obis not in _CODES_SEEN:
        if _OBIS.fullmatch(obis) is None:
            return False
        if len(_CODES_SEEN) < _CACHE_SIZE:
            _CODES_SEEN.add(obis)
    _LINES_SEEN[line] = obis, value
    return True


#: Object lines met before, split: ``"1-0:1.8.1(001581.123*kWh)"`` -> (code, value).
_LINES_SEEN: dict[str, tuple[str, str]] = {}
#: Object lines met before, as JSON (:meth:`Telegram.to_json_bytes`).
_LINES_WRITTEN: dict[str, bytes] = {}


# OBIS codes whose syntax is known good: the typed ones, and those met before.
_CODES_SEEN: set[str] = set(ob.KNOWN_CODES)


def clear_caches() -> None:
    """Forget the cached value checks (timestamps, failure logs, M-Bus readings), as if
    every telegram came from a meter not seen before: for measuring the parser cold."""
    _LINES_SEEN.clear()
    _LINES_WRITTEN.clear()
    for cached in (
        _stamp,
        _failure_log,
        _mbus_reading,
        _is_register,
        _mbus_channel,
        _max_demand,
        _max_demand_history,
        _log_written,
        _mbus_written,
    ):
        cached.cache_clear()


def _split_slow(text: str, start: int, end: int) -> tuple[dict[str, str], tuple[str, int] | None]:
    """The objects between ``start`` and ``end`` by the reference grammar, blank lines,
    LF line ends and continuation lines allowed; or the first bad line and its offset."""
    parts = _LINE.split(text[start:end])
    offset = start
    fields: dict[str, str] = {}
    for i in range(0, len(parts), 3):
        between = parts[i]
        if between.strip(_BLANK):
            skipped = len(between) - len(between.lstrip(_BLANK))
            line = between.lstrip(_BLANK).split("\n", 1)[0].rstrip("\r")
            return fields, (f"not an OBIS line: {line[:60]!r}", offset + skipped)
        offset += len(between)
        if i + 2 < len(parts):
            obis, value = parts[i + 1], parts[i + 2]
            if obis in fields:
                return fields, (f"{obis} appears twice", offset)
            fields[obis] = value[1:].replace("\r\n(", "(").replace("\n(", "(")
            offset = text.index("\n", offset + len(obis) + len(value)) + 1
    return fields, None


def parse_telegram(data: bytes) -> Telegram:
    """Parse one telegram (``/`` ... ``!CRC``); refusals come back as ``valid=False``.

    Leading whitespace is skipped. The CRC16/ARC is checked whenever one is sent, and
    required from DSMR 4 on (version object ``1-3:0.2.8`` >= 40, or e-MUCS).
    """
    telegram = Telegram(data)
    text = data.decode("latin-1")
    start = 0
    if text[:1] != "/":
        start = len(text) - len(text.lstrip(_BLANK))
        if text[start : start + 1] != "/":
            return _refuse(telegram, "MTR-2.header", "the telegram does not start with /", start)
    eol = text.find("\n", start)
    if eol < 0:
        return _refuse(telegram, "MTR-2.truncated", "the identification line has no end", start)
    telegram.header = header = text[start + 1 : eol].rstrip("\r")
    if _HEADER.match(header) is None:
        message = f"identification {header[:40]!r} is not /XXXn (maker, baud rate digit)"
        return _refuse(telegram, "MTR-2.header", message, start)
    bang = text.rfind("!")  # the last one: a "!" inside is a damaged byte
    if bang < eol:
        return _refuse(
            telegram, "MTR-2.truncated", "no ! end marker: the telegram was cut off", eol
        )
    crc_line, _, after = text[bang + 1 :].partition("\n")
    if after.strip(_BLANK):
        offset = bang + 2 + len(crc_line)
        return _refuse(telegram, "MTR-2.malformed", "bytes after the end of the telegram", offset)
    crc_text = crc_line.strip(_BLANK)
    if crc_text:
        if len(crc_text) > 4 or not _HEXDIGITS.issuperset(crc_text):
            message = f"CRC {crc_text[:8]!r} is not 4 hex digits"
            return _refuse(telegram, "MTR-2.crc", message, bang + 1)
        expected = crc16_arc(data[start : bang + 1])
        telegram.crc_ok = ok = int(crc_text, 16) == expected
        if not ok:
            message = f"CRC {crc_text} sent, {expected:04X} computed: the telegram was damaged"
            return _refuse(telegram, "MTR-2.crc", message, bang + 1)
    body_start = eol + 1
    if text.startswith("\r\n", body_start):
        body_start += 2
    split = _split_fast(text[body_start:bang])
    if split is not None:
        fields, telegram._lines = split
    else:
        fields, problem = _split_slow(text, body_start, bang)
        if problem is not None:
            return _refuse(telegram, "MTR-2.malformed", *problem)
    if not fields:
        return _refuse(telegram, "MTR-2.malformed", "the telegram holds no OBIS objects", bang)
    telegram._fields = fields
    telegram.version = version = _version(fields, bool(crc_text))
    if not crc_text and _needs_crc(version):
        return _refuse(telegram, "MTR-2.crc", f"DSMR {version} needs a CRC after !", bang)
    return _check_values(telegram, text, fields)


def _check_values(telegram: Telegram, text: str, fields: dict[str, str]) -> Telegram:
    """The value checks of MTR-2: telegram time, counters, registers, log, M-Bus."""
    stamp = fields.get(ob.TIMESTAMP)
    if stamp is not None:
        parsed = parse_timestamp(stamp[:-1])
        if parsed is None:
            message = f"telegram time ({stamp} is not YYMMDDhhmmss[SW]"
            return _refuse(telegram, "MTR-2.timestamp", message, _line_offset(text, ob.TIMESTAMP))
        telegram.timestamp, telegram.ambiguous_time = parsed
    counters = "".join([fields.get(obis, ")") for obis in ob.INT_FIELDS])
    digits = counters.replace(")", "")
    if counters.count(")") != len(ob.INT_FIELDS) or (digits and not digits.isdecimal()):
        for obis in ob.INT_FIELDS:
            found = fields.get(obis)
            if found is not None and not (found == ")" or found[:-1].isdecimal()):
                message = f"{obis}({found} is not a counter"
                return _refuse(telegram, "MTR-2.malformed", message, _line_offset(text, obis))
    for obis in ob.ENERGY_REGISTERS:
        found = fields.get(obis)
        if found is not None and not _is_register(found):
            message = f"{obis}({found} is not a register reading with its unit"
            return _refuse(telegram, "MTR-2.malformed", message, _line_offset(text, obis))
    log = fields.get(ob.FAILURE_LOG)
    if log is not None:
        entries, problem = _failure_log(log)
        if problem is not None:
            rule = "MTR-2.timestamp" if problem.startswith("timestamp") else "MTR-2.malformed"
            return _refuse(telegram, rule, problem, _line_offset(text, ob.FAILURE_LOG))
        telegram._log = entries
    if ob.MAX_DEMAND in fields or ob.MAX_DEMAND_HISTORY in fields:  # e-MUCS
        for obis, problem in _demand_problems(fields):
            rule = "MTR-2.timestamp" if problem.startswith("timestamp") else "MTR-2.malformed"
            return _refuse(telegram, rule, f"{obis}: {problem}", _line_offset(text, obis))
    for obis in sorted(_MBUS_VALUE_KEYS.intersection(fields)):
        _, _, _, problem, ambiguous = _mbus_reading(obis, fields[obis])
        telegram.ambiguous_time |= ambiguous
        if problem:
            rule = "MTR-2.timestamp" if problem.startswith("timestamp") else "MTR-2.malformed"
            return _refuse(telegram, rule, problem, _line_offset(text, obis))
    telegram.valid = True
    return telegram


@lru_cache(maxsize=_CACHE_SIZE)
def _is_register(value: str) -> bool:
    """``001581.123*kWh)``: one number with its unit (cached: a register holds its
    value for seconds to hours)."""
    number, star, _ = value[:-1].partition("*")
    return bool(star) and "(" not in value and _is_number(number)


def _demand_problems(fields: dict[str, str]) -> Iterable[tuple[str, str]]:
    """(object, what is wrong) for an e-MUCS maximum demand or history that has the
    e-MUCS shape but does not fit it."""
    found = fields.get(ob.MAX_DEMAND)
    if found is not None and (problem := _max_demand(found)[1]) is not None:
        yield ob.MAX_DEMAND, problem
    found = fields.get(ob.MAX_DEMAND_HISTORY)
    if found is not None and (problem := _max_demand_history(found)[1]) is not None:
        yield ob.MAX_DEMAND_HISTORY, problem


_MBUS_VALUE_KEYS: Final = frozenset(f"0-{n}:{c}" for n in ob.MBUS_CHANNELS for c in ob.MBUS_VALUES)


# --- streams --------------------------------------------------------------------------


def _frame_end(buf: bytes, start: int, final: bool, message_end: bool = False) -> int | None:
    """Where the frame that starts at ``start`` ends, or None when more bytes are needed.

    The end is ``!``, up to 4 CRC hex digits and a line end (or the ``/`` of the next
    telegram, or the end of the stream). A ``/`` before that cuts the frame off. A ``!``
    followed by anything else is a damaged byte inside the telegram, not its end.
    ``message_end``: ``buf`` ends where a message (MQTT) ends, so ``!`` and all 4 CRC
    digits there end the telegram without waiting for its line end (issue 14); a ``!``
    with fewer digits still waits (the rest of its CRC may be in the next message).
    """
    size = len(buf)
    search = start + 1
    while True:
        bang = buf.find(b"!", search)
        restart = buf.find(b"/", search, bang if bang >= 0 else size)
        if restart >= 0:
            return restart
        if bang < 0:
            return size if final else None
        tail = _FRAME_END.match(buf, bang + 1)
        end = tail.end() if tail is not None else bang + 1
        if tail is not None and tail.group(1) is not None:
            return end
        if end == size or (end + 1 == size and buf[end] == 0x0D):  # the line end may follow
            if final:
                return end
            return size if message_end and end - bang == 5 else None
        if buf[end] == 0x2F:  # "/": the next telegram right after the CRC
            return end
        search = bang + 1


def _frames(
    buf: bytes, final: bool, max_size: int, message_end: bool = False
) -> tuple[list[bytes], int, int]:
    """Complete frames in ``buf``: (frames, where the unfinished rest starts, bytes skipped).

    A frame runs from ``/`` to its end (:func:`_frame_end`). A ``/`` before the end
    starts a new frame: the one before it is handed on cut off (it parses as
    ``MTR-2.truncated``). Bytes before a ``/`` are skipped.
    """
    frames: list[bytes] = []
    skipped = pos = 0
    size = len(buf)
    while True:
        start = buf.find(b"/", pos)
        if start < 0:
            return frames, size, skipped + size - pos
        skipped += start - pos
        end = _frame_end(buf, start, final, message_end)
        if end is None:
            if size - start <= max_size:
                return frames, start, skipped
            end = start + max_size  # a runaway candidate: give it up
        frames.append(buf[start:end])
        pos = end


class TelegramSplitter:
    """Incremental splitter: feed arbitrary byte chunks, get complete telegrams back.

    Resynchronises on ``/``: garbage before a telegram is skipped (counted in
    :attr:`skipped`), a telegram cut off by a new ``/`` comes back refused as
    ``MTR-2.truncated``, and so does a candidate without ``!`` after ``max_size``
    bytes. :meth:`flush` hands back what is left at the end of the stream.
    """

    def __init__(self, max_size: int = MAX_TELEGRAM_BYTES) -> None:
        self._rest = b""
        self.max_size = max_size
        self.skipped = 0

    @property
    def pending(self) -> int:
        """Bytes held for a telegram not complete yet (the last bytes fed)."""
        return len(self._rest)

    def feed_frames(self, data: bytes, message_end: bool = False) -> list[bytes]:
        """The raw telegrams that ``data`` completes. ``message_end``: ``data`` is a
        whole message (MQTT), so a telegram that ends with its 4 CRC digits at its end
        is complete without its line end (see :func:`_frame_end`)."""
        buf = self._rest + data if self._rest else bytes(data)
        frames, rest, skipped = _frames(buf, False, self.max_size, message_end)
        self._rest = buf[rest:]
        self.skipped += skipped
        return frames

    def feed(self, data: bytes, message_end: bool = False) -> list[Telegram]:
        """The telegrams that ``data`` completes, parsed (``message_end``: see
        :meth:`feed_frames`)."""
        return [parse_telegram(frame) for frame in self.feed_frames(data, message_end)]

    def flush(self) -> list[Telegram]:
        """End of stream: the last telegram, even without line end (or cut off)."""
        frames, _, skipped = _frames(self._rest, True, self.max_size)
        self._rest = b""
        self.skipped += skipped
        return [parse_telegram(frame) for frame in frames]


def split_telegrams(data: bytes) -> list[bytes]:
    """The raw telegrams of a whole buffer (a serial capture, a file), garbage skipped."""
    return _frames(data, True, MAX_TELEGRAM_BYTES)[0]


def parse_stream(data: bytes) -> Iterator[Telegram]:
    """Every telegram of a whole buffer, parsed, in order (refused ones included)."""
    for frame in split_telegrams(data):
        yield parse_telegram(frame)


def read_p1_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> Iterator[Telegram]:
    """Every telegram of a capture file, read in chunks; OSError when it cannot be read."""
    splitter = TelegramSplitter()
    with open(path, "rb") as handle:  # noqa: PTH123 (pathlib: 3-5 ms more start-up)
        while chunk := handle.read(chunk_size):
            yield from splitter.feed(chunk)
    yield from splitter.flush()
