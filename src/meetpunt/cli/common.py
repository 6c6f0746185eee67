"""What every ``meetpunt`` command module shares: the console and the common options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from meetpunt.meterdata.store import STORE_ENV


def make_console(width: int = 120) -> Console:
    """A Rich console; piped or captured output gets ``width`` columns, not 80."""
    console = Console()
    if not console.is_terminal:
        console.width = width
    return console


def progress_bar(console: Console, label_width: int = 12) -> Progress:
    """The progress bar of long work (SPEC interfaces): label, bar, percent, time; it
    stays on a terminal and is left out of piped output."""
    return Progress(
        TextColumn(f"{{task.description:<{label_width}}}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
    )


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="MEETPUNT_DATABASE_URL",
        help="Register database URL (sqlite:///file or postgresql://...); "
        "default: the SQLite register in the meetpunt home folder.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help="Meter-data store (DuckDB file); default: meterdata.duckdb in the meetpunt home.",
    ),
]
