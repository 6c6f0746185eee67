"""``meetpunt usecase uc02|uc03``: voltage quality monitoring and seasonal analysis (issue 18).

Registered on :data:`meetpunt.cli.usecases.usecase_app` (imported by ``cli/main.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from meetpunt import rulebook
from meetpunt.app.gate import open_gate
from meetpunt.cli.common import (
    DbOption,
    JsonOption,
    StoreOption,
    announce_head,
    fail,
    input_error,
)
from meetpunt.cli.usecases import (
    FromOption,
    PartyOption,
    ToOption,
    _days,
    _when,
    console,
    usecase_app,
)
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import print_json
from meetpunt.privacy.model import Party, Role
from meetpunt.usecases.uc02_voltage_quality import Uc02Result, monitor_voltage_quality
from meetpunt.usecases.uc03_seasonal import HIGH, INVERTER, LOW, Uc03Result, analyse_feeder

OperatorOption = Annotated[
    str | None,
    typer.Option(help="Whose inverter limit applies: Enexis, Stedin or Liander (rule file)."),
]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="The clock the gate decides at (ISO 8601 with its UTC offset, e.g. "
        "2025-07-01T09:00:00+02:00); now when left out. A finding or window is judged "
        "at this moment, as the demo does on the twin's 2025 data.",
    ),
]


AT_HINT = "give the moment with its UTC offset, e.g. --at 2025-07-01T09:00:00+02:00"


def gate_moment(at: str | None) -> datetime:
    """``--at`` as an aware UTC moment, or now (UC2, UC3, UC5, UC12: the gate's clock).
    Not a time, or one without its UTC offset (it would be read in the machine's zone),
    is refused (``CLI.at``)."""
    if at is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError as exc:
        raise input_error("CLI.at", f"--at {at!r} is not an ISO 8601 time: {exc}", AT_HINT) from exc
    if moment.tzinfo is None:
        raise input_error("CLI.at", f"--at {at!r} has no UTC offset", AT_HINT)
    return moment.astimezone(UTC)


def gate_clock(at: str | None) -> Callable[[], datetime] | None:
    """The gate's clock for ``--at``: the moment itself (the gate judges a finding's
    expiry and a period's start by its clock, the request's ``at`` by the same moment),
    or None for the wall clock."""
    if at is None:
        return None
    moment = gate_moment(at)
    return lambda: moment


def _show_uc02(result: Uc02Result, top: int = 15) -> None:
    r = result.ranking
    console.print(
        f"UC2 {_when(result.period.start)} to {_when(result.period.end)}: "
        f"{sum(c.events for c in r.connections)} events on {len(r.connections)} smart meters "
        f"({result.readings} counter readings)"
    )
    table = Table(title=f"Feeders by events (top {top})")
    for column in ("feeder", "meters", "events", "under", "over", "per meter", "notable"):
        table.add_column(column, justify="left" if column == "feeder" else "right")
    for f in r.feeders[:top]:
        table.add_row(
            f.name,
            str(f.meters),
            str(f.events),
            str(f.sags),
            str(f.swells),
            f"{f.per_meter:.1f}",
            "yes" if f.notable else "",
        )
    console.print(table)
    for c in r.connections:
        for phase, since, until in c.not_readable:
            console.print(
                f"{c.ean} L{phase}: events from {_when(since)} to {_when(until)} not readable "
                "(meter swapped; the old meter's counters after its last reading were never "
                f"read): {c.events} counted is a lower bound"
            )
    for name, flag in result.flags:
        console.print(f"finding {flag} stored for {name}: cite it with uc03 --cites {flag}")


@usecase_app.command("uc02")
def uc02(
    date_from: FromOption,
    date_to: ToOption,
    party: PartyOption = "grid_operator",
    operator: OperatorOption = None,
    record: Annotated[
        bool, typer.Option(help="Store each notable feeder as a finding UC3 can cite.")
    ] = True,
    at: AtOption = None,
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC2 Voltage quality monitoring: every smart meter's under- and over-voltage
    counters once a quarter (at most 92 days), the events as counter deltas (a meter
    swap is no negative delta), connections, feeders and substations ranked, the
    notable feeders named by the voltage_quality rule file and stored for UC3."""
    period = _days(date_from, date_to)
    try:
        moment = gate_moment(at)
        rules = rulebook.voltage_quality(operator)
        with open_gate(db, store, gate_clock(at), create=False, on_head=announce_head) as gate:
            result = monitor_voltage_quality(
                gate, Party(party, Role.GRID_OPERATOR), period, moment, rules, record
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(result.as_dict())
    else:
        _show_uc02(result)


def _show_uc03(result: Uc03Result) -> None:
    console.print(
        f"UC3 {result.feeder} (finding {result.cites}), {_when(result.period.start)} to "
        f"{_when(result.period.end)}: {len(result.connections)} connections, limits 207-253 V "
        f"and {result.inverter_limit_v:g} V ({result.operator} inverter limit)"
    )
    table = Table(title="Minutes outside the limits per meter phase")
    for column in ("EAN", "phase", "< 207 V", "> 253 V", "> inverter"):
        table.add_column(column, justify="left" if column == "EAN" else "right")
    for (ean, phase), m in sorted(result.minutes.items()):
        table.add_row(ean, f"L{phase}", str(m[LOW]), str(m[HIGH]), str(m[INVERTER]))
    console.print(table)
    episodes = Table(title="Likely inverter-trip episodes")
    for column in ("EAN", "start", "end", "lost Wh", "max V"):
        episodes.add_column(column)
    for e in result.episodes:
        episodes.add_row(
            e.ean, _when(e.start), _when(e.end), str(e.lost_wh), f"{e.max_voltage_v:.1f}"
        )
    console.print(episodes)


@usecase_app.command("uc03")
def uc03(
    feeder: Annotated[str, typer.Option(help="The feeder UC2 named: SUBSTATION/FEEDER.")],
    cites: Annotated[int, typer.Option(help="The id of UC2's stored finding for it.")],
    date_from: FromOption,
    date_to: ToOption,
    trigger: Annotated[
        str, typer.Option(help="Why: the UC2 result this analysis follows.")
    ] = "UC2 ranking: notably many voltage events",
    party: PartyOption = "grid_operator",
    operator: OperatorOption = None,
    at: AtOption = None,
    db: DbOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """UC3 Seasonal analysis: for a feeder a UC2 finding names (--cites), at most 10
    days of 10-minute voltages and feed-in: per phase when and how far the limits were
    broken, and the likely inverter-trip episodes. (The counters since installation
    come from UC2's read: see uc02 --json, since_installation.)"""
    period = _days(date_from, date_to)
    try:
        moment = gate_moment(at)
        rules = rulebook.voltage_quality(operator)
        with open_gate(db, store, gate_clock(at), create=False, on_head=announce_head) as gate:
            result = analyse_feeder(
                gate,
                Party(party, Role.GRID_OPERATOR),
                feeder,
                cites,
                period,
                moment,
                trigger,
                rules,
            )
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(result.as_dict())
    else:
        _show_uc03(result)
