"""GIS corrections into the register as new connection versions (issue 19, REG-2).

A use case (UC7) proposes a connection's feeder and phase; a person confirms it; only
then is it recorded here: a new version of the connection from ``on`` (the register's
history keeps the old one) and a ``gis_correction`` row naming the source, who confirmed
it and what changed. A row whose registration changed since the proposal is refused
(``REG-2.gis_stale``): the proposal was made against another state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import insert, select

from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import Phase
from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError
from meetpunt.register import schema as t
from meetpunt.register.store import RegisterSession


@dataclass(frozen=True)
class GisCorrection:
    """One confirmed correction: the registration it was proposed against, and the new."""

    ean: str
    old_feeder: str
    old_phase: str | None
    new_feeder: str
    new_phase: str | None


def confirmed_on(session: RegisterSession, on: date) -> set[str]:
    """The EANs whose registered feeder and phase on ``on`` are a person-confirmed GIS
    correction (the latest ``gis_correction`` up to ``on`` is what the version holding
    on ``on`` says). UC1, UC4 and UC9 take these as the grid position and let their
    street rule judge only the others (issue 19, :mod:`meetpunt.usecases.grid`)."""
    g, c, v = t.gis_correction, t.connection, t.connection_version
    query = (
        select(c.c.ean, g.c.new_feeder, g.c.new_phase, v.c.feeder, v.c.phase)
        .join(c, c.c.id == g.c.connection_id)
        .join(v, v.c.connection_id == g.c.connection_id)
        .where(
            g.c.valid_from <= on,
            c.c.commodity == Commodity.ELECTRICITY.value,
            v.c.valid_from <= on,
            (v.c.valid_to.is_(None)) | (v.c.valid_to > on),
        )
        .order_by(g.c.valid_from, g.c.id)
    )
    latest: dict[str, bool] = {}
    for ean, new_feeder, new_phase, feeder, phase in session.db.execute(query):
        latest[str(ean)] = (new_feeder, new_phase or None) == (feeder, phase or None)
    return {ean for ean, holds in latest.items() if holds}


def apply_corrections(
    session: RegisterSession,
    corrections: Sequence[GisCorrection],
    on: date,
    confirmed_by: str,
    source: str,
    now: datetime,
) -> int:
    """Record each correction as a new version from ``on`` with its ``source``; all or
    nothing (one transaction). Raises :class:`RegisterError` naming the row and rule."""
    if not confirmed_by.strip():
        finding = Finding(
            "REG-2.gis_confirmed", "a GIS correction needs the person who confirmed it"
        )
        raise RegisterError(finding.message, [finding])
    for c in corrections:
        current = session.connection_at(c.ean, on, Commodity.ELECTRICITY)
        if current is None:
            finding = Finding("REG-2.unknown", f"connection {c.ean} is not registered on {on}")
            raise RegisterError(finding.message, [finding])
        grid = current.attributes.grid
        phase = None if grid.phase is None else grid.phase.value
        if (grid.feeder, phase) != (c.old_feeder, c.old_phase):
            finding = Finding(
                "REG-2.gis_stale",
                f"connection {c.ean}: registered {grid.feeder} {phase or '3-phase'} on {on}, "
                f"the correction was proposed against {c.old_feeder} {c.old_phase or '3-phase'};"
                " run the analysis again",
            )
            raise RegisterError(finding.message, [finding])
        new_grid = replace(
            grid,
            feeder=c.new_feeder,
            phase=None if c.new_phase is None else Phase(c.new_phase),
        )
        attrs = replace(current.attributes, grid=new_grid)
        session.record_connection(c.ean, Commodity.ELECTRICITY, attrs, on)
        cid = session.db.execute(
            select(t.connection.c.id).where(
                t.connection.c.ean == c.ean,
                t.connection.c.commodity == Commodity.ELECTRICITY.value,
            )
        ).scalar_one()
        session.db.execute(
            insert(t.gis_correction).values(
                connection_id=cid,
                valid_from=on,
                source=source,
                old_feeder=c.old_feeder,
                old_phase=c.old_phase,
                new_feeder=c.new_feeder,
                new_phase=c.new_phase,
                confirmed_by=confirmed_by,
                recorded_at=now,
            )
        )
    return len(corrections)
