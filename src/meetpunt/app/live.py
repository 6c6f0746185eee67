"""Live ingestion in the application layer: P1 telegrams from an MQTT broker into the
hub, one micro-batch of all meters per source and transaction (MTR-2, MTR-4).

The loop that the CLI's ``ingest mqtt`` (and later the API server beside it) runs:
subscribe, stop on SIGINT/SIGTERM, a message count or a time limit, and ingest every
micro-batch against the register as it stands when the loop starts (a telegram of an
EAN it does not know is one MTR-5.unknown_connection record). What the run did is kept
as running totals (:class:`LiveSummary`), not a report per batch.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    DEFAULT_FRAGMENT_SECONDS,
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
    fragment_seconds: float = DEFAULT_FRAGMENT_SECONDS
    """How long a telegram's first part waits for its rest (then MTR-2.incomplete)."""


@dataclass
class LiveSummary:
    """What a run of live ingestion did, as running totals (bounded memory however long
    it runs; issue 14): the counts of every micro-batch added up."""

    source: str
    """``mqtt://host:port/<topic filter>``."""
    totals: BatchReport
    """Rows, accepted, duplicates, quarantined by rule, per kind, over all batches."""
    batches: int = 0
    """Micro-batches handed to the hub (sources)."""
    already_ingested: int = 0
    """Of those, batches the store had already (delivered again, skipped whole)."""
    first_batch: int | None = None
    last_batch: int | None = None
    messages: int = 0
    """Messages taken and acknowledged."""
    unacknowledged: int = 0
    """Messages left unacknowledged at the end (a telegram's first part; the broker
    delivers them again)."""
    connections: int = 0
    seconds: float = 0.0
    stopped_by: str = ""
    """``SIGINT``/``SIGTERM``, ``max-messages``, ``seconds`` (or ``stop``: told by
    its caller)."""

    def add(self, report: BatchReport) -> None:
        """Count one micro-batch's report in."""
        self.batches += 1
        self.already_ingested += int(report.already_ingested)
        if report.batch is not None:
            if self.first_batch is None:
                self.first_batch = report.batch
            self.last_batch = report.batch
        self.totals.absorb(report)

    @property
    def telegrams_stored(self) -> int:
        """Telegrams whose readings went in (one ``p1_readings`` row each)."""
        readings = self.totals.kinds.get("p1_readings")
        return readings.accepted if readings is not None else 0

    def as_dict(self) -> dict[str, Any]:
        """The totals in the shape of one :meth:`BatchReport.as_dict` (same keys, same
        meaning, over the whole run) plus what the run did."""
        return {
            **self.totals.as_dict(),
            "source": self.source,
            "batch": None,
            "already_ingested": self.already_ingested,
            "batches": self.batches,
            "first_batch": self.first_batch,
            "last_batch": self.last_batch,
            "messages": self.messages,
            "unacknowledged": self.unacknowledged,
            "telegrams_stored": self.telegrams_stored,
            "connections": self.connections,
            "seconds": round(self.seconds, 3),
            "stopped_by": self.stopped_by,
        }


async def _listen(
    subscription: P1Subscription, summary: LiveSummary, status: _Status | None = None
) -> None:
    """Run ``subscription`` until it stops; SIGINT/SIGTERM stop it cleanly (what is
    pending is ingested first) and are named in ``summary``. ``status``: report every
    interval while it runs."""
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []

    def stop(signum: signal.Signals) -> None:
        summary.stopped_by = summary.stopped_by or signum.name
        subscription.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop, signum)
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
    on_report: Callable[[BatchReport], None] | None = None,
) -> LiveSummary:
    """Ingest telegrams from the broker until ``settings`` say stop; the running totals
    of every micro-batch (not a list of them: a run may last months). ``on_listening``
    hears one line once subscribed, ``on_report`` each micro-batch's report,
    ``on_status`` the status lines and warnings (default: stderr)."""
    address = parse_broker_url(settings.broker)
    summary = LiveSummary(
        f"{address.url}/{settings.topic}", BatchReport(f"{address.url}/{settings.topic}", None)
    )
    status = _monitor(settings, on_status)
    started = time.monotonic()
    with hub_store(store) as opened:
        engine = ingestor(opened, register)

        def on_source(source: SourceData) -> None:
            engine.now = datetime.now(UTC)  # the clock check runs against each batch
            report = engine.ingest(source)
            summary.add(report)
            if status is not None:
                _tell(status.monitor, source, report)
            if on_report is not None:
                on_report(report)

        def connected(connection: int) -> None:
            if on_listening is not None and connection == 1:  # subscribed: nothing missed
                on_listening(
                    f"listening on {address.url} to {settings.topic} as {subscription.client_id}"
                )

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
            known=engine.index.knows,
            fragment_seconds=settings.fragment_seconds,
            on_connect=connected,
        )
        try:
            asyncio.run(_listen(subscription, summary, status))
        finally:
            summary.messages = subscription.messages
            summary.unacknowledged = subscription.unacknowledged
            summary.connections = subscription.connections
            summary.seconds = time.monotonic() - started
    if not summary.stopped_by:
        limit = settings.max_messages
        if limit is not None and summary.messages + summary.unacknowledged >= limit:
            summary.stopped_by = "max-messages"
        else:
            summary.stopped_by = "seconds" if settings.seconds is not None else "stop"
    return summary
