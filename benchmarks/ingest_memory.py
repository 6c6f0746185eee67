"""Benchmark of ingest memory (issue 13, item 11): peak RSS for 1x, 4x, 16x and 64x a file.

Goal: flat. Files are streamed in bounded pieces (Parquet record batches, CSV blocks,
P1 telegram runs) and stored in parts of ~250 k rows (a transaction and a checkpoint
each), so the peak resident memory of ingesting a file should not grow with the file:
peak(16x) / peak(1x) near 1 (it was ~16 when files were read whole). Told apart from
it: the size of the store, by ingesting 16 files of 1x into one store, in one process
and in a process each. Also timed: a P1 "capture" of 10 MB of ``/`` and one of 10 MB
of random bytes (once 249 s, 5.5 GB and 10.5 M quarantine rows), which must finish in
seconds with the quarantine capped.

Setup (not measured): a small grid twin's register (SQLite), and per format a file of
1x, 4x and 16x ``--rows`` rows (quarter-hour values: Parquet and CSV; P1: one meter's
telegrams; Parquet also ``--big`` x), the scales differing only in each connection's
span of time, and the ingest's "now" after every row, so all rows are stored at every
scale (``--now`` earlier: the clock check refuses the rows after it). Each run is a
child process (``--child``), which reports its own peak RSS and its RSS before the
ingest (imports, register index), the peak reset just before the ingest
(``/proc/self/clear_refs``, Linux; elsewhere the whole process's
``getrusage(RUSAGE_SELF).ru_maxrss``) and read after the store is closed: one process
per measurement, so no measurement inherits another's peak.

    .venv/bin/python benchmarks/ingest_memory.py [--rows 200000] [--p1 4000]
        [--formats parquet csv p1] [--scales 1 4 16] [--big 64] [--split 16]
        [--memory-limit 24MB] [--no-checkpoint] [--now 2026-01-01T00:00:00+00:00]

Measured (2 shared cores, 2026-12-06; RSS before the ingest ~202 MB):

* Parquet 200 k / 800 k / 3.2 M / 12.8 M rows: peak 296 / 316 / 327 / 351 MB (16x/1x
  1.10, 64x/1x 1.18; was 260 / 278 / 384 / 487 with 75 % of 16x refused). Before
  streaming, the 3.2 M-row file peaked at 1,493 MB. Found growing with the file and
  fixed: pyarrow's Parquet ``pre_buffer`` (the whole file's compressed bytes), the
  checkpoint left to the close (~17 MB per million rows; ``--no-checkpoint``: 64x
  574 MB) and, for P1, the counter check's window over the meter's whole history.
  Still growing, ~2.3 MB per million rows: DuckDB's buffer pool caching the table's
  blocks, bounded by its ``memory_limit``: with ``--memory-limit 24MB`` 290 / 309 /
  309 / 315 MB (1.09).
* 16 files of 200 k rows into one store: 322 MB in one process (1.09); a process
  each: 294 MB for the first, 303 MB for the last (15x stored): not the store's size.
* CSV 50 k / 200 k / 800 k rows: 264 / 277 / 286 MB (16x/1x 1.08).
* P1 20 k / 83 k / 331 k rows (4 k / 16 k / 64 k telegrams): 285 / 303 / 326 MB (1.14);
  1.3 M rows (``--formats p1 --scales 1 16 64``): 338 MB (was 400).
* 10 MB of ``/``: 0.5-1.1 s, 241 MB, 1 quarantine row; 10 MB of random bytes: 1-3 s,
  ~305 MB, 30,637 refused, 10,001 quarantine rows (was 249 s, 5.5 GB, 10.5 M rows).
"""

from __future__ import annotations

import argparse
import functools
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
BIG = 64
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


def child(
    paths: list[Path],
    db: str,
    store_path: Path,
    ean: str | None,
    now: datetime,
    memory_limit: str | None = None,
    checkpoint: bool = True,
) -> dict[str, Any]:
    """Ingest files one after another into a store; report memory, time and counts
    (``memory_limit``: DuckDB's, else its default of 80 % of the machine's memory;
    ``checkpoint``: after each part of a file, as ingestion does)."""
    from meetpunt.app.hub import ingestor
    from meetpunt.io.files import read_meter_file
    from meetpunt.meterdata.kinds import KINDS
    from meetpunt.meterdata.store import open_store
    from meetpunt.register import open_register

    register = open_register(db)
    store = open_store(store_path)
    if memory_limit:  # an instance setting: it holds for the leases that follow
        with store.lease() as con:
            con.execute(f"SET memory_limit = '{memory_limit}'")
    engine = ingestor(store, register, now=now)
    engine.checkpoint_parts = checkpoint
    before = _rss_kb()
    reset = _reset_peak()
    began = time.perf_counter()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    reports = [engine.ingest(read_meter_file(path, None, ean)) for path in paths]
    rows = store.query("SELECT count(*) AS n FROM quarantine").column("n")[0].as_py()
    stored = sum(store.count(name) for name in KINDS)
    store.close()  # in the peak: closing checkpoints what was not yet
    seconds = time.perf_counter() - began
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    register.dispose()
    return {
        "file": paths[0].name,
        "bytes": sum(path.stat().st_size for path in paths),
        "rss_before_mb": before / 1024,
        "peak_mb": _peak_kb() / 1024,
        "peak_reset": reset,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rows": sum(r.total("rows") for r in reports),
        "accepted": sum(r.total("accepted") for r in reports),
        "refused": sum(sum(r.quarantined.values()) for r in reports),
        "quarantine_rows": rows,
        "stored": stored,
    }


def setup(
    folder: Path,
    rows: int,
    telegrams: int,
    scales: tuple[int, ...],
    formats: tuple[str, ...],
    big: int,
    split: int,
) -> tuple[str, list[tuple[str, int, Path]], str, datetime]:
    """A register from a small twin and the files to ingest: (format, scale, path),
    ``big`` times the rows in Parquet (scale ``big``) and ``split`` Parquet files of 1x
    that follow each other in time (format ``split``, scale = their number): together
    the rows of ``split`` x in files of 1x. Also the ingest's "now": after every row,
    so the clock check (MTR-5.clock) refuses none and every scale stores all its rows."""
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
    for scale in sorted({*scales, *([big] if big and "parquet" in formats else [])}):
        table = _quarter_hours(eans, rows * scale)
        (folder / f"x{scale}").mkdir(exist_ok=True)
        if "parquet" in formats:
            parquet = folder / f"x{scale}" / "quarter_hours.parquet"
            pq.write_table(table, parquet, compression="zstd", row_group_size=ROW_GROUP)
            files.append(("parquet", scale, parquet))
        if scale not in scales:  # --big: Parquet only
            continue
        if "csv" in formats:
            csv_path = folder / f"x{scale}" / "quarter_hours.csv"
            small = table.slice(0, max(rows * scale // 4, 1))  # CSV is parsed in Python: 1/4
            pacsv.write_csv(small, csv_path)
            files.append(("csv", scale, csv_path))
        if "p1" in formats:
            p1 = folder / f"x{scale}" / f"{eans[0]}.p1"
            _capture(p1, telegrams * scale)
            files.append(("p1", scale, p1))
    per = -(-rows // len(eans))
    for k in range(split):
        path = folder / "split" / f"quarter_hours_{k:02d}.parquet"
        path.parent.mkdir(exist_ok=True)
        table = _quarter_hours(eans, rows, first=k * per)
        pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP)
        files.append(("split", k + 1, path))
    last = max((*scales, big, split)) * per
    now = START + timedelta(minutes=15 * last, days=1)
    return db, files, eans[0], now


def _quarter_hours(eans: list[str], n: int, first: int = 0) -> pa.Table:
    """``n`` quarter-hour rows: connection after connection, each in time order from
    the ``first`` quarter-hour after START."""
    per = -(-n // len(eans))
    start_us = int(START.timestamp()) * 1_000_000
    steps = start_us + (first + np.arange(per, dtype=np.int64)) * 900_000_000
    rng = np.random.default_rng(7 + first)
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


def run_child(
    paths: list[Path],
    db: str,
    store: Path,
    ean: str | None,
    now: datetime,
    fresh: bool = True,
    memory_limit: str | None = None,
    checkpoint: bool = True,
) -> dict[str, Any]:
    """Ingest ``paths`` in a child process into ``store`` (emptied first if ``fresh``)."""
    if fresh:
        store.unlink(missing_ok=True)
    args = [sys.executable, __file__, "--child", *map(str, paths), "--db", db]
    args += ["--store", str(store), "--now", now.isoformat()]
    if ean:
        args += ["--ean", ean]
    if memory_limit:
        args += ["--memory-limit", memory_limit]
    if not checkpoint:
        args += ["--no-checkpoint"]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed on {paths[0]}:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _row(label: str, r: dict[str, Any], base: dict[str, Any] | None) -> None:
    ratio = f"{r['peak_mb'] / base['peak_mb']:>7.2f}" if base else f"{'':>7}"
    print(
        f"{label:<40}{r['bytes'] / 1e6:>7.1f}{r['rows']:>10}{r['stored']:>10}"
        f"{r['seconds']:>7.1f}{r['cpu_seconds']:>7.1f}{r['rss_before_mb']:>7.0f}M"
        f"{r['peak_mb']:>6.0f}M{ratio}"
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="quarter-hour rows at 1x")
    parser.add_argument("--p1", type=int, default=4_000, help="P1 telegrams at 1x")
    parser.add_argument("--scales", type=int, nargs="+", default=list(SCALES))
    parser.add_argument("--big", type=int, default=BIG, help="one more Parquet scale; 0: none")
    parser.add_argument(
        "--split", type=int, default=16, help="1x Parquet files into one store; 0: none"
    )
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv", "p1"])
    parser.add_argument("--child", type=Path, nargs="+")
    parser.add_argument("--db")
    parser.add_argument("--store", type=Path)
    parser.add_argument("--ean")
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        help="the ingest's now (default: after every row); earlier: the clock check "
        "(MTR-5.clock) refuses the rows after it",
    )
    parser.add_argument(
        "--no-checkpoint",
        action="store_true",
        help="no checkpoint after each part of a file (it then comes when the store closes)",
    )
    parser.add_argument(
        "--memory-limit", help="DuckDB's memory_limit in the children (e.g. 24MB); default: its own"
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    if args.child:
        found = child(
            args.child,
            args.db,
            args.store,
            args.ean,
            args.now,
            args.memory_limit,
            not args.no_checkpoint,
        )
        print(json.dumps(found))
        return
    with tempfile.TemporaryDirectory(prefix="meetpunt-bench-mem-") as tmp:
        folder = Path(tmp)
        scales = tuple(args.scales)
        split = args.split if "parquet" in args.formats else 0
        db, files, ean, now = setup(
            folder, args.rows, args.p1, scales, tuple(args.formats), args.big, split
        )
        now = args.now or now
        store = folder / "store.duckdb"
        run = functools.partial(
            run_child, memory_limit=args.memory_limit, checkpoint=not args.no_checkpoint
        )
        print(
            "One file into a fresh store, a process each; peak RSS (VmHWM) from just before "
            "the ingest to after the store is closed; ratio: peak / peak of 1x; s: wall "
            "clock, cpu s: user + system"
        )
        print(
            f"{'file':<40}{'MB':>7}{'rows':>10}{'stored':>10}{'s':>7}{'cpu s':>7}{'before':>8}"
            f"{'peak':>7}{'ratio':>7}"
        )
        base: dict[str, dict[str, Any]] = {}
        for fmt, scale, path in files:
            if fmt == "split":
                continue
            r = run([path], db, store, ean if fmt == "p1" else None, now)
            base.setdefault(fmt, r)
            _row(f"{fmt} x{scale}", r, base[fmt])
        splits = [path for fmt, _, path in files if fmt == "split"]
        if splits:
            print(
                f"\nStore size, not file size: {len(splits)} files of 1x (following each other "
                f"in time) into one store, {len(splits)} x the rows of 1x in all"
            )
            one = run(splits, db, store, None, now)
            _row(f"{len(splits)} files, one process", one, base["parquet"])
            each = [
                run([path], db, store, None, now, fresh=k == 0) for k, path in enumerate(splits)
            ]
            _row("  a process each: the first", each[0], base["parquet"])
            last = f"  a process each: the last ({len(splits) - 1}x stored)"
            _row(last, each[-1], base["parquet"])
            worst = max(each, key=lambda r: r["peak_mb"])
            _row("  a process each: the highest", worst, base["parquet"])
        print()
        for name, data in (
            ("slashes", b"/" * GARBAGE_BYTES),
            ("random", np.random.default_rng(13).bytes(GARBAGE_BYTES)),
        ):
            path = folder / "garbage" / name / f"{ean}.p1"
            path.parent.mkdir(parents=True)
            path.write_bytes(data)
            r = run([path], db, store, ean, now)
            print(
                f"P1 of 10 MB {name:<8}: {r['seconds']:.1f} s, peak {r['peak_mb']:.0f} MB, "
                f"{r['refused']} refused, {r['quarantine_rows']} quarantine row(s) "
                "(was 249 s, 5.5 GB, 10.5 M rows for slashes)"
            )


if __name__ == "__main__":
    main()
