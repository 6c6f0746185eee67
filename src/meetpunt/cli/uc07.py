"""``meetpunt usecase uc07``: UC7, each connection's cable and phase from its voltages
(issue 19). Thin: parses, opens a gate, calls :func:`find_topology`, prints a table or
JSON, and writes the GIS correction table for a GIS clerk (``--corrections``)."""

from __future__ import annotations

import csv
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.table import Table

from meetpunt.app.gate import open_gate
from meetpunt.app.register import register_at
from meetpunt.cli.common import DbOption, JsonOption, StoreOption, announce_head, fail, parse_day
from meetpunt.cli.usecases import FromOption, PartyOption, ToOption, _days, console, usecase_app
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError, RegisterError
from meetpunt.jsonout import print_json
from meetpunt.privacy.model import Party, Role
from meetpunt.register.gis import GisCorrection, apply_corrections
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
the person who checks it (``yes`` to apply it with ``meetpunt usecase uc07-apply``)."""


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
    operator: Annotated[
        Path | None,
        typer.Option(
            help="The operator's folder with substation_measurements.parquet (feeder-head "
            "power, busbar voltage; a twin's operator/): the load-driven voltage drop "
            "as a second signal. Not meter data, read as the operator's own file."
        ),
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
        stations = None
        if operator is not None:
            stations = read_stations(operator / "substation_measurements.parquet")
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
                stations,
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if corrections is not None:
        write_corrections(result, corrections)
    if as_json:
        print_json(result.as_dict())
    else:
        _show(result)


def read_stations(path: Path) -> pa.Table:
    """The operator's substation measurements (UC7's second signal); a missing file is
    a clear error naming it and what to do."""
    if not path.is_file():
        raise MeetpuntError(
            f"{path}: no substation measurements",
            [Finding("UC7.operator", f"{path} does not exist")],
            "give --operator the folder holding substation_measurements.parquet, or leave "
            "it out to judge on the voltages alone",
        )
    return pq.read_table(path)


CONFIRMED = frozenset({"yes", "ja", "y", "j"})


def read_confirmed(path: Path) -> list[GisCorrection]:
    """The rows of a correction table (:data:`CORRECTION_COLUMNS`) a person confirmed
    (``confirmed`` = yes/ja); a row with an unknown phase is refused, naming it."""
    out: list[GisCorrection] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(CORRECTION_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise RegisterError(
                f"{path}: not a UC7 correction table, missing {', '.join(sorted(missing))}",
                [Finding("REG-2.gis_table", "write the table with `usecase uc07 --corrections`")],
            )
        for line, row in enumerate(reader, start=2):
            if row["confirmed"].strip().casefold() not in CONFIRMED:
                continue
            old, new = row["registered_phase"] or None, row["found_phase"] or None
            for value in (old, new):
                if value is not None and value not in ("L1", "L2", "L3"):
                    finding = Finding(
                        "REG-2.phase", f"{path}:{line}: phase {value!r} is not L1/L2/L3"
                    )
                    raise RegisterError(finding.message, [finding])
            if not row["found_feeder"]:
                finding = Finding("REG-2.feeder", f"{path}:{line}: no found feeder to apply")
                raise RegisterError(finding.message, [finding])
            out.append(
                GisCorrection(row["ean"], row["registered_feeder"], old, row["found_feeder"], new)
            )
    return out


@usecase_app.command("uc07-apply")
def uc07_apply(
    table: Annotated[Path, typer.Argument(help="The correction table, rows confirmed 'yes'.")],
    on: Annotated[str, typer.Option(help="The day the corrected registration holds from.")],
    confirmed_by: Annotated[str, typer.Option(help="Who checked and confirmed the rows.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply the GIS corrections a person confirmed (issue 19): each as a new connection
    version from --on, with UC7 named as the source in the register's history."""
    try:
        rows = read_confirmed(table)
        day = parse_day(on, "--on")
        with register_at(db, create=False) as register, register.session() as session:
            applied = apply_corrections(session, rows, day, confirmed_by, "UC7", datetime.now(UTC))
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json({"applied": applied, "from": day.isoformat(), "source": "UC7"})
    else:
        console.print(f"{applied} GIS corrections applied from {day} (source UC7)")
