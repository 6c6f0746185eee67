"""The project's one JSON writer: every ``--json`` output goes through here.

Built on orjson (C, 5-10x :func:`json.dumps`): ``meetpunt p1 parse --json`` writes
one object per telegram and must stay at least 25x dsmr_parser as a whole process
(MTR-2), which the standard library's encoder alone made impossible.

Conventions (the same as the ``json.dumps(value, ensure_ascii=False, default=str)``
the commands used before, except that output is compact, ``,`` and ``:`` without
spaces):

- text stays UTF-8, non-ASCII is not escaped;
- ``datetime``, ``date`` and ``time`` are ISO 8601 (``2025-06-02T10:00:00+00:00``;
  a naive value has no offset);
- ``Decimal`` is a string exactly as it prints (``"1581.123"``): no rounding through
  float; a value meant as a JSON number is converted by the caller;
- an ``Enum`` is its value, a ``Path`` its string, a set or frozenset a sorted list
  (sorted when its items sort, else in iteration order), a dataclass an object of its
  fields, a tuple (named tuples too) a list, a numpy scalar or array its numbers;
- dict keys that are not strings (int, date, Enum...) are written as strings;
- NaN and infinities are ``null`` (they are not JSON);
- anything else is ``str(value)``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final

import orjson

__all__ = ["dumps", "dumps_bytes", "print_json", "raw", "write_lines"]

_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY
# Slower, so only on a second try: dicts with keys that are not str.
_OPTIONS_ANY_KEYS: Final = _OPTIONS | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    """What orjson cannot write itself, in the forms of the module docstring."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, tuple):  # named tuples (orjson writes only plain tuples)
        return list(value)
    if isinstance(value, float):  # float subclasses
        return float(value)
    if isinstance(value, int):  # int subclasses other than bool and IntEnum
        return int(value)
    return str(value)  # a Path too (pathlib is not imported: start-up time)


def raw(data: bytes) -> Any:
    """JSON already written (by :func:`dumps_bytes`), to be put in a value as it is:
    for parts that repeat from one document to the next (MTR-2: a telegram's objects
    repeat in the next one). Not in a value that also holds an int beyond 64 bits."""
    return orjson.Fragment(data)


def _fallback(value: Any) -> Any:
    """For the standard library encoder (integers beyond 64 bits, deep nesting)."""
    if isinstance(value, orjson.Fragment):
        raise TypeError("raw JSON cannot be written with integers beyond 64 bits")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return _default(value)


def _key(key: Any) -> Any:
    """A dict key as orjson's ``OPT_NON_STR_KEYS`` writes it (json does int, float, None)."""
    if key is None or isinstance(key, str | int | float):
        return key
    if isinstance(key, enum.Enum):
        return _key(key.value)
    if isinstance(key, datetime | date | time):
        return key.isoformat()
    return str(key)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None, for the standard library encoder."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_key(key): _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def dumps_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON bytes, no line end."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: keys that are not str, or beyond orjson
        pass
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS_ANY_KEYS)
    except TypeError:  # an int beyond 64 bits, nesting deeper than orjson goes
        text = json.dumps(
            _finite(value), ensure_ascii=False, default=_fallback, separators=(",", ":")
        )
        return text.encode()


def dumps(value: Any) -> str:
    """``value`` as compact JSON text, no line end."""
    return dumps_bytes(value).decode()


def print_json(value: Any) -> None:
    """Write ``value`` as one JSON line to standard output."""
    write_lines([dumps_bytes(value)])


def write_lines(lines: Iterable[bytes]) -> None:
    """Write ready JSON documents (bytes), one per line, to standard output at once.

    Goes to the binary buffer beneath ``sys.stdout`` when there is one (one write
    for the batch, no text-layer encoding), else through the text layer.
    """
    data = b"\n".join(lines)
    if not data:
        return
    data += b"\n"
    out = sys.stdout
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        out.flush()  # what was printed as text before must come first
        buffer.write(data)
        buffer.flush()
    else:
        out.write(data.decode())
