"""UC4 on the hard outages of issue 16, on small constructed inputs (pure functions).

Each test fails when UC4 ignores its case: two interruptions of one meter summed into
one long one, an entry read twice or by two overlapping windows paid twice, a fault
nested in a longer one paid on the longer one's duration, a lost log entry taken as
"had voltage", and the grid level of an MV outage nested in a cable fault.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa

from meetpunt.domain.capacity import ElectricityCapacity
from meetpunt.domain.compensation import GridLevel
from meetpunt.privacy.model import Period
from meetpunt.rulebook import capacity_classes, compensation_scheme
from meetpunt.usecases.grid import GridSpot
from meetpunt.usecases.planned_works import PlannedWork
from meetpunt.usecases.uc04_outage_compensation import (
    LOST_ENTRY,
    UNKNOWN,
    Meter,
    _Assessment,
    assess,
)
from meetpunt.usecases.uc09_interruption_registration import (
    LogEntry,
    group_outages,
    log_entries,
)
from tests.usecases.test_uc04 import _meter as _base

T0 = datetime(2025, 10, 14, 8, tzinfo=UTC)
H = timedelta(hours=1)


def _meter(ean: str, feeder: str, number: int, smart: bool = True, amps: int = 25) -> Meter:
    """test_uc04's meter on OS1, three-phase ``amps`` (3x25 A: EUR 35; 3x63 A: EUR 195)."""
    return replace(_base(ean, feeder, number, smart), capacity=ElectricityCapacity(3, amps))


def _entry(ean: str, feeder: str, start: datetime, hours: float) -> LogEntry:
    seconds = int(hours * 3600)
    return LogEntry(ean, "OS1", feeder, start, start + timedelta(seconds=seconds), seconds)


def _assess(entries: list[LogEntry], meters: dict[str, Meter]) -> _Assessment:
    smart = [e for e, m in meters.items() if m.smart]
    outages = group_outages(entries)
    return assess(outages, meters, smart, [], compensation_scheme(), capacity_classes())


def _paid(found: _Assessment) -> dict[str, list[Decimal]]:
    out: dict[str, list[Decimal]] = {}
    for o in found.owed:
        out.setdefault(o.ean, []).append(o.compensation.amount)
    return {e: sorted(a) for e, a in out.items()}


K1 = {m.ean: m for m in (_meter(f"a{i}", "K1", 2 * i - 1) for i in range(1, 5))}


def test_two_interruptions_of_3_hours_are_paid_as_two_not_one_of_6_hours() -> None:
    """A feeder fails for 3 h, is switched back and fails again for 3 h (a second
    fault the same day, issue 16), while a4's fuse, blown 20 min before, keeps it dark
    over both (7 h, its own entry): each of the others' interruptions is under the 4 h
    threshold, so they are owed nothing; summed (one outage bridged by a4's entry) they
    would be 6 h and EUR 35 each. a4 is owed once, on its own 7 h entry."""
    three = ("a1", "a2", "a3")
    first = [_entry(e, "K1", T0, 3) for e in three]
    second = [_entry(e, "K1", T0 + 3 * H + timedelta(minutes=10), 3) for e in three]
    fuse = _entry("a4", "K1", T0 - timedelta(minutes=20), 7)
    found = _assess([*first, *second, fuse], K1)
    assert len(found.outages) == 3
    assert _paid(found) == {"a4": [Decimal("35.00")]}
    # and two of 5 h are two payments, each on its own entry
    longer = [_entry(e, "K1", T0, 5) for e in K1]
    again = [_entry(e, "K1", T0 + 5 * H + timedelta(minutes=10), 5) for e in K1]
    twice = _assess([*longer, *again], K1)
    assert _paid(twice) == {e: [Decimal("35.00"), Decimal("35.00")] for e in K1}


def test_an_entry_read_twice_or_by_overlapping_windows_is_paid_once() -> None:
    """The same log entry in two reads (two telegrams, two exports) is one interruption;
    an interruption belongs to the period its entry ENDS in, so two back-to-back periods
    (windows) never both pay an interruption that crosses the edge between them."""
    end = datetime(2025, 11, 1, 2, tzinfo=UTC)
    table = pa.table(
        {
            "connection": pa.array([1, 1, 2], pa.int64()),
            "end": pa.array([end, end, end], pa.timestamp("us", tz="UTC")),
            "duration_s": pa.array([5 * 3600] * 3, pa.int64()),
        }
    )
    eans = {1: "a1", 2: "a2"}
    spots = {e: GridSpot("OS1", "K1") for e in ("a1", "a2")}
    edge = datetime(2025, 10, 31, 23, tzinfo=UTC)  # the interruption began before it
    october = Period(datetime(2025, 9, 30, 22, tzinfo=UTC), edge)
    november = Period(edge, datetime(2025, 11, 30, 23, tzinfo=UTC))
    assert log_entries(table, eans, spots, october) == []  # still running at its end
    read = log_entries(table, eans, spots, november)
    assert sorted(e.ean for e in read) == ["a1", "a2"]
    found = _assess(read, {e: K1[e] for e in ("a1", "a2")})
    assert _paid(found) == {"a1": [Decimal("35.00")], "a2": [Decimal("35.00")]}


def test_a_fuse_blown_inside_a_cable_fault_does_not_stretch_the_cable_fault() -> None:
    """A fuse of a1 blows 30 min before the whole feeder K1 goes down for 3 h, and is
    replaced 1 h after the feeder is back (5 h): a1 is owed on its own 5 h entry; its
    neighbours, and a traditional meter placed by them, had 3 h and are owed nothing
    (merged, the outage would be 5 h long and everybody paid)."""
    meters = {**K1, "t": _meter("t", "K1", 9, smart=False)}
    fuse = _entry("a1", "K1", T0 - timedelta(minutes=30), 5)
    cable = [_entry(e, "K1", T0, 3) for e in ("a2", "a3", "a4")]
    found = _assess([fuse, *cable], meters)
    assert len(found.outages) == 2
    assert _paid(found) == {"a1": [Decimal("35.00")]}


def test_a_cable_fault_open_when_the_mv_feed_fails_keeps_its_own_level() -> None:
    """K1's cable fault (part of the feeder) is open 4 h 30 min; 1 h in, the MV feed of
    the substation fails for 1 h 30 min. The big connections on K2 had 1 h 30 min of an
    MV fault (threshold 2 h: nothing owed); merged with the cable fault they would be
    paid EUR 195 on 4 h 30 min. The cable fault's meters are owed on their own entries;
    the MV outage is MV although K1's cable part was already dark."""
    meters = {
        **K1,
        **{f"b{i}": _meter(f"b{i}", "K2", 2 * i - 1, amps=63) for i in range(1, 4)},
    }
    cable = [_entry(e, "K1", T0, 4.5) for e in ("a3", "a4")]
    mv_start = T0 + H
    mv = [_entry(e, "K1", mv_start, 1.5) for e in ("a1", "a2")]
    mv += [_entry(e, "K2", mv_start, 1.5) for e in ("b1", "b2", "b3")]
    found = _assess([*cable, *mv], meters)
    assert len(found.outages) == 2
    by_start = {o.start: o for o in found.outages}
    assert by_start[mv_start].grid_level is GridLevel.MV
    assert by_start[T0].grid_level is GridLevel.LV
    assert _paid(found) == {"a3": [Decimal("35.00")], "a4": [Decimal("35.00")]}
    # the same MV outage lasting 2 h 30 min: the big connections are owed at MV level
    longer = [_entry(e, "K2", mv_start, 2.5) for e in ("b1", "b2", "b3")]
    longer += [_entry(e, "K1", mv_start, 2.5) for e in ("a1", "a2")]
    paid = _paid(_assess([*cable, *longer], meters))
    assert paid == {
        **{e: [Decimal("195.00")] for e in ("b1", "b2", "b3")},
        "a3": [Decimal("35.00")],
        "a4": [Decimal("35.00")],
    }


def test_a_lost_log_entry_is_placed_by_its_neighbours_and_reviewed_not_paid() -> None:
    """The whole feeder K1 is down 5 h; a3's log holds no entry for it (its 10-entry log
    overflowed, or it was not read yet) while its neighbours on both sides are dark:
    it is placed in the dark and put on review with the reason, not paid, not ignored."""
    entries = [_entry(e, "K1", T0, 5) for e in ("a1", "a2", "a4")]
    found = _assess(entries, K1)
    assert set(_paid(found)) == {"a1", "a2", "a4"}
    (review,) = [r for r in found.reviews if r.ean == "a3"]
    assert LOST_ENTRY in review.reason and "EUR 35.00" in review.reason
    (drawn,) = found.maps
    assert next(m for m in drawn.meters if m.ean == "a3").state == UNKNOWN
    # at the end of the cable beyond lit neighbours it is not placed, nor reviewed
    lit_end = _assess([_entry(e, "K1", T0, 5) for e in ("a1", "a2")], K1)
    assert not [r for r in lit_end.reviews if r.ean in ("a3", "a4")]


def test_planned_work_that_runs_over_goes_to_review_not_paid_nor_dropped() -> None:
    """Planned work on K1 08:00-11:00; the meters' entries begin with it and end at
    13:00 (a fault after the work, or an overrun: the meters cannot tell): nothing is
    paid on a guess, each interruption that would be owed if unplanned is on review
    with the reason. Work that ends on time is reviewed for nobody."""
    work = PlannedWork("OS1", "K1", T0, T0 + 3 * H)
    entries = [_entry(e, "K1", T0, 5) for e in K1]
    found = assess(
        group_outages(entries), K1, list(K1), [work], compensation_scheme(), capacity_classes()
    )
    assert found.owed == []
    assert sorted(r.ean for r in found.reviews) == sorted(K1)
    assert all("EUR 35.00 if unplanned" in r.reason for r in found.reviews)
    on_time = [_entry(e, "K1", T0, 3) for e in K1]
    quiet = assess(
        group_outages(on_time), K1, list(K1), [work], compensation_scheme(), capacity_classes()
    )
    assert quiet.owed == [] and quiet.reviews == []
    # a fault begun an hour before the work is a fault: paid on the logs
    early = [_entry(e, "K1", T0 - H, 5) for e in K1]
    paid = assess(
        group_outages(early), K1, list(K1), [work], compensation_scheme(), capacity_classes()
    )
    assert {o.ean for o in paid.owed} == set(K1)


def test_a_cable_fault_begun_inside_an_mv_outage_is_paid_at_the_mv_level() -> None:
    """The MV feed fails for 1 h 30 min; a cable fault begun inside it keeps b2, b3 on K2
    dark 2 h 30 min from the MV start. Their interruption began with the MV fault, so it
    is paid at the MV threshold (2 h: EUR 195 for 3x63 A), as one interruption each."""
    meters = {
        **K1,
        **{f"b{i}": _meter(f"b{i}", "K2", 2 * i - 1, amps=63) for i in range(1, 4)},
    }
    mv = [_entry(e, "K1", T0, 1.5) for e in K1] + [_entry("b1", "K2", T0, 1.5)]
    cable = [_entry(e, "K2", T0, 2.5) for e in ("b2", "b3")]
    found = _assess([*mv, *cable], meters)
    assert len(found.outages) == 2
    assert all(o.grid_level is GridLevel.MV for o in found.outages)
    assert _paid(found) == {"b2": [Decimal("195.00")], "b3": [Decimal("195.00")]}


# --- the meter realities (issue 16) -------------------------------------------------


def _late(entry: LogEntry, offset_s: int) -> LogEntry:
    """``entry`` as a meter whose clock runs ``offset_s`` ahead logs it."""
    shift = timedelta(seconds=offset_s)
    return replace(entry, start=entry.start + shift, end=entry.end + shift)


def test_a_drifted_clock_does_not_stretch_the_outage_its_neighbours_are_paid_on() -> None:
    """K1 is down 3 h 59 min 30 s (under the 4 h threshold: nobody is owed); a4's fast
    clock logs its END 50 s late. Taken as logged the outage would last 4 h 0 min 20 s
    and the traditional meter t, placed in the dark by its neighbours, would be paid
    EUR 35; corrected to the three agreeing meters, nobody is paid."""
    meters = {**K1, "t": _meter("t", "K1", 4, smart=False)}
    seconds = 4 * 3600 - 30
    agree = [_entry(e, "K1", T0, seconds / 3600) for e in ("a1", "a2", "a3")]
    found = _assess([*agree, _late(_entry("a4", "K1", T0, seconds / 3600), 50)], meters)
    assert [o.duration for o in found.outages] == [timedelta(seconds=seconds)]
    assert _paid(found) == {}


def test_a_drifted_meter_is_paid_on_its_corrected_times_and_says_so() -> None:
    """a4's clock is 4 minutes fast in a 5 h outage: it is paid in the same outage, on
    the agreeing meters' times, with the correction on its line and in its source."""
    agree = [_entry(e, "K1", T0, 5) for e in ("a1", "a2", "a3")]
    found = _assess([*agree, _late(_entry("a4", "K1", T0, 5), 240)], K1)
    assert len(found.outages) == 1
    (a4,) = [o for o in found.owed if o.ean == "a4"]
    assert (a4.start, a4.end, a4.clock_corrected_s) == (T0, T0 + 5 * H, 240)
    assert "clock corrected by 240 s" in (a4.compensation.duration_source or "")


def test_a_lone_meter_just_over_a_threshold_goes_to_review_not_paid() -> None:
    """b1 alone on K2 logs 4 h and 1 s: a clock drifting a few seconds a day could
    carry that across the 4 h threshold, and no other meter can settle it, so it is on
    review with the reason. Three meters agreeing on the same 4 h 1 s are paid, and a
    lone meter far from a threshold (5 h) is paid on its own log."""
    b1 = {"b1": _meter("b1", "K2", 1)}
    just = _assess([_entry("b1", "K2", T0, (4 * 3600 + 1) / 3600)], b1)
    assert _paid(just) == {}
    (review,) = just.reviews
    assert "clock unconfirmed" in review.reason and "EUR 0.00 to EUR 35.00" in review.reason
    agreed = _assess([_entry(e, "K1", T0, (4 * 3600 + 1) / 3600) for e in K1], K1)
    assert set(_paid(agreed)) == set(K1) and agreed.reviews == []
    far = _assess([_entry("b1", "K2", T0, 5)], b1)
    assert _paid(far) == {"b1": [Decimal("35.00")]} and far.reviews == []
    # a suspected GIS feeder error in that case keeps its flag beside the clock's reason
    g = replace(_meter("g", "K2", 21), street="Straat K1")
    k2 = {e: _meter(e, "K2", n) for e, n in (("b1", 1), ("b2", 3))}
    flagged = _assess([_entry("g", "K2", T0, (4 * 3600 + 1) / 3600)], {**K1, **k2, "g": g})
    (why,) = [r.reason for r in flagged.reviews if r.ean == "g"]
    assert "suspected GIS feeder error" in why and "clock unconfirmed" in why


def test_a_missing_entry_is_reviewed_naming_what_the_meters_cannot_tell_apart() -> None:
    """A meter offline until after the period, a replaced meter (the old one never
    writes the END, the new one starts empty) and an overflowed log all leave no entry;
    the review names each possible cause."""
    found = _assess([_entry(e, "K1", T0, 5) for e in ("a1", "a2", "a4")], K1)
    (review,) = [r for r in found.reviews if r.ean == "a3"]
    assert review.reason.startswith("log entry missing")
    assert all(w in review.reason for w in ("offline", "replaced", "log overflow"))
