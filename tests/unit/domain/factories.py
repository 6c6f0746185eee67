"""Small builders for domain values used across the tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from meetpunt.domain.capacity import Commodity, parse_capacity
from meetpunt.domain.connection import (
    Address,
    AdminSwitch,
    ConnectionAttributes,
    ConnectionVersion,
    GridPosition,
    MeterType,
    Phase,
    PhysicalStatus,
    RemoteReading,
)
from meetpunt.domain.contract import ContractType, SupplyContract, TariffKind
from meetpunt.domain.customer import CustomerType
from meetpunt.domain.findings import Finding
from meetpunt.rulebook import capacity_classes


def attributes(
    capacity: str = "3x25", commodity: Commodity = Commodity.ELECTRICITY, **changes: object
) -> ConnectionAttributes:
    """A sound in-service household connection; ``changes`` override fields."""
    parsed = parse_capacity(commodity, capacity, capacity_classes())
    assert not isinstance(parsed, Finding), parsed
    single_phase = commodity is Commodity.ELECTRICITY and capacity.startswith("1x")
    base = ConnectionAttributes(
        capacity=parsed,
        status=PhysicalStatus.IN_SERVICE,
        admin_switch=AdminSwitch.ON,
        meter_type=MeterType.SMART,
        remote_reading=RemoteReading.STANDARD,
        address=Address(postcode="5617BD", house_number=10, woz_object_id="0772000100"),
        grid=GridPosition("OS-1", "OS-1/K1", Phase.L1 if single_phase else None),
        customer_type=CustomerType.HOUSEHOLD,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def version(
    capacity: str = "3x25", commodity: Commodity = Commodity.ELECTRICITY, **changes: object
) -> ConnectionVersion:
    """A connection version valid from 2024-01-01 with :func:`attributes`."""
    return ConnectionVersion(
        ean="871694840008583575",
        commodity=commodity,
        valid_from=date(2024, 1, 1),
        valid_to=None,
        attributes=attributes(capacity, commodity, **changes),
    )


SUPPLIER_GLN = "8710000000017"


def contract(ean: str, start: date, end: date | None = None, **kw: object) -> SupplyContract:
    """A variable single-tariff contract of J. de Vries on ``ean``; ``kw`` overrides."""
    fields: dict[str, object] = {
        "allocation_point_ean": ean,
        "supplier": SUPPLIER_GLN,
        "contract_holder": "J. de Vries",
        "contract_type": ContractType.VARIABLE,
        "tariff": TariffKind.SINGLE,
        "start": start,
        "end": end,
    } | kw
    return SupplyContract(**fields)  # type: ignore[arg-type]
