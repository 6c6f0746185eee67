"""UC9 on the hard outages of issue 16, on small constructed inputs (pure functions).

Each test fails when UC9 ignores its case: a nested outage merged into the one it sits
in, a repeated fault merged or summed, a reclosing's short interruption counted in the
figures, planned work counted with the faults.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.demo.score import Truth, score_uc4, score_uc9
from meetpunt.privacy.model import Period
from meetpunt.usecases.planned_works import PlannedWork
from meetpunt.usecases.uc04_outage_compensation import LOST_ENTRY, Review, Uc04Result
from meetpunt.usecases.uc09_interruption_registration import (
    CLOCK_AGREED,
    CLOCK_ALONE,
    CLOCK_CORRECTED,
    CLOCK_DRIFT_MAX_S,
    LogEntry,
    Uc09Result,
    duration_error_s,
    group_outages,
    mark_planned,
    reliability,
)

T0 = datetime(2025, 10, 14, 8, tzinfo=UTC)
PERIOD = Period(datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 11, 1, tzinfo=UTC))


def _entry(ean: str, feeder: str, start: datetime, seconds: int) -> LogEntry:
    return LogEntry(ean, "OS1", feeder, start, start + timedelta(seconds=seconds), seconds)


def _groups(entries: list[LogEntry]) -> list[tuple[str, ...]]:
    return sorted(tuple(c.ean for c in o.customers) for o in group_outages(entries))


def test_a_cable_fault_nested_in_an_mv_outage_is_registered_separately() -> None:
    """K1's cable fault (a1, a2) is open 4 h; 1 h in, the MV feed fails for 1 h on
    every feeder. a1, a2 log one interruption from the cable fault's start; the others
    log the MV outage: two outages, each entry in exactly one, to the second."""
    cable = [_entry(e, "K1", T0, 4 * 3600) for e in ("a1", "a2")]
    mv = [_entry(e, f, T0 + timedelta(hours=1), 3600) for e, f in (("a3", "K1"), ("b1", "K2"))]
    outages = group_outages([*cable, *mv])
    assert _groups([*cable, *mv]) == [("a1", "a2"), ("a3", "b1")]
    by_start = {o.start: o for o in outages}
    assert by_start[T0].duration_s == 4 * 3600
    assert by_start[T0 + timedelta(hours=1)].feeders == ("K1", "K2")


def test_a_fuse_inside_a_feeder_that_is_down_is_its_own_outage() -> None:
    fuse = _entry("a1", "K1", T0 - timedelta(minutes=30), 5 * 3600)
    cable = [_entry(e, "K1", T0, 3 * 3600) for e in ("a2", "a3")]
    assert _groups([fuse, *cable]) == [("a1",), ("a2", "a3")]


def test_a_repeated_fault_is_registered_twice_with_each_entry_as_logged() -> None:
    """A feeder fails in the morning and again in the afternoon (and a meter bridging
    both with a long fuse failure): each fault is its own outage, each customer's
    interruption is its own entry, never summed."""
    morning = [_entry(e, "K1", T0, 50 * 60) for e in ("a1", "a2")]
    afternoon = [_entry(e, "K1", T0 + timedelta(hours=5), 95 * 60) for e in ("a1", "a2")]
    bridge = _entry("a3", "K1", T0 - timedelta(minutes=5), 8 * 3600)
    outages = group_outages([*morning, *afternoon, bridge])
    assert len(outages) == 3
    durations = sorted(c.duration_s for o in outages for c in o.customers if c.ean == "a1")
    assert durations == [50 * 60, 95 * 60]
    assert reliability(outages, 10, PERIOD).customer_interruptions == 5


def test_short_interruptions_of_a_reclosing_are_not_counted() -> None:
    """A reclosing: 2-minute and 3-minute interruptions, then the lasting fault. Only
    interruptions longer than 3 minutes count in SAIFI/SAIDI (the national register's
    long interruptions); the short ones are registered but not counted."""
    shorts = [_entry("a1", "K1", T0, 120), _entry("a1", "K1", T0 + timedelta(minutes=4), 180)]
    lasting = _entry("a1", "K1", T0 + timedelta(minutes=10), 2 * 3600)
    outages = group_outages([*shorts, lasting])
    assert len(outages) == 3
    f = reliability(outages, 4, PERIOD)
    assert f.customer_interruptions == 1
    assert f.customer_minutes_lost == pytest.approx(120)
    assert f.saifi == pytest.approx(0.25)


def test_planned_work_is_registered_and_counted_apart() -> None:
    """Planned work on K1 and a fault on K2 at the same time: both registered, the
    planned one marked planned and left out of the unplanned figures."""
    work = PlannedWork("OS1", "K1", T0, T0 + timedelta(hours=3))
    planned = [_entry(e, "K1", T0, 3 * 3600) for e in ("a1", "a2")]
    fault = [_entry("b1", "K2", T0 + timedelta(minutes=30), 3600)]
    outages = mark_planned(group_outages([*planned, *fault]), [work])
    unplanned = [o for o in outages if o.planned is None]
    assert [c.ean for o in unplanned for c in o.customers] == ["b1"]
    assert reliability(unplanned, 10, PERIOD).customer_interruptions == 1
    apart = reliability([o for o in outages if o.planned is not None], 10, PERIOD)
    assert apart.customer_interruptions == 2


@given(
    starts=st.lists(st.integers(0, 48 * 60), min_size=1, max_size=12),
    lengths=st.lists(st.integers(181, 6 * 3600), min_size=12, max_size=12),
)
def test_every_entry_is_in_exactly_one_outage_as_logged(
    starts: list[int], lengths: list[int]
) -> None:
    """Whatever the overlaps, every entry is registered once, to the second as logged
    or, where its times match what other meters agree on but for an offset, corrected
    by exactly the offset it states (issue 16); the members of one outage started
    together, up to a clock's offset."""
    entries = [
        _entry(f"m{i}", f"K{i % 3}", T0 + timedelta(minutes=s), lengths[i])
        for i, s in enumerate(starts)
    ]
    outages = group_outages(entries)
    customers = [c for o in outages for c in o.customers]
    registered = sorted((c.ean, c.end + timedelta(seconds=c.clock_corrected_s)) for c in customers)
    assert registered == sorted((e.ean, e.end) for e in entries)
    logged = {e.ean: e.duration_s for e in entries}
    assert all(
        abs(c.duration_s - logged[c.ean]) <= duration_error_s(c.duration_s) for c in customers
    )
    assert all(c.clock_corrected_s == 0 or c.clock == CLOCK_CORRECTED for c in customers)
    for o in outages:
        assert max(c.start for c in o.customers) - min(c.start for c in o.customers) <= timedelta(
            seconds=(60 + CLOCK_DRIFT_MAX_S) * len(o.customers)
        )


def test_a_fault_begun_before_planned_work_is_not_the_planned_work() -> None:
    """A cable fault on K1 at 07:00 and planned work on K1 from 08:00: the meters' entry
    begins with the fault, so it is unplanned and counted (the work merely overlaps);
    an outage begun with the work is the work."""
    work = PlannedWork("OS1", "K1", T0, T0 + timedelta(hours=3))
    fault = [_entry(e, "K1", T0 - timedelta(hours=1), 4 * 3600) for e in ("a1", "a2")]
    (marked,) = mark_planned(group_outages(fault), [work])
    assert marked.planned is None
    begun = [_entry(e, "K1", T0, 3 * 3600) for e in ("a1", "a2")]
    (with_work,) = mark_planned(group_outages(begun), [work])
    assert with_work.planned == work


def test_a_cable_fault_begun_inside_an_mv_outage_and_outlasting_it_is_its_own() -> None:
    """The MV feed fails at 08:00 for 1 h 20 min; at 08:27 a cable fault cuts part of K2
    until 10:03. Those meters log one interruption from 08:00 to 10:03, starting with
    the MV set: it is still its own outage, as the rest of K2 came back with the
    substation at 09:20. A feeder switched back 10 minutes after the others is not."""
    mv = [_entry(e, f, T0, 80 * 60) for e, f in (("a1", "K1"), ("a2", "K1"), ("b1", "K2"))]
    cable = [_entry(e, "K2", T0, 123 * 60) for e in ("b2", "b3")]
    outages = group_outages([*mv, *cable])
    assert _groups([*mv, *cable]) == [("a1", "a2", "b1"), ("b2", "b3")]
    assert len({o.id for o in outages}) == 2
    staged = [_entry(e, "K2", T0, 90 * 60) for e in ("b1", "b2", "b3")]  # K2 back 10 min later
    assert _groups([*mv[:2], *staged]) == [("a1", "a2", "b1", "b2", "b3")]


# --- the meter realities (issue 16): a meter whose clock drifted ---------------------


def _drifted(entry: LogEntry, offset_s: int) -> LogEntry:
    """``entry`` as a meter whose clock is ``offset_s`` ahead logs it (END and start
    shifted, the duration measured with its own clock unchanged)."""
    shift = timedelta(seconds=offset_s)
    return replace(entry, start=entry.start + shift, end=entry.end + shift)


def test_a_drifted_clock_is_corrected_to_its_outages_agreeing_meters() -> None:
    """Three meters of a cable fault agree; a fourth logs END 3 min 15 s late (its
    clock is fast). Without correction it starts too far apart to join (a second outage)
    and registers the wrong end; corrected, it is one outage at the true times and
    the entry says by how much."""
    fault = [_entry(e, "K1", T0, 4 * 3600) for e in ("a1", "a2", "a3")]
    late = _drifted(_entry("a4", "K1", T0, 4 * 3600), 195)
    outages = group_outages([*fault, late])
    assert len(outages) == 1
    a4 = next(c for c in outages[0].customers if c.ean == "a4")
    assert (a4.start, a4.end, a4.duration_s) == (T0, T0 + timedelta(hours=4), 4 * 3600)
    assert (a4.clock, a4.clock_corrected_s) == (CLOCK_CORRECTED, 195)
    assert {c.clock for c in outages[0].customers if c.ean != "a4"} == {CLOCK_AGREED}
    assert outages[0].as_dict()["customers"][3]["clock_corrected_s"] == 195


def test_a_small_drift_inside_the_start_together_window_is_corrected_too() -> None:
    slow = _drifted(_entry("a4", "K1", T0, 3600), -40)
    fault = [_entry(e, "K1", T0, 3600) for e in ("a1", "a2")]
    (outage,) = group_outages([*fault, slow])
    assert outage.end == T0 + timedelta(hours=1)
    assert {c.end for c in outage.customers} == {T0 + timedelta(hours=1)}


def test_a_meter_alone_keeps_its_own_time_and_two_that_disagree_are_not_corrected() -> None:
    """Nothing to compare with: a lone meter's drifted END is registered as logged, and
    of two meters that disagree neither is taken as right (no median of two), though
    their matching durations make them one outage, not two."""
    alone = _drifted(_entry("a1", "K1", T0, 5000), 120)
    (outage,) = group_outages([alone])
    assert outage.customers[0].end == alone.end and outage.customers[0].clock == CLOCK_ALONE
    pair = [_entry("b1", "K2", T0, 5000), _drifted(_entry("b2", "K2", T0, 5000), 150)]
    (both,) = group_outages(pair)
    assert {c.end for c in both.customers} == {e.end for e in pair}
    assert {c.clock_corrected_s for c in both.customers} == {0}


def test_a_separate_fault_minutes_later_is_not_taken_for_a_drifted_clock() -> None:
    """Two cable faults of one substation 3 minutes apart: their durations differ, so
    the later one is another outage, not a drifted copy of the first."""
    k1 = [_entry(e, "K1", T0, 2 * 3600) for e in ("a1", "a2", "a3")]
    k2 = [_entry(e, "K2", T0 + timedelta(minutes=3), 2 * 3600 + 47) for e in ("b1", "b2")]
    assert _groups([*k1, *k2]) == [("a1", "a2", "a3"), ("b1", "b2")]
    assert all(c.clock_corrected_s == 0 for o in group_outages([*k1, *k2]) for c in o.customers)


@given(
    offset=st.integers(-CLOCK_DRIFT_MAX_S + 6, CLOCK_DRIFT_MAX_S - 6).filter(lambda x: x != 0),
    minutes=st.integers(4, 24 * 60),
    agreeing=st.integers(2, 6),
    rate=st.floats(-6.0, 6.0),
)
def test_any_drift_within_the_bound_is_corrected_to_the_agreeing_meters(
    offset: int, minutes: int, agreeing: int, rate: float
) -> None:
    """Whatever the offset, duration, group size and drift rate of the clock (its
    duration off by the rate over the interruption), the drifted entry is registered at
    the agreeing meters' times in their outage (the END's offset, start offset plus the
    duration's error of at most 6 s, kept within the bound)."""
    seconds = minutes * 60
    fault = [_entry(f"a{i}", "K1", T0, seconds) for i in range(agreeing)]
    measured = seconds + round(rate * seconds / 86_400)
    drifted = _entry("z", "K1", T0 + timedelta(seconds=offset), measured)
    outages = group_outages([*fault, drifted])
    assert len(outages) == 1
    z = next(c for c in outages[0].customers if c.ean == "z")
    assert (z.end, z.duration_s, z.clock_corrected_s) == (
        fault[0].end,
        seconds,
        offset + measured - seconds,
    )


# --- the score follows what the meters can settle (issue 16) ------------------------


def _seen(ean: str, end: datetime, seconds: int, drift_s: int = 0, *, read: bool = True) -> dict:
    """A ``truth/interruptions_seen`` row of outage O1 whose meter is ``drift_s`` ahead."""
    return {
        "outage_id": "O1",
        "ean": ean,
        "planned": False,
        "logged": True,
        "log_end": end,
        "log_duration_s": seconds,
        "meter_log_end": end + timedelta(seconds=drift_s),
        "meter_log_duration_s": seconds,
        "read": read,
        "meter_cases": ["clock_drift"] if drift_s else (["log_overflow"] if not read else []),
    }


def _truth(seen: list[dict], owed: dict[str, str] | None = None) -> Truth:
    rows = [
        {
            "ean": r["ean"],
            "outage_id": r["outage_id"],
            "start": r["log_end"] - timedelta(seconds=r["log_duration_s"]),
            "end": r["log_end"],
            "planned": False,
            "compensation_eur": (owed or {}).get(r["ean"], "0.00"),
            "owed_in_period": True,
            "customer_start": r["log_end"] - timedelta(seconds=r["log_duration_s"]),
        }
        for r in seen
    ]
    outage = {"outage_id": "O1", "cases": ["plain"], "planned": False, "feeder": "K1"}
    return Truth([], [outage], rows, seen, [])


def _uc9(entries: list[LogEntry]) -> Uc09Result:
    outages = tuple(group_outages(entries))
    return Uc09Result(PERIOD, None, outages, reliability(outages, 10, PERIOD), len(entries), None)


def test_the_score_expects_the_true_end_where_others_agree_and_the_meters_alone() -> None:
    """A drifted meter among three right ones must be registered at the true end (UC9
    registering its drifted end is a miss); a drifted meter alone at its own end; an
    entry the head-end never read is not demanded."""
    end = T0 + timedelta(hours=5)
    seen = [_seen(e, end, 5 * 3600) for e in ("a1", "a2", "a3")]
    seen += [_seen("a4", end, 5 * 3600, drift_s=130), _seen("a5", end, 5 * 3600, read=False)]
    logged = [_entry(e, "K1", T0, 5 * 3600) for e in ("a1", "a2", "a3")]
    drifted = _drifted(_entry("a4", "K1", T0, 5 * 3600), 130)
    asked = {r["ean"] for r in seen}
    right = score_uc9(_uc9([*logged, drifted]), _truth(seen), asked)
    assert right.metrics["interruptions_truth"] == 4 and right.perfect
    (outage,) = _uc9([*logged, drifted]).outages  # a4 left as its drifted clock says
    as_logged = tuple(
        replace(c, start=drifted.start, end=drifted.end) if c.ean == "a4" else c
        for c in outage.customers
    )
    wrong = replace(_uc9([]), outages=(replace(outage, customers=as_logged),))
    scored = score_uc9(wrong, _truth(seen), asked)
    assert scored.metrics["interruptions_exact"] == 3
    assert [m for m in scored.misses if m.startswith("a4 of O1")]
    lone = [_seen("b1", end, 5 * 3600, drift_s=-70)]
    alone = _drifted(_entry("b1", "K2", T0, 5 * 3600), -70)
    assert score_uc9(_uc9([alone]), _truth(lone), {"b1"}).perfect


def test_the_score_counts_a_review_for_an_entry_never_read_as_explained() -> None:
    """UC4 reviews a3 (no entry read) and a7 (no meter reality): a3's review is
    explained by the truth, a7's is a needless review, a miss."""
    end = T0 + timedelta(hours=5)
    seen = [_seen("a3", end, 5 * 3600, read=False), _seen("a7", end, 5 * 3600)]
    truth = _truth(seen, owed={"a3": "35.00", "a7": "35.00"})
    reviews = tuple(Review(e, "OS1", LOST_ENTRY) for e in ("a3", "a7"))
    result = Uc04Result(PERIOD, "t", (), (), reviews, (), 0, None, "v")
    score = score_uc4(result, truth)
    assert score.metrics["owed_on_review"] == 1 and score.metrics["missed"] == 0
    assert [m for m in score.misses if "a7" in m and "no reason" in m]
    assert not [m for m in score.misses if "a3" in m]
