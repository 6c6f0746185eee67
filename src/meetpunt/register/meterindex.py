"""The register as the meter-data hub reads it: every connection version, flat (MTR-4/5).

The hub keys its tables by the register's ``connection.id`` (design rule 5) and checks
readings against the capacity and meter type that held on the reading's date, so it
takes the whole history in one query instead of asking per EAN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from meetpunt.domain.capacity import Commodity
from meetpunt.register import schema as t
from meetpunt.register.base import SessionBase


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


class MeterIndex(SessionBase):
    """The hub's view of the connection timelines."""

    def meter_index(self) -> list[MeterIndexEntry]:
        """Every connection version as the meter-data hub needs it (MTR-4/5, design rule 5).

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
