"""Benchmark of live P1 ingestion over MQTT (issue 14): stored telegrams/s and lag.

Starts its own Mosquitto on a free loopback port (the machine's broker on 1883 is left
alone), with ``max_inflight_messages`` and an unbounded queue so that neither caps a
micro-batch nor drops what waits. A publisher process sends ``--telegrams`` DSMR 5
telegrams from ``--meters`` meters (telegram i from meter i mod M) with QoS 1 at
``--rate`` per second; this process runs the ingest loop (:class:`P1Subscription` into
an :class:`Ingestor`, as ``meetpunt ingest mqtt`` does) into a fresh store, and stops
after every message or ``--seconds``.

Measured per mode, in the same run:

* ``batch``: one source and one transaction per micro-batch for all meters (issue 14);
* ``per-meter``: one source and one transaction per meter per micro-batch (before), with
  ``--reference-telegrams`` telegrams (it is ~60x slower: the full count would take
  minutes).

Printed: stored telegrams/s (from the first publish to the last store), lag from publish
to stored (p50/p95/max), CPU seconds of the ingest process, lost (published, not stored)
and duplicated (stored twice) counts, and the ratio of the two rates.

    .venv/bin/python benchmarks/mqtt_ingest_rate.py [--meters 10000] [--telegrams 20000]
        [--rate 1000] [--batch-size 1000] [--batch-seconds 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho

from meetpunt import rulebook
from meetpunt.domain.calendar import Tariff
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.ean import ean_from_serial
from meetpunt.io.mqtt import Broker, P1Subscription
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import open_store
from meetpunt.register.meterindex import MeterIndexEntry
from meetpunt.twin.p1 import P1Snapshot, render_telegram

HOST = "127.0.0.1"
T0 = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)
STEP = timedelta(seconds=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_broker(folder: Path, inflight: int) -> tuple[subprocess.Popen[bytes], int]:
    """A private Mosquitto on a free loopback port."""
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n"
        f"max_inflight_messages {inflight}\nmax_queued_messages 0\n"
    )
    broker = subprocess.Popen(
        [shutil.which("mosquitto") or "mosquitto", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return broker, port
        time.sleep(0.05)
    broker.kill()
    raise SystemExit("mosquitto did not start")


def eans(meters: int) -> list[str]:
    return [ean_from_serial("87168740", i + 1) for i in range(meters)]


def telegram(meter: int, k: int) -> bytes:
    """Meter ``meter``'s k-th telegram (every 10 s from T0)."""
    return render_telegram(
        P1Snapshot(
            identification="XMX5LGF0000000000042",
            timestamp=T0 + k * STEP,
            equipment_id=f"E{meter:016d}",
            import_wh=(1_000_000 + 7 * k, 2_000_000),
            export_wh=(300_000, 400_000),
            tariff=Tariff.T2,
            power_import_w=500,
            power_export_w=0,
            failures=4,
            long_failures=2,
            failure_log=(),
            sags=(0, 0, 0),
            swells=(0, 0, 0),
            voltages_v=(230.1, 229.2, 231.3),
            currents_a=(1, 2, 3),
            phase_import_w=(500, 0, 0),
            phase_export_w=(0, 0, 0),
        ),
        "5.0",
    )


def paced_publish(
    client: paho.Client, messages: list[tuple[str, bytes]], rate: float
) -> tuple[np.ndarray, list[paho.MQTTMessageInfo]]:
    """Publish ``messages`` QoS 1 at ``rate``/s; each one's publish time and its info
    (a message is kept while the client is disconnected and sent again after)."""
    times = np.zeros(len(messages))
    infos = []
    start = time.time()
    for i, (topic, payload) in enumerate(messages):
        ahead = start + i / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
        times[i] = time.time()
        infos.append(client.publish(topic, payload, qos=1))
    return times, infos


def publisher(
    port: int, prefix: str, meters: int, count: int, rate: float, out: Connection
) -> None:
    """Publish ``count`` telegrams QoS 1 at ``rate``/s; send back each publish time."""
    names = eans(meters)
    messages = [
        (f"{prefix}/{names[i % meters]}", telegram(i % meters, i // meters)) for i in range(count)
    ]
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(HOST, port)
    client.loop_start()
    out.send("ready")
    out.recv()  # go
    times, infos = paced_publish(client, messages, rate)
    for info in infos:
        info.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()
    out.send(times)


@dataclass
class Result:
    mode: str
    telegrams: int
    stored: int
    duplicated: int
    seconds: float
    lags: np.ndarray
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        p50, p95, top = (
            np.percentile(self.lags, q) if len(self.lags) else float("nan") for q in (50, 95, 100)
        )
        return (
            f"{self.mode:>9}: {self.stored:>6}/{self.telegrams} stored in {self.seconds:6.1f} s"
            f" = {self.rate:8.1f} telegrams/s; lag p50 {p50:5.2f} s p95 {p95:5.2f} s"
            f" max {top:5.2f} s; CPU {self.cpu_s:5.1f} s; lost {self.telegrams - self.stored},"
            f" duplicated {self.duplicated}"
        )


def run_mode(
    mode: str, port: int, folder: Path, index: ConnectionIndex, args: argparse.Namespace, count: int
) -> Result:
    """One ingest run of ``count`` telegrams into a fresh store."""
    rules = rulebook.vee_rules()
    store = open_store(folder / f"{mode}.duckdb")
    engine = Ingestor(store, index, rules, now=datetime.now(UTC))
    names = eans(args.meters)
    meter_of = {ean: m for m, ean in enumerate(names)}
    stored_at = np.full(count, np.nan)
    prefix = f"bench/{uuid.uuid4().hex}/p1"
    here, there = mp.Pipe()
    pub = mp.get_context("fork").Process(
        target=publisher, args=(port, prefix, args.meters, count, args.rate, there)
    )
    pub.start()
    here.recv()  # telegrams rendered, connected

    def on_source(source: SourceData) -> None:
        engine.now = datetime.now(UTC)
        engine.ingest(source)
        now = time.time()
        table = source.tables.get("p1_readings")
        if table is None:
            return
        for ean, at in zip(
            table.column("ean").to_pylist(), table.column("at").to_pylist(), strict=True
        ):
            i = (at - T0) // STEP * args.meters + meter_of[ean]
            if 0 <= i < count and np.isnan(stored_at[i]):
                stored_at[i] = now

    subscription = P1Subscription(
        Broker(HOST, port),
        f"{prefix}/+",
        on_source,
        client_id=f"bench-{uuid.uuid4().hex}",
        batch_size=args.batch_size,
        batch_seconds=args.batch_seconds,
        max_messages=count,
        seconds=args.seconds,
        per_meter=mode == "per-meter",
        on_connect=lambda _n: here.send("go"),
    )
    cpu = time.process_time()
    asyncio.run(subscription.run())
    cpu = time.process_time() - cpu
    published = here.recv()
    pub.join()
    n = store.count("p1_readings")
    keys = store.query(
        'SELECT count(*) AS d FROM (SELECT DISTINCT connection, "at" FROM p1_readings)'
    )
    distinct = int(keys.column("d")[0].as_py())
    store.close()
    done = ~np.isnan(stored_at)
    seconds = float(np.nanmax(stored_at) - published.min()) if done.any() else 0.0
    lags = stored_at[done] - published[done]
    return Result(mode, count, distinct, n - distinct, seconds, lags, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--telegrams", type=int, default=20_000)
    parser.add_argument("--reference-telegrams", type=int, default=400)
    parser.add_argument("--rate", type=float, default=1_000.0, help="published per second")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--batch-seconds", type=float, default=0.5)
    parser.add_argument("--inflight", type=int, default=2_000, help="broker max_inflight_messages")
    parser.add_argument("--seconds", type=float, default=120.0, help="time limit per mode")
    args = parser.parse_args()
    entries = [
        MeterIndexEntry(
            i + 1, ean, Commodity.ELECTRICITY, date(2020, 1, 1), None, "3x25", "smart", "in_service"
        )
        for i, ean in enumerate(eans(args.meters))
    ]
    index = ConnectionIndex(entries, rulebook.vee_rules().phase_voltage_v)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker, port = start_broker(folder, args.inflight)
        try:
            print(
                f"private mosquitto on {HOST}:{port}; {args.meters} meters, QoS 1 at "
                f"{args.rate:.0f}/s, batches of {args.batch_size} messages or "
                f"{args.batch_seconds} s"
            )
            before = run_mode("per-meter", port, folder, index, args, args.reference_telegrams)
            print(before.line(), flush=True)
            after = run_mode("batch", port, folder, index, args, args.telegrams)
            print(after.line(), flush=True)
        finally:
            broker.terminate()
            broker.wait(10)
    ratio = after.rate / before.rate if before.rate else float("inf")
    print(f"ratio batch / per-meter: {ratio:.1f}x")
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
