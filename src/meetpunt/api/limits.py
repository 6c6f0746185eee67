"""Rate limits per credential (issue 17): a token bucket per API key or access token,
shared by every server process on the machine.

Each credential (the ``Authorization`` header, keyed by its SHA-256, never the key
itself) has a bucket of ``burst`` requests that refills at ``rate`` per second; a
request without a credential is counted against the client's address. Over the limit
the answer is 429 ``API-rate.limit`` with ``Retry-After`` (whole seconds until a request
is allowed again). The buckets live in a small file beside the register
(:class:`SharedBuckets`: ``register.sqlite-ratelimit`` on the embedded default, a file
in the meetpunt home for a database server), mapped into memory by every worker of
``meetpunt serve --workers N`` and taken under a file lock, so N workers together allow
what one allows, not N times as much; a restart keeps them. Servers on other machines
count on their own. The limit is set with ``create_app(rate_limit=...)`` or the
environment variable ``MEETPUNT_RATE_LIMIT`` (``RATE,BURST`` such as ``50,100``, or
``off``).

The same buckets serve the customer's activation (:class:`Attempts`): wrong codes are
counted per client address, so the code space cannot be walked.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from meetpunt.api.errors import ERROR_SCHEMA, error_body, json_response
from meetpunt.domain.findings import Finding

ENV = "MEETPUNT_RATE_LIMIT"


@dataclass(frozen=True)
class RateLimit:
    """``burst`` requests at once, refilled at ``rate`` per second, per credential."""

    rate: float = 50.0
    burst: int = 100

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)) or self.burst < 1:
            raise ValueError("a rate limit needs a rate above 0 and a burst of at least 1")

    @classmethod
    def from_env(cls, text: str | None = None) -> RateLimit | None:
        """The limit ``MEETPUNT_RATE_LIMIT`` names (``RATE,BURST``; ``off``: none); the
        default when it is not set."""
        text = os.environ.get(ENV) if text is None else text
        if text is None or not text.strip():
            return cls()
        if text.strip().lower() == "off":
            return None
        rate, _, burst = text.partition(",")
        return cls(float(rate), int(burst) if burst.strip() else max(1, math.ceil(float(rate))))


class Buckets:
    """Token buckets by key, thread-safe (sync routes run in a thread pool). Full
    buckets are forgotten when there are many, so unknown keys cannot fill memory."""

    PRUNE_AT = 10_000

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._tokens.get(key, (float(self.limit.burst), now))
        return min(float(self.limit.burst), tokens + (now - at) * self.limit.rate)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a whole token (0: it has one now)."""
        with self._lock:
            level = self._level(key, self.clock())
        return 0.0 if level >= 1 else (1 - level) / self.limit.rate

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0 when taken, else the seconds to wait (none taken)."""
        with self._lock:
            now = self.clock()
            level = self._level(key, now)
            if level < 1:
                self._tokens[key] = (level, now)
                return (1 - level) / self.limit.rate
            self._tokens[key] = (level - 1, now)
            if len(self._tokens) > self.PRUNE_AT:
                full = [k for k in self._tokens if self._level(k, now) >= self.limit.burst]
                for k in full:
                    del self._tokens[k]
            return 0.0


class TokenBuckets(Protocol):
    """What the middleware and :class:`Attempts` need of a set of buckets."""

    limit: RateLimit

    def wait(self, key: str) -> float: ...

    def take(self, key: str) -> float: ...


_SLOT = struct.Struct("<16sdd")
"""One shared bucket: the first 16 bytes of the key's SHA-256, its tokens, and when
(``time.monotonic``, one clock for every process of the machine) they were counted."""


class SharedBuckets:
    """Token buckets in a file that every process of one server maps (issue 17): an
    open-addressed table of :data:`SLOTS` buckets, each read and written under an
    exclusive ``flock`` (a few microseconds: no database transaction per request).

    A key's bucket is one of :data:`PROBE` slots from its hash; when all are taken by
    other keys, the fullest of them is reused: a full bucket is the same as none, so
    only a key that was just used can lose its count, and only when a flood of new keys
    fills its slots (the same bound as :class:`Buckets`' pruning). A clock that went
    back (a reboot) counts a bucket as full."""

    SLOTS = 1 << 15
    PROBE = 32

    def __init__(
        self, limit: RateLimit, path: Path, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()  # flock does not exclude threads sharing the file
        self._map: mmap.mmap | None = None
        self._fd = -1

    def _mapped(self) -> mmap.mmap:
        """The file, created (zeros: every bucket full) and mapped on first use."""
        if self._map is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            size = self.SLOTS * _SLOT.size
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size < size:
                    os.ftruncate(fd, size)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._map, self._fd = mmap.mmap(fd, size), fd
        return self._map

    def _level(self, tokens: float, at: float, now: float) -> float:
        if at == 0.0 or now < at:
            return float(self.limit.burst)
        return min(float(self.limit.burst), tokens + (now - at) * self.limit.rate)

    def _slot(self, table: mmap.mmap, digest: bytes, now: float) -> tuple[int, float]:
        """The offset of ``digest``'s bucket (found, free or the fullest reused) and its
        level now."""
        first = int.from_bytes(digest[:4], "little") % self.SLOTS
        fullest, fullest_level = -1, -1.0
        for i in range(self.PROBE):
            offset = ((first + i) % self.SLOTS) * _SLOT.size
            key, tokens, at = _SLOT.unpack_from(table, offset)
            if key == digest:
                return offset, self._level(tokens, at, now)
            if key == bytes(16):
                return offset, float(self.limit.burst)
            level = self._level(tokens, at, now)
            if level > fullest_level:
                fullest, fullest_level = offset, level
        return fullest, float(self.limit.burst)

    def _use(self, key: str, take: bool) -> float:
        digest = hashlib.sha256(key.encode()).digest()[:16]
        with self._lock:
            table = self._mapped()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                now = self.clock()
                offset, level = self._slot(table, digest, now)
                if level < 1:
                    if take:
                        _SLOT.pack_into(table, offset, digest, level, now)
                    return (1 - level) / self.limit.rate
                if take:
                    _SLOT.pack_into(table, offset, digest, level - 1, now)
                return 0.0
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a whole token (0: it has one now)."""
        return self._use(key, take=False)

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0 when taken, else the seconds to wait (none taken)."""
        return self._use(key, take=True)

    def close(self) -> None:
        """Unmap and close the file."""
        if self._map is not None:
            self._map.close()
            os.close(self._fd)
            self._map, self._fd = None, -1


def buckets_for(limit: RateLimit, path: Path | None) -> TokenBuckets:
    """Buckets shared through the file ``path`` by the server's processes, or kept in
    this process when there is none (an in-memory register)."""
    return Buckets(limit) if path is None else SharedBuckets(limit, path)


def retry_after(seconds: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def too_many(rule: str, message: str, seconds: float) -> Any:
    """The 429 answer in the API's error shape."""
    return json_response(
        error_body([Finding(rule, message)]), 429, {"Retry-After": retry_after(seconds)}
    )


def credential_key(scope: Scope) -> str:
    """What a request is counted against: the SHA-256 of its ``Authorization`` header,
    else its client's address."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return "credential:" + hashlib.sha256(value).hexdigest()
    client = scope.get("client")
    return f"address:{client[0] if client else '-'}"


class RateLimitMiddleware:
    """429 with ``Retry-After`` for a credential over its limit on ``/v1`` (issue 17)."""

    def __init__(self, app: ASGIApp, limit: RateLimit, path: Path | None = None) -> None:
        self.app = app
        self.buckets = buckets_for(limit, path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/v1/"):
            wait = self.buckets.take(credential_key(scope))
            if wait > 0:
                limit = self.buckets.limit
                answer = too_many(
                    "API-rate.limit",
                    f"more than {limit.burst} requests at once or {limit.rate:g} a second "
                    "with this credential",
                    wait,
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


def limit_rate(app: FastAPI, limit: RateLimit | None, path: Path | None = None) -> None:
    """Put ``limit`` in front of ``app``'s ``/v1`` routes and into its OpenAPI document
    (every operation answers 429 with ``Retry-After``); None: no limit. ``path``: the
    file whose buckets every process of the server shares (None: this process only)."""
    if limit is None:
        return
    app.add_middleware(RateLimitMiddleware, limit=limit, path=path)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        note = (
            f"Rate limit per credential: {limit.burst} requests at once, refilled at "
            f"{limit.rate:g} a second (a token bucket shared by the server's processes); "
            "over it, "
            "429 with Retry-After."
        )
        document["info"]["description"] = (
            document["info"].get("description", "") + "\n\n" + note
        ).strip()
        document["info"]["x-rate-limit"] = {"rate_per_second": limit.rate, "burst": limit.burst}
        for route, operations in document.get("paths", {}).items():
            if not route.startswith("/v1/"):
                continue
            for operation in operations.values():
                operation.setdefault("responses", {})["429"] = TOO_MANY_DOC
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


TOO_MANY_DOC: dict[str, Any] = {
    "description": "over the credential's rate limit (API-rate.limit) or too many wrong "
    "activation codes (API-activate.attempts); retry after Retry-After seconds",
    "headers": {
        "Retry-After": {
            "description": "seconds to wait before the next request",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    "content": {"application/json": {"schema": ERROR_SCHEMA}},
}


class Attempts:
    """Wrong activation codes per client address: ``limit.burst`` wrong codes, then one
    more per ``1 / limit.rate`` seconds (default 5, then one every 3 minutes)."""

    def __init__(self, limit: RateLimit | None = None, path: Path | None = None) -> None:
        self.buckets = buckets_for(limit or RateLimit(rate=1 / 180, burst=5), path)

    def blocked(self, address: str) -> float:
        """Seconds this address must wait before it may try a code (0: it may now)."""
        return self.buckets.wait(address)

    def failed(self, address: str) -> None:
        """Count one wrong code against ``address``."""
        self.buckets.take(address)


def shared_path(db_url: str | None, name: str) -> Path | None:
    """The file of the buckets called ``name`` that the processes of a server over the
    register ``db_url`` share: beside an embedded register's file
    (``register.sqlite-NAME``), else in the meetpunt home, one per database URL; None
    for an in-memory register (one process only)."""
    from meetpunt.register.engine import (
        default_database_url,
        meetpunt_home,
        normalise_url,
        sqlite_file,
    )

    url = normalise_url(db_url or default_database_url())
    if url.startswith("sqlite"):
        found = sqlite_file(url)
        return None if found is None else found.with_name(f"{found.name}-{name}")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return meetpunt_home() / f"{name}-{digest}"
