"""Rate limits per credential (issue 17): a token bucket per API key, 429 with
``Retry-After`` over it, documented in the OpenAPI; configurable, or off."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.api import create_app
from meetpunt.api.limits import Buckets, RateLimit, SharedBuckets
from tests.api.conftest import NOW, World
from tests.api.test_api import rules_of


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=200),
)
def test_a_bucket_never_allows_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        for buckets in (
            Buckets(RateLimit(rate, burst), clock),
            SharedBuckets(RateLimit(rate, burst), Path(folder) / "buckets", clock),
        ):
            clock.now = 1.0
            _check_bound(buckets, clock, rate, burst, gaps)
            if isinstance(buckets, SharedBuckets):
                buckets.close()


def _check_bound(
    buckets: Buckets | SharedBuckets, clock: Clock, rate: float, burst: int, gaps: list[float]
) -> None:
    allowed: list[float] = []
    for gap in gaps:
        clock.now += gap
        wait = buckets.take("key")
        if wait == 0:
            allowed.append(clock.now)
        else:
            assert wait <= 1 / rate + 1e-9
    for i, first in enumerate(allowed):
        for j in range(i, len(allowed)):
            assert j - i + 1 <= burst + rate * (allowed[j] - first) + 1e-6


def test_a_bucket_refills_and_keys_are_counted_apart() -> None:
    clock = Clock()
    buckets = Buckets(RateLimit(rate=2, burst=3), clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0
    clock.now += 0.5
    assert buckets.take("a") == 0


def test_the_limit_comes_from_the_environment_or_is_off() -> None:
    assert RateLimit.from_env("") == RateLimit()
    assert RateLimit.from_env("off") is None
    assert RateLimit.from_env("10,20") == RateLimit(10, 20)
    assert RateLimit.from_env("2.5") == RateLimit(2.5, 3)
    for bad in ("0,5", "5,0", "x", "nan,3"):
        with pytest.raises(ValueError):
            RateLimit.from_env(bad)


def test_over_the_limit_is_429_with_retry_after_per_credential(
    world: World, tmp_path: Path
) -> None:
    store = tmp_path / "meterdata.duckdb"
    app = create_app(world.db_url, store, clock=lambda: NOW, rate_limit=RateLimit(0.5, 3))
    with TestClient(app) as client:
        s1 = {"Authorization": f"Bearer {world.keys['S1']}"}
        operator = {"Authorization": f"Bearer {world.keys['operator']}"}
        answers = [client.get("/v1/health", headers=s1).status_code for _ in range(4)]
        assert answers == [403, 403, 403, 429]
        over = client.get("/v1/health", headers=s1)
        assert (over.status_code, rules_of(over)) == (429, ["API-rate.limit"])
        assert over.headers["retry-after"] == "2"
        assert client.get("/v1/health", headers=operator).status_code == 200
        assert client.get("/openapi.json").status_code == 200  # not under /v1: no limit
        document = client.get("/openapi.json").json()
    assert document["info"]["x-rate-limit"] == {"rate_per_second": 0.5, "burst": 3}
    operations = [(path, op) for path, ops in document["paths"].items() for op in ops.values()]
    assert operations
    for path, op in operations:
        assert "Retry-After" in op["responses"]["429"]["headers"], path


def test_without_a_limit_nothing_is_429_and_the_document_says_none(
    world: World, tmp_path: Path
) -> None:
    app = create_app(
        world.db_url, tmp_path / "meterdata.duckdb", clock=lambda: NOW, rate_limit=None
    )
    with TestClient(app) as client:
        operator = {"Authorization": f"Bearer {world.keys['operator']}"}
        assert {client.get("/v1/health", headers=operator).status_code for _ in range(150)} == {200}
        assert "x-rate-limit" not in client.get("/openapi.json").json()["info"]


def test_two_servers_on_one_register_share_one_limit(world: World, tmp_path: Path) -> None:
    """Two app instances over the same register (two worker processes of one server)
    together allow the burst once, not once each (issue 17)."""
    store = tmp_path / "meterdata.duckdb"
    limit = RateLimit(0.01, 4)
    first = create_app(world.db_url, store, clock=lambda: NOW, rate_limit=limit)
    second = create_app(world.db_url, store, clock=lambda: NOW, rate_limit=limit)
    operator = {"Authorization": f"Bearer {world.keys['operator']}"}
    with TestClient(first) as one, TestClient(second) as two:
        answers = [
            client.get("/v1/health", headers=operator).status_code
            for _ in range(3)
            for client in (one, two)
        ]
        assert answers == [200, 200, 200, 200, 429, 429]
        over = two.get("/v1/health", headers=operator)
        assert (over.status_code, rules_of(over)) == (429, ["API-rate.limit"])


def test_another_process_takes_from_the_same_buckets(tmp_path: Path) -> None:
    """A second process that maps the same file takes from the same bucket: what it
    took is gone for this one (issue 17: ``serve --workers N``)."""
    path = tmp_path / "register.sqlite-ratelimit"
    code = (
        "import sys; from pathlib import Path; "
        "from meetpunt.api.limits import RateLimit, SharedBuckets; "
        "b = SharedBuckets(RateLimit(0.001, 5), Path(sys.argv[1])); "
        "print([b.take('credential:x') for _ in range(3)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[0.0, 0.0, 0.0]"
    here = SharedBuckets(RateLimit(0.001, 5), path)
    assert [here.take("credential:x") for _ in range(2)] == [0, 0]
    assert here.take("credential:x") > 0
    assert here.take("credential:y") == 0


def test_a_full_table_reuses_the_fullest_bucket_never_a_drained_one(tmp_path: Path) -> None:
    class Tiny(SharedBuckets):
        SLOTS = 2
        PROBE = 2

    clock = Clock()
    clock.now = 1.0
    buckets = Tiny(RateLimit(0.001, 2), tmp_path / "buckets", clock)
    assert [buckets.take("a") for _ in range(2)] == [0, 0]
    assert buckets.take("a") > 0  # drained
    assert buckets.take("b") == 0  # one left
    assert buckets.take("c") == 0  # takes b's slot, the fuller one
    assert buckets.take("a") > 0  # still drained: its count was kept
    clock.now = 0.5  # a clock that went back (a reboot): counted as full
    assert buckets.take("a") == 0
