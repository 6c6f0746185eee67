"""Benchmark of meter-data ingestion (issue 4): quarter-hour rows/s into the store.

Target: ingesting quarter-hour values from Parquet into the DuckDB store, with
validation and dedupe (append-if-not-exists), runs at least 30 % of the rate of a raw
DuckDB Arrow append of the same rows measured in the same run.

Setup (not timed): a register of ``--connections`` connections from the grid twin,
and a Parquet file of ``--days`` days of quarter-hour values for them. Timed, best of
``--repeat``:

* ours: read the Parquet file + :meth:`Ingestor.ingest` into a fresh store file
  (register lookup, VEE row checks, in-batch and in-store dedupe, insert, gap check);
* again, the same rows from a second file into the filled store (all duplicates);
* the reference: ``INSERT INTO t SELECT * FROM arrow_table`` of the same rows (already
  in memory, keyed by the same connection ids) into a fresh DuckDB file.

    .venv/bin/python benchmarks/ingest_quarter_hours.py [--connections 1000] [--days 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meetpunt import rulebook
from meetpunt.io.files import read_meter_file
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.store import open_store
from meetpunt.register import open_register
from meetpunt.register.csvio import import_file
from meetpunt.twin.generate import TwinSettings, generate

TARGET_RATIO = 0.30
START = datetime(2025, 6, 2, 22, 0, tzinfo=UTC)


def setup(folder: Path, connections: int, days: int) -> tuple[ConnectionIndex, Path, pa.Table]:
    """A register from the twin and a Parquet file of quarter-hour values for it."""
    generate(TwinSettings(connections, 1, date(2025, 6, 2), 7), folder / "twin")
    register = open_register(f"sqlite:///{folder / 'register.sqlite'}")
    for name in ("connections", "secondary_allocation_points", "contracts"):
        with register.session() as session:
            import_file(session, folder / "twin" / "register" / f"{name}.csv")
    rules = rulebook.vee_rules()
    with register.session() as session:
        entries = [e for e in session.meter_index() if e.commodity.value == "electricity"]
    register.dispose()
    index = ConnectionIndex(entries, rules.phase_voltage_v)
    eans = np.array(sorted({e.ean for e in entries}))
    ids = np.array([index.connection_ids(pa.array([e]), entries[0].commodity)[0] for e in eans])
    steps = days * 96
    rng = np.random.default_rng(7)
    start_us = int(START.timestamp()) * 1_000_000
    starts = start_us + np.arange(steps, dtype=np.int64) * 900_000_000
    n = len(eans) * steps
    table = pa.table(
        {
            "ean": pa.array(np.repeat(eans, steps)),
            "start": pa.array(np.tile(starts, len(eans)), pa.timestamp("us", "UTC")),
            "import_wh": pa.array(rng.integers(0, 400, n, dtype=np.int64)),
            "export_wh": pa.array(rng.integers(0, 150, n, dtype=np.int64)),
        }
    )
    path = folder / "quarter_hours.parquet"
    pq.write_table(table, path, compression="zstd")
    reference = pa.table(
        {
            "connection": pa.array(np.repeat(ids, steps).astype(np.int32)),
            "start": table.column("start").cast(pa.int64()).cast(pa.timestamp("us")),
            "import_wh": table.column("import_wh"),
            "export_wh": table.column("export_wh"),
        }
    )
    return index, path, reference


def ours(folder: Path, index: ConnectionIndex, path: Path, run: int) -> tuple[float, float]:
    """Seconds for a fresh ingest, and for the same rows again from another file."""
    rules = rulebook.vee_rules()
    store = open_store(folder / f"ours-{run}.duckdb")
    ingestor = Ingestor(store, index, rules, now=datetime(2030, 1, 1, tzinfo=UTC))
    started = time.perf_counter()
    report = ingestor.ingest(read_meter_file(path))
    fresh = time.perf_counter() - started
    assert report.total("accepted") == store.count("quarter_hours")
    again = path.with_name(f"again-{run}.parquet")
    pq.write_table(pq.read_table(path), again, compression="snappy")  # same rows, new bytes
    started = time.perf_counter()
    report = ingestor.ingest(read_meter_file(again))
    repeat = time.perf_counter() - started
    assert report.total("accepted") == 0, "the second ingest must store nothing"
    store.close()
    return fresh, repeat


def reference(folder: Path, table: pa.Table, run: int) -> float:
    """Seconds for a raw DuckDB Arrow append of the same rows."""
    con = duckdb.connect(str(folder / f"raw-{run}.duckdb"))
    con.execute(
        "CREATE TABLE quarter_hours (connection INTEGER, start TIMESTAMP, "
        "import_wh BIGINT, export_wh BIGINT)"
    )
    con.register("incoming", table)
    started = time.perf_counter()
    con.execute("INSERT INTO quarter_hours SELECT * FROM incoming")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        index, path, table = setup(folder, args.connections, args.days)
        rows = table.num_rows
        ours(folder, index, path, -1)  # warm-up: imports, caches
        fresh, repeat = zip(
            *(ours(folder, index, path, r) for r in range(args.repeat)), strict=True
        )
        raw = [reference(folder, table, r) for r in range(args.repeat)]
    best_ours, best_repeat, best_raw = min(fresh), min(repeat), min(raw)
    print(f"{rows:,} quarter-hour rows ({args.connections} connections x {args.days} days)")
    print(f"  meetpunt ingest (Parquet -> store, VEE, dedupe): {rows / best_ours:>12,.0f} rows/s")
    print(f"  same rows again (all duplicates):                {rows / best_repeat:>12,.0f} rows/s")
    print(f"  raw DuckDB Arrow append (reference):             {rows / best_raw:>12,.0f} rows/s")
    ratio = best_raw / best_ours
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"  ratio ours / raw: {ratio:.2f} (target >= {TARGET_RATIO:.2f}: {verdict})")


if __name__ == "__main__":
    main()
