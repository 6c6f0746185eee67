"""UC3's inverter-trip episodes against the twin's truth, offline (issue 18): precision
and recall of the episode definition on EVERY feeder of a generated twin, in 10-day
windows -- not only the demo's two notable feeders. The pure analysis over the twin's own
files (the gate is tested elsewhere; this measures the method). The truth episodes are
regrouped from the twin's per-trip rows with :func:`meetpunt.twin.truth.trip_episodes`,
so a twin generated before a change of the definition is scored by the current one.

    .venv/bin/python scripts/uc3_trip_episodes.py ~/.meetpunt/demo/twin [more twins]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meetpunt import rulebook
from meetpunt.demo.voltage import match_episodes
from meetpunt.privacy.model import stored_utc
from meetpunt.twin.model import STEP_S
from meetpunt.twin.powerflow import InverterTrip, PhysicsSettings
from meetpunt.twin.truth import trip_episodes as truth_grouping
from meetpunt.usecases.uc03_seasonal import trip_episodes

WINDOW = timedelta(days=10)
Span = tuple[str, datetime, datetime]


def truth_spans(twin: Path, ean_of: dict[int, str], gap: int | None = None) -> list[Span]:
    """The truth's episodes (EAN, first step off, back on), regrouped by the current rule."""
    rows = pq.read_table(twin / "truth" / "inverter_trips.parquet").to_pylist()
    if not rows:
        return []
    t0 = min(stored_utc(r["at"]) for r in rows)
    trips = [
        InverterTrip(
            int(r["connection"]),
            int(r["phase"]) - 1,
            int((stored_utc(r["at"]) - t0).total_seconds() // STEP_S),
            float(r["voltage_v"]),
        )
        for r in rows
    ]
    delay = PhysicsSettings().reconnect_steps
    groups: dict[int, list[InverterTrip]] = defaultdict(list)
    grouped = truth_grouping(trips, delay, gap)
    for t, e in zip(trips, grouped, strict=True):
        groups[e].append(t)
    out = []
    for members in groups.values():
        first = min(t.step for t in members)
        last = max(t.step for t in members) + delay
        out.append(
            (
                ean_of[members[0].index],
                t0 + timedelta(seconds=first * STEP_S),
                t0 + timedelta(seconds=last * STEP_S),
            )
        )
    return out


Read = tuple[tuple[str, ...], datetime, datetime]


def demo_reads(home: Path) -> list[Read]:
    """The demo's UC3 reads, from its audit log: (EANs, period start, period end) of
    each granted UC3 decision -- exactly what the demo analysed."""
    from meetpunt.privacy import audit
    from meetpunt.register import open_register

    register = open_register(f"sqlite:///{home / 'register.sqlite'}", create=False)
    try:
        with register.session() as session:
            rows = audit.records(session.db)
    finally:
        register.dispose()
    return [
        (r.entry.connections, stored_utc(r.entry.period_start), stored_utc(r.entry.period_end))
        for r in rows
        if r.entry.purpose == "UC3"
        and r.entry.event == "decision"
        and r.entry.outcome == "granted"
        and r.entry.period_start is not None
        and r.entry.period_end is not None
    ]


def score(
    twin: Path,
    gap: int | None = None,
    reads: list[Read] | None = None,
) -> tuple[int, int, int]:
    """(truth, found, matched) over every feeder and 10-day window of ``twin`` (or only
    the demo's ``reads``); with ``gap`` (both groupings) instead of the
    rule file's."""
    rules = rulebook.voltage_quality()
    if gap is not None:
        rules = replace(rules, episode_gap_quarters=gap)
    conns = pq.read_table(twin / "truth" / "connections.parquet").to_pylist()
    ean_of = {int(c["connection"]): str(c["ean"]) for c in conns}
    feeder_of = {int(c["connection"]): f"{c['substation']}/{c['feeder']}" for c in conns}
    volts = pq.read_table(
        twin / "meterdata" / "voltages_10min.parquet",
        columns=["connection", "start", "phase", "voltage_v"],
    )
    energy = pq.read_table(
        twin / "meterdata" / "quarter_hours.parquet",
        columns=["connection", "start", "import_wh", "export_wh"],
    )
    start = stored_utc(pc.min(energy.column("start")).as_py())
    end = stored_utc(pc.max(energy.column("start")).as_py()) + timedelta(minutes=15)
    truth_all = truth_spans(twin, ean_of, gap)
    members: dict[str, list[int]] = defaultdict(list)
    for cid, f in feeder_of.items():
        members[f].append(cid)
    cid_of = {e: c for c, e in ean_of.items()}
    n_truth = n_found = n_matched = 0
    windows: list[tuple[datetime, datetime]] = []
    at = start
    while at < end:
        windows.append((at, min(at + WINDOW, end)))
        at = windows[-1][1]
    groups = [(a, b, list(members.values())) for a, b in windows]
    if reads is not None:
        groups = [(a, b, [[cid_of[e] for e in eans if e in cid_of]]) for eans, a, b in reads]
    for at, until, feeders in groups:
        ts = pa.scalar(at, pa.timestamp("us", "UTC")), pa.scalar(until, pa.timestamp("us", "UTC"))

        def window(table: pa.Table, ts: tuple[pa.Scalar, pa.Scalar] = ts) -> pa.Table:
            s = table.column("start")
            return table.filter(pc.and_(pc.greater_equal(s, ts[0]), pc.less(s, ts[1])))

        v_w, e_w = window(volts), window(energy)
        v_c = np.asarray(v_w.column("connection").to_numpy(), np.int64)
        e_c = np.asarray(e_w.column("connection").to_numpy(), np.int64)
        for cids in feeders:
            eans = {c: ean_of[c] for c in cids}
            sel = np.fromiter(cids, np.int64)
            found = trip_episodes(
                e_w.filter(pa.array(np.isin(e_c, sel))),
                v_w.filter(pa.array(np.isin(v_c, sel))),
                eans,
                rules,
            )
            # what UC3 can read: the connections with meter data in the window (a
            # traditional meter's trips are in the truth but in no data; the demo reads
            # the smart meters only)
            mine = {eans[c] for c in np.unique(e_c).tolist() if c in eans}
            truth = [t for t in truth_all if t[0] in mine and t[1] < until and at < t[2]]
            spans = [(f.ean, f.start, f.end) for f in found]
            n_truth += len(truth)
            n_found += len(spans)
            n_matched += match_episodes(spans, truth)
    return n_truth, n_found, n_matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("twins", nargs="+", type=Path, help="generated twin folders")
    parser.add_argument(
        "--home", type=Path, action="append", help="a demo's folder per twin: its UC3 reads only"
    )
    parser.add_argument("--gap", type=int, action="append", help="episode_gap_quarters")
    args = parser.parse_args()
    homes = args.home or [None] * len(args.twins)
    for twin, home in zip(args.twins, homes, strict=True):
        reads = None if home is None else demo_reads(home)
        for gap in args.gap or [None]:
            truth, found, matched = score(twin, gap, reads)
            recall = matched / truth if truth else float("nan")
            precision = matched / found if found else float("nan")
            print(
                f"{twin} (episode_gap_quarters {gap or 'of the rule file'}): truth {truth}, "
                f"found {found}, matched {matched}: recall {recall:.1%}, precision {precision:.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
