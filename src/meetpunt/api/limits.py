"""Rate limits per credential (issue 17): a token bucket per API key or access token,
kept in the server process.

Each credential (the ``Authorization`` header, keyed by its SHA-256, never the key
itself) has a bucket of ``burst`` requests that refills at ``rate`` per second; a
request without a credential is counted against the client's address. Over the limit
the answer is 429 ``API-rate.limit`` with ``Retry-After`` (whole seconds until a request
is allowed again). The buckets live in the process: several server processes behind
a balancer each count on their own, and a restart forgets them (stated in docs/api.md).
The limit is set with ``create_app(rate_limit=...)`` or the environment variable
``MEETPUNT_RATE_LIMIT`` (``RATE,BURST`` such as ``50,100``, or ``off``).

The same bucket serves the customer's activation (:class:`Attempts`): wrong codes are
counted per client address, so the code space cannot be walked.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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

    def __init__(self, app: ASGIApp, limit: RateLimit) -> None:
        self.app = app
        self.buckets = Buckets(limit)

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


def limit_rate(app: FastAPI, limit: RateLimit | None) -> None:
    """Put ``limit`` in front of ``app``'s ``/v1`` routes and into its OpenAPI document
    (every operation answers 429 with ``Retry-After``); None: no limit."""
    if limit is None:
        return
    app.add_middleware(RateLimitMiddleware, limit=limit)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        note = (
            f"Rate limit per credential: {limit.burst} requests at once, refilled at "
            f"{limit.rate:g} a second (a token bucket in the server process); over it, "
            "429 with Retry-After."
        )
        document["info"]["description"] = (
            document["info"].get("description", "") + "\n\n" + note
        ).strip()
        document["info"]["x-rate-limit"] = {"rate_per_second": limit.rate, "burst": limit.burst}
        for path, operations in document.get("paths", {}).items():
            if not path.startswith("/v1/"):
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

    def __init__(self, limit: RateLimit | None = None) -> None:
        self.buckets = Buckets(limit or RateLimit(rate=1 / 180, burst=5))

    def blocked(self, address: str) -> float:
        """Seconds this address must wait before it may try a code (0: it may now)."""
        return self.buckets.wait(address)

    def failed(self, address: str) -> None:
        """Count one wrong code against ``address``."""
        self.buckets.take(address)
