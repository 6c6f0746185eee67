"""``meetpunt consent give|revoke|list``: customers' consents for apps (PRV-4).

Thin: parses, calls :mod:`meetpunt.privacy.consent` inside one register transaction
(every change is audited in the same transaction), prints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from meetpunt.app.register import register_session
from meetpunt.cli.common import DbOption, JsonOption, announce_head, make_console, parse_day
from meetpunt.domain.calendar import local_date_of, local_midnight_utc
from meetpunt.domain.findings import Finding
from meetpunt.jsonout import print_json
from meetpunt.privacy import audit, consent
from meetpunt.privacy.catalogue import load_catalogue
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
            local_date_of(c.valid_from).isoformat(),  # the days given, Europe/Amsterdam
            local_date_of(c.valid_to).isoformat(),
            c.state,
        )
    console.print(table)


def consent_findings(party: str, purpose: str, kinds: list[str], given_by: str) -> list[Finding]:
    """Every rule a consent as given on the command line breaks (PRV-4): the purpose
    must be one of the catalogue's consent purposes (population "consented"), every
    kind one that purpose names, and the party and the customer must be named."""
    findings: list[Finding] = []
    rule = load_catalogue().get(purpose)
    if rule is None or rule.population != "consented":
        consented = sorted(
            p.id for p in load_catalogue().purposes.values() if p.population == "consented"
        )
        findings.append(
            Finding(
                "PRV-4.purpose",
                f"purpose {purpose!r} is not one a customer consents to; the catalogue's "
                f"consent purposes: {', '.join(consented)}",
            )
        )
    allowed = rule.kinds if rule is not None else frozenset()
    unknown = [k for k in kinds if k not in allowed]
    if not kinds or (rule is not None and unknown):
        findings.append(
            Finding(
                "PRV-4.kinds",
                f"kinds {', '.join(unknown) or '(none)'} are not data kinds of purpose "
                f"{purpose!r}; give one or more of {', '.join(sorted(allowed))}",
            )
        )
    if not party.strip():
        findings.append(Finding("PRV-4.party", "name the app that may read (--party)"))
    if not given_by.strip():
        findings.append(Finding("PRV-4.given_by", "name the customer who consents (--given-by)"))
    return findings


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
    """Record a customer's consent for one app, purpose, connection, kinds and period.

    Refused with every broken rule at once: a purpose that is not a consent purpose of
    the catalogue (PRV-4.purpose), a kind that purpose does not name (PRV-4.kinds), an
    empty --given-by (PRV-4.given_by) or --party (PRV-4.party)."""
    period = Period(
        local_midnight_utc(parse_day(valid_from, "--from")),
        local_midnight_utc(parse_day(until, "--to")),
    )
    wanted = [k.strip() for k in kinds.split(",") if k.strip()]
    findings = consent_findings(party, purpose, wanted, given_by)
    if findings:
        raise consent.ConsentError(
            f"consent refused: {findings[0].message}",
            findings,
            "meetpunt privacy catalogue lists the purposes and their kinds",
        )
    with register_session(db, create=False) as session:
        given = consent.give(
            session.db,
            party.strip(),
            purpose,
            ean,
            wanted,
            period,
            given_by.strip(),
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
