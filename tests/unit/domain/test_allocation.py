"""REG-5: every rule for secondary allocation points refuses what it must."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.domain.allocation import (
    CostKind,
    SapRequest,
    SapRules,
    assess_sap_request,
    check_sap_energise,
    sap_cost_lines,
)
from meetpunt.domain.capacity import Commodity, require_electricity_capacity
from meetpunt.domain.connection import PhysicalStatus
from meetpunt.errors import DomainError
from meetpunt.rulebook import capacity_classes, sap_rules

from .factories import version

CLASSES = capacity_classes()
RULES = sap_rules()


def request(capacity: str = "3x25", **kw: object) -> SapRequest:
    return SapRequest(capacity=require_electricity_capacity(capacity), **kw)  # type: ignore[arg-type]


def rules_of(primary: str, sap: str, active: int = 0, **kw: object) -> list[str]:
    decision = assess_sap_request(version(primary), active, request(sap, **kw), RULES, CLASSES)
    assert decision.granted == (not decision.reasons)
    return [r.rule for r in decision.reasons]


# -- the capacity examples of Liander's extra-meetpunt page (REG-5) ---------------------


@pytest.mark.parametrize("sap", ["1x25", "1x35", "1x6"])
def test_single_phase_primary_allows_single_phase(sap: str) -> None:
    assert rules_of("1x35", sap) == []


@pytest.mark.parametrize("sap", ["3x25", "3x35"])
def test_single_phase_primary_refuses_three_phase(sap: str) -> None:
    assert rules_of("1x35", sap) == ["REG-5.capacity"]


def test_single_phase_sap_cannot_exceed_the_primary_fuse() -> None:
    assert rules_of("1x25", "1x40") == ["REG-5.capacity"]


def test_3x25_primary_allows_only_3x25() -> None:
    assert rules_of("3x25", "3x25") == []
    assert rules_of("3x25", "1x40") == ["REG-5.capacity"]
    assert rules_of("3x25", "1x25") == ["REG-5.capacity"]


@pytest.mark.parametrize(
    ("sap", "ok"), [("1x40", True), ("3x25", True), ("3x35", False), ("1x35", False)]
)
def test_3x35_primary_allows_1x40_or_3x25(sap: str, ok: bool) -> None:
    assert rules_of("3x35", sap) == ([] if ok else ["REG-5.capacity"])


@pytest.mark.parametrize("primary", ["3x50", "3x63", "3x80", "3x160"])
def test_combinations_the_table_does_not_cover_need_manual_assessment(primary: str) -> None:
    assert rules_of(primary, "3x25") == ["REG-5.capacity_not_covered"]


# -- the other rules, each refusing on its own ------------------------------------------


def test_sixth_sap_on_a_small_connection_is_refused() -> None:
    assert rules_of("3x25", "3x25", active=4) == []
    assert rules_of("3x25", "3x25", active=5) == ["REG-5.max_count"]


def test_large_connection_has_no_maximum_in_the_seed() -> None:
    decision = assess_sap_request(version("3x250"), 12, request("3x25"), RULES, CLASSES)
    assert [r.rule for r in decision.reasons] == ["REG-5.capacity_not_covered"]


def test_other_cabinet_refused() -> None:
    assert rules_of("3x25", "3x25", same_cabinet=False) == ["REG-5.same_cabinet"]


def test_other_woz_object_refused_same_allowed() -> None:
    assert rules_of("3x25", "3x25", woz_object_id="0772000100") == []
    assert rules_of("3x25", "3x25", woz_object_id="0772999999") == ["REG-5.woz"]


def test_interconnected_installations_refused() -> None:
    assert rules_of("3x25", "3x25", interconnected=True) == ["REG-5.interconnected"]


def test_residential_use_refused() -> None:
    assert rules_of("3x25", "3x25", residential=True) == ["REG-5.residential"]


def test_gas_connection_refused() -> None:
    decision = assess_sap_request(version("G4", Commodity.GAS), 0, request("3x25"), RULES, CLASSES)
    assert "REG-5.commodity" in [r.rule for r in decision.reasons]


@pytest.mark.parametrize("status", [PhysicalStatus.OUT_OF_SERVICE, PhysicalStatus.DEMOLISHED])
def test_primary_out_of_service_refused(status: PhysicalStatus) -> None:
    decision = assess_sap_request(version("3x25", status=status), 0, request(), RULES, CLASSES)
    assert [r.rule for r in decision.reasons] == ["REG-5.primary_status"]


def test_every_broken_rule_is_listed_at_once() -> None:
    broken = rules_of(
        "3x25",
        "1x40",
        active=5,
        same_cabinet=False,
        residential=True,
        interconnected=True,
        woz_object_id="other",
    )
    assert broken == [
        "REG-5.max_count",
        "REG-5.same_cabinet",
        "REG-5.woz",
        "REG-5.interconnected",
        "REG-5.residential",
        "REG-5.capacity",
    ]


def test_energising_needs_a_contract() -> None:
    finding = check_sap_energise("871694840008583575", has_contract=False)
    assert finding is not None and finding.rule == "REG-5.contract"
    assert check_sap_energise("871694840008583575", has_contract=True) is None


@given(
    st.sampled_from(
        ["1x6", "1x10", "1x25", "1x35", "1x40", "3x25", "3x35", "3x50", "3x63", "3x80"]
    ),
    st.sampled_from(["1x6", "1x25", "1x40", "3x25", "3x35", "3x80"]),
    st.integers(0, 8),
)
def test_decision_is_never_silent(primary: str, sap: str, active: int) -> None:
    decision = assess_sap_request(version(primary), active, request(sap), RULES, CLASSES)
    # granted exactly when nothing is wrong, and every refusal carries a REG-5 rule
    assert decision.granted == (decision.reasons == ())
    assert all(r.rule.startswith("REG-5.") and r.message for r in decision.reasons)
    if active >= 5:
        assert not decision.granted


# -- the table is the operator's data --------------------------------------------------


def test_operator_can_extend_the_capacity_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = (Path(__file__).parents[3] / "src/meetpunt/data/sap_rules.toml").read_text()
    extended = packaged + '\n[[capacity]]\nprimary = "3x50"\nallowed = ["3x25", "3x35"]\n'
    (tmp_path / "sap_rules.toml").write_text(extended)
    monkeypatch.setenv("MEETPUNT_RULES_DIR", str(tmp_path))
    rules = sap_rules()
    granted = assess_sap_request(version("3x50"), 0, request("3x35"), rules, CLASSES)
    assert granted.granted
    refused = assess_sap_request(version("3x50"), 0, request("1x40"), rules, CLASSES)
    assert [r.rule for r in refused.reasons] == ["REG-5.capacity"]


def test_a_typo_in_the_table_fails_on_load() -> None:
    body = {
        "limits": {"max_saps_small_connection": 5},
        "capacity": [{"primary": "3x25", "allowed": ["3y25"]}],
        "charges": {"one_off_eur": "1", "meter_rent_eur_per_year": "1"},
    }
    with pytest.raises(DomainError):
        SapRules.from_mapping(body, version="test")


def test_costs_go_to_the_primary_contract_holder_via_its_supplier() -> None:
    one_off, periodic = sap_cost_lines(
        "871694840008583575", "Netbeheerder X", "8710000000017", "J. de Vries", RULES
    )
    assert one_off.kind is CostKind.ONE_OFF and one_off.charged_by == "Netbeheerder X"
    assert one_off.amount_eur == RULES.one_off_eur and one_off.billed_to == "J. de Vries"
    assert periodic.kind is CostKind.PERIODIC and periodic.billed_via == "8710000000017"
    assert periodic.billed_to == "J. de Vries" and periodic.period == "per year"
