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
away. A message is acknowledged (PUBACK) only once everything it carried was handed on
(issue 14): a message whose last bytes start a telegram waits in :class:`P1Batcher`,
unacknowledged, until the meter's next message completes that telegram, or until it
waited ``fragment_seconds`` (then its bytes are refused as ``MTR-2.incomplete`` and it
is acknowledged: it must not hold the broker's in-flight window for ever). Messages
still pending or waiting when the connection drops, when we stop or when we are killed
are delivered again by the broker, so nothing is lost between broker and store (at
least once; the store is idempotent, so a telegram delivered twice is stored once).
Mosquitto sends at most ``max_inflight_messages`` (default 20) unacknowledged messages
to a client, so a ``batch_size`` above that may not fill (2.0.11 keeps to the window for
the backlog queued while we were away): a batch as large as the largest one so far that
gets no message for :data:`WINDOW_QUIET_S` is handed on at once rather than after
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
from functools import partial
from typing import Any, Final
from urllib.parse import urlsplit

import aiomqtt
import pyarrow as pa
import pyarrow.compute as pc
from paho.mqtt.reasoncodes import ReasonCode

from meetpunt.domain.ean import check_ean, is_valid_ean
from meetpunt.errors import MeterDataError
from meetpunt.io.live_status import SYS_DROPPED, SYS_STORED, LiveMonitor
from meetpunt.io.p1 import P1Error, Telegram, TelegramSplitter
from meetpunt.io.p1_source import (
    source_from_meters,
    source_from_telegrams,
    unknown_connection_refusal,
)
from meetpunt.meterdata.source import Refusal, SourceData

__all__ = [
    "BACKOFF_CAP_S",
    "BACKOFF_START_S",
    "DEFAULT_BATCH_SECONDS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FRAGMENT_SECONDS",
    "DEFAULT_PORT",
    "INCOMPLETE_RULE",
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
INCOMPLETE_RULE: Final = "MTR-2.incomplete"
"""The refusal of a telegram's first part that waited too long for its rest."""
DEFAULT_FRAGMENT_SECONDS: Final = 10.0
"""Seconds the first part of a telegram waits for its rest from the same meter (five
default batch periods): its messages stay unacknowledged meanwhile and hold places of
the broker's in-flight window."""


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


def _incomplete(telegram: Telegram, waited: float, limit: float) -> Telegram:
    """``telegram`` (a splitter's rest, flushed) refused as ``MTR-2.incomplete`` unless
    it is whole: the first part of a telegram whose rest did not come in time."""
    if telegram.valid or telegram.error is None:
        return telegram  # whole after all (a DSMR 2.2/3 "!" without CRC and line end)
    error = telegram.error
    telegram.error = P1Error(
        INCOMPLETE_RULE,
        f"the first {len(telegram.raw)} byte(s) of a telegram waited {waited:.1f} s for "
        f"the rest from the same meter (limit {limit:g} s) and are kept as received "
        f"({error.message}); check that the meter or its dongle publishes each telegram "
        "whole, or its parts right after each other",
        error.offset,
    )
    return telegram


def _digest(kind: bytes, key: str, parts: Iterable[bytes]) -> str:
    """SHA-256 of what a source was built from, each part length-prefixed."""
    h = hashlib.sha256(kind + b"\0" + key.encode() + b"\0")
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


_Message = tuple[str, bytes, Any, float]
"""A message as the batcher keeps it: topic, payload, ack token, arrival time."""


@dataclass
class _Waiting:
    """A message whose bytes (some of them) wait in its meter's splitter: not yet
    acknowledged. ``offset``: where in ``payload`` the waiting bytes start (for the
    oldest; the bytes before it are in sources taken already)."""

    ack: Any
    payload: bytes
    at: float
    start: int = 0
    """Bytes of ``payload`` not fed (taken before a reconnect, see ``_resume``)."""
    offset: int = 0

    @property
    def size(self) -> int:
        return len(self.payload) - self.start


@dataclass
class _Extra:
    """A record of the batch beside its telegrams' rows: garbage (one per message) or a
    telegram of an unknown EAN (one per telegram); ``key`` goes into the digest."""

    key: bytes
    build: Callable[[int], Refusal]


class P1Batcher:
    """Micro-batches of MQTT messages -> sources: one per EAN per batch (:meth:`take`)
    or one for all meters of the batch (:meth:`take_batch`) (MTR-4).

    One :class:`TelegramSplitter` per EAN lives across batches, so a telegram split
    over messages (and batches) is put back together. Messages are only fed to the
    splitters when the batch is taken, so :meth:`drop` (a lost connection: the broker
    delivers the messages again) forgets what was not taken yet.

    Acknowledged only when stored (issue 14): each message comes with an ``ack`` token;
    :meth:`acks` gives the tokens of the messages everything of which is in the sources
    taken so far. A message whose bytes still wait in its meter's splitter (the first
    part of a telegram) is held back until the telegram it starts is taken, or until it
    waited ``fragment_seconds`` (then what it holds is taken as it is: a whole telegram
    stored, a part refused as ``MTR-2.incomplete``); :meth:`drop` forgets those bytes too
    (the broker delivers the held messages again, so the telegram is put together anew;
    of the oldest, the bytes that went into sources before are skipped when it comes).
    A message that ends with a telegram's 4 CRC digits ends that telegram (no waiting
    for a line end in the next message).

    ``known`` (an EAN -> bool) tells the EANs of the register: a telegram of any other
    EAN is one ``MTR-5.unknown_connection`` record with its raw text instead of rows of
    five kinds refused one by one. None: no check (the hub refuses the rows).

    A source's ``sha256`` is taken over its EAN and the raw telegrams it holds (the
    topic and payloads for ``MTR-4.topic`` refusals): the same telegrams published
    again, however they are cut into messages, are recognised as already ingested, and
    the same bytes from another connection are not.
    """

    def __init__(
        self,
        label: str,
        subscription: str,
        ean: str | None = None,
        *,
        known: Callable[[str], bool] | None = None,
        fragment_seconds: float = DEFAULT_FRAGMENT_SECONDS,
    ) -> None:
        self.label = label
        self.subscription = subscription
        self.ean = ean
        self.known = known
        self.fragment_seconds = fragment_seconds
        self._pending: list[_Message] = []
        self._splitters: dict[str, TelegramSplitter] = {}
        self._waiting: dict[str, list[_Waiting]] = {}
        """Per EAN, the messages whose bytes wait in its splitter, oldest first."""
        self._acks: list[Any] = []
        self._handed = True
        """Whether the sources of the last take were handed on (:meth:`acks` called)."""
        self._resume: dict[str, tuple[bytes, int]] = {}
        """Per EAN, after a lost connection: the oldest held message and how many of its
        bytes went into sources already; when the broker delivers it again, those bytes
        are not fed again (they would be the tail of a telegram taken already, refused
        as garbage)."""
        self._count = 0
        self._extra: list[_Extra] = []
        """Records of this batch beside the telegrams (garbage, unknown EANs)."""

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, topic: str, payload: bytes, ack: Any = None, at: float = 0.0) -> None:
        """One message into the pending batch; ``ack`` comes back from :meth:`acks`
        once everything it carried is taken, ``at`` is when it arrived (the clock of
        ``now`` in :meth:`take`)."""
        self._pending.append((topic, payload, ack, at))

    def drop(self) -> int:
        """Forget the pending messages and the bytes waiting in splitters, none of them
        acknowledged (the broker delivers them again); how many messages."""
        dropped = len(self._pending) + self.waiting
        self._pending.clear()
        self._resume.update(  # (those not delivered again yet stay)
            (ean, (held[0].payload, held[0].start + held[0].offset))
            for ean, held in self._waiting.items()
            if held and held[0].start + held[0].offset and self._handed
        )
        for ean in self._waiting:
            self._splitters.pop(ean, None)
        self._waiting.clear()
        self._acks.clear()
        self._extra.clear()
        return dropped

    @property
    def waiting(self) -> int:
        """Messages whose bytes wait in a splitter for the rest of their telegram."""
        return sum(len(held) for held in self._waiting.values())

    def acks(self) -> list[Any]:
        """The tokens of the messages taken whole since the last call, in arrival order
        per meter: acknowledge them once their sources are handed on."""
        acks, self._acks = self._acks, []
        self._handed = True
        return acks

    def due(self) -> float | None:
        """When the oldest waiting first part of a telegram has waited long enough
        (:meth:`take` then takes it as it is); None when nothing waits."""
        starts = [held[0].at for held in self._waiting.values() if held]
        return min(starts) + self.fragment_seconds if starts else None

    def take(self, final: bool = False, now: float | None = None) -> list[SourceData]:
        """The sources of the pending messages, one per EAN (and per topic without
        one), in order of first arrival; ``final`` also flushes every splitter (a
        telegram cut off at the end is refused as ``MTR-2.truncated``, not lost); at
        ``now``, a first part that waited ``fragment_seconds`` is taken as it is."""
        sources = [source for _, source in self._take(final, now)]
        return [*sources, *self._extra_source()]

    def take_batch(self, final: bool = False, now: float | None = None) -> list[SourceData]:
        """The pending messages as one source for all meters (one transaction, MTR-4),
        plus one per topic without an EAN (``MTR-4.topic``, kept apart so their
        quarantine records name their topic). The rows and records are those of
        :meth:`take`'s sources joined by :func:`merge_sources`, built at once."""
        meters: list[tuple[str, list[Telegram], list[_Message]]] = []
        digests: list[bytes] = []
        others: list[SourceData] = []
        for (is_ean, owner), messages in self._groups(final, now).items():
            if not is_ean:
                others.append(self._refused(owner, messages))
                continue
            telegrams = self._split(owner, messages, final, now)
            if not telegrams:
                continue
            digests.append(_digest(b"p1", owner, (t.raw for t in telegrams)).encode())
            if self._unknown(owner, telegrams):
                continue
            meters.append((owner, telegrams, messages))
        if len(meters) == 1 and len(digests) == 1:
            ean, telegrams, messages = meters[0]
            return [self._with_extra(self._meter_source(ean, telegrams, messages)), *others]
        if not meters:
            return [*others, *self._extra_source()]
        first = self._count + 1
        self._count += len(meters)
        digest = _digest(b"p1-batch", "", digests)
        name = f"{self.label}/{self.subscription} #{first}..{self._count}"
        parts = [(ean, telegrams) for ean, telegrams, _ in meters]
        return [self._with_extra(source_from_meters(parts, name, digest)), *others]

    def _groups(self, final: bool, now: float | None) -> dict[tuple[bool, str], list[_Message]]:
        """The pending messages by EAN (True, EAN) or topic without one (False, topic),
        in order of first arrival; ``final`` adds every EAN with a splitter, ``now``
        every EAN whose first part waited long enough."""
        groups: dict[tuple[bool, str], list[_Message]] = {}
        for message in self._pending:
            ean = self.ean or ean_of_topic(message[0])
            key = (True, ean) if ean is not None else (False, message[0])
            groups.setdefault(key, []).append(message)
        self._pending.clear()
        if final:
            for ean in self._splitters:
                groups.setdefault((True, ean), [])
        elif now is not None:
            for ean, held in self._waiting.items():
                if held and held[0].at + self.fragment_seconds <= now:
                    groups.setdefault((True, ean), [])
        return groups

    def _take(self, final: bool, now: float | None) -> list[tuple[bool, SourceData]]:
        sources: list[tuple[bool, SourceData]] = []
        for (is_ean, owner), messages in self._groups(final, now).items():
            source = (
                self._ean_source(owner, messages, final, now)
                if is_ean
                else self._refused(owner, messages)
            )
            if source is not None:
                sources.append((is_ean, source))
        return sources

    def _name(self, messages: list[_Message]) -> str:
        topics = {message[0] for message in messages}
        topic = topics.pop() if len(topics) == 1 else self.subscription
        self._count += 1
        return f"{self.label}/{topic} #{self._count}"

    def _ean_source(
        self,
        ean: str,
        messages: list[_Message],
        final: bool,
        now: float | None,
    ) -> SourceData | None:
        telegrams = self._split(ean, messages, final, now)
        if not telegrams:
            return None  # a fragment: its telegram completes in a later batch
        if self.known is not None and not self.known(ean):  # one record per telegram
            digest = _digest(b"p1", ean, (t.raw for t in telegrams))
            source = SourceData(self._name(messages), digest)
            source.refused += [
                unknown_connection_refusal(n, ean, t) for n, t in enumerate(telegrams, start=1)
            ]
            return source
        return self._meter_source(ean, telegrams, messages)

    def _split(
        self,
        ean: str,
        messages: list[_Message],
        final: bool,
        now: float | None,
    ) -> list[Telegram]:
        """The telegrams ``messages`` complete in ``ean``'s splitter; the messages
        taken whole go to :meth:`acks`, the others wait with their bytes."""
        splitter = self._splitters.setdefault(ean, TelegramSplitter())
        held = self._waiting.setdefault(ean, [])
        telegrams: list[Telegram] = []
        self._handed = False
        for topic, payload, ack, at in messages:
            resume = self._resume.pop(ean, None)
            start = resume[1] if resume is not None and resume[0] == payload else 0
            data = payload[start:] if start else payload
            before = splitter.skipped
            telegrams += splitter.feed(data, message_end=True)
            skipped = splitter.skipped - before
            if skipped and skipped > sum(data.count(c) for c in (b" ", b"\r", b"\n", b"\t")):
                self._extra.append(
                    _Extra(
                        payload,
                        partial(
                            _garbage_refusal, ean=ean, topic=topic, payload=payload, skipped=skipped
                        ),
                    )
                )
            if not held and not splitter.pending:
                self._acks.append(ack)  # the common case: whole telegrams, nothing waits
                continue
            held.append(_Waiting(ack, payload, at, start))
            self._release(held, splitter.pending)
        if final:
            telegrams += splitter.flush()
        elif held and now is not None and held[0].at + self.fragment_seconds <= now:
            waited = now - held[0].at
            telegrams += [_incomplete(t, waited, self.fragment_seconds) for t in splitter.flush()]
        if final or splitter.pending == 0:
            self._release(held, 0)
        if not held:
            del self._waiting[ean]
        return telegrams

    def _release(self, held: list[_Waiting], pending: int) -> None:
        """Acknowledge the messages of ``held`` none of whose bytes are among the last
        ``pending`` bytes fed (those still wait in the splitter); note where the
        waiting bytes start in the oldest one kept."""
        keep = len(held)
        covered = 0
        while keep > 0 and covered < pending:
            keep -= 1
            covered += held[keep].size
        self._acks += [message.ack for message in held[:keep]]
        del held[:keep]
        if held:
            held[0].offset = covered - pending

    def _unknown(self, ean: str, telegrams: list[Telegram]) -> bool:
        """Whether ``ean`` is unknown to the register: then its telegrams become one
        record each (MTR-5.unknown_connection) among the batch's extra records."""
        if self.known is None or self.known(ean):
            return False
        self._extra += [
            _Extra(t.raw, partial(unknown_connection_refusal, ean=ean, telegram=t))
            for t in telegrams
        ]
        return True

    def _meter_source(
        self, ean: str, telegrams: list[Telegram], messages: list[_Message]
    ) -> SourceData:
        digest = _digest(b"p1", ean, (t.raw for t in telegrams))
        return source_from_telegrams(telegrams, ean, self._name(messages), digest)

    def _extra_refusals(self, first: int) -> list[Refusal]:
        """The batch's extra records (garbage, unknown EANs), numbered from ``first``;
        forgotten after."""
        found, self._extra = self._extra, []
        return [extra.build(n) for n, extra in enumerate(found, start=first)]

    def _with_extra(self, source: SourceData) -> SourceData:
        """``source`` with the batch's extra records after its own records, so the
        micro-batch stays one source and one transaction."""
        source.refused += self._extra_refusals(_last_record(source) + 1)
        return source

    def _extra_source(self) -> list[SourceData]:
        """The batch's extra records as a source of their own (a batch without a
        telegram of a known meter, or the per-meter path); none when there were none."""
        if not self._extra:
            return []
        self._count += 1
        source = SourceData(
            f"{self.label}/{self.subscription} refused #{self._count}",
            _digest(b"garbage", "", (extra.key for extra in self._extra)),
        )
        source.refused += self._extra_refusals(1)
        return [source]

    def _refused(self, topic: str, messages: list[_Message]) -> SourceData:
        payloads = [message[1] for message in messages]
        source = SourceData(self._name(messages), _digest(b"topic", topic, payloads))
        source.refused += [_topic_refusal(topic, n, p) for n, p in enumerate(payloads, start=1)]
        self._acks += [message[2] for message in messages]
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
        known: Callable[[str], bool] | None = None,
        fragment_seconds: float = DEFAULT_FRAGMENT_SECONDS,
    ) -> None:
        try:
            aiomqtt.Wildcard(topic)
        except ValueError:
            raise MeterDataError(f"{topic!r} is not an MQTT topic filter") from None
        if ean is not None and not is_valid_ean(ean):
            finding = check_ean(ean)
            raise MeterDataError(finding.message if finding else f"{ean!r} is not an EAN")
        if fragment_seconds <= 0:
            raise MeterDataError("a telegram's first part must wait more than 0 s for its rest")
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
        """Messages taken into batches (those dropped at a lost connection, or left
        unacknowledged at the end, not counted)."""
        self.unacknowledged = 0
        """Messages left unacknowledged when the run ended: the first part of a telegram
        whose rest had not come (the broker delivers them again to the next run)."""
        self.sources = 0
        self.connections = 0
        self._on_source = on_source
        self._on_connect = on_connect
        self._stop = stop or asyncio.Event()
        self._batcher = P1Batcher(
            broker.url, topic, ean, known=known, fragment_seconds=fragment_seconds
        )
        self._batch_started = 0.0
        self._deadline: float | None = None
        self._online = False
        self._ended = False
        """The run has stopped (by count, time or :meth:`stop`) and handed on what it
        took: no new connection, even when messages left unacknowledged lower the count."""
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
        if self._ended or self._stop.is_set():
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
                    self._drain(client)
                now = self._now()
                due = self._batcher.due()
                if (
                    self._batcher
                    and (
                        len(self._batcher) >= self.batch_size
                        or now >= self._batch_started + self.batch_seconds
                        or self._window_full()
                    )
                ) or (due is not None and now >= due):
                    self._flush(client)
            self._flush(client)
            await self._acknowledged(client)
            self._ended = True
            self.unacknowledged = self._batcher.waiting
            if self.unacknowledged:
                log.warning(
                    "%d message(s) left unacknowledged: the first part of a telegram whose "
                    "rest has not come; the broker delivers them again to the next run",
                    self.unacknowledged,
                )
        finally:
            if getter is not None:
                await _discard(getter)  # unread: not acknowledged, so delivered again

    def _drain(self, client: aiomqtt.Client) -> None:
        """Take the messages already received without a wait each: aiomqtt makes a
        task and an ``asyncio.wait`` per message, and so did this loop; profiled at
        saturation that was about a tenth of the CPU (issue 14). Stops at a full batch
        or the run's end, as the loop would."""
        queue = client._queue  # aiomqtt has no API to take without waiting
        while not queue.empty() and len(self._batcher) < self.batch_size and not self._finished():
            self._take(queue.get_nowait())

    def _wait_s(self) -> float | None:
        waits = [self._remaining()]
        if self._batcher:
            waits.append(max(self._batch_started + self.batch_seconds - self._now(), 0.0))
            if len(self._batcher) >= self.window:
                waits.append(max(self._last_message + WINDOW_QUIET_S - self._now(), 0.0))
        due = self._batcher.due()
        if due is not None:
            waits.append(max(due - self._now(), 0.0))
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
        now = self._now()
        self._last_message = now
        if self._monitor is not None:
            self._monitor.received()
        if not self._batcher:
            self._batch_started = now
        payload = _payload_bytes(message.payload)
        self._batcher.add(message.topic.value, payload, (message.mid, message.qos), now)
        self.messages += 1

    def _flush(self, client: aiomqtt.Client) -> None:
        """Hand on the sources of the pending batch, then acknowledge the messages
        everything of which they hold (not those whose bytes wait for the rest of a
        telegram: their PUBACK waits until that telegram is handed on, issue 14)."""
        take = self._batcher.take if self.per_meter else self._batcher.take_batch
        if self._batcher:
            self.window = max(self.window, len(self._batcher))
        for source in take(now=self._now()):
            self._on_source(source)
            self.sources += 1
        for mid, qos in self._batcher.acks():
            client._client.ack(mid, qos)
        if self._monitor is not None:
            self._monitor.flushed()
