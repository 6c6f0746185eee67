"""The twin as the exam (issue 16): run ``meetpunt demo --json`` for every outage mode
and several seeds, and print one table of the use cases' scores against the truth, then
the classes where a use case fell short.

    .venv/bin/python scripts/fault_modes.py [--modes showcase field stress] [--seeds 1 2 3 4 5]
        [--connections 1000] [--days 30] [--start 2025-10-06] [--json FILE] [--jobs 1]

Each run gets its own home folder in a temporary directory, so nothing of the user's
meetpunt home is touched. ``--start`` is passed to every mode (the showcase's own
default start is the demo's; pass ``--start 2025-06-02`` for the demo's story). A run
that fails is shown with its exit code and the end of its error output; the script then
exits 1. ``--json`` writes every run's use-case section for later comparison.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MEETPUNT = Path(sys.executable).with_name("meetpunt")


def run_demo(mode: str, seed: int, args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """One ``meetpunt demo --json`` run; its ``use_cases`` section, or its failure."""
    cmd = [
        str(MEETPUNT),
        "demo",
        "--json",
        "--faults",
        mode,
        "--seed",
        str(seed),
        "--connections",
        str(args.connections),
        "--days",
        str(args.days),
        "--start",
        args.start,
        "--home",
        str(home / f"{mode}-{seed}"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"mode": mode, "seed": seed, "failed": done.returncode, "err": done.stderr[-600:]}
    out = json.loads(done.stdout)
    return {"mode": mode, "seed": seed, "use_cases": out["use_cases"]}


def row(run: dict[str, Any]) -> str:
    """One line of the table: UC1 right, UC4 owed/exact/review/missed/overpaid, UC9."""
    if "failed" in run:
        return f"| {run['mode']} | {run['seed']} | failed (exit {run['failed']}) | | |"
    uc1 = run["use_cases"]["UC1"]["metrics"]
    uc4 = run["use_cases"]["UC4"]["metrics"]
    uc9 = run["use_cases"]["UC9"]["metrics"]
    review, wrong = uc1.get("on_review", 0), uc1.get("wrong", 0)
    return (
        f"| {run['mode']} | {run['seed']} "
        f"| {uc1['classified_right']}/{uc1['reports']}"
        + (f" ({review} review, {wrong} wrong)" if review or wrong else "")
        + f" | {uc4['paid_exactly']}/{uc4['owed']} exact, {uc4['owed_on_review']} review, "
        f"{uc4['missed']} missed, {uc4['overpaid']} overpaid "
        f"| {uc9['interruptions_exact']}/{uc9['interruptions_truth']} exact; "
        f"{uc9['outages_registered']} outages for {uc9['outages_truth']} |"
    )


def weak_classes(run: dict[str, Any]) -> list[str]:
    """The classes where a use case was not perfect, as short phrases."""
    found: list[str] = []
    for uc, right, total in (
        ("UC1", "classified_right", "reports"),
        ("UC4", "paid_exactly", "owed"),
        ("UC9", "interruptions_exact", "interruptions_truth"),
    ):
        for case, m in sorted(run["use_cases"][uc].get("by_case", {}).items()):
            bad = m.get(total, 0) - m.get(right, 0) - m.get("owed_on_review", 0)
            if bad > 0 or m.get("overpaid", 0):
                extra = f", {m['overpaid']:g} overpaid" if m.get("overpaid") else ""
                found.append(f"{uc} {case}: {m.get(right, 0):g}/{m.get(total, 0):g}{extra}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", default=["showcase", "field", "stress"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", default="2025-10-06")
    parser.add_argument("--json", type=Path, help="write every run's use_cases here")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (1 per 2 cores)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meetpunt-modes-") as tmp:
        jobs = [(m, s) for m in args.modes for s in args.seeds]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            runs = list(pool.map(lambda j: run_demo(j[0], j[1], args, Path(tmp)), jobs))
    print(
        f"{args.connections} connections x {args.days} days from {args.start}\n\n"
        "| mode | seed | UC1 right | UC4 owed | UC9 logged interruptions |\n"
        "|---|---|---|---|---|"
    )
    for r in runs:
        print(row(r))
    print()
    for r in runs:
        if "failed" in r:
            print(f"{r['mode']} seed {r['seed']} failed:\n{r['err']}")
        elif weak := weak_classes(r):
            print(f"{r['mode']} seed {r['seed']}: " + "; ".join(weak))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, default=str))
    return 1 if any("failed" in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
