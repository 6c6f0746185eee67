"""Completeness of quarter-hour values per area and day (MTR-5, after Elhub's VEE).

For local day D and every area (postcode-4 or municipality), the expected values are
the in-service smart-meter connections of the area times the quarter-hours of D (92, 96
or 100, from the calendar). Three shares are reported:

* measured: values with a measured status, whenever they arrived;
* measured on D+1: measured values whose batch was committed before the end of D+1;
* billing-ready on D+5: measured or estimated values committed before the end of D+5.

The arrival time is the ``committed_at`` of the batch that stored the value (the store
keeps which batch brought every row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from meetpunt.domain.calendar import (
    local_day_bounds_utc,
    local_midnight_utc,
    quarter_hours_in_local_day,
)
from meetpunt.meterdata.kinds import ESTIMATED_CODES, MEASURED_CODES
from meetpunt.meterdata.store import MeterStore


@dataclass(frozen=True)
class AreaCompleteness:
    """One area's quarter-hour completeness on one local day."""

    area: str
    day: date
    connections: int
    expected: int
    measured: int
    measured_by_d1: int
    billing_ready_by_d5: int

    def share(self, count: int) -> float:
        return count / self.expected if self.expected else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "area": self.area,
            "day": self.day.isoformat(),
            "connections": self.connections,
            "expected": self.expected,
            "measured": round(self.share(self.measured), 4),
            "measured_d1": round(self.share(self.measured_by_d1), 4),
            "billing_ready_d5": round(self.share(self.billing_ready_by_d5), 4),
        }


def completeness(store: MeterStore, areas: Mapping[int, str], day: date) -> list[AreaCompleteness]:
    """Completeness on local ``day`` of the connections in ``areas`` (connection id ->
    area: the in-service smart-meter connections the caller expects values from)."""
    start, end = (t.replace(tzinfo=None) for t in local_day_bounds_utc(day))
    d1 = local_midnight_utc(day + timedelta(days=2)).replace(tzinfo=None)
    d5 = local_midnight_utc(day + timedelta(days=6)).replace(tzinfo=None)
    measured = ", ".join(map(str, MEASURED_CODES))
    usable = ", ".join(map(str, (*MEASURED_CODES, *ESTIMATED_CODES)))
    with store.lease() as con:  # one read, one lease (MTR-1 side by side)
        rows = con.execute(
            "SELECT q.connection, "
            f"count(*) FILTER (WHERE q.quality IN ({measured})), "
            f"count(*) FILTER (WHERE q.quality IN ({measured}) AND b.committed_at < ?), "
            f"count(*) FILTER (WHERE q.quality IN ({usable}) AND b.committed_at < ?) "
            "FROM quarter_hours q JOIN batch b ON b.id = q.batch "
            "WHERE q.start >= ? AND q.start < ? GROUP BY q.connection",
            [d1, d5, start, end],
        ).fetchall()
    per_connection = {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}
    quarters = quarter_hours_in_local_day(day)
    totals: dict[str, list[int]] = {}
    for connection, area in areas.items():
        counts = per_connection.get(connection, (0, 0, 0))
        total = totals.setdefault(area, [0, 0, 0, 0])
        total[0] += 1
        for i, count in enumerate(counts, start=1):
            total[i] += count
    return [
        AreaCompleteness(area, day, n, n * quarters, m, m1, b5)
        for area, (n, m, m1, b5) in sorted(totals.items())
    ]
