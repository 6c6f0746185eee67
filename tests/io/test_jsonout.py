"""The project's one JSON writer (:mod:`meetpunt.jsonout`): its conventions, and that it
reads back as the standard library reads it."""

from __future__ import annotations

import enum
import json
from collections import namedtuple
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.jsonout import dumps, dumps_bytes, print_json, write_lines


class Colour(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Reading:
    value: Decimal
    day: date


Pair = namedtuple("Pair", "a b")


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


def test_conventions() -> None:
    value = {
        "text": "Zoë – Œ ✓",
        "decimal": Decimal("1581.120"),
        "instant": datetime(2025, 6, 2, 10, 0, tzinfo=UTC),
        "naive": datetime(2025, 6, 2, 10, 0, 5, 123),
        "day": date(2025, 6, 2),
        "time": time(7, 30),
        "enum": Colour.RED,
        "path": Path("a/b.p1"),
        "set": {3, 1, 2},
        "frozen": frozenset({"b", "a"}),
        "mixed": {1, "a"},
        "dataclass": Reading(Decimal("2.5"), date(2025, 1, 1)),
        "named": Pair(1, 2),
        "tuple": (1, "x"),
        "nan": float("nan"),
        "inf": float("-inf"),
        "other": Opaque(),
    }
    out = json.loads(dumps(value))
    assert out["text"] == "Zoë – Œ ✓" and "Zoë" in dumps(value)  # not escaped
    assert out["decimal"] == "1581.120"
    assert out["instant"] == "2025-06-02T10:00:00+00:00"
    assert out["naive"] == "2025-06-02T10:00:05.000123"
    assert (out["day"], out["time"]) == ("2025-06-02", "07:30:00")
    assert (out["enum"], out["path"]) == ("red", "a/b.p1")
    assert (out["set"], out["frozen"]) == ([1, 2, 3], ["a", "b"])
    assert sorted(out["mixed"], key=str) == [1, "a"]
    assert out["dataclass"] == {"value": "2.5", "day": "2025-01-01"}
    assert (out["named"], out["tuple"]) == ([1, 2], [1, "x"])
    assert (out["nan"], out["inf"]) == (None, None)
    assert out["other"] == "opaque!"


def test_compact_and_no_line_end() -> None:
    assert dumps({"a": [1, 2]}) == '{"a":[1,2]}'
    assert dumps_bytes("é") == '"é"'.encode()


def test_keys_that_are_not_text() -> None:
    assert json.loads(dumps({1: "a", date(2025, 1, 1): 2, Colour.RED: 3})) == {
        "1": "a",
        "2025-01-01": 2,
        "red": 3,
    }


def test_beyond_orjson_falls_back_to_the_standard_library() -> None:
    huge = 2**70
    assert json.loads(dumps({"n": huge, "x": float("inf"), "d": Decimal(1)})) == {
        "n": huge,
        "x": None,
        "d": "1",
    }
    assert json.loads(dumps({2: huge, date(2025, 1, 1): [Colour.RED]})) == {
        "2": huge,
        "2025-01-01": ["red"],
    }


_JSONABLE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(_JSONABLE)
def test_reads_back_like_the_standard_library(value: object) -> None:
    assert json.loads(dumps_bytes(value)) == json.loads(json.dumps(value))


def test_print_json_and_write_lines(capsys: pytest.CaptureFixture[str]) -> None:
    print("before")
    print_json({"a": "é"})
    write_lines([b'{"b":1}', b'{"c":2}'])
    write_lines([])
    assert capsys.readouterr().out == 'before\n{"a":"é"}\n{"b":1}\n{"c":2}\n'
