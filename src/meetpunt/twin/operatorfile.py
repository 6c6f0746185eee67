"""What the grid operator knows besides the register and the meters (UC1, UC4).

Two CSV files in ``operator/``, both drawn from the injected faults:

* ``planned_works.csv`` (substation, feeder, start, end): the operator's work
  planning. UC4 leaves these out of the compensation (MKT-8: planned work announced in
  time pays nothing); the meters cannot tell planned from unplanned. The announced
  window is the real one widened to whole quarter-hours, as a planner writes it.
* ``outage_reports.csv`` (ean, reported_at, channel): customers calling the outage line
  (storingsnummer) during each unplanned outage. UC1 starts from such a report. The
  caller is any interrupted connection, smart meter or not; the call comes 2 to 20
  minutes into the outage, and never after half of it.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from meetpunt.twin.faults import Faults
from meetpunt.twin.topology import Region

QUARTER = timedelta(minutes=15)
PLANNED_COLUMNS = ("substation", "feeder", "start", "end")
REPORT_COLUMNS = ("ean", "reported_at", "channel")


def _floor(at: datetime) -> datetime:
    return at - timedelta(seconds=at.timestamp() % QUARTER.total_seconds())


def _ceil(at: datetime) -> datetime:
    floored = _floor(at)
    return floored if floored == at else floored + QUARTER


def write_operator_files(
    region: Region, faults: Faults, out_dir: Path, rng: np.random.Generator
) -> None:
    """Write ``planned_works.csv`` and ``outage_reports.csv`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "planned_works.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PLANNED_COLUMNS)
        for o in faults.outages:
            if o.planned:
                writer.writerow(
                    (
                        o.substation,
                        o.feeder or "",
                        _floor(o.start).isoformat(),
                        _ceil(o.end).isoformat(),
                    )
                )
    with (out_dir / "outage_reports.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for o in faults.outages:
            if o.planned or not o.affected:
                continue
            caller = region.connections[o.affected[int(rng.integers(0, len(o.affected)))]]
            delay = timedelta(seconds=int(rng.integers(120, 1201)))
            at = o.start + min(delay, (o.end - o.start) / 2)
            writer.writerow((caller.ean, at.replace(microsecond=0).isoformat(), "phone"))
