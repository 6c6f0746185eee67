"""``meetpunt audit``: check the audit log and read it as the customer would (PRV-7).

Thin like the rest of the CLI: open the register, call :mod:`meetpunt.privacy.audit`,
print. ``verify`` exits 1 when the chain shows tampering.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from meetpunt.app.register import register_session
from meetpunt.cli.common import DbOption, JsonOption, make_console
from meetpunt.errors import MeetpuntError
from meetpunt.jsonout import dumps, print_json
from meetpunt.privacy import audit, explain

audit_app = typer.Typer(
    help="The audit log of every read and decision (PRV-7).", no_args_is_help=True
)

console = make_console()


class Lang(StrEnum):
    """Language of the sentences of ``audit list``."""

    NL = "nl"
    EN = "en"


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` (as ``audit head`` prints it) as ``(seq, hash)``."""
    seq, _, digest = text.partition(":")
    digest = digest.strip().lower()
    if (
        not seq.strip().isdigit()
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise typer.BadParameter(
            f"{text!r} is not a head; write SEQ:HASH as 'meetpunt audit head' prints it"
        )
    return int(seq), digest


def purpose_titles(lang: Lang) -> dict[str, str]:
    """The purposes' titles in ``lang`` from the use-case catalogue, when there is one."""
    try:
        from meetpunt.privacy.catalogue import load_catalogue
    except ImportError:
        return {}
    try:
        purposes = load_catalogue().purposes.values()
    except MeetpuntError:  # no usable catalogue: the purpose ids are shown instead
        return {}
    if lang is Lang.NL:
        return {p.id: p.title_nl for p in purposes}
    return {p.id: p.title_en for p in purposes}


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            help="A head noted before (SEQ:HASH from 'meetpunt audit head'): also catch "
            "records removed from the end.",
        ),
    ] = None,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="An export kept before ('meetpunt audit export'): also check that each "
            "record in it is still in the log unchanged, and its head.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Walk the hash chain; exit 0 when intact, 1 with every problem listed."""
    expected = parse_head(expect_head) if expect_head is not None else None
    kept = read_export(against) if against is not None else []
    if expected is None and kept:
        expected = audit.kept_head(kept)
    with register_session(db, create=False) as session:
        findings = audit.verify(session.db, expect_head=expected)
        findings += audit.check_kept(session.db, kept)
        seq, digest = audit.head(session.db)
        total = audit.count(session.db)
    if as_json:
        print_json(
            {
                "intact": not findings,
                "records": total,
                "head": {"seq": seq, "hash": digest},
                "findings": [f.as_dict() for f in findings],
            }
        )
    elif findings:
        console.print(
            f"[red]audit log NOT intact[/red]: {len(findings)} problem(s)", highlight=False
        )
        for finding in findings:
            console.print(f"  {finding.rule}: {finding.message}", highlight=False)
    else:
        console.print(
            f"[green]audit log intact[/green]: {total} record(s), head {seq}:{digest}",
            highlight=False,
        )
    if findings:
        raise typer.Exit(1)


@audit_app.command("list")
def audit_list(
    ean: Annotated[
        str | None, typer.Option("--ean", help="Only the records of this connection (EAN).")
    ] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="Language of the sentences.")] = Lang.NL,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every read and decision, one plain sentence each (Dutch by default)."""
    with register_session(db, create=False) as session:
        found = audit.records(session.db, ean=ean)
    titles = purpose_titles(lang)
    sentences = [explain.describe(r, lang.value, titles, ean) for r in found]
    if as_json:
        for record, sentence in zip(found, sentences, strict=True):
            print_json({**record.as_dict(), "text": sentence})
        return
    if not found:
        typer.echo("Geen gegevens gevonden." if lang is Lang.NL else "No records found.")
    for sentence in sentences:
        typer.echo(sentence)


@audit_app.command("export")
def audit_export(
    ean: Annotated[
        str | None, typer.Option("--ean", help="Only the records of this connection (EAN).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write to this file (default: stdout).", dir_okay=False),
    ] = None,
    db: DbOption = None,
) -> None:
    """The log (or one connection's records) as JSON lines ending with the head: for the
    customer or a regulator to keep, and to check later with 'meetpunt audit verify
    --against FILE' (PRV-7)."""
    with register_session(db, create=False) as session:
        lines = [dumps(line) for line in audit.export(session.db, ean)]
    text = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(lines) - 1} record(s) and the head written to {out}", err=True)


def read_export(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of an export; a line that is not a JSON object is refused."""
    lines: list[dict[str, Any]] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            line = None
        if not isinstance(line, dict):
            raise typer.BadParameter(
                f"{path}, line {number}: not a line of 'meetpunt audit export'",
                param_hint="--against",
            )
        lines.append(line)
    return lines


@audit_app.command("head")
def audit_head(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Print the head of the chain as SEQ:HASH: note it elsewhere, check it later with
    'meetpunt audit verify --expect-head SEQ:HASH'."""
    with register_session(db, create=False) as session:
        seq, digest = audit.head(session.db)
    if as_json:
        print_json({"seq": seq, "hash": digest})
    else:
        typer.echo(f"{seq}:{digest}")
