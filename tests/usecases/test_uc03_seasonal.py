"""UC3 seasonal analysis on small constructed feeders: limit breaks per phase, and
inverter-trip episodes (right with grouping, wrong without; a load that eats the feed-in
and a feed-in drop at normal voltage are no trips)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt import rulebook
from meetpunt.domain.sun import sun_elevation_deg
from meetpunt.twin.powerflow import InverterTrip
from meetpunt.twin.truth import trip_episodes as truth_episodes
from meetpunt.usecases.uc03_seasonal import (
    HIGH,
    INVERTER,
    LOW,
    limit_breaks,
    minutes_outside,
    trip_episodes,
)

T0 = datetime(2025, 6, 10, 0, 0, tzinfo=UTC)
TS = pa.timestamp("us", "UTC")
EANS = {i: f"87168740000000{i:04d}" for i in range(6)}


def volts(rows: list[tuple[int, int, int, float]]) -> pa.Table:
    """(connection, 10-minute index, phase, voltage)."""
    return pa.table(
        {
            "connection": pa.array([r[0] for r in rows], pa.int32()),
            "start": pa.array([T0 + timedelta(minutes=10 * r[1]) for r in rows], TS),
            "phase": pa.array([r[2] for r in rows], pa.int8()),
            "voltage_v": pa.array([r[3] for r in rows], pa.float64()),
        }
    )


def test_breaks_per_phase_when_and_how_far() -> None:
    r = rulebook.voltage_quality()  # Enexis: 248 V
    series = [230.0, 249.0, 254.5, 251.0, 230.0, 205.0, 0.0, 206.0, 230.0]
    rows = [(1, i, 2, v) for i, v in enumerate(series)] + [(1, i, 1, 230.0) for i in range(9)]
    breaks = limit_breaks(volts(rows), EANS, r)
    inverter = [b for b in breaks if b.limit == INVERTER]
    assert [(b.start, b.minutes, b.extreme_v) for b in inverter] == [
        (T0 + timedelta(minutes=10), 30, 254.5)
    ]
    assert [(b.minutes, b.extreme_v) for b in breaks if b.limit == HIGH] == [(10, 254.5)]
    # 0 V is no supply, not an under-voltage: it splits the run in two
    assert [(b.minutes, b.extreme_v) for b in breaks if b.limit == LOW] == [
        (10, 205.0),
        (10, 206.0),
    ]
    assert minutes_outside(breaks)[(EANS[1], 2)] == {LOW: 20, HIGH: 10, INVERTER: 30}
    assert (EANS[1], 1) not in minutes_outside(breaks)
    # another operator's limit
    stedin = rulebook.voltage_quality("Liander")
    assert (
        sum(b.minutes for b in limit_breaks(volts(rows), EANS, stedin) if b.limit == INVERTER) == 20
    )


QUARTERS = 4 * 24


def sunny(q: int) -> float:
    """A clear day's PV shape per quarter-hour, 0..1 (06:00 to 18:00 UTC)."""
    hour = q / 4
    return max(0.0, 1 - ((hour - 12) / 6) ** 2)


def feeder(
    tripped: dict[int, range] | None = None,
    loads: dict[int, range] | None = None,
    high_v: bool = True,
) -> tuple[pa.Table, pa.Table]:
    """Four PV connections (1-4) over one day; ``tripped`` quarters feed in nothing, with
    only the base load as import; ``loads`` quarters have a 2 kW load on."""
    tripped, loads = tripped or {}, loads or {}
    energy, volt = [], []
    for c in range(1, 5):
        kwp = 2.0 + c
        for q in range(QUARTERS):
            pv = kwp * 1000 / 4 * sunny(q)  # Wh in the quarter
            base = 40.0
            if q in tripped.get(c, range(0)):
                pv = 0.0
            load = base + (500.0 if q in loads.get(c, range(0)) else 0.0)
            net = pv - load
            energy.append((c, q, max(-net, 0.0), max(net, 0.0)))
        for t in range(QUARTERS * 3 // 2):
            q = t * 2 // 3
            v = 230.0 + 18.0 * sunny(q) if high_v and c == 4 else 230.0 + 5 * sunny(q)
            volt.append((c, t, 1, v))
    table = pa.table(
        {
            "connection": pa.array([e[0] for e in energy], pa.int32()),
            "start": pa.array([T0 + timedelta(minutes=15 * e[1]) for e in energy], TS),
            "import_wh": pa.array([round(e[2]) for e in energy], pa.int64()),
            "export_wh": pa.array([round(e[3]) for e in energy], pa.int64()),
        }
    )
    return table, volts(volt)


def test_a_trip_run_at_the_limit_is_one_episode_and_per_quarter_counting_is_wrong() -> None:
    r = rulebook.voltage_quality()
    noon = range(46, 50)  # 11:30 to 12:30 UTC
    energy, volt = feeder(tripped={4: noon})
    episodes = trip_episodes(energy, volt, EANS, r)
    assert [(e.ean, e.start, e.end) for e in episodes] == [
        (EANS[4], T0 + timedelta(minutes=15 * 46), T0 + timedelta(minutes=15 * 50))
    ]
    assert episodes[0].lost_wh > 0
    # the key step removed: without grouping, each quarter-hour is a trip of its own
    assert len(trip_episodes(energy, volt, EANS, r, grouping=False)) == len(noon)


def test_no_trip_without_the_voltage_at_the_limit() -> None:
    energy, volt = feeder(tripped={4: range(46, 50)}, high_v=False)
    assert trip_episodes(energy, volt, EANS, rulebook.voltage_quality()) == []


def test_a_load_that_eats_the_feed_in_is_no_trip() -> None:
    energy, volt = feeder(loads={4: range(46, 50)})
    # export fell, but the import shows the load: not the inverter
    energy2, _ = feeder(loads={4: range(20, 24)})
    r = rulebook.voltage_quality()
    assert trip_episodes(energy2, volt, EANS, r) == []
    assert [e for e in trip_episodes(energy, volt, EANS, r) if e.ean == EANS[4]] == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200)), max_size=40))
def test_truth_episodes_join_trips_at_the_quarter_hours_resolution(
    trips: list[tuple[int, int]],
) -> None:
    """The twin's episodes, at the resolution of the data UC3 reads: a trip keeps its
    inverter off 3 steps (the reconnect delay); the quarter-hours in which one
    connection's inverter was off, at most 2 apart (one whole quarter-hour of normal
    feed-in between), are one episode; further apart, or another connection, a new one."""
    events = [InverterTrip(c, 0, s, 254.0) for c, s in trips]
    ep = truth_episodes(events, 3, gap_quarters=2)

    def quarters(t: InverterTrip) -> set[int]:
        return set(range(t.step // 3, (t.step + 2) // 3 + 1))

    for i, a in enumerate(events):
        for j, b in enumerate(events):
            if a.index != b.index:
                assert ep[i] != ep[j]
            elif min(abs(x - y) for x in quarters(a) for y in quarters(b)) <= 2:
                assert ep[i] == ep[j]
    for e in set(ep):
        off = sorted(set().union(*(quarters(events[i]) for i in range(len(events)) if ep[i] == e)))
        assert all(b - a <= 2 for a, b in itertools.pairwise(off))
    # the rule file's gap is the one UC3 groups by
    assert truth_episodes(events, 3) == truth_episodes(
        events, 3, gap_quarters=rulebook.voltage_quality().episode_gap_quarters
    )


def test_an_episode_begins_at_the_limit_and_a_low_quarter_before_it_does_not_veto_it() -> None:
    """Two quarter-hours of low feed-in below the limit (09:45, 10:00: a morning under the
    reference), then the inverter trips at the limit (11:00-12:00). Within the episode
    gap they group together; the episode begins at the first quarter-hour at the limit
    (a trip needs the voltage there). Before, the first two quarter-hours of the group
    decided the voltage test and the low ones threw the whole spell away. The low
    quarter-hours alone are no episode."""
    r = rulebook.voltage_quality()
    assert r.episode_gap_quarters >= 44 - 40
    energy, volt = feeder(tripped={4: range(44, 48)})
    low, _ = feeder(tripped={4: range(39, 41)})
    exports = energy.column("export_wh").to_pylist()
    conns = energy.column("connection").to_pylist()
    at = [i for i, c in enumerate(conns) if c == 4]
    for q in (39, 40):
        exports[at[q]] = low.column("export_wh")[at[q]].as_py()
    both = energy.set_column(3, "export_wh", pa.array(exports, pa.int64()))
    found = trip_episodes(both, volt, EANS, r)
    assert [(e.ean, e.start, e.end) for e in found] == [
        (EANS[4], T0 + timedelta(minutes=15 * 44), T0 + timedelta(minutes=15 * 48))
    ]
    assert trip_episodes(low, volt, EANS, r) == []


def test_a_trip_split_over_two_quarter_hours_is_one_episode() -> None:
    """The inverter goes off two steps into one quarter-hour and comes back one step into
    the next: a third and two thirds of the feed-in are lost, neither quarter is at zero.
    Without the split rule (a stop share of nothing and no neighbours) it is missed."""
    r = rulebook.voltage_quality()
    energy, volt = feeder()
    exports = energy.column("export_wh").to_pylist()
    conns = energy.column("connection").to_pylist()
    at = [(c, i) for i, c in enumerate(conns) if c == 4]
    first = at[46][1]
    exports[first] = round(exports[first] / 3)  # two of three steps off
    exports[first + 1] = round(exports[first + 1] * 2 / 3)  # one of three steps off
    split = energy.set_column(3, "export_wh", pa.array(exports, pa.int64()))
    found = trip_episodes(split, volt, EANS, r)
    assert [(e.ean, e.start) for e in found] == [(EANS[4], T0 + timedelta(minutes=15 * 46))]
    strict = dataclasses.replace(r, episode_min_lost_quarters=2.0)
    assert trip_episodes(split, volt, EANS, strict) == []


def _with_voltage(volt: pa.Table, connection: int, ten_min: int, value: float) -> pa.Table:
    """``volt`` with one 10-minute value of ``connection`` replaced."""
    conns = volt.column("connection").to_pylist()
    starts = volt.column("start").to_pylist()
    values = volt.column("voltage_v").to_pylist()
    at = T0 + timedelta(minutes=10 * ten_min)
    for i, (c, s) in enumerate(zip(conns, starts, strict=True)):
        if c == connection and s == at:
            values[i] = value
    return volt.set_column(3, "voltage_v", pa.array(values, pa.float64()))


def test_the_protections_own_evidence_finds_a_trip_the_feed_in_cannot_show() -> None:
    """At 04:30 UTC in June the sun is ~8 degrees up: the inverter is awake but feeds in
    too little to show in a quarter-hour. A 10-minute value of 248.5 V (04:30-04:40) is
    above Enexis's 248 V: the protection averages that very window, so it tripped at
    04:40. Refused as evidence: the same value at night, a value within the meter's
    noise of the limit, a value followed by an interruption, a connection without PV."""
    r = rulebook.voltage_quality()
    energy, volt = feeder()
    dawn = _with_voltage(volt, 4, 27, r.inverter.limit_v + 0.5)
    found = trip_episodes(energy, dawn, EANS, r)
    assert [(e.ean, e.start) for e in found] == [(EANS[4], T0 + timedelta(minutes=15 * 18))]
    # the key steps removed: without the protection's evidence the feed-in rules miss it
    off = dataclasses.replace(r, trip_over_limit_v=100.0)
    assert trip_episodes(energy, dawn, EANS, off) == []
    # at 00:30 UTC the sun is down: no inverter is feeding in
    assert trip_episodes(energy, _with_voltage(volt, 4, 3, r.inverter.limit_v + 0.5), EANS, r) == []
    # 0.1 V over the limit is within the meter's noise and resolution
    assert (
        trip_episodes(energy, _with_voltage(volt, 4, 27, r.inverter.limit_v + 0.1), EANS, r) == []
    )
    # the supply failed right after: an interruption, not the protection
    cut = _with_voltage(_with_voltage(dawn, 4, 28, 0.0), 4, 29, 0.0)
    assert trip_episodes(energy, cut, EANS, r) == []
    # a connection without PV has no inverter to trip
    no_pv = energy.filter(pc.not_equal(energy.column("connection"), 4))
    no_pv = pa.concat_tables(
        [
            no_pv,
            pa.table(
                {
                    "connection": pa.array([4] * QUARTERS, pa.int32()),
                    "start": pa.array(
                        [T0 + timedelta(minutes=15 * q) for q in range(QUARTERS)], TS
                    ),
                    "import_wh": pa.array([40] * QUARTERS, pa.int64()),
                    "export_wh": pa.array([0] * QUARTERS, pa.int64()),
                }
            ),
        ]
    )
    assert trip_episodes(no_pv, dawn, EANS, r) == []


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(datetime(2020, 1, 1), datetime(2035, 12, 31)),
    st.floats(50.7, 53.6),
    st.floats(3.3, 7.3),
)
def test_the_suns_elevation_agrees_with_pvlib_within_a_degree(
    when: datetime, latitude: float, longitude: float
) -> None:
    """Anywhere in the Netherlands at any moment, NOAA's approximation (UC3: was the
    inverter awake?) is within a degree of pvlib's solar position."""
    import pandas as pd
    import pvlib

    at = when.replace(tzinfo=UTC)
    mine = sun_elevation_deg(np.array([int(at.timestamp() * 1_000_000)]), latitude, longitude)
    ref = pvlib.solarposition.get_solarposition(pd.DatetimeIndex([at]), latitude, longitude)[
        "elevation"
    ].to_numpy()
    assert abs(float(mine[0]) - float(ref[0])) < 1.0
