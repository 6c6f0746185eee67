"""REG-2, REG-7, REG-8: a connection version is checked before it is recorded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import (
    Address,
    GridPosition,
    MeterType,
    Phase,
    RemoteReading,
    check_connection,
    normalise_postcode,
)
from meetpunt.domain.findings import Finding

from .factories import attributes

EAN = "871694840008583575"


def rules(
    commodity: Commodity = Commodity.ELECTRICITY,
    capacity: str = "3x25",
    ean: str = EAN,
    **changes: object,
) -> list[str]:
    return [
        f.rule for f in check_connection(ean, commodity, attributes(capacity, commodity, **changes))
    ]


def test_sound_connections_pass() -> None:
    assert rules() == []
    assert rules(capacity="1x35") == []
    assert rules(Commodity.GAS, "G4", grid=GridPosition()) == []


@pytest.mark.parametrize(("text", "expected"), [("5617 bd", "5617BD"), ("1011AB", "1011AB")])
def test_postcode_normalised(text: str, expected: str) -> None:
    assert normalise_postcode(text) == expected


@pytest.mark.parametrize("text", ["0123AB", "123AB", "1234A", "1234SS", "12345B", ""])
def test_bad_postcode_refused(text: str) -> None:
    assert isinstance(normalise_postcode(text), Finding)
    assert rules(address=Address(postcode=text, house_number=1)) == ["REG-2.postcode"]


def test_bad_ean_refused() -> None:
    assert rules(ean="871694840008583576") == ["REG-1.check_digit"]


def test_house_number_must_be_positive() -> None:
    assert rules(address=Address(postcode="5617BD", house_number=0)) == ["REG-2.house_number"]


def test_single_phase_needs_its_phase_three_phase_has_none() -> None:
    assert rules(capacity="1x35", grid=GridPosition("OS", "K1", None)) == ["REG-2.phase"]
    assert rules(capacity="3x25", grid=GridPosition("OS", "K1", Phase.L2)) == ["REG-2.phase"]


def test_gas_has_no_phase_and_no_solar() -> None:
    assert rules(Commodity.GAS, "G4", grid=GridPosition("", "", Phase.L1)) == ["REG-2.phase"]
    assert rules(Commodity.GAS, "G4", grid=GridPosition(), solar_kwp=Decimal(3)) == [
        "REG-8.commodity"
    ]


def test_negative_solar_refused() -> None:
    assert rules(solar_kwp=Decimal("-1")) == ["REG-8.solar_kwp"]


@pytest.mark.parametrize("meter", [MeterType.FERRARIS, MeterType.DIGITAL, MeterType.NONE])
def test_remote_reading_off_only_on_a_smart_meter(meter: MeterType) -> None:
    assert rules(meter_type=meter, remote_reading=RemoteReading.ADMINISTRATIVELY_OFF) == [
        "REG-7.remote_reading"
    ]
    assert rules(meter_type=meter) == []
