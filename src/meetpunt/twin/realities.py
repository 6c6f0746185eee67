"""Meter realities of the grid twin (issue 16): clocks that drift, meters offline for
days, the 10-entry log that overflows before it is read, a meter replaced during an
outage.

The physics says when a connection had no supply; these realities decide what a
head-end would really have read of it. They are drawn here (seeded, from the
``[realities]`` section of the ``twin_meters`` rule file) and applied by
:func:`meetpunt.twin.meters.simulate_meters` (the log, the counters, the truth) and
:func:`meetpunt.twin.swaps.replace_during_outages` (the registers of a new meter).

* clock drift: a meter's clock is ``offset + rate * t`` off until a time sync at
  ``sync_s`` sets it right (then it drifts again from zero); the END and duration it
  writes into its failure log carry that error, the truth keeps both times;
* offline: the meter's communication is down in ``[start_s, end_s)``; what it recorded
  then is read when it comes back, and nothing of it when that is after the period;
* log reads: the head-end reads the failure log at each local midnight while the meter
  is reachable, and when it comes back; an entry that ``log_depth`` newer entries
  pushed out before its first read is lost for good (``log_overflow``);
* replaced: the meter is exchanged at ``at_s`` inside a long interruption; the old
  meter never writes that failure's END, the new one starts with an empty log,
  counters and registers at zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import pyarrow as pa

from meetpunt.errors import RulesDataError
from meetpunt.rulebook import load_rules
from meetpunt.twin.model import STEP_S, UTC_TS, Interruption, TimeAxis

DAY_S: Final = 86_400
#: The meter classes an interruption can carry in the truth (``meter_cases``).
METER_CASES: Final = ("clock_drift", "meter_offline", "log_overflow", "meter_replaced")


@dataclass(frozen=True)
class RealityParams:
    """The ``[realities]`` section of ``twin_meters`` (with the ``stress`` overrides)."""

    clock_drift_share: float
    clock_offset_s_max: float
    clock_drift_s_per_day_max: float
    clock_synced_in_period_share: float
    offline_share: float
    offline_days: tuple[float, float]
    replaced_share: float

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any], *, stress: bool = False) -> RealityParams:
        """Build from the ``[realities]`` section; ``stress`` applies ``[realities.stress]``."""
        try:
            body = {k: v for k, v in section.items() if k != "stress"}
            if stress:
                body.update(section["stress"])
            params = cls(
                clock_drift_share=float(body["clock_drift_share"]),
                clock_offset_s_max=float(body["clock_offset_s_max"]),
                clock_drift_s_per_day_max=float(body["clock_drift_s_per_day_max"]),
                clock_synced_in_period_share=float(body["clock_synced_in_period_share"]),
                offline_share=float(body["offline_share"]),
                offline_days=(float(body["offline_days_min"]), float(body["offline_days_max"])),
                replaced_share=float(body["replaced_share"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RulesDataError(
                f"twin_meters [realities]: malformed data ({type(exc).__name__}: {exc})"
            ) from exc
        shares = (
            params.clock_drift_share,
            params.clock_synced_in_period_share,
            params.offline_share,
            params.replaced_share,
        )
        if not all(0.0 <= s <= 1.0 for s in shares):
            raise RulesDataError("twin_meters [realities]: shares must lie in 0..1")
        if not 0.0 < params.offline_days[0] <= params.offline_days[1]:
            raise RulesDataError("twin_meters [realities]: need 0 < offline_days_min <= max")
        return params

    @classmethod
    def load(cls, *, stress: bool = False) -> RealityParams:
        """The packaged (or operator's) ``[realities]`` of the ``twin_meters`` rule file."""
        return cls.from_mapping(load_rules("twin_meters").body["realities"], stress=stress)


@dataclass(frozen=True)
class Drift:
    """A meter clock that is ``offset_s`` off at the axis start and runs ``rate_s_per_day``
    off, until a time sync at ``sync_s`` (None: not within the period)."""

    offset_s: float
    rate_s_per_day: float
    sync_s: int | None = None

    def offset_at(self, t: int) -> int:
        """Whole seconds the meter's clock is ahead of true time at ``t`` (axis seconds)."""
        if self.sync_s is not None and t >= self.sync_s:
            return round(self.rate_s_per_day * (t - self.sync_s) / DAY_S)
        return round(self.offset_s + self.rate_s_per_day * t / DAY_S)

    def duration(self, duration_s: int) -> int:
        """A duration as the meter's clock measures it (unpowered: no sync meanwhile)."""
        return duration_s + round(self.rate_s_per_day * duration_s / DAY_S)


@dataclass(frozen=True)
class Offline:
    """The meter's communication is down in ``[start_s, end_s)`` (axis seconds)."""

    start_s: int
    end_s: int

    def down(self, t: int) -> bool:
        return self.start_s <= t < self.end_s


@dataclass(frozen=True)
class Replacement:
    """The meter was exchanged at ``at_s`` (axis seconds), during ``outage_id``."""

    at_s: int
    outage_id: str


@dataclass(frozen=True)
class Realities:
    """Which meters drift, are offline, were replaced (connection index -> what)."""

    drift: Mapping[int, Drift] = field(default_factory=dict)
    offline: Mapping[int, Offline] = field(default_factory=dict)
    replaced: Mapping[int, Replacement] = field(default_factory=dict)

    def affected(self) -> set[int]:
        """Every connection with a reality."""
        return set(self.drift) | set(self.offline) | set(self.replaced)

    def down(self, conn: int, t: int) -> bool:
        """Whether ``conn``'s communication is down at ``t``."""
        window = self.offline.get(conn)
        return window is not None and window.down(t)

    def reads(self, conn: int, midnights_s: Sequence[int], total_s: int) -> list[int]:
        """The moments the head-end reads ``conn``'s log: every local midnight after the
        axis start while reachable, and when it comes back within the period."""
        window = self.offline.get(conn)
        moments = sorted({int(m) for m in midnights_s if 0 < m <= total_s})
        if window is not None and 0 <= window.end_s <= total_s:
            moments = sorted({*moments, window.end_s})
        return [m for m in moments if not self.down(conn, m)]


def draw_realities(
    smart: Sequence[int],
    axis: TimeAxis,
    interruptions: Sequence[Interruption],
    params: RealityParams,
    rng: np.random.Generator,
    *,
    long_longer_than_s: int = 180,
    exclude_replaced: Sequence[int] = (),
) -> Realities:
    """Draw each reality for the smart meters ``smart`` (seeded; see module docstring).

    A replacement falls inside one long interruption wholly within the period of a
    meter not otherwise swapped (``exclude_replaced``), at least a minute from its ends.
    """
    total = axis.n_steps * STEP_S
    meters = sorted(int(i) for i in smart)
    drift: dict[int, Drift] = {}
    for conn in meters:
        if rng.random() >= params.clock_drift_share:
            continue
        offset = float(rng.uniform(-1.0, 1.0)) * params.clock_offset_s_max
        rate = float(rng.uniform(-1.0, 1.0)) * params.clock_drift_s_per_day_max
        synced = rng.random() < params.clock_synced_in_period_share
        sync = int(rng.integers(0, total)) if synced else None
        drift[conn] = Drift(offset, rate, sync)
    offline: dict[int, Offline] = {}
    lo, hi = params.offline_days
    for conn in meters:
        if rng.random() >= params.offline_share:
            continue
        length = int(rng.uniform(lo, hi) * DAY_S)
        start = int(rng.integers(-length // 2, total))
        offline[conn] = Offline(start, start + length)
    eligible = set(meters) - {int(i) for i in exclude_replaced}
    candidates: dict[int, list[Interruption]] = {}
    for cut in sorted(interruptions, key=lambda c: (c.index, c.start, c.outage_id)):
        a = int((cut.start - axis.start_utc).total_seconds())
        b = int((cut.end - axis.start_utc).total_seconds())
        if cut.index in eligible and a >= 0 and b <= total and b - a > long_longer_than_s + 120:
            candidates.setdefault(cut.index, []).append(cut)
    replaced: dict[int, Replacement] = {}
    for conn in sorted(candidates):
        if rng.random() >= params.replaced_share:
            continue
        cuts = candidates[conn]
        cut = cuts[int(rng.integers(len(cuts)))]
        a = int((cut.start - axis.start_utc).total_seconds())
        b = int((cut.end - axis.start_utc).total_seconds())
        replaced[conn] = Replacement(int(rng.integers(a + 60, b - 60)), cut.outage_id)
    return Realities(drift, offline, replaced)


def replacement_moment(axis: TimeAxis, replacement: Replacement) -> datetime:
    """The UTC moment of a replacement."""
    return axis.start_utc + timedelta(seconds=replacement.at_s)


REALITIES_SCHEMA = pa.schema(
    [
        ("connection", pa.int32()),
        ("ean", pa.string()),
        ("reality", pa.string()),
        ("from", UTC_TS),
        ("until", UTC_TS),
        ("clock_offset_s", pa.float64()),
        ("clock_drift_s_per_day", pa.float64()),
        ("outage_id", pa.string()),
    ]
)
"""``truth/meter_realities``: one row per reality of a meter. ``from``/``until``: the
offline window; for a drift ``until`` is its time sync (null: not in the period) and
the offset is at the period's start; ``from`` is the moment of a replacement."""


def realities_truth(realities: Realities, axis: TimeAxis, eans: Sequence[str]) -> pa.Table:
    """Every reality of every meter, for the truth folder (issue 16)."""

    def when(t: int | None) -> datetime | None:
        return None if t is None else axis.start_utc + timedelta(seconds=t)

    def row(conn: int, reality: str, **values: object) -> dict[str, object]:
        return {"connection": conn, "ean": eans[conn], "reality": reality, **values}

    rows = [
        row(
            c,
            "clock_drift",
            until=when(d.sync_s),
            clock_offset_s=d.offset_s,
            clock_drift_s_per_day=d.rate_s_per_day,
        )
        for c, d in sorted(realities.drift.items())
    ]
    rows += [
        row(c, "meter_offline", **{"from": when(o.start_s), "until": when(o.end_s)})
        for c, o in sorted(realities.offline.items())
    ]
    rows += [
        row(c, "meter_replaced", outage_id=r.outage_id, **{"from": when(r.at_s)})
        for c, r in sorted(realities.replaced.items())
    ]
    return pa.Table.from_pylist(rows, schema=REALITIES_SCHEMA)
