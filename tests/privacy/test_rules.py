"""Pure pieces of the gate's rules that the scenario register cannot show."""

from __future__ import annotations

from datetime import date

from meetpunt.privacy.rules import ConnectionFacts, ContractFact, covered


def _facts(*contracts: ContractFact) -> ConnectionFacts:
    return ConnectionFacts("871687400000000014", 1, True, False, True, False, contracts)


def test_a_connection_that_gets_a_contract_mid_period_is_not_contractless_throughout() -> None:
    later = _facts(ContractFact("S1", "X", date(2025, 7, 10), None))
    assert later.contractless_on(date(2025, 7, 1))
    assert not later.contractless_throughout(date(2025, 7, 1), date(2025, 7, 31))
    assert later.contractless_throughout(date(2025, 7, 1), date(2025, 7, 9))


def test_consecutive_contracts_cover_a_period_and_a_gap_does_not() -> None:
    first = ContractFact("S1", "X", date(2025, 1, 1), date(2025, 7, 5))
    second = ContractFact("S2", "X", date(2025, 7, 5), None)
    gap = ContractFact("S2", "X", date(2025, 7, 6), None)
    assert covered([first, second], date(2025, 7, 1), date(2025, 7, 31))
    assert not covered([first, gap], date(2025, 7, 1), date(2025, 7, 31))
    assert not covered([first], date(2025, 7, 1), date(2025, 7, 31))
    assert covered([first], date(2025, 7, 5), date(2025, 7, 5))  # the final reading
    assert not covered([first], date(2025, 7, 5), date(2025, 7, 6))
