"""Benchmark of the privacy gate (issue 5): one decision with 10,000 past grants.

Target: a gate decision (register facts, every rule of the purpose, the audit record
and, when granted, the grant, one commit) in a median under 1 ms on SQLite and under
2 ms on PostgreSQL with 10,000 past grants in the register. By default both engines run
in one go: a SQLite file and a scratch PostgreSQL database created (and dropped again)
through ``--pg-admin``; ``--db URL`` runs one register instead.

Setup (not timed): ``--connections`` connections and ``--grants`` past grants spread
over them and over the purposes. Timed: ``--decisions`` requests for one random
connection each (UC3, ten days, with its trigger; about a third are refused by the
once-a-quarter rule, so both paths count), and, as the reference measured in the same
run on the same engine, the register's own single lookup ``connection_at`` for the
same connections.

    .venv/bin/python benchmarks/gate_decisions.py [--db URL | --engine postgresql]
        [--grants 10000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import insert

from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.ean import ean_from_serial
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate, Grant
from meetpunt.privacy.model import AccessRequest, Party, Period, Role
from meetpunt.register import open_register
from meetpunt.register import schema as t

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' connection builder
from tests.unit.domain.factories import attributes

TARGET_MS = {"sqlite": 1.0, "postgresql": 2.0}
"""The median a decision must stay under, per engine."""
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PURPOSES = ("UC2", "UC3", "UC5", "UC7", "UC12", "UC15")


@dataclass(frozen=True)
class Run:
    """The timings of one engine: every decision and every reference lookup (seconds)."""

    engine: str
    decisions: list[float]
    granted: int
    lookups: list[float]


def engine_name(url: str) -> str:
    """``sqlite`` or ``postgresql`` (whatever the driver)."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    return "postgresql" if scheme in ("postgresql", "postgres") else scheme


def measure(url: str, args: argparse.Namespace) -> Run:
    """Fill the register at ``url`` (untimed), then time the decisions and the lookups."""
    register = open_register(url)
    eans = [ean_from_serial("87168740", 10_000 + i) for i in range(args.connections)]
    rng = random.Random(3)
    with register.session() as s:
        for ean in eans:
            s.record_connection(ean, Commodity.ELECTRICITY, attributes("1x35"), date(2020, 1, 1))
        ids = [r.id for r in s.db.execute(t.connection.select().order_by(t.connection.c.id))]
        first = datetime(2023, 1, 1, tzinfo=UTC)
        rows = []
        for _ in range(args.grants):
            start = first + timedelta(days=rng.randrange(0, 900))
            rows.append(
                {
                    "audit_seq": 0,
                    "party": "grid",
                    "purpose": rng.choice(PURPOSES),
                    "connection_id": rng.choice(ids),
                    "kinds": "[]",
                    "period_start": start,
                    "period_end": start + timedelta(days=rng.randrange(1, 11)),
                    "granted_at": start,
                }
            )
        s.db.execute(insert(t.privacy_grant), rows)
    gate = Gate(register, None, load_catalogue())
    party = Party("grid", Role.GRID_OPERATOR)
    profile = cProfile.Profile() if args.profile else None
    times: list[float] = []
    granted = 0
    for i in range(args.decisions):
        day = date(2025, 1, 1) + timedelta(days=i % 300)
        start = local_midnight_utc(day)
        request = AccessRequest(
            party,
            "UC3",
            (rng.choice(eans),),
            frozenset({"voltages_10min"}),
            Period(start, start + timedelta(days=10)),
            start,
            trigger="UC2 ranking",
        )
        if profile is not None:
            profile.enable()
        began = time.perf_counter()
        decision = gate.request(request)
        times.append(time.perf_counter() - began)
        if profile is not None:
            profile.disable()
        granted += isinstance(decision, Grant)
    lookups: list[float] = []
    with register.session() as s:
        for ean in eans[: min(len(eans), 500)]:
            began = time.perf_counter()
            s.connection_at(ean, date(2025, 6, 1))
            lookups.append(time.perf_counter() - began)
    register.dispose()
    if profile is not None:
        print(f"--- profile of the decisions on {engine_name(url)} ---")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    return Run(engine_name(url), times, granted, lookups)


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A throw-away PostgreSQL database next to ``admin_url``, dropped afterwards."""
    name = f"meetpunt_bench_gate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(run: Run, args: argparse.Namespace) -> bool:
    """Print one engine's numbers; whether it meets its target."""
    median_ms = statistics.median(run.decisions) * 1000
    p95_ms = sorted(run.decisions)[int(len(run.decisions) * 0.95)] * 1000
    lookup_ms = statistics.median(run.lookups) * 1000
    target = TARGET_MS.get(run.engine, TARGET_MS["sqlite"])
    verdict = "meets" if median_ms < target else "MISSES"
    print(f"{run.engine}: {len(run.decisions)} decisions over {args.grants:,} past grants")
    print(f"  granted {run.granted}, refused {len(run.decisions) - run.granted}")
    print(
        f"  gate decision: median {median_ms:.3f} ms, p95 {p95_ms:.3f} ms "
        f"({1000 / median_ms:,.0f} decisions/s)"
    )
    print(
        f"  reference, one register lookup (connection_at): median {lookup_ms:.3f} ms; "
        f"a decision costs {median_ms / lookup_ms:.1f} lookups"
    )
    print(f"  target < {target:g} ms per decision: {verdict} ({median_ms / target:.2f} of it)")
    return median_ms < target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", default=None, help="one register URL (default: a SQLite file and PostgreSQL)"
    )
    parser.add_argument(
        "--pg-admin",
        default=PG_ADMIN,
        help=f"where to create the scratch PostgreSQL database (default {PG_ADMIN})",
    )
    parser.add_argument(
        "--engine",
        choices=("both", "sqlite", "postgresql"),
        default="both",
        help="without --db: which engines to run (default both)",
    )
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the timed decisions"
    )
    args = parser.parse_args()
    runs: list[Run] = []
    if args.db:
        runs.append(measure(args.db, args))
    else:
        if args.engine in ("both", "sqlite"):
            with tempfile.TemporaryDirectory() as folder:
                runs.append(measure(f"sqlite:///{Path(folder) / 'register.sqlite'}", args))
        if args.engine in ("both", "postgresql"):
            with scratch_postgres(args.pg_admin) as url:
                runs.append(measure(url, args))
    met = [report(run, args) for run in runs]
    if not all(met):
        print("at least one engine misses its target")


if __name__ == "__main__":
    main()
