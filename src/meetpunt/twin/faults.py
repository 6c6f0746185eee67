"""Faults and irregularities injected into the twin, each recorded in the truth.

Outages (cable faults cutting part of or a whole feeder, substation outages from the
MV grid, planned work, a blown cabinet fuse), with lengths on both sides of the 4-hour
compensation threshold; registration errors (GIS phase and feeder, solar capacity not
registered or no longer matching); contractless and out-of-service connections that
still consume; a broken neutral (an unsafe situation, UC12); meter swaps. Everything
here is drawn from the rng handed in, and scales with region size and period length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from meetpunt.twin.model import ConnectionKind, Interruption, TimeAxis
from meetpunt.twin.topology import Region

# hours: a mix on both sides of the 4 h threshold, and past 8 h and 12 h
# drawn in this order, so even a small run has faults on both sides of 4 h, 8 h and 12 h
CABLE_FAULT_HOURS = (0.75, 4.5, 2.5, 9.0, 13.0, 1.5, 5.5, 3.5, 7.0)
SUBSTATION_HOURS = (2.2, 1.2, 4.8, 3.0)
PLANNED_HOURS = (3.0, 4.5, 6.0)
FUSE_HOURS = (1.0, 2.0, 3.0, 5.0)


@dataclass
class Outage:
    """One outage: what failed, where, when, and whom it cut off (truth for UC1/4/9)."""

    id: str
    cause: str  # cable_fault | substation_outage | planned_work | cabinet_fuse
    extent: str  # single_connection | part_of_feeder | whole_feeder | whole_substation
    grid_level: str  # LV | MV
    planned: bool
    start: datetime
    end: datetime
    substation: str
    feeder: str | None
    affected: list[int]


@dataclass
class Faults:
    """Everything injected, ready for the physics, the meters, the register and the truth."""

    outages: list[Outage] = field(default_factory=list)
    interruptions: list[Interruption] = field(default_factory=list)
    broken_neutral: set[int] = field(default_factory=set)
    gis_errors: list[dict[str, object]] = field(default_factory=list)
    pv_registration: list[dict[str, object]] = field(default_factory=list)
    contractless: set[int] = field(default_factory=set)
    out_of_service_consuming: set[int] = field(default_factory=set)
    meter_swaps: dict[int, int] = field(default_factory=dict)  # connection -> step


def _when(axis: TimeAxis, hours: float, rng: np.random.Generator) -> tuple[datetime, datetime]:
    """A start at a whole second inside the period so that the outage ends inside it too."""
    span = axis.n_steps * 300 - int(hours * 3600) - 3600
    offset = int(rng.integers(3600, max(span, 3601)))
    start = axis.start_utc + timedelta(seconds=offset)
    return start, start + timedelta(seconds=int(hours * 3600 + rng.integers(-900, 900)))


def _beyond(region: Region, connections: list[int], nodes: list[int]) -> list[int]:
    """The connections hanging on ``nodes`` (the cable beyond a cut)."""
    dark = set(nodes)
    return [i for i in connections if int(region.connections[i].extra["backbone_node"]) in dark]


def inject_faults(region: Region, axis: TimeAxis, rng: np.random.Generator) -> Faults:
    """Draw the faults for ``region`` over ``axis`` (see module docstring)."""
    faults = Faults()
    scale = max(1.0, len(region.connections) / 1000.0) * max(axis.days / 30.0, 0.2)
    feeders = sorted(region.feeders)
    used: set[str] = set()

    def free_feeder() -> str | None:
        options = [f for f in feeders if f not in used and region.feeders[f].connections]
        if not options:
            return None
        chosen = options[int(rng.integers(0, len(options)))]
        used.add(chosen)
        return chosen

    def add(
        cause: str,
        extent: str,
        level: str,
        planned: bool,
        hours: float,
        sub: str,
        feeder: str | None,
        affected: list[int],
    ) -> None:
        start, end = _when(axis, hours, rng)
        outage = Outage(
            f"O{len(faults.outages) + 1:04d}",
            cause,
            extent,
            level,
            planned,
            start,
            end,
            sub,
            feeder,
            sorted(affected),
        )
        faults.outages.append(outage)
        faults.interruptions.extend(
            Interruption(i, outage.id, start, end, planned) for i in outage.affected
        )

    for n in range(max(1, round(scale))):
        free = [x for x in region.substations if not any(f in used for f in x.feeders)]
        if len(free) < 2:  # keep at least one substation for the feeder faults
            break
        sub = free[int(rng.integers(0, len(free)))]
        used.update(sub.feeders)
        affected = [i for f in sub.feeders for i in region.feeders[f].connections]
        hours = SUBSTATION_HOURS[n % len(SUBSTATION_HOURS)]
        add("substation_outage", "whole_substation", "MV", False, hours, sub.id, None, affected)
    for n in range(max(1, round(len(CABLE_FAULT_HOURS) * scale * 0.6))):
        fid = free_feeder()
        if fid is None:
            break
        feeder = region.feeders[fid]
        cut = 0 if n % 3 == 0 else int(rng.integers(1, max(2, len(feeder.nodes))))
        affected = _beyond(region, feeder.connections, feeder.nodes[cut:])
        while cut > 0 and len(affected) < 2:  # one dark house looks like a blown cabinet fuse
            cut -= 1
            affected = _beyond(region, feeder.connections, feeder.nodes[cut:])
        extent = "whole_feeder" if cut == 0 else "part_of_feeder"
        hours = CABLE_FAULT_HOURS[n % len(CABLE_FAULT_HOURS)]
        add("cable_fault", extent, "LV", False, hours, feeder.substation, fid, affected)
    for n in range(max(1, round(scale))):
        fid = free_feeder()
        if fid is None:
            break
        feeder = region.feeders[fid]
        add(
            "planned_work",
            "whole_feeder",
            "LV",
            True,
            PLANNED_HOURS[n % len(PLANNED_HOURS)],
            feeder.substation,
            fid,
            list(feeder.connections),
        )
    for n in range(max(2, round(2 * scale))):
        fid = free_feeder()
        if fid is None:
            break
        feeder = region.feeders[fid]
        victim = feeder.connections[int(rng.integers(0, len(feeder.connections)))]
        add(
            "cabinet_fuse",
            "single_connection",
            "LV",
            False,
            FUSE_HOURS[n % len(FUSE_HOURS)],
            feeder.substation,
            fid,
            [victim],
        )

    _registration_errors(region, faults, rng)
    return faults


def _registration_errors(region: Region, faults: Faults, rng: np.random.Generator) -> None:
    conns = region.connections
    hosts = {p.primary_index for p in region.secondary_points}
    for conn in conns:
        roll = float(rng.random())
        if conn.phase is not None and roll < 0.03:
            wrong = (conn.phase + int(rng.integers(1, 3))) % 3
            conn.registered_phase = wrong
            faults.gis_errors.append(
                {
                    "connection": conn.index,
                    "kind": "phase",
                    "true": f"L{conn.phase + 1}",
                    "registered": f"L{wrong + 1}",
                }
            )
        elif 0.03 <= roll < 0.04:
            siblings = [f for f in region.substations_feeders(conn.substation) if f != conn.feeder]
            if siblings:
                wrong_feeder = siblings[int(rng.integers(0, len(siblings)))]
                conn.registered_feeder = wrong_feeder
                faults.gis_errors.append(
                    {
                        "connection": conn.index,
                        "kind": "feeder",
                        "true": conn.feeder,
                        "registered": wrong_feeder,
                    }
                )
        pv_roll = float(rng.random())
        if conn.pv_kwp > 0 and pv_roll < 0.12:
            conn.registered_pv_kwp = None
            faults.pv_registration.append(
                {
                    "connection": conn.index,
                    "kind": "not_registered",
                    "true_kwp": conn.pv_kwp,
                    "registered_kwp": None,
                }
            )
        elif conn.pv_kwp > 0 and pv_roll < 0.18:
            registered = round(conn.pv_kwp * float(rng.choice([0.4, 0.5, 2.0])), 2)
            conn.registered_pv_kwp = registered
            faults.pv_registration.append(
                {
                    "connection": conn.index,
                    "kind": "mismatch",
                    "true_kwp": conn.pv_kwp,
                    "registered_kwp": registered,
                }
            )
        elif conn.pv_kwp == 0 and conn.kind is ConnectionKind.HOUSEHOLD and pv_roll < 0.01:
            conn.registered_pv_kwp = round(float(rng.uniform(2, 5)), 2)
            faults.pv_registration.append(
                {
                    "connection": conn.index,
                    "kind": "removed",
                    "true_kwp": 0.0,
                    "registered_kwp": conn.registered_pv_kwp,
                }
            )
        other = float(rng.random())
        if conn.index in hosts:  # keep SAP hosts in service: their SAPs would lapse
            other = 1.0
        if other < 0.015:
            faults.contractless.add(conn.index)
        elif other < 0.02:
            faults.out_of_service_consuming.add(conn.index)
        elif other < 0.03 and conn.meter.smart:
            faults.meter_swaps[conn.index] = -1  # step chosen by the meter post-processing
        if conn.phase is not None and float(rng.random()) < 0.002:
            faults.broken_neutral.add(conn.index)
    if not faults.broken_neutral:
        singles = [c.index for c in conns if c.phase is not None]
        if singles:
            faults.broken_neutral.add(singles[int(rng.integers(0, len(singles)))])
