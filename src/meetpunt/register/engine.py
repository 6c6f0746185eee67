"""Where the register lives: database URL, engine, migrations (the imperative shell).

The URL comes from ``--db``, else ``MEETPUNT_DATABASE_URL``, else a SQLite file in the
meetpunt home folder (``MEETPUNT_HOME``, default ``~/.meetpunt``). ``postgresql://``
URLs use psycopg 3.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError

from meetpunt.domain.findings import Finding
from meetpunt.errors import RegisterError, UnavailableError
from meetpunt.register.store import Register, RegisterRules

DATABASE_URL_ENV = "MEETPUNT_DATABASE_URL"
HOME_ENV = "MEETPUNT_HOME"


def meetpunt_home() -> Path:
    """The folder for meetpunt's embedded stores (created on first use)."""
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".meetpunt")
    home.mkdir(parents=True, exist_ok=True)
    return home


def default_database_url() -> str:
    """``MEETPUNT_DATABASE_URL`` or the embedded SQLite register in the meetpunt home."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{meetpunt_home() / 'register.sqlite'}"


def normalise_url(url: str) -> str:
    """Pick psycopg 3 for plain ``postgresql://`` / ``postgres://`` URLs."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite transaction waits for another writer before "database is locked"
(the gate's decisions take about half a millisecond each, so eight at once wait a few)."""
IMMEDIATE = "meetpunt_immediate"
"""Execution option: begin the transaction with ``BEGIN IMMEDIATE`` on SQLite."""


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that reads and then writes, serialised against every other such
    transaction from its first statement: on SQLite it takes the write lock when it
    begins (``BEGIN IMMEDIATE``; a second one waits up to ``SQLITE_BUSY_TIMEOUT_MS``
    instead of failing with "database is locked" when it upgrades from reading to
    writing); on PostgreSQL the caller takes its own lock (the gate's append lock;
    PRV-1, PRV-7). Committed when the block ends, rolled back on an error.

    On SQLite the threads of one process, and the processes of one register file, also
    queue on a lock (:class:`_WriterQueue`) before they take a pooled connection: a
    writer that finds the file locked otherwise sleeps in SQLite's busy handler (1, 2,
    5, ... up to 100 ms a try) and wakes late, so under many concurrent requests (the
    API server's thread pool) the write lock sat idle between writers and a few
    requests waited seconds (issue 17). The lock changes no
    order of records: each transaction still appends under SQLite's write lock."""
    with _writer_lock(engine), engine.connect() as conn:
        conn.execution_options(**{IMMEDIATE: True})
        with conn.begin():
            yield conn


class _WriterQueue:
    """The queue of a SQLite register's writers: a lock for the threads of this process
    and, for a register file, an ``flock`` on ``REGISTER-writer`` for the processes
    (``meetpunt serve --workers N``, ingestion, the CLI), taken by the outermost holder
    only. A waiter is woken when the holder lets go, where SQLite's busy handler would
    sleep up to 100 ms a try (issue 17). Re-entrant in one thread, like the lock before."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.depth = 0
        self.fd = -1

    def __enter__(self) -> None:
        self.lock.acquire()
        if self.depth == 0 and self.path is not None:
            try:
                if self.fd < 0:
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            except BaseException:
                self.lock.release()
                raise
        self.depth += 1

    def __exit__(self, *_: object) -> None:
        self.depth -= 1
        if self.depth == 0 and self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.lock.release()


_WRITER_LOCKS: WeakKeyDictionary[Engine, _WriterQueue | nullcontext[None]] = WeakKeyDictionary()
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> _WriterQueue | nullcontext[None]:
    """The queue of ``engine``'s writers: in this process and, for a register file, across
    processes on SQLite; nothing on a server database (PostgreSQL's writers wait in the
    server, on the gate's lock)."""
    with _WRITER_LOCKS_GUARD:
        found = _WRITER_LOCKS.get(engine)
        if found is None:
            if engine.dialect.name == "sqlite":
                file = sqlite_file(engine.url.render_as_string(hide_password=False))
                found = _WriterQueue(
                    None if file is None else file.with_name(f"{file.name}-writer")
                )
            else:
                found = nullcontext()
            _WRITER_LOCKS[engine] = found
        return found


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, real SAVEPOINT support, a
    write-ahead log and a busy timeout."""
    url = normalise_url(url)
    if not url.startswith("sqlite"):
        return _server_engine(url)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not pysqlite, open transactions, so SAVEPOINTs work
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = ON")
        # write-ahead log, synced at checkpoints: a commit costs ~0.05 ms instead of a
        # ~1 ms fsync (the gate commits every decision), and a crash of the program
        # still loses nothing committed; only a power cut can lose the last commits
        if url != "sqlite://" and ":memory:" not in url:
            dbapi_connection.execute("PRAGMA journal_mode = WAL")
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


IDLE_PING_SECONDS = 10.0
"""A pooled server connection idle longer than this is pinged before use."""


def _server_engine(url: str) -> Engine:
    """An engine for a database server whose pooled connections are pinged only after
    they sat idle (``IDLE_PING_SECONDS``): a connection a restart or a network drop may
    have cut is replaced before use, while a busy caller (the gate: a decision in about
    a millisecond) does not pay a round trip per transaction as ``pool_pre_ping`` would.
    A connection cut within the idle window fails its one transaction; the pool then
    drops it and every other connection of that time."""
    engine = create_engine(url)

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["meetpunt.idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("meetpunt.idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as exc:  # the driver's own error: the connection is gone
            raise DisconnectionError(f"pooled connection lost: {exc}") from exc

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("meetpunt.register").joinpath("migrations"))
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class RegisterUnavailableError(RegisterError, UnavailableError):
    """The register database does not exist and the command may not create it."""


MISSING_RULE = "REG-db.missing"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (``sqlite:///PATH``), or None for an in-memory SQLite
    database, a URI filename or another database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(database)


def require_existing(url: str) -> None:
    """Refuse a SQLite register file that does not exist (REG-db.missing): a mistyped
    ``--db`` must not create an empty register and report on it. A PostgreSQL database
    that does not exist already fails to connect."""
    path = sqlite_file(url)
    if path is None or path.exists():
        return
    raise RegisterUnavailableError(
        f"there is no register at {path}",
        [Finding(MISSING_RULE, f"the register database {path} does not exist")],
        hint="import the register first (meetpunt register import FILE...), or check "
        "--db / MEETPUNT_DATABASE_URL and --home / MEETPUNT_HOME",
    )


def open_register(
    url: str | None = None, rules: RegisterRules | None = None, create: bool = True
) -> Register:
    """Open (and migrate) the register at ``url`` or the default one; with ``create``
    False a SQLite file that does not exist is refused (REG-db.missing), not created."""
    url = url or default_database_url()
    if not create:
        require_existing(normalise_url(url))
    engine = make_engine(url)
    migrate(engine)
    return Register(engine, rules or RegisterRules.load())
