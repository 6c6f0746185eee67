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
