"""The operator's work planning: planned interruptions (UC1, UC4; MKT-8).

Meter data cannot tell a planned interruption from a fault; the operator's own
planning can. UC4 pays nothing for planned work, and UC1 does not take a feeder that
is dark for planned work as part of a fault. The file is CSV with the columns
``substation,feeder,start,end`` (ISO 8601 with UTC offset; an empty feeder means the
whole substation).

A planning with a bad line is refused whole, with every bad line named: a planned work
dropped quietly would be paid as a fault.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError

RULE = "MKT-8.planned_works"


class PlannedWorkError(MeetpuntError):
    """The work planning cannot be read; its findings name every bad line."""


@dataclass(frozen=True)
class PlannedWork:
    """One planned interruption from the operator's own work planning."""

    substation: str
    feeder: str | None
    start: datetime
    end: datetime

    def covers(
        self, substation: str, feeders: Iterable[str], start: datetime, end: datetime
    ) -> bool:
        """True when an outage on ``substation``/``feeders`` over [start, end) is this work."""
        if substation != self.substation or not (start < self.end and end > self.start):
            return False
        return self.feeder is None or self.feeder in set(feeders)

    def covers_at(self, substation: str, feeder: str, at: datetime) -> bool:
        """True when ``feeder`` of ``substation`` is out for this work at ``at``."""
        return self.covers(substation, (feeder,), at, at + timedelta(seconds=1))

    def as_dict(self) -> dict[str, Any]:
        return {
            "substation": self.substation,
            "feeder": self.feeder,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


def _row(path: Path, line: int, row: dict[str, str | None]) -> PlannedWork | Finding:
    try:
        start = datetime.fromisoformat((row.get("start") or "").strip())
        end = datetime.fromisoformat((row.get("end") or "").strip())
    except ValueError as exc:
        return Finding(RULE, f"{path}:{line}: start and end must be ISO 8601 times ({exc})")
    substation = (row.get("substation") or "").strip()
    feeder = (row.get("feeder") or "").strip() or None
    if not substation:
        return Finding(RULE, f"{path}:{line}: no substation")
    if start.tzinfo is None or end.tzinfo is None:
        return Finding(RULE, f"{path}:{line}: give start and end with their UTC offset")
    if end <= start:
        return Finding(RULE, f"{path}:{line}: the end must come after the start")
    return PlannedWork(substation, feeder, start, end)


def read_planned(path: Path) -> list[PlannedWork]:
    """The planned works of a CSV file (see the module docstring). Raises
    :class:`PlannedWorkError` naming every bad line, or an unreadable file."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"substation", "feeder", "start", "end"} - set(reader.fieldnames or ())
            if missing:
                raise PlannedWorkError(
                    f"{path}: not a work planning; missing column(s) {', '.join(sorted(missing))}",
                    [Finding(RULE, f"{path}: columns are substation,feeder,start,end")],
                )
            rows = [_row(path, line, row) for line, row in enumerate(reader, start=2)]
    except OSError as exc:
        raise PlannedWorkError(f"cannot read {path}: {exc.strerror or exc}") from exc
    bad = [r for r in rows if isinstance(r, Finding)]
    if bad:
        shown = "; ".join(f.message for f in bad[:3]) + ("; ..." if len(bad) > 3 else "")
        raise PlannedWorkError(
            f"{len(bad)} bad line(s) in the work planning, none used: {shown}", bad
        )
    return [r for r in rows if isinstance(r, PlannedWork)]
