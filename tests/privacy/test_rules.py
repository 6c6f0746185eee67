"""Pure pieces of the gate's rules that the scenario register cannot show: contracts
joining up, and the sub-periods a grant covers when the register changes within the
period (PRV-1, PRV-3, PRV-4), checked day by day against random interval layouts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.domain.capacity import Commodity
from meetpunt.privacy.catalogue import PurposeRule, load_catalogue
from meetpunt.privacy.model import AccessRequest, Party, Period, Role
from meetpunt.privacy.rules import (
    MIDNIGHT_READINGS,
    ConnectionFacts,
    ConsentFact,
    ContractFact,
    StateFact,
    coverage_of,
    covered,
    decide,
    request_commodity,
)

EAN = "871687400000000014"
JUNE = date(2025, 6, 1)
CATALOGUE = load_catalogue()
SUPPLIER = Party("S1", Role.SUPPLIER)
HOUR = timedelta(hours=1)


def _rule(purpose: str) -> PurposeRule:
    rule = CATALOGUE.get(purpose)
    assert rule is not None
    return rule


def _state(start: date, end: date | None, **kw: bool) -> StateFact:
    values = {"in_service": True, "out_of_service": False, "admin_switch_on": True}
    values |= {"opted_out": False} | kw
    return StateFact(start, end, **values)


def _request(purpose: str, party: Party, first: date, days: int, kinds: str) -> AccessRequest:
    start = local_midnight_utc(first)
    period = Period(start, local_midnight_utc(first + timedelta(days=days)))
    return AccessRequest(party, purpose, (EAN,), frozenset({kinds}), period, start, trigger="x")


def _days(periods: tuple[Period, ...]) -> list[date]:
    """The local days of day-aligned periods."""
    out: list[date] = []
    for p in periods:
        d = to_local(p.start).date()
        while local_midnight_utc(d) < p.end:
            out.append(d)
            d += timedelta(days=1)
    return out


def _hours(periods: tuple[Period, ...]) -> list[datetime]:
    """The UTC hours of hour-aligned periods."""
    out: list[datetime] = []
    for p in periods:
        h = p.start
        while h < p.end:
            out.append(h)
            h += HOUR
    return out


def test_consecutive_contracts_cover_a_period_and_a_gap_does_not() -> None:
    first = ContractFact("S1", "X", date(2025, 1, 1), date(2025, 7, 5))
    second = ContractFact("S2", "X", date(2025, 7, 5), None)
    gap = ContractFact("S2", "X", date(2025, 7, 6), None)
    assert covered([first, second], date(2025, 7, 1), date(2025, 7, 31))
    assert not covered([first, gap], date(2025, 7, 1), date(2025, 7, 31))
    assert not covered([first], date(2025, 7, 1), date(2025, 7, 31))
    assert covered([first], date(2025, 7, 5), date(2025, 7, 5))  # the final reading
    assert not covered([first], date(2025, 7, 5), date(2025, 7, 6))


def test_the_leaving_supplier_gets_the_switch_days_reading_but_not_its_hours() -> None:
    """MKT-5: the reading at the switch day's midnight is the leaving supplier's too; the
    gas hours of that day are the arriving supplier's, in a one-day read as in a longer."""
    facts = ConnectionFacts(
        EAN,
        1,
        (_state(JUNE, None),),
        (
            ContractFact("S1", "X", date(2024, 1, 1), date(2025, 7, 5)),
            ContractFact("S2", "X", date(2025, 7, 5), None),
        ),
    )
    for first, days in ((date(2025, 7, 5), 1), (date(2025, 7, 3), 3)):
        reading = _request("supplier_daily", SUPPLIER, first, days, "daily_readings")
        hours = _request("supplier_daily", SUPPLIER, first, days, "gas_hourly")
        granted = decide(_rule("supplier_daily"), reading, {EAN: facts}).coverage[EAN].granted
        assert _days(granted)[-1] == date(2025, 7, 5)
        cover = decide(_rule("supplier_daily"), hours, {EAN: facts}).coverage.get(EAN)
        assert cover is None or date(2025, 7, 5) not in _days(cover.granted)


def test_an_opt_out_from_3_june_leaves_a_2_to_5_june_read_with_2_june() -> None:
    facts = ConnectionFacts(
        EAN,
        1,
        (_state(JUNE, date(2025, 6, 3)), _state(date(2025, 6, 3), None, opted_out=True)),
        (ContractFact("S1", "X", date(2024, 1, 1), None),),
    )
    request = _request("supplier_daily", SUPPLIER, date(2025, 6, 2), 1, "daily_readings")
    request = replace(
        request, period=Period(request.period.start, local_midnight_utc(date(2025, 6, 6)))
    )
    verdict = decide(_rule("supplier_daily"), request, {EAN: facts})
    assert verdict.findings == []
    cover = verdict.coverage[EAN]
    assert _days(cover.granted) == [date(2025, 6, 2)]
    assert [(c.rule, c.period.start, c.period.end) for c in cover.cuts] == [
        (
            "PRV-3.opt_out",
            local_midnight_utc(date(2025, 6, 3)),
            local_midnight_utc(date(2025, 6, 6)),
        )
    ]


def test_a_connection_cut_on_every_day_refuses_with_the_rule() -> None:
    facts = ConnectionFacts(
        EAN, 1, (_state(JUNE, None, opted_out=True),), (ContractFact("S1", "X", JUNE, None),)
    )
    request = _request("supplier_daily", SUPPLIER, date(2025, 6, 2), 4, "daily_readings")
    assert decide(_rule("supplier_daily"), request, {EAN: facts}).findings[0].rule == (
        "PRV-3.opt_out"
    )


def test_a_consent_ends_with_the_move_of_the_customer_who_gave_it() -> None:
    move = date(2025, 6, 10)
    facts = ConnectionFacts(
        EAN,
        1,
        (_state(JUNE, None),),
        (
            ContractFact("S1", "J. de Vries", date(2024, 1, 1), move),
            ContractFact("S2", "K. Visser", move, None),
        ),
        consents=(
            ConsentFact(
                frozenset({"quarter_hours"}),
                local_midnight_utc(JUNE),
                local_midnight_utc(date(2025, 7, 1)),
                "J. de Vries",
                JUNE,
            ),
        ),
    )
    request = _request(
        "app_consent", Party("app-1", Role.APP), date(2025, 6, 5), 10, "quarter_hours"
    )
    verdict = decide(_rule("app_consent"), request, {EAN: facts})
    assert verdict.findings == []
    assert _days(verdict.coverage[EAN].granted) == [date(2025, 6, d) for d in range(5, 10)]
    assert {c.rule for c in verdict.coverage[EAN].cuts} == {"PRV-4.consent"}
    after = _request("app_consent", Party("app-1", Role.APP), move, 5, "quarter_hours")
    refused = decide(_rule("app_consent"), after, {EAN: facts})
    assert [f.rule for f in refused.findings] == ["PRV-4.consent"]


def test_a_period_that_has_not_begun_is_refused() -> None:
    facts = ConnectionFacts(EAN, 1, (_state(JUNE, None),), (ContractFact("S1", "X", JUNE, None),))
    request = _request("supplier_daily", SUPPLIER, date(2025, 6, 2), 1, "daily_readings")
    now = local_midnight_utc(date(2025, 6, 1))
    rules = [f.rule for f in decide(_rule("supplier_daily"), request, {EAN: facts}, now).findings]
    assert rules == ["PRV-1.future_period"]
    later = now + timedelta(days=2)
    assert decide(_rule("supplier_daily"), request, {EAN: facts}, later).findings == []


def test_a_request_mixing_electricity_and_gas_kinds_is_refused() -> None:
    """PRV-1.commodity: the hub keys gas kinds by the gas connection, so one request
    reads one commodity's connections; the switch purpose allows both kinds apart."""
    facts = ConnectionFacts(EAN, 1, (_state(JUNE, None),), (ContractFact("S1", "X", JUNE, None),))
    mixed = replace(
        _request("supplier_switch", SUPPLIER, date(2025, 6, 2), 1, "daily_readings"),
        kinds=frozenset({"daily_readings", "gas_hourly"}),
    )
    refused = decide(_rule("supplier_switch"), mixed, {EAN: facts})
    assert [f.rule for f in refused.findings] == ["PRV-1.commodity"]
    for kind in ("daily_readings", "gas_hourly", "gas_switch_readings"):
        alone = _request("supplier_switch", SUPPLIER, date(2025, 6, 2), 1, kind)
        assert decide(_rule("supplier_switch"), alone, {EAN: facts}).findings == []
    assert request_commodity(frozenset({"gas_hourly"})) is Commodity.GAS
    assert request_commodity(frozenset({"voltage_presence"})) is Commodity.ELECTRICITY


# --- random interval layouts ------------------------------------------------------------

DAY0 = date(2025, 3, 20)  # the layouts span the March clock change
SPAN = 20


def _intervals(draw: st.DrawFn, count: int) -> list[tuple[date, date | None]]:
    """``count`` consecutive intervals over the days around the period (the last open)."""
    cuts = sorted(draw(st.sets(st.integers(1, SPAN - 1), min_size=count - 1, max_size=count - 1)))
    bounds = [DAY0 - timedelta(days=3), *(DAY0 + timedelta(days=c) for c in cuts)]
    return [(bounds[i], bounds[i + 1] if i + 1 < len(bounds) else None) for i in range(len(bounds))]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[ConnectionFacts, int, int]:
    states = tuple(
        _state(
            start,
            end,
            in_service=(status := draw(st.sampled_from(["in", "out", "new"]))) == "in",
            out_of_service=status == "out",
            admin_switch_on=draw(st.booleans()),
            opted_out=draw(st.booleans()),
        )
        for start, end in _intervals(draw, draw(st.integers(1, 4)))
    )
    if draw(st.booleans()):  # the connection is created inside the period
        states = states[1:] or states
    contracts = []
    for start, end in _intervals(draw, draw(st.integers(1, 4))):
        who = draw(st.sampled_from(["S1", "S2", None]))
        if who is not None:
            contracts.append(ContractFact(who, "H-" + who, start, end))
    consents = []
    for _ in range(draw(st.integers(0, 2))):
        a = draw(st.integers(-2, SPAN))
        b = draw(st.integers(a + 1, SPAN + 3))
        hour = draw(st.sampled_from([0, 0, 7]))
        consents.append(
            ConsentFact(
                frozenset(draw(st.sampled_from([["quarter_hours"], ["daily_readings"]]))),
                local_midnight_utc(DAY0 + timedelta(days=a)) + timedelta(hours=hour),
                local_midnight_utc(DAY0 + timedelta(days=b)),
                draw(st.sampled_from(["H-S1", "H-S2"])),
                DAY0 + timedelta(days=draw(st.integers(-2, SPAN))),
            )
        )
    first = draw(st.integers(0, SPAN - 1))
    days = draw(st.integers(1, SPAN - first))
    facts = ConnectionFacts(EAN, 1, states, tuple(contracts), consents=tuple(consents))
    return facts, first, days


PURPOSES = {
    "supplier_daily": (SUPPLIER, "daily_readings"),
    "customer_own": (Party("H-S1", Role.CUSTOMER), "quarter_hours"),
    "UC8": (Party("grid", Role.GRID_OPERATOR), "quarter_hours"),
    "UC15": (Party("grid", Role.GRID_OPERATOR), "quarter_hours"),
    "UC3": (Party("grid", Role.GRID_OPERATOR), "quarter_hours"),
    "app_consent": (Party("app-1", Role.APP), "quarter_hours"),
}


def _holds_on(
    rule: PurposeRule, request: AccessRequest, f: ConnectionFacts, hour: datetime, one: bool
) -> bool:
    """The oracle: every rule that can change within a period holds in the hour from
    ``hour``, asked hour by hour with nothing but the definitions."""
    day = to_local(hour).date()
    state = f.state_on(day)
    if state is None:
        return False
    if not rule.grid_management and state.opted_out:
        return False
    # the final reading at the end day's midnight: in a one-day read and in a supplier's
    # read, of midnight readings only; that day's interval values are the arriving
    # party's (MKT-5, issue 17)
    final = bool(request.kinds) and request.kinds <= MIDNIGHT_READINGS
    final = final and (one or rule.population == "supplied")
    on = [
        c
        for c in f.contracts
        if c.start <= day and (c.end is None or day < c.end or (final and day == c.end))
    ]
    party = request.party.id
    population = rule.population
    contractless = state.in_service and not on
    if population == "supplied":
        return any(c.supplier == party for c in on)
    if population == "own":
        return any(c.holder == party for c in on)
    if population == "contractless":
        return contractless
    if population == "contractless_or_out_of_service":
        ok = state.out_of_service or contractless
        return ok and not (state.out_of_service and not state.admin_switch_on)
    if population == "consented":
        start, end = hour, hour + HOUR
        holder = f.holder_on(day)
        return any(
            request.kinds <= c.kinds
            and c.start <= start
            and end <= c.end
            and request.at < c.end
            and (f.holder_on(c.given_on) or c.given_by) == holder
            for c in f.consents
        )
    return True


@settings(max_examples=300, deadline=None)
@given(layouts(), st.sampled_from(sorted(PURPOSES)))
def test_granted_sub_periods_are_exactly_the_days_where_every_rule_holds(
    layout: tuple[ConnectionFacts, int, int], purpose: str
) -> None:
    facts, first, days = layout
    party, kind = PURPOSES[purpose]
    rule = _rule(purpose)
    start_day = DAY0 + timedelta(days=first)
    request = _request(purpose, party, start_day, days, kind)
    cover = coverage_of(rule, request, facts)
    hours = _hours((request.period,))
    one = days == 1
    wanted = [h for h in hours if _holds_on(rule, request, facts, h, one)]
    assert _hours(cover.granted) == wanted
    # sub-periods are in order, apart (neighbours join up) and inside the period
    for a, b in pairwise(cover.granted):
        assert a.end < b.start
    assert all(request.period.start <= p.start < p.end <= request.period.end for p in cover.granted)
    # every hour not granted is cut by at least one rule, and no granted hour is
    cut = {h for c in cover.cuts for h in _hours((c.period,))}
    assert cut == set(hours) - set(wanted)
    verdict = decide(rule, request, {EAN: facts}, datetime(2030, 1, 1, tzinfo=UTC))
    assert verdict.coverage[EAN] == cover
    if not wanted:  # nothing left: refused with every rule that cut it
        assert {c.rule for c in cover.cuts} <= {f.rule for f in verdict.findings}
