"""``meetpunt usecase uc07``: UC7, each connection's cable and phase from its voltages
(issue 19). Thin: parses, opens a gate, calls :func:`find_topology`, prints a table or
JSON, and writes the GIS correction table for a GIS clerk (``--corrections``)."""

from __future__ import annotations

import csv
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from meetpunt.app.gate import open_gate
from meetpunt.cli.common import DbOption, JsonOption, StoreOption, announce_head, fail
from meetpunt.cli.usecases import FromOption, PartyOption, ToOption, _days, console, usecase_app
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import print_json
from meetpunt.privacy.model import Party, Role
from meetpunt.usecases.uc07_gis_topology import Uc07Result, find_topology

CORRECTION_COLUMNS = (
    "ean",
    "registered_feeder",
    "registered_phase",
    "found_feeder",
    "found_phase",
    "confidence",
    "verdict",
    "confirmed",
)
"""The GIS clerk's table: one proposed correction a row; ``confirmed`` is left empty for
the person who checks it (``yes`` to apply it with ``meetpunt register gis-apply``)."""


def write_corrections(result: Uc07Result, path: Path) -> Path:
    """The proposed GIS corrections as CSV (UC7), ``confirmed`` left for a person."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(CORRECTION_COLUMNS)
        for p in result.corrections:
            out.writerow(
                [
                    p.ean,
                    p.registered_feeder,
                    p.registered_phase or "",
                    p.found_feeder or "",
                    p.found_phase or "",
                    f"{p.confidence:.2f}",
                    p.verdict,
                    "",
                ]
            )
    return path


def _show(result: Uc07Result) -> None:
    s = result.summary()
    console.print(
        f"UC7 {result.substation}"
        + (f" feeder {result.feeder}" if result.feeder else "")
        + f": {s['connections']} connections, {s['agrees']} agree, "
        f"{s['phase_differs']} phase differs, {s['feeder_differs']} feeder differs, "
        f"{s['undecided']} undecided; phases {result.phase_labels}; "
        f"source data deleted: {'yes' if result.deleted else 'no'}"
    )
    table = Table("EAN", "registered", "found", "confidence", "verdict", "reason")
    for p in result.connections:
        if p.verdict == "agrees":
            continue
        table.add_row(
            p.ean,
            f"{p.registered_feeder} {p.registered_phase or '3-phase'}",
            "-" if p.found_feeder is None else f"{p.found_feeder} {p.found_phase or '3-phase'}",
            f"{p.confidence:.2f}",
            p.verdict,
            p.reason,
        )
    if table.row_count:
        console.print(table)


@usecase_app.command("uc07")
def uc07(
    substation: Annotated[str, typer.Option(help="The substation whose connections to group.")],
    date_from: FromOption,
    date_to: ToOption,
    feeder: Annotated[
        str | None, typer.Option(help="Only this LV feeder's connections (a smaller group).")
    ] = None,
    trigger: Annotated[
        str, typer.Option(help="The GIS review this analysis answers.")
    ] = "GIS review",
    corrections: Annotated[
        Path | None,
        typer.Option(help="Write the proposed GIS corrections (CSV) here for a GIS clerk."),
    ] = None,
    party: PartyOption = "grid_operator",
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC7 GIS topology: each connection's cable and phase from the changes of its
    10-minute voltages (at most 10 days, once a year per connection); the read copy is
    deleted after the analysis (PRV-5)."""
    period = _days(date_from, date_to)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="meetpunt-uc07-") as work,
            open_gate(db, store, create=False, on_head=announce_head) as gate,
        ):
            result = find_topology(
                gate,
                Party(party, Role.GRID_OPERATOR),
                substation,
                period,
                datetime.now(UTC),
                trigger,
                Path(work),
                feeder,
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if corrections is not None:
        write_corrections(result, corrections)
    if as_json:
        print_json(result.as_dict())
    else:
        _show(result)
