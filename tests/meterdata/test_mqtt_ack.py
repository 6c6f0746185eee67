"""Live ingestion loses nothing: a message is acknowledged only when all it carried is
stored or quarantined (issue 14, MTR-4).

The batcher tests run without a network. The process tests start a private Mosquitto
on a free loopback port and a real ``meetpunt ingest mqtt`` subprocess, killed with
SIGKILL or stopped with SIGTERM, and look at the store afterwards.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import aiomqtt
import pytest

from meetpunt.io.mqtt import DEFAULT_FRAGMENT_SECONDS, INCOMPLETE_RULE, P1Batcher
from meetpunt.meterdata.store import open_store
from tests.meterdata.conftest import E1X25, E3X25, UNKNOWN, Hub, build_register
from tests.meterdata.test_mqtt import T0, telegram

HOST = "127.0.0.1"


# --- acknowledged only when taken (no network) -----------------------------------------


def test_a_message_is_acknowledged_once_the_telegram_its_bytes_start_is_taken() -> None:
    """A telegram over three messages: none of them is acknowledged before the telegram
    is taken; a message that ends a telegram and starts the next waits for that one;
    another meter's message in the same batch is acknowledged at once."""
    t0, t1, t2 = telegram(0), telegram(1), telegram(2)
    batcher = P1Batcher("m", "p1/+")
    own, other = f"p1/{E3X25}", f"p1/{E1X25}"

    batcher.add(own, t0 + t1[:100], "a")
    batcher.add(other, telegram(0), "x")
    batcher.take_batch()
    assert batcher.acks() == ["x"]  # t0 is taken, but "a" also carries t1's start
    assert batcher.waiting == 1

    batcher.add(own, t1[100:200], "b")
    assert batcher.take_batch() == []  # nothing complete yet
    assert batcher.acks() == [] and batcher.waiting == 2

    batcher.add(own, t1[200:] + t2[:50], "c")
    [source] = batcher.take_batch()
    assert source.tables["p1_readings"].column("at").to_pylist() == [T0 + timedelta(minutes=5)]
    assert batcher.acks() == ["a", "b"]  # "c" holds t2's start
    batcher.add(own, t2[50:], "d")
    batcher.take_batch()
    assert batcher.acks() == ["c", "d"] and batcher.waiting == 0 and batcher.due() is None


def test_a_first_part_that_waits_too_long_is_quarantined_then_acknowledged(hub: Hub) -> None:
    """The first part of a telegram whose rest does not come within fragment_seconds is
    refused as MTR-2.incomplete with its bytes, and its message acknowledged: it does
    not hold a place of the broker's in-flight window for ever."""
    part = telegram(1)[:300]
    batcher = P1Batcher("m", "p1/+", fragment_seconds=4.0)
    batcher.add(f"p1/{E3X25}", telegram(0) + part, "a", at=100.0)
    for source in batcher.take_batch(now=100.0):
        hub.ingestor.ingest(source)
    assert batcher.due() == 104.0
    assert batcher.take_batch(now=103.9) == [] and batcher.acks() == []
    [late] = batcher.take_batch(now=104.0)
    assert batcher.acks() == ["a"] and batcher.waiting == 0
    hub.ingestor.ingest(late)
    [refused] = hub.store.quarantined()
    assert (refused["rule"], refused["ean"]) == (INCOMPLETE_RULE, E3X25)
    assert refused["raw"] == part.decode("latin-1")  # kept whole, as received
    assert "waited 4.0 s for the rest from the same meter" in refused["message"]
    assert "no ! end marker" in refused["message"]  # the parser's reason
    assert hub.values("p1_readings", "at") == [(T0,)]
    assert DEFAULT_FRAGMENT_SECONDS == 10.0


def test_a_message_ending_with_the_crc_ends_its_telegram() -> None:
    """``!XXXX`` at the end of a message (no CR LF) completes the telegram there: it is
    taken and acknowledged with its batch, not held until the meter's next message; the
    line end that starts the next message is not garbage. A CRC cut short waits."""
    whole = telegram(0)
    assert whole.endswith(b"\r\n")
    batcher = P1Batcher("m", "p1/+")
    for n, cut in enumerate((whole[:-2], whole[:-1])):  # "!XXXX" and "!XXXX\r"
        batcher.add(f"p1/{E3X25}", cut, f"m{n}")
        [source] = batcher.take_batch()
        assert source.tables["p1_readings"].num_rows == 1 and not source.refused
        assert batcher.acks() == [f"m{n}"] and batcher.waiting == 0
    batcher.add(f"p1/{E3X25}", b"\r\n" + telegram(1)[:-2], "next")
    [source] = batcher.take_batch()
    assert not source.refused  # no MTR-2.garbage for the line end
    batcher.add(f"p1/{E3X25}", telegram(2)[:-4], "short")  # "!XX": the CRC goes on
    assert batcher.take_batch() == [] and batcher.waiting == 1
    batcher.add(f"p1/{E3X25}", telegram(2)[-4:], "rest")
    [source] = batcher.take_batch()
    assert source.tables["p1_readings"].num_rows == 1 and not source.refused
    assert batcher.acks() == ["next", "short", "rest"]


@pytest.mark.parametrize("batched", [True, False])
def test_a_telegram_of_an_unknown_ean_is_one_record(hub: Hub, batched: bool) -> None:
    """Without the register check a telegram of an unknown EAN was a refused row per
    kind (readings, failure counters, a voltage event row per phase); with it, one
    MTR-5.unknown_connection record with the raw telegram, beside the known meters'."""
    rows_path = P1Batcher("m", "p1/+")
    rows_path.add(f"p1/{UNKNOWN}", telegram(0))
    for source in rows_path.take_batch():
        hub.ingestor.ingest(source)
    per_kind = hub.store.quarantined()
    assert len(per_kind) > 1  # what this test is about: several records for one telegram
    before = len(per_kind)

    known = {E3X25, E1X25}
    batcher = P1Batcher("m", "p1/+", known=known.__contains__)
    batcher.add(f"p1/{E3X25}", telegram(1))
    batcher.add(f"p1/{UNKNOWN}", telegram(1) + telegram(2), "u")
    sources = batcher.take_batch() if batched else batcher.take()
    assert len(sources) == (1 if batched else 2)
    for source in sources:
        hub.ingestor.ingest(source)
    assert batcher.acks() == [None, "u"]
    refused = hub.store.quarantined()[before:]
    assert [(r["rule"], r["ean"], r["kind"]) for r in refused] == [
        ("MTR-5.unknown_connection", UNKNOWN, "p1_readings")
    ] * 2
    assert [r["raw"] for r in refused] == [telegram(i).decode("latin-1") for i in (1, 2)]
    assert "not an electricity connection in the register" in refused[0]["message"]
    assert hub.values("p1_readings", "at") == [(T0 + timedelta(minutes=5),)]


@pytest.mark.parametrize("seed", range(12))
def test_cut_anywhere_and_reconnected_anytime_every_telegram_comes_whole(seed: int) -> None:
    """Three meters' telegrams cut into messages at random places, taken in batches of
    random size, the connection lost at random moments (the broker then delivers every
    unacknowledged message again, in order): every telegram comes out whole, and no
    record is refused (the tail of a telegram taken before the loss, at the start of a
    message delivered again, is not garbage); every message is acknowledged in the end."""
    rng = random.Random(seed)
    streams = {ean: b"".join(telegram(i) for i in range(6)) for ean in (E3X25, E1X25, UNKNOWN)}
    parts: dict[str, list[bytes]] = {}
    for ean, stream in streams.items():
        cuts = sorted(rng.sample(range(1, len(stream)), 14))
        parts[ean] = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    order = [ean for ean, mine in parts.items() for _ in mine]
    rng.shuffle(order)  # the meters interleave; each meter's parts stay in order
    messages = [(f"p1/{ean}", parts[ean].pop(0)) for ean in order]

    batcher = P1Batcher("m", "p1/+")
    acked: set[int] = set()
    out: dict[str, set[Any]] = {ean: set() for ean in streams}
    while len(acked) < len(messages):
        queue_ = [n for n in range(len(messages)) if n not in acked]  # the broker resends
        batcher.drop()
        while queue_:
            size = rng.randint(1, 5)
            batch, queue_ = queue_[:size], queue_[size:]
            for n in batch:
                batcher.add(*messages[n], ack=n)
            for source in batcher.take():
                assert not source.refused, [(r.rule, r.raw[:40]) for r in source.refused]
                readings = source.tables["p1_readings"].to_pylist()
                for row in readings:
                    out[row["ean"]].add(row["at"])
            taken = batcher.acks()
            acked.update(taken)
            if rng.random() < 0.2:
                break  # the connection is lost: what is not acknowledged comes again
    every = {T0 + timedelta(minutes=5 * i) for i in range(6)}
    assert out == dict.fromkeys(streams, every)  # (some twice, after a redelivery)
    assert batcher.waiting == 0


# --- a real ingester process against a private broker ----------------------------------


class Ingester:
    """``meetpunt ingest mqtt --verbose --json`` as a subprocess; its stderr lines are
    read by a thread so the test can wait for one."""

    def __init__(self, port: int, topic: str, client_id: str, tmp: Path, *extra: str) -> None:
        command = [
            sys.executable,
            "-m",
            "meetpunt",
            "ingest",
            "mqtt",
            "--broker",
            f"mqtt://{HOST}:{port}",
            "--topic",
            topic,
            "--client-id",
            client_id,
            "--store",
            str(tmp / "live.duckdb"),
            "--db",
            f"sqlite:///{tmp / 'register.sqlite'}",
            "--verbose",
            "--json",
            *extra,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.process.stderr is not None
        threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """The next stderr line holding ``text`` (a failing test ends instead of hanging)."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            seen.append(line)
            if text in line:
                return line
        self.process.kill()
        pytest.fail(f"no {text!r} from the ingester; it said: {''.join(seen)}")

    def summary(self) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, out
        return dict(json.loads(out.strip().splitlines()[-1]))


async def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client(HOST, port) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


def _store(tmp: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    with open_store(tmp / "live.duckdb", read_only=True) as opened:
        readings = opened.query('SELECT "at" FROM p1_readings ORDER BY "at"').column("at")
        return readings.to_pylist(), opened.quarantined()


def test_a_telegram_split_over_a_kill_9_is_stored_once(broker: int, tmp_path: Path) -> None:
    """The ingester stores telegram 0 of a message that also starts telegram 1 and is
    killed with SIGKILL before the rest comes. The message was not acknowledged, so the
    broker delivers it again to the next run: both telegrams stored, each once (0 lost,
    0 duplicated), nothing quarantined."""
    build_register(f"sqlite:///{tmp_path / 'register.sqlite'}").dispose()
    prefix = f"meetpunt-test/{uuid.uuid4().hex}"
    own, client_id = f"{prefix}/p1/{E3X25}", f"ack-{uuid.uuid4().hex[:12]}"
    t1 = telegram(1)
    first = Ingester(broker, f"{prefix}/p1/+", client_id, tmp_path, "--batch-seconds", "0.1")
    first.wait_for("listening on")
    asyncio.run(_publish(broker, [(own, telegram(0) + t1[:250])]))
    first.wait_for("stored ")  # telegram 0 is committed; t1's start waits unacknowledged
    # another meter's batch after it: by then the first batch's acknowledgements (had
    # there been one for the held message) are on their way to the broker
    asyncio.run(_publish(broker, [(f"{prefix}/p1/{E1X25}", telegram(0))]))
    first.wait_for("stored ")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)
    asyncio.run(_publish(broker, [(own, t1[250:])]))  # queued for the absent session

    again = Ingester(broker, f"{prefix}/p1/+", client_id, tmp_path, "--batch-seconds", "0.1")
    while " 0 accepted" in again.wait_for("stored "):
        pass  # what came again (X too, if its PUBACK had not left when killed): duplicates
    again.process.send_signal(signal.SIGTERM)
    summary = again.summary()
    assert summary["unacknowledged"] == 0 and summary["duplicates"] >= 1
    readings, refused = _store(tmp_path)
    assert readings == [T0, T0, T0 + timedelta(minutes=5)]  # E1X25's and E3X25's 2, once
    assert refused == []  # telegram 0 came again and was recognised as a duplicate


def test_sigterm_prints_the_summary_and_stores_everything_taken(
    broker: int, tmp_path: Path
) -> None:
    """SIGTERM while a batch is pending: the command ingests it, prints its totals
    (messages, telegrams stored, quarantined by rule, batches, seconds, how it stopped)
    and exits 0; what it had not taken yet comes with the next run. An unknown EAN's
    telegram is one record. Nothing lost, nothing twice."""
    build_register(f"sqlite:///{tmp_path / 'register.sqlite'}").dispose()
    prefix = f"meetpunt-test/{uuid.uuid4().hex}"
    client_id = f"ack-{uuid.uuid4().hex[:12]}"
    messages = [(f"{prefix}/p1/{E3X25}", telegram(i)) for i in range(6)]
    messages += [(f"{prefix}/p1/{UNKNOWN}", telegram(0))]
    slow = ("--batch-seconds", "30", "--batch-size", "1000")  # pending until stopped
    first = Ingester(broker, f"{prefix}/p1/+", client_id, tmp_path, *slow)
    first.wait_for("listening on")
    asyncio.run(_publish(broker, messages))
    time.sleep(1.0)  # let them arrive (if some do not, the second run takes them)
    first.process.send_signal(signal.SIGTERM)
    summary = first.summary()
    assert summary["stopped_by"] == "SIGTERM"
    assert summary["batches"] >= 1 and summary["seconds"] > 0
    readings, refused = _store(tmp_path)
    assert len(readings) == summary["telegrams_stored"]  # everything taken is stored
    taken = summary["messages"]

    left = len(messages) - taken
    if left:
        again = Ingester(
            broker, f"{prefix}/p1/+", client_id, tmp_path, "--batch-seconds", "0.1",
            "--max-messages", str(left), "--seconds", "60",
        )  # fmt: skip
        assert again.summary()["messages"] == left
    readings, refused = _store(tmp_path)
    assert readings == [T0 + timedelta(minutes=5 * i) for i in range(6)]
    assert [(r["rule"], r["ean"]) for r in refused] == [("MTR-5.unknown_connection", UNKNOWN)]
    if not left:
        assert summary["quarantined"] == {"MTR-5.unknown_connection": 1}
        assert summary["telegrams_stored"] == 6 and summary["accepted"] >= 6


def test_the_cli_default_wait_for_a_rest_is_the_library_default() -> None:
    """The CLI does not import io.mqtt at start-up (aiomqtt), so it repeats the number."""
    from meetpunt.cli.meterdata import ingest_mqtt

    default = inspect.signature(ingest_mqtt).parameters["fragment_seconds"].default
    assert default == DEFAULT_FRAGMENT_SECONDS
