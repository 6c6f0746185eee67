"""``meetpunt privacy``: the privacy gate's commands (PRV-1..7).

Thin like the rest of the CLI. ``catalogue`` shows the use-case catalogue (PRV-2): every
purpose meter data may be read for, with its limits, as loaded from
``use_case_catalogue.toml`` (or the operator's override in ``MEETPUNT_RULES_DIR``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from meetpunt.cli.common import fail, make_console
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import print_json
from meetpunt.privacy.catalogue import PurposeRule, load_catalogue

privacy_app = typer.Typer(
    help="The privacy gate: purposes, consents, audit (PRV-1..7).", no_args_is_help=True
)

console = make_console(160)


@privacy_app.command("catalogue")
def privacy_catalogue(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the use-case catalogue (PRV-2): each purpose and its limits.

    --json prints one object: version, valid_from, source and the purposes by id.
    Exit 1 when the catalogue file is broken.
    """
    try:
        catalogue = load_catalogue()
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(catalogue.as_dict())
        return
    table = Table(
        title=f"use-case catalogue {catalogue.version} (valid from {catalogue.valid_from})"
    )
    for column in (
        "id",
        "title",
        "parties",
        "kinds",
        "window",
        "frequency",
        "pause",
        "aggregate",
        "grid mgmt",
    ):
        table.add_column(column, overflow="fold")
    for rule in catalogue.purposes.values():
        table.add_row(*_row(rule))
    console.print(table)


def _row(rule: PurposeRule) -> tuple[str, ...]:
    window = f"{rule.window_days:g}d" if rule.window_days else "-"
    frequency = ", ".join(f.describe() for f in rule.frequency) or "-"
    pause = f"{rule.pause_days:g}d" if rule.pause_days else "-"
    aggregate = rule.aggregate.describe() if rule.aggregate else "-"
    if rule.pseudonymise:
        aggregate += ", no EAN"
    title = rule.title_en + (f" (until {rule.sunset})" if rule.sunset else "")
    return (
        rule.id,
        title,
        ", ".join(sorted(r.value for r in rule.parties)),
        ", ".join(sorted(rule.kinds)),
        window,
        frequency,
        pause,
        aggregate,
        "yes" if rule.grid_management else "no",
    )
