"""The demo's voltage-quality stage (issue 18): UC2 over the month, UC3 on its worst feeders.

UC2 runs once, the morning after the month, over the DEMO'S PERIOD (the twin's month,
inside the second quarter of 2025), not over a whole quarter: the twin simulates only
the month, so the counters give the month's events and the notable rule's per-quarter
thresholds are scaled to the days counted. Each notable feeder is stored as a UC2
finding. UC3 then analyses the :data:`UC3_FEEDERS` notable feeders with the most events,
each over the 10 days of the month with the most events on it (from UC2's daily
counters), citing that feeder's finding. Scored against the twin's truth: event counts
per connection, the notable feeders, trip episodes and minutes outside the limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from meetpunt import rulebook
from meetpunt.demo.score import Score
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.voltage import VoltageQualityRules
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Period, stored_utc
from meetpunt.report import charts, voltage_charts
from meetpunt.report.html import picture
from meetpunt.usecases.uc02_voltage_quality import (
    Uc02Result,
    monitor_voltage_quality,
    notable_feeder,
)
from meetpunt.usecases.uc03_seasonal import (
    HIGH,
    INVERTER,
    LOW,
    Uc03Result,
    analyse_feeder,
)

UC3_FEEDERS = 2
"""How many notable feeders UC3 analyses in the demo (the most events first)."""
UC3_DAYS = 10


@dataclass
class VoltageRun:
    """What the stage did: UC2's result and UC3's per feeder, the pictures written."""

    uc2: Uc02Result | None = None
    uc3: list[Uc03Result] = field(default_factory=list)
    pictures: list[Path] = field(default_factory=list)

    def expected_audit(self) -> dict[tuple[str, str, str], int]:
        """The audit records the stage adds (PRV-7): UC2 decision, read, findings; UC3
        a decision and two reads (voltages, feed-in) per feeder."""
        if self.uc2 is None:
            return {}
        out = {
            ("UC2", "decision", "granted"): 1,
            ("UC2", "read", "read"): 1,
            ("UC2", "flag", "recorded"): len(self.uc2.flags),
            ("UC3", "decision", "granted"): len(self.uc3),
            ("UC3", "read", "read"): 2 * len(self.uc3),
        }
        return {k: v for k, v in out.items() if v}


def uc3_window(uc2: Uc02Result, feeder: str, days: int = UC3_DAYS) -> Period:
    """The ``days`` local days with the most events on ``feeder`` (UC2's daily counter
    deltas), at most 10 (UC3.window); the period's last days when none had events."""
    span = uc2.feeder(feeder).busiest_days(days)
    if span is None:
        end = uc2.period.end
        return Period(max(uc2.period.start, end - timedelta(days=days)), end)
    first, last = span
    return Period(local_midnight_utc(first), local_midnight_utc(last + timedelta(days=1)))


def run_uc2(
    gate: Gate,
    party: Party,
    period: Period,
    at: datetime,
    say: Callable[[str], None],
    rules: VoltageQualityRules | None = None,
) -> VoltageRun:
    """UC2 over ``period`` at ``at`` (the gate's clock must say ``at``)."""
    out = VoltageRun(uc2=monitor_voltage_quality(gate, party, period, at, rules))
    r = out.uc2.ranking if out.uc2 is not None else None
    if r is not None:
        say(
            f"{sum(c.events for c in r.connections)} events on {len(r.connections)} meters; "
            f"{len(r.notable_feeders)} notable feeders stored as findings"
        )
    return out


def run_uc3(
    out: VoltageRun,
    gate: Gate,
    party: Party,
    at: datetime,
    say: Callable[[str], None],
    rules: VoltageQualityRules | None = None,
) -> None:
    """UC3 on the :data:`UC3_FEEDERS` notable feeders with the most events, each citing
    its UC2 finding, over its 10 busiest days."""
    uc2 = out.uc2
    if uc2 is None:
        return
    rules = rules or rulebook.voltage_quality()
    for f in uc2.ranking.notable_feeders[:UC3_FEEDERS]:
        flag = uc2.flag_of(f.name)
        if flag is None:
            continue
        mine = uc2.connections_of(f.name)
        counters = [(c.ean, p, a, b) for c in mine for p, a, b in c.since_installation]
        out.uc3.append(
            analyse_feeder(
                gate,
                party,
                f.name,
                flag,
                uc3_window(uc2, f.name),
                at,
                f"UC2 finding {flag}: feeder {f.name}, {f.events} events",
                rules,
                counters,
                [c.ean for c in mine],
            )
        )
    trips = sum(len(r.episodes) for r in out.uc3)
    breaks = sum(len(r.breaks) for r in out.uc3)
    say(f"{len(out.uc3)} feeder(s) analysed: {breaks} limit breaks, {trips} trip episodes")


# --- scores against the twin's truth ---------------------------------------------------


def _rows(twin: Path, name: str) -> list[dict[str, Any]]:
    path = twin / "truth" / f"{name}.parquet"
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def score_uc2(result: Uc02Result, twin: Path, rules: VoltageQualityRules | None = None) -> Score:
    """UC2 against the truth: each ranked connection's events equal the truth's events
    that began between the first and the last reading (a meter's events count on the day
    they start), and the feeders named notable are those the same rule names over the
    true counts on the TRUE feeders. A swapped meter's events that UC2 says it could
    not read (its old meter's after the last reading, before the swap) are left out of
    the comparison and counted apart (``events_not_readable``): never read, not wrong."""
    rules = rules or rulebook.voltage_quality()
    conns = {str(r["ean"]): r for r in _rows(twin, "connections")}
    swapped = {str(r["ean"]): stored_utc(r["swapped_at"]) for r in _rows(twin, "meter_swaps")}
    gaps = {c.ean: c.not_readable for c in result.ranking.connections if c.not_readable}
    first, last = result.first_reading, result.last_reading
    truth_n: dict[str, int] = {}
    unread: dict[str, int] = {}
    for e in _rows(twin, "voltage_events"):
        start = stored_utc(e["start"])
        ean = str(e["ean"])
        if first is None or last is None or not first <= start < last:
            continue
        if any(
            a <= start < min(b, swapped.get(ean, b))
            for p, a, b in gaps.get(ean, ())
            if p == int(e.get("phase", p))
        ):
            unread[ean] = unread.get(ean, 0) + 1
            continue
        truth_n[ean] = truth_n.get(ean, 0) + 1
    ranked = result.ranking.connections
    exact = [c for c in ranked if c.events == truth_n.get(c.ean, 0)]
    misses = [
        f"{c.ean}: {c.events} events counted, truth {truth_n.get(c.ean, 0)}"
        + (f" (meter swapped {c.resets}x)" if c.resets else "")
        for c in ranked
        if c.events != truth_n.get(c.ean, 0)
    ]
    per_feeder: dict[str, list[int]] = {}
    for c in ranked:
        row = conns.get(c.ean)
        if row is None:
            continue
        name = f"{row['substation']}/{row['feeder']}"
        acc = per_feeder.setdefault(name, [0, 0])
        acc[0] += 1
        acc[1] += truth_n.get(c.ean, 0)
    truth_notable = {
        n for n, (m, ev) in per_feeder.items() if notable_feeder(ev, m, rules, result.days)
    }
    named = {f.name for f in result.ranking.notable_feeders}
    right, missed, wrong = named & truth_notable, truth_notable - named, named - truth_notable
    misses += [f"notable feeder {n} not named" for n in sorted(missed)]
    misses += [f"feeder {n} named notable, truth does not" for n in sorted(wrong)]
    return Score(
        "UC2",
        f"{sum(c.events for c in ranked)} events on {len(ranked)} meters; "
        f"{len(named)} notable feeders",
        f"{len(exact)}/{len(ranked)} connections' event counts exact; notable feeders "
        f"{len(right)} right, {len(missed)} missed, {len(wrong)} wrong",
        len(exact) + len(right),
        len(ranked) + len(truth_notable | named),
        tuple(misses[:20]),
        counts={
            "events": sum(c.events for c in ranked),
            "notable_feeders": len(named),
            "findings": len(result.flags),
        },
        metrics={
            "connections": len(ranked),
            "event_counts_exact": len(exact),
            "notable_truth": len(truth_notable),
            "notable_right": len(right),
            "notable_missed": len(missed),
            "notable_wrong": len(wrong),
            "connections_not_readable": len(gaps),
            "events_not_readable": sum(unread.values()),
        },
    )


def _truth_episodes(
    twin: Path, wanted: Mapping[str, Period]
) -> list[tuple[str, datetime, datetime]]:
    """The twin's inverter-trip episodes of the EANs in ``wanted`` that overlap their
    window: (EAN, first trip, inverter back)."""
    ean_of = {int(r["connection"]): str(r["ean"]) for r in _rows(twin, "connections")}
    spans: dict[int, tuple[str, datetime, datetime]] = {}
    for t in _rows(twin, "inverter_trips"):
        ean = ean_of.get(int(t["connection"]), "")
        if ean not in wanted or "episode" not in t:
            continue
        at, until = stored_utc(t["at"]), stored_utc(t["until"])
        ep = int(t["episode"])
        old = spans.get(ep)
        spans[ep] = (ean, at, until) if old is None else (ean, min(old[1], at), max(old[2], until))
    return [s for s in spans.values() if s[1] < wanted[s[0]].end and wanted[s[0]].start < s[2]]


def _overlap(a: tuple[str, datetime, datetime], b: tuple[str, datetime, datetime]) -> bool:
    """Same EAN and overlapping in time (UC3 episodes)."""
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def match_episodes(
    found: Iterable[tuple[str, datetime, datetime]],
    truth: Iterable[tuple[str, datetime, datetime]],
) -> int:
    """Episodes matched one to one: same EAN and overlapping in time, greedily in time
    order (each truth episode matches at most one found and vice versa)."""
    pool = sorted(truth, key=lambda t: (t[0], t[1]))
    used: set[int] = set()
    matched = 0
    for ean, start, end in sorted(found, key=lambda f: (f[0], f[1])):
        for i, (e, s, f) in enumerate(pool):
            if i not in used and e == ean and s < end and start < f:
                used.add(i)
                matched += 1
                break
    return matched


def _truth_minutes(
    twin: Path, windows: Mapping[str, Period], inverter_v: float, reported: bool
) -> dict[tuple[str, int, str], int]:
    """Minutes beyond each limit per (EAN, meter phase, limit) in each EAN's window.

    ``reported=True`` (what UC3 is scored on): the 10-minute values as the meter reports
    them (``meterdata/voltages_10min``: its 0.2 V noise and 0.1 V resolution) -- the
    operator can only know what the meter says, so a value hovering at a limit counts
    the way the meter rounded it. ``reported=False``: the physical 10-minute means
    (truth ``voltages_10min_outside``), kept as a second figure."""
    out: dict[tuple[str, int, str], int] = {}
    if reported:
        path = twin / "meterdata" / "voltages_10min.parquet"
        if not path.is_file():
            return out
        table = pq.read_table(path, columns=["ean", "start", "phase", "voltage_v"])
        v = table.column("voltage_v")
        near = pc.or_(pc.less(v, 207.0), pc.greater(v, min(inverter_v, 253.0)))
        rows: list[dict[str, Any]] = table.filter(pc.and_(near, pc.greater(v, 0.0))).to_pylist()
    else:
        rows = _rows(twin, "voltages_10min_outside")
    for row in rows:
        ean = str(row["ean"])
        if ean not in windows:
            continue
        start = stored_utc(row["start"])
        if not windows[ean].start <= start < windows[ean].end:
            continue
        v_ = float(row["voltage_v"])
        for name, beyond in (
            (LOW, v_ < 207.0),
            (HIGH, v_ > 253.0),
            (INVERTER, v_ > inverter_v),
        ):
            if beyond:
                key = (ean, int(row["phase"]), name)
                out[key] = out.get(key, 0) + 10
    return out


def score_uc3(results: list[Uc03Result], twin: Path) -> Score:
    """UC3 against the truth: trip episodes matched one to one, and the minutes outside
    each limit per meter phase equal to what the meter reported, to the 10-minute step
    (:func:`_truth_minutes`; the physical means are a second figure)."""
    windows = {ean: r.period for r in results for ean in r.connections}
    truth_eps = _truth_episodes(twin, windows)
    found = [(e.ean, e.start, e.end) for r in results for e in r.episodes]
    matched = match_episodes(found, truth_eps)
    covered = sum(1 for t in truth_eps if any(_overlap(f, t) for f in found))
    on_a_trip = sum(1 for f in found if any(_overlap(f, t) for t in truth_eps))
    inverter_v = results[0].inverter_limit_v if results else 253.0
    truth_min = _truth_minutes(twin, windows, inverter_v, reported=True)
    physical_min = _truth_minutes(twin, windows, inverter_v, reported=False)
    found_min: dict[tuple[str, int, str], int] = {}
    for r in results:
        for (ean, phase), m in r.minutes.items():
            for name, minutes in m.items():
                if minutes:
                    found_min[(ean, phase, name)] = minutes
    phys_keys = set(physical_min) | set(found_min)
    phys_within = sum(
        1 for k in phys_keys if abs(physical_min.get(k, 0) - found_min.get(k, 0)) <= 10
    )
    keys = set(truth_min) | set(found_min)
    exact = sum(1 for k in keys if truth_min.get(k, 0) == found_min.get(k, 0))
    within = sum(1 for k in keys if abs(truth_min.get(k, 0) - found_min.get(k, 0)) <= 10)
    worst = sorted(keys, key=lambda k: -abs(truth_min.get(k, 0) - found_min.get(k, 0)))[:5]
    misses = [
        f"{e} L{p} {n}: {found_min.get((e, p, n), 0)} min found, "
        f"truth {truth_min.get((e, p, n), 0)}"
        for e, p, n in worst
        if truth_min.get((e, p, n), 0) != found_min.get((e, p, n), 0)
    ]
    if matched != len(truth_eps) or matched != len(found):
        misses.append(f"trip episodes: {matched} of {len(truth_eps)} matched, {len(found)} found")
    return Score(
        "UC3",
        f"{len(results)} feeder(s): {len(found)} trip episodes, "
        f"{sum(1 for b in (x for r in results for x in r.breaks))} limit breaks",
        f"trip episodes {matched} matched of {len(truth_eps)} (found {len(found)}); "
        f"minutes outside {exact}/{len(keys)} phase-limits exact, {within} within 10 min",
        matched + exact,
        max(len(truth_eps), len(found)) + len(keys),
        tuple(misses),
        counts={"feeders": len(results), "trip_episodes": len(found)},
        metrics={
            "trip_episodes_truth": len(truth_eps),
            "trip_episodes_found": len(found),
            "trip_episodes_matched": matched,
            "trip_episodes_truth_overlapped": covered,
            "trip_episodes_found_on_a_trip": on_a_trip,
            "phase_limits": len(keys),
            "phase_minutes_exact": exact,
            "phase_minutes_within_10min": within,
            "phase_minutes_abs_error": sum(
                abs(truth_min.get(k, 0) - found_min.get(k, 0)) for k in keys
            ),
            "minutes_outside_truth": sum(truth_min.values()),
            "minutes_outside_physical": sum(physical_min.values()),
            "phase_minutes_physical_within_10min": phys_within,
            "minutes_outside_found": sum(found_min.values()),
        },
    )


def scores(v: VoltageRun, twin: Path) -> list[Score]:
    """The stage's scores (UC2, and UC3 when it ran)."""
    out = [] if v.uc2 is None else [score_uc2(v.uc2, twin)]
    if v.uc3:
        out.append(score_uc3(v.uc3, twin))
    return out


# --- pictures and the report ----------------------------------------------------------


def pictures(v: VoltageRun, folder: Path) -> dict[str, Any]:
    """Write the UC2 and UC3 pictures (SVG for the report, PNG beside it) to
    ``folder`` and return the report's context: the SVG texts and the tables."""
    folder.mkdir(parents=True, exist_ok=True)
    context: dict[str, Any] = {"uc2": None, "uc3": []}
    if v.uc2 is None:
        return context
    chart = voltage_charts.feeder_events(v.uc2)
    charts.save(chart, folder / "uc2_feeder_events.png")
    v.pictures.append(charts.save(chart, folder / "uc2_feeder_events.svg"))
    context["uc2"] = {
        "svg": picture(charts.svg(chart)),
        "notable": [f.as_dict() for f in v.uc2.ranking.notable_feeders],
        "findings": [{"feeder": f, "finding": i} for f, i in v.uc2.flags],
    }
    for r in v.uc3:
        ean = voltage_charts.worst_connection(r) or (r.connections[0] if r.connections else None)
        if ean is None or r.voltages is None:
            continue
        chart = voltage_charts.phase_voltages(r, ean, r.connection_ids.get(ean, -1))
        name = r.feeder.replace("/", "_")
        charts.save(chart, folder / f"uc3_{name}.png")
        v.pictures.append(charts.save(chart, folder / f"uc3_{name}.svg"))
        context["uc3"].append(
            {
                "feeder": r.feeder,
                "cites": r.cites,
                "period": f"{r.period.start:%Y-%m-%d %H:%M} to {r.period.end:%Y-%m-%d %H:%M} UTC",
                "ean": ean,
                "episodes": len(r.episodes),
                "breaks": len(r.breaks),
                "svg": picture(charts.svg(chart)),
            }
        )
    return context
