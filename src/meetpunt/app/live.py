"""Live ingestion in the application layer: P1 telegrams from an MQTT broker into the
hub, one micro-batch of all meters per source and transaction (MTR-2, MTR-4).

The loop that the CLI's ``ingest mqtt`` (and later the API server beside it) runs:
subscribe, stop on SIGINT/SIGTERM, a message count or a time limit, and ingest every
micro-batch against the register as it stands when the loop starts.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from meetpunt.app.hub import hub_store, ingestor
from meetpunt.io.mqtt import P1Subscription, parse_broker_url
from meetpunt.meterdata.ingest import BatchReport
from meetpunt.meterdata.source import SourceData
from meetpunt.register import Register


@dataclass(frozen=True)
class LiveSettings:
    """Where to listen and when to stop (see ``meetpunt ingest mqtt --help``)."""

    broker: str = "mqtt://127.0.0.1:1883"
    topic: str = "meetpunt/p1/+"
    ean: str | None = None
    max_messages: int | None = None
    seconds: float | None = None
    batch_size: int = 20
    batch_seconds: float = 2.0
    client_id: str | None = None
    per_meter: bool = False
    """One transaction per meter per batch (the pre-issue-14 path, for comparison)."""


async def _listen(subscription: P1Subscription) -> None:
    """Run ``subscription`` until it stops; SIGINT/SIGTERM stop it cleanly (what is
    pending is ingested first)."""
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, subscription.stop)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signals here: stop by count or time
    try:
        await subscription.run()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def ingest_live(
    register: Register,
    store: Path | None,
    settings: LiveSettings,
    on_listening: Callable[[str], None] | None = None,
) -> list[BatchReport]:
    """Ingest telegrams from the broker until ``settings`` say stop; the reports of
    every micro-batch, in order. ``on_listening`` hears one line once subscribed."""
    address = parse_broker_url(settings.broker)
    reports: list[BatchReport] = []
    with hub_store(store) as opened:
        engine = ingestor(opened, register)

        def on_source(source: SourceData) -> None:
            engine.now = datetime.now(UTC)  # the clock check runs against each batch
            reports.append(engine.ingest(source))

        subscription = P1Subscription(
            address,
            settings.topic,
            on_source,
            ean=settings.ean,
            client_id=settings.client_id,
            batch_size=settings.batch_size,
            batch_seconds=settings.batch_seconds,
            max_messages=settings.max_messages,
            seconds=settings.seconds,
            per_meter=settings.per_meter,
        )
        if on_listening is not None:
            on_listening(
                f"listening on {address.url} to {settings.topic} as {subscription.client_id}"
            )
        asyncio.run(_listen(subscription))
    return reports
