"""Benchmark of ``meetpunt register import`` on a clean connections file (REG-2..8).

Target: 1,000,000 connection rows in under 60 s (16,667 rows/s) on SQLite and on
PostgreSQL, with per-row refusal kept. Setup (not timed): a synthetic connections CSV
of ``--rows`` rows (valid EANs; one connection in ten has a second version from a
later date, so history is recorded too), a fresh SQLite file and a scratch PostgreSQL
database on 127.0.0.1:5432 (created and dropped; skipped with a note when the server
is not reachable). Timed: ``import_file`` in one transaction, commit included, as the
CLI runs it (a file of more than 50,000 rows is parsed and checked in a worker process
while this one writes; both CPU times are printed). As the reference measured in the
same run, the one-row path (``row_by_row=True``, a savepoint and a few queries per row)
on the first ``--reference-rows`` rows.

    .venv/bin/python benchmarks/register_import.py [--rows 1000000] [--reference-rows 5000]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from meetpunt.domain.ean import ean_from_serial
from meetpunt.register import open_register
from meetpunt.register.csvio import CONNECTION_COLUMNS, ImportReport, import_file

TARGET_ROWS, TARGET_SECONDS = 1_000_000, 60.0
TARGET_RATE = TARGET_ROWS / TARGET_SECONDS
PG_ADMIN = os.environ.get("MEETPUNT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def connection_rows(count: int) -> Iterator[list[str]]:
    """``count`` sound connection rows; every tenth connection gets a second version."""
    written = serial = 0
    while written < count:
        serial += 1
        single = serial % 3 != 0
        row = [
            ean_from_serial("871234", serial),
            "electricity",
            "2020-01-01",
            "1x35" if single else "3x25",
            "IBD",
            "on",
            "smart",
            "standard",
            f"{1000 + serial % 9000}AB",
            str(1 + serial % 300),
            "",
            "Dorpsstraat",
            "Meetdorp",
            "Meetdorp",
            f"{serial:012d}",
            f"OS-{serial % 50}",
            f"OS-{serial % 50}/K{serial % 7}",
            f"L{1 + serial % 3}" if single else "",
            "household",
            "false",
            "",
            "",
        ]
        yield row
        written += 1
        if serial % 10 == 0 and written < count:
            yield [*row[:2], "2023-06-01", *row[3:19], "true", "4.2", "2023-06-01"]
            written += 1


def write_file(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CONNECTION_COLUMNS)
        writer.writerows(connection_rows(count))


def timed_import(
    url: str, path: Path, row_by_row: bool = False
) -> tuple[ImportReport, float, float, float]:
    """The import's report, wall seconds, this process's CPU seconds and its worker
    processes' (a file of more than ``PARALLEL_ABOVE`` rows is parsed in workers)."""
    register = open_register(url)
    try:
        began, cpu, before = time.perf_counter(), time.process_time(), os.times()
        with register.session() as session:
            report = import_file(session, path, row_by_row=row_by_row)
        after = os.times()  # the workers have ended: their CPU counts as children's
        workers = (after.children_user + after.children_system) - (
            before.children_user + before.children_system
        )
        return report, time.perf_counter() - began, time.process_time() - cpu, workers
    finally:
        register.dispose()


def scratch_postgres() -> tuple[str, str] | str:
    """A new empty database's URL and name, or why there is none."""
    name = f"meetpunt_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN} ({str(exc).strip()})"
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}", name


def drop_postgres(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report_line(
    engine: str, report: ImportReport, seconds: float, cpu: float, workers: float
) -> None:
    rate = report.rows / seconds
    verdict = "meets" if rate >= TARGET_RATE else "MISSES"
    print(
        f"  {engine}: {report.rows:,} rows in {seconds:.1f} s = {rate:,.0f} rows/s "
        f"({report.inserted:,} new, {report.changed:,} changed, {len(report.refused)} refused); "
        f"target {TARGET_RATE:,.0f} rows/s: {verdict} ({rate / TARGET_RATE:.2f}x)"
    )
    print(
        f"    this process's CPU (writing; SQLite works in it): {cpu:.1f} s, "
        f"{1e6 * cpu / report.rows:.0f} us per row; worker processes' (parsing and "
        f"checking): {workers:.1f} s, {1e6 * workers / report.rows:.0f} us per row"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=TARGET_ROWS)
    parser.add_argument("--reference-rows", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        big, small = Path(folder) / "connections.csv", Path(folder) / "reference.csv"
        began = time.perf_counter()
        write_file(big, args.rows)
        write_file(small, min(args.reference_rows, args.rows))
        print(
            f"{args.rows:,} connection rows ({big.stat().st_size / 1e6:.0f} MB) written in "
            f"{time.perf_counter() - began:.1f} s (not timed)"
        )
        databases: list[str] = []  # scratch PostgreSQL databases, dropped at the end
        engines: list[tuple[str, str, str]] = [  # engine, URL to time, URL for the reference
            (
                "SQLite",
                f"sqlite:///{Path(folder) / 'register.sqlite'}",
                f"sqlite:///{Path(folder) / 'reference.sqlite'}",
            )
        ]
        scratch = [scratch_postgres() for _ in range(2)]
        for made in scratch:
            if not isinstance(made, str):
                databases.append(made[1])
        if all(not isinstance(made, str) for made in scratch):
            urls = [made[0] for made in scratch if not isinstance(made, str)]
            engines.append(("PostgreSQL", urls[0], urls[1]))
        else:
            print(f"  PostgreSQL skipped: {next(m for m in scratch if isinstance(m, str))}")
        try:
            for engine, url, reference_url in engines:
                report, seconds, cpu, workers = timed_import(url, big)
                report_line(engine, report, seconds, cpu, workers)
                if args.reference_rows:
                    ref, ref_seconds, _, _ = timed_import(reference_url, small, row_by_row=True)
                    print(
                        f"    reference, one row per savepoint: {ref.rows:,} rows in "
                        f"{ref_seconds:.1f} s = {ref.rows / ref_seconds:,.0f} rows/s; the batch "
                        f"path is {report.rows / seconds / (ref.rows / ref_seconds):.0f}x faster"
                    )
        finally:
            for name in databases:
                drop_postgres(name)


if __name__ == "__main__":
    main()
