"""``meetpunt consent give|revoke|list``: customers' consents for apps (PRV-4).

Thin: parses, calls :mod:`meetpunt.privacy.consent` inside one register transaction
(every change is audited in the same transaction), prints.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.table import Table

from meetpunt.app.register import register_session
from meetpunt.cli.common import DbOption, JsonOption, announce_head, make_console
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.jsonout import print_json
from meetpunt.privacy import audit, consent
from meetpunt.privacy.model import Period

consent_app = typer.Typer(help="Customers' consents for apps (PRV-4).", no_args_is_help=True)
console = make_console()


def _show(consents: list[consent.Consent], as_json: bool) -> None:
    if as_json:
        for c in consents:
            print_json(c.as_dict())
        return
    table = Table(title=f"{len(consents)} consent(s)")
    for column in ("id", "party", "purpose", "ean", "kinds", "from", "until", "state"):
        table.add_column(column)
    for c in consents:
        table.add_row(
            str(c.id),
            c.party,
            c.purpose,
            c.ean,
            ", ".join(sorted(c.kinds)),
            c.valid_from.date().isoformat(),
            c.valid_to.date().isoformat(),
            c.state,
        )
    console.print(table)


@consent_app.command("give")
def consent_give(
    ean: Annotated[str, typer.Argument(help="The connection's EAN.")],
    party: Annotated[str, typer.Option(help="The app that may read.")],
    kinds: Annotated[str, typer.Option(help="Data kinds, comma-separated.")],
    valid_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    until: Annotated[
        str, typer.Option("--to", "--until", help="Day the consent ends (YYYY-MM-DD, exclusive).")
    ],
    given_by: Annotated[str, typer.Option(help="The customer who consents.")],
    purpose: Annotated[str, typer.Option(help="Catalogue purpose.")] = "app_consent",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a customer's consent for one app, purpose, connection, kinds and period."""
    period = Period(
        local_midnight_utc(date.fromisoformat(valid_from)),
        local_midnight_utc(date.fromisoformat(until)),
    )
    with register_session(db, create=False) as session:
        given = consent.give(
            session.db,
            party,
            purpose,
            ean,
            [k.strip() for k in kinds.split(",") if k.strip()],
            period,
            given_by,
            datetime.now(UTC),
        )
        announce_head(*audit.head(session.db))
    _show([given], as_json)


@consent_app.command("revoke")
def consent_revoke(
    consent_id: Annotated[int, typer.Argument(help="The consent's id (see consent list).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw a consent: the app's next read is refused (PRV-4)."""
    with register_session(db, create=False) as session:
        revoked = consent.revoke(session.db, consent_id, datetime.now(UTC))
        announce_head(*audit.head(session.db))
    _show([revoked], as_json)


@consent_app.command("list")
def consent_list(
    ean: Annotated[str | None, typer.Option(help="Only this connection.")] = None,
    party: Annotated[str | None, typer.Option(help="Only this app.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List consents; those whose period has ended are marked expired first."""
    with register_session(db, create=False) as session:
        consent.expire(session.db, datetime.now(UTC))
        found = consent.list_consents(session.db, ean=ean, party=party)
    _show(found, as_json)
