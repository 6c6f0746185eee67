"""What every part of a register session shares (REG-1, REG-2, REG-6).

:class:`SessionBase` holds the transaction and the rules, and the few operations all
concerns use: writing a version onto a validity-interval timeline (REG-6), and
finding a connection or an allocation point by its EAN (REG-1, REG-2). The concerns
themselves live next door (see :mod:`meetpunt.register.store` for the map).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Insert, Table, insert, select, update

from meetpunt import rulebook
from meetpunt.domain.allocation import AllocationPointKind, SapRules, SapStatus
from meetpunt.domain.capacity import CapacityClasses, Commodity
from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError
from meetpunt.register import schema as t
from meetpunt.register.validity import holds_on

DEFAULT_EAN_PREFIX = "87123450"


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
class _Point:
    """An allocation point found by EAN, with its connection's key and commodity."""

    id: int
    ean: str
    kind: AllocationPointKind
    connection_id: int
    commodity: Commodity
    primary_ean: str


def ambiguous(ean: str) -> RegisterError:
    """REG-2.ambiguous: an EAN that is both electricity and gas, asked without commodity."""
    finding = Finding(
        "REG-2.ambiguous",
        f"EAN {ean} is both an electricity and a gas connection; say which commodity",
    )
    return RegisterError(finding.message, [finding])


class SessionBase:
    """The transaction, the rules, the timeline write and the EAN lookups."""

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

    # -- timelines (REG-6) ----------------------------------------------------------

    def _put_version(
        self, table: Table, key: str, key_value: int, valid_from: date, values: Mapping[str, Any]
    ) -> ChangeOutcome:
        """Record ``values`` as true from ``valid_from`` until the next recorded version.

        Every recorded date stays a boundary: the same values recorded again on the same
        date change nothing; recorded on a new date they open a version of their own.
        (The import's batch path, :mod:`meetpunt.register.bulk`, applies the same rule
        in memory; keep the two in step.)
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

    # -- lookups by EAN (REG-1, REG-2) ------------------------------------------------

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
            raise ambiguous(ean)
        return found[0]

    def connection_id(self, ean: str, commodity: Commodity | None = None) -> int:
        """The connection's internal id (the hub's key, design rule 5); REG-2.unknown."""
        return self._connection_id(ean, commodity)[0]

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
            raise ambiguous(ean)
        row = rows[0]
        return _Point(
            id=row.id,
            ean=ean,
            kind=AllocationPointKind(row.kind),
            connection_id=row.connection_id,
            commodity=Commodity(row.commodity),
            primary_ean=row.primary_ean,
        )

    def _sap_status(self, point_id: int, on: date) -> SapStatus | None:
        """The secondary point's status on ``on``; ``None`` before it was granted."""
        status = self._conn.execute(
            select(t.allocation_point_status.c.status).where(
                t.allocation_point_status.c.allocation_point_id == point_id,
                holds_on(t.allocation_point_status, on),
            )
        ).scalar()
        return None if status is None else SapStatus(status)
