"""How `make test` spreads the suite over pytest-xdist's workers (``--dist loadgroup``).

A group is a unit of work that runs whole on one worker, so the fixtures its tests share
are built once in a run: a module's own fixtures, and each seed's session twin of
tests/usecases (tests/usecases/conftest.py), one group per seed so the four twins can go
to different workers. The group follows from the test's node id alone (``group_of``):
the scheduler on xdist's controller (``PlannedGroups``) sees nothing else. xdist's own
loadgroup reads ``xdist_group`` marks through a node id suffix that pytest 9.2 no longer
keeps (pytest-xdist issue 1386), so every test was its own unit and each seed's twin,
the demos and the other module fixtures were built on both workers.

Groups are handed out most expensive first (``by_cost``, longest processing time first):
the last units handed out are the small ones, so the two workers finish close together.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

USECASES = "tests/usecases/"
"""Tests here whose id names a seed (``seed4``) take that seed's session ``twin``."""

SEED_ID = re.compile(r"\[(?:[^\]]*-)?seed(\d+)(?:-[^\]]*)?\]$")

SECONDS: dict[str, float] = {
    "tests/scenarios/test_scenarios.py": 175.0,
    "tests/api/test_oauth.py": 60.0,
    "tests/demo/test_demo.py": 60.0,
    "tests/privacy/test_disclosure_twin.py": 46.0,
    "tests/api/test_feed.py": 41.0,
    "tests/meterdata/test_side_by_side.py": 39.0,
    "tests/meterdata/test_crash.py": 38.0,
    "tests/demo/test_demo_stress.py": 38.0,
    "tests/api/test_api.py": 33.0,
    "tests/usecases/test_uc01.py": 31.0,
    "tests/api/test_serve.py": 28.0,
    "tests/register/test_bad_input.py": 25.0,
    "usecase-twin-seed1": 23.0,
    "tests/meterdata/test_mqtt_broker.py": 21.0,
    "tests/cli/test_cli.py": 20.0,
    "tests/privacy/test_disclosure_attacks.py": 20.0,
    "usecase-twin-seed2": 20.0,
    "tests/cli/test_market_cli.py": 20.0,
    "tests/privacy/test_gate_integrity.py": 20.0,
    "usecase-twin-seed4": 19.0,
    "tests/register/test_bulk_import.py": 17.0,
    "tests/twin/test_meter_realities.py": 17.0,
    "tests/unit/test_xdist_plan.py": 17.0,
    "usecase-twin-seed5": 17.0,
    "tests/meterdata/test_mqtt_ack.py": 16.0,
    "tests/api/test_schemathesis.py": 15.0,
    "tests/usecases/test_uc08.py": 13.0,
    "tests/twin/test_operatorfile.py": 13.0,
    "tests/api/test_customer.py": 13.0,
}
"""Seconds each group took in a full run on the 2-core machine (2026-12-06, load 4-6),
for the groups over 12 s that take long for their number of tests: `python -m
tests.xdist_plan` on a run's junit xml (README.md). Left out: the two groups a worker ran
last, whose last teardown waited ~35 s for PostgreSQL's checkpoint (DROP DATABASE)."""

PER_TEST = 0.15
"""Seconds per test for a group not in SECONDS (their mean in that run)."""


def group_of(nodeid: str) -> str:
    """The group of a test: ``usecase-twin-seed<N>`` for a use-case test whose id names
    seed N, else its module. A suffix ``@name`` (an ``xdist_group`` mark, where xdist
    still passes it on) names the group itself."""
    _, at, name = nodeid.rpartition("@")
    if at and "]" not in name:
        return name
    module = nodeid.split("::", 1)[0]
    seed = SEED_ID.search(nodeid)
    if module.startswith(USECASES) and seed:
        return f"usecase-twin-seed{seed.group(1)}"
    return module


def misgrouped(tests: Iterable[tuple[str, Collection[str], Mapping[str, object]]]) -> list[str]:
    """The node ids, of ``(node id, fixture names, params)``, whose group says the wrong
    thing about the session ``twin``: a use-case test taking seed N's twin must name
    ``seedN`` in its id (``ids=["seed1"]`` with ``indirect=True``), and one not taking it
    must not, or its twin's tests would be split over two workers."""
    wrong = []
    for nodeid, fixturenames, params in tests:
        if not nodeid.startswith(USECASES):
            continue
        takes = "twin" in fixturenames and "twin" in params
        expected = f"usecase-twin-seed{params['twin']}" if takes else nodeid.split("::")[0]
        if group_of(nodeid) != expected:
            wrong.append(nodeid)
    return wrong


def by_cost(
    items: Sequence[T],
    group: Callable[[T], str],
    seconds: Mapping[str, float] = SECONDS,
    per_test: float = PER_TEST,
) -> list[T]:
    """``items`` with each group's tests together, the most expensive group first (a
    group's cost is its entry in ``seconds`` or ``per_test`` per test). Groups of equal
    cost keep the order they are collected in, and so do the tests within a group, so
    pytest's own order of parametrised fixtures still holds inside each group."""
    names = [group(item) for item in items]
    count = Counter(names)
    cost = {name: seconds.get(name, per_test * n) for name, n in count.items()}
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        first.setdefault(name, index)
    order = sorted(range(len(items)), key=lambda i: (-cost[names[i]], first[names[i]], i))
    return [items[i] for i in order]


def scheduler(config: Any, log: Any) -> Any:
    """xdist's scope scheduler with ``group_of`` as the scope, handing the groups out in
    the order the workers collected them (``by_cost``), not xdist's most-tests-first."""
    from xdist.scheduler import LoadScopeScheduling

    class PlannedGroups(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    config.option.loadscopereorder = False
    return PlannedGroups(config, log)


def group_seconds(junit_xml: str) -> list[tuple[str, float, int]]:
    """(group, seconds, tests) from a run's ``--junitxml`` file, the most expensive first:
    the numbers for SECONDS. A test's time there is its setup, call and teardown."""
    from xml.etree import ElementTree

    seconds: Counter[str] = Counter()
    tests: Counter[str] = Counter()
    for case in ElementTree.parse(junit_xml).iter("testcase"):
        module = case.get("classname", "").split(".")
        while module and not module[-1].startswith("test_"):
            module.pop()  # a class inside the module
        nodeid = "/".join(module) + ".py::" + case.get("name", "")
        group = group_of(nodeid)
        seconds[group] += float(case.get("time", 0))
        tests[group] += 1
    return [(g, s, tests[g]) for g, s in seconds.most_common()]


if __name__ == "__main__":  # python -m tests.xdist_plan junit.xml
    import sys

    for group, total, n in group_seconds(sys.argv[1])[:25]:
        print(f"{total:8.1f} s {n:5d} tests  {group}")
