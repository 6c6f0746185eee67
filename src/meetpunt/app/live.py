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
from meetpunt.errors import MeterDataError
from meetpunt.io.live_status import (
    DEFAULT_LAG_LIMIT_S,
    DEFAULT_STATUS_EVERY_S,
    LiveMonitor,
    report_every,
)
from meetpunt.io.mqtt import (
    DEFAULT_BATCH_SECONDS,
    DEFAULT_BATCH_SIZE,
    P1Subscription,
    parse_broker_url,
)
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
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_seconds: float = DEFAULT_BATCH_SECONDS
    client_id: str | None = None
    per_meter: bool = False
    """One transaction per meter per batch (the pre-issue-14 path, for comparison)."""
    status_every: float | None = DEFAULT_STATUS_EVERY_S
    """Seconds between status lines on stderr (None: no status, no $SYS watch)."""
    metrics: Path | None = None
    """Prometheus text file rewritten at each status line."""
    lag_limit: float = DEFAULT_LAG_LIMIT_S
    """Lag p95 (receipt -> stored) above this many seconds is warned about."""


async def _listen(subscription: P1Subscription, status: _Status | None = None) -> None:
    """Run ``subscription`` until it stops; SIGINT/SIGTERM stop it cleanly (what is
    pending is ingested first). ``status``: report every interval while it runs."""
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, subscription.stop)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signals here: stop by count or time
    reporter = None if status is None else asyncio.ensure_future(status.run())
    try:
        await subscription.run()
    finally:
        if reporter is not None:
            reporter.cancel()
            await asyncio.wait({reporter})
        if status is not None:  # the last, shorter interval: the run's final figures
            status.monitor.report(status.metrics)
        for signum in handled:
            loop.remove_signal_handler(signum)


@dataclass(frozen=True)
class _Status:
    """The periodic status of a run (issue 14): its monitor, interval and metrics file."""

    monitor: LiveMonitor
    every: float
    metrics: Path | None

    async def run(self) -> None:
        await report_every(self.monitor, self.every, self.metrics)


def _monitor(settings: LiveSettings, on_status: Callable[[str], None] | None) -> _Status | None:
    if settings.status_every is None:
        return None
    if settings.metrics is not None and not settings.metrics.parent.is_dir():
        raise MeterDataError(
            f"metrics file {settings.metrics}: folder {settings.metrics.parent} does not "
            "exist; create it or pass another --metrics"
        )
    monitor = (
        LiveMonitor(lag_limit_s=settings.lag_limit)
        if on_status is None
        else LiveMonitor(lag_limit_s=settings.lag_limit, emit=on_status)
    )
    return _Status(monitor, settings.status_every, settings.metrics)


def _tell(monitor: LiveMonitor, source: SourceData, report: BatchReport) -> None:
    """What the hub did with ``source``, for the status (issue 14)."""
    readings = report.kinds.get("p1_readings")
    table = source.tables.get("p1_readings")
    times = [] if table is None else [at.timestamp() for at in table.column("at").to_pylist()]
    monitor.stored(
        times,
        readings.accepted if readings is not None else 0,
        sum(report.quarantined.values()),
        readings.duplicates if readings is not None else 0,
    )


def ingest_live(
    register: Register,
    store: Path | None,
    settings: LiveSettings,
    on_listening: Callable[[str], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> list[BatchReport]:
    """Ingest telegrams from the broker until ``settings`` say stop; the reports of
    every micro-batch, in order. ``on_listening`` hears one line once subscribed;
    ``on_status`` the status lines and warnings (default: stderr)."""
    address = parse_broker_url(settings.broker)
    reports: list[BatchReport] = []
    status = _monitor(settings, on_status)
    with hub_store(store) as opened:
        engine = ingestor(opened, register)

        def on_source(source: SourceData) -> None:
            engine.now = datetime.now(UTC)  # the clock check runs against each batch
            reports.append(engine.ingest(source))
            if status is not None:
                _tell(status.monitor, source, reports[-1])

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
            monitor=None if status is None else status.monitor,
        )
        if on_listening is not None:
            on_listening(
                f"listening on {address.url} to {settings.topic} as {subscription.client_id}"
            )
        asyncio.run(_listen(subscription, status))
    return reports
