"""What every ``meetpunt`` command module shares: the console, the common options and
the one error shape (``{"error": {"rule", "message", "hint"}}`` with ``--json``, one
readable line without; exit 1 refused, exit 2 the command could not run)."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from meetpunt.domain.findings import Finding
from meetpunt.errors import MeetpuntError, UnavailableError
from meetpunt.jsonout import print_json
from meetpunt.meterdata.store import DEFAULT_STORE_WAIT_S, STORE_ENV, STORE_WAIT_ENV
from meetpunt.register.engine import HOME_ENV


def make_console(width: int = 120, stderr: bool = False) -> Console:
    """A Rich console (on stderr when asked); piped or captured output gets ``width``
    columns, not 80."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console.width = width
    return console


def progress_bar(console: Console, label_width: int = 12) -> Progress:
    """The progress bar of long work (Interfaces in docs/requirements.md): label, bar,
    percent, time; it stays on a terminal and is left out of piped output."""
    return Progress(
        TextColumn(f"{{task.description:<{label_width}}}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
    )


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="MEETPUNT_DATABASE_URL",
        help="Register database URL (sqlite:///file or postgresql://...); "
        "default: the SQLite register in the meetpunt home folder.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help="Meter-data store (DuckDB file); default: meterdata.duckdb in the meetpunt home.",
    ),
]


_HEADS: list[tuple[int, str]] = []
"""Audit heads a running command noted, published by :class:`MeetpuntGroup` at its end."""


def announce_head(seq: int, digest: str) -> None:
    """Note the audit log's new head after a command wrote to it; the root group prints
    it on stderr when the command ends (after its own output, also when it failed), so
    anyone who keeps it can later catch a cut or rewritten log with ``meetpunt audit
    verify --expect-head SEQ:HASH`` (PRV-7). Stdout stays the command's own output."""
    _HEADS.append((seq, digest))


def publish_heads() -> None:
    """Print the last noted audit head on stderr and forget the notes."""
    if _HEADS:
        seq, digest = _HEADS[-1]
        _HEADS.clear()
        typer.echo(f"audit head {seq}:{digest}", err=True)


# -- the one error shape -------------------------------------------------------------

EXIT_REFUSED = 1
"""Something was refused: a rule said no (the error names it) or a row was refused."""
EXIT_ENVIRONMENT = 2
"""The command could not run: a usage error, a database that cannot be reached, a bad
URL, a missing store file."""


def error_body(rule: str, message: str, hint: str | None = None, **extra: Any) -> dict[str, Any]:
    """``{"error": {"rule", "message", "hint", ...}}``: what every command prints on
    stdout with ``--json`` when it fails."""
    return {"error": {"rule": rule, "message": message, "hint": hint, **extra}}


def error_of(exc: MeetpuntError) -> dict[str, Any]:
    """The error shape of a refusal: its first rule, its message, its hint and every
    broken rule (``findings``)."""
    rule = exc.findings[0].rule if exc.findings else f"meetpunt.{type(exc).__name__}"
    return error_body(rule, str(exc), exc.hint, findings=[f.as_dict() for f in exc.findings])


def show_error(body: dict[str, Any], as_json: bool) -> None:
    """Print an error body: JSON on stdout, or one readable line (and a hint) on stderr."""
    if as_json:
        print_json(body)
        return
    error = body["error"]
    line = f"error: {error['message']} [{error['rule']}]"
    findings = error.get("findings") or []
    for finding in findings[1:]:
        line += f"; {finding['rule']}: {finding['message']}"
    typer.echo(line, err=True)
    if error.get("hint"):
        typer.echo(f"hint: {error['hint']}", err=True)


def fail(exc: MeetpuntError, as_json: bool) -> typer.Exit:
    """Show ``exc`` in the one error shape and return the exit to raise: 2 when something
    could not be opened (:class:`UnavailableError`) or an option cannot be used
    (:class:`InputError`), else 1."""
    show_error(error_of(exc), as_json)
    could_not_run = isinstance(exc, UnavailableError | InputError)
    return typer.Exit(EXIT_ENVIRONMENT if could_not_run else EXIT_REFUSED)


class InputError(MeetpuntError):
    """A value on the command line that the command cannot use (a date that does not
    exist, a negative limit, a file where a folder is wanted): the command does not
    run, exit 2, in the one error shape with its rule (``CLI.*``)."""


def input_error(rule: str, message: str, hint: str) -> InputError:
    """An :class:`InputError` carrying ``rule`` as its one finding."""
    return InputError(message, [Finding(rule, message)], hint)


FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2199, 12, 31)
"""The days a command takes (CLI.date_range): wide enough for any register or meter
history, narrow enough that local midnight, a day later and a period's arithmetic stay
inside Python's dates (0001-01-01 local midnight is before year 1 in UTC)."""


def parse_day(text: str, option: str) -> date:
    """The day ``text`` (YYYY-MM-DD) given for ``option``; an :class:`InputError` naming
    the option when it is no day (CLI.date: 2025-02-30) or outside
    :data:`FIRST_DAY`..:data:`LAST_DAY` (CLI.date_range)."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError as exc:
        raise input_error(
            "CLI.date",
            f"{option} {text!r} is not a day ({exc})",
            "write the day as YYYY-MM-DD, a day that exists (2025-02-28, not 2025-02-30)",
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise input_error(
            "CLI.date_range",
            f"{option} {text} is outside the days meetpunt works with ({FIRST_DAY} to {LAST_DAY})",
            f"give a day from {FIRST_DAY} to {LAST_DAY}",
        )
    return day


def require_at_least(value: int, lowest: int, option: str) -> int:
    """``value`` when it is ``lowest`` or more; else an :class:`InputError` (CLI.range)."""
    if value < lowest:
        raise input_error(
            "CLI.range",
            f"{option} {value} is below {lowest}",
            f"give {option} as a whole number of {lowest} or more",
        )
    return value


def require_folder(path: Path, option: str) -> Path:
    """``path`` when it is a folder or does not exist yet (it is made); an
    :class:`InputError` (CLI.not_a_folder) when it is a file."""
    if path.exists() and not path.is_dir():
        raise input_error(
            "CLI.not_a_folder",
            f"{option} {path} is a file; a folder is wanted",
            f"name a folder for {option} (it is made when it does not exist)",
        )
    return path


def environment_error(exc: BaseException) -> dict[str, Any] | None:
    """The error body for a failure of the environment (database, URL, store file), or
    ``None`` when ``exc`` is not one (then it is a bug and keeps its traceback)."""
    module = type(exc).__module__.split(".")[0]
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if module == "sqlalchemy" and name in ("ArgumentError", "NoSuchModuleError"):
        return error_body(
            "CLI.database_url",
            f"not a database URL meetpunt can use: {text}",
            "use sqlite:///PATH or postgresql://USER@HOST:PORT/DB (--db or MEETPUNT_DATABASE_URL)",
        )
    if module == "sqlalchemy" and name in ("OperationalError", "InterfaceError"):
        origin = getattr(exc, "orig", None)
        detail = str(origin or text).strip().splitlines()[0]
        return error_body(
            "CLI.database_unreachable",
            f"the register database cannot be opened: {detail}",
            "check --db / MEETPUNT_DATABASE_URL, that the server runs and the folder exists",
        )
    if module == "duckdb":
        return error_body(
            "CLI.store_unavailable",
            f"the meter-data store cannot be opened: {text}",
            "check --store / MEETPUNT_STORE; ingest data first (meetpunt ingest PATH), "
            "or stop the other process that holds the store",
        )
    if isinstance(
        exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError
    ):
        return error_body(
            "CLI.file",
            f"{exc.strerror or name}: {exc.filename}",
            "check the path (relative paths start in the current folder)",
        )
    return None


class MeetpuntGroup(TyperGroup):
    """The root command group: one readable line and exit 2 when the environment fails
    (never a library traceback), the error shape for a refusal no command caught."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["meetpunt.json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        as_json = bool(ctx.meta.get("meetpunt.json"))
        _HEADS.clear()
        try:
            return super().invoke(ctx)
        except MeetpuntError as exc:
            raise fail(exc, as_json) from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("typer", "click")):
                raise  # exits, usage errors and aborts: Typer shows them
            body = environment_error(exc)
            if body is None:
                raise
            show_error(body, as_json)
            raise typer.Exit(EXIT_ENVIRONMENT) from exc
        finally:
            publish_heads()


# -- one --home on every command ------------------------------------------------------

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar=HOME_ENV,
        help="meetpunt's home folder: the embedded register, the meter-data store and the "
        "demo's files live there (default: ~/.meetpunt).",
        show_envvar=True,
    ),
]


def _with_env_option(
    callback: Callable[..., Any],
    name: str,
    env: str,
    annotation: Any,
    text: Callable[[Any], str] = str,
) -> Callable[..., Any]:
    """``callback`` with one more keyword option ``name`` (type ``annotation``): for the
    command's run the environment variable ``env`` holds its value (``text`` of it), and
    afterwards what it held before. Already having ``name``, the callback stays as it is."""
    signature = inspect.signature(callback, eval_str=True)
    if name in signature.parameters:
        return callback

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        value = kwargs.pop(name, None)
        before = os.environ.get(env)
        if value is not None:
            os.environ[env] = text(value)
        try:
            return callback(*args, **kwargs)
        finally:
            if before is None:
                os.environ.pop(env, None)
            else:
                os.environ[env] = before

    option = inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
    )
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), option]
    )
    return run


def with_home(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` with a ``--home`` option: for the command's run, ``MEETPUNT_HOME``
    names that folder, so every default path (register, store, demo) follows it."""
    return _with_env_option(callback, "home", HOME_ENV, HomeOption)


StoreWaitOption = Annotated[
    float | None,
    typer.Option(
        "--store-wait",
        envvar=STORE_WAIT_ENV,
        min=0,
        help="Seconds to wait while another process holds the meter-data store (each "
        "process holds it only for one batch, part or read; `serve` lets go as soon as a "
        "writer waits) before giving up with "
        f"MTR-1.store_busy, exit 2; default {DEFAULT_STORE_WAIT_S:g}.",
        show_envvar=True,
    ),
]


def with_store_wait(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` with a ``--store-wait`` option when it has a ``--store``: for the
    command's run, ``MEETPUNT_STORE_WAIT`` holds that many seconds, so every lease on the
    store waits that long for another process (MTR-1.store_busy after it)."""
    if "store" not in inspect.signature(callback, eval_str=True).parameters:
        return callback
    return _with_env_option(
        callback, "store_wait", STORE_WAIT_ENV, StoreWaitOption, lambda v: f"{v:g}"
    )


def add_home_option(app: typer.Typer) -> None:
    """Give every command of ``app`` and its groups the one ``--home`` option, and every
    command with a ``--store`` the one ``--store-wait`` option."""
    for command in app.registered_commands:
        if command.callback is not None:
            command.callback = with_home(with_store_wait(command.callback))
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_home_option(group.typer_instance)
