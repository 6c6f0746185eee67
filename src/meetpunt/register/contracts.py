"""Supply contracts on allocation points (REG-6, MKT-1, MKT-2) and contractless points.

A contract runs from ``start`` up to ``end`` (exclusive); two contracts on one point
never overlap. A point in service without a contract in force is contractless (UC15).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import Row, insert, select, update

from meetpunt.domain.allocation import AllocationPointKind, SapStatus
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.contract import (
    ContractType,
    SupplyContract,
    TariffKind,
    check_contract,
    is_contractless,
)
from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError
from meetpunt.register import schema as t
from meetpunt.register.base import ChangeOutcome, _Point
from meetpunt.register.connections import ConnectionTimelines


class Contracts(ConnectionTimelines):
    """Adding, ending and reading supply contracts."""

    def add_contract(
        self, contract: SupplyContract, commodity: Commodity | None = None
    ) -> ChangeOutcome:
        """Register a supply contract on an allocation point (REG-6, MKT-1, MKT-2)."""
        point = self._point(contract.allocation_point_ean, commodity)
        existing = self.contracts(contract.allocation_point_ean, point.commodity)
        if contract in existing:
            return ChangeOutcome.UNCHANGED
        version = self.connection_at(point.primary_ean, contract.start, point.commodity)
        if version is None:
            finding = Finding(
                "REG-6.point_not_registered",
                f"{contract.allocation_point_ean} is not registered on the contract's start "
                f"date {contract.start}",
            )
            raise RegisterError(finding.message, [finding])
        findings = check_contract(contract, version.attributes.meter_type, existing)
        if findings:
            raise RegisterError(f"contract refused: {findings[0].message}", findings)
        self._insert_id(
            insert(t.supply_contract).values(
                allocation_point_id=point.id,
                supplier=contract.supplier,
                contract_holder=contract.contract_holder,
                contract_type=contract.contract_type.value,
                tariff=contract.tariff.value,
                start_date=contract.start,
                end_date=contract.end,
            )
        )
        return ChangeOutcome.INSERTED

    def end_contract(self, ean: str, end: date, commodity: Commodity | None = None) -> None:
        """End the contract in force on the day before ``end`` (end date exclusive)."""
        point = self._point(ean, commodity)
        current = self.contract_on(ean, date.fromordinal(end.toordinal() - 1), point.commodity)
        if current is None or (current.end is not None and current.end <= end):
            finding = Finding("REG-6.no_contract", f"{ean} has no open contract to end on {end}")
            raise RegisterError(finding.message, [finding])
        sc = t.supply_contract
        self._conn.execute(
            update(sc)
            .where(sc.c.allocation_point_id == point.id, sc.c.start_date == current.start)
            .values(end_date=end)
        )

    def switch_contract(
        self, new: SupplyContract, commodity: Commodity | None = None
    ) -> SupplyContract | None:
        """A switch or a move on ``new.start`` (MKT-5): the contract in force the day
        before ends on that day (end exclusive) and ``new`` starts; returns the old one.

        Both happen in the session's one transaction, so a refused new contract leaves
        the old one in force."""
        point = self._point(new.allocation_point_ean, commodity)
        before = date.fromordinal(new.start.toordinal() - 1)
        old = self.contract_on(new.allocation_point_ean, before, point.commodity)
        if old is not None and (old.end is None or old.end > new.start):
            self.end_contract(new.allocation_point_ean, new.start, point.commodity)
        self.add_contract(new, point.commodity)
        return old

    def contracts(self, ean: str, commodity: Commodity | None = None) -> list[SupplyContract]:
        """The point's contracts, oldest first."""
        point = self._point(ean, commodity)
        rows = self._conn.execute(
            select(t.supply_contract)
            .where(t.supply_contract.c.allocation_point_id == point.id)
            .order_by(t.supply_contract.c.start_date)
        )
        return [row_to_contract(ean, r) for r in rows]

    def all_contracts(self) -> Iterator[tuple[SupplyContract, Commodity]]:
        """Every contract in the register with its commodity (for export)."""
        query = (
            select(t.supply_contract, t.allocation_point.c.ean, t.connection.c.commodity)
            .join(
                t.allocation_point,
                t.allocation_point.c.id == t.supply_contract.c.allocation_point_id,
            )
            .join(t.connection, t.connection.c.id == t.allocation_point.c.connection_id)
            .order_by(t.allocation_point.c.ean, t.supply_contract.c.start_date)
        )
        for row in self._conn.execute(query):
            yield row_to_contract(row.ean, row), Commodity(row.commodity)

    def contract_on(
        self, ean: str, on: date, commodity: Commodity | None = None
    ) -> SupplyContract | None:
        """The contract in force on ``on`` for the point ``ean``."""
        return next((c for c in self.contracts(ean, commodity) if c.holds_on(on)), None)

    def is_contractless(self, ean: str, on: date, commodity: Commodity | None = None) -> bool:
        """In service on ``on`` without a contract in force (REG-6, UC15)."""
        point = self._point(ean, commodity)
        return is_contractless(
            self._point_in_service(point, on), self.contracts(ean, point.commodity), on
        )

    def _point_in_service(self, point: _Point, on: date) -> bool:
        """A SAP by its own status (REG-5), a primary by its connection's status."""
        if point.kind is AllocationPointKind.SECONDARY:
            return self._sap_status(point.id, on) is SapStatus.IN_SERVICE
        version = self.connection_at(point.ean, on, point.commodity)
        return version is not None and version.attributes.in_service


def row_to_contract(ean: str, row: Row[Any]) -> SupplyContract:
    """A ``supply_contract`` row as the domain's contract on the point ``ean``."""
    return SupplyContract(
        allocation_point_ean=ean,
        supplier=row.supplier,
        contract_holder=row.contract_holder,
        contract_type=ContractType(row.contract_type),
        tariff=TariffKind(row.tariff),
        start=row.start_date,
        end=row.end_date,
    )
