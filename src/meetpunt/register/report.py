"""JSON-ready views of register entries (``meetpunt register show``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from meetpunt.domain.allocation import AllocationPointKind
from meetpunt.domain.capacity import Commodity, size_class
from meetpunt.domain.connection import ConnectionVersion
from meetpunt.domain.contract import SupplyContract
from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError
from meetpunt.register.store import RegisterSession


def decimal_text(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: NUMERIC 4.200 reads as 4.2."""
    return f"{value.normalize():f}"


def contract_view(contract: SupplyContract | None) -> dict[str, Any] | None:
    """A contract as a JSON object (or ``None``)."""
    if contract is None:
        return None
    return {
        "supplier": contract.supplier,
        "contract_holder": contract.contract_holder,
        "contract_type": contract.contract_type.value,
        "tariff": contract.tariff.value,
        "start": contract.start.isoformat(),
        "end": contract.end.isoformat() if contract.end else None,
    }


def connection_view(session: RegisterSession, version: ConnectionVersion) -> dict[str, Any]:
    """The attributes of one connection version as a JSON object."""
    a = version.attributes
    return {
        "commodity": version.commodity.value,
        "capacity": str(a.capacity),
        "size_class": size_class(a.capacity, session.rules.classes).value,
        "status": a.status.value,
        "admin_switch": a.admin_switch.value,
        "meter_type": a.meter_type.value,
        "remote_reading": a.remote_reading.value,
        "address": {
            "postcode": a.address.postcode,
            "house_number": a.address.house_number,
            "house_number_suffix": a.address.house_number_suffix,
            "street": a.address.street,
            "city": a.address.city,
            "municipality": a.address.municipality,
            "woz_object_id": a.address.woz_object_id,
        },
        "grid": {
            "substation": a.grid.substation,
            "feeder": a.grid.feeder,
            "phase": a.grid.phase.value if a.grid.phase else None,
        },
        "customer_type": a.customer_type.value,
        "active_customer": a.active_customer,
        "solar_kwp": decimal_text(a.solar_kwp) if a.solar_kwp is not None else None,
        "solar_registered_on": a.solar_registered_on.isoformat() if a.solar_registered_on else None,
        "valid_from": version.valid_from.isoformat(),
        "valid_to": version.valid_to.isoformat() if version.valid_to else None,
    }


def describe_point(
    session: RegisterSession, ean: str, on: date, commodity: Commodity | None = None
) -> dict[str, Any]:
    """Everything the register says about ``ean`` on ``on``: connection or SAP view."""
    kinds = session.point_kinds(ean)
    if not kinds:
        finding = Finding("REG-2.unknown", f"no connection or allocation point with EAN {ean}")
        raise RegisterError(finding.message, [finding])
    if AllocationPointKind.SECONDARY in kinds:
        return _describe_secondary(session, ean, on)
    version = session.connection_at(ean, on, commodity)
    history = session.connection_history(ean, commodity)
    found_commodity = history[0].commodity
    described: dict[str, Any] = {"ean": ean, "kind": "connection", "at": on.isoformat()}
    if version is None:
        described["exists"] = False
    else:
        described["exists"] = True
        described |= connection_view(session, version)
        described["contract"] = contract_view(session.contract_on(ean, on, found_commodity))
        described["contractless"] = session.is_contractless(ean, on, found_commodity)
        described["secondary_allocation_points"] = (
            [
                {
                    "ean": p.ean,
                    "capacity": p.capacity,
                    "status": p.status.value,
                    "purpose": p.purpose,
                    "contractless": session.is_contractless(p.ean, on),
                }
                for p in session.secondaries(ean, on)
            ]
            if found_commodity is Commodity.ELECTRICITY
            else []
        )
    described["history"] = [
        {
            "valid_from": v.valid_from.isoformat(),
            "valid_to": v.valid_to.isoformat() if v.valid_to else None,
            "status": v.attributes.status.value,
            "capacity": str(v.attributes.capacity),
            "meter_type": v.attributes.meter_type.value,
        }
        for v in history
    ]
    return described


def _describe_secondary(session: RegisterSession, ean: str, on: date) -> dict[str, Any]:
    """A secondary allocation point: its primary, status, contract, costs, history."""
    history = session.sap_status_history(ean)
    current = next(
        (s for s in history if s.valid_from <= on and (s.valid_to is None or on < s.valid_to)),
        None,
    )
    primary_ean = session.primary_of(ean)
    primary_contract = session.contract_on(primary_ean, on, Commodity.ELECTRICITY)
    return {
        "ean": ean,
        "kind": "secondary_allocation_point",
        "at": on.isoformat(),
        "exists": current is not None,
        "primary_ean": primary_ean,
        "agreement": f"connection and transport agreement of {primary_ean}",
        "contact": primary_contract.contract_holder if primary_contract else None,
        "status": current.status.value if current else None,
        "contract": contract_view(session.contract_on(ean, on)),
        "contractless": session.is_contractless(ean, on),
        "cost_lines": [c.as_dict() for c in session.cost_lines(ean, on)],
        "status_history": [
            {
                "valid_from": s.valid_from.isoformat(),
                "valid_to": s.valid_to.isoformat() if s.valid_to else None,
                "status": s.status.value,
            }
            for s in history
        ],
    }
