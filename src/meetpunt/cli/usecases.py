"""``meetpunt usecase uc01|uc04|uc09 ...``: the approved use cases of seed 001.

Thin: parses, opens a gate (:func:`meetpunt.app.gate.open_gate`), calls the use
case, prints a table or JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from meetpunt.app.gate import open_gate
from meetpunt.cli.common import DbOption, JsonOption, StoreOption, make_console
from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.errors import MeetpuntError
from meetpunt.privacy.model import Party, Period, Role
from meetpunt.usecases.planned_works import read_planned
from meetpunt.usecases.uc01_outage_localisation import Uc01Result, localise
from meetpunt.usecases.uc09_interruption_registration import Uc09Result, register_interruptions

usecase_app = typer.Typer(
    help="The approved use cases (seed 001), each through the privacy gate.",
    no_args_is_help=True,
)
console = make_console()


FromOption = Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, local).")]
ToOption = Annotated[str, typer.Option("--to", help="Day after the last (exclusive).")]
PartyOption = Annotated[str, typer.Option(help="The grid operator asking (GLN).")]
PlannedOption = Annotated[
    Path | None,
    typer.Option(help="CSV of planned works: substation,feeder,start,end (ISO 8601)."),
]


def _days(date_from: str, date_to: str) -> Period:
    """The period from local midnight of ``date_from`` to that of ``date_to``."""
    try:
        return Period(
            local_midnight_utc(date.fromisoformat(date_from)),
            local_midnight_utc(date.fromisoformat(date_to)),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _fail(exc: MeetpuntError, as_json: bool) -> typer.Exit:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "error": str(exc),
                    "rules": list(exc.rules),
                    "reasons": [f.as_dict() for f in exc.findings],
                }
            )
        )
    else:
        console.print(f"[red]refused:[/red] {exc}")
    return typer.Exit(1)


def _when(moment: datetime) -> str:
    return to_local(moment).strftime("%Y-%m-%d %H:%M")


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _show_uc09(result: Uc09Result) -> None:
    table = Table(title=f"UC9: {len(result.outages)} outage(s), local time")
    table.add_column("outage", no_wrap=True)
    table.add_column("substation")
    table.add_column("feeders")
    table.add_column("customers", justify="right")
    table.add_column("start", no_wrap=True)
    table.add_column("end", no_wrap=True)
    table.add_column("minutes", justify="right")
    for o in result.outages:
        table.add_row(
            o.id,
            o.substation,
            ", ".join(o.feeders),
            str(o.affected),
            _when(o.start),
            _when(o.end),
            f"{o.duration_s / 60:,.1f}",
        )
    console.print(table)
    f = result.figures
    figures = Table(title="Reliability (IEEE 1366 style)")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    for name, value in (
        ("customers served (N)", f"{f.customers_served:,}"),
        ("customer interruptions (CI)", f"{f.customer_interruptions:,}"),
        ("customer minutes lost (CML)", f"{f.customer_minutes_lost:,.1f}"),
        ("SAIFI = CI / N", "-" if f.saifi is None else f"{f.saifi:.4f}"),
        ("CAIDI = CML / CI (min)", _minutes(f.caidi_min)),
        ("SAIDI = CML / N (min, period)", _minutes(f.saidi_min)),
        ("SAIDI per year (min)", _minutes(f.saidi_min_per_year)),
    ):
        figures.add_row(name, value)
    console.print(figures)
    console.print(f"source: {result.outages[0].source if result.outages else 'none logged'}")


@usecase_app.command("uc09")
def uc09(
    date_from: FromOption,
    date_to: ToOption,
    area: Annotated[
        str | None, typer.Option(help="Only this municipality or postcode-4 area.")
    ] = None,
    trigger: Annotated[
        str, typer.Option(help="The outage incident this registration answers.")
    ] = "interruption registration for Nestor",
    party: PartyOption = "grid_operator",
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC9 Interruption registration: outages and reliability figures from the meters'
    power failure logs, for Nestor."""
    period = _days(date_from, date_to)
    try:
        with open_gate(db, store) as gate:
            result = register_interruptions(
                gate,
                Party(party, Role.GRID_OPERATOR),
                period,
                datetime.now(UTC),
                trigger,
                area,
            )
    except MeetpuntError as exc:
        raise _fail(exc, as_json) from exc
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        _show_uc09(result)


def _show_uc01(result: Uc01Result) -> None:
    table = Table(title=f"UC1: meters asked at {_when(result.at)} (local), {result.trigger}")
    table.add_column("feeder", no_wrap=True)
    table.add_column("meter (EAN)", no_wrap=True)
    table.add_column("why asked")
    table.add_column("answer")
    colour = {True: "green", False: "red", None: "dim"}
    for m in sorted(result.asked, key=lambda m: (m.feeder, m.reason != "reporting meter", m.ean)):
        feeder = (
            m.feeder
            if m.feeder == m.registered_feeder
            else f"{m.feeder} (reg. {m.registered_feeder})"
        )
        table.add_row(feeder, m.ean, m.reason, f"[{colour[m.voltage]}]{m.answer}[/]")
    console.print(table)
    counts = Table(title=f"Substation {result.substation or '?'}: dark meters per feeder")
    counts.add_column("feeder")
    for name in ("dark", "lit", "cannot be asked"):
        counts.add_column(name, justify="right")
    for f in result.feeders:
        counts.add_row(f.feeder, str(f.dark), str(f.lit), str(f.unknown))
    console.print(counts)
    for line in result.verdict.evidence:
        console.print(f"- {line}")
    for line in result.suspected_gis_errors:
        console.print(f"- suspected GIS feeder error: {line}")
    crew = result.crew or "nobody"
    console.print(f"verdict: [bold]{result.classification}[/bold]; send: [bold]{crew}[/bold]")


@usecase_app.command("uc01")
def uc01(
    ean: Annotated[str, typer.Option(help="The reporting connection (EAN).")],
    at: Annotated[str, typer.Option(help="When (ISO 8601 with offset).")],
    trigger: Annotated[
        str, typer.Option(help="The outage report or suspicion this answers.")
    ] = "outage report",
    planned: PlannedOption = None,
    party: PartyOption = "grid_operator",
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC1 Outage localisation: voltage presence (yes/no) of the reporting meter and the
    meters on its feeder and substation; single connection or cable fault, and whom to
    send. Feeders out for planned work (--planned) are not taken as part of a fault."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--at") from exc
    if moment.tzinfo is None:
        raise typer.BadParameter("give the time with its UTC offset", param_hint="--at")
    try:
        works = read_planned(planned) if planned is not None else []
        with open_gate(db, store) as gate:
            result = localise(gate, Party(party, Role.GRID_OPERATOR), ean, moment, trigger, works)
    except MeetpuntError as exc:
        raise _fail(exc, as_json) from exc
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        _show_uc01(result)


@usecase_app.command("uc04")
def uc04(
    date_from: FromOption,
    date_to: ToOption,
    planned: PlannedOption = None,
    letters: Annotated[
        Path | None, typer.Option(help="Write one Dutch letter per payment into this folder.")
    ] = None,
    trigger: Annotated[
        str, typer.Option(help="The outage incident this compensation answers.")
    ] = "outage incident: compensation",
    party: PartyOption = "grid_operator",
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC4 Outage compensation: who is owed what (MKT-8) from the power failure logs,
    planned works left out; a payment list, a review list and letters."""
    from meetpunt.usecases.uc04_outage_compensation import compensate

    period = _days(date_from, date_to)
    try:
        works = read_planned(planned) if planned is not None else []
        with open_gate(db, store) as gate:
            result = compensate(
                gate, Party(party, Role.GRID_OPERATOR), period, datetime.now(UTC), trigger, works
            )
    except MeetpuntError as exc:
        raise _fail(exc, as_json) from exc
    if letters is not None:
        letters.mkdir(parents=True, exist_ok=True)
        for item in result.letters:
            (letters / f"{item.ean}_{item.outage_id}.txt").write_text(item.text, encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
        return
    table = Table(title=f"UC4: {len(result.payments)} payment(s), total EUR {result.total}")
    for name in ("EAN", "customer", "start", "duration", "class", "amount"):
        table.add_column(name)
    for p in result.payments:
        minutes = p.duration.total_seconds() / 60
        table.add_row(
            p.ean,
            p.customer,
            _when(p.start),
            f"{minutes:,.0f} min",
            p.compensation.class_id,
            f"{p.amount}",
        )
    console.print(table)
    review = Table(title=f"UC4: {len(result.reviews)} connection(s) to review")
    for name in ("EAN", "outage", "reason"):
        review.add_column(name)
    for r in result.reviews:
        review.add_row(r.ean, r.outage_id, r.reason)
    console.print(review)
