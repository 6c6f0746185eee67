"""REG-1: EAN validation refuses by rule; generation always validates (GS1 mod 10)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.domain.ean import (
    InvalidEanError,
    assert_valid_ean,
    check_ean,
    complete_ean,
    ean_from_serial,
    gs1_check_digit,
    is_valid_ean,
)

# two connection EANs from a public repository's fixtures (docs/requirements.md, 'EAN codes')
KNOWN_VALID = ["871694840008583575", "871694840015271748"]

bodies = st.text(alphabet="0123456789", min_size=17, max_size=17)


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_known_real_codes_are_valid(code: str) -> None:
    assert check_ean(code) is None
    assert assert_valid_ean(code) == code


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("87169484000858357", "REG-1.length"),
        ("8716948400085835751", "REG-1.length"),
        ("", "REG-1.length"),
        ("87169484000858357A", "REG-1.non_digit"),
        ("871694840008 83575", "REG-1.non_digit"),
        ("８71694840008583575", "REG-1.non_digit"),  # full-width digit is not 0-9
        ("871694840008583576", "REG-1.check_digit"),
    ],
)
def test_refusals_name_their_rule_and_fix(code: str, rule: str) -> None:
    finding = check_ean(code)
    assert finding is not None and finding.rule == rule
    assert code in finding.message or rule == "REG-1.length"
    with pytest.raises(InvalidEanError) as raised:
        assert_valid_ean(code)
    assert raised.value.rules == (rule,)


def test_check_digit_message_names_the_expected_digit() -> None:
    finding = check_ean("871694840008583570")
    assert finding is not None and "need 5" in finding.message


def test_gs1_weights_start_with_three_next_to_the_check_digit() -> None:
    # GTIN-13 4006381333931 is GS1's own worked example
    assert gs1_check_digit("400638133393") == 1


@given(bodies)
def test_every_completed_code_validates(body: str) -> None:
    assert is_valid_ean(complete_ean(body))


@given(st.text(alphabet="0123456789", min_size=1, max_size=10), st.integers(0, 10**6))
def test_every_generated_code_validates(prefix: str, serial: int) -> None:
    code = ean_from_serial(prefix, serial)
    assert len(code) == 18 and code.startswith(prefix) and is_valid_ean(code)


@given(bodies, st.integers(0, 17), st.integers(1, 9))
def test_any_single_digit_change_is_caught(body: str, position: int, delta: int) -> None:
    code = complete_ean(body)
    changed = code[:position] + str((int(code[position]) + delta) % 10) + code[position + 1 :]
    assert check_ean(changed) is not None


@given(bodies, st.integers(0, 16))
def test_adjacent_transpositions_caught_exactly_where_gs1_catches_them(
    body: str, position: int
) -> None:
    code = complete_ean(body)
    a, b = code[position], code[position + 1]
    swapped = code[:position] + b + a + code[position + 2 :]
    if a == b:
        assert swapped == code
        return
    # weights 3 and 1 differ by 2: a swap changes the sum by 2*(a-b), which is a
    # multiple of 10 only when the two digits differ by 5; GS1 misses just those
    caught = check_ean(swapped) is not None
    assert caught == (abs(int(a) - int(b)) != 5)


def test_generation_refuses_what_does_not_fit() -> None:
    with pytest.raises(InvalidEanError):
        ean_from_serial("8712345678901234", 10)
    with pytest.raises(InvalidEanError):
        ean_from_serial("87x", 1)
    with pytest.raises(InvalidEanError):
        complete_ean("123")
