"""The ``meetpunt`` command: one Typer app over the application layer.

``main`` assembles the command groups (one module each); ``common`` holds what every
command shares (console, options, the error shape).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``meetpunt`` console script.

    ``meetpunt p1 parse --json FILE...`` runs without loading the rest of the command
    (the register, DuckDB, numpy: about a second), as it must stay 25x dsmr_parser as
    a whole process (MTR-2); every other call goes through the Typer app.
    """
    if sys.argv[1:3] == ["p1", "parse"]:
        from meetpunt.cli.p1 import parse_json_fast

        code = parse_json_fast(sys.argv[3:])
        if code is not None:
            sys.exit(code)
    from meetpunt.cli.main import main as run

    run()


def __getattr__(name: str) -> Any:
    """``app`` is loaded when asked for (it imports every command module)."""
    if name == "app":
        from meetpunt.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
