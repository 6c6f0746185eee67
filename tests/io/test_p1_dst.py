"""DSMR 2.2/3 telegrams (no S/W flag) in the repeated October hour: the capture's order
tells the first pass (CEST) from the second (CET), so both readings are stored with
their own UTC time; a telegram no neighbour places is refused (MTR-2.ambiguous_time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import LOCAL_TZ
from meetpunt.io.p1 import parse_telegram, repeated_hour_wall
from meetpunt.io.p1_source import AMBIGUOUS_TIME, source_from_telegrams
from tests.io.p1data import real
from tests.meterdata.conftest import E3X25, Hub, hub  # noqa: F401 - the fixture

DSMR30 = real("dsmr30_iskra_mt382.p1")
SWITCH = datetime(2025, 10, 26, 1, 0, tzinfo=UTC)
"""03:00 CEST = 02:00 CET on the last Sunday of October 2025."""


def telegram(at: datetime, wh: int, gas_at: datetime | None = None, dm3: int = 1001) -> bytes:
    """A DSMR 3.0 telegram stamped with the flagless Amsterdam wall time of ``at``."""
    wall = at.astimezone(LOCAL_TZ)
    stamp = f"0-0:1.0.0({wall:%y%m%d%H%M%S})\r\n".encode()
    kwh = f"{wh / 1000:010.3f}".encode()
    data = DSMR30.replace(b"1-0:1.8.1(12345.678*kWh)", b"1-0:1.8.1(" + kwh + b"*kWh)")
    head, rest = data.split(b"0-0:96.1.1", 1)
    data = head + stamp + b"0-0:96.1.1" + rest
    gas_wall = (gas_at or at.replace(minute=0, second=0)).astimezone(LOCAL_TZ)
    data = data.replace(b"(090212160000)", f"({gas_wall:%y%m%d%H%M%S})".encode())
    return data.replace(b"(00001.001)", f"({dm3 / 1000:09.3f})".encode())


def capture(times: list[datetime]) -> list[bytes]:
    return [telegram(t, 1_000_000 + 10 * i) for i, t in enumerate(times)]


def times_of(raw: list[bytes]) -> tuple[list[datetime], list[str]]:
    source = source_from_telegrams([parse_telegram(r) for r in raw], E3X25, "cap", "")
    table = source.tables.get("p1_readings")
    stored = [] if table is None else table.column("at").to_pylist()
    return stored, [r.rule for r in source.refused]


def test_the_synthetic_telegram_is_flagless_and_marked() -> None:
    t = parse_telegram(telegram(SWITCH - timedelta(minutes=30), 1_000_000))
    assert t.valid and t.ambiguous_time
    assert t.timestamp == SWITCH - timedelta(minutes=30)
    assert repeated_hour_wall(SWITCH - timedelta(minutes=30)) is not None
    assert repeated_hour_wall(SWITCH + timedelta(minutes=30)) is None  # read as 03:30 CET


def test_a_capture_across_the_change_gets_both_passes() -> None:
    """Every 10 minutes from 01:30 CEST to 03:30 CET: 02:00-02:50 come twice."""
    real_times = [SWITCH - timedelta(minutes=90) + timedelta(minutes=10 * i) for i in range(19)]
    stored, refused = times_of(capture(real_times))
    assert refused == []
    assert stored == real_times
    assert len(set(stored)) == len(stored)


@given(
    start_s=st.integers(min_value=-3 * 3600, max_value=-1),
    step_s=st.sampled_from([1, 10, 60, 300, 600]),
    span_h=st.integers(min_value=2, max_value=4),
)
@settings(max_examples=40, deadline=None)
def test_any_continuous_capture_from_before_the_hour_is_resolved(
    start_s: int, step_s: int, span_h: int
) -> None:
    first = SWITCH - timedelta(hours=1) + timedelta(seconds=start_s)
    count = min(span_h * 3600 // step_s, 400)
    real_times = [first + timedelta(seconds=step_s * i) for i in range(count)]
    stored, refused = times_of(capture(real_times))
    assert refused == []
    assert stored == real_times


def test_a_capture_that_starts_inside_the_hour_waits_for_the_jump() -> None:
    """From 02:20 CEST: held until the clock jumps back at 03:00 CEST -> 02:00 CET."""
    real_times = [SWITCH - timedelta(minutes=40) + timedelta(minutes=10 * i) for i in range(8)]
    stored, refused = times_of(capture(real_times))
    assert refused == [] and stored == real_times


def test_a_single_telegram_in_the_hour_is_refused_with_the_rule() -> None:
    stored, refused = times_of(capture([SWITCH - timedelta(minutes=30)]))
    assert stored == [] and refused == [AMBIGUOUS_TIME]


def test_a_capture_inside_the_second_pass_only_is_refused_not_guessed() -> None:
    """02:10 to 02:50 CET, then 03:00 CET: no jump, no telegram before the hour."""
    real_times = [SWITCH + timedelta(minutes=10 * i) for i in range(1, 7)]
    stored, refused = times_of(capture(real_times))
    assert refused == [AMBIGUOUS_TIME] * 5
    assert stored == real_times[5:]
    source = source_from_telegrams(
        [parse_telegram(r) for r in capture(real_times)], E3X25, "cap", ""
    )
    assert "repeated October hour" in source.refused[0].message


def test_the_gas_reading_of_the_second_pass_is_cet_too() -> None:
    first_pass = SWITCH - timedelta(minutes=50)  # 02:10 CEST, gas stamped 02:00 CEST
    second_pass = SWITCH + timedelta(minutes=5)  # 02:05 CET: the clock went back
    raw = [
        telegram(SWITCH - timedelta(minutes=70), 1_000_000, dm3=1000),
        telegram(first_pass, 1_000_100, SWITCH - timedelta(hours=1), dm3=2000),
        telegram(second_pass, 1_000_200, SWITCH, dm3=3000),
    ]
    source = source_from_telegrams([parse_telegram(r) for r in raw], E3X25, "cap", "")
    gas = source.tables["p1_gas"]
    assert gas.column("at").to_pylist() == [
        SWITCH - timedelta(hours=2),
        SWITCH - timedelta(hours=1),
        SWITCH,
    ]
    assert gas.column("reading_dm3").to_pylist() == [1000, 2000, 3000]


def test_both_readings_of_the_hour_are_stored_not_quarantined(hub: Hub) -> None:  # noqa: F811
    real_times = [SWITCH - timedelta(minutes=90) + timedelta(minutes=10 * i) for i in range(19)]
    source = source_from_telegrams(
        [parse_telegram(r) for r in capture(real_times)], E3X25, "dst.p1", "dst"
    )
    report = hub.ingestor.ingest(source)
    assert report.quarantined == {}
    assert report.kinds["p1_readings"].accepted == 19
    stored = hub.values("p1_readings", "at", "import_t1_wh")
    assert [at for at, _ in stored] == real_times


def test_a_streamed_capture_resolves_the_hour_across_its_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A capture file is read in pieces; a telegram held in the hour at the end of one
    piece is placed by the next piece's jump, never refused in between (MTR-2)."""
    from meetpunt.io import p1_source

    monkeypatch.setattr(p1_source, "TELEGRAMS_PER_PIECE", 3)
    # starts inside the first pass: held until the wall clock jumps back, pieces later
    real_times = [SWITCH - timedelta(minutes=40) + timedelta(minutes=10 * i) for i in range(11)]
    path = tmp_path / f"{E3X25}.p1"
    path.write_bytes(b"".join(capture(real_times)))
    source = p1_source.read_p1_capture(path)
    stored: list[datetime] = []
    refused: list[str] = []
    for piece in source.pieces():
        table = piece.tables.get("p1_readings")
        stored += [] if table is None else table.column("at").to_pylist()
        refused += [r.rule for r in piece.refused]
    assert refused == [] and sorted(stored) == real_times
    # a capture that starts inside the hour and never jumps back: refused at its end
    inside = [SWITCH - timedelta(minutes=30) + timedelta(minutes=10 * i) for i in range(3)]
    path.write_bytes(b"".join(capture(inside)))
    rules = [r.rule for piece in p1_source.read_p1_capture(path).pieces() for r in piece.refused]
    assert rules == [AMBIGUOUS_TIME] * 3
