"""``meetpunt usecase uc01|uc04|uc09 ...``: the approved use cases (UC1..UC15).

Thin: parses, opens a gate (:func:`meetpunt.app.gate.open_gate`), calls the use
case, prints a table or JSON. One way of showing things across the three commands: a
period is ``--from``/``--to`` (local days), a moment ``--at``; every time, outage IDs
included, is Europe/Amsterdam local time; every duration is :func:`duration_text`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from meetpunt.app.gate import open_gate
from meetpunt.cli.common import (
    DbOption,
    JsonOption,
    StoreOption,
    announce_head,
    fail,
    make_console,
    parse_day,
)
from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import print_json
from meetpunt.privacy.model import Party, Period, Role
from meetpunt.usecases.planned_works import PlannedWork, read_planned
from meetpunt.usecases.uc01_outage_localisation import (
    NONE_FOUND,
    PART,
    PLANNED,
    REVIEW,
    SINGLE,
    SUBSTATION,
    WHOLE,
    Uc01Result,
    localise,
)
from meetpunt.usecases.uc09_interruption_registration import Uc09Result, register_interruptions

usecase_app = typer.Typer(
    help="The grid operators' approved use cases (July 2025), each through the privacy gate.",
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
    """The period from local midnight of ``date_from`` to that of ``date_to`` (days as
    :func:`~meetpunt.cli.common.parse_day` takes them: CLI.date, CLI.date_range)."""
    first, last = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    return Period(local_midnight_utc(first), local_midnight_utc(last))  # the gate: PRV-1


def _when(moment: datetime) -> str:
    """A moment as the tables show it: Europe/Amsterdam wall-clock time, to the minute."""
    return to_local(moment).strftime("%Y-%m-%d %H:%M")


def duration_text(value: timedelta | float | None) -> str:
    """The one duration format of the use-case commands (a number is seconds):
    ``"45 s"`` under a minute, ``"12 min"`` under an hour, ``"1 h 05 min"`` from an
    hour; ``"< 1 s"`` for a positive value under a second and ``"-"`` for none.

    Truncated, never rounded up: a 3 h 59 min 50 s interruption must not read as the
    4 hours that make a customer owed compensation (MKT-8, UC4)."""
    if value is None:
        return "-"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not math.isfinite(seconds):
        return "-"
    if seconds < 0:
        return f"-{duration_text(-seconds)}"
    if 0 < seconds < 1:
        return "< 1 s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    hours, minutes = divmod(whole // 60, 60)
    return f"{minutes} min" if hours == 0 else f"{hours} h {minutes:02d} min"


def _from_minutes(value: float | None) -> str:
    """A UC9 index given in minutes (CAIDI, SAIDI) in :func:`duration_text`'s format."""
    return duration_text(None if value is None else value * 60)


_UTC_ID = re.compile(r"(?P<prefix>.*)-(?P<stamp>\d{8}T\d{6})Z")


def local_outage_id(outage_id: str) -> str:
    """An outage ID (UC9's ``<substation>-<UTC start>Z``, reused by UC4) as shown to a
    person: its start in Europe/Amsterdam time with the UTC offset, e.g.
    ``OS001-20250605T141000+0200``. The offset keeps the two 02:30's of the autumn DST
    change apart, so the shown ID is as unique as the ID itself. The use cases key on
    the UTC ID (``--json`` keeps it); any other text is shown as it is."""
    match = _UTC_ID.fullmatch(outage_id)
    if match is None:
        return outage_id
    start = datetime.strptime(match["stamp"], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return f"{match['prefix']}-{to_local(start):%Y%m%dT%H%M%S%z}"


def _show_uc09(result: Uc09Result) -> None:
    table = Table(title=f"UC9: {len(result.outages)} outage(s), local time")
    table.add_column("outage", no_wrap=True)
    table.add_column("substation")
    table.add_column("feeders")
    table.add_column("customers", justify="right")
    table.add_column("start", no_wrap=True)
    table.add_column("end", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("planned")
    for o in result.outages:
        table.add_row(
            local_outage_id(o.id),
            o.substation,
            ", ".join(o.feeders),
            str(o.affected),
            _when(o.start),
            _when(o.end),
            duration_text(o.duration_s),
            "planned work" if o.planned is not None else "",
        )
    console.print(table)
    f = result.figures
    figures = Table(title="Reliability, unplanned interruptions over 3 minutes (IEEE 1366 style)")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    for name, value in (
        ("customers served (N)", f"{f.customers_served:,}"),
        ("customer interruptions (CI)", f"{f.customer_interruptions:,}"),
        ("customer minutes lost (CML)", f"{f.customer_minutes_lost:,.1f}"),
        ("SAIFI = CI / N", "-" if f.saifi is None else f"{f.saifi:.4f}"),
        ("CAIDI = CML / CI", _from_minutes(f.caidi_min)),
        ("SAIDI = CML / N (period)", _from_minutes(f.saidi_min)),
        ("SAIDI per year", _from_minutes(f.saidi_min_per_year)),
    ):
        figures.add_row(name, value)
    console.print(figures)
    if result.planned_figures is not None and result.planned_figures.customer_interruptions:
        p = result.planned_figures
        console.print(
            f"planned (counted apart): {p.customer_interruptions:,} customer interruptions, "
            f"{p.customer_minutes_lost:,.1f} customer minutes"
        )
    console.print(f"source: {result.outages[0].source if result.outages else 'none logged'}")
    for d in result.doubted:
        console.print(
            f"set aside for review [{d.as_dict()['rule']}]: {d.ean} logged "
            f"{duration_text(d.duration_s)} ({_when(d.start)} - {_when(d.end)}), "
            f"{duration_text(d.alone_s)} of it while its feeder {d.feeder} had voltage",
            highlight=False,
        )


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
    planned: PlannedOption = None,
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC9 Interruption registration: outages and reliability figures from the meters'
    power failure logs, for Nestor. Unplanned interruptions longer than 3 minutes count;
    outages the planned works (--planned) cover are registered and counted apart."""
    period = _days(date_from, date_to)
    try:
        works = read_planned(planned) if planned is not None else []
        with open_gate(db, store, create=False, on_head=announce_head) as gate:
            result = register_interruptions(
                gate,
                Party(party, Role.GRID_OPERATOR),
                period,
                datetime.now(UTC),
                trigger,
                area,
                works,
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(result.as_dict())
    else:
        _show_uc09(result)


EXTENT = {
    SINGLE: "single connection",
    PART: "part of a feeder",
    WHOLE: "whole feeder",
    SUBSTATION: "substation (every feeder)",
    PLANNED: "planned work",
    NONE_FOUND: "no grid outage here (own installation)",
    REVIEW: "on review (the meters cannot decide)",
}
"""UC1's classifications as the verdict line names the extent."""


def _planned_until(result: Uc01Result, works: Sequence[PlannedWork]) -> str | None:
    """For a ``planned_work`` verdict (UC1): when the work on the reporter's feeder
    ends and how long after the report, which is what the customer is told."""
    if result.classification != PLANNED:
        return None
    ends = [
        w.end for w in works if w.covers_at(result.substation, result.verdict.feeder, result.at)
    ]
    if not ends:
        return None
    end = max(ends)
    return f"planned work until {_when(end)} ({duration_text(end - result.at)} after the report)"


def _show_uc01(result: Uc01Result, works: Sequence[PlannedWork], details: bool) -> None:
    """UC1's verdict first: the extent, the feeder, whom to send and why; then the
    dark meters per feeder; the per-meter table only with ``details``."""
    extent = EXTENT.get(result.classification, result.classification)
    console.print(
        f"UC1 verdict: [bold]{extent}[/bold] (feeder {result.verdict.feeder or '?'}, "
        f"substation {result.substation or '?'})"
    )
    nobody = "nobody yet: a person reviews" if result.classification == REVIEW else "nobody"
    console.print(f"send: [bold]{result.crew or nobody}[/bold]")
    console.print(
        f"report: {result.ean} at {_when(result.at)} (local), {result.trigger}",
        highlight=False,
    )
    console.print("why:")
    for line in result.verdict.evidence:
        console.print(f"- {line}", highlight=False)
    for line in result.suspected_gis_errors:
        console.print(f"- suspected GIS feeder error: {line}", highlight=False)
    until = _planned_until(result, works)
    if until is not None:
        console.print(f"- {until}", highlight=False)
    counts = Table(title=f"Substation {result.substation or '?'}: dark meters per feeder")
    counts.add_column("feeder")
    for name in ("dark", "lit", "cannot be asked"):
        counts.add_column(name, justify="right")
    for f in result.feeders:
        counts.add_row(f.feeder, str(f.dark), str(f.lit), str(f.unknown))
    console.print(counts)
    if not details:
        console.print(f"{len(result.asked)} meter(s) asked; --details lists each answer.")
        return
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


@usecase_app.command("uc01")
def uc01(
    ean: Annotated[str, typer.Option(help="The reporting connection (EAN).")],
    at: Annotated[
        str,
        typer.Option(
            "--at",
            help="The moment of the report (ISO 8601 with its UTC offset, "
            "e.g. 2025-06-05T14:10:00+02:00).",
        ),
    ],
    trigger: Annotated[
        str, typer.Option(help="The outage report or suspicion this answers.")
    ] = "outage report",
    planned: PlannedOption = None,
    details: Annotated[
        bool, typer.Option("--details", help="Also list every meter asked and its answer.")
    ] = False,
    party: PartyOption = "grid_operator",
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC1 Outage localisation: voltage presence (yes/no) of the reporting meter and the
    meters on its feeder and substation; single connection or cable fault, and whom to
    send. Feeders out for planned work (--planned) are not taken as part of a fault.
    Prints the verdict first; --details adds the per-meter table (--json always has it)."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--at") from exc
    if moment.tzinfo is None:
        raise typer.BadParameter("give the time with its UTC offset", param_hint="--at")
    try:
        works = read_planned(planned) if planned is not None else []
        with open_gate(db, store, create=False, on_head=announce_head) as gate:
            result = localise(gate, Party(party, Role.GRID_OPERATOR), ean, moment, trigger, works)
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(result.as_dict())
    else:
        _show_uc01(result, works, details)


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
        with open_gate(db, store, create=False, on_head=announce_head) as gate:
            result = compensate(
                gate, Party(party, Role.GRID_OPERATOR), period, datetime.now(UTC), trigger, works
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if letters is not None:
        letters.mkdir(parents=True, exist_ok=True)
        for item in result.letters:
            name = f"{item.ean}_{local_outage_id(item.outage_id)}.txt"
            (letters / name).write_text(item.text, encoding="utf-8")
    if as_json:
        print_json(result.as_dict())
        return
    table = Table(title=f"UC4: {len(result.payments)} payment(s), total EUR {result.total}")
    for name in ("EAN", "customer", "start", "duration", "class", "amount"):
        table.add_column(name)
    for p in result.payments:
        table.add_row(
            p.ean,
            p.customer,
            _when(p.start),
            duration_text(p.duration),
            p.compensation.class_id,
            f"{p.amount}",
        )
    console.print(table)
    review = Table(title=f"UC4: {len(result.reviews)} connection(s) to review")
    for name in ("EAN", "outage", "reason"):
        review.add_column(name)
    for r in result.reviews:
        review.add_row(r.ean, local_outage_id(r.outage_id), r.reason)
    console.print(review)
