"""The register's read API for the packages above it (the privacy gate, the use cases).

Two doors, both read-only:

- batched fact queries on an open transaction (``facts_on``,
  ``facts_with_grants_during``, ``primary_contracts``, ``given_consents``, ``areas_on``,
  ``dynamic_on``, ``smart_on``): what the privacy gate needs to decide a request
  (PRV-1..4) and to place a contribution in its disclosure cell (PRV-6), a fixed
  number of queries whatever the number of connections (the gate's own are
  statements built once, so SQLAlchemy compiles them once, and
  ``facts_with_grants_during`` brings every version of a connection in the requested
  period and its earlier grants in one query);
- :class:`RegisterView`: what a use case may see of the register (the connections and
  their grid position on a day, the contract holder to pay), without a session it
  could write through.

"Valid on D" is :func:`meetpunt.register.validity.holds_on` everywhere (REG-6).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any, Literal

from sqlalchemy import ARRAY, Connection, Date, Select, String, and_, any_, bindparam, select

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
from meetpunt.register.validity import contract_holds_on, holds_on, overlaps

AREA_LEVELS = ("street", "pc6", "pc4", "pc3", "municipality")
"""The disclosure levels an address is placed at, finest first (PRV-6)."""
GRID_LEVELS = ("feeder", "substation")
"""The grid's own disclosure levels, finest first (PRV-6)."""


@dataclass(frozen=True)
class ConnectionState:
    """An electricity connection as it stood on one day: its key and the states the
    privacy rules look at (in service, administrative switch, remote reading opt-out)."""

    connection_id: int
    ean: str
    status: PhysicalStatus
    admin_switch: AdminSwitch
    remote_reading: RemoteReading
    valid_from: date | None = None
    valid_to: date | None = None


@dataclass(frozen=True)
class ContractRow:
    """A supply contract on a connection's primary allocation point (REG-6)."""

    connection_id: int
    supplier: str
    holder: str
    start: date
    end: date | None


@dataclass(frozen=True)
class GrantRow:
    """An earlier grant for one connection as ``privacy_grant`` stores it (times as the
    engine returns them: aware on PostgreSQL, naive UTC on SQLite; ``kinds`` the stored
    JSON list)."""

    connection_id: int
    purpose: str
    start: datetime
    end: datetime
    kinds: str
    audit_seq: int = 0


GrantScope = Literal["none", "purpose", "all"]
"""Which earlier grants :func:`facts_with_grants_on` brings along: none, those of one
purpose, or those of every purpose."""


@dataclass(frozen=True)
class Facts:
    """What :func:`facts_with_grants_during` found: the connections by EAN (``states``:
    the first version in the period; ``versions``: every version overlapping it, in
    order), and the earlier grants by connection id (only connections with grants have
    an entry)."""

    states: dict[str, ConnectionState]
    grants: dict[int, list[GrantRow]]
    versions: dict[str, list[ConnectionState]] = field(default_factory=dict)


@cache
def facts_select(grants: GrantScope = "none", array: bool = False) -> Select[Any]:
    """The one statement behind :func:`facts_on` and :func:`facts_with_grants_during`,
    built once so SQLAlchemy compiles it once: bound parameters ``eans``, ``commodity``,
    ``first`` and ``last`` (every version holding on a day from ``first`` to ``last``) and, for
    ``grants="purpose"``, ``purpose``. The grants come by an outer join, one row per grant
    and version (columns ``id``, ``purpose``, ``period_start``, ``period_end``, ``kinds``,
    ``audit_seq`` after the state and its ``valid_from``, ``valid_to``). ``array`` matches
    the EANs with ``= ANY(:eans)`` (PostgreSQL: one statement text for any number of
    EANs, for drivers called directly) instead of ``IN``."""
    c, cv, g = t.connection, t.connection_version, t.privacy_grant
    columns: list[Any] = [
        c.c.id,
        c.c.ean,
        cv.c.status,
        cv.c.admin_switch,
        cv.c.remote_reading,
        cv.c.valid_from,
        cv.c.valid_to,
    ]
    joined = c.join(cv, cv.c.connection_id == c.c.id)
    if grants != "none":
        on = g.c.connection_id == c.c.id
        if grants == "purpose":
            on = and_(on, g.c.purpose == bindparam("purpose", type_=String))
        joined = joined.outerjoin(g, on)
        columns += [
            g.c.id,
            g.c.purpose,
            g.c.period_start,
            g.c.period_end,
            g.c.kinds,
            g.c.audit_seq,
        ]
    eans = (
        c.c.ean == any_(bindparam("eans", type_=ARRAY(String)))
        if array
        else c.c.ean.in_(bindparam("eans", expanding=True))
    )
    return (
        select(*columns)
        .select_from(joined)
        .where(
            eans,
            c.c.commodity == bindparam("commodity", type_=String),
            overlaps(cv, bindparam("first", type_=Date), bindparam("last", type_=Date)),
        )
    )


def facts_params(
    eans: Sequence[str],
    first: date,
    last: date | None = None,
    purpose: str | None = None,
    commodity: Commodity = Commodity.ELECTRICITY,
) -> dict[str, Any]:
    """The parameters of :func:`facts_select` (``last`` defaults to ``first``; the
    connections of ``commodity``, electricity unless a request reads gas kinds)."""
    params: dict[str, Any] = {
        "eans": list(eans),
        "first": first,
        "last": last or first,
        "commodity": commodity.value,
    }
    if purpose is not None:
        params["purpose"] = purpose
    return params


def facts_from_rows(rows: Iterable[Sequence[Any]]) -> Facts:
    """:class:`Facts` from the rows of :func:`facts_select` (a grant met once per
    version counts once)."""
    versions: dict[str, dict[date, ConnectionState]] = {}
    grants: dict[int, dict[int, GrantRow]] = {}
    for row in rows:
        cid, ean = row[0], row[1]
        mine = versions.setdefault(ean, {})
        if row[5] not in mine:
            mine[row[5]] = ConnectionState(
                cid,
                ean,
                PhysicalStatus(row[2]),
                AdminSwitch(row[3]),
                RemoteReading(row[4]),
                row[5],
                row[6],
            )
        if len(row) > 7 and row[7] is not None:
            grants.setdefault(cid, {})[row[7]] = GrantRow(
                cid, row[8], row[9], row[10], row[11], row[12]
            )
    ordered = {
        ean: sorted(found.values(), key=lambda v: v.valid_from or date.min)
        for ean, found in versions.items()
    }
    return Facts(
        {ean: found[0] for ean, found in ordered.items()},
        {cid: list(found.values()) for cid, found in grants.items()},
        ordered,
    )


def facts_with_grants_during(
    db: Connection,
    eans: Sequence[str],
    first: date,
    last: date,
    grants: GrantScope = "none",
    purpose: str | None = None,
    commodity: Commodity = Commodity.ELECTRICITY,
) -> Facts:
    """The connections of ``commodity`` (electricity unless said) among ``eans`` that
    exist on some day from ``first`` to ``last`` with every version overlapping those
    days and, as ``grants`` says, their earlier grants (of ``purpose``, or of every
    purpose). One query, whatever the number of connections and days."""
    if grants == "purpose" and purpose is None:
        raise ValueError("grants='purpose' needs the purpose")
    params: Mapping[str, Any] = facts_params(
        eans, first, last, purpose if grants == "purpose" else None, commodity
    )
    return facts_from_rows(db.execute(facts_select(grants), params))


def facts_with_grants_on(
    db: Connection,
    eans: Sequence[str],
    day: date,
    grants: GrantScope = "none",
    purpose: str | None = None,
) -> Facts:
    """:func:`facts_with_grants_during` for one day. One query."""
    return facts_with_grants_during(db, eans, day, day, grants, purpose)


def facts_on(db: Connection, eans: Sequence[str], day: date) -> dict[str, ConnectionState]:
    """The electricity connections among ``eans`` that exist on ``day``, by EAN; an EAN
    the register does not know on that day is absent. One query."""
    return facts_with_grants_on(db, eans, day).states


def connection_ids(db: Connection, eans: Sequence[str]) -> dict[str, int]:
    """The register ids of the electricity connections among ``eans`` (whatever their
    state), by EAN; an EAN the register does not know is absent. One query."""
    c = t.connection
    rows = db.execute(
        select(c.c.ean, c.c.id).where(
            c.c.ean.in_(list(eans)), c.c.commodity == Commodity.ELECTRICITY.value
        )
    )
    return {ean: int(cid) for ean, cid in rows}


def primary_contracts(db: Connection, ids: Sequence[int]) -> dict[int, list[ContractRow]]:
    """Every supply contract (past, present and future) on the primary allocation point
    of each connection in ``ids``. One query."""
    if not ids:
        return {}
    out: dict[int, list[ContractRow]] = {}
    for cid, supplier, holder, start, end in db.execute(_PRIMARY_CONTRACTS, {"ids": list(ids)}):
        out.setdefault(cid, []).append(ContractRow(cid, supplier, holder, start, end))
    return out


_PRIMARY_CONTRACTS = (
    select(
        t.allocation_point.c.connection_id,
        t.supply_contract.c.supplier,
        t.supply_contract.c.contract_holder,
        t.supply_contract.c.start_date,
        t.supply_contract.c.end_date,
    )
    .join(t.supply_contract, t.supply_contract.c.allocation_point_id == t.allocation_point.c.id)
    .where(
        t.allocation_point.c.connection_id.in_(bindparam("ids", expanding=True)),
        t.allocation_point.c.kind == "primary",
    )
)


@dataclass(frozen=True)
class ConsentRow:
    """A given consent as the gate needs it (PRV-4): kinds as stored (JSON), validity
    and times as the engine returns them."""

    connection_id: int
    kinds: str
    valid_from: datetime
    valid_to: datetime
    given_by: str
    created_at: datetime


_GIVEN_CONSENTS = select(
    t.consent.c.connection_id,
    t.consent.c.kinds,
    t.consent.c.valid_from,
    t.consent.c.valid_to,
    t.consent.c.given_by,
    t.consent.c.created_at,
).where(
    t.consent.c.party == bindparam("party"),
    t.consent.c.purpose == bindparam("purpose"),
    t.consent.c.state == "given",
    t.consent.c.connection_id.in_(bindparam("ids", expanding=True)),
)


def given_consents(
    db: Connection, party: str, purpose: str, ids: Sequence[int]
) -> dict[int, list[ConsentRow]]:
    """The consents in state ``given`` of ``party`` for ``purpose`` on each connection
    in ``ids``. One query."""
    if not ids:
        return {}
    out: dict[int, list[ConsentRow]] = {}
    params = {"party": party, "purpose": purpose, "ids": list(ids)}
    for row in db.execute(_GIVEN_CONSENTS, params):
        out.setdefault(row[0], []).append(ConsentRow(*row))
    return out


def areas_on(db: Connection, ids: Sequence[int], day: date) -> dict[int, dict[str, str]]:
    """Each connection's area at every disclosure level (``AREA_LEVELS`` and
    ``GRID_LEVELS``) from its address and grid position on ``day`` (PRV-6). One query."""
    if not ids:
        return {}
    cv = t.connection_version
    rows = db.execute(
        select(
            cv.c.connection_id,
            cv.c.postcode,
            cv.c.street,
            cv.c.municipality,
            cv.c.substation,
            cv.c.feeder,
        ).where(cv.c.connection_id.in_(list(ids)), holds_on(cv, day))
    )
    return {
        r.connection_id: _areas(r.postcode, r.street, r.municipality, r.substation, r.feeder)
        for r in rows
    }


@dataclass(frozen=True)
class AreaMember:
    """An electricity connection in a disclosure area on one day: its areas at every
    level (``AREA_LEVELS`` and ``GRID_LEVELS``) and whether its customer switched remote
    reading off administratively (PRV-3)."""

    connection_id: int
    areas: dict[str, str]
    opted_out: bool


def _areas(
    postcode: str, street: str, municipality: str, substation: str, feeder: str
) -> dict[str, str]:
    return {
        "street": f"{postcode[:4]}:{street}",
        "pc6": postcode,
        "pc4": postcode[:4],
        "pc3": postcode[:3],
        "municipality": municipality,
        "feeder": f"{substation}/{feeder}",
        "substation": substation,
    }


def members_on(
    db: Connection, level: str, areas: Iterable[str], day: date
) -> dict[int, AreaMember]:
    """Every electricity connection whose area at ``level`` is one of ``areas`` on
    ``day``: the fixed membership of disclosure cells (PRV-6.fixed_cells). One query."""
    wanted = set(areas)
    if level not in AREA_LEVELS + GRID_LEVELS:
        raise ValueError(f"unknown area level {level!r}")
    c, cv = t.connection, t.connection_version
    query = (
        select(
            cv.c.connection_id,
            cv.c.postcode,
            cv.c.street,
            cv.c.municipality,
            cv.c.substation,
            cv.c.feeder,
            cv.c.remote_reading,
        )
        .join(c, c.c.id == cv.c.connection_id)
        .where(c.c.commodity == Commodity.ELECTRICITY.value, holds_on(cv, day))
    )
    out: dict[int, AreaMember] = {}
    for r in db.execute(query):
        found = _areas(r.postcode, r.street, r.municipality, r.substation, r.feeder)
        if found[level] in wanted:
            opted = r.remote_reading == RemoteReading.ADMINISTRATIVELY_OFF.value
            out[r.connection_id] = AreaMember(r.connection_id, found, opted)
    return out


def grants_of(db: Connection, ids: Sequence[int]) -> dict[int, list[GrantRow]]:
    """Every grant ever given for the connections in ``ids`` (any purpose), by
    connection: which data was read before (UC11, UC13 ``already_read``). One query."""
    if not ids:
        return {}
    g = t.privacy_grant
    out: dict[int, list[GrantRow]] = {}
    rows = db.execute(
        select(g.c.connection_id, g.c.purpose, g.c.period_start, g.c.period_end, g.c.kinds).where(
            g.c.connection_id.in_(list(ids))
        )
    )
    for r in rows:
        out.setdefault(r[0], []).append(GrantRow(r[0], r[1], r[2], r[3], r[4]))
    return out


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

    def gis_confirmed(self, on: date) -> set[str]:
        """The EANs whose grid position on ``on`` is a person-confirmed GIS correction
        (UC7 applied, :func:`meetpunt.register.gis.confirmed_on`)."""
        from meetpunt.register.gis import confirmed_on

        with self._register.session() as session:
            return confirmed_on(session, on)

    def contract_holders(
        self, wanted: Sequence[tuple[str, date]], commodity: Commodity = Commodity.ELECTRICITY
    ) -> dict[tuple[str, date], SupplyContract | None]:
        """The contract in force for each ``(ean, day)`` (whom to pay, MKT-8); ``None``
        where the connection was contractless that day."""
        with self._register.session() as session:
            return {(ean, on): session.contract_on(ean, on, commodity) for ean, on in wanted}

    def contracted_on(self, on: date, commodity: Commodity = Commodity.ELECTRICITY) -> set[str]:
        """The EANs whose primary allocation point has a supply contract in force on
        ``on`` (UC8, UC15: every other connection is contractless that day). One query."""
        ap, sc, c = t.allocation_point, t.supply_contract, t.connection
        query = (
            select(c.c.ean)
            .join(ap, ap.c.connection_id == c.c.id)
            .join(sc, sc.c.allocation_point_id == ap.c.id)
            .where(
                c.c.commodity == commodity.value,
                ap.c.kind == "primary",
                sc.c.start_date <= on,
                (sc.c.end_date.is_(None)) | (sc.c.end_date > on),
            )
        )
        with self._register.session() as session:
            return {str(r[0]) for r in session.db.execute(query)}

    def states_on(
        self, on: date, commodity: Commodity = Commodity.ELECTRICITY
    ) -> dict[str, tuple[str, str, str, str]]:
        """Each connection's ``(status, admin_switch, meter_type, capacity)`` as the
        register writes them on ``on``, without building whole versions (UC10, UC15 ask
        this for every day of a month). One query."""
        c, v = t.connection, t.connection_version
        query = (
            select(c.c.ean, v.c.status, v.c.admin_switch, v.c.meter_type, v.c.capacity)
            .join(v, v.c.connection_id == c.c.id)
            .where(
                c.c.commodity == commodity.value,
                v.c.valid_from <= on,
                (v.c.valid_to.is_(None)) | (v.c.valid_to > on),
            )
        )
        with self._register.session() as session:
            return {
                str(r[0]): (str(r[1]), str(r[2]), str(r[3]), str(r[4]))
                for r in session.db.execute(query)
            }
