"""Benchmark of the grid twin (issue 3): connection-days per second and power-flow share.

Target: 1,000 connections x 30 days in under 60 s on the 2-core machine, growing
linearly. Runs the real generator at two sizes in the same process and prints, per
size, the seconds per stage, the power-flow share of the time, the throughput and the
ratio against the target; then the growth factor between the sizes (linear = the
size ratio).

    .venv/bin/python benchmarks/twin_generate.py [--connections 1000] [--days 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from meetpunt.twin.generate import TwinSettings, generate

TARGET_SECONDS = 60.0
TARGET_CONNECTION_DAYS = 1000 * 30


def run(connections: int, days: int) -> float:
    """Generate once into a temporary folder; print the stage times; return seconds."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = generate(TwinSettings(connections, days, date(2025, 6, 2), 1), Path(folder))
        seconds = time.perf_counter() - started
    rate = connections * days / seconds
    target_rate = TARGET_CONNECTION_DAYS / TARGET_SECONDS
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    print(f"{connections} connections x {days} days: {seconds:.1f} s ({stages})")
    print(
        f"  power flow: {result.power_flows} flows, {result.solver_seconds:.1f} s in the solver "
        f"= {result.solver_seconds / seconds:.0%} of the run; after inverter trips "
        f"{result.trip_power_flows} flows, {result.trip_solver_seconds:.1f} s"
    )
    print(f"  {rate:,.0f} connection-days/s; ratio to target rate {rate / target_rate:.2f}x")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    small = run(args.connections // 4, args.days)
    full = run(args.connections, args.days)
    print(f"growth for 4x the connections: {full / small:.2f}x (linear = 4.00x)")
    verdict = "meets" if full <= TARGET_SECONDS * args.connections * args.days / 30000 else "misses"
    print(f"{verdict} the target of {TARGET_SECONDS:.0f} s per 1,000 connections x 30 days")


if __name__ == "__main__":
    main()
