"""``meetpunt p1``: parse and check DSMR P1 captures (MTR-2).

``meetpunt p1 parse --json`` must stay at least 25x dsmr_parser as a whole process
(``benchmarks/p1_parse.py``), start-up included. So importing this module loads only
the parser and the JSON writer: the Typer app :data:`p1_app` is built when first
asked for (Typer alone takes 35-60 ms to import), the table's Rich and the common
options (which load the register and DuckDB) where the table is drawn, and
:func:`parse_json_fast` runs the plain ``p1 parse --json FILE...`` without Typer.
"""

# No ``from __future__ import annotations``: the command is defined inside
# _build_app, and Typer reads its annotations, which name typer, as objects.

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

if TYPE_CHECKING:
    import typer

# A file name as given on the command line, or a Path (pathlib is not imported for the
# fast path: 3-5 ms of start-up).
_File = str | os.PathLike[str]

#: Telegrams written to standard output in one write.
BATCH = 256


def _error(path: _File, exc: OSError) -> None:
    sys.stdout.flush()
    print(f"error: {path}: {exc.strerror or exc}", file=sys.stderr, flush=True)


def _write_json(paths: Sequence[_File]) -> int:
    """One JSON line per telegram of every file (MTR-2), in batches of :data:`BATCH`;
    returns the number of files that could not be read."""
    from meetpunt.io.p1 import read_p1_file
    from meetpunt.jsonout import write_lines

    unreadable = 0
    for path in paths:
        batch: list[bytes] = []
        try:
            for telegram in read_p1_file(path):
                batch.append(telegram.to_json_bytes())
                if len(batch) >= BATCH:
                    write_lines(batch)
                    batch.clear()
        except OSError as exc:
            write_lines(batch)  # the telegrams read before the error
            unreadable += 1
            _error(path, exc)
            continue
        write_lines(batch)
    return unreadable


def parse_json_fast(args: Sequence[str]) -> int | None:
    """``meetpunt p1 parse ARGS`` without Typer when ``args`` are only ``--json`` and
    file names: the exit code (0, or 1 when a file cannot be read). None for anything
    else (``--help``, another option, a name starting with ``-``): Typer runs that."""
    files = [arg for arg in args if arg != "--json"]
    if "--json" not in args or not files or any(arg.startswith("-") for arg in files):
        return None
    return 1 if _write_json(files) else 0


def _print_table(files: Sequence[_File]) -> int:
    """The summary table per file; the number of files that could not be read."""
    from collections import Counter

    from rich.table import Table

    from meetpunt.cli.common import make_console
    from meetpunt.io.p1 import read_p1_file

    table = Table(title="P1 telegrams")
    for column in ("file", "telegrams", "valid", "CRC failures", "malformed", "versions"):
        table.add_column(column)
    unreadable = 0
    for path in files:
        counts: Counter[str] = Counter()
        versions: Counter[str] = Counter()
        try:
            for telegram in read_p1_file(path):
                counts["telegrams"] += 1
                versions[telegram.version or "unknown"] += 1
                if telegram.valid:
                    counts["valid"] += 1
                elif telegram.error is not None and telegram.error.rule == "MTR-2.crc":
                    counts["crc"] += 1
                else:
                    counts["malformed"] += 1
        except OSError as exc:
            unreadable += 1
            _error(path, exc)
            continue
        seen = ", ".join(f"{v} ({n})" for v, n in versions.most_common())
        cells = (counts["telegrams"], counts["valid"], counts["crc"], counts["malformed"])
        table.add_row(str(path), *(str(n) for n in cells), seen)
    make_console().print(table)
    return unreadable


def _build_app() -> "typer.Typer":
    from pathlib import Path

    import typer

    app = typer.Typer(help="DSMR P1 telegrams: parse and check captures (MTR-2).")

    @app.command("parse")
    def p1_parse(
        files: Annotated[list[Path], typer.Argument(help="P1 captures (telegrams as received).")],
        # meetpunt.cli.common.JsonOption, without the meter-data store that module loads
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    ) -> None:
        """Parse DSMR P1 telegrams (2.2 to 5.0, e-MUCS) and report per file.

        --json prints one JSON object per telegram per line. Refused telegrams are
        reported, not errors: exit 0; exit 1 only when a file cannot be read.
        """
        unreadable = _write_json(files) if as_json else _print_table(files)
        if unreadable:
            raise typer.Exit(1)

    return app


def __getattr__(name: str) -> Any:
    """:data:`p1_app`, the ``meetpunt p1`` Typer app, built on first use."""
    if name == "p1_app":
        app = _build_app()
        globals()["p1_app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
