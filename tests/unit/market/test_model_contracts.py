"""The model contracts (MKT-2, ``[model_contracts]`` of market_contract_rules): each rule
refusing, a right contract of each model accepted and priced like any other of its kind."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import OffPeakCalendar
from meetpunt.errors import MarketError, RulesDataError
from meetpunt.market.pricing import Usage, invoice
from meetpunt.market.rules import ContractRules, MarketTariffs, ModelContractRules
from meetpunt.market.switching import termination_fee
from meetpunt.market.terms import (
    ModelContract,
    check_model_contract,
    read_terms,
    terms_from_mapping,
)

D = Decimal


def variable_model(**changes: Any) -> dict[str, Any]:
    """A right variable model contract as parsed TOML, with ``changes`` applied."""
    data: dict[str, Any] = {
        "reference": "M-V",
        "contract_type": "variable",
        "model": "variable",
        "start": date(2026, 3, 15),
        "grid_class": "electricity_3x25A",
        "notice_days": 30,
        "prices": [
            {"valid_from": date(2026, 3, 15), "single": "0.25", "feed_in": "0.15"},
            {"valid_from": date(2026, 7, 1), "single": "0.27", "feed_in": "0.15"},
            {"valid_from": date(2027, 1, 1), "single": "0.24", "feed_in": "0.15"},
        ],
    }
    data.update(changes)
    return data


def fixed_model(**changes: Any) -> dict[str, Any]:
    """A right fixed model contract (one year from 1 February 2026)."""
    data: dict[str, Any] = {
        "reference": "M-F",
        "contract_type": "fixed",
        "model": "fixed",
        "start": date(2026, 2, 1),
        "end": date(2027, 2, 1),
        "grid_class": "electricity_3x25A",
        "prices": [{"valid_from": date(2026, 2, 1), "single": "0.25", "feed_in": "0.15"}],
    }
    data.update(changes)
    return data


def refused_rules(data: dict[str, Any], rules: ContractRules) -> set[str]:
    """The rule ids the terms are refused under (asserting that they are refused)."""
    with pytest.raises(MarketError) as caught:
        terms_from_mapping(data, "test", rules)
    return {f.rule for f in caught.value.findings}


def test_right_model_contracts_are_accepted(rules: ContractRules) -> None:
    for data in (variable_model(), fixed_model()):
        terms = terms_from_mapping(data, "test", rules)
        assert check_model_contract(ModelContract(data["model"]), terms, rules) == []
        assert terms.reference == data["reference"]


def test_packaged_rules_list_the_dates_and_source(rules: ContractRules) -> None:
    mc = rules.model_contracts
    assert mc is not None
    assert mc.price_change_dates == ((1, 1), (7, 1))
    assert mc.fixed_available_from == date(2026, 1, 1)
    assert mc.fixed_min_term_months == 12
    assert "Consumentenbond" in mc.source and mc.unconfirmed


def test_unknown_model_is_refused(rules: ContractRules) -> None:
    assert refused_rules(variable_model(model="hybrid"), rules) == {"MKT-2.model_kind"}


def test_variable_model_must_be_a_variable_contract(rules: ContractRules) -> None:
    data = variable_model(contract_type="dynamic")
    assert "MKT-2.model_variable_type" in refused_rules(data, rules)


def test_variable_model_is_indefinite(rules: ContractRules) -> None:
    data = variable_model(end=date(2027, 3, 15))
    assert refused_rules(data, rules) == {"MKT-2.model_variable_indefinite"}


def test_variable_model_price_change_off_the_dates(rules: ContractRules) -> None:
    data = variable_model()
    data["prices"][1]["valid_from"] = date(2026, 10, 1)
    with pytest.raises(MarketError) as caught:
        terms_from_mapping(data, "test", rules)
    assert {f.rule for f in caught.value.findings} == {"MKT-2.model_variable_price_date"}
    assert "2026-10-01" in str(caught.value) and "07-01" in str(caught.value)


def test_variable_model_notice_at_most_30_days_even_multisite(rules: ContractRules) -> None:
    data = variable_model(notice_days=31, multisite=True)
    assert refused_rules(data, rules) == {"MKT-2.model_variable_notice"}


def test_variable_model_has_no_termination_fee(rules: ContractRules) -> None:
    terms = terms_from_mapping(variable_model(), "test", rules)
    with pytest.raises(MarketError) as caught:
        termination_fee(terms, date(2026, 9, 1), rules, D("0.20"), D("1000"))
    assert caught.value.findings[0].rule == "MKT-5.termination_fee"


def test_fixed_model_must_be_a_fixed_contract(rules: ContractRules) -> None:
    data = fixed_model(contract_type="variable", end=date(2027, 2, 1))
    assert refused_rules(data, rules) == {"MKT-2.model_fixed_type"}


def test_fixed_model_starts_2026_or_later(rules: ContractRules) -> None:
    data = fixed_model(start=date(2025, 12, 31), end=date(2026, 12, 31))
    data["prices"][0]["valid_from"] = date(2025, 12, 31)
    assert refused_rules(data, rules) == {"MKT-2.model_fixed_start"}


@pytest.mark.parametrize("end", [date(2027, 1, 31), None])
def test_fixed_model_runs_at_least_a_year(rules: ContractRules, end: date | None) -> None:
    assert refused_rules(fixed_model(end=end), rules) == {"MKT-2.model_fixed_term"}


def test_fixed_model_leap_day_start_runs_to_28_february(rules: ContractRules) -> None:
    data = fixed_model(start=date(2028, 2, 29), end=date(2029, 2, 28))
    data["prices"][0]["valid_from"] = date(2028, 2, 29)
    terms_from_mapping(data, "test", rules)
    data["end"] = date(2029, 2, 27)
    assert refused_rules(data, rules) == {"MKT-2.model_fixed_term"}


def test_fixed_model_fee_is_the_ordinary_rule(rules: ContractRules) -> None:
    model = terms_from_mapping(fixed_model(), "test", rules)
    ordinary = terms_from_mapping(
        {k: v for k, v in fixed_model().items() if k != "model"}, "test", rules
    )
    leaving, reference, volume = date(2026, 6, 1), D("0.20"), D("1000")
    fee = termination_fee(model, leaving, rules, reference, volume)
    # (0.25 - 0.20) x 1000 kWh by the rule in force on 1 February 2026 (since June 2023)
    assert fee == termination_fee(ordinary, leaving, rules, reference, volume) == D("50.00")
    # Within the ordinary rule's last days there is no fee for the model contract either.
    assert termination_fee(model, date(2027, 1, 30), rules, reference, volume) == D("0")


def test_model_contract_is_priced_like_its_kind(
    rules: ContractRules, tariffs: MarketTariffs, calendar: OffPeakCalendar
) -> None:
    model = terms_from_mapping(variable_model(), "test", rules)
    plain = terms_from_mapping(
        {k: v for k, v in variable_model().items() if k != "model"}, "test", rules
    )
    start = datetime(2026, 6, 20, tzinfo=UTC)
    usage = Usage.of([(start + timedelta(days=i), D("10"), D("2")) for i in range(20)])
    first, end = date(2026, 6, 20), date(2026, 7, 10)
    a = invoice(model, usage, first, end, tariffs, calendar)
    b = invoice(plain, usage, first, end, tariffs, calendar)
    assert a == b
    assert a.lines


def test_missing_model_section_is_refused(rules: ContractRules) -> None:
    bare = replace(rules, model_contracts=None)
    assert refused_rules(fixed_model(), bare) == {"MKT-2.model_rules"}


def test_rule_file_with_a_bad_date_is_refused() -> None:
    body = {
        "variable": {"price_change_dates": ["13-01"], "max_notice_days": 30},
        "fixed": {"available_from": date(2026, 1, 1), "min_term_months": 12},
    }
    with pytest.raises(RulesDataError, match="13-01"):
        ModelContractRules.from_mapping(body)
    body["variable"]["price_change_dates"] = ["01-01"]
    body["variable"]["termination_fee"] = True
    with pytest.raises(RulesDataError, match="termination_fee"):
        ModelContractRules.from_mapping(body)


def test_model_contract_file_is_checked_when_read(tmp_path: Path) -> None:
    path = tmp_path / "contract.toml"
    path.write_text(
        'reference = "M-1"\ncontract_type = "variable"\nmodel = "variable"\n'
        'start = 2026-03-01\ngrid_class = "electricity_3x25A"\n'
        '[[prices]]\nvalid_from = 2026-03-01\nsingle = "0.25"\nfeed_in = "0.15"\n'
        '[[prices]]\nvalid_from = 2026-04-01\nsingle = "0.26"\nfeed_in = "0.15"\n',
        encoding="utf-8",
    )
    with pytest.raises(MarketError) as caught:
        read_terms(path)
    assert caught.value.findings[0].rule == "MKT-2.model_variable_price_date"


@settings(max_examples=200, deadline=None)
@given(day=st.dates(min_value=date(2026, 3, 16), max_value=date(2035, 12, 31)))
def test_any_other_price_change_date_is_refused(rules: ContractRules, day: date) -> None:
    """Property: a variable model contract may change prices after its start only on the
    listed dates; every other day is refused, every listed day accepted."""
    mc = rules.model_contracts
    assert mc is not None
    data = variable_model(
        prices=[
            {"valid_from": date(2026, 3, 15), "single": "0.25", "feed_in": "0.15"},
            {"valid_from": day, "single": "0.26", "feed_in": "0.15"},
        ]
    )
    if (day.month, day.day) in mc.price_change_dates:
        terms_from_mapping(data, "test", rules)
    else:
        assert refused_rules(data, rules) == {"MKT-2.model_variable_price_date"}
