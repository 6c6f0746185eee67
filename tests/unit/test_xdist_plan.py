"""How `make test` spreads the suite over xdist's workers (tests/xdist_plan.py): each
group runs whole on one worker, so its shared fixtures are built once in a run, and the
groups are handed out most expensive first so the workers finish close together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests import xdist_plan

ROOT = Path(__file__).parents[2]
PROBE = """
import os

import pytest


@pytest.mark.parametrize("n", range(6))
def test_probe(n: int, request: pytest.FixtureRequest) -> None:
    with open(os.environ["PROBE_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{request.node.nodeid} {os.environ['PYTEST_XDIST_WORKER']}\\n")
"""


def test_a_seeds_twin_tests_are_one_group_and_other_tests_their_modules() -> None:
    group_of = xdist_plan.group_of
    assert group_of("tests/usecases/test_uc09.py::test_x[seed4]") == "usecase-twin-seed4"
    assert group_of("tests/usecases/test_uc04.py::test_y[seed1]") == "usecase-twin-seed1"
    both = "tests/usecases/test_uc04_contradicted.py::test_z[30days-seed1]"
    assert group_of(both) == "usecase-twin-seed1"
    assert group_of("tests/usecases/test_uc09.py::test_cli") == "tests/usecases/test_uc09.py"
    assert group_of("tests/demo/test_demo.py::test_a[seed1]") == "tests/demo/test_demo.py"
    assert group_of("tests/api/test_api.py::test_b[a@b]") == "tests/api/test_api.py"
    assert group_of("tests/api/test_api.py::test_b[x]@api") == "api", "an xdist_group mark"


def test_a_twin_test_whose_id_hides_its_seed_is_refused() -> None:
    """Without ``ids=["seed1"]`` an indirect twin test's id is ``[1]``: its group would be
    its module, and seed 1's twin built on a second worker."""
    module = "tests/usecases/test_uc02_voltage_quality.py::test_uc2"
    assert xdist_plan.misgrouped([(f"{module}[seed1]", ["twin"], {"twin": 1})]) == []
    assert xdist_plan.misgrouped([(f"{module}[1]", ["twin"], {"twin": 1})]) == [f"{module}[1]"]
    wrong_seed = [(f"{module}[seed2]", ["twin"], {"twin": 1})]
    assert xdist_plan.misgrouped(wrong_seed) == [f"{module}[seed2]"]
    no_twin = [(f"{module}[seed2]", ["tmp_path"], {"n": 2})]
    assert xdist_plan.misgrouped(no_twin) == [f"{module}[seed2]"]
    elsewhere = [("tests/demo/test_demo.py::test_a[1]", ["twin"], {"twin": 1})]
    assert xdist_plan.misgrouped(elsewhere) == []


@given(
    st.lists(st.sampled_from("abcdef"), max_size=40),
    st.dictionaries(st.sampled_from("abcdef"), st.floats(0, 100)),
)
def test_groups_come_whole_most_expensive_first_in_their_own_order(
    groups: list[str], seconds: dict[str, float]
) -> None:
    items = list(enumerate(groups))  # (collected position, group)
    ordered = xdist_plan.by_cost(items, lambda item: item[1], seconds, per_test=1.0)
    assert sorted(ordered) == items, "every test once"
    runs = [g for i, (_, g) in enumerate(ordered) if i == 0 or ordered[i - 1][1] != g]
    assert len(runs) == len(set(groups)), "each group's tests together"
    for group in set(groups):
        positions = [pos for pos, g in ordered if g == group]
        assert positions == sorted(positions), "a group's tests in the order collected"
    cost = {g: seconds.get(g, groups.count(g) * 1.0) for g in groups}
    assert [cost[g] for g in runs] == sorted((cost[g] for g in runs), reverse=True)


def test_under_xdist_a_modules_tests_run_on_one_worker(tmp_path: Path) -> None:
    """With xdist's own loadgroup on pytest 9.2 every test was its own unit: the first
    six tests went three to each worker, so module test_a.py ran on both."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems, pytest_xdist_make_scheduler\n",
        encoding="utf-8",
    )
    for name in ("test_a.py", "test_b.py"):
        (suite / name).write_text(PROBE, encoding="utf-8")
    log = tmp_path / "probe.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROBE_LOG": str(log)}
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q"]
    command += ["-p", "no:cacheprovider", "--rootdir", str(suite), str(suite)]
    ran = subprocess.run(command, check=False, cwd=suite, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    runs = [line.split() for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(runs) == 12
    workers = {(nodeid.split("::")[0], worker) for nodeid, worker in runs}
    assert len(workers) == 2, f"a module on two workers: {sorted(workers)}"


def test_group_seconds_adds_up_a_junit_file_per_group(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        "<testsuites><testsuite>"
        '<testcase classname="tests.usecases.test_uc09" name="test_a[seed2]" time="20.5"/>'
        '<testcase classname="tests.usecases.test_uc01" name="test_b[seed2]" time="1.5"/>'
        '<testcase classname="tests.usecases.test_uc01" name="test_cli" time="3"/>'
        '<testcase classname="tests.api.test_api.TestX" name="test_c" time="0.5"/>'
        "</testsuite></testsuites>",
        encoding="utf-8",
    )
    assert xdist_plan.group_seconds(str(junit)) == [
        ("usecase-twin-seed2", 22.0, 2),
        ("tests/usecases/test_uc01.py", 3.0, 1),
        ("tests/api/test_api.py", 0.5, 1),
    ]
