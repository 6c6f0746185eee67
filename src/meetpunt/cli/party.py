"""``meetpunt party add|list|revoke``: the parties that call the HTTP API (issue 17).

Thin: opens the register, calls :mod:`meetpunt.register.parties`, prints. ``add`` shows
the API key once; the register keeps only its hash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from meetpunt.app.register import register_session
from meetpunt.cli.common import DbOption, JsonOption, fail, make_console
from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import print_json
from meetpunt.register.activation import ACTIVATION_DAYS
from meetpunt.register.parties import ApiParty, ApiRole

party_app = typer.Typer(
    help="Parties of the HTTP API and their keys (issue 17).", no_args_is_help=True
)
console = make_console()


def _row(party: ApiParty) -> dict[str, object]:
    return {
        "id": party.id,
        "role": party.role.value,
        "code": party.code,
        "holder": party.holder,
        "eans": list(party.eans),
        "redirect_uris": list(party.redirect_uris),
        "name": party.name,
        "created_at": party.created_at,
        "revoked_at": party.revoked_at,
    }


@party_app.command("add")
def party_add(
    role: Annotated[ApiRole, typer.Option("--role", help="supplier, app, operator or customer.")],
    code: Annotated[
        str | None, typer.Option("--code", help="A supplier's EAN-13 market code (GLN).")
    ] = None,
    eans: Annotated[
        list[str] | None,
        typer.Option("--ean", help="A customer's connection (EAN-18); repeat for more."),
    ] = None,
    holder: Annotated[
        str | None,
        typer.Option(
            "--holder",
            help="A customer's name as on the contracts (default: today's contract holder "
            "of the first --ean).",
        ),
    ] = None,
    redirect_uris: Annotated[
        list[str] | None,
        typer.Option(
            "--redirect-uri",
            help="An app's OAuth redirect URI, matched exactly (https, or http on the "
            "loopback); repeat for more.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="An app's display name: what customers see on the consent page and in "
            "'who read my meter' (default: 'app ID').",
        ),
    ] = None,
    days: Annotated[
        int,
        typer.Option(
            "--days", min=1, max=365, help="How long a customer's activation code is valid."
        ),
    ] = ACTIVATION_DAYS,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a party and print its API key: shown this once, stored only as a hash. An
    app is an OAuth client: its client id is the party id, its client secret the key.
    A customer gets a one-time activation code instead (for the letter): they send it
    to ``POST /v1/me/activate`` and get their key then (issue 17)."""
    now = datetime.now(UTC)
    try:
        with register_session(db) as session:
            party, key = session.add_api_party(
                role,
                now,
                code=code,
                eans=eans or (),
                holder=holder,
                redirect_uris=redirect_uris or (),
                name=name,
            )
            if party.role is ApiRole.CUSTOMER:
                activation, expires = session.issue_activation(party, now, days)
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if party.role is ApiRole.CUSTOMER:
        _show_activation(party, activation, expires, as_json)
        return
    if as_json:
        print_json({"id": party.id, "role": party.role.value, "api_key": key})
        return
    who = party.code or party.holder or party.name or ""
    console.print(f"party {party.id} ({party.role.value} {who}) added", highlight=False)
    console.print(f"API key (shown once, keep it safe): {key}", highlight=False, soft_wrap=True)


def _show_activation(party: ApiParty, code: str, expires: datetime, as_json: bool) -> None:
    """A new customer's activation code and when it expires (its key comes at
    activation, issue 17)."""
    if as_json:
        print_json(
            {
                "id": party.id,
                "role": party.role.value,
                "activation_code": code,
                "expires_at": expires,
            }
        )
        return
    console.print(f"party {party.id} (customer {party.holder}) added", highlight=False)
    console.print(
        f"activation code (shown once; for the customer's letter): {code}, "
        f"valid until {expires:%Y-%m-%d}; the customer sends it to POST /v1/me/activate",
        highlight=False,
        soft_wrap=True,
    )


@party_app.command("activate")
def party_activate(
    party_id: Annotated[int, typer.Argument(help="The customer's party id (see 'party list').")],
    days: Annotated[
        int, typer.Option("--days", min=1, max=365, help="How long the code is valid.")
    ] = ACTIVATION_DAYS,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a new activation code for a customer (a lost letter or an expired code);
    earlier unused codes stay valid until they expire."""
    now = datetime.now(UTC)
    try:
        with register_session(db, create=False) as session:
            party = session.api_party_by_id(party_id)
            if party is None:
                raise MeetpuntError(
                    f"no API party with id {party_id}",
                    [Finding("API-party.unknown", f"no API party with id {party_id}")],
                )
            code, expires = session.issue_activation(party, now, days)
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    _show_activation(party, code, expires, as_json)


@party_app.command("list")
def party_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every party with its role, code or holder and connections; never a key."""
    try:
        with register_session(db, create=False) as session:
            parties = session.api_parties()
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json([_row(p) for p in parties])
        return
    table = Table(title=f"{len(parties)} API part{'y' if len(parties) == 1 else 'ies'}")
    for name in (
        "id",
        "role",
        "code / holder / name",
        "connections / redirect URIs",
        "created",
        "revoked",
    ):
        table.add_column(name)
    for p in parties:
        table.add_row(
            str(p.id),
            p.role.value,
            p.code or p.holder or p.name or "",
            ", ".join(p.eans or p.redirect_uris),
            f"{p.created_at:%Y-%m-%d %H:%M}",
            f"{p.revoked_at:%Y-%m-%d %H:%M}" if p.revoked_at else "",
        )
    console.print(table)


@party_app.command("revoke")
def party_revoke(
    party_id: Annotated[int, typer.Argument(help="The party's id (see 'party list').")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a party's key: its next call is refused (401)."""
    try:
        with register_session(db, create=False) as session:
            party = session.revoke_api_party(party_id, datetime.now(UTC))
    except MeetpuntError as exc:
        raise fail(exc, as_json) from exc
    if as_json:
        print_json(_row(party))
    else:
        console.print(f"party {party.id} revoked", highlight=False)
