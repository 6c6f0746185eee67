"""Live P1 ingestion over MQTT (MTR-4): broker messages in, one source per micro-batch out.

A meter (or its P1 dongle) publishes telegrams on ``<prefix>/<EAN>``, e.g.
``meetpunt/p1/871687400000000014``; a payload is one or more telegrams or a fragment
of one. :class:`P1Subscription` subscribes with QoS 1 and collects the messages in
micro-batches: every ``batch_size`` messages or ``batch_seconds`` after the first
pending one (whichever comes first) it hands one :class:`SourceData` holding every
meter's telegrams of the batch to ``on_source`` (the CLI passes
:meth:`Ingestor.ingest`: one batch, one transaction, counters and duplicates checked per
connection inside it; issue 14: a transaction per meter capped the rate at ~17
telegrams/s). ``per_meter=True`` keeps one source per EAN (the benchmark's reference).
A message whose topic has no EAN is not lost: it is refused into the quarantine with
rule ``MTR-4.topic`` (a source of its own, named after its topic).

Delivery. The client keeps a fixed identifier and ``clean_session=False`` (MQTT
3.1.1), so the broker keeps the subscription and queues QoS-1 messages while we are
away. A message is acknowledged (PUBACK) only after its batch was handed on: messages
still pending when the connection drops, or left unread when we stop, are delivered
again by the broker, so nothing is lost between broker and store (at least once; the
store is idempotent, so a telegram delivered twice is stored once). Mosquitto sends at
most ``max_inflight_messages`` (default 20) unacknowledged messages to a client, so a
``batch_size`` above that may not fill (2.0.11 keeps to the window for the backlog
queued while we were away): a batch as large as the largest one so far that gets no
message for :data:`WINDOW_QUIET_S` is handed on at once rather than after
``batch_seconds`` (issue 14; docs/mosquitto/meetpunt.conf sets the window to 1,000, the
default ``batch_size``).

Status (issue 14). With a :class:`~meetpunt.io.live_status.LiveMonitor` the
subscription also takes the broker's ``$SYS`` dropped and stored counts (QoS 0, not
batched) and tells the monitor each message taken, stored or dropped at a reconnect.

Reconnects. aiomqtt has no reconnect of its own: on :class:`aiomqtt.MqttError` the
pending messages are dropped (the broker redelivers them), we wait
:data:`BACKOFF_START_S`, doubling up to :data:`BACKOFF_CAP_S` while attempts keep
failing, and connect and subscribe again.

I/O only: telegrams are split and parsed by :mod:`meetpunt.io.p1`, turned into rows
by :func:`meetpunt.io.p1_source.source_from_telegrams`; :class:`P1Batcher` is the
part without a network (messages in, sources out).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import urlsplit

import aiomqtt
import pyarrow as pa
import pyarrow.compute as pc
from paho.mqtt.reasoncodes import ReasonCode

from meetpunt.domain.ean import check_ean, is_valid_ean
from meetpunt.errors import MeterDataError
from meetpunt.io.live_status import SYS_DROPPED, SYS_STORED, LiveMonitor
from meetpunt.io.p1 import Telegram, TelegramSplitter
from meetpunt.io.p1_source import source_from_meters, source_from_telegrams
from meetpunt.meterdata.source import Refusal, SourceData

__all__ = [
    "BACKOFF_CAP_S",
    "BACKOFF_START_S",
    "DEFAULT_BATCH_SECONDS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_PORT",
    "TOPIC_RULE",
    "Broker",
    "P1Batcher",
    "P1Subscription",
    "default_client_id",
    "ean_of_topic",
    "merge_sources",
    "parse_broker_url",
]

log = logging.getLogger(__name__)

#: First wait after a lost connection or failed attempt, in seconds.
BACKOFF_START_S: Final = 0.5
#: The wait doubles per failed attempt up to this many seconds.
BACKOFF_CAP_S: Final = 30.0
#: The port of ``mqtt://host`` without one.
DEFAULT_PORT: Final = 1883
#: QoS of the subscription: at least once.
QOS: Final = 1
#: MQTT keepalive, seconds.
KEEPALIVE_S: Final = 30
#: How long connect, CONNACK and SUBACK may take, seconds.
TIMEOUT_S: Final = 10.0
#: Messages per micro-batch: a region's second (10,000 meters every 10 s), within the
#: broker's in-flight window of docs/mosquitto/meetpunt.conf (1,000).
DEFAULT_BATCH_SIZE: Final = 1000
#: Seconds a message may wait in a micro-batch.
DEFAULT_BATCH_SECONDS: Final = 1.0
#: A batch as large as the largest one so far closes after this many quiet seconds:
#: the broker's in-flight window is full and nothing more comes until we acknowledge.
WINDOW_QUIET_S: Final = 0.05
#: Mosquitto's default ``max_inflight_messages``: the window assumed until a larger
#: batch was seen.
DEFAULT_WINDOW: Final = 20
#: The refusal of a message whose topic does not end in a valid EAN.
TOPIC_RULE: Final = "MTR-4.topic"

OnSource = Callable[[SourceData], None]


# --- the broker address --------------------------------------------------------------


@dataclass(frozen=True)
class Broker:
    """Host and port of an MQTT broker."""

    host: str
    port: int = DEFAULT_PORT

    @property
    def url(self) -> str:
        """``mqtt://host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"


def parse_broker_url(url: str) -> Broker:
    """``mqtt://host[:port]`` -> :class:`Broker` (port 1883 when left out); anything else
    is a :class:`MeterDataError` saying what is wrong (MTR-4)."""
    expected = "expected mqtt://host[:port], e.g. mqtt://127.0.0.1:1883"
    parts = urlsplit(url.strip())
    if parts.scheme != "mqtt":
        raise MeterDataError(f"broker URL {url!r} does not start with mqtt://: {expected}")
    try:
        port = parts.port
    except ValueError:
        raise MeterDataError(f"broker URL {url!r} has no valid port: {expected}") from None
    if not parts.hostname:
        raise MeterDataError(f"broker URL {url!r} names no host: {expected}")
    if parts.username is not None or parts.password is not None:
        raise MeterDataError(f"broker URL {url!r}: user and password are not supported")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise MeterDataError(
            f"broker URL {url!r} has a path, query or fragment: {expected} (pass the "
            "topic with --topic)"
        )
    return Broker(parts.hostname, DEFAULT_PORT if port is None else port)


# --- messages in, sources out (no network) -------------------------------------------


def ean_of_topic(topic: str) -> str | None:
    """The EAN a topic names as its last level (``meetpunt/p1/<EAN>``), or None."""
    last = topic.rsplit("/", 1)[-1]
    return last if is_valid_ean(last) else None


def default_client_id(topic: str, ean: str | None = None) -> str:
    """A fixed client identifier per subscription: the same topic (and ``--ean``) gets
    the same broker session back after a restart, different ones do not share it."""
    key = f"{topic}\n{ean or ''}".encode()
    return "meetpunt-ingest-" + hashlib.sha256(key).hexdigest()[:16]


def _topic_refusal(topic: str, record: int, payload: bytes) -> Refusal:
    last = topic.rsplit("/", 1)[-1]
    finding = check_ean(last)
    why = finding.message if finding is not None else f"{last!r} is not an EAN"
    message = (
        f"MQTT topic {topic!r} does not end in the EAN of a connection ({why}); "
        "publish P1 telegrams on <prefix>/<EAN> or ingest this topic with --ean"
    )
    return Refusal("p1_readings", record, "", TOPIC_RULE, message, payload.decode("latin-1"))


GARBAGE_RULE = "MTR-2.garbage"
GARBAGE_KEPT = 4096
"""Bytes of a message's garbage kept in its quarantine record (the count says the rest)."""


def _garbage_refusal(record: int, ean: str, topic: str, payload: bytes, skipped: int) -> Refusal:
    """One bounded record for a message whose bytes were no part of a telegram (MTR-2):
    every message leaves a trace, stored or quarantined, whatever its size."""
    message = (
        f"{skipped} byte(s) of a {len(payload)}-byte message on {topic!r} are no part of a "
        f"P1 telegram (no '/' starts them); the first {min(len(payload), GARBAGE_KEPT)} "
        "byte(s) are kept: check what publishes on this topic"
    )
    return Refusal(
        "p1_readings", record, ean, GARBAGE_RULE, message, payload[:GARBAGE_KEPT].decode("latin-1")
    )


def _digest(kind: bytes, key: str, parts: Iterable[bytes]) -> str:
    """SHA-256 of what a source was built from, each part length-prefixed."""
    h = hashlib.sha256(kind + b"\0" + key.encode() + b"\0")
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class P1Batcher:
    """Micro-batches of MQTT messages -> sources: one per EAN per batch (:meth:`take`)
    or one for all meters of the batch (:meth:`take_batch`) (MTR-4).

    One :class:`TelegramSplitter` per EAN lives across batches, so a telegram split
    over messages (and batches) is put back together. Messages are only fed to the
    splitters when the batch is taken, so :meth:`drop` (a lost connection: the broker
    delivers the messages again) leaves the splitters as they were.

    A source's ``sha256`` is taken over its EAN and the raw telegrams it holds (the
    topic and payloads for ``MTR-4.topic`` refusals): the same telegrams published
    again, however they are cut into messages, are recognised as already ingested, and
    the same bytes from another connection are not.
    """

    def __init__(self, label: str, subscription: str, ean: str | None = None) -> None:
        self.label = label
        self.subscription = subscription
        self.ean = ean
        self._pending: list[tuple[str, bytes]] = []
        self._splitters: dict[str, TelegramSplitter] = {}
        self._count = 0
        self._garbage: list[tuple[str, str, bytes, int]] = []
        """(EAN, topic, payload, bytes skipped) of messages with garbage, this batch."""

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, topic: str, payload: bytes) -> None:
        """One message into the pending batch."""
        self._pending.append((topic, payload))

    def drop(self) -> int:
        """Forget the pending messages (they will be delivered again); how many."""
        dropped = len(self._pending)
        self._pending.clear()
        return dropped

    def take(self, final: bool = False) -> list[SourceData]:
        """The sources of the pending messages, one per EAN (and per topic without
        one), in order of first arrival; ``final`` also flushes every splitter (a
        telegram cut off at the end is refused as ``MTR-2.truncated``, not lost)."""
        sources = [source for _, source in self._take(final)]
        return [*sources, *self._garbage_source()]

    def take_batch(self, final: bool = False) -> list[SourceData]:
        """The pending messages as one source for all meters (one transaction, MTR-4),
        plus one per topic without an EAN (``MTR-4.topic``, kept apart so their
        quarantine records name their topic). The rows and records are those of
        :meth:`take`'s sources joined by :func:`merge_sources`, built at once."""
        meters: list[tuple[str, list[Telegram], list[tuple[str, bytes]]]] = []
        others: list[SourceData] = []
        for (is_ean, owner), messages in self._groups(final).items():
            if not is_ean:
                others.append(self._refused(owner, messages))
                continue
            telegrams = self._split(owner, messages, final)
            if telegrams:
                meters.append((owner, telegrams, messages))
        if len(meters) == 1:
            ean, telegrams, messages = meters[0]
            return [self._with_garbage(self._meter_source(ean, telegrams, messages)), *others]
        if not meters:
            return [*others, *self._garbage_source()]
        first = self._count + 1
        self._count += len(meters)
        digest = _digest(
            b"p1-batch",
            "",
            (_digest(b"p1", ean, (t.raw for t in ts)).encode() for ean, ts, _ in meters),
        )
        name = f"{self.label}/{self.subscription} #{first}..{self._count}"
        parts = [(ean, telegrams) for ean, telegrams, _ in meters]
        return [self._with_garbage(source_from_meters(parts, name, digest)), *others]

    def _groups(self, final: bool) -> dict[tuple[bool, str], list[tuple[str, bytes]]]:
        """The pending messages by EAN (True, EAN) or topic without one (False, topic),
        in order of first arrival; ``final`` adds every EAN with a splitter."""
        groups: dict[tuple[bool, str], list[tuple[str, bytes]]] = {}
        for topic, payload in self._pending:
            ean = self.ean or ean_of_topic(topic)
            key = (True, ean) if ean is not None else (False, topic)
            groups.setdefault(key, []).append((topic, payload))
        self._pending.clear()
        if final:
            for ean in self._splitters:
                groups.setdefault((True, ean), [])
        return groups

    def _take(self, final: bool) -> list[tuple[bool, SourceData]]:
        sources: list[tuple[bool, SourceData]] = []
        for (is_ean, owner), messages in self._groups(final).items():
            source = (
                self._ean_source(owner, messages, final)
                if is_ean
                else self._refused(owner, messages)
            )
            if source is not None:
                sources.append((is_ean, source))
        return sources

    def _name(self, messages: list[tuple[str, bytes]]) -> str:
        topics = {topic for topic, _ in messages}
        topic = topics.pop() if len(topics) == 1 else self.subscription
        self._count += 1
        return f"{self.label}/{topic} #{self._count}"

    def _ean_source(
        self, ean: str, messages: list[tuple[str, bytes]], final: bool
    ) -> SourceData | None:
        telegrams = self._split(ean, messages, final)
        if not telegrams:
            return None  # a fragment: its telegram completes in a later batch
        return self._meter_source(ean, telegrams, messages)

    def _split(self, ean: str, messages: list[tuple[str, bytes]], final: bool) -> list[Telegram]:
        """The telegrams ``messages`` complete in ``ean``'s splitter."""
        splitter = self._splitters.setdefault(ean, TelegramSplitter())
        telegrams: list[Telegram] = []
        for topic, payload in messages:
            before = splitter.skipped
            telegrams += splitter.feed(payload)
            skipped = splitter.skipped - before
            if skipped > sum(payload.count(c) for c in (b" ", b"\r", b"\n", b"\t")):
                self._garbage.append((ean, topic, payload, skipped))
        if final:
            telegrams += splitter.flush()
        return telegrams

    def _meter_source(
        self, ean: str, telegrams: list[Telegram], messages: list[tuple[str, bytes]]
    ) -> SourceData:
        digest = _digest(b"p1", ean, (t.raw for t in telegrams))
        return source_from_telegrams(telegrams, ean, self._name(messages), digest)

    def _garbage_refusals(self, first: int) -> list[Refusal]:
        """One bounded record (``MTR-2.garbage``) per message of this batch with bytes
        that were no part of a telegram, numbered from ``first``; forgotten after."""
        found, self._garbage = self._garbage, []
        return [
            _garbage_refusal(n, ean, topic, payload, skipped)
            for n, (ean, topic, payload, skipped) in enumerate(found, start=first)
        ]

    def _with_garbage(self, source: SourceData) -> SourceData:
        """``source`` with the batch's garbage records after its own records, so the
        micro-batch stays one source and one transaction."""
        source.refused += self._garbage_refusals(_last_record(source) + 1)
        return source

    def _garbage_source(self) -> list[SourceData]:
        """The batch's garbage records as a source of their own (a batch without a
        telegram, or the per-meter path); none when there were none."""
        if not self._garbage:
            return []
        payloads = [payload for _, _, payload, _ in self._garbage]
        self._count += 1
        source = SourceData(
            f"{self.label}/{self.subscription} garbage #{self._count}",
            _digest(b"garbage", "", payloads),
        )
        source.refused += self._garbage_refusals(1)
        return [source]

    def _refused(self, topic: str, messages: list[tuple[str, bytes]]) -> SourceData:
        payloads = [payload for _, payload in messages]
        source = SourceData(self._name(messages), _digest(b"topic", topic, payloads))
        source.refused += [_topic_refusal(topic, n, p) for n, p in enumerate(payloads, start=1)]
        return source


def _last_record(source: SourceData) -> int:
    """The highest record number of a held source (0 when empty)."""
    last = max((r.record for r in source.refused), default=0)
    for table in source.tables.values():
        if table.num_rows:
            top = pc.max(table.column("record")).as_py()
            last = max(last, int(top or 0))
    return last


def merge_sources(name: str, sources: Sequence[SourceData]) -> SourceData:
    """One source holding the rows and refusals of several meters' sources (MTR-4:
    one micro-batch, one transaction; the hub checks counters and duplicates per
    connection inside it, as for a file of many connections).

    Each meter's records keep their order and get numbers after the previous meter's
    (record numbers stay unique in the batch, so a retry of quarantined records finds
    exactly them). The ``sha256`` is taken over the parts' digests: the same batch
    delivered again is recognised whole; the same telegrams cut into other batches
    are duplicates row by row."""
    tables: dict[str, list[pa.Table]] = {}
    refused: list[Refusal] = []
    offset = 0
    for source in sources:
        for kind, table in source.tables.items():
            shifted = pc.add(table.column("record"), pa.scalar(offset, pa.int64()))
            at = table.schema.get_field_index("record")
            tables.setdefault(kind, []).append(table.set_column(at, "record", shifted))
        refused += [replace(r, record=r.record + offset) for r in source.refused]
        offset += _last_record(source)
    digest = _digest(b"p1-batch", "", (s.sha256.encode() for s in sources))
    merged = SourceData(name, digest, refused=refused)
    merged.tables = {kind: pa.concat_tables(parts) for kind, parts in tables.items()}
    return merged


# --- the subscription ----------------------------------------------------------------


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()


def _refused_subscription(codes: Iterable[Any]) -> bool:
    for code in codes:
        if isinstance(code, ReasonCode):
            if code.is_failure:
                return True
        elif int(code) >= 0x80:
            return True
    return False


async def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel a task and collect its outcome (no 'exception never retrieved')."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()


class P1Subscription:
    """Subscribe to P1 telegrams on an MQTT broker and hand on sources (MTR-4).

    ``topic`` is a subscription filter (``meetpunt/p1/+``); the EAN of a message is
    ``ean`` when given, else the last level of its topic. :meth:`run` returns when
    ``max_messages`` messages were taken, ``seconds`` have passed or :meth:`stop` was
    called (or ``stop`` was set), after handing on what is pending. ``on_connect`` is
    called with the number of the connection each time the subscription is in place.
    An exception from ``on_source`` ends the run; the batch is then not acknowledged
    and the broker delivers it again to the next run with the same ``client_id``.
    """

    def __init__(
        self,
        broker: Broker,
        topic: str,
        on_source: OnSource,
        *,
        ean: str | None = None,
        client_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        max_messages: int | None = None,
        seconds: float | None = None,
        stop: asyncio.Event | None = None,
        on_connect: Callable[[int], None] | None = None,
        per_meter: bool = False,
        monitor: LiveMonitor | None = None,
    ) -> None:
        try:
            aiomqtt.Wildcard(topic)
        except ValueError:
            raise MeterDataError(f"{topic!r} is not an MQTT topic filter") from None
        if ean is not None and not is_valid_ean(ean):
            finding = check_ean(ean)
            raise MeterDataError(finding.message if finding else f"{ean!r} is not an EAN")
        if batch_size < 1 or batch_seconds <= 0:
            raise MeterDataError("the batch size must be 1 or more and its time above 0 s")
        if (max_messages is not None and max_messages < 1) or (
            seconds is not None and seconds <= 0
        ):
            raise MeterDataError("stop after at least 1 message and more than 0 seconds")
        self.broker = broker
        self.topic = topic
        self.ean = ean
        self.client_id = client_id or default_client_id(topic, ean)
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.max_messages = max_messages
        self.seconds = seconds
        self.per_meter = per_meter
        """One source (transaction) per meter per batch, as before issue 14 (the
        benchmark's reference); default one source for all meters of a batch."""
        self.messages = 0
        """Messages taken into batches (those dropped at a lost connection not counted)."""
        self.sources = 0
        self.connections = 0
        self._on_source = on_source
        self._on_connect = on_connect
        self._stop = stop or asyncio.Event()
        self._batcher = P1Batcher(broker.url, topic, ean)
        self._acks: list[tuple[int, int]] = []
        self._batch_started = 0.0
        self._deadline: float | None = None
        self._online = False
        self._closed = False
        # -- issue 14: the status monitor and the broker's in-flight window
        self._monitor = monitor
        self._last_message = 0.0
        self.window = DEFAULT_WINDOW
        """The largest batch handed on so far (at least :data:`DEFAULT_WINDOW`): a
        batch this large that stops growing has filled the broker's in-flight window
        (``max_inflight_messages``)."""

    # -- control ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop soon: hand on what is pending, acknowledge it, disconnect."""
        self._stop.set()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _finished(self) -> bool:
        if self._stop.is_set():
            return True
        if self.max_messages is not None and self.messages >= self.max_messages:
            return True
        return self._deadline is not None and self._now() >= self._deadline

    def _remaining(self) -> float | None:
        return None if self._deadline is None else max(self._deadline - self._now(), 0.0)

    # -- the reconnect loop --------------------------------------------------------------

    async def run(self) -> None:
        """Connect, subscribe, ingest; reconnect with backoff until told to stop."""
        if self._deadline is None and self.seconds is not None:
            self._deadline = self._now() + self.seconds
        stopper = asyncio.ensure_future(self._stop.wait())
        delay = BACKOFF_START_S
        try:
            while not self._finished():
                connections = self.connections
                try:
                    await self._attempt(stopper)
                except aiomqtt.MqttError as exc:
                    if self.connections > connections:
                        delay = BACKOFF_START_S  # it was up: start the backoff over
                    if self._finished():
                        break
                    remaining = self._remaining()
                    wait = delay if remaining is None else min(delay, remaining)
                    log.warning(
                        "MQTT %s: %s; connecting again in %.1f s", self.broker.url, exc, wait
                    )
                    await asyncio.wait({stopper}, timeout=wait)
                    delay = min(delay * 2, BACKOFF_CAP_S)
            if not self._closed:
                self._flush(None, final=True)
        finally:
            await _discard(stopper)

    async def _attempt(self, stopper: asyncio.Future[Any]) -> None:
        """One connection; given up when told to stop before it is subscribed."""
        session = asyncio.ensure_future(self._session(stopper))
        try:
            while not session.done():
                waiters: set[asyncio.Future[Any]] = {session}
                if not stopper.done():
                    waiters.add(stopper)
                timeout = None if self._online else self._remaining()
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not session.done() and not self._online and self._finished():
                    break  # still connecting: give up (an online session stops itself)
        finally:
            if not session.done():
                await _discard(session)
        if not session.cancelled():
            session.result()

    async def _session(self, stopper: asyncio.Future[Any]) -> None:
        client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            identifier=self.client_id,
            clean_session=False,
            protocol=aiomqtt.ProtocolVersion.V311,
            keepalive=KEEPALIVE_S,
            timeout=TIMEOUT_S,
        )
        # PUBACK after the batch is handed on, not on receipt. aiomqtt has no API for
        # it yet (empicano/aiomqtt#345): use its paho client, as that issue shows.
        client._client.manual_ack_set(True)
        async with client:
            granted = await client.subscribe(self.topic, qos=QOS)
            if _refused_subscription(granted):
                raise MeterDataError(f"{self.broker.url} refused the subscription to {self.topic}")
            if self._monitor is not None:
                await self._watch_broker(client)
            self.connections += 1
            self._online = True
            try:
                if self._on_connect is not None:
                    self._on_connect(self.connections)
                await self._consume(client, stopper)
            finally:
                self._online = False
                self.messages -= self._batcher.drop()
                self._acks.clear()
                if self._monitor is not None:
                    self._monitor.forgotten()

    async def _consume(self, client: aiomqtt.Client, stopper: asyncio.Future[Any]) -> None:
        messages = client.messages
        getter: asyncio.Future[aiomqtt.Message] | None = None
        try:
            while not self._finished():
                if getter is None:
                    getter = asyncio.ensure_future(messages.__anext__())
                waiters: set[asyncio.Future[Any]] = {getter}
                if not stopper.done():
                    waiters.add(stopper)
                await asyncio.wait(
                    waiters, timeout=self._wait_s(), return_when=asyncio.FIRST_COMPLETED
                )
                if getter.done():
                    message, getter = getter.result(), None
                    self._take(message)
                if self._batcher and (
                    len(self._batcher) >= self.batch_size
                    or self._now() >= self._batch_started + self.batch_seconds
                    or self._window_full()
                ):
                    self._flush(client)
            self._flush(client, final=True)
            await self._acknowledged(client)
        finally:
            if getter is not None:
                await _discard(getter)  # unread: not acknowledged, so delivered again

    def _wait_s(self) -> float | None:
        waits = [self._remaining()]
        if self._batcher:
            waits.append(max(self._batch_started + self.batch_seconds - self._now(), 0.0))
            if len(self._batcher) >= self.window:
                waits.append(max(self._last_message + WINDOW_QUIET_S - self._now(), 0.0))
        known = [w for w in waits if w is not None]
        return min(known) if known else None

    async def _acknowledged(self, client: aiomqtt.Client) -> None:
        """Wait until the broker has read the last acknowledgements: a SUBACK comes
        after the broker handled every packet sent before its SUBSCRIBE (MQTT keeps
        the order). Measured (issue 14, benchmarks/mqtt_restarts.py): without it, the
        socket closed with unread messages in its buffer is reset, the broker drops
        the PUBACKs it had not read yet, and delivers the last batch again (744 of 745
        telegrams after a SIGTERM; stored once, but ingested twice). The topic is
        ``$SYS`` (QoS 0) so the persistent session's subscriptions stay as they were."""
        try:
            await client.subscribe(SYS_DROPPED, qos=0)
        except aiomqtt.MqttError as exc:
            log.warning("MQTT %s: the last acknowledgements may be lost: %s", self.broker.url, exc)

    def _window_full(self) -> bool:
        """The batch is as large as the largest so far and nothing came for
        :data:`WINDOW_QUIET_S`: the broker waits for our acknowledgements (its
        in-flight window is smaller than ``batch_size``), so waiting out
        ``batch_seconds`` would only idle (issue 14: 20 in flight, 2 s batches)."""
        return (
            len(self._batcher) >= self.window and self._now() >= self._last_message + WINDOW_QUIET_S
        )

    async def _watch_broker(self, client: aiomqtt.Client) -> None:
        """Subscribe to the broker's dropped and stored counts for the monitor (QoS 0,
        never acknowledged); a broker that refuses ``$SYS`` leaves them unknown."""
        for topic in (SYS_DROPPED, SYS_STORED):
            granted = await client.subscribe(topic, qos=0)
            if _refused_subscription(granted):
                log.warning("%s refused the subscription to %s", self.broker.url, topic)

    def _take(self, message: aiomqtt.Message) -> None:
        if message.topic.value.startswith("$SYS/"):
            if self._monitor is not None:
                self._monitor.broker_stat(message.topic.value, _payload_bytes(message.payload))
            return
        self._last_message = self._now()
        if self._monitor is not None:
            self._monitor.received()
        if not self._batcher:
            self._batch_started = self._now()
        self._batcher.add(message.topic.value, _payload_bytes(message.payload))
        self._acks.append((message.mid, message.qos))
        self.messages += 1

    def _flush(self, client: aiomqtt.Client | None, final: bool = False) -> None:
        """Hand on the sources of the pending batch, then acknowledge its messages."""
        take = self._batcher.take if self.per_meter else self._batcher.take_batch
        if self._batcher:
            self.window = max(self.window, len(self._batcher))
        for source in take(final):
            self._on_source(source)
            self.sources += 1
        if client is not None:
            for mid, qos in self._acks:
                client._client.ack(mid, qos)
        self._acks.clear()
        if self._monitor is not None:
            self._monitor.flushed()
        self._closed = final
