"""Benchmark of the privacy gate (issue 5): one decision with 10,000 past grants.

Target: a gate decision (register facts, every rule of the purpose, the audit record
and, when granted, the grant) in under 1 ms with 10,000 past grants in the register.
Setup (not timed): ``--connections`` connections and ``--grants`` past grants spread
over them and over the purposes. Timed: ``--decisions`` requests for one random
connection each (UC3, ten days, with its trigger; about half are refused by the
once-a-year or pause rules, so both paths count), and, as the reference measured in
the same run, the register's own single lookup ``connection_at`` for the same
connections.

    .venv/bin/python benchmarks/gate_decisions.py [--db URL] [--grants 10000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

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

TARGET_MS = 1.0
PURPOSES = ("UC2", "UC3", "UC5", "UC7", "UC12", "UC15")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="register URL (default: a SQLite file)")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'register.sqlite'}"
        register = open_register(url)
        eans = [ean_from_serial("87168740", 10_000 + i) for i in range(args.connections)]
        with register.session() as s:
            for ean in eans:
                s.record_connection(
                    ean, Commodity.ELECTRICITY, attributes("1x35"), date(2020, 1, 1)
                )
            ids = [r.id for r in s.db.execute(t.connection.select().order_by(t.connection.c.id))]
            rng = random.Random(3)
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
            began = time.perf_counter()
            decision = gate.request(request)
            times.append(time.perf_counter() - began)
            granted += isinstance(decision, Grant)
        lookups: list[float] = []
        with register.session() as s:
            for ean in eans[: min(len(eans), 500)]:
                began = time.perf_counter()
                s.connection_at(ean, date(2025, 6, 1))
                lookups.append(time.perf_counter() - began)
        register.dispose()
    median_ms = statistics.median(times) * 1000
    p95_ms = sorted(times)[int(len(times) * 0.95)] * 1000
    lookup_ms = statistics.median(lookups) * 1000
    print(f"{args.decisions} decisions over {args.grants:,} past grants on {url.split(':')[0]}")
    print(f"  granted {granted}, refused {args.decisions - granted}")
    print(
        f"  gate decision: median {median_ms:.3f} ms, p95 {p95_ms:.3f} ms "
        f"({1000 / median_ms:,.0f} decisions/s)"
    )
    print(
        f"  reference, one register lookup (connection_at): median {lookup_ms:.3f} ms; "
        f"a decision costs {median_ms / lookup_ms:.1f} lookups"
    )
    verdict = "meets" if median_ms < TARGET_MS else "MISSES"
    print(
        f"  target < {TARGET_MS:g} ms per decision: {verdict} ({median_ms / TARGET_MS:.2f} of it)"
    )


if __name__ == "__main__":
    main()
