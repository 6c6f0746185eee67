"""The register on SQLite and PostgreSQL: history, contracts, SAPs (REG-2..8)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import inspect

from meetpunt.domain.allocation import SapRequest, SapStatus
from meetpunt.domain.capacity import Commodity, require_electricity_capacity
from meetpunt.domain.connection import MeterType, PhysicalStatus
from meetpunt.domain.contract import TariffKind
from meetpunt.domain.ean import ean_from_serial, is_valid_ean
from meetpunt.errors import RegisterError
from meetpunt.register import Register
from meetpunt.register.schema import metadata
from meetpunt.register.store import ChangeOutcome

from ..unit.domain.factories import attributes, contract

EAN = "871694840008583575"
GAS_EAN = "871694840015271748"
GLN = "8710000000017"
D = date


def sap(capacity: str = "3x25", **kw: object) -> SapRequest:
    return SapRequest(capacity=require_electricity_capacity(capacity), **kw)  # type: ignore[arg-type]


def test_migrated_schema_matches_the_tables(register: Register) -> None:
    inspector = inspect(register.engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name


def test_what_was_true_on_a_date(register: Register) -> None:
    with register.session() as s:
        assert (
            s.record_connection(EAN, Commodity.ELECTRICITY, attributes("1x35"), D(2024, 1, 1))
            is ChangeOutcome.INSERTED
        )
        bigger = attributes("3x25")
        assert (
            s.record_connection(EAN, Commodity.ELECTRICITY, bigger, D(2025, 3, 1))
            is ChangeOutcome.CHANGED
        )
        assert (
            s.record_connection(EAN, Commodity.ELECTRICITY, bigger, D(2025, 3, 1))
            is ChangeOutcome.UNCHANGED
        )
    with register.session() as s:
        assert s.connection_at(EAN, D(2023, 12, 31)) is None
        assert str(s.connection_at(EAN, D(2025, 2, 28)).attributes.capacity) == "1x35"  # type: ignore[union-attr]
        assert str(s.connection_at(EAN, D(2025, 3, 1)).attributes.capacity) == "3x25"  # type: ignore[union-attr]
        history = s.connection_history(EAN)
        assert [(v.valid_from, v.valid_to) for v in history] == [
            (D(2024, 1, 1), D(2025, 3, 1)),
            (D(2025, 3, 1), None),
        ]


def test_a_version_recorded_between_two_others_keeps_the_timeline(register: Register) -> None:
    with register.session() as s:
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("1x25"), D(2020, 1, 1))
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("3x35"), D(2024, 1, 1))
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("3x25"), D(2022, 1, 1))
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("1x40"), D(2019, 1, 1))
        spans = [
            (v.valid_from, v.valid_to, str(v.attributes.capacity))
            for v in s.connection_history(EAN)
        ]
    assert spans == [
        (D(2019, 1, 1), D(2020, 1, 1), "1x40"),
        (D(2020, 1, 1), D(2022, 1, 1), "1x25"),
        (D(2022, 1, 1), D(2024, 1, 1), "3x25"),
        (D(2024, 1, 1), None, "3x35"),
    ]


def test_invalid_connection_refused_and_nothing_written(register: Register) -> None:
    with pytest.raises(RegisterError) as raised, register.session() as s:
        s.record_connection(
            "871694840008583576", Commodity.ELECTRICITY, attributes(), D(2024, 1, 1)
        )
    assert raised.value.rules == ("REG-1.check_digit",)
    with register.session() as s:
        assert list(s.connection_versions()) == []


def test_same_ean_for_gas_and_electricity_needs_the_commodity(register: Register) -> None:
    with register.session() as s:
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes(), D(2024, 1, 1))
        s.record_connection(EAN, Commodity.GAS, attributes("G4", Commodity.GAS), D(2024, 1, 1))
        assert s.connection_at(EAN, D(2024, 2, 1), Commodity.GAS) is not None
        with pytest.raises(RegisterError) as raised:
            s.connection_at(EAN, D(2024, 2, 1))
    assert raised.value.rules == ("REG-2.ambiguous",)


def test_contractless_on_a_date(register: Register) -> None:
    with register.session() as s:
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes(), D(2024, 1, 1))
        s.add_contract(contract(EAN, D(2024, 1, 1), D(2025, 1, 1)))
        s.set_status(EAN, PhysicalStatus.OUT_OF_SERVICE, D(2025, 6, 1))
        assert not s.is_contractless(EAN, D(2024, 12, 31))
        assert s.is_contractless(EAN, D(2025, 1, 1))
        assert not s.is_contractless(EAN, D(2025, 6, 1))  # out of service: not contractless
        assert not s.is_contractless(EAN, D(2023, 6, 1))  # not yet connected


def test_contract_rules_hold_in_the_register(register: Register) -> None:
    with register.session() as s:
        s.record_connection(
            EAN, Commodity.ELECTRICITY, attributes(meter_type=MeterType.FERRARIS), D(2024, 1, 1)
        )
        s.add_contract(contract(EAN, D(2024, 1, 1)))
        assert s.add_contract(contract(EAN, D(2024, 1, 1))) is ChangeOutcome.UNCHANGED
    cases = [
        (contract(EAN, D(2024, 6, 1)), "REG-6.overlap"),
        (contract(EAN, D(2030, 1, 1), tariff=TariffKind.DOUBLE), "MKT-2.double_tariff"),
        (contract(EAN, D(2023, 1, 1), D(2023, 6, 1)), "REG-6.point_not_registered"),
        (contract(GAS_EAN, D(2024, 1, 1)), "REG-2.unknown"),
    ]
    for refused, rule in cases:
        with pytest.raises(RegisterError) as raised, register.session() as s:
            s.add_contract(refused)
        assert rule in raised.value.rules
    with register.session() as s:
        s.end_contract(EAN, D(2025, 1, 1))
        assert s.contracts(EAN)[0].end == D(2025, 1, 1)
        assert s.is_contractless(EAN, D(2025, 1, 1))


def test_granted_sap_gets_its_own_valid_ean_and_belongs_to_the_primary(
    register: Register,
) -> None:
    with register.session() as s:
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("3x35"), D(2024, 1, 1))
        first = s.request_sap(EAN, sap("1x40", purpose="charge point"), D(2024, 2, 1))
        second = s.request_sap(EAN, sap("3x25"), D(2024, 2, 1))
    assert first.granted and second.granted
    assert first.ean and second.ean and first.ean != second.ean
    assert is_valid_ean(first.ean) and is_valid_ean(second.ean)
    with register.session() as s:
        points = s.secondaries(EAN, D(2024, 2, 1))
        assert [p.ean for p in points] == sorted([first.ean, second.ean])
        assert all(p.status is SapStatus.IN_CONSTRUCTION for p in points)
        assert s.primary_of(first.ean) == EAN
        assert s.secondaries(EAN, D(2024, 1, 31)) == []


def test_sixth_sap_on_a_small_connection_refused(register: Register) -> None:
    with register.session() as s:
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("3x25"), D(2024, 1, 1))
        decisions = [s.request_sap(EAN, sap("3x25"), D(2024, 2, 1)) for _ in range(6)]
    assert [d.granted for d in decisions] == [True] * 5 + [False]
    assert [r.rule for r in decisions[5].reasons] == ["REG-5.max_count"]


def test_lapsed_saps_do_not_count_towards_the_maximum(register: Register) -> None:
    with register.session() as s:
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("3x25"), D(2024, 1, 1))
        for _ in range(5):
            s.request_sap(EAN, sap(), D(2024, 2, 1))
        s.set_status(EAN, PhysicalStatus.OUT_OF_SERVICE, D(2024, 3, 1))
        s.set_status(EAN, PhysicalStatus.IN_SERVICE, D(2024, 4, 1))
        assert s.request_sap(EAN, sap(), D(2024, 4, 2)).granted


def test_saps_lapse_with_their_primary_on_the_same_date(register: Register) -> None:
    with register.session() as s:
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("3x35"), D(2024, 1, 1))
        s.add_contract(contract(EAN, D(2024, 1, 1)))
        granted = s.request_sap(EAN, sap("1x40"), D(2024, 2, 1))
        assert granted.ean is not None
        s.add_contract(contract(granted.ean, D(2024, 3, 1), contract_holder="LaadNet BV"))
        s.energise_sap(granted.ean, D(2024, 3, 1))
        s.set_status(EAN, PhysicalStatus.OUT_OF_SERVICE, D(2024, 9, 1))
        history = [(h.valid_from, h.valid_to, h.status) for h in s.sap_status_history(granted.ean)]
        assert s.secondaries(EAN, D(2024, 8, 31))[0].status is SapStatus.IN_SERVICE
        assert s.secondaries(EAN, D(2024, 9, 1))[0].status is SapStatus.LAPSED
        assert not s.is_contractless(granted.ean, D(2024, 9, 1))  # lapsed: not in service
    assert history == [
        (D(2024, 2, 1), D(2024, 3, 1), SapStatus.IN_CONSTRUCTION),
        (D(2024, 3, 1), D(2024, 9, 1), SapStatus.IN_SERVICE),
        (D(2024, 9, 1), None, SapStatus.LAPSED),
    ]


def test_sap_cannot_carry_energy_without_its_own_contract(register: Register) -> None:
    with register.session() as s:
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("3x25"), D(2024, 1, 1))
        granted = s.request_sap(EAN, sap(), D(2024, 2, 1))
    assert granted.ean is not None
    with pytest.raises(RegisterError) as raised, register.session() as s:
        s.energise_sap(granted.ean, D(2024, 3, 1))
    assert raised.value.rules == ("REG-5.contract",)
    with pytest.raises(RegisterError) as raised, register.session() as s:
        s.energise_sap(EAN, D(2024, 3, 1))
    assert raised.value.rules == ("REG-5.not_secondary",)


def test_sap_on_unknown_or_gas_primary_refused(register: Register) -> None:
    with register.session() as s:
        s.record_connection(GAS_EAN, Commodity.GAS, attributes("G4", Commodity.GAS), D(2024, 1, 1))
        unknown = s.request_sap(EAN, sap(), D(2024, 2, 1))
        gas = s.request_sap(GAS_EAN, sap(), D(2024, 2, 1))
    assert [r.rule for r in unknown.reasons] == ["REG-5.primary_unknown"]
    assert "REG-5.commodity" in [r.rule for r in gas.reasons]


def test_sap_costs_billed_to_the_primary_contract_holder(register: Register) -> None:
    with register.session() as s:
        s.record_connection(EAN, Commodity.ELECTRICITY, attributes("3x25"), D(2024, 1, 1))
        s.add_contract(contract(EAN, D(2024, 1, 1), contract_holder="Bakkerij BV"))
        granted = s.request_sap(EAN, sap(), D(2024, 2, 1))
        assert granted.ean is not None
        one_off, periodic = s.cost_lines(granted.ean, D(2024, 2, 1))
    assert one_off.billed_to == periodic.billed_to == "Bakkerij BV"
    assert periodic.billed_via == GLN
    assert one_off.charged_by == register.rules.grid_operator


def test_generated_eans_never_reuse_an_existing_code(register: Register) -> None:
    prefix = register.rules.ean_prefix
    occupied = ean_from_serial(prefix, 1)  # a connection already carries the first code
    with register.session() as s:
        s.record_connection(occupied, Commodity.ELECTRICITY, attributes("3x25"), D(2024, 1, 1))
        granted = s.request_sap(occupied, sap(), D(2024, 2, 1))
    assert granted.ean == ean_from_serial(prefix, 2)
