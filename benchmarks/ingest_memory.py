"""Benchmark of ingest memory (issue 13, item 11): peak RSS for 1x, 4x and 16x a file.

Goal: flat. Files are streamed in bounded pieces (Parquet record batches, CSV blocks,
P1 telegram runs), so the peak resident memory of ingesting a file should not grow with
the file: the ratio peak(16x) / peak(1x) should stay near 1 (it was ~16 when files were
read whole). Also timed: a P1 "capture" of 10 MB of ``/`` and one of 10 MB of random
bytes (once 249 s, 5.5 GB and 10.5 M quarantine rows), which must finish in seconds
with the quarantine capped.

Setup (not measured): a small grid twin's register (SQLite), and per format a file of
1x, 4x and 16x ``--rows`` rows (quarter-hour values: Parquet and CSV; P1: one meter's
telegrams). Each file is ingested into a fresh store by a child process
(``--child``), which reports its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``)
and its RSS before the ingest (imports, register index), the peak reset just before
the ingest (``/proc/self/clear_refs``, Linux; elsewhere the whole process's
``getrusage(RUSAGE_SELF).ru_maxrss``): one process per measurement, so no measurement
inherits another's peak.

    .venv/bin/python benchmarks/ingest_memory.py [--rows 200000] [--p1 4000]
        [--formats parquet csv p1] [--scales 1 4 16]

Measured (2 shared cores, 2026-12-06; RSS before the ingest ~162 MB):

* Parquet 200 k / 800 k / 3.2 M / 12.8 M rows: peak 260 / 278 / 384 / 487 MB (16x/1x
  1.48, 64x/1x 1.88). Before streaming, the same 3.2 M-row file peaked at 1,493 MB
  (and wrote 2.4 M quarantine rows; now 10,001). Not yet flat: the rest grows with
  the rows inserted, in DuckDB's insert path (the reader alone is flat, and neither the
  store comparison nor the gap estimates are it: measured by leaving each out; DuckDB's
  ``memory_limit`` does not change it).
* CSV 50 k / 200 k / 800 k rows: 225 / 238 / 262 MB (16x/1x 1.16).
* P1 20 k / 83 k / 331 k rows (4 k / 16 k / 64 k telegrams): 242 / 259 / 290 MB (1.20).
* 10 MB of ``/``: 0.4-0.9 s, 204 MB, 1 quarantine row; 10 MB of random bytes: 1-2.5 s,
  ~265 MB, 30,637 refused, 10,001 quarantine rows (was 249 s, 5.5 GB, 10.5 M rows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

START = datetime(2025, 6, 2, 22, 0, tzinfo=UTC)
SCALES = (1, 4, 16)
GARBAGE_BYTES = 10 * 1024 * 1024
ROW_GROUP = 65_536
"""Rows per Parquet row group of the files. The reader holds one row group's column
chunks at a time, so its memory follows the row-group size the writer chose (pyarrow's
default is 1 M rows: ~50 MB more), not the file's size; the files here keep it fixed."""


def _rss_kb() -> int:
    """Current resident set size in KB (Linux /proc)."""
    with open("/proc/self/statm") as handle:  # noqa: PTH123
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM) so it measures the ingest alone (Linux:
    ``echo 5 > /proc/self/clear_refs``); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:  # noqa: PTH123
            handle.write("5")
    except OSError:
        return False
    return True


def _peak_kb() -> int:
    """Peak RSS since the last reset (VmHWM), else since the start (getrusage)."""
    try:
        with open("/proc/self/status") as handle:  # noqa: PTH123
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(path: Path, db: str, store_path: Path, ean: str | None) -> dict[str, Any]:
    """Ingest one file into a fresh store; report memory, time and counts."""
    from meetpunt.app.hub import ingestor
    from meetpunt.io.files import read_meter_file
    from meetpunt.meterdata.store import open_store
    from meetpunt.register import open_register

    register = open_register(db)
    store = open_store(store_path)
    engine = ingestor(store, register, now=datetime(2026, 1, 1, tzinfo=UTC))
    before = _rss_kb()
    reset = _reset_peak()
    began = time.perf_counter()
    report = engine.ingest(read_meter_file(path, None, ean))
    seconds = time.perf_counter() - began
    rows = store.query("SELECT count(*) AS n FROM quarantine").column("n")[0].as_py()
    store.close()
    register.dispose()
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "rss_before_mb": before / 1024,
        "peak_mb": _peak_kb() / 1024,
        "peak_reset": reset,
        "seconds": seconds,
        "rows": report.total("rows"),
        "accepted": report.total("accepted"),
        "refused": sum(report.quarantined.values()),
        "quarantine_rows": rows,
    }


def setup(
    folder: Path, rows: int, telegrams: int, scales: tuple[int, ...], formats: tuple[str, ...]
) -> tuple[str, list[tuple[str, int, Path]], str]:
    """A register from a small twin and the files to ingest: (format, scale, path)."""
    from meetpunt.register import open_register
    from meetpunt.register.csvio import import_file
    from meetpunt.twin.generate import TwinSettings, generate

    generate(TwinSettings(connections=40, days=1, start=date(2025, 6, 2), seed=7), folder / "twin")
    db = f"sqlite:///{folder / 'register.sqlite'}"
    register = open_register(db)
    for name in ("connections", "secondary_allocation_points", "contracts"):
        with register.session() as session:
            import_file(session, folder / "twin" / "register" / f"{name}.csv")
    with register.session() as session:
        eans = sorted({e.ean for e in session.meter_index() if e.commodity.value == "electricity"})
    register.dispose()
    files: list[tuple[str, int, Path]] = []
    for scale in scales:
        table = _quarter_hours(eans, rows * scale)
        (folder / f"x{scale}").mkdir()
        if "parquet" in formats:
            parquet = folder / f"x{scale}" / "quarter_hours.parquet"
            pq.write_table(table, parquet, compression="zstd", row_group_size=ROW_GROUP)
            files.append(("parquet", scale, parquet))
        if "csv" in formats:
            csv_path = folder / f"x{scale}" / "quarter_hours.csv"
            small = table.slice(0, max(rows * scale // 4, 1))  # CSV is parsed in Python: 1/4
            pacsv.write_csv(small, csv_path)
            files.append(("csv", scale, csv_path))
        if "p1" in formats:
            p1 = folder / f"x{scale}" / f"{eans[0]}.p1"
            _capture(p1, telegrams * scale)
            files.append(("p1", scale, p1))
    return db, files, eans[0]


def _quarter_hours(eans: list[str], n: int) -> pa.Table:
    """``n`` quarter-hour rows: connection after connection, each in time order."""
    per = -(-n // len(eans))
    start_us = int(START.timestamp()) * 1_000_000
    steps = start_us + np.arange(per, dtype=np.int64) * 900_000_000
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "ean": pa.array(np.repeat(np.array(eans), per)),
            "start": pa.array(np.tile(steps, len(eans)), pa.timestamp("us", "UTC")),
            "import_wh": pa.array(rng.integers(0, 300, per * len(eans), dtype=np.int64)),
            "export_wh": pa.array(rng.integers(0, 100, per * len(eans), dtype=np.int64)),
        }
    )
    return table.slice(0, n)


def _capture(path: Path, count: int) -> None:
    """A serial log of one DSMR 5 meter, a telegram every 10 s."""
    from meetpunt.domain.calendar import Tariff
    from meetpunt.twin.p1 import GasReading, P1Snapshot, render_telegram

    with path.open("wb") as out:
        for i in range(count):
            at = START + timedelta(seconds=10 * i)
            snapshot = P1Snapshot(
                identification="XMX5LGF0010455364812",
                timestamp=at,
                equipment_id="E0045001045536481",
                import_wh=(4_512_345 + i // 3, 6_234_567),
                export_wh=(1_345_678, 2_456_789),
                tariff=Tariff.T1,
                power_import_w=900 + i % 500,
                power_export_w=0,
                failures=12,
                long_failures=4,
                failure_log=((START - timedelta(days=3), 240),),
                sags=(3, 1, 0),
                swells=(0, 2, 0),
                voltages_v=(230.1, 229.4, 231.0),
                currents_a=(4, 1, 0),
                phase_import_w=(600, 300, 0),
                phase_export_w=(0, 0, 0),
                gas=GasReading(
                    1, "G0032001045536481", at - timedelta(seconds=at.second), 2_345_678
                ),
            )
            out.write(render_telegram(snapshot, "5.0"))


def run_child(path: Path, db: str, folder: Path, ean: str | None) -> dict[str, Any]:
    store = folder / f"store-{path.parent.name}-{path.suffix[1:]}.duckdb"
    store.unlink(missing_ok=True)
    args = [sys.executable, __file__, "--child", str(path), "--db", db, "--store", str(store)]
    if ean:
        args += ["--ean", ean]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed on {path}:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="quarter-hour rows at 1x")
    parser.add_argument("--p1", type=int, default=4_000, help="P1 telegrams at 1x")
    parser.add_argument("--scales", type=int, nargs="+", default=list(SCALES))
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv", "p1"])
    parser.add_argument("--child", type=Path)
    parser.add_argument("--db")
    parser.add_argument("--store", type=Path)
    parser.add_argument("--ean")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.db, args.store, args.ean)))
        return
    with tempfile.TemporaryDirectory(prefix="meetpunt-bench-mem-") as tmp:
        folder = Path(tmp)
        scales = tuple(args.scales)
        db, files, ean = setup(folder, args.rows, args.p1, scales, tuple(args.formats))
        results: dict[tuple[str, int], dict[str, Any]] = {}
        print(f"{'file':<28}{'MB':>8}{'rows':>10}{'s':>8}{'RSS before':>12}{'peak':>8}")
        for fmt, scale, path in files:
            r = run_child(path, db, folder, ean if fmt == "p1" else None)
            results[(fmt, scale)] = r
            label = f"{fmt} x{scale}"
            print(
                f"{label:<28}{r['bytes'] / 1e6:>8.1f}{r['rows']:>10}{r['seconds']:>8.2f}"
                f"{r['rss_before_mb']:>11.0f}M{r['peak_mb']:>7.0f}M"
            )
        print()
        for fmt in args.formats:
            base = results[(fmt, scales[0])]
            own = max(base["peak_mb"] - base["rss_before_mb"], 1.0)
            parts = []
            for s in scales[1:]:
                r = results[(fmt, s)]
                grown = (r["peak_mb"] - r["rss_before_mb"]) / own
                parts.append(
                    f"{s}x/{scales[0]}x {r['peak_mb'] / base['peak_mb']:.2f} (own {grown:.2f})"
                )
            ratios = ", ".join(parts)
            print(f"{fmt:<8} peak ratio {ratios}  (goal: flat, ~1.0; own: the ingest's growth)")
        print()
        for name, data in (
            ("slashes", b"/" * GARBAGE_BYTES),
            ("random", np.random.default_rng(13).bytes(GARBAGE_BYTES)),
        ):
            path = folder / "garbage" / name / f"{ean}.p1"
            path.parent.mkdir(parents=True)
            path.write_bytes(data)
            r = run_child(path, db, folder, ean)
            print(
                f"P1 of 10 MB {name:<8}: {r['seconds']:.1f} s, peak {r['peak_mb']:.0f} MB, "
                f"{r['refused']} refused, {r['quarantine_rows']} quarantine row(s) "
                "(was 249 s, 5.5 GB, 10.5 M rows for slashes)"
            )


if __name__ == "__main__":
    main()
