"""UC1 on the twin's hard cases (issue 16), each on a small constructed region of plain
values: meters on feeders, outages as intervals, last gasps. Presence at a moment is
what the store would answer (dark inside an interval), so each test runs UC1's own
decision (:func:`decide`) and fails when UC1 ignores its case."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.demo.score import Truth, score_uc1
from meetpunt.meterdata.store import supply_answer
from meetpunt.privacy.rules import local_days
from meetpunt.usecases.uc01_outage_localisation import (
    NONE_FOUND,
    PART,
    REVIEW,
    SINGLE,
    SUBSTATION,
    WHOLE,
    Uc01Result,
    Verdict,
    classify,
    decide,
    went_dark_with,
    window,
)

T0 = datetime(2025, 10, 20, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
#: Two feeders of one substation, five meters each; r1/r2 report.
FEEDERS = {f"m{k}{i}": f"K{k}" for k in (1, 2) for i in range(5)}
K1 = sorted(e for e, f in FEEDERS.items() if f == "K1")
K2 = sorted(e for e, f in FEEDERS.items() if f == "K2")

Outages = Sequence[tuple[Sequence[str], datetime, datetime]]


def presence(
    outages: Outages, meters: Mapping[str, str] = FEEDERS, unknown: frozenset[str] = frozenset()
) -> Callable[[datetime], dict[str, bool | None]]:
    """What the meters answer at a moment: dark inside an outage interval."""

    def at(moment: datetime) -> dict[str, bool | None]:
        return {
            e: None
            if e in unknown
            else not any(e in who and a <= moment < b for who, a, b in outages)
            for e in meters
        }

    return at


def gasps_of(
    outages: Outages, failed: frozenset[str] = frozenset()
) -> Callable[[], dict[str, datetime]]:
    """Each meter's last gasps: sent when it loses voltage (not when it is dark
    already), except by ``failed`` meters."""

    def read() -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        for who, a, _ in outages:
            lit = presence(outages)(a - timedelta(seconds=1))
            for e in who:
                if e not in failed and lit[e] and (e not in out or a > out[e]):
                    out[e] = a
        return out

    return read


def run(
    reporter: str,
    at: datetime,
    outages: Outages,
    failed: frozenset[str] = frozenset(),
    unknown: frozenset[str] = frozenset(),
    meters: Mapping[str, str] = FEEDERS,
    sent: Mapping[str, datetime] | None = None,
) -> Verdict:
    """UC1's verdict on a report from ``reporter`` at ``at``; ``sent``: the last gasps
    as given, instead of one per outage start."""
    ask = presence(outages, meters, unknown)

    def gasps() -> dict[str, datetime]:
        given = gasps_of(outages, failed)() if sent is None else sent
        return {e: g for e, g in given.items() if g <= at}

    return decide(reporter, meters, ask(at), ask, gasps, window(at).start)


def test_overlapping_faults_on_two_feeders_are_no_substation_outage() -> None:
    """Part of K1 dark from 10:00, all of K2 from 10:30: at 10:40 every feeder has dark
    meters, yet no substation outage (that needs all feeders dark at once)."""
    part = K1[:3]
    outages = [(part, T0, T0 + 180 * MIN), (K2, T0 + 30 * MIN, T0 + 120 * MIN)]
    at = T0 + 40 * MIN
    now = presence(outages)(at)
    assert classify(part[0], FEEDERS, now).classification == SUBSTATION  # merged, wrong
    assert run(part[0], at, outages).classification == PART
    assert run(K2[0], at, outages).classification == WHOLE
    verdict = run(part[0], at, outages)
    assert any("another outage" in line and "K2 5" in line for line in verdict.evidence)


def test_a_substation_outage_nested_in_a_feeder_fault_stays_apart() -> None:
    """A feeder part dark since 10:00; the whole substation fails at 12:00 (nested). The
    part's customer was cut off by the part fault; a customer elsewhere by the MV one."""
    part = K1[:2]
    everyone = sorted(FEEDERS)
    outages = [(part, T0, T0 + 240 * MIN), (everyone, T0 + 120 * MIN, T0 + 180 * MIN)]
    at = T0 + 130 * MIN
    assert run(part[0], at, outages).classification == PART
    assert run(K1[4], at, outages).classification == SUBSTATION
    assert run(K2[0], at, outages).classification == SUBSTATION


def test_an_outage_across_local_midnight_is_found_in_a_window_not_cut_at_midnight() -> None:
    """Part of K1 dark from 23:30 local (21:30Z), the substation from 00:05 local; the
    report at 00:15 local must reach back before midnight for the reporter's onset."""
    start = datetime(2025, 10, 20, 21, 30, tzinfo=UTC)
    part = K1[:2]
    outages = [
        (part, start, start + 300 * MIN),
        (sorted(FEEDERS), start + 35 * MIN, start + 90 * MIN),
    ]
    at = start + 45 * MIN
    assert window(at).start < start
    assert run(part[0], at, outages).classification == PART


@given(st.integers(min_value=0, max_value=400 * 24 * 60))
def test_the_window_is_at_most_one_local_day_and_holds_the_report(minutes: int) -> None:
    """Also across both DST changes: 23 UTC hours are never more than 1 local day."""
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    period = window(at)
    assert period.start <= at < period.end
    assert local_days(period) <= 1


def test_an_outage_still_open_when_the_data_ends_is_dark() -> None:
    """No log entry yet (the meter logs when supply returns): a meter that used energy
    and recorded none from the report's quarter-hour to its last one read is dark."""
    at = datetime(2025, 11, 4, 18, 32)
    since = at - timedelta(days=1)
    silent = {
        "last_read": datetime(2025, 11, 4, 22, 45),
        "last_supplied": datetime(2025, 11, 4, 18, 0),
    }
    assert supply_answer(at, False, None, **silent, since=since) is False
    supplied = {**silent, "last_supplied": silent["last_read"]}
    assert supply_answer(at, False, None, **supplied, since=since) is True
    # went dark within the quarter-hours around the report: the last gasp decides
    around = {**silent, "last_supplied": datetime(2025, 11, 4, 18, 15)}
    assert supply_answer(at, False, None, **around, since=since) is None
    assert supply_answer(at, False, at - 5 * MIN, **around, since=since) is False
    assert supply_answer(at, False, at + 5 * MIN, **around, since=since) is True
    # a meter that never used energy, or whose log says it is out
    idle = {**silent, "last_supplied": since - timedelta(hours=1)}
    assert supply_answer(at, False, None, **idle, since=since) is True
    assert supply_answer(at, True, None, None, None, since=since) is False


def test_an_outage_that_started_before_the_period_has_no_gasps_and_is_still_placed() -> None:
    """Its last gasps were sent before the data begins: UC1 classifies on the answers
    at the report instead of sending it to review."""
    outages = [(K2, T0 - 600 * MIN, T0 + 60 * MIN)]
    verdict = run(K2[1], T0, outages, failed=frozenset(FEEDERS))
    assert verdict.classification == WHOLE


def test_reclosing_and_a_second_fault_on_one_feeder() -> None:
    """K1 trips for 59 s and recloses, then part of it fails 3 minutes later; the report
    comes from a part meter whose own gasp failed: the part fault, not the whole trip.
    Later that day K1 fails again: the reporter's old gasp (05:00) is not its onset."""
    part = K1[:2]
    trip = T0 + 59 * timedelta(seconds=1)
    outages = [(K1, T0, trip), (part, T0 + 3 * MIN, T0 + 90 * MIN)]
    at = T0 + 10 * MIN
    assert run(part[0], at, outages, failed=frozenset({part[0]})).classification == PART
    morning = T0 - 300 * MIN
    again = [(K1, morning, morning + 50 * MIN), (part, T0, T0 + 90 * MIN)]
    # the reporter's gasp got through in the morning, not at the second fault
    sent = {**dict.fromkeys(K1, morning), part[1]: T0}
    verdict = run(part[0], at, again, sent=sent)
    assert verdict.classification == PART
    assert any(T0.isoformat() in line for line in verdict.evidence)


def test_a_customer_whose_own_breaker_tripped() -> None:
    """Its meter has voltage while K2 is out: not a grid outage here; a reporter that
    cannot be asked with everything around it lit goes to review (its own breaker and
    a blown cabinet fuse look the same to the meters)."""
    outages = [(K2, T0, T0 + 60 * MIN)]
    at = T0 + 10 * MIN
    assert run(K1[0], at, outages).classification == NONE_FOUND
    lone = run(K1[0], at, [], unknown=frozenset({K1[0]}))
    assert lone.classification == REVIEW and lone.crew is None
    assert any(line.startswith("review:") for line in lone.evidence)


def test_a_fuse_under_a_feeder_fault_and_the_only_meter_on_a_feeder() -> None:
    """A blown fuse at 10:00, then all of K1 at 10:40: the fuse customer's outage began
    alone (single connection). A reporter alone on its feeder: review."""
    fuse = K1[0]
    outages = [([fuse], T0, T0 + 300 * MIN), (K1, T0 + 40 * MIN, T0 + 200 * MIN)]
    assert run(fuse, T0 + 50 * MIN, outages).classification == SINGLE
    assert run(fuse, T0 + 50 * MIN, outages, failed=frozenset({fuse})).classification == REVIEW
    alone = {"x": "K9", **dict.fromkeys(K2, "K8")}
    assert (
        run("x", T0 + 5 * MIN, [(["x"], T0, T0 + 60 * MIN)], meters=alone).classification == REVIEW
    )


def test_went_dark_with_keeps_earlier_outages_unknown() -> None:
    before = {"a": False, "b": True, "c": True, "d": None}
    after = {"a": False, "b": False, "c": True, "d": None}
    assert went_dark_with(before, after) == {"a": None, "b": False, "c": True, "d": None}


def test_score_counts_review_apart_from_wrong() -> None:
    """score_uc1: a review is not right, but no wrong guess either."""
    row = {"ean": "r", "outage_id": "O1", "start": T0, "end": T0 + 60 * MIN}
    outage = {"outage_id": "O1", "extent": "part_of_feeder", "cases": ["overlapping"]}
    truth = Truth([], [outage], [row], [], [])

    def result(classification: str) -> Uc01Result:
        verdict = Verdict(classification, "K1", ("review: why",))
        return Uc01Result("r", T0 + MIN, "t", "OS1", (), (), verdict, (), None)

    score = score_uc1([result(PART), result(REVIEW), result(WHOLE)], truth)
    assert score.metrics == {"reports": 3, "classified_right": 1, "on_review": 1, "wrong": 1}
    assert score.by_case["overlapping"]["on_review"] == 1
    assert any("on review (review: why)" in m for m in score.misses)


# --- the meters' realities (issue 16): what the store answers, not the truth ----------

QUARTER = timedelta(minutes=15)
DAY = timedelta(days=1)


def meter_store(
    outages: Outages,
    *,
    drift: Mapping[str, timedelta] | None = None,
    offline: Mapping[str, datetime] | None = None,
    replaced: frozenset[str] = frozenset(),
    unlogged: frozenset[str] = frozenset(),
    no_volts: frozenset[str] = frozenset(),
    meters: Mapping[str, str] = FEEDERS,
) -> Callable[[datetime], dict[str, bool | None]]:
    """Presence as the store answers it (:func:`supply_answer`) from what a head-end
    read of the meters in ``outages``: failure-log intervals by each meter's clock
    (``drift``: shifted by its error), measured quarter-hours (20 Wh, 0 Wh when dark
    the whole quarter; none from an ``offline`` meter's moment on), no log entry for
    a ``replaced`` meter (and its swap known) or an ``unlogged`` one (entry lost);
    10-minute mean voltages (0 V when dark all of it) except of ``no_volts`` meters."""
    drift = drift or {}
    offline = offline or {}

    def dark(e: str, a: datetime, b: datetime) -> bool:
        """Dark through all of [a, b) in the truth."""
        return any(e in who and s <= a and b <= t for who, s, t in outages)

    def answer(e: str, at: datetime) -> bool | None:
        shift = drift.get(e, timedelta(0))
        end = offline.get(e)
        # an entry is written when supply returns; read only if the meter is reachable
        logged = e not in replaced | unlogged and any(
            e in who and s + shift <= at < t + shift and (end is None or t < end)
            for who, s, t in outages
        )
        first = at - DAY - timedelta(minutes=at.minute % 15, seconds=at.second)
        quarters = [first + k * QUARTER for k in range(2 * 96 + 1)]
        read = [q for q in quarters if end is None or q + QUARTER <= end]
        supplied = [q for q in read if not dark(e, q, q + QUARTER)]
        quarter = at - timedelta(minutes=at.minute % 15, seconds=at.second)
        ten = at - timedelta(minutes=at.minute % 10, seconds=at.second)
        measured = e not in no_volts and (end is None or ten + 10 * MIN <= end)
        volts = (0.0 if dark(e, ten, ten + 10 * MIN) else 230.0) if measured else None
        return supply_answer(
            at,
            logged,
            None,
            max(read, default=None),
            max(supplied, default=None),
            since=at - DAY,
            zero_now=quarter in read and quarter not in supplied,
            replaced=e in replaced,
            volts=volts,
        )

    return lambda at: {e: answer(e, at) for e in meters}


def store_run(
    reporter: str, at: datetime, outages: Outages, ask: Callable[[datetime], dict[str, bool | None]]
) -> Verdict:
    """UC1's verdict with presence from :func:`meter_store` (gasps on time, none lost)."""

    def gasps() -> dict[str, datetime]:
        return {e: g for e, g in gasps_of(outages)().items() if g <= at}

    return decide(reporter, FEEDERS, ask(at), ask, gasps, window(at).start, at=at)


ONSET = T0 + 7 * MIN  # inside a quarter-hour: the onset's quarter is partly supplied


def test_a_meter_replaced_during_the_outage_is_unknown_not_lit() -> None:
    """All of K1 dark; K1[0] was exchanged in it: the old meter never logs the outage,
    the new one starts empty. The meter index knows the swap: unknown, so the feeder
    is whole (lit, it would be part of the feeder)."""
    outages = [(K1, ONSET, ONSET + 120 * MIN)]
    ask = meter_store(outages, replaced=frozenset({K1[0]}))
    assert ask(ONSET + MIN)[K1[0]] is None
    assert store_run(K1[1], ONSET + 20 * MIN, outages, ask).classification == WHOLE
    # the swap alone makes it unknown, also where its quarter-hour still had energy
    at = datetime(2025, 10, 20, 10, 8)
    busy = {"last_read": at + DAY, "last_supplied": at + DAY}
    assert supply_answer(at, False, None, **busy, since=at - DAY, replaced=True) is None
    assert supply_answer(at, False, None, **busy, since=at - DAY) is True


def test_an_offline_meter_is_unknown_not_lit() -> None:
    """K1[0]'s communication went down the day before; the hub filled its quarter-hours
    with estimates (no measurement). Asked, it cannot answer: unknown, not lit."""
    outages = [(K1, ONSET, ONSET + 120 * MIN)]
    ask = meter_store(outages, offline={K1[0]: ONSET - 600 * MIN})
    assert ask(ONSET + 20 * MIN)[K1[0]] is None
    assert store_run(K1[1], ONSET + 20 * MIN, outages, ask).classification == WHOLE
    # the reporter itself offline: classified on its feeder, not "own installation"
    assert store_run(K1[0], ONSET + 20 * MIN, outages, ask).classification == WHOLE
    at = datetime(2025, 10, 20, 10, 8)
    assert supply_answer(at, False, None, None, None, since=at - DAY) is None
    stopped = {"last_read": at - 2 * QUARTER, "last_supplied": at - 2 * QUARTER}
    assert supply_answer(at, False, None, **stopped, since=at - DAY) is None


@settings(deadline=None, max_examples=60)
@given(st.integers(min_value=-8 * 60, max_value=8 * 60), st.integers(min_value=1, max_value=40))
def test_a_drifting_clock_does_not_flip_presence_at_the_onset(shift_s: int, late: int) -> None:
    """K1[0]'s log runs up to 8 minutes off (the twin's clocks: 5 min plus drift);
    the gasps carry the head-end's time. Whether the report comes 1 or 40 minutes
    after the onset, from the drifted meter or another, K1 is whole, not part."""
    shift = timedelta(seconds=shift_s)
    outages = [(K1, ONSET, ONSET + 120 * MIN)]
    ask = meter_store(outages, drift={K1[0]: shift})
    at = ONSET + late * MIN
    assert store_run(K1[1], at, outages, ask).classification == WHOLE
    verdict = store_run(K1[0], at, outages, ask)
    assert verdict.classification == WHOLE, verdict.evidence


def test_a_drifting_reporter_whose_log_starts_before_the_gasps_is_placed() -> None:
    """The reporter's clock is 4 minutes fast, its gasp lost: its log has it dark before
    its neighbours' gasps. Within the clock's tolerance that is the same onset: whole
    feeder, not review."""
    outages = [(K1, ONSET, ONSET + 120 * MIN)]
    ask = meter_store(outages, drift={K1[0]: -4 * MIN})

    def gasps() -> dict[str, datetime]:
        return dict.fromkeys(K1[1:], ONSET)

    at = ONSET + 20 * MIN
    verdict = decide(K1[0], FEEDERS, ask(at), ask, gasps, window(at).start, at=at)
    assert verdict.classification == WHOLE
    assert any("tolerance" in line for line in verdict.evidence)


def test_a_lost_log_entry_is_unknown_not_lit() -> None:
    """K1[0]'s entry was pushed out of its 10-entry log before a read: its quarter-hours
    hold no energy and its voltage none while its neighbours are dark, so it is
    unknown, not lit, and K1 is whole (with or without voltage records)."""
    outages = [(K1, ONSET, ONSET + 120 * MIN)]
    lost = frozenset({K1[0]})
    for ask in (
        meter_store(outages, unlogged=lost),
        meter_store(outages, unlogged=lost, no_volts=lost),
    ):
        assert ask(ONSET + 20 * MIN)[K1[0]] is None
        assert store_run(K1[1], ONSET + 20 * MIN, outages, ask).classification == WHOLE


def test_a_tripped_own_breaker_stays_lit_though_it_measures_no_energy() -> None:
    """Its own breaker cut the house off: no energy, but voltage at the meter. The
    quarter-hour's silence makes it unknown only where no voltage was measured."""
    at = datetime(2025, 10, 20, 10, 22)
    off = {"last_read": at + DAY, "last_supplied": at + DAY, "since": at - DAY}
    assert supply_answer(at, False, None, **off, zero_now=True, volts=231.0) is True
    assert supply_answer(at, False, None, **off, zero_now=True) is None
    assert supply_answer(at, False, None, **off, zero_now=True, volts=0.0) is None


def test_the_settled_answer_keeps_a_late_log_from_counting_as_lit() -> None:
    """went_dark_with: lit just after the onset but dark a clock's tolerance later is
    unknown (a clock behind, or a later outage), lit in both is lit."""
    before = {"a": True, "b": True, "c": True}
    after = {"a": True, "b": True, "c": False}
    settled = {"a": False, "b": True, "c": False}
    assert went_dark_with(before, after, settled) == {"a": None, "b": True, "c": False}


def test_a_reclosing_trip_is_not_taken_for_a_late_clock() -> None:
    """K1 trips for 59 s at T0 (every meter's gasp sent then; too short to be logged),
    part of K1 fails at T0+3 min without gasps. The reporter lit a minute after its
    gasp, with nobody else dark then: a short interruption and a late clock look the
    same, so review, not a single connection (it would be alone on its feeder)."""
    part = K1[:2]
    outages = [(part, T0 + 3 * MIN, T0 + 90 * MIN)]  # the trip is not in the log
    at = T0 + 10 * MIN
    ask = meter_store(outages)

    def gasps() -> dict[str, datetime]:
        return dict.fromkeys(K1, T0)

    verdict = decide(part[0], FEEDERS, ask(at), ask, gasps, window(at).start, at=at)
    assert verdict.classification == REVIEW, verdict.evidence


def test_a_late_clock_at_the_report_is_unknown_without_any_gasp() -> None:
    """No gasp got through (UC1 classifies on the answers at the report); K1[2]'s
    clock is 6 minutes behind, so at 3 minutes after the onset its log still says lit.
    Dark by its log within the tolerance after the report: unknown, so K1 is whole."""
    outages = [(K1, ONSET, ONSET + 120 * MIN)]
    ask = meter_store(outages, drift={K1[2]: 6 * MIN})
    at = ONSET + 3 * MIN
    assert ask(at)[K1[2]] is True
    verdict = decide(K1[0], FEEDERS, ask(at), ask, dict, window(at).start, at=at)
    assert verdict.classification == WHOLE


def test_a_later_outage_with_its_own_gasps_is_no_late_clock() -> None:
    """Part of K1 dark at the onset; the rest of K1 fails 8 minutes later and gasps
    then (the head-end's time): those meters were lit at the onset, not late, so the
    first fault is part of the feeder, not the whole of it."""
    part = K1[:2]
    outages = [(part, ONSET, ONSET + 120 * MIN), (K1[2:], ONSET + 8 * MIN, ONSET + 60 * MIN)]
    ask = meter_store(outages)
    assert store_run(part[0], ONSET + 15 * MIN, outages, ask).classification == PART


def test_no_smart_meter_answering_goes_to_review() -> None:
    """With no smart meter answering at all (no data at that moment), UC1 reviews
    instead of answering "own installation" or guessing an extent."""
    verdict = classify(K1[0], FEEDERS, dict.fromkeys(FEEDERS))
    assert verdict.classification == REVIEW
    assert any("no smart meter answered" in line for line in verdict.evidence)
