"""``meetpunt p1``: parse and check DSMR P1 captures (MTR-2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from meetpunt.cli.common import JsonOption, make_console

p1_app = typer.Typer(help="DSMR P1 telegrams: parse and check captures (MTR-2).")
console = make_console()


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


@p1_app.command("parse")
def p1_parse(
    files: Annotated[list[Path], typer.Argument(help="P1 captures (telegrams as received).")],
    as_json: JsonOption = False,
) -> None:
    """Parse DSMR P1 telegrams (2.2 to 5.0, e-MUCS) and report per file.

    --json prints one JSON object per telegram per line. Refused telegrams are
    reported, not errors: exit 0; exit 1 only when a file cannot be read.
    """
    from collections import Counter

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
                if as_json:
                    _print_json(telegram.to_json())
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
            typer.echo(f"error: {path}: {exc.strerror or exc}", err=True)
            continue
        seen = ", ".join(f"{v} ({n})" for v, n in versions.most_common())
        cells = (counts["telegrams"], counts["valid"], counts["crc"], counts["malformed"])
        table.add_row(str(path), *(str(n) for n in cells), seen)
    if not as_json:
        console.print(table)
    if unreadable:
        raise typer.Exit(1)
