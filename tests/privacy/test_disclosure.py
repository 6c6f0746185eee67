"""PRV-6 disclosure control: small and dominated cells merge up, differencing is refused,
UC14 areas need both populations, and the release history survives in the register."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.privacy.disclosure import (
    AREA_LEVELS,
    DIFFERENCING,
    DOMINANCE,
    MIN_CONNECTIONS,
    POPULATION,
    Cell,
    Contribution,
    DisclosureRules,
    Release,
    ReleaseHistory,
    release,
)
from meetpunt.privacy.model import Party, Role
from meetpunt.register import Register

K = 10
RULES = DisclosureRules()
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 2, 1, tzinfo=UTC)
NOW = datetime(2025, 2, 2, 9, 0, tzinfo=UTC)
_IDS = itertools.count(1)


def areas(pc6: str, street: str = "Dorpsstraat", municipality: str = "Meetdorp") -> dict[str, str]:
    return {
        "street": f"{pc6}:{street}",
        "pc6": pc6,
        "pc4": pc6[:4],
        "pc3": pc6[:3],
        "municipality": municipality,
    }


def houses(pc6: str, n: int, value: float = 1.0, dynamic: bool | None = None) -> list[Contribution]:
    return [Contribution(next(_IDS), areas(pc6), value, dynamic) for _ in range(n)]


def ids(contributions: Iterable[Contribution]) -> frozenset[int]:
    return frozenset(c.connection for c in contributions)


class MemoryHistory:
    """The release history in memory, for the pure tests."""

    def __init__(self) -> None:
        self.sets: dict[tuple[str, str], list[frozenset[int]]] = defaultdict(list)

    def previous(self, level: str, area: str) -> Sequence[frozenset[int]]:
        return list(self.sets[(level, area)])

    def record(self, outcome: Release) -> None:
        for cell in outcome.cells:
            self.sets[(cell.level, cell.area)].append(cell.connections)


def assert_no_differencing(cells: Sequence[Cell], k: int) -> None:
    for a, b in itertools.combinations(cells, 2):
        assert not 0 < len(a.connections ^ b.connections) < k, (a.level, a.area, b.level, b.area)


# -- minimum number of connections ---------------------------------------------------------


def test_cell_of_ten_is_shown() -> None:
    street = houses("5678AB", 10, value=2.5)
    out = release(street, "pc6", RULES)
    assert [(c.level, c.area, c.n, c.value, c.residual) for c in out.cells] == [
        ("pc6", "5678AB", 10, 25.0, False)
    ]
    assert out.findings == ()
    assert out.withheld == ()
    assert out.merged == ()


def test_cell_of_nine_is_never_shown_nor_recoverable() -> None:
    small = houses("5678AB", 9)
    big = houses("5678CD", 20) + houses("5678EF", 15)
    out = release(small + big, "pc6", RULES)

    assert {(c.level, c.area) for c in out.cells} == {("pc6", "5678CD"), ("pc6", "5678EF")}
    # not shown at its level, nor in a residual: every shown value is a sum over other
    # connections only, so no combination of shown values reveals the nine.
    shown = frozenset().union(*(c.connections for c in out.cells))
    assert shown.isdisjoint(ids(small))
    # the nine climb as "the rest of" pc4, pc3, municipality and stay withheld
    assert [(m.cell.level, m.into.level, m.into.residual) for m in out.merged] == [
        ("pc6", "pc4", True),
        ("pc4", "pc3", True),
        ("pc3", "municipality", True),
    ]
    assert [(c.level, c.area, c.connections) for c in out.withheld] == [
        ("municipality", "Meetdorp", ids(small))
    ]
    assert MIN_CONNECTIONS in out.rules
    assert "9" not in " ".join(f.message for f in out.findings)  # no counts of small cells


def test_small_cells_merge_into_a_residual_without_the_shown_children() -> None:
    a, b = houses("5678AB", 6), houses("5678CD", 5)
    shown_child = houses("5678EF", 12)
    out = release(a + b + shown_child, "pc6", RULES)

    by_area = {(c.level, c.area): c for c in out.cells}
    residual = by_area[("pc4", "5678")]
    assert residual.residual
    assert residual.connections == ids(a + b)  # only the failing children
    assert residual.value == 11.0
    assert by_area[("pc6", "5678EF")].connections == ids(shown_child)
    assert {(m.cell.area, m.into.area) for m in out.merged} == {
        ("5678AB", "5678"),
        ("5678CD", "5678"),
    }
    assert out.withheld == ()


# -- dominance -----------------------------------------------------------------------------


def test_dominant_connection_is_never_shown_and_the_cell_merges_up() -> None:
    others = houses("5678AB", 11, value=1.0)
    dominant = Contribution(next(_IDS), areas("5678AB"), 16.5)  # 60 % of 27.5
    out = release([*others, dominant], "pc6", RULES)

    assert DOMINANCE in out.rules
    assert all(dominant.connection not in c.connections for c in out.cells)
    assert next((m.cell.area, m.into.level, m.into.area) for m in out.merged) == (
        "5678AB",
        "pc4",
        "5678",
    )


def test_dominance_is_diluted_in_the_residual() -> None:
    others = houses("5678AB", 11, value=1.0)
    dominant = Contribution(next(_IDS), areas("5678AB"), 16.5)
    neighbours = houses("5678CD", 5, value=4.0)  # too small on its own
    out = release([*others, dominant, *neighbours], "pc6", RULES)

    [residual] = out.cells
    assert (residual.level, residual.area, residual.residual) == ("pc4", "5678", True)
    assert residual.n == 17
    assert math.isclose(residual.value, 11 + 16.5 + 20)
    assert 16.5 / residual.value <= 0.5


def test_dominance_counts_absolute_values() -> None:
    feed_in = [Contribution(next(_IDS), areas("5678AB"), -1.0) for _ in range(11)]
    big = Contribution(next(_IDS), areas("5678AB"), 12.0)  # net sum 1, |sum| 23
    assert release([*feed_in, big], "pc6", RULES).rules == (DOMINANCE,)
    assert release(feed_in, "pc6", RULES).rules == ()


# -- differencing --------------------------------------------------------------------------


def test_two_requests_differing_by_one_connection_do_not_reveal_it() -> None:
    history = MemoryHistory()
    base = houses("5678AB", 12) + houses("5678CD", 8)
    first = release(base, "pc4", RULES, history.previous)
    assert [(c.area, c.n) for c in first.cells] == [("5678", 20)]
    history.record(first)

    newcomer = houses("5678EF", 1, value=3.0)
    second = release(base + newcomer, "pc4", RULES, history.previous)
    assert DIFFERENCING in second.rules
    # the 21 climb as "the rest of pc3 567", still one away from the first release
    assert second.cells == ()
    assert [(c.level, c.area, c.n) for c in second.withheld] == [("municipality", "Meetdorp", 21)]
    assert_no_differencing([*first.cells, *second.cells], K)


def test_differencing_refused_cell_merges_with_other_failing_cells() -> None:
    history = MemoryHistory()
    base = houses("5678AB", 20)
    first = release(base, "pc4", RULES, history.previous)
    history.record(first)

    dropped = base[1:]  # one connection less, same area and period
    few = houses("5679AB", 4)  # too small: joins the rest of pc3 567, but 19 + 4 is
    second = release(dropped + few, "pc4", RULES, history.previous)  # still too close
    assert DIFFERENCING in second.rules
    assert second.cells == ()

    nine = houses("5679AB", 9)  # 19 + 9: ten away from the first release
    third = release(dropped + nine, "pc4", RULES, history.previous)
    assert DIFFERENCING in third.rules
    [cell] = third.cells
    assert (cell.level, cell.area, cell.n, cell.residual) == ("pc3", "567", 28, True)
    assert_no_differencing([*first.cells, *second.cells, *third.cells], K)


def test_same_release_again_is_fine() -> None:
    history = MemoryHistory()
    base = houses("5678AB", 15)
    first = release(base, "pc6", RULES, history.previous)
    history.record(first)
    again = release(base, "pc6", RULES, history.previous)
    assert again.cells == first.cells
    assert again.findings == ()


def test_differencing_is_checked_across_levels() -> None:
    history = MemoryHistory()
    street = houses("5678AB", 10)
    first = release(street, "street", RULES, history.previous)
    history.record(first)
    # a pc4 request whose cell is the street plus one: refused, though labelled differently
    second = release([*street, *houses("5678CD", 1)], "pc4", RULES, history.previous)
    assert DIFFERENCING in second.rules
    assert_no_differencing([*first.cells, *second.cells], K)


# -- UC14 ----------------------------------------------------------------------------------


def test_uc14_pc3_needs_ten_dynamic_and_ten_non_dynamic() -> None:
    short = houses("5678AB", 10, dynamic=True) + houses("5678CD", 9, dynamic=False)
    enough = houses("5680AB", 10, dynamic=True) + houses("5680CD", 10, dynamic=False)
    out = release(short + enough, "pc3", DisclosureRules.uc14())

    assert [(c.level, c.area, c.n) for c in out.cells] == [("pc3", "568", 20)]
    assert [(c.level, c.area, c.n) for c in out.withheld] == [("pc3", "567", 19)]
    assert out.rules == (POPULATION,)
    assert out.merged == ()  # withheld whole, not merged


def test_uc14_unknown_contract_counts_as_neither() -> None:
    area = (
        houses("5678AB", 10, dynamic=True)
        + houses("5678CD", 9, dynamic=False)
        + houses("5678EF", 5, dynamic=None)
    )
    assert release(area, "pc3", DisclosureRules.uc14()).rules == (POPULATION,)


# -- input checks --------------------------------------------------------------------------


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown area level"):
        release(houses("5678AB", 10), "neighbourhood", RULES)
    with pytest.raises(ValueError, match="no area at level"):
        release([Contribution(1, {"pc6": "5678AB"}, 1.0)], "pc6", RULES)
    with pytest.raises(ValueError, match="different areas"):
        release(
            [Contribution(1, areas("5678AB"), 1.0), Contribution(1, areas("5678CD"), 1.0)],
            "pc6",
            RULES,
        )
    with pytest.raises(ValueError):
        DisclosureRules(min_connections=0)


def test_contributions_of_one_connection_are_summed() -> None:
    quarter_hours = [Contribution(c, areas("5678AB"), 0.25) for c in range(10) for _ in range(4)]
    [cell] = release(quarter_hours, "pc6", RULES).cells
    assert (cell.n, cell.value) == (10, 10.0)


# -- properties ----------------------------------------------------------------------------

FANOUT = (2, 2, 3, 2)  # pc3 per municipality, pc4 per pc3, pc6 per pc4, streets per pc6


def _leaves() -> list[dict[str, str]]:
    out = []
    for m, p3, p4, p6, s in itertools.product(range(2), *(range(f) for f in FANOUT)):
        pc3 = f"{m + 1}{p3}0"
        pc4 = f"{pc3}{p4}"
        pc6 = f"{pc4}{'ABC'[p6]}X"
        street = f"{pc6}:Straat{s}"
        out.append({"street": street, "pc6": pc6, "pc4": pc4, "pc3": pc3, "municipality": f"G{m}"})
    return out


LEAVES = _leaves()

population = st.lists(
    st.tuples(
        st.integers(0, len(LEAVES) - 1),
        st.integers(-50, 400),
        st.sampled_from([True, False, None]),
    ),
    max_size=120,
)
rule_sets = st.builds(
    DisclosureRules,
    min_connections=st.integers(1, 8),
    dominance=st.sampled_from([0.3, 0.5, 0.8, 1.0]),
)


def _contributions(rows: Sequence[tuple[int, int, bool | None]]) -> list[Contribution]:
    return [
        Contribution(i, LEAVES[leaf], float(value), dynamic)
        for i, (leaf, value, dynamic) in enumerate(rows)
    ]


def _check_release(
    out: Release, contributions: Sequence[Contribution], rules: DisclosureRules
) -> None:
    value = {c.connection: c.value for c in contributions}
    k = rules.min_connections
    for cell in out.cells:
        assert cell.n >= k
        magnitudes = [abs(value[c]) for c in cell.connections]
        assert max(magnitudes) <= rules.dominance * sum(magnitudes) or sum(magnitudes) == 0
        assert cell.value == sum(value[c] for c in cell.connections)
    final = [*out.cells, *out.withheld]
    # shown cells and residuals never overlap; every connection is in exactly one place
    for a, b in itertools.combinations(final, 2):
        assert a.connections.isdisjoint(b.connections)
    assert frozenset().union(*(c.connections for c in final)) == frozenset(value)
    # nothing lost (integer values: exact)
    assert sum(c.value for c in final) == sum(value.values())
    # no shown cell subtracted from another leaves 1..k-1 connections
    assert_no_differencing(out.cells, k)
    # merged cells are never shown and go exactly one level up into their residual
    shown = {(c.level, c.area, c.connections) for c in out.cells}
    for m in out.merged:
        assert (m.cell.level, m.cell.area, m.cell.connections) not in shown
        assert m.cell.connections <= m.into.connections
        assert AREA_LEVELS.index(m.into.level) == AREA_LEVELS.index(m.cell.level) + 1
        assert m.into.residual


@settings(max_examples=200, deadline=None)
@given(rows=population, level=st.sampled_from(AREA_LEVELS), rules=rule_sets)
def test_release_properties(
    rows: list[tuple[int, int, bool | None]], level: str, rules: DisclosureRules
) -> None:
    contributions = _contributions(rows)
    out = release(contributions, level, rules)
    _check_release(out, contributions, rules)


@settings(max_examples=200, deadline=None)
@given(
    rows=population,
    level=st.sampled_from(AREA_LEVELS),
    rules=rule_sets,
    data=st.data(),
)
def test_two_releases_cannot_be_differenced(
    rows: list[tuple[int, int, bool | None]],
    level: str,
    rules: DisclosureRules,
    data: st.DataObject,
) -> None:
    first_in = _contributions(rows)
    history = MemoryHistory()
    first = release(first_in, level, rules, history.previous)
    history.record(first)

    # the second request: some connections gone, a few new ones, any level
    keep = data.draw(st.lists(st.booleans(), min_size=len(first_in), max_size=len(first_in)))
    extra = data.draw(population.map(lambda r: r[:5]))
    second_in = [c for c, kept in zip(first_in, keep, strict=True) if kept] + [
        Contribution(1000 + i, LEAVES[leaf], float(v), d) for i, (leaf, v, d) in enumerate(extra)
    ]
    second_level = data.draw(st.sampled_from(AREA_LEVELS))
    second = release(second_in, second_level, rules, history.previous)

    _check_release(second, second_in, rules)
    assert_no_differencing([*first.cells, *second.cells], rules.min_connections)


@settings(max_examples=100, deadline=None)
@given(rows=population)
def test_uc14_properties(rows: list[tuple[int, int, bool | None]]) -> None:
    rules = DisclosureRules(min_connections=3, min_dynamic=2, min_non_dynamic=2)
    contributions = _contributions(rows)
    dynamic = {c.connection: c.dynamic for c in contributions}
    out = release(contributions, "pc3", rules)
    _check_release(out, contributions, rules)
    for cell in out.cells:
        assert sum(dynamic[c] is True for c in cell.connections) >= 2
        assert sum(dynamic[c] is False for c in cell.connections) >= 2


# -- the release history in the register ---------------------------------------------------


def test_release_history_round_trip(register: Register) -> None:
    a, b = houses("5678AB", 12), houses("5678CD", 3)
    out = release(a + b, "pc6", RULES)
    party = Party("8712345000004", Role.GRID_OPERATOR, "netbeheer")
    with register.session() as s:
        assert ReleaseHistory.record(s.db, "UC11", party, out, START, END, NOW) == 1
        assert ReleaseHistory.record(s.db, "UC13", "other", out, START, END, NOW) == 1

    with register.session() as s:
        db = s.db
        assert ReleaseHistory.previous(db, "UC11", "pc6", "5678AB", START, END) == [ids(a)]
        assert ReleaseHistory.previous(db, None, "pc6", "5678AB", START, END) == [ids(a), ids(a)]
        assert ReleaseHistory.previous(db, "UC14", "pc6", "5678AB", START, END) == []
        assert ReleaseHistory.previous(db, "UC11", "pc6", "5678CD", START, END) == []  # merged
        assert ReleaseHistory.previous(db, "UC11", "pc4", "5678", START, END) == []  # withheld
        later = START + timedelta(days=1)
        assert ReleaseHistory.previous(db, "UC11", "pc6", "5678AB", later, END) == []
        # the same instant in another zone is the same period
        cet = START.astimezone(datetime.fromisoformat("2025-01-01T00:00:00+01:00").tzinfo)
        assert ReleaseHistory.previous(db, "UC11", "pc6", "5678AB", cet, END) == [ids(a)]
        with pytest.raises(ValueError, match="aware"):
            ReleaseHistory.previous(db, "UC11", "pc6", "5678AB", START.replace(tzinfo=None), END)


def test_release_history_refuses_differencing_on_the_database(register: Register) -> None:
    base = houses("5678AB", 12) + houses("5678CD", 8)
    with register.session() as s:
        first = release(base, "pc4", RULES, ReleaseHistory.lookup(s.db, None, START, END))
        ReleaseHistory.record(s.db, "UC11", "netbeheer", first, START, END, NOW)
    assert [(c.area, c.n) for c in first.cells] == [("5678", 20)]

    with register.session() as s:
        previous = ReleaseHistory.lookup(s.db, None, START, END)
        second = release([*base, *houses("5678EF", 1)], "pc4", RULES, previous)
        again = release(base, "pc4", RULES, previous)
    assert DIFFERENCING in second.rules
    assert second.cells == ()
    assert again.cells == first.cells
    assert_no_differencing([*first.cells, *second.cells], K)
