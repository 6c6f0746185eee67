"""Disclosure control's pure core (PRV-6): fixed period grid, contributors toward k,
dominance and the p %-rule, differencing across overlapping periods, linked cells
(complementary suppression), and the release history by connection id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.privacy import noise, release_history
from meetpunt.privacy.disclosure import (
    DIFFERENCING,
    DOMINANCE,
    LINKED,
    MIN_CONNECTIONS,
    P_PERCENT,
    POPULATION,
    Candidate,
    DisclosureRules,
    Earlier,
    allowed_levels,
    computable_groups,
    decide,
    grid_periods,
    rounded_count,
)
from meetpunt.privacy.model import Period
from meetpunt.register import Register, open_register

D0 = date(2025, 7, 7)  # a Monday
T0 = local_midnight_utc(D0)
RULES = DisclosureRules()


def day(n: int = 0, days: int = 1) -> Period:
    return Period(
        local_midnight_utc(D0 + timedelta(days=n)),
        local_midnight_utc(D0 + timedelta(days=n + days)),
    )


def cell(
    ids: Sequence[int], period: Period | None = None, value: float = 1.0, area: str = "a"
) -> Candidate:
    return Candidate("street", area, period or day(), dict.fromkeys(ids, value))


def test_the_period_grid_takes_whole_local_periods_only() -> None:
    week = Period(T0, local_midnight_utc(D0 + timedelta(days=7)))
    assert grid_periods(week, "day") == [day(i) for i in range(7)]
    assert grid_periods(week, "week") == [week]
    assert grid_periods(Period(T0 + timedelta(seconds=1), week.end), "day") is None
    assert grid_periods(Period(T0, week.end - timedelta(minutes=1)), "day") is None
    assert (
        grid_periods(Period(local_midnight_utc(D0 + timedelta(days=1)), week.end), "week") is None
    )
    october = Period(local_midnight_utc(date(2025, 10, 1)), local_midnight_utc(date(2025, 11, 1)))
    assert grid_periods(october, "month") == [october]  # 31 local days across the clock change
    assert len(grid_periods(october, "day") or []) == 31
    assert grid_periods(Period(october.start, october.end + timedelta(days=1)), "month") is None


def test_levels_are_the_purposes_or_coarser() -> None:
    assert allowed_levels("pc4") == ("pc4", "pc3", "municipality")
    assert "feeder" in allowed_levels("street") and "street" not in allowed_levels("pc3")


def test_ten_contributors_are_shown_nine_are_suppressed() -> None:
    assert decide([cell(range(10))], RULES).shown
    outcome = decide([cell(range(9))], RULES)
    assert not outcome.shown and outcome.rules == (MIN_CONNECTIONS,)


def test_members_without_a_contribution_do_not_count_toward_k() -> None:
    """Houses without panels in an export sum: two colluding solar owners must not learn
    a third's output from a 'cell of ten'."""
    values = {i: (500.0 if i < 3 else 0.0) for i in range(12)}
    outcome = decide([Candidate("street", "a", day(), values)], RULES)
    assert not outcome.shown and MIN_CONNECTIONS in outcome.rules


def test_dominance_and_the_p_percent_rule() -> None:
    one_big = dict.fromkeys(range(10), 1.0) | {99: 100.0}
    assert DOMINANCE in decide([Candidate("street", "a", day(), one_big)], RULES).rules
    two_big = dict.fromkeys(range(10), 1.0) | {98: 100.0, 99: 95.0}
    two_big[0] = 0.5  # rest 9.5 < 10: the second could estimate the first within 10 %
    outcome = decide([Candidate("street", "a", day(), two_big)], RULES)
    assert P_PERCENT in outcome.rules and DOMINANCE not in outcome.rules
    spread = {i: float(i + 1) for i in range(12)}
    assert decide([Candidate("street", "a", day(), spread)], RULES).shown


def test_overlapping_periods_are_checked_per_connection() -> None:
    """Days 1-7 of ten houses and then day 7 of the same ten plus one: refused, whatever
    the labels (history by connection id, overlapping periods)."""
    week = Earlier(day(0, 7), frozenset(range(10)))
    outcome = decide([cell(range(11), day(6), area="renamed street")], RULES, [week])
    assert not outcome.shown and DIFFERENCING in outcome.rules
    assert decide([cell(range(11), day(7))], RULES, [week]).shown  # not overlapping: fine
    assert decide([cell(range(10), day(6))], RULES, [week]).shown  # same set: nothing new


def test_a_parent_is_suppressed_when_its_shown_children_leave_too_few() -> None:
    """Complementary suppression: street A (12) and street B (12) shown, street C (3)
    suppressed; the postcode (A+B+C) would give C's sum: it is suppressed too."""
    a, b, c = range(12), range(12, 24), range(24, 27)
    children = decide([cell(a, area="A"), cell(b, area="B"), cell(c, area="C")], RULES)
    assert len(children.shown) == 2
    history = [Earlier(x.period, x.contributors) for x in children.shown]
    parent = Candidate("pc4", "P", day(), dict.fromkeys([*a, *b, *c], 1.0))
    outcome = decide([parent], RULES, history)
    assert not outcome.shown and LINKED in outcome.rules
    bigger = Candidate("pc4", "P", day(), dict.fromkeys([*a, *b, *range(24, 40)], 1.0))
    assert decide([bigger], RULES, history).shown  # the rest has 16: fine


def test_a_week_minus_its_days_gives_nothing_away() -> None:
    """Seven daily cells of one set and the week of a set with one more member: the
    week minus the days would be that member's week."""
    days = [Earlier(day(i), frozenset(range(10))) for i in range(7)]
    outcome = decide([cell(range(11), day(0, 7))], RULES, days)
    assert not outcome.shown
    assert {DIFFERENCING, LINKED} & set(outcome.rules)
    same = decide([cell(range(10), day(0, 7))], RULES, days)
    assert same.shown


def test_computable_groups_sees_chains_of_cells() -> None:
    a = Earlier(day(), frozenset(range(20)))
    b = Earlier(day(), frozenset(range(10, 30)))
    c = Earlier(day(), frozenset(range(30)))
    assert computable_groups([a, b, c], 10) == set()  # the overlap 10..19 has 10
    d = Earlier(day(), frozenset(range(10, 31)))
    assert computable_groups([a, d, Earlier(day(), frozenset(range(31)))], 10) == set()
    e = Earlier(day(), frozenset(range(31)))
    f = Earlier(day(), frozenset(range(30)))
    assert computable_groups([e, f], 10) == {frozenset({30})}


def test_uc14_population_rule() -> None:
    rules = DisclosureRules(min_dynamic=10, min_non_dynamic=10)
    values = dict.fromkeys(range(25), 1.0)
    dyn = {i: i < 10 for i in range(25)}
    assert decide([Candidate("pc3", "561", day(), values, dyn)], rules).shown
    dyn[0] = None  # unknown counts as neither
    assert decide([Candidate("pc3", "561", day(), values, dyn)], rules).rules == (POPULATION,)


def test_counts_leave_rounded_or_not_at_all() -> None:
    assert rounded_count(14, 10) == 10 and rounded_count(15, 10) == 20
    assert rounded_count(14, 0) is None


def _individual_computable(cells: Sequence[Earlier]) -> set[int]:
    """An independent oracle on one period: connection i is computable iff the unit
    vector e_i lies in the row space of the cells' indicator vectors."""
    ids = sorted({c for e in cells for c in e.contributors})
    if not cells:
        return set()
    m = np.array([[1.0 if i in e.contributors else 0.0 for i in ids] for e in cells])
    u, sv, _ = np.linalg.svd(m.T, full_matrices=False)
    basis = u[:, sv > 1e-9]
    lengths = np.sum(basis**2, axis=1)
    return {ids[j] for j, v in enumerate(lengths) if v > 1 - 1e-9}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 40), min_size=1, max_size=40, unique=True),
        min_size=1,
        max_size=8,
    )
)
def test_no_sequence_of_requests_isolates_a_connection(requests: list[list[int]]) -> None:
    """Property: whatever cells an adversary gets offered one after another (the gate
    decides on each), no single connection is computable from what was shown."""
    history: list[Earlier] = []
    for members in requests:
        outcome = decide([cell(members, value=float(len(members)))], RULES, history)
        history.extend(Earlier(c.period, c.contributors) for c in outcome.shown)
    assert _individual_computable(history) == set()
    assert computable_groups(history, RULES.min_connections) == set()


def test_release_history_is_kept_by_connection_across_restarts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    register: Register = open_register(url)
    at = datetime(2025, 8, 1, tzinfo=UTC)
    shown = [cell(range(10), day(0, 7), area="5617:Dorpsstraat")]
    with register.session() as s:
        assert release_history.record(s.db, "UC13", "grid", shown, at) == 1
    register.dispose()
    register = open_register(url)
    with register.session() as s:
        found = release_history.overlapping(s.db, day(6), [3])
        assert found == [Earlier(day(0, 7), frozenset(range(10)))]
        assert release_history.overlapping(s.db, day(6), [42]) == []
        release_history.spend(s.db, "UC14", [(1, 2025, 0.5), (1, 2025, 0.5), (2, 2025, 0.0)], at)
        assert release_history.spent(s.db, [1, 2], 2025) == {1: 1.0}
    register.dispose()


def test_noise_is_calibrated_through_opendp() -> None:
    assert noise.privacy_loss(60_000, 0.5) == pytest.approx(0.5)
    assert noise.margin(1.0, 1e-6) == 14
    draws = [noise.laplace(1_000_000, 1_000, 1.0) for _ in range(200)]
    assert len(set(draws)) > 50  # noisy, not constant
    # discrete Laplace with scale 1000: |noise| > 30 000 has probability ~ e^-30
    assert all(abs(d - 1_000_000) < 30_000 for d in draws)
    assert not noise.passes(9, 10, 1.0, 1e-6)
    assert noise.clip(-5.0, 100) == 0 and noise.clip(250.4, 100) == 100


def test_a_dominated_child_is_not_given_away_by_its_parent() -> None:
    """The postcode was shown; its street C fails dominance. Showing streets A, B and D
    would give C's sum (postcode - A - B - D): a further sibling is suppressed too."""
    a, b = range(12), range(12, 24)
    c = dict.fromkeys(range(24, 34), 1.0) | {99: 500.0}
    d = dict.fromkeys(range(40, 80), 20.0)
    parent = Earlier(day(), frozenset([*a, *b, *c, *d]))
    streets = [
        cell(a, area="A"),
        cell(b, area="B"),
        Candidate("street", "C", day(), c),
        Candidate("street", "D", day(), d),
    ]
    outcome = decide(streets, RULES, [parent])
    assert [x.area for x in outcome.shown] == ["A", "B"]
    assert {DOMINANCE, LINKED} <= set(outcome.rules)


def test_a_group_shown_on_one_day_is_still_protected_on_another() -> None:
    """Street C was shown on day 1; on day 0 it fails dominance. The postcode of day 0
    minus A, B and D would give C's day 0: D is suppressed (groups are kept per day)."""
    a, b = range(12), range(12, 24)
    c_members = [*range(24, 34), 99]
    c0 = dict.fromkeys(range(24, 34), 1.0) | {99: 500.0}
    d = dict.fromkeys(range(40, 80), 20.0)
    history = [
        Earlier(day(0), frozenset([*a, *b, *c_members, *d])),
        Earlier(day(1), frozenset(c_members)),
    ]
    streets = [
        cell(a, area="A"),
        cell(b, area="B"),
        Candidate("street", "C", day(0), c0),
        Candidate("street", "D", day(0), d),
    ]
    outcome = decide(streets, RULES, history)
    assert [x.area for x in outcome.shown] == ["A", "B"]


def _recoverable_over_days(cells: Sequence[Earlier], horizon: int) -> set[int]:
    """An independent oracle over time: unknowns are (connection, day); connection i is
    recoverable (any sum of its own days) iff dropping its columns lowers the rank."""
    ids = sorted({c for e in cells for c in e.contributors})
    if not cells:
        return set()
    columns = [(i, d) for i in ids for d in range(horizon)]
    m = np.array(
        [
            [
                1.0
                if i in e.contributors and e.period.start <= day(d).start < e.period.end
                else 0.0
                for i, d in columns
            ]
            for e in cells
        ]
    )
    full = np.linalg.matrix_rank(m)
    out: set[int] = set()
    for i in ids:
        keep = [j for j, (c, _d) in enumerate(columns) if c != i]
        if np.linalg.matrix_rank(m[:, keep]) < full:
            out.add(i)
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 30), min_size=1, max_size=30, unique=True),
            st.integers(0, 5),
            st.sampled_from([1, 1, 2, 7]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_no_requests_over_overlapping_periods_isolate_a_connection(
    requests: list[tuple[list[int], int, int]],
) -> None:
    """Property: cells of days and weeks that overlap, offered one after another; no
    connection's values (any sum of its own days) are computable from what was shown."""
    history: list[Earlier] = []
    for members, first, length in requests:
        outcome = decide([cell(members, day(first, length))], RULES, history)
        history.extend(Earlier(c.period, c.contributors) for c in outcome.shown)
    assert _recoverable_over_days(history, 12) == set()
