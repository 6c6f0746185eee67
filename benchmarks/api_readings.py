"""Benchmark (not a test) of the HTTP API (issue 17): N concurrent clients reading a
supplier's daily readings from a running ``meetpunt serve`` for a bounded time.

Prints requests/s, p50/p99 latency and the error count. Every request is a gate
decision and an audited read (two audit records, serialised by the register's write
lock), so this measures the gate under HTTP, not only the web layer.

    meetpunt serve --port 8765 &
    .venv/bin/python benchmarks/api_readings.py --url http://127.0.0.1:8765 \\
        --key KEY --ean EAN --from 2025-06-02 --to 2025-06-05 --clients 50 --seconds 20

Goal (issue 17): p99 under 50 ms at 200 concurrent clients on the embedded default.

Measured (2026-12-06, the demo's 200-connection region, SQLite + DuckDB, 2 cores shared
with other jobs, load average 5-7, a 3-day read): 1 client 59.6 requests/s, p50 14.4 ms,
p99 40.2 ms; 20 clients 97.4/s, p50 145 ms, p99 957 ms; 200 clients 46.6/s, p50 2.8 s,
p99 12.3 s; no errors. Far from the goal: each request is an authentication query, a
serialised decision transaction (BEGIN IMMEDIATE), a grant check, a store lease and a
second serialised transaction for the read's audit record, on one SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx


async def client(
    http: httpx.AsyncClient, path: str, params: dict[str, str], until: float, out: list[float]
) -> int:
    """Read until ``until``; latencies (s) into ``out``; returns the errors seen."""
    errors = 0
    while time.monotonic() < until:
        began = time.perf_counter()
        try:
            answer = await http.get(path, params=params)
            ok = answer.status_code == 200
        except httpx.HTTPError:
            ok = False
        out.append(time.perf_counter() - began)
        errors += not ok
    return errors


async def run(args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {args.key}"}
    limits = httpx.Limits(max_connections=args.clients)
    path = f"/v1/connections/{args.ean}/readings"
    params = {"kind": "daily", "from": args.date_from, "to": args.date_to}
    latencies: list[float] = []
    async with httpx.AsyncClient(
        base_url=args.url, headers=headers, limits=limits, timeout=60
    ) as http:
        began = time.monotonic()
        until = began + args.seconds
        errors = await asyncio.gather(
            *(client(http, path, params, until, latencies) for _ in range(args.clients))
        )
        took = time.monotonic() - began
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{args.clients} clients, {took:.1f} s: {len(latencies)} requests, "
        f"{len(latencies) / took:.1f} requests/s, p50 {cuts[49] * 1000:.1f} ms, "
        f"p99 {cuts[98] * 1000:.1f} ms, errors {sum(errors)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="A supplier's API key.")
    parser.add_argument("--ean", required=True, help="A connection the supplier supplies.")
    parser.add_argument("--from", dest="date_from", required=True)
    parser.add_argument("--to", dest="date_to", required=True)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
