"""REG-3 capacity parsing and small/large classification; REG-4 end-customer types."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.domain.capacity import (
    ElectricityCapacity,
    GasCapacity,
    SizeClass,
    parse_electricity_capacity,
    parse_gas_capacity,
    size_class,
)
from meetpunt.domain.customer import BusinessFacts, CustomerType, classify_business
from meetpunt.domain.findings import Finding
from meetpunt.rulebook import capacity_classes, micro_enterprise_criteria

CLASSES = capacity_classes()


@pytest.mark.parametrize(
    ("text", "phases", "amperes"),
    [("1x40", 1, 40), ("3x25A", 3, 25), (" 3 x 80 A ", 3, 80), ("3×35", 3, 35)],
)
def test_electricity_capacity_parses(text: str, phases: int, amperes: int) -> None:
    assert parse_electricity_capacity(text) == ElectricityCapacity(phases, amperes)


@pytest.mark.parametrize("text", ["2x25", "3x", "x25", "25A", "3x0", "three by 25", ""])
def test_malformed_electricity_capacity_is_refused(text: str) -> None:
    parsed = parse_electricity_capacity(text)
    assert isinstance(parsed, Finding) and parsed.rule == "REG-3.capacity_format"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1x6", SizeClass.SMALL),
        ("1x80", SizeClass.SMALL),
        ("3x80", SizeClass.SMALL),
        ("3x100", SizeClass.LARGE),
        ("3x250", SizeClass.LARGE),
        ("1x100", SizeClass.LARGE),
    ],
)
def test_electricity_small_up_to_3x80(text: str, expected: SizeClass) -> None:
    parsed = parse_electricity_capacity(text)
    assert isinstance(parsed, ElectricityCapacity)
    assert size_class(parsed, CLASSES) is expected


@pytest.mark.parametrize(
    ("size", "flow", "expected"),
    [
        ("G4", 6, SizeClass.SMALL),
        ("G6", 10, SizeClass.SMALL),
        ("G25", 40, SizeClass.SMALL),
        ("G40", 65, SizeClass.LARGE),
        ("g100", 160, SizeClass.LARGE),
    ],
)
def test_gas_small_up_to_g25(size: str, flow: float, expected: SizeClass) -> None:
    parsed = parse_gas_capacity(size, CLASSES)
    assert isinstance(parsed, GasCapacity) and parsed.flow_m3n_per_h == flow
    assert size_class(parsed, CLASSES) is expected


def test_unknown_gas_size_is_refused_with_the_known_list() -> None:
    parsed = parse_gas_capacity("G7", CLASSES)
    assert isinstance(parsed, Finding) and parsed.rule == "REG-3.capacity_unknown"
    assert "G25" in parsed.message
    malformed = parse_gas_capacity("4 m3", CLASSES)
    assert isinstance(malformed, Finding) and malformed.rule == "REG-3.capacity_format"


@given(st.sampled_from([1, 3]), st.integers(1, 2000))
def test_classification_follows_the_threshold(phases: int, amperes: int) -> None:
    expected = SizeClass.SMALL if amperes <= 80 else SizeClass.LARGE
    assert size_class(ElectricityCapacity(phases, amperes), CLASSES) is expected


CRITERIA = micro_enterprise_criteria()
M = Decimal(1_000_000)


@pytest.mark.parametrize(
    ("employees", "turnover", "balance", "expected"),
    [
        (9, 2 * M, None, CustomerType.MICRO_ENTERPRISE),
        (9, None, 2 * M, CustomerType.MICRO_ENTERPRISE),
        (9, 5 * M, 1 * M, CustomerType.MICRO_ENTERPRISE),  # balance alone suffices
        (10, 1 * M, 1 * M, CustomerType.ENTERPRISE),  # 10 employees is not fewer than 10
        (9, 3 * M, 3 * M, CustomerType.ENTERPRISE),  # both amounts too high
        (3, None, None, CustomerType.ENTERPRISE),  # no amount shown: test not met
    ],
)
def test_micro_enterprise_criteria(
    employees: int, turnover: Decimal | None, balance: Decimal | None, expected: CustomerType
) -> None:
    facts = BusinessFacts(employees, turnover, balance)
    assert classify_business(facts, CRITERIA) is expected
