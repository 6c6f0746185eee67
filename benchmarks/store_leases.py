"""Short store leases (issue 14, side by side): what a lease costs, and the live ingest
rate alone and beside other processes on the same store.

Builds a small demo region (``meetpunt demo``) in a temporary home, then:

1. **Open cost per lease** on that store, N times each: the open before leases (every
   schema statement each time), a read-write lease and a read-only lease (open, check,
   close), and a query on a connection held open, for reference; then one micro-batch
   write (a 20-row insert in a transaction) in a lease of its own against the same write
   on a held connection.
2. **Live ingest rate**: a private Mosquitto on a free loopback port; this process runs
   the live ingester (``app.live.ingest_live``, the code behind ``meetpunt ingest
   mqtt``) while a publisher process sends COUNT telegrams of the region's smart
   meters as fast as it can. Runs in turn: the store held for the whole run (as before
   leases) and leases alone, twice each (the machine's load drifts), then leases beside
   a ``meetpunt usecase uc09`` loop, beside a loop of ``meetpunt ingest FILE``
   (quarter-hour files of ~280 k rows, so in two parts each), and alone again. Each
   line also says how long the ingester's leases took to attach the file, waits for
   other processes included (the rest of a slowdown is the two cores shared with the
   other processes). The machine is shared:
   compare the figures of one run with each other, not with another day's.

    .venv/bin/python benchmarks/store_leases.py [--count 20000] [--leases 200] \\
        [--batch-size 500]
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import duckdb
import paho.mqtt.client as paho
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from mqtt_ingest_rate import start_broker, telegram  # the same broker and telegrams

from meetpunt.app.live import LiveSettings, ingest_live
from meetpunt.meterdata import store as store_module
from meetpunt.meterdata.store import open_store
from meetpunt.register import open_register

HOST = "127.0.0.1"


# --- 1. open cost --------------------------------------------------------------------------


def open_before_leases(path: str) -> None:
    """What ``open_store`` did for every open before leases: every schema statement."""
    con = duckdb.connect(path)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", ["2"])
    store_module.create_tables(con)
    con.close()


def per_call_ms(action: Callable[[], object], n: int) -> float:
    action()  # warm
    start = time.perf_counter()
    for _ in range(n):
        action()
    return (time.perf_counter() - start) / n * 1000


def open_costs(path: Path, n: int) -> None:
    where = str(path)
    writer = open_store(path)
    reader = open_store(path, read_only=True)

    def write_lease() -> None:
        with writer.lease():
            pass

    def read_lease() -> None:
        with reader.lease():
            pass

    rows = [(f"bench-{i}", "x") for i in range(20)]
    counter = iter(range(10**9))

    def batch(con: duckdb.DuckDBPyConnection) -> None:
        k = next(counter)
        con.begin()
        con.executemany("INSERT INTO meta VALUES (?, ?)", [(f"{a}-{k}", b) for a, b in rows])
        con.commit()

    def batch_in_lease() -> None:
        with writer.lease() as con:
            batch(con)

    with writer.lease() as held:
        query_held = per_call_ms(lambda: held.execute("SELECT 1").fetchall(), n)
        batch_held = per_call_ms(lambda: batch(held), n)
    before = per_call_ms(lambda: open_before_leases(where), n)
    connect = per_call_ms(lambda: duckdb.connect(where).close(), n)
    write = per_call_ms(write_lease, n)
    read = per_call_ms(read_lease, n)
    batch_leased = per_call_ms(batch_in_lease, n)
    print(f"open cost per lease ({n} each, demo store of {path.stat().st_size >> 10} KiB):")
    print(f"  open before leases (every schema statement): {before:7.2f} ms")
    print(f"  a bare DuckDB connect + close of the file:   {connect:7.2f} ms")
    print(
        f"  read-write lease (ATTACH, schema current):   {write:7.2f} ms  "
        f"({before / write:.1f}x less)"
    )
    print(f"  read-only lease (ATTACH READ_ONLY):          {read:7.2f} ms")
    print(f"  query on a held connection (reference):      {query_held:7.2f} ms")
    print(f"  20-row write, held connection:               {batch_held:7.2f} ms")
    print(f"  20-row write in its own lease:               {batch_leased:7.2f} ms  "
          f"(+{batch_leased - batch_held:.2f} ms a micro-batch)")  # fmt: skip


# --- 2. live rate --------------------------------------------------------------------------


def publisher(
    port: int, topic: str, eans: list[str], first: int, count: int, out: Connection
) -> None:
    """Publish ``count`` telegrams (QoS 1) as fast as the broker takes them."""
    messages = [
        (f"{topic}/{eans[i % len(eans)]}", telegram(i % len(eans), first + i // len(eans)))
        for i in range(count)
    ]
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(HOST, port)
    client.loop_start()
    out.send("ready")
    out.recv()
    infos = [client.publish(t, p, qos=1) for t, p in messages]
    for info in infos:
        info.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()
    out.send("done")


def make_session(port: int, topic: str, client_id: str) -> None:
    """The ingester's broker session, made before anything is published: nothing is
    missed while it starts."""
    session = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
    )
    session.connect(HOST, port)
    session.loop_start()
    session.subscribe(f"{topic}/+", qos=1)
    time.sleep(0.5)
    session.loop_stop()
    session.disconnect()


class Loop(threading.Thread):
    """Runs a command again and again until stopped: how many runs ended, and how."""

    def __init__(self, make: Callable[[int], list[str]]) -> None:
        super().__init__(daemon=True)
        self.make = make
        self.halt = threading.Event()
        self.runs: list[tuple[int, float]] = []

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            start = time.perf_counter()
            done = subprocess.run(self.make(i), capture_output=True, text=True, check=False)
            self.runs.append((done.returncode, time.perf_counter() - start))
            if done.returncode != 0:
                print(f"    load run failed: {done.stdout[-300:]} {done.stderr[-300:]}")
            i += 1

    def line(self) -> str:
        if not self.runs:
            return "no run ended"
        ok = sum(1 for code, _ in self.runs if code == 0)
        mean = sum(s for _, s in self.runs) / len(self.runs)
        return f"{ok}/{len(self.runs)} runs ok, {mean:.2f} s each"


@dataclass
class Region:
    home: Path
    db: str
    store: Path
    eans: list[str]
    quarters: pa.Table


def live_run(
    label: str,
    region: Region,
    port: int,
    first: int,
    count: int,
    hold: bool,
    load: Loop | None,
    batch_size: int,
) -> float:
    topic = f"bench/{uuid.uuid4().hex}"
    client_id = f"bench-{uuid.uuid4().hex}"
    make_session(port, topic, client_id)
    here, there = mp.Pipe()
    pub = mp.get_context("fork").Process(
        target=publisher, args=(port, topic, region.eans, first, count, there)
    )
    pub.start()
    here.recv()
    register = open_register(region.db, create=False)
    settings = LiveSettings(
        broker=f"mqtt://{HOST}:{port}",
        topic=f"{topic}/+",
        max_messages=count,
        seconds=600,
        batch_size=batch_size,
        batch_seconds=0.2,
        client_id=client_id,
    )
    started: list[float] = []
    waited = [0.0, 0]  # seconds this process's leases spent attaching (waits included), leases
    plain = store_module._waiting

    def timed(open_file: Callable[[], None], path: str, wait_s: float | None = None) -> None:
        start = time.perf_counter()
        try:
            plain(open_file, path, wait_s)
        finally:
            waited[0] += time.perf_counter() - start
            waited[1] += 1

    store_module._waiting = timed

    def listening(_line: str) -> None:
        if load is not None:
            load.start()
        started.append(time.perf_counter())
        here.send("go")

    try:
        if hold:  # the store held for the whole run, as before leases
            with open_store(region.store).lease():
                reports = ingest_live(register, region.store, settings, listening)
        else:
            reports = ingest_live(register, region.store, settings, listening)
    finally:
        store_module._waiting = plain
        register.dispose()
        if load is not None:
            load.halt.set()
    seconds = time.perf_counter() - started[0]
    here.recv()
    pub.join()
    stored = sum(r.kinds["p1_readings"].accepted for r in reports if "p1_readings" in r.kinds)
    rate = stored / seconds
    if load is not None:
        load.join()  # the run under way ends
    extra = f"; beside it: {load.line()}" if load is not None else ""
    print(
        f"  {label:<34} {stored:>6}/{count} stored in {seconds:6.2f} s = {rate:7.1f}/s; "
        f"{waited[0]:5.2f} s attaching in {waited[1]} leases{extra}"
    )
    return rate


def build_region(folder: Path) -> Region:
    home = folder / "home"
    subprocess.run(
        [sys.executable, "-m", "meetpunt", "demo", "--connections", "50", "--days", "2",
         "--home", str(home)],
        check=True, capture_output=True,
    )  # fmt: skip
    demo = home / "demo"
    with (demo / "twin" / "register" / "connections.csv").open() as f:
        eans = sorted(
            {
                r["ean"]
                for r in csv.DictReader(f)
                if r["commodity"] == "electricity" and r["meter_type"] == "smart"
            }
        )
    quarters = pq.read_table(demo / "twin" / "meterdata" / "quarter_hours.parquet")
    return Region(home, f"sqlite:///{demo / 'register.sqlite'}", demo / "meterdata.duckdb",
                  eans, quarters)  # fmt: skip


def quarter_file(region: Region, folder: Path, i: int, copies: int = 30) -> Path:
    """A quarter-hour file of ``copies`` shifted copies of the region's 2 days (~280 k
    rows: two parts), earlier times each ``i`` so nothing is a duplicate."""
    starts = region.quarters.column("start")
    pieces = []
    for c in range(copies):
        shift = timedelta(days=2 * (i * copies + c + 1))
        moved = pc.subtract(starts, pa.scalar(shift, pa.duration("ms")))
        pieces.append(region.quarters.set_column(2, "start", moved))
    path = folder / f"quarter_hours_{i}.parquet"
    pq.write_table(pa.concat_tables(pieces), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="telegrams per live run")
    parser.add_argument("--leases", type=int, default=200, help="opens per open-cost figure")
    parser.add_argument("--batch-size", type=int, default=500, help="ingest mqtt --batch-size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        region = build_region(folder)
        open_costs(region.store, args.leases)
        files = folder / "files"
        files.mkdir()
        print(f"writing load files ({region.quarters.num_rows * 30} rows each) ...")
        loads = [quarter_file(region, files, i) for i in range(12)]
        broker, port = start_broker(folder, 2000)
        common = ["--store", str(region.store), "--db", region.db]
        me = [sys.executable, "-m", "meetpunt"]
        print(
            f"live ingest, {args.count} telegrams of {len(region.eans)} meters each run, "
            f"--batch-size {args.batch_size}:"
        )
        try:
            k = args.count // len(region.eans) + 1
            uc09 = [
                *me,
                "usecase",
                "uc09",
                "--from",
                "2025-06-02",
                "--to",
                "2025-06-04",
                "--json",
                *common,
            ]
            runs = [  # held and leased in turns: the machine's load drifts
                ("held for the run (before leases)", True, None),
                ("leases, alone", False, None),
                ("held for the run (again)", True, None),
                ("leases, alone (again)", False, None),
                ("leases, beside a uc09 loop", False, Loop(lambda i: uc09)),
                ("leases, beside a file ingest loop", False,
                 Loop(lambda i: [*me, "ingest", str(loads[i % len(loads)]), "--json",
                                 *common])),
                ("leases, alone (third)", False, None),
            ]  # fmt: skip
            rates = {}
            for n, (label, hold, load) in enumerate(runs):
                rates[label] = live_run(
                    label, region, port, n * k, args.count, hold, load, args.batch_size
                )
            alone = rates["leases, alone"]
            print("relative to 'leases, alone':")
            for label, rate in rates.items():
                print(f"  {label:<34} {rate / alone:5.2f}")
        finally:
            broker.terminate()
            broker.wait(10)


if __name__ == "__main__":
    main()
