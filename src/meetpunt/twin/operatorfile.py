"""What the grid operator knows besides the register and the meters (UC1, UC4).

Two CSV files in ``operator/``, both drawn from the injected faults:

* ``planned_works.csv`` (substation, feeder, start, end): the operator's work
  planning. UC4 leaves these out of the compensation (MKT-8: planned work announced in
  time pays nothing); the meters cannot tell planned from unplanned. The announced
  window is the real one widened to whole quarter-hours, as a planner writes it.
* ``outage_reports.csv`` (ean, reported_at, channel): customers calling the outage line
  (storingsnummer) during each unplanned outage. UC1 starts from such a report. The
  caller is any interrupted connection, smart meter or not; the call comes 2 to 20
  minutes into the outage, and never after half of it. In the ``showcase`` outage mode
  one call per unplanned outage; in ``field`` and ``stress`` (issue 16) as calls really
  come: several for a larger outage (one more per about 30 connections, at most 5 in
  all), none for an interruption of 5 minutes or less (the light is back before anyone
  calls), and calls for outages that are not there: a customer's own breaker tripped
  (:data:`OWN_BREAKER_PER_1000_PER_MONTH`), answered by UC1 as no grid outage.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from meetpunt.twin.faults import Faults, Outage
from meetpunt.twin.model import STEP_S, TimeAxis
from meetpunt.twin.topology import Region

QUARTER = timedelta(minutes=15)
#: [A] Calls per 1,000 connections a month from customers whose own installation
#: failed (a tripped breaker or residual-current device): the outage line takes these
#: too. A twin assumption, not a published figure.
OWN_BREAKER_PER_1000_PER_MONTH = 2.0
#: [A] One extra call per this many interrupted connections (at most 5 calls).
CONNECTIONS_PER_EXTRA_CALL = 30
#: No calls for interruptions this short: supply is back before anyone calls.
TOO_SHORT_TO_CALL = timedelta(minutes=5)
PLANNED_COLUMNS = ("substation", "feeder", "start", "end")
REPORT_COLUMNS = ("ean", "reported_at", "channel")


def _floor(at: datetime) -> datetime:
    return at - timedelta(seconds=at.timestamp() % QUARTER.total_seconds())


def _ceil(at: datetime) -> datetime:
    floored = _floor(at)
    return floored if floored == at else floored + QUARTER


def write_operator_files(
    region: Region,
    faults: Faults,
    out_dir: Path,
    rng: np.random.Generator,
    mode: str = "showcase",
    axis: TimeAxis | None = None,
) -> None:
    """Write ``planned_works.csv`` and ``outage_reports.csv`` into ``out_dir``; the
    calls depend on the outage ``mode`` (own-breaker calls need the period's ``axis``)."""
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
        calls = (
            _showcase_calls(region, faults, rng)
            if mode == "showcase"
            else _field_calls(region, faults, axis, rng)
        )
        for ean, at, channel in calls:
            writer.writerow((ean, at.replace(microsecond=0).isoformat(), channel))


def _call_moment(outage: Outage, rng: np.random.Generator) -> datetime:
    """A call 2 to 20 minutes into the outage, and never after half of it."""
    delay = timedelta(seconds=int(rng.integers(120, 1201)))
    return outage.start + min(delay, (outage.end - outage.start) / 2)


def _showcase_calls(
    region: Region, faults: Faults, rng: np.random.Generator
) -> list[tuple[str, datetime, str]]:
    """One call per unplanned outage (the demo's story)."""
    calls = []
    for o in faults.outages:
        if o.planned or not o.affected:
            continue
        caller = region.connections[o.affected[int(rng.integers(0, len(o.affected)))]]
        calls.append((caller.ean, _call_moment(o, rng), "phone"))
    return calls


def _field_calls(
    region: Region, faults: Faults, axis: TimeAxis | None, rng: np.random.Generator
) -> list[tuple[str, datetime, str]]:
    """Calls as they come: several per larger outage, none for a short one, and calls
    from customers whose own installation failed; in time order."""
    calls: list[tuple[str, datetime, str]] = []
    for o in faults.outages:
        if o.planned or not o.affected or o.end - o.start <= TOO_SHORT_TO_CALL:
            continue
        extra = int(rng.poisson(len(o.affected) / CONNECTIONS_PER_EXTRA_CALL))
        n = min(1 + extra, 5, len(o.affected))
        for index in rng.choice(o.affected, size=n, replace=False):
            at = _call_moment(o, rng)
            channel = "app" if float(rng.random()) < 0.3 else "phone"
            calls.append((region.connections[int(index)].ean, at, channel))
    if axis is not None:
        calls.extend(_own_breaker_calls(region, faults, axis, rng))
    calls.sort(key=lambda c: (c[1], c[0]))
    return calls


def _own_breaker_calls(
    region: Region, faults: Faults, axis: TimeAxis, rng: np.random.Generator
) -> list[tuple[str, datetime, str]]:
    """Calls from customers whose own breaker tripped, at a moment their connection
    had supply (so no grid outage is there to find)."""
    period_s = axis.n_steps * STEP_S
    expected = OWN_BREAKER_PER_1000_PER_MONTH * len(region.connections) / 1000 * axis.days / 30
    calls = []
    for _ in range(int(rng.poisson(expected))):
        for _attempt in range(20):
            conn = region.connections[int(rng.integers(0, len(region.connections)))]
            at = axis.start_utc + timedelta(seconds=int(rng.uniform(0, period_s)))
            dark = any(
                i.index == conn.index and i.start <= at < i.end for i in faults.interruptions
            )
            if not dark:
                calls.append((conn.ean, at, "phone"))
                break
    return calls
