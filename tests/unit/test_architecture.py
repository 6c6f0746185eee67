"""The shape of ARCHITECTURE.md, checked: every "may import" line of its package table
holds, the domain stays pure (no I/O, no databases), and only the hub, the gate and the
application layer open a meter-data store."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SRC = ROOT / "src" / "meetpunt"
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
    """Every module ``path`` imports; ``from meetpunt import x`` counts as
    ``meetpunt.x`` (lazy imports inside functions count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "meetpunt":
                found |= {f"meetpunt.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return found


def may_import_table(text: str) -> dict[str, tuple[str, ...] | None]:
    """ARCHITECTURE.md's package table: package -> the meetpunt modules it may import
    (``None``: everything). Names in backticks count, except inside parentheses."""
    table: dict[str, tuple[str, ...] | None] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`meetpunt"):
            continue
        package = cells[0].split("`")[1]
        allowed = cells[2]
        if allowed.startswith("everything"):
            table[package] = None
            continue
        bare = re.sub(r"\([^)]*\)", "", allowed)
        table[package] = tuple(f"meetpunt.{name}" for name in re.findall(r"`([\w.]+)`", bare))
    return table


TABLE = may_import_table((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8"))
UNLISTED = {"meetpunt", "meetpunt.__main__"}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def package_of(module: str, table: dict[str, tuple[str, ...] | None]) -> str | None:
    """The table's row a module belongs to (the longest matching package)."""
    rows = [p for p in table if _within(module, p)]
    return max(rows, key=len) if rows else None


def offences(module: str, imported: set[str], table: dict[str, tuple[str, ...] | None]) -> set[str]:
    """The meetpunt modules ``module`` imports that its row does not allow."""
    package = package_of(module, table)
    if package is None:
        return {f"{module} has no row in ARCHITECTURE.md"}
    allowed = table[package]
    if allowed is None:
        return set()
    return {
        m
        for m in imported
        if m.split(".")[0] == "meetpunt"
        and not _within(m, package)
        and not any(_within(m, a) for a in allowed)
    }


def test_the_table_is_read() -> None:
    assert TABLE["meetpunt.domain"] == ("meetpunt.errors",)
    assert TABLE["meetpunt.cli"] is None
    assert TABLE["meetpunt.data"] == ()
    assert "meetpunt.meterdata.store" in (TABLE["meetpunt.privacy"] or ())
    # the HTTP API (issue 17) reaches meter data only through the application layer
    api = TABLE["meetpunt.api"] or ()
    assert "meetpunt.app" in api
    assert not any(m.startswith(("meetpunt.meterdata", "meetpunt.cli")) for m in api)


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_every_module_keeps_to_its_may_import_line(path: Path) -> None:
    """ARCHITECTURE.md's last column, for every module of src/."""
    module = _module(path).removesuffix(".__init__")
    if module in UNLISTED:
        return
    assert offences(module, imports_of(path), TABLE) == set()


def test_the_may_import_checker_catches_an_offender() -> None:
    table = may_import_table(
        "| `meetpunt.usecases` | x (`meetpunt.register`) | `domain`, `privacy.gate` (reads) |\n"
        "| `meetpunt.cli` | y | everything |"
    )
    imported = {"meetpunt.domain.ean", "meetpunt.privacy.gate", "meetpunt.register.store"}
    assert offences("meetpunt.usecases.uc99", imported, table) == {"meetpunt.register.store"}
    assert offences("meetpunt.cli.main", imported, table) == set()
    assert offences("meetpunt.api.v1", imported, table) == {
        "meetpunt.api.v1 has no row in ARCHITECTURE.md"
    }


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
STORE_OWNERS = ("meetpunt.meterdata", "meetpunt.privacy", "meetpunt.app")


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
    """PRV-1, "one door to meter data": the hub writes, the gate reads, the application
    layer opens the store for them; nothing else touches a store."""
    if _module(path).startswith(STORE_OWNERS):
        return
    reached = store_access(path)
    allowed = {
        "meetpunt.app.hub.hub_store",  # the CLI's ingestion and retention commands
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
