"""``meetpunt usecase uc05`` and ``uc12``: the voltage checks of issue 18 (UC5, UC12).

Both read the operator's own files (its interventions, its substation and cable-cabinet
measurements; the twin writes them to ``operator/``) and meter data only through the
gate. Registered on :data:`meetpunt.cli.usecases.usecase_app` by importing this module.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import pyarrow.parquet as pq
import typer
from rich.table import Table

from meetpunt.app.gate import open_gate
from meetpunt.cli.common import DbOption, JsonOption, StoreOption, announce_head, fail
from meetpunt.cli.uc_voltage import AtOption, gate_clock, gate_moment
from meetpunt.cli.usecases import FromOption, PartyOption, ToOption, _days, console, usecase_app
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import print_json
from meetpunt.privacy.model import Party, Role
from meetpunt.usecases.uc05_intervention import assess_intervention, read_interventions
from meetpunt.usecases.uc12_unsafe import find_unsafe, read_cabinets

OperatorOption = Annotated[
    Path,
    typer.Option(
        help="The operator's folder: interventions.csv, substation_measurements.parquet, "
        "cabinet_measurements.parquet, cable_cabinets.csv (a twin's operator/)."
    ),
]


@usecase_app.command("uc05")
def uc05(
    operator: OperatorOption,
    days: Annotated[int, typer.Option(min=1, max=10, help="Days per read (at most 10).")] = 10,
    party: PartyOption = "grid_operator",
    at: AtOption = None,
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC5 Effectiveness of an intervention: a before and an after read (at most 10 days
    each, a day apart) of the group's voltages, compared per phase at equal load, feed-in
    and MV voltage (the operator's substation measurements). With --at the gate decides
    at that moment and the after read is asked then (not before its window has ended)."""
    try:
        asked = None if at is None else gate_moment(at)
        notes = read_interventions(operator / "interventions.csv")
        if not notes:
            raise MeetpuntError(f"{operator / 'interventions.csv'} lists no intervention")
        stations = pq.read_table(operator / "substation_measurements.parquet")
        with open_gate(db, store, gate_clock(at), create=False, on_head=announce_head) as gate:
            result = assess_intervention(
                gate,
                Party(party, Role.GRID_OPERATOR),
                notes[0],
                stations,
                days=days,
                asked_at=asked,
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(result.as_dict())
        return
    note = result.intervention
    table = Table(
        title=f"UC5: {note.kind} on {note.feeder or note.substation} ({note.day}), "
        f"{result.connections} connections"
    )
    for name in (
        "phase",
        "meter phases",
        "effect (V)",
        "+/-",
        "means' difference (V)",
        "min > 253 V before/after",
        "min < 207 V before/after",
    ):
        table.add_column(name)
    for p in result.phases:
        table.add_row(
            p.phase,
            str(p.series),
            "-" if p.effect_v is None else f"{p.effect_v:+.2f}",
            "-" if p.effect_se_v is None else f"{p.effect_se_v:.2f}",
            "-" if p.naive_v is None else f"{p.naive_v:+.2f}",
            f"{p.before.minutes_above} / {p.after.minutes_above}",
            f"{p.before.minutes_below} / {p.after.minutes_below}",
        )
    console.print(table)


@usecase_app.command("uc12")
def uc12(
    operator: OperatorOption,
    date_from: FromOption,
    date_to: ToOption,
    party: PartyOption = "grid_operator",
    at: AtOption = None,
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC12 Unsafe situations: substation measurement, then the cable, then (only where
    the cable step points) the individual meters' voltages and feed-in for at most 10
    days; says which connections to visit. Each step is recorded for the audit."""
    period = _days(date_from, date_to)
    try:
        moment = gate_moment(at)
        stations = pq.read_table(operator / "substation_measurements.parquet")
        cabinets = pq.read_table(operator / "cabinet_measurements.parquet")
        sections = read_cabinets(operator / "cable_cabinets.csv")
        with open_gate(db, store, gate_clock(at), create=False, on_head=announce_head) as gate:
            versions = gate.register_view.connection_versions(
                (period.end - timedelta(days=1)).date()
            )
            smart = {
                v.ean: None
                if v.attributes.grid.phase is None
                else int(v.attributes.grid.phase.value[1])
                for v in versions
                if v.commodity is Commodity.ELECTRICITY
                and v.attributes.meter_type is MeterType.SMART
            }
            result = find_unsafe(
                gate,
                Party(party, Role.GRID_OPERATOR),
                stations,
                cabinets,
                sections,
                period,
                moment,
                smart=smart,
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(result.as_dict())
        return
    steps = Table(title="UC12: the step chain")
    for name in ("step", "finding", "points at"):
        steps.add_column(name)
    for s in result.steps:
        pointed = [
            f"{f.feeder}{'' if f.cabinet is None else '/' + str(f.cabinet)}"
            for f in s.looked_at
            if f.points
        ]
        steps.add_row(
            s.name,
            "-" if s.flag_id is None else str(s.flag_id),
            ", ".join(pointed) or f"{len(s.names)} meters",
        )
    console.print(steps)
    console.print(
        f"visit: {', '.join(result.visit) or 'nobody'}; {result.individual_reads} meters read "
        f"individually of {result.whole_feeder_reads} on the flagged feeder(s)"
    )
    if result.unresolved:
        console.print(f"also visit (no smart meter to read): {', '.join(result.unresolved)}")
