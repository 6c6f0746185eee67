"""e-MUCS maximum demand (MTR-2): ``1-0:1.6.0`` and its 13-month history ``0-0:98.1.0``.

Both are typed, each maximum with its own time; a line that has the e-MUCS shape but
does not fit it refuses the telegram with MTR-2.malformed or MTR-2.timestamp, like
the failure log. The same code under another meter's shape (E.ON Hungary's billing
history) stays text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.io import parse_telegram
from meetpunt.io.p1 import MaxDemand, Telegram
from tests.io.p1data import real, recrc

EMUCS = real("emucs171_fluvius.p1")
PEAK = b"1-0:1.6.0(200509134558S)(02.589*kW)"
HISTORY = (
    b"0-0:98.1.0(3)(1-0:1.6.0)(1-0:1.6.0)(200501000000S)(200423192538S)(03.695*kW)"
    b"(200401000000S)(200305122139S)(05.980*kW)(200301000000S)(200210035421W)(04.318*kW)"
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def with_line(old: bytes, new: bytes) -> bytes:
    """The Fluvius telegram with one line changed and its CRC recomputed."""
    assert old in EMUCS
    return recrc(EMUCS.replace(old, new, 1))


def refused(data: bytes, rule: str, obis: str) -> Telegram:
    telegram = parse_telegram(data)
    assert not telegram.valid and telegram.error is not None
    assert telegram.error.rule == rule, telegram.error
    assert telegram.error.message.startswith(obis + ": "), telegram.error
    assert data[telegram.error.offset :].startswith(obis.encode() + b"(")
    assert telegram.to_json()["error"] == telegram.error.as_dict()
    return telegram


def test_the_real_lines_are_typed() -> None:
    t = parse_telegram(EMUCS)
    assert t.valid
    assert t.max_demand == MaxDemand(utc(2020, 5, 9, 11, 45, 58), Decimal("2.589"), "kW")
    assert len(t.max_demand_history) == 3
    assert t.max_demand_history[0].closed_at == utc(2020, 4, 30, 22)  # 1 May 00:00 CEST


def test_json_has_each_maximum_with_its_own_time() -> None:
    out = parse_telegram(EMUCS).to_json()["fields"]
    assert out["1-0:1.6.0"] == {"value": 2.589, "unit": "kW", "timestamp": "2020-05-09T11:45:58Z"}
    assert out["0-0:98.1.0"]["unit"] is None
    assert out["0-0:98.1.0"]["value"][0] == {
        "value": 3.695,
        "unit": "kW",
        "timestamp": "2020-04-23T17:25:38Z",
        "closed_at": "2020-04-30T22:00:00Z",
    }
    history = parse_telegram(real("emucs171_fluvius_peak_history.p1")).to_json()["fields"]
    assert history["0-0:98.1.0"]["value"][0]["timestamp"] is None  # 632525252525W


@pytest.mark.parametrize(
    "line",
    [
        b"0-0:98.1.0(0)(1-0:1.6.0)(1-0:1.6.0)()",  # what a new meter sends
        b"0-0:98.1.0(0)(1-0:1.6.0)(1-0:1.6.0)",
    ],
    ids=["empty-group", "no-group"],
)
def test_an_empty_history(line: bytes) -> None:
    t = parse_telegram(with_line(HISTORY, line))
    assert t.valid and t.max_demand_history == () and t.value("0-0:98.1.0") == ()
    assert t.to_json()["fields"]["0-0:98.1.0"] == {"value": [], "unit": None}


def test_a_maximum_without_time_stays_a_number() -> None:
    t = parse_telegram(with_line(PEAK, b"1-0:1.6.0(02.589*kW)"))
    assert t.valid and t.max_demand is None
    assert t.value("1-0:1.6.0") == Decimal("2.589") and t.unit("1-0:1.6.0") == "kW"


def test_no_time_in_this_months_maximum() -> None:
    t = parse_telegram(with_line(PEAK, b"1-0:1.6.0(632525252525W)(00.000*kW)"))
    assert t.valid and t.max_demand == MaxDemand(None, Decimal("0.000"), "kW")


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        (b"1-0:1.6.0(200509134558S)(02.5x9*kW)", "MTR-2.malformed"),
        (b"1-0:1.6.0(200509134558S)(02.589)", "MTR-2.malformed"),  # no unit
        (b"1-0:1.6.0(201309134558S)(02.589*kW)", "MTR-2.timestamp"),  # month 13
        (b"1-0:1.6.0(200509134558X)(02.589*kW)", "MTR-2.timestamp"),
    ],
    ids=["value", "unit", "month-13", "flag"],
)
def test_refused_maximum_demand(line: bytes, rule: str) -> None:
    refused(with_line(PEAK, line), rule, "1-0:1.6.0")


BAD_HISTORIES = {
    # count says 4, three entries held
    "count": (HISTORY.replace(b"98.1.0(3)", b"98.1.0(4)"), "MTR-2.malformed"),
    "count-not-a-number": (HISTORY.replace(b"98.1.0(3)", b"98.1.0(3a)"), "MTR-2.malformed"),
    "capture-object": (HISTORY.replace(b"(1-0:1.6.0)(200501", b"(kW)(200501"), "MTR-2.malformed"),
    "value": (HISTORY.replace(b"(05.980*kW)", b"(05.9.0*kW)"), "MTR-2.malformed"),
    "no-unit": (HISTORY.replace(b"(05.980*kW)", b"(05.980)"), "MTR-2.malformed"),
    "month-end": (HISTORY.replace(b"(200401000000S)", b"(200431000000S)"), "MTR-2.timestamp"),
    "maximum-time": (HISTORY.replace(b"(200305122139S)", b"(200305252139S)"), "MTR-2.timestamp"),
    "entry-cut": (HISTORY.replace(b"(200210035421W)(04.318*kW)", b""), "MTR-2.malformed"),
}


@pytest.mark.parametrize("name", sorted(BAD_HISTORIES))
def test_refused_maximum_demand_history(name: str) -> None:
    line, rule = BAD_HISTORIES[name]
    assert line != HISTORY
    telegram = refused(with_line(HISTORY, line), rule, "0-0:98.1.0")
    assert telegram.raw_value("0-0:98.1.0") is not None  # what was read is kept
    assert telegram.max_demand_history == ()


# --- properties ----------------------------------------------------------------------

_MONTH_ENDS = st.integers(0, 400).map(lambda i: datetime(2000, 1, 1) + timedelta(days=31 * i))


@st.composite
def demands(draw: st.DrawFn, history: bool) -> tuple[bytes, MaxDemand]:
    """One maximum as the meter prints it, and the value it must parse to."""
    flag = draw(st.sampled_from("SW"))
    offset = timedelta(hours=2 if flag == "S" else 1)
    wall = draw(st.datetimes(datetime(2000, 1, 1), datetime(2068, 12, 31)))
    wall = wall.replace(microsecond=0)
    kw = Decimal(draw(st.integers(0, 99_999))) / 1000
    no_time = (draw(st.booleans()) and history) or not draw(st.integers(0, 9))
    stamp = "632525252525" + flag if no_time else wall.strftime("%y%m%d%H%M%S") + flag
    at = None if no_time else (wall - offset).replace(tzinfo=UTC)
    closed = draw(_MONTH_ENDS).replace(day=1) if history else None
    groups = f"({stamp})({kw:06.3f}*kW)"
    if closed is not None:
        groups = f"({closed.strftime('%y%m%d%H%M%S')}{flag})" + groups
    closed_at = None if closed is None else (closed - offset).replace(tzinfo=UTC)
    return groups.encode(), MaxDemand(at, kw, "kW", closed_at)


@settings(max_examples=150, deadline=None)
@given(demands(history=False), st.lists(demands(history=True), max_size=13))
def test_printed_maximum_demands_parse_back(
    peak: tuple[bytes, MaxDemand], months: list[tuple[bytes, MaxDemand]]
) -> None:
    history = b"0-0:98.1.0(%d)(1-0:1.6.0)(1-0:1.6.0)" % len(months)
    history += b"".join(groups for groups, _ in months) or b"()"
    data = recrc(EMUCS.replace(PEAK, b"1-0:1.6.0" + peak[0]).replace(HISTORY, history))
    t = parse_telegram(data)
    assert t.valid, t.error
    assert t.max_demand == peak[1]
    assert t.max_demand_history == tuple(expected for _, expected in months)
    out = t.to_json()["fields"]
    assert out["1-0:1.6.0"]["value"] == float(peak[1].value)
    assert len(out["0-0:98.1.0"]["value"]) == len(months)
    assert t.to_json_bytes() == parse_telegram(data).to_json_bytes()


_GROUP_TEXT = st.text(st.sampled_from("0123456789.*kWSX:-()"), max_size=16)


@settings(max_examples=200, deadline=None)
@given(st.lists(_GROUP_TEXT, min_size=1, max_size=12), st.booleans())
def test_any_history_or_maximum_is_typed_or_refused_never_raised(
    groups: list[str], as_history: bool
) -> None:
    """Whatever the groups: the telegram parses, or is refused with an MTR-2 rule."""
    value = "".join(f"({g})" for g in groups).encode()
    old, obis = (HISTORY, b"0-0:98.1.0") if as_history else (PEAK, b"1-0:1.6.0")
    t = parse_telegram(recrc(EMUCS.replace(old, obis + value)))
    if t.valid:
        json = t.to_json()
        assert json["error"] is None
        assert t.to_json_bytes()
    else:
        assert t.error is not None and t.error.rule.startswith("MTR-2.")
