"""UC5's estimated effect of an intervention against the twin's true effect, offline
(issue 18): ``effect_error_v`` per twin, the pure analysis (:func:`compare_windows`)
over the twin's own files, without the gate (the gate is tested elsewhere; this
measures the method). The group is the twin's smart meters on the intervention's
substation (tap change) or feeder (truth's feeder: UC1's street rule finds it), each
counted under its registered phase as UC5 does; the truth is scored as the demo scores
it (:func:`meetpunt.demo.grid_checks.true_effects`: the same meter phases, the after
window).

    .venv/bin/python scripts/uc05_effect.py /tmp/h5/.meetpunt/demo/twin [more twins]
    .venv/bin/python scripts/uc05_effect.py --make 2 --make 6:tap_change:2025-01-06

``--make SEED[:KIND[:START]]`` generates the demo's twin (1,000 connections x 30 days,
showcase outages) for that seed, intervention kind and first day under ``--out`` first,
one at a time (a few minutes each), unless it is there. ``--compare`` also prints the
estimate without UC5's per-unit step (the supply voltage a fitted regressor) and
without the conditions (the difference of the means).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meetpunt.demo.grid_checks import true_effects_of
from meetpunt.usecases.uc05_intervention import (
    WINDOW_DAYS,
    Uc05Rules,
    compare_windows,
    conditions,
    read_interventions,
)


def _window(table: pa.Table, start: Any, end: Any) -> pa.Table:
    s = table.column("start")
    a = pa.scalar(start, pa.timestamp("us", "UTC"))
    b = pa.scalar(end, pa.timestamp("us", "UTC"))
    return table.filter(pc.and_(pc.greater_equal(s, a), pc.less(s, b)))


def measure(twin: Path, *, control: bool = True, per_unit: bool = True) -> str:
    """One line: the intervention, per phase estimate / truth, the largest error."""
    note = read_interventions(twin / "operator" / "interventions.csv")[0]
    conns = {
        str(c["ean"]): c for c in pq.read_table(twin / "truth" / "connections.parquet").to_pylist()
    }
    group = {
        e: c
        for e, c in conns.items()
        if c["substation"] == note.substation
        and (note.feeder is None or c["feeder"] == note.feeder)
        and c["meter"] != "ferraris"
    }
    phase_of = {e: c["registered_phase"] for e, c in group.items()}
    ids = {int(c["connection"]): e for e, c in group.items()}
    before, after = note.windows(WINDOW_DAYS)
    volts = pq.read_table(
        twin / "meterdata" / "voltages_10min.parquet",
        columns=["connection", "start", "phase", "voltage_v"],
        filters=[("connection", "in", list(ids))],
    )
    stations = pq.read_table(twin / "operator" / "substation_measurements.parquet")
    cond = conditions(stations, note.substation, note.feeder)
    phases, effects, _left, _samples = compare_windows(
        _window(volts, before.start, before.end),
        _window(volts, after.start, after.end),
        cond,
        ids,
        phase_of,
        Uc05Rules.load(),
        control=control,
        per_unit=per_unit,
    )
    true = true_effects_of(twin, effects, conns.values(), after)
    parts = []
    worst = 0.0
    for p in phases:
        if p.effect_v is None or p.phase not in true:
            continue
        err = abs(p.effect_v - true[p.phase])
        worst = max(worst, err)
        parts.append(f"{p.phase} {p.effect_v:+.2f}/{true[p.phase]:+.2f}")
    where = note.feeder or note.substation
    return (
        f"{twin} {note.kind} {where} {note.day}: est/true {', '.join(parts)}; "
        f"effect_error_v {worst:.3f}"
    )


def make(spec: str, out: Path) -> Path:
    """The twin of ``SEED[:KIND[:START]]`` under ``out``, generated unless it is there."""
    from meetpunt.twin.generate import TwinSettings, generate

    seed, kind, start = [*spec.split(":"), "", ""][:3]
    folder = out / f"s{seed}-{kind or 'drawn'}{'-' + start if start else ''}"
    if not (folder / "manifest.json").exists():
        settings = TwinSettings(seed=int(seed), intervention=kind or None)
        if start:
            settings = replace(settings, start=date.fromisoformat(start))
        generate(settings, folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("twins", nargs="*", type=Path, help="generated twin folders")
    parser.add_argument("--make", action="append", default=[], help="SEED[:KIND[:START]]")
    parser.add_argument("--out", type=Path, default=Path("/tmp/uc05-twins"))
    parser.add_argument("--compare", action="store_true", help="also the earlier estimates")
    args = parser.parse_args()
    for twin in [*args.twins, *(make(spec, args.out) for spec in args.make)]:
        print(measure(twin), flush=True)
        if args.compare:
            print("  supply voltage fitted: " + measure(twin, per_unit=False), flush=True)
            print("  means' difference:     " + measure(twin, control=False), flush=True)


if __name__ == "__main__":
    main()
