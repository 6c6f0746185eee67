"""The shape of ARCHITECTURE.md, checked: the domain stays pure (no I/O, no databases)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "meetpunt"
DOMAIN_MAY_IMPORT = ("meetpunt.domain", "meetpunt.errors")
IO_MODULES = {
    "sqlalchemy",
    "alembic",
    "psycopg",
    "typer",
    "rich",
    "os",
    "pathlib",
    "io",
    "sqlite3",
    "importlib",
    "tomllib",
    "socket",
    "subprocess",
    "open",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((SRC / "domain").glob("*.py")), ids=lambda p: p.name)
def test_domain_imports_only_domain_and_standard_pure_modules(path: Path) -> None:
    for module in imports_of(path):
        top = module.split(".")[0]
        if top == "meetpunt":
            assert module.startswith(DOMAIN_MAY_IMPORT), f"{path.name} imports {module}"
        else:
            assert top not in IO_MODULES, f"{path.name} imports {module}: domain must stay pure"


def test_the_checker_catches_an_offender(tmp_path: Path) -> None:
    offender = tmp_path / "bad.py"
    offender.write_text("from meetpunt.register import open_register\nimport sqlalchemy\n")
    assert imports_of(offender) == {"meetpunt.register", "sqlalchemy"}


STORE_NAMES = {"open_store", "MeterStore", "hub_store"}
STORE_OWNERS = ("meetpunt.meterdata", "meetpunt.privacy")


def store_access(path: Path) -> set[str]:
    """What a module uses to reach a meter-data store: ``duckdb``, the store module, or
    the names that open one."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "duckdb"}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "duckdb":
                found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if a.name in STORE_NAMES}
    return found


def _module(path: Path) -> str:
    return "meetpunt." + ".".join(path.relative_to(SRC).with_suffix("").parts)


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_hub_and_the_privacy_gate_open_a_meter_data_store(path: Path) -> None:
    """DESIGN rule 1 / PRV-1: the hub writes, the gate reads, nothing else touches a store."""
    if _module(path).startswith(STORE_OWNERS):
        return
    reached = store_access(path)
    allowed = {
        "meetpunt.meterdata.service.hub_store",  # the CLI's ingestion and retention commands
    }
    assert reached <= allowed, f"{_module(path)} reaches a meter-data store: {reached - allowed}"


def test_the_store_checker_catches_an_offender(tmp_path: Path) -> None:
    offender = tmp_path / "usecase.py"
    offender.write_text(
        "import duckdb\nfrom meetpunt.meterdata import open_store\n"
        "from meetpunt.meterdata.store import MeterStore\n"
    )
    assert store_access(offender) == {
        "duckdb",
        "meetpunt.meterdata.open_store",
        "meetpunt.meterdata.store.MeterStore",
    }
