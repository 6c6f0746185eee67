"""The register's read API for the packages above it (the privacy gate, the use cases).

Two doors, both read-only:

- batched fact queries on an open transaction (``facts_on``, ``primary_contracts``,
  ``areas_on``, ``dynamic_on``, ``smart_on``): what the privacy gate needs to decide a
  request (PRV-1..4) and to place a contribution in its disclosure cell (PRV-6), a
  fixed number of queries whatever the number of connections;
- :class:`RegisterView`: what a use case may see of the register (the connections and
  their grid position on a day, the contract holder to pay), without a session it
  could write through.

"Valid on D" is :func:`meetpunt.register.validity.holds_on` everywhere (REG-6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, select

from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import (
    AdminSwitch,
    ConnectionVersion,
    MeterType,
    PhysicalStatus,
    RemoteReading,
)
from meetpunt.domain.contract import SupplyContract
from meetpunt.register import schema as t
from meetpunt.register.store import Register
from meetpunt.register.validity import contract_holds_on, holds_on

AREA_LEVELS = ("street", "pc6", "pc4", "pc3", "municipality")
"""The disclosure levels an address is placed at, finest first (PRV-6)."""


@dataclass(frozen=True)
class ConnectionState:
    """An electricity connection as it stood on one day: its key and the states the
    privacy rules look at (in service, administrative switch, remote reading opt-out)."""

    connection_id: int
    ean: str
    status: PhysicalStatus
    admin_switch: AdminSwitch
    remote_reading: RemoteReading


@dataclass(frozen=True)
class ContractRow:
    """A supply contract on a connection's primary allocation point (REG-6)."""

    connection_id: int
    supplier: str
    holder: str
    start: date
    end: date | None


def facts_on(db: Connection, eans: Sequence[str], day: date) -> dict[str, ConnectionState]:
    """The electricity connections among ``eans`` that exist on ``day``, by EAN; an EAN
    the register does not know on that day is absent. One query."""
    cv = t.connection_version
    rows = db.execute(
        select(
            t.connection.c.id,
            t.connection.c.ean,
            cv.c.status,
            cv.c.admin_switch,
            cv.c.remote_reading,
        )
        .join(cv, cv.c.connection_id == t.connection.c.id)
        .where(
            t.connection.c.ean.in_(list(eans)),
            t.connection.c.commodity == Commodity.ELECTRICITY.value,
            holds_on(cv, day),
        )
    )
    return {
        r.ean: ConnectionState(
            r.id,
            r.ean,
            PhysicalStatus(r.status),
            AdminSwitch(r.admin_switch),
            RemoteReading(r.remote_reading),
        )
        for r in rows
    }


def primary_contracts(db: Connection, ids: Sequence[int]) -> dict[int, list[ContractRow]]:
    """Every supply contract (past, present and future) on the primary allocation point
    of each connection in ``ids``. One query."""
    if not ids:
        return {}
    ap, sc = t.allocation_point, t.supply_contract
    out: dict[int, list[ContractRow]] = {}
    for r in db.execute(
        select(
            ap.c.connection_id, sc.c.supplier, sc.c.contract_holder, sc.c.start_date, sc.c.end_date
        )
        .join(sc, sc.c.allocation_point_id == ap.c.id)
        .where(ap.c.connection_id.in_(list(ids)), ap.c.kind == "primary")
    ):
        out.setdefault(r.connection_id, []).append(
            ContractRow(r.connection_id, r.supplier, r.contract_holder, r.start_date, r.end_date)
        )
    return out


def areas_on(db: Connection, ids: Sequence[int], day: date) -> dict[int, dict[str, str]]:
    """Each connection's area at every disclosure level (``AREA_LEVELS``) from its
    address on ``day`` (PRV-6). One query."""
    if not ids:
        return {}
    cv = t.connection_version
    rows = db.execute(
        select(cv.c.connection_id, cv.c.postcode, cv.c.street, cv.c.municipality).where(
            cv.c.connection_id.in_(list(ids)), holds_on(cv, day)
        )
    )
    return {
        r.connection_id: {
            "street": f"{r.postcode[:4]}:{r.street}",
            "pc6": r.postcode,
            "pc4": r.postcode[:4],
            "pc3": r.postcode[:3],
            "municipality": r.municipality,
        }
        for r in rows
    }


def dynamic_on(db: Connection, ids: Sequence[int], day: date) -> dict[int, bool]:
    """Whether each connection's contract in force on ``day`` is dynamic (UC14). One
    query; a connection without a contract that day is absent."""
    if not ids:
        return {}
    ap, sc = t.allocation_point, t.supply_contract
    rows = db.execute(
        select(ap.c.connection_id, sc.c.contract_type)
        .join(sc, sc.c.allocation_point_id == ap.c.id)
        .where(
            ap.c.connection_id.in_(list(ids)),
            ap.c.kind == "primary",
            contract_holds_on(sc, day),
        )
    )
    return {r.connection_id: r.contract_type == "dynamic" for r in rows}


def smart_on(db: Connection, ids: Sequence[int], day: date) -> set[int]:
    """The connections among ``ids`` with a smart meter on ``day`` (a traditional meter
    cannot be asked anything remotely). One query."""
    if not ids:
        return set()
    cv = t.connection_version
    return {
        r.connection_id
        for r in db.execute(
            select(cv.c.connection_id).where(
                cv.c.connection_id.in_(list(ids)),
                cv.c.meter_type == MeterType.SMART.value,
                holds_on(cv, day),
            )
        )
    }


class RegisterView:
    """What a use case may see of the register: read-only, one short transaction per
    question, no access to the session (and so none to the gate's own tables)."""

    def __init__(self, register: Register) -> None:
        self._register = register

    def connection_versions(self, on: date) -> list[ConnectionVersion]:
        """Every connection version holding on ``on`` (grid position, address, meter
        type, status), by EAN and commodity."""
        with self._register.session() as session:
            return list(session.connection_versions(on))

    def contract_holders(
        self, wanted: Sequence[tuple[str, date]], commodity: Commodity = Commodity.ELECTRICITY
    ) -> dict[tuple[str, date], SupplyContract | None]:
        """The contract in force for each ``(ean, day)`` (whom to pay, MKT-8); ``None``
        where the connection was contractless that day."""
        with self._register.session() as session:
            return {(ean, on): session.contract_on(ean, on, commodity) for ean, on in wanted}
