"""The register's operations on one database transaction (REG-2..8).

:class:`Register` owns the engine and hands out :class:`RegisterSession` objects, one
per transaction; everything that reads or changes the register goes through a
session. History is kept as validity intervals (see :mod:`meetpunt.register.schema`):
recording a version on date D closes the version that held on D and opens the new one
until the next recorded version, so "what was true on D" stays answerable (REG-6).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Row,
    Table,
    delete,
    insert,
    select,
    update,
)

from meetpunt import rulebook
from meetpunt.domain.allocation import (
    ACTIVE_SAP_STATUSES,
    AllocationPointKind,
    CostLine,
    SapDecision,
    SapRequest,
    SapRules,
    SapStatus,
    assess_sap_request,
    check_sap_energise,
    sap_cost_lines,
)
from meetpunt.domain.capacity import CapacityClasses, Commodity, parse_capacity
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
    check_connection,
    normalise_postcode,
)
from meetpunt.domain.contract import (
    ContractType,
    SupplyContract,
    TariffKind,
    check_contract,
    is_contractless,
)
from meetpunt.domain.customer import CustomerType
from meetpunt.domain.ean import ean_from_serial
from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError
from meetpunt.register import schema as t
from meetpunt.register.validity import holds_on

DEFAULT_EAN_PREFIX = "87123450"
OUT_OF_SERVICE = frozenset({PhysicalStatus.OUT_OF_SERVICE, PhysicalStatus.DEMOLISHED})


class ChangeOutcome(StrEnum):
    """What recording a version did: new, changed an existing timeline, or nothing."""

    INSERTED = "inserted"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class RegisterRules:
    """The rule tables and operator settings a register works with."""

    classes: CapacityClasses
    sap: SapRules
    grid_operator: str = "meetpunt grid operator"
    ean_prefix: str = DEFAULT_EAN_PREFIX

    @classmethod
    def load(
        cls, grid_operator: str = "meetpunt grid operator", ean_prefix: str = DEFAULT_EAN_PREFIX
    ) -> RegisterRules:
        """Load the packaged (or operator-overridden) rule files."""
        return cls(rulebook.capacity_classes(), rulebook.sap_rules(), grid_operator, ean_prefix)


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


@dataclass(frozen=True)
class QuarantinedRecord:
    """An imported record the register refused, kept with its reason (nothing lost)."""

    source: str
    line: int
    record: str
    rule: str
    message: str


@dataclass(frozen=True)
class _Point:
    id: int
    ean: str
    kind: AllocationPointKind
    connection_id: int
    commodity: Commodity
    primary_ean: str


@dataclass(frozen=True, slots=True)
class MeterIndexEntry:
    """One connection version, flattened for the meter-data hub (see ``meter_index``)."""

    connection_id: int
    ean: str
    commodity: Commodity
    valid_from: date
    valid_to: date | None
    capacity: str
    meter_type: str
    status: str


class Register:
    """The connection register on one database; open it with ``open_register``."""

    def __init__(self, engine: Engine, rules: RegisterRules) -> None:
        self.engine = engine
        self.rules = rules

    @contextmanager
    def session(self) -> Iterator[RegisterSession]:
        """One transaction: committed when the block ends, rolled back on an error."""
        with self.engine.begin() as conn:
            yield RegisterSession(conn, self.rules)

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()


class RegisterSession:
    """Register operations inside one transaction (see :meth:`Register.session`)."""

    def __init__(self, conn: Connection, rules: RegisterRules) -> None:
        self._conn = conn
        self.rules = rules

    @property
    def db(self) -> Connection:
        """The transaction's database connection, for the packages that keep their own
        tables in the register database (the privacy gate: audit log, grants, consents)."""
        return self._conn

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Make the block atomic on its own: an error undoes just the block (imports)."""
        with self._conn.begin_nested():
            yield

    def _insert_id(self, statement: Insert) -> int:
        """Run an INSERT and return the new row's integer key."""
        key = self._conn.execute(statement).inserted_primary_key
        if key is None:  # pragma: no cover - every table has an integer key
            raise RegisterError(f"no key returned for {statement.table}")
        return int(key[0])

    # -- timelines -----------------------------------------------------------------

    def _put_version(
        self, table: Table, key: str, key_value: int, valid_from: date, values: Mapping[str, Any]
    ) -> ChangeOutcome:
        """Record ``values`` as true from ``valid_from`` until the next recorded version.

        Every recorded date stays a boundary: the same values recorded again on the same
        date change nothing; recorded on a new date they open a version of their own.
        """
        rows = self._conn.execute(
            select(table).where(table.c[key] == key_value).order_by(table.c.valid_from)
        ).all()
        covering = next(
            (
                r
                for r in rows
                if r.valid_from <= valid_from and (r.valid_to is None or valid_from < r.valid_to)
            ),
            None,
        )
        if covering is None:
            later = [r.valid_from for r in rows if r.valid_from > valid_from]
            self._insert_id(
                insert(table).values(
                    {key: key_value, "valid_from": valid_from, "valid_to": min(later, default=None)}
                    | dict(values)
                )
            )
            return ChangeOutcome.INSERTED
        current = covering._mapping
        same = all(current[name] == value for name, value in values.items())
        if covering.valid_from == valid_from:
            if same:
                return ChangeOutcome.UNCHANGED
            self._conn.execute(update(table).where(table.c.id == covering.id).values(dict(values)))
            return ChangeOutcome.CHANGED
        # a new boundary, even when the values equal the covering version's: the date was
        # stated, and a later correction before it must not overwrite what holds from it
        self._conn.execute(
            update(table).where(table.c.id == covering.id).values(valid_to=valid_from)
        )
        self._insert_id(
            insert(table).values(
                {key: key_value, "valid_from": valid_from, "valid_to": covering.valid_to}
                | dict(values)
            )
        )
        return ChangeOutcome.INSERTED if same else ChangeOutcome.CHANGED

    # -- connections ----------------------------------------------------------------

    def record_connection(
        self, ean: str, commodity: Commodity, attributes: ConnectionAttributes, valid_from: date
    ) -> ChangeOutcome:
        """Record the connection's state from ``valid_from`` on (REG-2..4, REG-6..8).

        Creates the connection and its primary allocation point on first sight. When the
        new state is out of service or demolished, the connection's secondary points lapse
        on the same date (REG-5).
        """
        findings = check_connection(ean, commodity, attributes)
        if findings:
            raise RegisterError(f"connection {ean} refused: {findings[0].message}", findings)
        sap_clash = self._conn.execute(
            select(t.allocation_point.c.id).where(
                t.allocation_point.c.ean == ean,
                t.allocation_point.c.kind == AllocationPointKind.SECONDARY.value,
            )
        ).first()
        if sap_clash is not None:
            finding = Finding(
                "REG-1.unique",
                f"EAN {ean} already belongs to a secondary allocation point; EANs are never reused",
            )
            raise RegisterError(finding.message, [finding])
        connection_id = self._conn.execute(
            select(t.connection.c.id).where(
                t.connection.c.ean == ean, t.connection.c.commodity == commodity.value
            )
        ).scalar()
        if connection_id is None:
            connection_id = self._insert_id(
                insert(t.connection).values(ean=ean, commodity=commodity.value)
            )
            self._insert_id(
                insert(t.allocation_point).values(
                    ean=ean,
                    connection_id=connection_id,
                    kind=AllocationPointKind.PRIMARY.value,
                    capacity=None,
                    purpose="",
                    requested_on=None,
                )
            )
        outcome = self._put_version(
            t.connection_version,
            "connection_id",
            connection_id,
            valid_from,
            _attributes_to_row(attributes),
        )
        if attributes.status in OUT_OF_SERVICE:
            self._lapse_secondaries(connection_id, valid_from)
        return outcome

    def set_status(
        self, ean: str, status: PhysicalStatus, on: date, commodity: Commodity | None = None
    ) -> ChangeOutcome:
        """Change only the physical status from ``on`` (e.g. take out of service)."""
        current = self.connection_at(ean, on, commodity)
        if current is None:
            finding = Finding("REG-2.unknown", f"connection {ean} is not registered on {on}")
            raise RegisterError(finding.message, [finding])
        attrs = current.attributes
        return self.record_connection(ean, current.commodity, replace(attrs, status=status), on)

    def _connection_ids(self, ean: str, commodity: Commodity | None) -> list[tuple[int, Commodity]]:
        query = select(t.connection.c.id, t.connection.c.commodity).where(t.connection.c.ean == ean)
        if commodity is not None:
            query = query.where(t.connection.c.commodity == commodity.value)
        return [(r.id, Commodity(r.commodity)) for r in self._conn.execute(query)]

    def _connection_id(self, ean: str, commodity: Commodity | None) -> tuple[int, Commodity]:
        found = self._connection_ids(ean, commodity)
        if not found:
            finding = Finding("REG-2.unknown", f"no connection with EAN {ean} in the register")
            raise RegisterError(finding.message, [finding])
        if len(found) > 1:
            finding = Finding(
                "REG-2.ambiguous",
                f"EAN {ean} is both an electricity and a gas connection; say which commodity",
            )
            raise RegisterError(finding.message, [finding])
        return found[0]

    def connection_at(
        self, ean: str, on: date, commodity: Commodity | None = None
    ) -> ConnectionVersion | None:
        """The connection as it was on ``on``; ``None`` when it did not exist then."""
        connection_id, found_commodity = self._connection_id(ean, commodity)
        row = self._conn.execute(
            select(t.connection_version).where(
                t.connection_version.c.connection_id == connection_id,
                holds_on(t.connection_version, on),
            )
        ).first()
        return None if row is None else self._version(ean, found_commodity, row)

    def connection_history(
        self, ean: str, commodity: Commodity | None = None
    ) -> list[ConnectionVersion]:
        """Every recorded version of the connection, oldest first."""
        connection_id, found_commodity = self._connection_id(ean, commodity)
        rows = self._conn.execute(
            select(t.connection_version)
            .where(t.connection_version.c.connection_id == connection_id)
            .order_by(t.connection_version.c.valid_from)
        )
        return [self._version(ean, found_commodity, row) for row in rows]

    def connection_versions(self, on: date | None = None) -> Iterator[ConnectionVersion]:
        """All versions (or those holding on ``on``), by EAN, commodity and date."""
        query = select(t.connection.c.ean, t.connection.c.commodity, t.connection_version).join(
            t.connection, t.connection.c.id == t.connection_version.c.connection_id
        )
        if on is not None:
            query = query.where(holds_on(t.connection_version, on))
        query = query.order_by(
            t.connection.c.ean, t.connection.c.commodity, t.connection_version.c.valid_from
        )
        for row in self._conn.execute(query):
            yield self._version(row.ean, Commodity(row.commodity), row)

    def meter_index(self) -> list[MeterIndexEntry]:
        """Every connection version as the meter-data hub needs it (MTR-4/5, DESIGN rule 5).

        The hub keys its tables by ``connection_id`` and checks values against the
        capacity and meter type that held on the reading's date.
        """
        cv = t.connection_version
        query = (
            select(
                t.connection.c.id,
                t.connection.c.ean,
                t.connection.c.commodity,
                cv.c.valid_from,
                cv.c.valid_to,
                cv.c.capacity,
                cv.c.meter_type,
                cv.c.status,
            )
            .join(cv, cv.c.connection_id == t.connection.c.id)
            .order_by(t.connection.c.id, cv.c.valid_from)
        )
        return [
            MeterIndexEntry(
                r.id,
                r.ean,
                Commodity(r.commodity),
                r.valid_from,
                r.valid_to,
                r.capacity,
                r.meter_type,
                r.status,
            )
            for r in self._conn.execute(query)
        ]

    def _version(self, ean: str, commodity: Commodity, row: Row[Any]) -> ConnectionVersion:
        return ConnectionVersion(
            ean=ean,
            commodity=commodity,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            attributes=_row_to_attributes(row, commodity, self.rules.classes),
        )

    # -- allocation points ----------------------------------------------------------

    def _point(self, ean: str, commodity: Commodity | None = None) -> _Point:
        query = (
            select(
                t.allocation_point.c.id,
                t.allocation_point.c.kind,
                t.allocation_point.c.connection_id,
                t.connection.c.commodity,
                t.connection.c.ean.label("primary_ean"),
            )
            .join(t.connection, t.connection.c.id == t.allocation_point.c.connection_id)
            .where(t.allocation_point.c.ean == ean)
        )
        if commodity is not None:
            query = query.where(t.connection.c.commodity == commodity.value)
        rows = self._conn.execute(query).all()
        if not rows:
            finding = Finding("REG-2.unknown", f"no allocation point with EAN {ean}")
            raise RegisterError(finding.message, [finding])
        if len(rows) > 1:
            finding = Finding(
                "REG-2.ambiguous",
                f"EAN {ean} is both an electricity and a gas connection; say which commodity",
            )
            raise RegisterError(finding.message, [finding])
        row = rows[0]
        return _Point(
            id=row.id,
            ean=ean,
            kind=AllocationPointKind(row.kind),
            connection_id=row.connection_id,
            commodity=Commodity(row.commodity),
            primary_ean=row.primary_ean,
        )

    def point_kinds(self, ean: str) -> set[AllocationPointKind]:
        """The kinds of allocation point that carry ``ean`` (empty when unknown)."""
        rows = self._conn.execute(
            select(t.allocation_point.c.kind).where(t.allocation_point.c.ean == ean)
        ).scalars()
        return {AllocationPointKind(k) for k in rows}

    def primary_of(self, ean: str) -> str:
        """The EAN of the connection (primary point) that ``ean`` belongs to."""
        return self._point(ean).primary_ean

    def _sap_status(self, point_id: int, on: date) -> SapStatus | None:
        status = self._conn.execute(
            select(t.allocation_point_status.c.status).where(
                t.allocation_point_status.c.allocation_point_id == point_id,
                holds_on(t.allocation_point_status, on),
            )
        ).scalar()
        return None if status is None else SapStatus(status)

    def _point_in_service(self, point: _Point, on: date) -> bool:
        if point.kind is AllocationPointKind.SECONDARY:
            return self._sap_status(point.id, on) is SapStatus.IN_SERVICE
        version = self.connection_at(point.ean, on, point.commodity)
        return version is not None and version.attributes.in_service

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

    def _lapse_secondaries(self, connection_id: int, on: date) -> None:
        """Every SAP still active on ``on`` lapses from ``on`` for good (REG-5)."""
        point_ids = self._conn.execute(
            select(t.allocation_point.c.id).where(
                t.allocation_point.c.connection_id == connection_id,
                t.allocation_point.c.kind == AllocationPointKind.SECONDARY.value,
            )
        ).scalars()
        for point_id in point_ids:
            if self._sap_status(point_id, on) not in ACTIVE_SAP_STATUSES:
                continue
            status = t.allocation_point_status
            self._conn.execute(
                delete(status).where(
                    status.c.allocation_point_id == point_id, status.c.valid_from > on
                )
            )
            self._put_version(
                status, "allocation_point_id", point_id, on, {"status": SapStatus.LAPSED.value}
            )
            self._conn.execute(
                update(status)
                .where(status.c.allocation_point_id == point_id, status.c.valid_from == on)
                .values(valid_to=None)
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

    def next_ean(self) -> str:
        """A new, never used EAN from the operator's prefix (REG-1, Netcode art. 2.4)."""
        prefix = self.rules.ean_prefix
        seq = t.ean_sequence
        serial = self._conn.execute(
            select(seq.c.next_serial).where(seq.c.prefix == prefix).with_for_update()
        ).scalar()
        if serial is None:
            serial = 1
            self._conn.execute(insert(seq).values(prefix=prefix, next_serial=serial))
        while True:
            ean = ean_from_serial(prefix, serial)
            serial += 1
            used = self._conn.execute(
                select(t.allocation_point.c.id).where(t.allocation_point.c.ean == ean)
            ).first()
            if used is None:
                break
        self._conn.execute(update(seq).where(seq.c.prefix == prefix).values(next_serial=serial))
        return ean

    # -- contracts ------------------------------------------------------------------

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

    def contracts(self, ean: str, commodity: Commodity | None = None) -> list[SupplyContract]:
        """The point's contracts, oldest first."""
        point = self._point(ean, commodity)
        rows = self._conn.execute(
            select(t.supply_contract)
            .where(t.supply_contract.c.allocation_point_id == point.id)
            .order_by(t.supply_contract.c.start_date)
        )
        return [_row_to_contract(ean, r) for r in rows]

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
            yield _row_to_contract(row.ean, row), Commodity(row.commodity)

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

    # -- quarantine -----------------------------------------------------------------

    def quarantine(self, source: str, line: int, record: str, finding: Finding) -> None:
        """Keep a refused import record with its reason (nothing is lost)."""
        self._insert_id(
            insert(t.import_quarantine).values(
                source=source,
                line=line,
                record=record,
                rule=finding.rule,
                message=finding.message,
                recorded_at=datetime.now(UTC),
            )
        )

    def quarantined(self) -> list[QuarantinedRecord]:
        """Every quarantined import record, oldest first."""
        q = t.import_quarantine
        rows = self._conn.execute(select(q).order_by(q.c.id))
        return [QuarantinedRecord(r.source, r.line, r.record, r.rule, r.message) for r in rows]


def _attributes_to_row(attrs: ConnectionAttributes) -> dict[str, Any]:
    postcode = normalise_postcode(attrs.address.postcode)
    return {
        "capacity": str(attrs.capacity),
        "status": attrs.status.value,
        "admin_switch": attrs.admin_switch.value,
        "meter_type": attrs.meter_type.value,
        "remote_reading": attrs.remote_reading.value,
        "postcode": postcode if isinstance(postcode, str) else attrs.address.postcode,
        "house_number": attrs.address.house_number,
        "house_number_suffix": attrs.address.house_number_suffix,
        "street": attrs.address.street,
        "city": attrs.address.city,
        "municipality": attrs.address.municipality,
        "woz_object_id": attrs.address.woz_object_id,
        "substation": attrs.grid.substation,
        "feeder": attrs.grid.feeder,
        "phase": attrs.grid.phase.value if attrs.grid.phase else None,
        "customer_type": attrs.customer_type.value,
        "active_customer": attrs.active_customer,
        "solar_kwp": attrs.solar_kwp,
        "solar_registered_on": attrs.solar_registered_on,
    }


def _row_to_attributes(
    row: Row[Any], commodity: Commodity, classes: CapacityClasses
) -> ConnectionAttributes:
    capacity = parse_capacity(commodity, row.capacity, classes)
    if isinstance(capacity, Finding):  # stored values were checked on the way in
        raise RegisterError(f"stored capacity {row.capacity!r} no longer parses", [capacity])
    return ConnectionAttributes(
        capacity=capacity,
        status=PhysicalStatus(row.status),
        admin_switch=AdminSwitch(row.admin_switch),
        meter_type=MeterType(row.meter_type),
        remote_reading=RemoteReading(row.remote_reading),
        address=Address(
            postcode=row.postcode,
            house_number=row.house_number,
            house_number_suffix=row.house_number_suffix,
            street=row.street,
            city=row.city,
            municipality=row.municipality,
            woz_object_id=row.woz_object_id,
        ),
        grid=GridPosition(
            substation=row.substation,
            feeder=row.feeder,
            phase=Phase(row.phase) if row.phase else None,
        ),
        customer_type=CustomerType(row.customer_type),
        active_customer=bool(row.active_customer),
        solar_kwp=row.solar_kwp,
        solar_registered_on=row.solar_registered_on,
    )


def _row_to_contract(ean: str, row: Row[Any]) -> SupplyContract:
    return SupplyContract(
        allocation_point_ean=ean,
        supplier=row.supplier,
        contract_holder=row.contract_holder,
        contract_type=ContractType(row.contract_type),
        tariff=TariffKind(row.tariff),
        start=row.start_date,
        end=row.end_date,
    )
