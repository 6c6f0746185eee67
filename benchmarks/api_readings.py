"""Benchmark (not a test) of the HTTP API (issue 17): N concurrent clients reading a
supplier's daily readings from a running ``meetpunt serve`` for a bounded time.

Prints requests/s, p50/p99 latency and the error count. Every request is a gate
decision and an audited read (two audit records, serialised by the register's write
lock), so this measures the gate under HTTP, not only the web layer.

    MEETPUNT_RATE_LIMIT=off meetpunt serve --port 8765 &   # one key, many clients: no 429s
    .venv/bin/python benchmarks/api_readings.py --url http://127.0.0.1:8765 \\
        --key KEY --ean EAN --from 2025-06-02 --to 2025-06-05 --clients 50 --seconds 20

Goal (issue 17): p99 under 50 ms at 200 concurrent clients on the embedded default.

The clients are raw keep-alive HTTP/1.1 connections on one event loop, not httpx:
httpx spent ~5 ms of CPU a request, 40 % of a core at 50 requests/s, on the same two
cores as the server, and its pool added seconds of queueing of its own. The first
figures (46.6 requests/s, p99 12.3 s at 200 clients) measured mostly that client.
``--pause S`` makes each client wait a random time (exponential, mean S) before each
request: 200 independent pollers offer about 200/S requests/s. ``--pause 0`` is a
closed loop, in which each client sends its next request as soon as it has its answer.

A closed loop of 200 clients cannot meet the goal on this machine. By Little's law the
mean latency is clients / throughput, so p99 < 50 ms at 200 clients needs more than
4,000 requests/s. Each request is a key check, a serialised decision transaction, a
store lease and a second serialised transaction for the read's audit record: some
6-9 ms of CPU. Two cores that are already shared give 110-150 requests/s.

Measured (2026-12-06, the demo's 200-connection region, ``meetpunt demo --connections
200 --days 7``, SQLite + DuckDB, a 3-day read, load average 8-10 from other jobs on the
2 cores). "before" is main at 19c436f and "after" is this branch, alternated in one run
with 20 s each:

| clients, pause | before: req/s, p50, p99 | after: req/s, p50, p99 |
|---|---|---|
| 1, closed loop | 97.4/s, 5.7 ms, 50.4 ms | 111.3/s, 6.1 ms, 30.8 ms |
| 200, closed loop | 118.5/s, 1.49 s, 3.30 s | 147.1/s, 1.32 s, 1.85 s |
| 200, pause 2 s (~100/s offered) | 99.6/s, 39 ms, 434 ms | 96.0/s, 25 ms, 281 ms |
| 200, pause 4 s (~50/s offered) | 52.6/s, 17 ms, 298 ms | 49.4/s, 15 ms, 111 ms |

A second round of the same: 1 client 88.0/s (p99 40.6 ms) before, 60.7/s (p99 72.3 ms)
after; 200 closed 129.8/s (p50 1.46 s, p99 2.67 s) before, 131.5/s (1.50 s, 2.26 s)
after; pause 2 s p99 512 / 344 ms; pause 4 s p99 263 / 113 ms. The machine is shared,
so the figures are noisy: p99 under moderate load fell in both rounds, and throughput
did not clearly change. No errors, except one in the second round's pause-2 "after"
run: the server closed an idle keep-alive connection as the request went out. The
client now sends such a request again on a new connection.
``uvicorn --workers 2`` (not the default, see docs/api.md): 220/s, p50 0.71 s, p99
1.98 s closed; pause 4 s p99 104 ms.

Second round (2026-12-06, 18:46-18:54 UTC): the same region (demo seed 1, 200
connections, 7 days), key and 3-day read, alternated per row, 15 s each, two rounds
(round 1 / round 2). The 2 cores were far busier than in the first round: load average
15-16 from other jobs (full test suites, full demos). "before" is main at 8e30906 on
asyncio + h11 (its dependencies then); "after" is ``meetpunt serve`` of this branch
(uvloop + httptools, the granted read's quality lookup and sort in Arrow), with one
worker and with ``--workers 2`` (shared rate limits, writers queued on a file lock).

| clients, pause | server | requests/s | p50 | p99 |
|---|---|---|---|---|
| 1, closed loop | before | 36.8 / 37.2 | 17 / 20 ms | 93 / 68 ms |
| | after, 1 worker | 40.6 / 60.4 | 13 / 13 ms | 105 / 49 ms |
| | after, 2 workers | 46.2 / 55.0 | 13 / 15 ms | 84 / 61 ms |
| 200, closed loop | before | 59.7 / 61.4 | 3.02 / 3.01 s | 4.50 / 4.22 s |
| | after, 1 worker | 78.6 / 66.5 | 2.41 / 2.92 s | 3.65 / 3.82 s |
| | after, 2 workers | 80.1 / 77.6 | 2.08 / 2.23 s | 5.10 / 4.93 s |
| 200, pause 16 s (~12/s) | before | 12.2 / 11.2 | 25 / 22 ms | 108 / 68 ms |
| | after, 1 worker | 12.4 / 12.4 | 16 / 16 ms | 80 / 108 ms |
| | after, 2 workers | 12.0 / 13.5 | 15 / 23 ms | 66 / 158 ms |
| 200, pause 8 s (~25/s) | before | 25.2 / 25.0 | 34 / 32 ms | 375 / 142 ms |
| | after, 1 worker | 25.8 / 24.6 | 20 / 19 ms | 216 / 56 ms |
| | after, 2 workers | 23.3 / 24.8 | 38 / 19 ms | 246 / 69 ms |
| 200, pause 4 s (~50/s) | before | 47.0 / 48.8 | 128 / 127 ms | 620 / 678 ms |
| | after, 1 worker | 49.2 / 50.7 | 61 / 28 ms | 669 / 130 ms |
| | after, 2 workers | 50.9 / 48.9 | 34 / 36 ms | 232 / 458 ms |

No errors in any run. p50 fell at every load (pause 4 s: 127 ms to 28-61 ms), the
closed loop of 200 served 8-34 % more (60 to 67-80 requests/s). The goal was not
reached: p99 stayed above 50 ms at every offered load with 200 clients, and even one
client's p99 was 49-105 ms. A p99 over 15 s is the 2nd to 8th slowest of 170-760
requests, and at this load average it is set by waiting for a core, not by the
request's own ~10 ms of CPU (two workers do not help it: both compete for the same
cores). Reproduce: ``meetpunt demo --connections 200 --days 7 --home H``, then
``meetpunt party add --role supplier --code 8710000000017 --home H/demo --json`` for
KEY; "before" was ``git archive 8e30906 src`` on PYTHONPATH, started with
``uvicorn.run(create_app(DB, STORE), loop="asyncio", http="h11")`` on a copy of the
register; "after" ``meetpunt serve [--workers 2] --db DB --store STORE``; all with
MEETPUNT_RATE_LIMIT=off, on ports 8765-8767::

    for pause in 0 16 8 4; do for port in 8765 8766 8767; do
      .venv/bin/python benchmarks/api_readings.py --url http://127.0.0.1:$port --key KEY \\
        --ean 871687400000000014 --from 2025-06-02 --to 2025-06-05 --clients 200 \\
        --pause $pause --seconds 15; done; done

Third round (2026-12-06, 20:58-21:03 UTC, load average 2.6-9.9 from other jobs): the
store's read lease kept between reads (``SERVE_KEEP_S`` 0.5 s; let go at once when a
writer waits, docs/meterdata.md). "before" is main at e2a6bb9 (``git archive`` on
PYTHONPATH), "after" this branch, both ``meetpunt serve`` with one worker on their own
copy of the same demo region (seed 1, 200 connections, 7 days), alternated per row,
15 s each, two rounds (round 1 / round 2):

| clients, pause | server | requests/s | p50 | p99 |
|---|---|---|---|---|
| 1, closed loop | before | 131.6 / 128.1 | 6.1 / 5.7 ms | 20.5 / 32.2 ms |
| | after | 195.2 / 182.2 | 3.9 / 4.4 ms | 18.4 / 17.3 ms |
| 200, closed loop | before | 187.4 / 156.5 | 1.02 / 1.25 s | 1.65 / 1.94 s |
| | after | 179.0 / 167.2 | 1.07 / 1.19 s | 1.69 / 1.58 s |
| 200, pause 8 s (~25/s) | before | 24.2 / 24.7 | 9.2 / 8.6 ms | 41.8 / 83.5 ms |
| | after | 25.4 / 23.4 | 6.7 / 7.1 ms | 31.3 / 31.7 ms |
| 200, pause 4 s (~50/s) | before | 51.4 / 49.4 | 9.3 / 10.9 ms | 108.1 / 48.2 ms |
| | after | 50.1 / 48.7 | 6.7 / 7.9 ms | 67.9 / 41.8 ms |

No errors. One client is 40-48 % faster (p50 6 to 4 ms) and p50 fell by a quarter at
25-50 requests/s offered; p99 with 200 pollers was under 50 ms in 3 of the 4 "after"
runs (31-42 ms; 68 ms in the fourth), against 2 of 4 before (42-48 ms; 84 and 108
ms). A closed loop of 200 did not change: there the reads overlap all the time, so the
file was already attached once for all of them and the lease cost little; it is still
bound by the cores (Little's law, above). Reproduce: as above, "before" started as
``PYTHONPATH=<git archive e2a6bb9>/src python -m meetpunt serve --port 8765 --db D1
--store S1`` and "after" as ``meetpunt serve --port 8766 --db D2 --store S2`` on two
copies of the demo's register and store, the loop over ``1 0``, ``200 0``, ``200 8``
and ``200 4`` (clients, pause) alternating the two ports.

The writer's wait in the same conditions (``benchmarks/store_writer_wait.py STORE``, a
small write lease every 0.3 s from another process during 25 s of 200 clients, two
rounds): closed loop, median 76-144 ms and longest 4.6-5.4 s before, 37-80 ms and
101-156 ms after; pause 4 s, 6-7 ms (longest 35-68 ms) before, 26-27 ms (43-68 ms)
after: the writer now always finds the file attached and waits for its announcement
to be seen (docs/api.md, "Third round"). ``serve --workers 2`` (each process keeping
its lease), closed loop of 200, one run at load 3-5: 225 requests/s, p50 0.88 s, p99
1.57 s, no errors; the writer's wait 37 ms median, 84 ms at most.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from urllib.parse import urlencode, urlsplit


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a GET and reads the answer by its
    Content-Length: ~0.1 ms of client CPU a request, where httpx took ~5 ms (on two
    shared cores the httpx client took 40 % of a core and capped what was measured)."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self) -> int:
        """Send the request once; the status code. A connection the server closed while
        idle (uvicorn's keep-alive timeout) is opened again, and a request on a reused
        connection that the server closed before answering is sent once more on a new
        one, as HTTP clients do for a GET."""
        reused = not (
            self.writer is None
            or self.reader is None
            or self.writer.is_closing()
            or self.reader.at_eof()
        )
        if not reused:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None and self.writer is not None
        try:
            self.writer.write(self.request)
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as closed:
            if not reused or getattr(closed, "partial", b""):
                raise
            self.writer.close()
            self.writer = None
            return await self.get()
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        if b"connection: close" in head.lower():
            self.writer.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def client(
    connection: Connection, until: float, pause: float, out: list[float], timeout: float
) -> int:
    """Read until ``until``, waiting a random time of mean ``pause`` seconds before each
    request (exponential: clients that do not march in step, as independent pollers
    do not); latencies (s) into ``out``; returns the errors seen (not 200, a broken
    connection or a timeout)."""
    errors = 0
    while True:
        if pause:
            await asyncio.sleep(min(random.expovariate(1 / pause), until - time.monotonic()))
        if time.monotonic() >= until:
            break
        began = time.perf_counter()
        try:
            ok = await asyncio.wait_for(connection.get(), timeout) == 200
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            connection.close()
            connection.writer = None
            ok = False
        out.append(time.perf_counter() - began)
        errors += not ok
    connection.close()
    return errors


async def run(args: argparse.Namespace) -> None:
    url = urlsplit(args.url)
    params = urlencode({"kind": "daily", "from": args.date_from, "to": args.date_to})
    request = (
        f"GET /v1/connections/{args.ean}/readings?{params} HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\nAuthorization: Bearer {args.key}\r\n\r\n"
    ).encode()
    host, port = url.hostname or "127.0.0.1", url.port or 80
    latencies: list[float] = []
    began = time.monotonic()
    until = began + args.seconds
    errors = await asyncio.gather(
        *(
            client(Connection(host, port, request), until, args.pause, latencies, 60)
            for _ in range(args.clients)
        )
    )
    took = max(time.monotonic(), until) - began
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{args.clients} clients, pause {args.pause} s, {took:.1f} s: {len(latencies)} "
        f"requests, {len(latencies) / took:.1f} requests/s, p50 {cuts[49] * 1000:.1f} ms, "
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
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="Mean seconds a client waits before each request, exponentially "
        "distributed (0: a closed loop, as fast as the server answers).",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
