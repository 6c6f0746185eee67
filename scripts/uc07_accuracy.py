"""UC7's accuracy against the number of days measured (issue 19), on twins of several
seeds and seasons: the pure analysis over the twin's own files (the gate is tested
elsewhere; this measures the method).

    .venv/bin/python scripts/uc07_accuracy.py --seeds 1 2 3 --starts 2025-01-13 2025-06-02 \
        --days 1 3 7 10 --connections 1000 --out uc07_accuracy.json
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from meetpunt.demo.uc07 import Uc07Score, merge, score_placements
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.jsonout import dumps
from meetpunt.privacy.model import Period
from meetpunt.usecases.uc07_gis_topology import Member, analyse, feeder_loads


def members_from(register: Path, index: dict[str, int]) -> dict[str, list[Member]]:
    """The twin's register file as UC7's members per substation (smart, in service)."""
    latest: dict[str, dict[str, str]] = {}
    with register.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["commodity"] == "electricity":
                latest[row["ean"]] = row  # the file lists versions in time order
    out: dict[str, list[Member]] = {}
    for row in latest.values():
        if True:
            if row["commodity"] != "electricity" or row["meter_type"] != "smart":
                continue
            if row["status"] != "IBD" or row["ean"] not in index:
                continue
            three = row["capacity"].startswith("3x")
            out.setdefault(row["substation"], []).append(
                Member(row["ean"], index[row["ean"]], row["feeder"], row["phase"] or None, three)
            )
    return out


def measure(twin: Path, first: date, days: int, operator: bool = True) -> Uc07Score:
    """UC7's score on one twin over ``days`` from ``first``; with ``operator`` the
    analysis also uses the operator's substation measurements (``operator/``)."""
    stations = pq.read_table(twin / "operator" / "substation_measurements.parquet")
    volts = pq.read_table(twin / "meterdata" / "voltages_10min.parquet")
    truth = pq.read_table(twin / "truth" / "connections.parquet")
    index = dict(
        zip(truth.column("ean").to_pylist(), truth.column("connection").to_pylist(), strict=True)
    )
    groups = members_from(twin / "register" / "connections.csv", index)
    period = Period(local_midnight_utc(first), local_midnight_utc(first + timedelta(days=days)))
    start = volts.column("start")
    inside = pc.and_(pc.greater_equal(start, period.start), pc.less(start, period.end))
    volts = volts.filter(inside)
    scores = []
    for substation, members in groups.items():
        loads = feeder_loads(stations, substation, period) if operator else None
        placements, _ = analyse(volts, members, period, loads)
        scores.append(score_placements(placements, truth.to_pylist()))
    return merge(scores)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--starts", nargs="+", default=["2025-01-13", "2025-06-02"])
    ap.add_argument("--days", type=int, nargs="+", default=[1, 3, 7, 10])
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--faults", default="field")
    ap.add_argument("--out", type=Path, default=Path("uc07_accuracy.json"))
    ap.add_argument("--keep", type=Path, default=None, help="Keep the twins in this folder.")
    ap.add_argument(
        "--meters-only",
        action="store_true",
        help="Leave out the operator's substation measurements (voltages alone).",
    )
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or Path(tmp)
        for start in a.starts:
            for seed in a.seeds:
                twin = root / f"twin-{start}-{seed}"
                if not (twin / "manifest.json").exists():
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "meetpunt",
                            "twin",
                            "generate",
                            "--out",
                            str(twin),
                            "--connections",
                            str(a.connections),
                            "--days",
                            str(max(a.days)),
                            "--start",
                            start,
                            "--seed",
                            str(seed),
                            "--faults",
                            a.faults,
                        ],
                        check=True,
                        capture_output=True,
                    )
                for days in a.days:
                    s = measure(twin, date.fromisoformat(start), days, not a.meters_only)
                    row = {"start": start, "seed": seed, "days": days, **s.as_dict()}
                    results.append(row)
                    print(dumps(row), flush=True)
    a.out.write_text(dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main()
