"""``meetpunt ingest`` and ``meetpunt retention``: the meter-data hub's commands (MTR-4..6).

Thin like the rest of the CLI: parse, call :mod:`meetpunt.app.hub`, print.
``meetpunt ingest PATH...`` ingests files (``ingest files`` is the same command spelled
out); ``meetpunt ingest mqtt`` subscribes to a broker.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from meetpunt.app.gate import open_gate
from meetpunt.app.hub import hub_store
from meetpunt.cli.common import (
    EXIT_REFUSED,
    DbOption,
    JsonOption,
    StoreOption,
    announce_head,
    error_body,
    fail,
    make_console,
    parse_day,
    require_at_least,
    show_error,
)
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import print_json
from meetpunt.meterdata.ingest import BatchReport
from meetpunt.privacy.model import Party, Role
from meetpunt.privacy.stewardship import read_quarantine
from meetpunt.register import open_register

if TYPE_CHECKING:
    from meetpunt.app.live import LiveSummary


class _FilesByDefault(TyperGroup):
    """``meetpunt ingest PATH...`` means ``meetpunt ingest files PATH...``, with the
    options of ``files`` before or after the paths (``ingest --kind K PATH``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        help_names = set(self.get_help_option_names(ctx))
        if args and args[0] not in help_names and self._first_word(args) not in self.commands:
            args = ["files", *args]
        return super().parse_args(ctx, args)

    def _first_word(self, args: list[str]) -> str | None:
        """The first argument that is neither an option of ``files`` nor its value."""
        takes_value = {
            name
            for param in self.commands["files"].params
            if param.param_type_name == "option"
            and not (getattr(param, "is_flag", False) or getattr(param, "count", False))
            for name in param.opts
        }
        words = iter(args)
        for word in words:
            if word == "--":
                return next(words, None)
            if not word.startswith("-") or word == "-":
                return word
            if word in takes_value:
                next(words, None)
        return None


ingest_app = typer.Typer(
    cls=_FilesByDefault,
    help="Ingest meter data: files (P1, CSV, Parquet, a twin folder) or a live MQTT feed.",
    no_args_is_help=True,
)
retention_app = typer.Typer(help="Retention of meter data (MTR-6).", no_args_is_help=True)

console = make_console()


def print_reports(reports: list[BatchReport], as_json: bool) -> None:
    """The ingest summary: per source accepted, duplicates, estimated, quarantined by rule.

    A source held back unwritten (``batch`` None: no row matched the register, MTR-5) is
    marked "not stored"; its refusals are not in the quarantine. A file refused whole
    (its ``error``) is marked "refused" with its rule, and its reason is printed below.
    """
    if as_json:
        for report in reports:
            print_json(report.as_dict())
        return
    table = Table(title="ingested")
    for column in ("source", "rows", "accepted", "duplicates", "estimated", "quarantined"):
        table.add_column(column, justify="left" if column == "source" else "right")
    refused: Counter[str] = Counter()
    for r in reports:
        quarantined = r.quarantined
        stored = r.batch is not None or r.already_ingested
        if stored:
            refused.update(quarantined)
        note = " (already ingested)" if r.already_ingested else "" if stored else " (not stored)"
        if r.error is not None:
            note = f" (refused: {r.error['rule']})"
        table.add_row(
            r.source + note,
            str(r.total("rows")),
            str(r.total("accepted")),
            str(r.total("duplicates")),
            str(r.total("estimated")),
            str(sum(quarantined.values())),
        )
    console.print(table)
    for rule, count in sorted(refused.items()):
        console.print(f"  quarantined {count} by {rule}")
    if refused:
        console.print("  see them with: meetpunt ingest quarantine")
    whole = [r for r in reports if r.error is not None]
    ingested = sum(1 for r in reports if r.batch is not None or r.already_ingested)
    if whole:
        console.print(f"  {ingested} file(s) ingested, {len(whole)} refused whole:")
        for r in whole:
            assert r.error is not None
            console.print(f"  refused {r.source}: {r.error['message']} [{r.error['rule']}]")
            if r.error.get("hint"):
                console.print(f"    hint: {r.error['hint']}")


def no_connection_matched(rows: int) -> dict[str, Any]:
    """The refusal of an ingest no row of which matched a connection in the register (an
    empty or another register), in the project's error shape ``{"error": {"rule",
    "message", "hint"}}``: MTR-5.unknown_connection, exit 1, nothing stored."""
    return error_body(
        "MTR-5.unknown_connection",
        f"no row matched a connection in the register ({rows} row(s) refused, nothing "
        "stored); import the register first (meetpunt register import)",
        "meetpunt register import REGISTER.csv..., or check that --db "
        "(MEETPUNT_DATABASE_URL) names the register of these meters; then ingest the "
        "same files again",
    )


@ingest_app.command("files")
def ingest_files(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (a twin's output).")],
    kind: Annotated[
        str | None, typer.Option(help="Kind of the files when their name does not say it.")
    ] = None,
    ean: Annotated[
        str | None, typer.Option(help="EAN of the connection a P1 capture belongs to.")
    ] = None,
    store: StoreOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Print each batch as it starts (to stderr).")
    ] = False,
) -> None:
    """Ingest meter-data files; each file is one batch in one transaction.

    Prints per file: rows, accepted, duplicates, estimated and quarantined by rule.
    Ingesting the same file again changes nothing. A file refused whole (a folder, not
    UTF-8, a duplicate column, damaged Parquet) is named with its rule while the other
    files go on; the command then exits 1.
    """
    from meetpunt.app.hub import ingest_paths, refused_files, unmatched_rows

    def begin(source: str) -> None:
        print(f"begin {source}", file=sys.stderr, flush=True)

    register = open_register(db)
    try:
        with hub_store(store) as opened:
            reports = ingest_paths(
                opened, register, paths, kind, ean, on_begin=begin if verbose else None
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    finally:
        register.dispose()
    print_reports(reports, as_json)
    refused = unmatched_rows(reports)
    if refused:
        show_error(no_connection_matched(refused), as_json)
        raise typer.Exit(EXIT_REFUSED)
    if refused_files(reports):  # the other files are in; exit 1 says one was not
        raise typer.Exit(EXIT_REFUSED)


@ingest_app.command("mqtt")
def ingest_mqtt(
    broker: Annotated[
        str, typer.Option(help="Broker URL mqtt://host[:port] (port 1883 by default).")
    ] = "mqtt://127.0.0.1:1883",
    topic: Annotated[
        str, typer.Option(help="Topic filter; the last level of a topic is the EAN.")
    ] = "meetpunt/p1/+",
    ean: Annotated[
        str | None, typer.Option(help="EAN of the connection of every message (topic ignored).")
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many messages.")
    ] = None,
    seconds: Annotated[
        float | None, typer.Option(min=0.001, help="Stop after this many seconds.")
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            help="Messages per batch at most; keep the broker's max_inflight_messages at "
            "least this (docs/mosquitto/meetpunt.conf).",
        ),
    ] = 1000,
    batch_seconds: Annotated[
        float, typer.Option(min=0.001, help="Seconds a message waits for its batch at most.")
    ] = 1.0,
    client_id: Annotated[
        str | None,
        typer.Option(help="MQTT client id (the broker session); default: one per topic and EAN."),
    ] = None,
    status_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds between status lines on stderr (rates, lag, broker drops); 0: none.",
        ),
    ] = 10.0,
    metrics: Annotated[
        Path | None,
        typer.Option(
            help="Prometheus text file, rewritten atomically at each status line.",
            dir_okay=False,
        ),
    ] = None,
    lag_limit: Annotated[
        float, typer.Option(min=0.0, help="Warn when lag p95 (receipt to stored) exceeds this, s.")
    ] = 30.0,
    fragment_seconds: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Seconds a telegram's first part waits for its rest (then MTR-2.incomplete).",
        ),
    ] = 10.0,  # io.mqtt.DEFAULT_FRAGMENT_SECONDS (not imported: aiomqtt at start-up)
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Print each batch once it is stored (to stderr).")
    ] = False,
    store: StoreOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest live P1 telegrams from an MQTT broker (QoS 1) in micro-batches (MTR-4).

    Each batch (all its meters) is one transaction; a message is acknowledged once all
    it carried is stored or quarantined. Runs until --max-messages or --seconds, or
    Ctrl-C / SIGTERM; then ingests what is pending and prints what the run did (totals,
    not one line per batch). Messages sent while it was away are delivered when it is
    back. Every --status-every seconds a status line goes to stderr (and --metrics),
    with a WARNING when lag grows or the broker reports dropped messages (issue 14).
    """
    from meetpunt.app.live import LiveSettings, ingest_live

    if metrics is not None and status_every == 0:
        raise typer.BadParameter("--metrics needs --status-every above 0")
    settings = LiveSettings(
        broker,
        topic,
        ean,
        max_messages,
        seconds,
        batch_size,
        batch_seconds,
        client_id,
        status_every=status_every or None,
        metrics=metrics,
        lag_limit=lag_limit,
        fragment_seconds=fragment_seconds,
    )

    def stored(report: BatchReport) -> None:
        note = " (already ingested)" if report.already_ingested else ""
        print(
            f"stored {report.source}{note}: {report.total('accepted')} accepted, "
            f"{sum(report.quarantined.values())} quarantined",
            file=sys.stderr,
            flush=True,
        )

    register = open_register(db)
    try:
        summary = ingest_live(
            register,
            store,
            settings,
            lambda line: print(line, file=sys.stderr, flush=True),
            on_report=stored if verbose else None,
        )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    finally:
        register.dispose()
    print_live_summary(summary, as_json)


def print_live_summary(summary: LiveSummary, as_json: bool) -> None:
    """What ``ingest mqtt`` did: the totals in the columns of ``ingest files`` (one
    line for the whole run; ``--json``: one object, a batch report's keys over the run
    plus messages, batches, seconds, how it stopped) and quarantined by rule."""
    if as_json:
        print_json(summary.as_dict())
        return
    totals = summary.totals
    table = Table(title="ingested")
    for column in ("source", "rows", "accepted", "duplicates", "estimated", "quarantined"):
        table.add_column(column, justify="left" if column == "source" else "right")
    table.add_row(
        f"{summary.source} ({summary.batches} batch(es))",
        str(totals.total("rows")),
        str(totals.total("accepted")),
        str(totals.total("duplicates")),
        str(totals.total("estimated")),
        str(sum(totals.quarantined.values())),
    )
    console.print(table)
    console.print(
        f"  stopped by {summary.stopped_by} after {summary.seconds:.1f} s: "
        f"{summary.messages} message(s) in {summary.batches} batch(es) "
        f"({summary.already_ingested} already ingested), "
        f"{summary.telegrams_stored} telegram(s) stored"
    )
    if summary.unacknowledged:
        console.print(
            f"  {summary.unacknowledged} message(s) left unacknowledged (a telegram's first "
            "part): the broker delivers them again to the next run"
        )
    for rule, count in sorted(totals.quarantined.items()):
        console.print(f"  quarantined {count} by {rule}")
    if totals.quarantined:
        console.print("  see them with: meetpunt ingest quarantine")


@ingest_app.command("completeness")
def ingest_completeness(
    day: Annotated[str, typer.Option("--at", "--day", help="Local day (YYYY-MM-DD).")],
    by: Annotated[str, typer.Option(help="Area: pc4 or municipality.")] = "pc4",
    store: StoreOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Share of quarter-hour values measured, measured by D+1 and billing-ready by D+5,
    per area (MTR-5)."""
    from meetpunt.app.hub import expected_areas
    from meetpunt.meterdata.completeness import completeness

    if by not in ("pc4", "municipality"):
        raise typer.BadParameter("--by is pc4 or municipality")
    local_day = parse_day(day, "--at")
    register = open_register(db, create=False)
    try:
        areas = expected_areas(register, local_day, by)
        with hub_store(store, create=False) as opened:
            found = completeness(opened, areas, local_day)
    finally:
        register.dispose()
    if as_json:
        for area in found:
            print_json(area.as_dict())
        return
    table = Table(title=f"quarter-hour completeness on {local_day}")
    for column in ("area", "connections", "expected", "measured", "D+1", "billing-ready D+5"):
        table.add_column(column, justify="left" if column == "area" else "right")
    for a in found:
        table.add_row(
            a.area,
            str(a.connections),
            str(a.expected),
            f"{a.share(a.measured):.1%}",
            f"{a.share(a.measured_by_d1):.1%}",
            f"{a.share(a.billing_ready_by_d5):.1%}",
        )
    console.print(table)


@ingest_app.command("quarantine")
def ingest_quarantine(
    store: StoreOption = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule ID.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many records (0 or more).")] = 50,
    party: Annotated[
        str, typer.Option(help="The grid operator reading them (GLN); the read is audited.")
    ] = "grid_operator",
    why: Annotated[
        str, typer.Option("--why", help="Why they are read (kept in the audit log).")
    ] = "",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List refused meter-data records with rule, reason and the raw record: a read for
    data stewardship, audited with the connections it shows (PRV-1, PRV-7)."""
    require_at_least(limit, 0, "--limit")
    try:
        with open_gate(db, store, create=False, on_head=announce_head) as gate:
            rows = read_quarantine(
                gate, Party(party, Role.GRID_OPERATOR), rule, limit, justification=why
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        for row in rows:
            print_json(row)
        return
    table = Table(title=f"{len(rows)} quarantined record(s)")
    for column in ("source", "record", "ean", "rule", "message", "resolved by batch"):
        table.add_column(column)
    for row in rows:
        resolved = "" if row["resolved_by"] is None else str(row["resolved_by"])
        table.add_row(
            *(str(row[c]) for c in ("source", "record", "ean", "rule", "message")), resolved
        )
    console.print(table)


@retention_app.command("run")
def retention_run(
    today: Annotated[
        str | None,
        typer.Option("--at", "--today", help="Run as if today were this date (YYYY-MM-DD)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what would be deleted; delete nothing."),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Confirm a large deletion (see meetpunt retention run)."),
    ] = False,
    store: StoreOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete daily readings older than 24 months or than the current contract (MTR-6),
    and copies made under a grant whose purpose has expired (PRV-5).

    A date after today is refused (MTR-6.future_date). A run that would delete more
    than 10,000 daily readings, or more than 10 % of them (and more than 100), is
    refused without --yes (MTR-6.large_deletion): look first with --dry-run.
    """
    from meetpunt.app.hub import retention
    from meetpunt.privacy.retention import delete_copies

    day = parse_day(today, "--at") if today else datetime.now(UTC).date()
    register = open_register(db, create=False)
    try:
        with hub_store(store, create=False) as opened:
            records = retention(opened, register, day, dry_run=dry_run, confirmed=yes)
        if dry_run:
            copies = []
        else:
            with register.session() as session:
                copies = delete_copies(session.db, datetime.now(UTC))
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    finally:
        register.dispose()
    if as_json:
        out: dict[str, Any] = {
            "daily_readings": [r.__dict__ for r in records],
            "copies": [c.__dict__ for c in copies],
        }
        if dry_run:
            out["dry_run"] = True
        print_json(out)
        return
    deleted = sum(r.rows for r in records)
    if dry_run:
        console.print(
            f"retention on {day} (dry run, nothing deleted): would delete {deleted} daily "
            f"reading(s) of {len(records)} connection(s)"
        )
        for r in records:
            console.print(f"  connection {r.connection}: {r.rows} before {r.cutoff}")
        return
    console.print(
        f"retention on {day}: deleted {deleted} daily reading(s) of {len(records)} "
        f"connection(s), logged in retention_log; deleted {len(copies)} expired "
        "copy(ies) of granted data, logged in the audit log"
    )
