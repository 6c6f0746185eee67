"""Restart cases of live P1 ingestion over MQTT (issue 14): nothing lost, nothing twice.

Starts a private Mosquitto with meetpunt's own configuration
(docs/mosquitto/meetpunt.conf, persistence on; only port and database folder changed,
tests/meterdata/private_broker.py) on a free loopback port, and a register of
``--meters`` connections. Per case, ``meetpunt ingest mqtt`` runs as its own process
(its defaults: batches of 1000 messages or 1 s, status every second into a metrics
file); a publisher process sends ``--telegrams`` DSMR 5 telegrams from the meters with
QoS 1 at ``--rate``/s over a persistent session (``clean_session`` False, fixed id,
resending what the broker did not acknowledge after a reconnect). At ``--at`` of the
publishing time one of these happens:

* ``sigterm``: SIGTERM to the ingester (it stores what is pending, acknowledges, exits),
  then a new ingester;
* ``kill9``: SIGKILL to the ingester (its batch is neither stored nor acknowledged),
  then a new ingester;
* ``broker``: the broker is stopped (SIGTERM: it saves its database) and started again;
  ingester and publisher reconnect;
* ``none``: nothing (a long run: ``--cases none --telegrams 300000`` is 5 minutes at
  1,000/s; the ingester's max RSS shows whether its memory stays bounded).

When every telegram is acknowledged by the broker and the ingester has been idle for
three status intervals, it is stopped with SIGTERM and the store is read: lost
(published, not stored), duplicated (stored twice), rows delivered again (counted as
duplicates by the hub over all kinds a telegram fills, about 10 rows a telegram; stored
once), quarantined, stored/s from the first publish to
the last commit, and lag from publish to the batch's ``committed_at`` (the time its
ingest began: the ingest itself, a fraction of a second, is not in it).

    .venv/bin/python benchmarks/mqtt_restarts.py [--meters 10000] [--telegrams 20000]
        [--rate 1000] [--at 0.4] [--cases sigterm,kill9,broker]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho

from meetpunt.domain.capacity import Commodity
from meetpunt.meterdata.store import open_store
from meetpunt.register import open_register

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' broker and connections
from benchmarks.mqtt_ingest_rate import STEP, T0, eans, paced_publish, telegram
from tests.meterdata.private_broker import HOST, PrivateBroker
from tests.unit.domain.factories import attributes

CASES = ("sigterm", "kill9", "broker", "none")


def build_register(url: str, meters: int) -> dict[int, int]:
    """A register of ``meters`` connections; the meter number of each connection id."""
    register = open_register(url)
    names = eans(meters)
    with register.session() as s:
        for ean in names:
            s.record_connection(ean, Commodity.ELECTRICITY, attributes("3x25"), date(2020, 1, 1))
        entries = s.meter_index()
    register.dispose()
    meter_of = {ean: m for m, ean in enumerate(names)}
    return {e.connection_id: meter_of[e.ean] for e in entries}


def publisher(
    port: int, prefix: str, meters: int, count: int, rate: float, out: Connection
) -> None:
    """Publish ``count`` telegrams QoS 1 at ``rate``/s over a persistent session; send
    back each publish time and how many the broker acknowledged."""
    names = eans(meters)
    messages = [
        (f"{prefix}/{names[i % meters]}", telegram(i % meters, i // meters)) for i in range(count)
    ]
    acked = [0]  # counted, not collected by id: message ids wrap at 65,535

    def on_publish(*_args: object) -> None:
        acked[0] += 1

    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2,
        client_id=f"bench-pub-{uuid.uuid4().hex[:12]}",
        clean_session=False,
    )
    client.on_publish = on_publish
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(0.1, 1)
    client.connect(HOST, port)
    client.loop_start()
    out.send("ready")
    out.recv()  # go
    times, _ = paced_publish(client, messages, rate)
    deadline = time.time() + 120
    while time.time() < deadline and acked[0] < count:
        time.sleep(0.1)
    done = acked[0]
    client.loop_stop()
    client.disconnect()
    out.send((times, done))


class Ingester:
    """``meetpunt ingest mqtt`` as a process of its own."""

    def __init__(self, folder: Path, port: int, topic: str, store: Path, register: str) -> None:
        self.folder = folder
        self.metrics = folder / "live.prom"
        self.command = [
            sys.executable,
            "-m",
            "meetpunt",
            "ingest",
            "mqtt",
            "--broker",
            f"mqtt://{HOST}:{port}",
            "--topic",
            topic,
            "--store",
            str(store),
            "--db",
            register,
            "--status-every",
            "1",
            "--metrics",
            str(self.metrics),
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.cpu_s = 0.0
        self.max_rss_mb = 0.0

    def start(self) -> None:
        self.starts += 1
        self.log = self.folder / f"ingester-{self.starts}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while "listening on" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.time() > deadline:
                raise SystemExit(f"ingester did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(how)
        _, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_s += usage.ru_utime + usage.ru_stime
        self.max_rss_mb = max(self.max_rss_mb, usage.ru_maxrss / 1024)
        self.process = None

    def metric(self, name: str) -> float:
        try:
            text = self.metrics.read_text()
        except FileNotFoundError:
            return float("nan")
        found = re.search(rf"^meetpunt_live_{name} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else float("nan")

    def wait_idle(self, intervals: int = 3, timeout: float = 180) -> None:
        """Until the last ``intervals`` status intervals took no message and nothing
        is pending."""
        quiet = 0
        last = self.metrics.stat().st_mtime if self.metrics.exists() else 0.0
        deadline = time.time() + timeout
        while quiet < intervals and time.time() < deadline:
            time.sleep(0.2)
            mtime = self.metrics.stat().st_mtime if self.metrics.exists() else 0.0
            if mtime == last:
                continue
            last = mtime
            idle = self.metric("messages_per_second") == 0 and self.metric("pending_messages") == 0
            quiet = quiet + 1 if idle else 0


@dataclass
class Outcome:
    case: str
    published: int
    acked: int
    stored: int
    duplicated: int
    redelivered: int
    quarantined: int
    seconds: float
    lags: np.ndarray
    cpu_s: float
    starts: int
    max_rss_mb: float

    def line(self) -> str:
        p50, p95, top = (np.percentile(self.lags, q) for q in (50, 95, 100))
        fifths = [f for f in np.array_split(self.lags, 5) if len(f)]
        rate = self.stored / self.seconds if self.seconds else 0.0
        return (
            f"{self.case:>8}: lost {self.published - self.stored}, duplicated "
            f"{self.duplicated}; {self.stored}/{self.published} stored ({self.acked} "
            f"acknowledged by the broker) in {self.seconds:5.1f} s = {rate:7.1f}/s; rows "
            f"delivered again {self.redelivered} (all kinds, stored once), quarantined "
            f"{self.quarantined}; lag p50 {p50:5.2f} s "
            f"p95 {p95:5.2f} s max {top:5.2f} s; ingester CPU {self.cpu_s:5.1f} s over "
            f"{self.starts} process(es), max RSS {self.max_rss_mb:.0f} MB; lag p95 by fifth "
            f"of the run: {' / '.join(f'{np.percentile(f, 95):.2f}' for f in fifths)} s"
        )


def run_case(
    case: str, args: argparse.Namespace, register: str, meter_of: dict[int, int], root: Path
) -> Outcome:
    folder = root / case
    folder.mkdir()
    store = folder / "live.duckdb"
    prefix = f"bench/{uuid.uuid4().hex[:8]}/p1"
    count = args.telegrams
    with PrivateBroker(folder) as broker:
        ingester = Ingester(folder, broker.port, f"{prefix}/+", store, register)
        ingester.start()
        here, there = mp.Pipe()
        pub = mp.get_context("fork").Process(
            target=publisher, args=(broker.port, prefix, args.meters, count, args.rate, there)
        )
        pub.start()
        here.recv()
        here.send("go")
        time.sleep(count / args.rate * args.at)
        if case == "sigterm":
            ingester.stop(signal.SIGTERM)
            ingester.start()
        elif case == "kill9":
            ingester.stop(signal.SIGKILL)
            ingester.start()
        elif case == "broker":
            broker.restart(signal.SIGTERM)
        times, acked = here.recv()
        pub.join()
        ingester.wait_idle()
        ingester.stop(signal.SIGTERM)
    with open_store(store, read_only=True) as opened:
        rows = opened.count("p1_readings")
        table = opened.query(
            'SELECT r.connection, r."at", b.committed_at FROM p1_readings r JOIN batch b '
            "ON b.id = r.batch"
        )
        batches = opened.query(
            "SELECT sum(duplicates) AS d, sum(quarantined) AS q, max(committed_at) AS last "
            "FROM batch"
        ).to_pylist()[0]
    keys: dict[int, float] = {}
    for connection, at, committed in zip(
        table.column("connection").to_pylist(),
        table.column("at").to_pylist(),
        table.column("committed_at").to_pylist(),
        strict=True,
    ):
        i = (at.replace(tzinfo=UTC) - T0) // STEP * args.meters + meter_of[connection]
        keys.setdefault(i, committed.replace(tzinfo=UTC).timestamp())
    stored = len(keys)
    index = np.fromiter(keys.keys(), dtype=np.int64, count=stored)
    committed_at = np.fromiter(keys.values(), dtype=np.float64, count=stored)
    order = np.argsort(index)
    lags = (committed_at - times[index])[order]  # in publishing order
    last = batches["last"].replace(tzinfo=UTC).timestamp()
    return Outcome(
        case,
        count,
        acked,
        stored,
        rows - stored,
        int(batches["d"] or 0),
        int(batches["q"] or 0),
        last - float(times.min()),
        lags,
        ingester.cpu_s,
        ingester.starts,
        ingester.max_rss_mb,
    )


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--telegrams", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="published per second")
    parser.add_argument("--at", type=float, default=0.4, help="share of the publishing time")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--keep", type=Path, help="keep logs and stores in this new folder")
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    if unknown := set(cases) - set(CASES):
        raise SystemExit(f"unknown case(s) {sorted(unknown)}: choose from {', '.join(CASES)}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) if args.keep is None else args.keep
        root.mkdir(exist_ok=True)
        register = f"sqlite:///{root / 'register.sqlite'}"
        started = time.time()
        meter_of = build_register(register, args.meters)
        print(
            f"register of {args.meters} meters in {time.time() - started:.0f} s; "
            f"{args.telegrams} telegrams QoS 1 at {args.rate:.0f}/s per case, the event at "
            f"{args.at:.0%} of the publishing time; broker: docs/mosquitto/meetpunt.conf",
            flush=True,
        )
        print(f"before: {uptime()}", flush=True)
        for case in cases:
            print(run_case(case, args, register, meter_of, root).line(), flush=True)
        print(f"after:  {uptime()}", flush=True)


if __name__ == "__main__":
    main()
