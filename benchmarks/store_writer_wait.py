"""Benchmark (not a test): how long a small write lease waits for the meter-data store
while a server reads it (MTR-1 side by side; issue 17 follow-up, the kept read lease).

Run it beside ``benchmarks/api_readings.py`` against a running ``meetpunt serve``:

    .venv/bin/python benchmarks/store_writer_wait.py STORE --tries 20

Each try writes one row of ``meta`` in a write lease of its own, then pauses 0.3 s;
prints the median and longest wait and how many tries gave up (MTR-1.store_busy after
``--wait`` seconds). Figures in docs/api.md ("Third round").
"""

from __future__ import annotations

import argparse
import statistics
import time

from meetpunt.errors import StoreUnavailableError
from meetpunt.meterdata.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--wait", type=float, default=20.0)
    args = parser.parse_args()
    store = open_store(args.store, wait_s=args.wait)
    took: list[float] = []
    busy = 0
    for i in range(args.tries):
        began = time.perf_counter()
        try:
            with store.transaction() as con:
                con.execute("INSERT OR REPLACE INTO meta VALUES (?, 'w')", [f"bench{i}"])
            took.append(time.perf_counter() - began)
        except StoreUnavailableError:
            busy += 1
        time.sleep(0.3)
    if took:
        print(
            f"{len(took)} writes, median {statistics.median(took) * 1000:.0f} ms, "
            f"longest {max(took) * 1000:.0f} ms, gave up {busy}"
        )
    else:
        print(f"every try gave up ({busy})")


if __name__ == "__main__":
    main()
