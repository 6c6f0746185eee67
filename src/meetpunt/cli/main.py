"""The ``meetpunt`` command (Typer): thin, calls the same functions the API will.

Every command has ``--help`` and ``--home``; commands that scripts use have ``--json``.
Exit codes: 0 = all good, 1 = something was refused (an invalid EAN, a refused SAP, a
refused import row; the error names the rule), 2 = the command could not run (a usage
error, a database that cannot be reached, a bad URL, a missing store file).
"""

from __future__ import annotations

import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import meetpunt.cli.uc07  # noqa: F401  (registers `usecase uc07`, issue 19)
from meetpunt.app.register import import_register_files, register_at
from meetpunt.cli import uc_grid_checks as _uc_grid_checks  # noqa: F401 - registers uc05, uc12
from meetpunt.cli import uc_voltage  # noqa: F401 - registers uc02, uc03 (issue 18)
from meetpunt.cli.audit import audit_app
from meetpunt.cli.common import (
    DbOption,
    JsonOption,
    MeetpuntGroup,
    add_home_option,
    fail,
    make_console,
    parse_day,
    progress_bar,
    require_at_least,
    require_folder,
)
from meetpunt.cli.consent import consent_app
from meetpunt.cli.market import market_app
from meetpunt.cli.meterdata import ingest_app, retention_app
from meetpunt.cli.p1 import p1_app
from meetpunt.cli.party import party_app
from meetpunt.cli.privacy import privacy_app
from meetpunt.cli.serve import serve
from meetpunt.cli.uc10_uc15 import schedule_app  # issue 20: uc10, uc15, schedule
from meetpunt.cli.usecases import usecase_app
from meetpunt.domain.allocation import SapRequest
from meetpunt.domain.capacity import Commodity, parse_electricity_capacity
from meetpunt.domain.ean import check_ean, ean_from_serial
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import print_json
from meetpunt.register import open_register
from meetpunt.register.csvio import ImportReport, export_register
from meetpunt.register.report import describe_point

app = typer.Typer(
    cls=MeetpuntGroup,
    help="meetpunt: smart-meter data platform for Dutch grid operators.\n\n"
    "Every command takes --home DIR (or MEETPUNT_HOME): the folder of the embedded "
    "register, the meter-data store and the demo's files (default ~/.meetpunt).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ean_app = typer.Typer(help="EAN codes of connections and allocation points (REG-1).")
register_app = typer.Typer(help="The connection register (REG-1..8).", no_args_is_help=True)
app.add_typer(ean_app, name="ean", no_args_is_help=True)
app.add_typer(register_app, name="register")
twin_app = typer.Typer(help="The grid twin: a simulated region with known truth.")
app.add_typer(twin_app, name="twin", no_args_is_help=True)
app.add_typer(p1_app, name="p1", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(retention_app, name="retention")
app.add_typer(privacy_app, name="privacy")
app.add_typer(consent_app, name="consent")
app.add_typer(audit_app, name="audit")
app.add_typer(usecase_app, name="usecase")
app.add_typer(schedule_app, name="schedule")
app.add_typer(party_app, name="party")
app.add_typer(market_app, name="market")
app.command("serve")(serve)

console = make_console()


class FaultMode(StrEnum):
    """The twin's outage modes (issue 16; see docs/twin.md)."""

    showcase = "showcase"
    field = "field"
    stress = "stress"


REALITIES_HELP = (
    "Meter realities (issue 16): clocks that drift, meters offline for days, failure "
    "logs that overflow, a meter replaced during an outage. Default: on with --faults "
    "field and stress, off with showcase."
)
RealitiesOption = Annotated[
    bool | None,
    typer.Option("--meter-realities/--no-meter-realities", help=REALITIES_HELP),
]
FAULTS_HELP = (
    "Outages: 'showcase' (the demo's fixed mix), 'field' (random, at the national rates "
    "of the twin_outages rule file; often quiet), 'stress' (many, with every hard case)."
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"meetpunt {version('meetpunt')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and stop."
        ),
    ] = False,
) -> None:
    """The root: ``--version``; the commands are the groups below."""


@ean_app.command("check")
def ean_check(
    codes: Annotated[list[str], typer.Argument(help="EAN codes to check.")],
    as_json: JsonOption = False,
) -> None:
    """Check EAN codes (18 digits, GS1 check digit); exit 1 when any is invalid."""
    results = [(code, check_ean(code)) for code in codes]
    for code, finding in results:
        if as_json:
            print_json(
                {
                    "ean": code,
                    "valid": finding is None,
                    "rule": finding.rule if finding else None,
                    "message": finding.message if finding else None,
                }
            )
        elif finding is None:
            console.print(f"[green]valid[/green]    {code}")
        else:
            console.print(f"[red]invalid[/red]  {code}  {finding.rule}: {finding.message}")
    if any(finding is not None for _, finding in results):
        raise typer.Exit(1)


@ean_app.command("generate")
def ean_generate(
    prefix: Annotated[str, typer.Option(help="The operator's digit prefix.")] = "87123450",
    start: Annotated[int, typer.Option(help="First serial number.")] = 1,
    count: Annotated[int, typer.Option(min=1, help="How many codes.")] = 1,
) -> None:
    """Print valid EAN codes made from a prefix and consecutive serial numbers."""
    try:
        for serial in range(start, start + count):
            typer.echo(ean_from_serial(prefix, serial))
    except MeetpuntError as exc:
        raise fail(exc, False) from exc


@register_app.command("import")
def register_import(
    files: Annotated[list[Path], typer.Argument(help="Register CSV files.", exists=True)],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import connections, secondary allocation points and contracts from CSV.

    Files are imported connections first, then secondary points, then contracts. A bad
    row is reported with its line and rule and kept in quarantine; good rows go in.
    Exit 1 when any row was refused.
    """
    refused = 0

    def show(path: Path, report: ImportReport) -> None:
        nonlocal refused
        refused += len(report.refused)
        if as_json:
            print_json(report.as_dict())
            return
        kind = report.kind.value if report.kind else "unknown"
        console.print(
            f"{path}: {kind}, {report.rows} rows: {report.inserted} new, "
            f"{report.changed} changed, {report.unchanged} unchanged, "
            f"{len(report.refused)} refused"
        )
        for r in report.refused:
            console.print(f"  [red]line {r.line}[/red] {r.rule}: {r.message}")

    def waiting(path: Path) -> None:
        typer.echo(
            f"{path}: the register is busy (another import?); waiting for it to finish",
            err=True,
        )

    try:
        with register_at(db) as register:
            import_register_files(register, files, show, waiting)
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if refused:
        raise typer.Exit(1)


@register_app.command("export")
def register_export(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the CSV files to.")],
    db: DbOption = None,
) -> None:
    """Export the whole register, history included, as importable CSV files."""
    require_folder(out, "--out")
    register = open_register(db, create=False)
    try:
        with register.session() as session:
            written = export_register(session, out)
    finally:
        register.dispose()
    for kind, path in written.items():
        console.print(f"{kind.value}: {path}")


@register_app.command("show")
def register_show(
    ean: Annotated[str, typer.Argument(help="EAN of a connection or allocation point.")],
    at: Annotated[
        str | None, typer.Option(help="The date to look at (YYYY-MM-DD); default today.")
    ] = None,
    commodity: Annotated[
        Commodity | None, typer.Option(help="Needed only when the EAN is both.")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a connection or allocation point as it was on a date, with its history."""
    day = _parse_day(at)
    register = open_register(db, create=False)
    try:
        with register.session() as session:
            described = describe_point(session, ean, day, commodity)
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    finally:
        register.dispose()
    if as_json:
        print_json(described)
        return
    _show_table(described)


def _show_table(described: dict[str, Any]) -> None:
    table = Table(title=f"{described['ean']} on {described['at']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in described.items():
        if key in ("history", "secondary_allocation_points", "cost_lines", "status_history"):
            continue
        table.add_row(key, _cell(value))
    console.print(table)
    for key in ("secondary_allocation_points", "cost_lines", "history", "status_history"):
        rows = described.get(key)
        if rows:
            sub = Table(title=key.replace("_", " "))
            for column in rows[0]:
                sub.add_column(column)
            for row in rows:
                sub.add_row(*(_cell(v) for v in row.values()))
            console.print(sub)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, ""))
    return "" if value is None else str(value)


def _parse_day(text: str | None, option: str = "--at") -> date:
    if text is None:
        return date.today()
    return parse_day(text, option)


@register_app.command("request-sap")
def register_request_sap(
    primary_ean: Annotated[str, typer.Argument(help="EAN of the connection (primary point).")],
    capacity: Annotated[str, typer.Option(help="Capacity of the extra point, e.g. 1x40.")],
    same_cabinet: Annotated[
        bool,
        typer.Option("--same-cabinet/--other-cabinet", help="Where the extra meter goes."),
    ] = True,
    woz: Annotated[str | None, typer.Option("--woz", help="WOZ object it will serve.")] = None,
    residential: Annotated[bool, typer.Option(help="Used for housing.")] = False,
    interconnected: Annotated[
        bool, typer.Option(help="Installations behind the points are connected.")
    ] = False,
    purpose: Annotated[str, typer.Option(help="What it is for (charge point, ...).")] = "",
    on: Annotated[
        str | None, typer.Option("--at", "--on", help="Request date (YYYY-MM-DD); default today.")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Request a secondary allocation point (REG-5); exit 0 granted, 1 refused."""
    day = _parse_day(on)
    parsed = parse_electricity_capacity(capacity)
    if isinstance(parsed, Finding):
        result: dict[str, Any] = {"granted": False, "ean": None, "reasons": [parsed.as_dict()]}
    else:
        request = SapRequest(
            capacity=parsed,
            same_cabinet=same_cabinet,
            woz_object_id=woz,
            residential=residential,
            interconnected=interconnected,
            purpose=purpose,
        )
        register = open_register(db, create=False)
        try:
            with register.session() as session:
                result = session.request_sap(primary_ean, request, day).as_dict()
        finally:
            register.dispose()
    if as_json:
        print_json(result)
    elif result["granted"]:
        console.print(f"[green]granted[/green]: extra metering point {result['ean']}")
    else:
        console.print("[red]refused[/red]:")
        for reason in result["reasons"]:
            console.print(f"  {reason['rule']}: {reason['message']}")
    if not result["granted"]:
        raise typer.Exit(1)


@register_app.command("quarantine")
def register_quarantine(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List the import records the register refused, with their reasons."""
    register = open_register(db, create=False)
    try:
        with register.session() as session:
            records = session.quarantined()
    finally:
        register.dispose()
    if as_json:
        print_json([r.__dict__ for r in records])
        return
    table = Table(title=f"{len(records)} quarantined record(s)")
    for column in ("source", "line", "rule", "message"):
        table.add_column(column)
    for r in records:
        table.add_row(r.source, str(r.line), r.rule, r.message)
    console.print(table)


@twin_app.command("generate")
def twin_generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the twin to.")],
    connections: Annotated[int, typer.Option(min=10, help="Electricity connections.")] = 1000,
    days: Annotated[int, typer.Option(min=1, max=400, help="Days to simulate.")] = 30,
    start: Annotated[str, typer.Option(help="First local day (YYYY-MM-DD).")] = "2025-06-02",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same output.")] = 1,
    faults: Annotated[FaultMode, typer.Option(help=FAULTS_HELP)] = FaultMode.showcase,
    meter_realities: RealitiesOption = None,
) -> None:
    """Simulate a region: register, meter data (Parquet), P1 telegrams and the truth."""
    from meetpunt.twin.generate import TwinSettings, generate

    require_folder(out, "--out")
    require_at_least(seed, 0, "--seed")
    settings = TwinSettings(
        connections, days, _parse_day(start, "--start"), seed, faults.value, meter_realities
    )
    with progress_bar(console) as bar:
        task = bar.add_task("twin", total=1.0)

        def report(stage: str, done: float) -> None:
            bar.update(task, description=stage, completed=done)

        run = generate(settings, out, report)
    rows = {k: v.get("rows") for k, v in run.files.items() if "rows" in v}
    console.print(
        f"twin of {connections} connections x {days} days (seed {seed}) written to {out}: "
        f"{len(run.files)} files, {run.power_flows} power flows ({run.trip_power_flows} of "
        f"them after inverter trips, {run.trip_solver_seconds:.1f} s)"
    )
    table = Table(title="seconds per stage")
    for stage in run.seconds:
        table.add_column(stage)
    table.add_row(*(f"{v:.1f}" for v in run.seconds.values()))
    console.print(table)
    console.print(f"quarter-hour rows: {rows.get('meterdata/quarter_hours.parquet')}")


@app.command("demo")
def demo(
    connections: Annotated[int, typer.Option(min=50, help="Electricity connections.")] = 1000,
    days: Annotated[int, typer.Option(min=2, max=92, help="Days to simulate.")] = 30,
    start: Annotated[str, typer.Option(help="First local day (YYYY-MM-DD).")] = "2025-06-02",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same region.")] = 1,
    faults: Annotated[FaultMode, typer.Option(help=FAULTS_HELP)] = FaultMode.showcase,
    meter_realities: RealitiesOption = None,
    register_example: Annotated[
        bool,
        typer.Option(
            "--register-example",
            help="Instead: walk through the small example register (REG-5 decisions).",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the run as one JSON object (settings, steps, per use case what "
            "was found and its accuracy against the truth); progress goes to stderr.",
        ),
    ] = False,
) -> None:
    """Run the main job: generate a region, ingest it, run UC1, UC4 and UC9 through the
    privacy gate, score them against the twin's truth and write an HTML report."""
    from meetpunt.demo.chain import DemoSettings, run_demo
    from meetpunt.demo.register_example import run_register_example
    from meetpunt.demo.summary import as_json as run_as_json
    from meetpunt.demo.summary import show
    from meetpunt.register.engine import meetpunt_home

    folder = meetpunt_home() / "demo"
    require_at_least(seed, 0, "--seed")
    try:
        if register_example:
            run_register_example(console, folder)
            return
        settings = DemoSettings(
            folder,
            connections,
            days,
            _parse_day(start, "--start"),
            seed,
            faults.value,
            meter_realities,
        )
        out = make_console(stderr=True) if as_json else console
        out.rule("[bold]meetpunt demo[/bold]: twin -> hub -> privacy gate -> the use cases")
        run = run_demo(out, settings)
        if as_json:
            print_json(run_as_json(run))
        else:
            show(console, run, _program())
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc


def _program() -> str:
    """How the user called us, for the hints we print."""
    return sys.argv[0] if Path(sys.argv[0]).name == "meetpunt" else "meetpunt"


add_home_option(app)


def main() -> None:
    """Entry point of the ``meetpunt`` console script."""
    app()
