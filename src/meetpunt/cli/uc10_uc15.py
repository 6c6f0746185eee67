"""``meetpunt usecase uc10|uc15`` and ``meetpunt schedule run|list`` (issue 20).

Thin: parses, opens a gate (:func:`meetpunt.app.gate.open_gate`), calls the use case or
the schedule (:mod:`meetpunt.app.schedule`), prints a table or JSON. Times are given
with their UTC offset and shown in Europe/Amsterdam local time.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from meetpunt.app.gate import open_gate
from meetpunt.app.schedule import run_schedule, schedule_list
from meetpunt.cli.common import (
    DbOption,
    JsonOption,
    StoreOption,
    announce_head,
    fail,
    input_error,
    make_console,
    parse_day,
)
from meetpunt.cli.usecases import PartyOption, usecase_app
from meetpunt.domain.calendar import to_local
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import print_json
from meetpunt.privacy.model import Party, Role
from meetpunt.usecases import uc15_watch as uc15
from meetpunt.usecases.uc10_manual_readings import approve_readings, readings_from_rows

schedule_app = typer.Typer(
    help="The persistent schedule of recurring checks (UC15 every 5 days).",
    no_args_is_help=True,
)
console = make_console()


def _moment(text: str | None, option: str) -> datetime:
    """An ISO 8601 moment with its UTC offset (now when not given)."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise input_error(
            "CLI.datetime", f"{option}: {text!r} is no moment", "give e.g. 2026-06-20T06:00+02:00"
        ) from exc
    if moment.tzinfo is None:
        raise input_error(
            "CLI.datetime", f"{option}: {text!r} has no UTC offset", "add e.g. +02:00"
        )
    return moment.astimezone(UTC)


@usecase_app.command("uc10")
def uc10(
    readings: Annotated[
        Path,
        typer.Option(
            help="The mechanic's readings (CSV: reading_id, ean, taken_at, import_t1_kwh, "
            "import_t2_kwh, export_t1_kwh, export_t2_kwh; whole kWh, times with offset)."
        ),
    ],
    at: Annotated[
        str | None, typer.Option("--at", help="When the check runs (default now).")
    ] = None,
    party: PartyOption = "grid_operator",
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC10 Approval of manual readings: each reading against the smart meter's daily
    readings around it (through the gate, one request per reading); approved, or
    flagged with the suspected misread (T1/T2 or import/export swapped, a digit slip, a
    neighbour's meter) and the values that would fit."""
    try:
        moment = _moment(at, "--at")
        if not readings.is_file():
            raise input_error("CLI.file", f"no file {readings}", "give the readings CSV")
        with readings.open(newline="", encoding="utf-8") as f:
            rows = readings_from_rows(csv.DictReader(f), str(readings))
        with open_gate(db, store, create=False, on_head=announce_head) as gate:
            result = approve_readings(gate, Party(party, Role.GRID_OPERATOR), rows, moment)
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(result.as_dict())
        return
    table = Table(title=f"UC10: {len(result.verdicts)} manual reading(s)")
    for col in ("reading", "EAN", "verdict", "basis", "suspected", "proposal (kWh)"):
        table.add_column(col)
    for v in result.verdicts:
        table.add_row(
            v.reading_id,
            v.ean,
            "approved" if v.approved else "FLAGGED",
            v.basis,
            v.suspected or "",
            "" if v.proposal is None else " / ".join(f"{x:g}" for x in v.proposal),
        )
    console.print(table)


@usecase_app.command("uc15")
def uc15_check(
    ean: Annotated[str, typer.Option(help="The connection to check (EAN).")],
    day: Annotated[str, typer.Option(help="The local day of the check (YYYY-MM-DD).")],
    party: PartyOption = "grid_operator",
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC15 one check by hand: the connection's group on that day and its register
    reading (or, with the admin switch off, only whether the meter answers). The
    recurring checks are ``meetpunt schedule run``."""
    try:
        when = parse_day(day, "--day")
        with open_gate(db, store, create=False, on_head=announce_head) as gate:
            groups, stops = uc15.population(gate, when)
            group = groups.get(ean)
            if group is None:
                found = uc15.Check("not_watched", rules=(stops.get(ean, "unknown"),))
            else:
                found = uc15.check(
                    gate, Party(party, Role.GRID_OPERATOR), ean, group, when, None,
                    uc15.Uc15Rules.load(),
                )  # fmt: skip
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    out: dict[str, object] = {
        "use_case": uc15.PURPOSE,
        "ean": ean,
        "day": when.isoformat(),
        "group": group,
    }
    out.update(found.as_dict())
    if as_json:
        print_json(out)
    else:
        console.print(" ".join(f"{k}={v}" for k, v in out.items() if v is not None and v != []))


@schedule_app.command("run")
def schedule_run(
    until: Annotated[
        str | None, typer.Option("--until", help="Run what is due up to this moment (default now).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="First day to look for new watches on a first run (default: today)."),
    ] = None,
    party: PartyOption = "grid_operator",
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run every UC15 check due up to --until: start watches of connections that became
    contractless or out of service, stop those that got a contract, came back in service
    or were removed, and read (or ping) the rest every 5 days through the gate. Kept in
    the register: run it again, or after a restart, and nothing is read twice."""
    try:
        moment = _moment(until, "--until")
        first = None if since is None else parse_day(since, "--since")
        with open_gate(db, store, create=False, on_head=announce_head) as gate:
            report = run_schedule(gate, Party(party, Role.GRID_OPERATOR), moment, first)
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        f"UC15 until {to_local(moment):%Y-%m-%d %H:%M}: {report.checks} check(s), "
        f"{len(report.started)} watch(es) started, {len(report.stopped)} stopped"
    )
    for outcome, n in sorted(report.outcomes.items()):
        console.print(f"  {outcome}: {n}")


@schedule_app.command("list")
def schedule_show(
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every UC15 watch: group, since when, next check or why it stopped."""
    try:
        with open_gate(db, store, create=False) as gate:
            rows = schedule_list(gate)
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json({"purpose": uc15.PURPOSE, "watches": rows})
        return
    table = Table(title=f"UC15 watches: {len(rows)}")
    for col in ("EAN", "group", "since", "next check", "stopped", "why"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["ean"]),
            str(r["group"]),
            str(r["started_on"]),
            str(r["next_due"] or ""),
            str(r["stopped_on"] or ""),
            str(r["stop_reason"] or ""),
        )
    console.print(table)
