"""REG-6 contracts and contractlessness, MKT-1/2 contract rules, MKT-6 multisite."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import (
    ContractType,
    SupplyContract,
    TariffKind,
    check_contract,
    check_supplier_gln,
    contract_on,
    is_contractless,
)
from meetpunt.domain.multisite import MultisiteParticipant, check_multisite

from . import factories

EAN = "871694840008583575"
GLN = "8710000000017"


def contract(start: date, end: date | None = None, **kw: object) -> SupplyContract:
    return factories.contract(EAN, start, end, **kw)


def rules(
    c: SupplyContract, meter: MeterType = MeterType.SMART, existing: tuple[SupplyContract, ...] = ()
) -> list[str]:
    return [f.rule for f in check_contract(c, meter, existing)]


def test_sound_contract_passes() -> None:
    assert rules(contract(date(2024, 1, 1))) == []


def test_supplier_must_be_a_gln() -> None:
    assert check_supplier_gln(GLN) is None
    for bad in ("Vattenfall", "8710000000018", "871000000001"):
        assert rules(contract(date(2024, 1, 1), supplier=bad)) == ["REG-6.supplier"]


def test_end_before_start_refused() -> None:
    assert rules(contract(date(2024, 1, 1), date(2024, 1, 1))) == ["REG-6.dates"]


def test_fixed_contract_needs_an_end() -> None:
    assert rules(contract(date(2024, 1, 1), contract_type=ContractType.FIXED)) == [
        "MKT-1.fixed_end"
    ]


@pytest.mark.parametrize("meter", [MeterType.FERRARIS, MeterType.NONE])
def test_double_tariff_needs_a_digital_meter(meter: MeterType) -> None:
    c = contract(date(2024, 1, 1), tariff=TariffKind.DOUBLE)
    assert rules(c, meter) == ["MKT-2.double_tariff"]
    assert rules(c, MeterType.DIGITAL) == []


def test_overlapping_contracts_refused_adjacent_allowed() -> None:
    first = contract(date(2024, 1, 1), date(2025, 1, 1))
    assert rules(contract(date(2024, 6, 1)), existing=(first,)) == ["REG-6.overlap"]
    assert rules(contract(date(2025, 1, 1)), existing=(first,)) == []


def test_contractless_only_in_service_and_uncovered() -> None:
    contracts = [contract(date(2024, 1, 1), date(2024, 7, 1))]
    assert not is_contractless(True, contracts, date(2024, 6, 30))
    assert is_contractless(True, contracts, date(2024, 7, 1))
    assert not is_contractless(False, contracts, date(2024, 7, 1))


@given(st.dates(date(2000, 1, 1), date(2040, 1, 1)), st.integers(1, 4000), st.integers(-5000, 5000))
def test_contract_holds_exactly_inside_its_dates(start: date, days: int, probe: int) -> None:
    end = start + timedelta(days=days)
    day = start + timedelta(days=probe)
    c = contract(start, end)
    assert (contract_on([c], day) is c) == (start <= day < end)


def participant(
    name: str, business: bool = True, rep: str | None = "R", mandate: bool = True
) -> MultisiteParticipant:
    return MultisiteParticipant(
        name,
        legal_person=business,
        acts_in_business=False,
        representative=rep,
        mandate_given=mandate,
    )


def test_valid_multisite() -> None:
    assert check_multisite([participant("a"), participant("b"), participant("c", False)]) == []


def test_multisite_needs_a_business_majority() -> None:
    found = check_multisite([participant("a"), participant("b", False)])
    assert [f.rule for f in found] == ["MKT-6.business_majority"]


def test_multisite_needs_one_representative() -> None:
    two = check_multisite([participant("a"), participant("b", rep="S")])
    none = check_multisite([participant("a"), participant("b", rep=None)])
    assert [f.rule for f in two] == ["MKT-6.one_representative"]
    assert [f.rule for f in none] == ["MKT-6.one_representative"] and "b" in none[0].message


def test_multisite_needs_every_mandate() -> None:
    found = check_multisite([participant("a"), participant("b", mandate=False)])
    assert [f.rule for f in found] == ["MKT-6.mandate"] and "b" in found[0].message


def test_empty_multisite_refused() -> None:
    assert [f.rule for f in check_multisite([])] == ["MKT-6.participants"]
