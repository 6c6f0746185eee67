"""The broker settings live ingestion needs (issue 14), on a private Mosquitto started
with docs/mosquitto/meetpunt.conf (tests/meterdata/private_broker.py).

With that configuration, 6,000 telegrams published while no ingester is connected (six
times Mosquitto's default queue), across a broker restart, are all stored. With
Mosquitto's default queue the broker drops most of them, and meetpunt says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
import pytest
from typer.testing import CliRunner

from meetpunt.app.live import LiveSettings, ingest_live
from meetpunt.cli import app
from meetpunt.io.live_status import SYS_DROPPED
from meetpunt.io.mqtt import Broker, P1Subscription, default_client_id
from meetpunt.meterdata.ingest import BatchReport
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import open_store
from tests.meterdata.conftest import E3X25, Hub, build_register
from tests.meterdata.private_broker import HOST, PrivateBroker
from tests.meterdata.test_mqtt import telegram

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto")

#: More than Mosquitto's default max_queued_messages (1000).
TELEGRAMS = 6000


def subscribe_and_leave(port: int, topic: str) -> None:
    """Create the ingester's persistent session (QoS 1, clean_session False) and go:
    from now on the broker queues the topic's messages for it."""

    async def go() -> None:
        client_id = default_client_id(topic)
        async with aiomqtt.Client(HOST, port, identifier=client_id, clean_session=False) as c:
            await c.subscribe(topic, qos=1)

    asyncio.run(go())


def publish_all(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish QoS 1 (as a meter does) and wait until the broker acknowledged each."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex}")
    client.max_inflight_messages_set(500)
    client.max_queued_messages_set(0)
    client.connect(HOST, port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(60)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def broker_dropped(port: int, at_least: int = 1) -> int:
    """The broker's own count of dropped messages (published every sys_interval), once
    it reached ``at_least``; the last value seen after 12 s if it does not."""
    seen = 0

    async def read() -> None:
        nonlocal seen
        async with aiomqtt.Client(HOST, port) as c:
            await c.subscribe(SYS_DROPPED)
            async for message in c.messages:
                seen = int(bytes(message.payload).decode())  # type: ignore[arg-type]
                if seen >= at_least:
                    return

    async def bounded() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(read(), 12)

    asyncio.run(bounded())
    return seen


def messages(prefix: str) -> list[tuple[str, bytes]]:
    return [(f"{prefix}/{E3X25}", telegram(i)) for i in range(TELEGRAMS)]


def test_with_meetpunts_broker_config_nothing_is_lost_while_the_ingester_is_away(
    hub: Hub, tmp_path: Path
) -> None:
    prefix = "meetpunt/p1"
    topic = f"{prefix}/+"
    lines: list[str] = []
    with PrivateBroker(tmp_path) as broker:
        subscribe_and_leave(broker.port, topic)
        publish_all(broker.port, messages(prefix))
        broker.restart()  # persistence on: the session and its queue come back
        settings = LiveSettings(
            broker=f"mqtt://{HOST}:{broker.port}",
            topic=topic,
            max_messages=TELEGRAMS,
            seconds=120,  # a failing test ends instead of hanging
            status_every=0.5,
        )
        store = tmp_path / "live.duckdb"
        summary = ingest_live(hub.register, store, settings, on_status=lines.append)

    assert summary.telegrams_stored == TELEGRAMS
    with open_store(store, read_only=True) as opened:
        assert opened.count("p1_readings") == TELEGRAMS  # 0 lost
        assert opened.count("quarantine") == 0
    assert not [line for line in lines if line.startswith("WARNING")]
    assert any("telegrams stored/s" in line for line in lines)


def test_with_mosquittos_default_queue_the_broker_drops_and_meetpunt_warns(
    hub: Hub, tmp_path: Path
) -> None:
    prefix = "meetpunt/p1"
    topic = f"{prefix}/+"
    without = {"max_queued_messages": None, "max_queued_bytes": None, "sys_interval": "1"}
    lines: list[str] = []
    with PrivateBroker(tmp_path, without) as broker:
        subscribe_and_leave(broker.port, topic)
        publish_all(broker.port, messages(prefix))  # every one acknowledged by the broker
        dropped = broker_dropped(broker.port, at_least=TELEGRAMS - 1000)
        settings = LiveSettings(
            broker=f"mqtt://{HOST}:{broker.port}",
            topic=topic,
            # what the default queue kept comes first, then the broker's retained
            # $SYS values; nothing more comes, so the run ends by time
            seconds=5,
            status_every=0.5,
        )
        store = tmp_path / "live.duckdb"
        summary = ingest_live(hub.register, store, settings, on_status=lines.append)

    stored = summary.telegrams_stored
    assert stored == 1000 and dropped == TELEGRAMS - 1000  # the failure the config prevents
    assert not summary.totals.quarantined  # $SYS values are no telegrams
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert warnings[0].startswith(
        f"WARNING: the broker reports {dropped} message(s) dropped since it started "
        "($SYS/broker/publish/messages/dropped)"
    )
    assert "max_queued_messages" in warnings[0]


def test_a_batch_that_fills_the_brokers_window_is_stored_without_waiting(
    hub: Hub, tmp_path: Path
) -> None:
    """Mosquitto's default window (20 in flight) with --batch-size 1000 --batch-seconds
    30: a batch can never reach 1000, and waiting 30 s for each would store nothing
    within the 10 s run. A batch of 20 that gets no more messages is the window: it is
    stored at once, so every telegram is in before the run ends."""
    prefix = "meetpunt/p1"
    topic = f"{prefix}/+"
    with PrivateBroker(tmp_path, {"max_inflight_messages": "20"}) as broker:
        subscribe_and_leave(broker.port, topic)
        publish_all(broker.port, messages(prefix)[:100])
        settings = LiveSettings(
            broker=f"mqtt://{HOST}:{broker.port}",
            topic=topic,
            max_messages=100,
            seconds=10,
            batch_size=1000,
            batch_seconds=30,
            status_every=None,
        )
        reports: list[BatchReport] = []
        ingest_live(hub.register, tmp_path / "live.duckdb", settings, on_report=reports.append)

    accepted = [r.kinds["p1_readings"].accepted for r in reports]
    assert sum(accepted) == 100
    # the first batch is the window; Mosquitto 2.0.11 then sends the rest of its
    # queue past the window after the first acknowledgements
    assert accepted[0] == 20


@pytest.fixture
def register_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli-register.sqlite'}"
    build_register(url).dispose()
    return url


def test_the_cli_writes_status_lines_and_a_metrics_file(register_url: str, tmp_path: Path) -> None:
    prefix = "meetpunt/p1"
    topic = f"{prefix}/+"
    metrics = tmp_path / "live.prom"
    store = tmp_path / "cli.duckdb"
    with PrivateBroker(tmp_path) as broker:
        subscribe_and_leave(broker.port, topic)
        publish_all(broker.port, messages(prefix)[:50])
        result = CliRunner().invoke(
            app,
            [
                "ingest",
                "mqtt",
                "--broker",
                f"mqtt://{HOST}:{broker.port}",
                "--max-messages",
                "50",
                "--seconds",
                "30",
                "--status-every",
                "0.01",
                "--metrics",
                str(metrics),
                "--store",
                str(store),
                "--db",
                register_url,
            ],
        )
        assert result.exit_code == 0, result.output
        assert "telegrams stored/s" in result.stderr
        text = metrics.read_text()
        assert "# TYPE meetpunt_live_telegrams_stored_total counter" in text

        refused = CliRunner().invoke(
            app, ["ingest", "mqtt", "--status-every", "0", "--metrics", str(metrics)]
        )
        assert refused.exit_code != 0
        assert "--metrics needs --status-every above 0" in refused.output
        nowhere = CliRunner().invoke(
            app,
            [
                "ingest",
                "mqtt",
                "--metrics",
                str(tmp_path / "no" / "live.prom"),
                "--db",
                register_url,
            ],
        )
        assert nowhere.exit_code == 1
        assert "does not exist; create it or pass another --metrics" in nowhere.output


def test_the_last_acknowledgements_reach_the_broker_before_the_connection_closes(
    tmp_path: Path,
) -> None:
    """Stopped with messages still coming in (500 of 5,000 queued taken), the run's
    acknowledgements must be read by the broker before the socket closes: a socket
    closed with unread data is reset, and the broker then drops the PUBACKs it had not
    read and delivers the batch again (measured: 744 of 745 after a SIGTERM)."""
    prefix = "meetpunt/p1"
    topic = f"{prefix}/+"
    runs: list[set[object]] = []
    with PrivateBroker(tmp_path) as broker:
        subscribe_and_leave(broker.port, topic)
        publish_all(broker.port, messages(prefix)[:5000])
        for options in ({"max_messages": 500}, {"max_messages": 4500, "seconds": 60}):
            got: set[object] = set()

            def on_source(source: SourceData, got: set[object] = got) -> None:
                got.update(source.tables["p1_readings"].column("at").to_pylist())

            subscription = P1Subscription(
                Broker(HOST, broker.port),
                topic,
                on_source,
                batch_size=1000,
                **options,  # type: ignore[arg-type]
            )
            asyncio.run(subscription.run())
            runs.append(got)

    first, second = runs
    assert len(first) == 500
    assert not first & second  # none delivered again
    assert len(first | second) == 5000
