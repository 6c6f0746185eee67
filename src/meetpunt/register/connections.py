"""Connections and their timelines (REG-2..4, REG-6..8).

A connection is an EAN and a commodity; its state (capacity, status, address, grid
position, customer, solar) is a timeline of versions, each valid from ``valid_from``
until the next one. Recording a connection also opens its primary allocation point,
and taking it out of service lapses its secondary points (REG-5).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Numeric, Row, String, delete, insert, select, update

from meetpunt.domain.allocation import ACTIVE_SAP_STATUSES, AllocationPointKind, SapStatus
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
from meetpunt.domain.customer import CustomerType
from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError
from meetpunt.register import schema as t
from meetpunt.register.base import ChangeOutcome, SessionBase
from meetpunt.register.validity import holds_on

OUT_OF_SERVICE = frozenset({PhysicalStatus.OUT_OF_SERVICE, PhysicalStatus.DEMOLISHED})


def sap_clash(ean: str) -> Finding:
    """REG-1.unique: a connection EAN already given to a secondary allocation point."""
    return Finding(
        "REG-1.unique",
        f"EAN {ean} already belongs to a secondary allocation point; EANs are never reused",
    )


class ConnectionTimelines(SessionBase):
    """Recording and reading connection versions."""

    def record_connection(
        self, ean: str, commodity: Commodity, attributes: ConnectionAttributes, valid_from: date
    ) -> ChangeOutcome:
        """Record the connection's state from ``valid_from`` on (REG-2..4, REG-6..8).

        Creates the connection and its primary allocation point on first sight. When the
        new state is out of service or demolished, the connection's secondary points lapse
        on the same date (REG-5).
        """
        findings = check_connection(ean, commodity, attributes)
        if not findings:
            stored = _storage_finding(attributes)
            findings = [stored] if stored is not None else []
        if findings:
            raise RegisterError(f"connection {ean} refused: {findings[0].message}", findings)
        clash = self._conn.execute(
            select(t.allocation_point.c.id).where(
                t.allocation_point.c.ean == ean,
                t.allocation_point.c.kind == AllocationPointKind.SECONDARY.value,
            )
        ).first()
        if clash is not None:
            finding = sap_clash(ean)
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
            point = primary_point_row(ean, connection_id)
            self._insert_id(insert(t.allocation_point).values(point))
        outcome = self._put_version(
            t.connection_version,
            "connection_id",
            connection_id,
            valid_from,
            attributes_to_row(attributes),
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

    def _version(self, ean: str, commodity: Commodity, row: Row[Any]) -> ConnectionVersion:
        return ConnectionVersion(
            ean=ean,
            commodity=commodity,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            attributes=row_to_attributes(row, commodity, self.rules.classes),
        )

    def _lapse_secondaries(self, connection_id: int, on: date) -> None:
        """Every SAP still active on ``on`` lapses from ``on`` for good (REG-5).

        The connection's side of REG-5: it runs whenever a version out of service or
        demolished is recorded (the rest of REG-5 is in :mod:`.allocation`).
        """
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


def primary_point_row(ean: str, connection_id: int) -> dict[str, Any]:
    """The primary allocation point a new connection gets: it shares the EAN (REG-5)."""
    return {
        "ean": ean,
        "connection_id": connection_id,
        "kind": AllocationPointKind.PRIMARY.value,
        "capacity": None,
        "purpose": "",
        "requested_on": None,
    }


_VERSION_COLUMNS = [
    c
    for c in t.connection_version.columns
    if c.name not in ("id", "connection_id", "valid_from", "valid_to")
]
_TEXT_LENGTHS = tuple(
    (c.name, c.type.length or 0) for c in _VERSION_COLUMNS if isinstance(c.type, String)
)
_INTEGERS = tuple(c.name for c in _VERSION_COLUMNS if isinstance(c.type, Integer))
_INTEGER_RANGE = range(-(2**31), 2**31)  # the narrowest Integer of the engines (PostgreSQL)
_NUMERICS = tuple(
    (c.name, c.type.scale or 0, c.type.precision)
    for c in _VERSION_COLUMNS
    if isinstance(c.type, Numeric)
)


def _storage_finding(attributes: ConnectionAttributes) -> Finding | None:
    return storage_finding(attributes_to_row(attributes))


def storage_finding(row: dict[str, Any]) -> Finding | None:
    """Why a database could refuse the ``connection_version`` values ``row`` (as
    :func:`attributes_to_row` gives them), or None. Checked before any write, so SQLite,
    which stores any text length or integer, refuses the same rows with the same rule
    as PostgreSQL: REG-import.too_long (text wider than its column),
    REG-import.control_character (a NUL byte), REG-import.out_of_range (a number the
    column cannot hold)."""
    for name, length in _TEXT_LENGTHS:
        text = row[name]
        if text is None:
            continue
        if "\0" in text:
            return Finding(
                "REG-import.control_character",
                f"{name} has a NUL character; remove it (is the file binary or UTF-16?)",
            )
        if length and len(text) > length:
            return Finding(
                "REG-import.too_long",
                f"{name} has {len(text)} characters ({text[:40]!r}...); the register keeps "
                f"at most {length}: shorten it",
            )
    for name in _INTEGERS:
        if row[name] is not None and row[name] not in _INTEGER_RANGE:
            return Finding("REG-import.out_of_range", f"{name} {row[name]} is out of range")
    for name, scale, precision in _NUMERICS:
        number: Decimal | None = row[name]
        if number is None:
            continue
        exponent = number.as_tuple().exponent
        if (
            not number.is_finite()
            or (isinstance(exponent, int) and exponent < -scale)
            or (precision is not None and number != 0 and number.adjusted() >= precision - scale)
        ):
            return Finding(
                "REG-import.out_of_range",
                f"{name} {number} does not fit: below 10^{(precision or 0) - scale}, "
                f"at most {scale} decimals",
            )
    return None


def attributes_to_row(attrs: ConnectionAttributes) -> dict[str, Any]:
    """A connection state as the values of a ``connection_version`` row."""
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


def row_to_attributes(
    row: Row[Any], commodity: Commodity, classes: CapacityClasses
) -> ConnectionAttributes:
    """A ``connection_version`` row back as a connection state."""
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
