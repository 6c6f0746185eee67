"""Live P1 ingestion over MQTT (MTR-4) against the real Mosquitto on 127.0.0.1:1883.

Every test uses its own random topic and client id, and removes its broker session at
the end. The reconnect test puts a TCP proxy between the subscription and the broker
and cuts it mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.domain.calendar import Tariff
from meetpunt.errors import MeterDataError
from meetpunt.io.mqtt import (
    BACKOFF_CAP_S,
    BACKOFF_START_S,
    Broker,
    P1Batcher,
    P1Subscription,
    default_client_id,
    parse_broker_url,
)
from meetpunt.meterdata.ingest import BatchReport
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import open_store
from meetpunt.twin.p1 import P1Snapshot, render_telegram
from tests.meterdata.conftest import E1X25, E3X25, Hub, build_register

HOST = "127.0.0.1"
PORT = 1883
BROKER = Broker(HOST, PORT)
T0 = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def broker_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, PORT)) == 0


pytestmark = pytest.mark.skipif(not broker_up(), reason="needs Mosquitto on 127.0.0.1:1883")


# --- telegrams -------------------------------------------------------------------------


def telegram(i: int, equipment: str = "E0045000012345678") -> bytes:
    """The i-th DSMR 5 telegram of a three-phase meter, every 5 minutes from T0."""
    return render_telegram(
        P1Snapshot(
            identification="XMX5LGF0000000000042",
            timestamp=T0 + timedelta(minutes=5 * i),
            equipment_id=equipment,
            import_wh=(1_234_567 + 41 * i, 2_345_678),
            export_wh=(345_678, 456_789),
            tariff=Tariff.T2,
            power_import_w=500 + i,
            power_export_w=0,
            failures=4,
            long_failures=2,
            failure_log=(),
            sags=(0, 0, 0),
            swells=(0, 0, 0),
            voltages_v=(230.1, 229.2, 231.3),
            currents_a=(1, 2, 3),
            phase_import_w=(500 + i, 0, 0),
            phase_export_w=(0, 0, 0),
        ),
        "5.0",
    )


def crc_broken(data: bytes) -> bytes:
    """A telegram with one register digit changed and the CRC left as it was."""
    at = data.index(b"1-0:1.8.1(") + len(b"1-0:1.8.1(")
    digit = b"9" if data[at : at + 1] != b"9" else b"8"
    return data[:at] + digit + data[at + 1 :]


# --- broker helpers --------------------------------------------------------------------


def unique_prefix() -> str:
    return f"meetpunt-test/{uuid.uuid4().hex}"


async def publish(messages: list[tuple[str, bytes]]) -> None:
    """Publish with QoS 1, each acknowledged by the broker before the next."""
    async with aiomqtt.Client(HOST, PORT) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


async def forget_session(client_id: str) -> None:
    """Remove the persistent session a test left on the broker."""
    async with aiomqtt.Client(HOST, PORT, identifier=client_id, clean_session=True):
        pass


@dataclass
class Run:
    """A subscription feeding the hub's ingestor, with what it handed on."""

    hub: Hub
    topic: str
    broker: Broker = BROKER
    options: dict[str, Any] = field(default_factory=dict)
    reports: list[BatchReport] = field(default_factory=list)
    sources: list[SourceData] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    subscription: P1Subscription = field(init=False)

    def __post_init__(self) -> None:
        self.subscription = P1Subscription(
            self.broker,
            self.topic,
            self.on_source,
            on_connect=lambda _n: self.connected.set(),
            **self.options,
        )

    def on_source(self, source: SourceData) -> None:
        self.sources.append(source)
        self.reports.append(self.hub.ingestor.ingest(source))

    def readings(self, attribute: str) -> int:
        """``attribute`` of the p1_readings rows, summed over the batches."""
        return sum(getattr(r.kinds["p1_readings"], attribute) for r in self.reports)


async def nothing() -> None:
    pass


async def subscribed(
    run: Run,
    then: Callable[[], Awaitable[None]] = nothing,
    timeout: float = 8,
    forget: bool = True,
) -> None:
    """Run the subscription, do ``then`` once it is subscribed, wait for it to stop;
    then remove its broker session (unless ``forget`` is False)."""
    task = asyncio.ensure_future(run.subscription.run())
    done = False
    try:
        await asyncio.wait_for(run.connected.wait(), timeout)
        await then()
        await asyncio.wait_for(asyncio.shield(task), timeout)
        done = True
    finally:
        if not task.done():
            run.subscription.stop()
            await asyncio.wait_for(task, 5)
        if forget or not done:
            await forget_session(run.subscription.client_id)


def readings(hub: Hub) -> list[tuple[Any, ...]]:
    return hub.values("p1_readings", "connection", "at", "import_t1_wh")


def quarantine(hub: Hub) -> list[dict[str, Any]]:
    return hub.store.query("SELECT * FROM quarantine ORDER BY batch, record").to_pylist()


# --- the broker URL and the batcher (no network) -----------------------------------------


def test_broker_urls_parse_and_bad_ones_say_what_is_wrong() -> None:
    assert parse_broker_url("mqtt://127.0.0.1:1884") == Broker("127.0.0.1", 1884)
    assert parse_broker_url("mqtt://broker.example") == Broker("broker.example", 1883)
    assert parse_broker_url("mqtt://[::1]:1883/").url == "mqtt://[::1]:1883"
    for bad, says in [
        ("tcp://127.0.0.1:1883", "mqtt://"),
        ("127.0.0.1:1883", "mqtt://"),
        ("mqtt://127.0.0.1:99999", "port"),
        ("mqtt://127.0.0.1:x", "port"),
        ("mqtt://:1883", "no host"),
        ("mqtt://127.0.0.1:1883/meetpunt/p1", "topic"),
        ("mqtt://user:pw@127.0.0.1", "user"),
    ]:
        with pytest.raises(MeterDataError, match=says):
            parse_broker_url(bad)
    assert BACKOFF_START_S == 0.5 and BACKOFF_CAP_S == 30.0


def test_the_batcher_joins_a_split_telegram_and_drop_forgets_the_unacknowledged() -> None:
    """A message whose bytes wait for the rest of their telegram is not acknowledged;
    a lost connection forgets them with the pending messages (the broker delivers all
    of them again, so the telegram is put together anew, not cut off). Of the message
    delivered again, what went into sources before (telegram 0) is not taken twice."""
    batcher = P1Batcher("mqtt://h:1883", "p1/+")
    first, second = telegram(0), telegram(1)
    batcher.add(f"p1/{E3X25}", first + second[:100], "m1")
    [source] = batcher.take()
    assert source.tables["p1_readings"].num_rows == 1
    assert batcher.acks() == [] and batcher.waiting == 1  # telegram 1 is not stored yet
    batcher.add(f"p1/{E3X25}", b"lost on a reconnect", "m2")
    assert batcher.drop() == 2
    batcher.add(f"p1/{E3X25}", first + second[:100], "m1 again")
    batcher.add(f"p1/{E3X25}", second[100:], "m3")
    [source] = batcher.take()
    at = source.tables["p1_readings"].column("at").to_pylist()
    assert at == [T0 + timedelta(minutes=5)]
    assert not source.refused
    assert batcher.acks() == ["m1 again", "m3"] and batcher.waiting == 0
    assert source.source == f"mqtt://h:1883/p1/{E3X25} #2"


def test_the_batcher_digest_is_per_connection_and_ignores_message_boundaries() -> None:
    one, two = P1Batcher("m", "p1/+"), P1Batcher("m", "p1/+")
    one.add(f"p1/{E3X25}", telegram(0) + telegram(1))
    two.add(f"p1/{E3X25}", telegram(0))
    two.add(f"p1/{E3X25}", telegram(1))
    two.add(f"p1/{E1X25}", telegram(0))
    [a] = one.take()
    b, c = two.take()
    assert a.sha256 == b.sha256
    assert c.sha256 != a.sha256  # the same bytes from another connection are not skipped


# --- against the broker ----------------------------------------------------------------


def test_telegrams_are_stored_and_refusals_quarantined_with_their_rule(hub: Hub) -> None:
    prefix = unique_prefix()
    own = f"{prefix}/p1/{E3X25}"
    no_ean = f"{prefix}/p1/meter-in-the-hall"
    split = telegram(3)
    messages = [
        (own, telegram(0)),
        (own, telegram(1) + telegram(2)),  # two telegrams in one message
        (own, crc_broken(telegram(9))),
        (no_ean, telegram(5)),
        (own, split[:250]),  # one telegram over two messages
        (own, split[250:]),
    ]
    run = Run(hub, f"{prefix}/p1/+", options={"max_messages": len(messages), "batch_size": 4})
    asyncio.run(subscribed(run, lambda: publish(messages)))

    assert run.subscription.messages == len(messages)
    cid = hub.ids[E3X25]
    assert readings(hub) == [
        (cid, T0 + timedelta(minutes=5 * i), 1_234_567 + 41 * i) for i in range(4)
    ]
    refused = quarantine(hub)
    assert [(r["rule"], r["ean"]) for r in refused] == [("MTR-2.crc", E3X25), ("MTR-4.topic", "")]
    assert refused[1]["raw"] == telegram(5).decode("latin-1")  # kept whole, not lost
    assert "meter-in-the-hall" in refused[1]["message"]
    assert run.readings("accepted") == 4
    assert sum(r.quarantined["MTR-4.topic"] for r in run.reports) == 1
    assert all(s.source.startswith(f"mqtt://{HOST}:{PORT}/{prefix}/p1/") for s in run.sources)


def test_the_same_telegrams_published_twice_are_stored_once(hub: Hub) -> None:
    prefix = unique_prefix()
    own = f"{prefix}/p1/{E3X25}"
    first = [(own, telegram(i)) for i in range(3)]
    again = [(own, telegram(0) + telegram(1) + telegram(2))]  # cut differently
    run = Run(hub, own, options={"max_messages": 4, "batch_size": 3, "batch_seconds": 5})
    asyncio.run(subscribed(run, lambda: publish(first + again)))

    assert len(readings(hub)) == 3
    assert [r.kinds["p1_readings"].accepted for r in run.reports] == [3, 0]
    assert run.reports[1].already_ingested
    assert run.readings("duplicates") == 3
    assert hub.store.query("SELECT count(*) AS n FROM batch").to_pylist() == [{"n": 1}]


def test_messages_left_unread_at_a_stop_come_to_the_next_run(hub: Hub) -> None:
    own = f"{unique_prefix()}/p1/{E3X25}"
    first = Run(hub, own, options={"max_messages": 2, "batch_size": 1})
    second = Run(hub, own, options={"max_messages": 3, "batch_size": 10, "batch_seconds": 0.2})
    assert first.subscription.client_id == second.subscription.client_id

    async def scenario() -> None:
        # the broker pushes all five at once; the first run takes two and stops
        await subscribed(
            first, lambda: publish([(own, telegram(i)) for i in range(5)]), forget=False
        )
        await subscribed(second)

    asyncio.run(scenario())
    assert first.readings("accepted") == 2
    assert second.readings("accepted") == 3
    assert [at for _, at, _ in readings(hub)] == [T0 + timedelta(minutes=5 * i) for i in range(5)]


class Proxy:
    """A TCP proxy to the broker that can cut every connection and refuse new ones."""

    def __init__(self) -> None:
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.accepted = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, HOST, self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Close the listener and abort every connection (both sides)."""
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        self.server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection(HOST, PORT)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def until(condition: Callable[[], bool], timeout: float = 8) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def test_a_cut_connection_reconnects_and_every_message_is_stored_once(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = unique_prefix()
    own = f"{prefix}/p1/{E3X25}"
    before = [(own, telegram(i)) for i in range(5)]
    away = [(own, telegram(i)) for i in range(5, 11)]
    proxy = Proxy()

    async def scenario() -> None:
        await proxy.start()
        run = Run(
            hub,
            own,
            broker=Broker(HOST, proxy.port),
            options={"batch_size": 3, "batch_seconds": 1.5},
        )

        async def cut_mid_stream() -> None:
            await publish(before)
            # three handed on and acknowledged, two still pending in the open batch
            await until(lambda: len(run.reports) == 1 and run.subscription.messages == 5)
            await asyncio.sleep(0.2)  # let the acknowledgements reach the broker
            await proxy.cut()
            await until(lambda: run.subscription.messages == 3)  # the two were dropped
            await publish(away)  # while the subscription is away
            await asyncio.sleep(0.8)  # it tries after 0.5 s and is refused
            await proxy.start()  # the same port again
            await until(lambda: len(readings(hub)) == 11)
            run.subscription.stop()

        await subscribed(run, cut_mid_stream, timeout=15)
        assert run.subscription.connections == 2
        assert proxy.accepted == 2  # the attempt while the proxy was down was refused

        cid = hub.ids[E3X25]
        assert readings(hub) == [
            (cid, T0 + timedelta(minutes=5 * i), 1_234_567 + 41 * i) for i in range(11)
        ]
        assert run.readings("accepted") == 11  # each telegram accepted in exactly one batch
        # at least once: a message whose PUBACK the cut swallowed comes again, and is
        # then counted as a duplicate instead of stored twice
        assert run.readings("duplicates") == run.subscription.messages - 11
        assert quarantine(hub) == []
        await proxy.cut()

    with caplog.at_level(logging.WARNING, logger="meetpunt.io.mqtt"):
        asyncio.run(scenario())
    waits = [r.getMessage().rsplit("again in ", 1)[1] for r in caplog.records]
    assert waits[:2] == ["0.5 s", "1.0 s"]  # lost, then refused: the backoff doubles


def test_an_unreachable_broker_is_retried_with_backoff_until_the_time_is_up(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind((HOST, 0))
        closed = s.getsockname()[1]
    run = Run(hub, "meetpunt-test/p1/+", broker=Broker(HOST, closed), options={"seconds": 1.2})

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.wait_for(run.subscription.run(), 5)
        return loop.time() - start

    with caplog.at_level(logging.WARNING, logger="meetpunt.io.mqtt"):
        took = asyncio.run(scenario())
    assert 1.1 < took < 2.5
    assert run.subscription.connections == 0 and run.reports == []
    refused = [r.getMessage() for r in caplog.records]
    assert "Connection refused" in refused[0] and refused[0].endswith("again in 0.5 s")
    second = float(refused[1].rsplit("again in ", 1)[1].removesuffix(" s"))
    assert 0.4 < second < 1.0  # 1.0 s, cut to the time that is left


@pytest.fixture
def register_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli-register.sqlite'}"
    build_register(url).dispose()
    yield url


def test_the_cli_ingests_until_max_messages_and_prints_the_summary(
    register_url: str, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    client_id = default_client_id(f"{prefix}/p1/+")

    async def prepare() -> None:
        # the session exists before the command runs: it gets what was sent meanwhile
        async with aiomqtt.Client(HOST, PORT, identifier=client_id, clean_session=False) as c:
            await c.subscribe(f"{prefix}/p1/+", qos=1)
        await publish(
            [(f"{prefix}/p1/{E3X25}", telegram(i)) for i in range(3)]
            + [(f"{prefix}/p1/bad", b"/XMX5 garbage")]
        )

    asyncio.run(prepare())
    store = tmp_path / "cli.duckdb"
    common = ["--store", str(store), "--db", register_url]
    try:
        result = CliRunner().invoke(
            app,
            [
                "ingest",
                "mqtt",
                "--broker",
                f"mqtt://{HOST}:{PORT}",
                "--topic",
                f"{prefix}/p1/+",
                "--max-messages",
                "4",
                "--seconds",
                "10",  # a failing test ends instead of hanging
                "--batch-seconds",
                "0.2",
                *common,
            ],
        )
        assert result.exit_code == 0, result.output
        assert "ingested" in result.output  # the table of `ingest files`
        assert "quarantined 1 by MTR-4.topic" in result.output
        assert "stopped by max-messages" in result.output  # the run's totals, one line
        assert "4 message(s) in" in result.output and "3 telegram(s) stored" in result.output
        with open_store(store, read_only=True) as opened:
            assert opened.count("p1_readings") == 3

        shown = CliRunner().invoke(app, ["ingest", "quarantine", *common, "--json"])
        refused = [json.loads(line) for line in shown.stdout.splitlines()]
        assert [(r["rule"], r["raw"]) for r in refused] == [("MTR-4.topic", "/XMX5 garbage")]
        assert refused[0]["source"].startswith(f"mqtt://{HOST}:{PORT}/{prefix}/p1/bad #")

        bad = CliRunner().invoke(app, ["ingest", "mqtt", "--broker", "tcp://x", *common])
        assert bad.exit_code == 1
        assert "mqtt://host[:port]" in bad.output
    finally:
        asyncio.run(forget_session(client_id))


def test_a_run_ending_on_a_held_first_part_leaves_it_to_the_next_run(hub: Hub) -> None:
    """--max-messages reached while a message holds a telegram's first part: the run
    ends on its one connection, that message unacknowledged (not counted as taken, not
    cut off), and the next run with the same session gets it again and completes the
    telegram. (Ending used to subtract it and connect again, over and over.)"""
    prefix = unique_prefix()
    own = f"{prefix}/p1/{E3X25}"
    t1 = telegram(1)
    first = Run(hub, f"{prefix}/p1/+", options={"max_messages": 1, "batch_seconds": 0.1})
    asyncio.run(subscribed(first, lambda: publish([(own, telegram(0) + t1[:250])]), forget=False))
    sub = first.subscription
    assert (sub.connections, sub.messages, sub.unacknowledged) == (1, 0, 1)
    second = Run(hub, f"{prefix}/p1/+", options={"max_messages": 2, "batch_seconds": 0.1})
    asyncio.run(subscribed(second, lambda: publish([(own, t1[250:])])))
    assert second.subscription.unacknowledged == 0
    assert readings(hub) == [
        (hub.ids[E3X25], T0 + timedelta(minutes=5 * i), 1_234_567 + 41 * i) for i in range(2)
    ]
    assert quarantine(hub) == []


def test_a_first_part_whose_rest_never_comes_is_quarantined_while_nothing_else_comes(
    hub: Hub,
) -> None:
    """No other message arrives: the subscription still wakes up when the first part
    has waited fragment_seconds, quarantines it (MTR-2.incomplete) and acknowledges it,
    so the next run with the same session does not get it again."""
    prefix = unique_prefix()
    part = telegram(1)[:250]
    options = {"seconds": 2.0, "batch_seconds": 0.1, "fragment_seconds": 0.3}
    first = Run(hub, f"{prefix}/p1/+", options=options)
    asyncio.run(subscribed(first, lambda: publish([(f"{prefix}/p1/{E3X25}", part)]), forget=False))
    sub = first.subscription
    assert (sub.messages, sub.unacknowledged, sub.connections) == (1, 0, 1)
    [refused] = quarantine(hub)
    assert (refused["rule"], refused["raw"]) == ("MTR-2.incomplete", part.decode("latin-1"))
    again = Run(hub, f"{prefix}/p1/+", options={"seconds": 1.0, "batch_seconds": 0.1})
    asyncio.run(subscribed(again))
    assert again.subscription.messages == 0  # acknowledged: not delivered again
