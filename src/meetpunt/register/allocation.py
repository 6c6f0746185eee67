"""Allocation points and secondary allocation points (SAPs) (REG-5).

Every connection has a primary allocation point with its own EAN. A SAP (extra
metering point) hangs on an electricity connection, gets a new EAN when granted, and
has a status timeline: in construction, in service (only with its own supply
contract), lapsed when its primary goes out of service (that part runs from
:meth:`~meetpunt.register.connections.ConnectionTimelines.record_connection`). Its
charges are billed to the primary's contract holder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert, select

from meetpunt.domain.allocation import (
    ACTIVE_SAP_STATUSES,
    AllocationPointKind,
    CostLine,
    SapDecision,
    SapRequest,
    SapStatus,
    assess_sap_request,
    check_sap_energise,
    sap_cost_lines,
)
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError
from meetpunt.register import schema as t
from meetpunt.register.base import ChangeOutcome
from meetpunt.register.contracts import Contracts
from meetpunt.register.issuing import EanIssuing
from meetpunt.register.validity import holds_on


@dataclass(frozen=True)
class SecondaryPoint:
    """A secondary allocation point as the register knows it on a date."""

    ean: str
    primary_ean: str
    capacity: str
    status: SapStatus
    purpose: str
    requested_on: date | None


@dataclass(frozen=True)
class StatusVersion:
    """One version of a secondary point's status."""

    valid_from: date
    valid_to: date | None
    status: SapStatus


class AllocationPoints(Contracts, EanIssuing):
    """Reading allocation points; requesting, recording and energising SAPs (REG-5)."""

    def point_kinds(self, ean: str) -> set[AllocationPointKind]:
        """The kinds of allocation point that carry ``ean`` (empty when unknown)."""
        rows = self._conn.execute(
            select(t.allocation_point.c.kind).where(t.allocation_point.c.ean == ean)
        ).scalars()
        return {AllocationPointKind(k) for k in rows}

    def primary_of(self, ean: str) -> str:
        """The EAN of the connection (primary point) that ``ean`` belongs to."""
        return self._point(ean).primary_ean

    def secondaries(self, primary_ean: str, on: date) -> list[SecondaryPoint]:
        """The secondary points of a connection that existed on ``on``, with their status."""
        connection_id, _ = self._connection_id(primary_ean, Commodity.ELECTRICITY)
        rows = self._conn.execute(
            select(t.allocation_point, t.allocation_point_status.c.status)
            .join(
                t.allocation_point_status,
                t.allocation_point_status.c.allocation_point_id == t.allocation_point.c.id,
            )
            .where(
                t.allocation_point.c.connection_id == connection_id,
                t.allocation_point.c.kind == AllocationPointKind.SECONDARY.value,
                holds_on(t.allocation_point_status, on),
            )
            .order_by(t.allocation_point.c.ean)
        )
        return [
            SecondaryPoint(
                ean=r.ean,
                primary_ean=primary_ean,
                capacity=r.capacity,
                status=SapStatus(r.status),
                purpose=r.purpose,
                requested_on=r.requested_on,
            )
            for r in rows
        ]

    def sap_status_history(self, sap_ean: str) -> list[StatusVersion]:
        """Every status version of a secondary point, oldest first."""
        point = self._point(sap_ean)
        rows = self._conn.execute(
            select(t.allocation_point_status)
            .where(t.allocation_point_status.c.allocation_point_id == point.id)
            .order_by(t.allocation_point_status.c.valid_from)
        )
        return [StatusVersion(r.valid_from, r.valid_to, SapStatus(r.status)) for r in rows]

    def all_secondary_status_versions(self) -> Iterator[tuple[SecondaryPoint, StatusVersion]]:
        """Every status version of every secondary point (for export)."""
        ap, st = t.allocation_point, t.allocation_point_status
        query = (
            select(ap, st.c.valid_from, st.c.valid_to, st.c.status, t.connection.c.ean.label("p"))
            .join(st, st.c.allocation_point_id == ap.c.id)
            .join(t.connection, t.connection.c.id == ap.c.connection_id)
            .order_by(ap.c.ean, st.c.valid_from)
        )
        for r in self._conn.execute(query):
            point = SecondaryPoint(
                r.ean, r.p, r.capacity, SapStatus(r.status), r.purpose, r.requested_on
            )
            yield point, StatusVersion(r.valid_from, r.valid_to, SapStatus(r.status))

    def request_sap(self, primary_ean: str, request: SapRequest, on: date) -> SapDecision:
        """Assess a SAP request (REG-5); when granted, register it with a new EAN."""
        found = self._connection_ids(primary_ean, None)
        primary = None
        if found:
            commodity = (
                Commodity.ELECTRICITY
                if any(c is Commodity.ELECTRICITY for _, c in found)
                else found[0][1]
            )
            primary = self.connection_at(primary_ean, on, commodity)
        if primary is None:
            reason = Finding(
                "REG-5.primary_unknown",
                f"{primary_ean} is not a connection (primary allocation point) in the register "
                f"on {on}; request the extra metering point on the connection's own EAN",
            )
            return SapDecision(granted=False, reasons=(reason,))
        connection_id, _ = self._connection_id(primary_ean, primary.commodity)
        active = (
            sum(1 for p in self.secondaries(primary_ean, on) if p.status in ACTIVE_SAP_STATUSES)
            if primary.commodity is Commodity.ELECTRICITY
            else 0
        )
        decision = assess_sap_request(primary, active, request, self.rules.sap, self.rules.classes)
        if not decision.granted:
            return decision
        ean = self.next_ean()
        point_id = self._insert_id(
            insert(t.allocation_point).values(
                ean=ean,
                connection_id=connection_id,
                kind=AllocationPointKind.SECONDARY.value,
                capacity=str(request.capacity),
                purpose=request.purpose,
                requested_on=on,
            )
        )
        self._put_version(
            t.allocation_point_status,
            "allocation_point_id",
            point_id,
            on,
            {"status": SapStatus.IN_CONSTRUCTION.value},
        )
        return SapDecision(granted=True, reasons=(), ean=ean)

    def record_secondary(
        self,
        sap_ean: str,
        primary_ean: str,
        capacity: str,
        status: SapStatus,
        valid_from: date,
        purpose: str = "",
    ) -> ChangeOutcome:
        """Record an existing secondary point's status from ``valid_from`` (register import).

        Existing points were granted before they reached meetpunt, so REG-5 is not
        assessed again; their codes and their primary must be sound.
        """
        connection_id, _ = self._connection_id(primary_ean, Commodity.ELECTRICITY)
        existing = self._conn.execute(
            select(t.allocation_point.c.id, t.allocation_point.c.connection_id).where(
                t.allocation_point.c.ean == sap_ean
            )
        ).all()
        if any(r.connection_id != connection_id for r in existing) or self._connection_ids(
            sap_ean, None
        ):
            finding = Finding(
                "REG-1.unique",
                f"EAN {sap_ean} already belongs to another connection or allocation point",
            )
            raise RegisterError(finding.message, [finding])
        if existing:
            point_id = existing[0].id
        else:
            point_id = self._insert_id(
                insert(t.allocation_point).values(
                    ean=sap_ean,
                    connection_id=connection_id,
                    kind=AllocationPointKind.SECONDARY.value,
                    capacity=capacity,
                    purpose=purpose,
                    requested_on=valid_from,
                )
            )
        return self._put_version(
            t.allocation_point_status,
            "allocation_point_id",
            point_id,
            valid_from,
            {"status": status.value},
        )

    def energise_sap(self, sap_ean: str, on: date) -> None:
        """Put a granted SAP in service on ``on``; needs its own contract (REG-5.contract)."""
        point = self._point(sap_ean)
        findings: list[Finding] = []
        if point.kind is not AllocationPointKind.SECONDARY:
            findings.append(
                Finding("REG-5.not_secondary", f"{sap_ean} is a primary allocation point")
            )
        else:
            status = self._sap_status(point.id, on)
            if status is not SapStatus.IN_CONSTRUCTION:
                findings.append(
                    Finding(
                        "REG-5.sap_status",
                        f"extra metering point {sap_ean} is "
                        f"{status.value if status else 'not yet granted'} on {on}; "
                        "only a granted point in construction can be put in service",
                    )
                )
            primary = self.connection_at(point.primary_ean, on, point.commodity)
            if primary is None or not primary.attributes.in_service:
                findings.append(
                    Finding(
                        "REG-5.primary_status",
                        f"the connection {point.primary_ean} is not in service on {on}",
                    )
                )
            contract = check_sap_energise(sap_ean, self.contract_on(sap_ean, on) is not None)
            if contract is not None:
                findings.append(contract)
        if findings:
            raise RegisterError(f"cannot energise {sap_ean}: {findings[0].message}", findings)
        self._put_version(
            t.allocation_point_status,
            "allocation_point_id",
            point.id,
            on,
            {"status": SapStatus.IN_SERVICE.value},
        )

    def cost_lines(self, sap_ean: str, on: date) -> tuple[CostLine, ...]:
        """The SAP's charges, billed to the primary's contract holder (REG-5 costs)."""
        point = self._point(sap_ean)
        if point.kind is not AllocationPointKind.SECONDARY:
            finding = Finding("REG-5.not_secondary", f"{sap_ean} is a primary allocation point")
            raise RegisterError(finding.message, [finding])
        primary_contract = self.contract_on(point.primary_ean, on, point.commodity)
        return sap_cost_lines(
            sap_ean,
            self.rules.grid_operator,
            primary_contract.supplier if primary_contract else None,
            primary_contract.contract_holder if primary_contract else None,
            self.rules.sap,
        )
