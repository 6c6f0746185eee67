"""Open a privacy gate over a register and a meter-data store (PRV-1).

Callers above the application layer may not open a store themselves (PRV-1, one door
to meter data); they get a :class:`~meetpunt.privacy.gate.Gate` from here instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from meetpunt.meterdata.store import SERVE_KEEP_S, open_store
from meetpunt.privacy import audit
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.register import Register, open_register

__all__ = ["SERVE_KEEP_S", "audit_head", "open_gate"]


@contextmanager
def open_gate(
    db: str | None = None,
    store: Path | None = None,
    clock: Callable[[], datetime] | None = None,
    create: bool = True,
    on_head: Callable[[int, str], None] | None = None,
    keep_s: float = 0.0,
) -> Iterator[Gate]:
    """A gate over the register at ``db`` and the store at ``store`` (read-only; each
    read of it is its own short lease, so the store is not held for the use case's run
    and writers get in between reads), with the packaged use-case catalogue; both are
    closed when the block ends. ``clock`` replaces the wall clock (the demo replays a
    month of reports in order); with ``create`` False a missing SQLite register is
    refused (REG-db.missing). When the block wrote to the audit log (a decision, a read,
    a refusal), ``on_head`` is called with the new head, also when the block ends in an
    error, so the head can be published (PRV-7). ``keep_s`` > 0 (a serving process,
    :data:`SERVE_KEEP_S`) keeps the store attached between reads until it has been
    idle that long or a writer waits for it (MTR-1; ``MeterStore.keep_s``)."""
    register = open_register(db, create=create)
    try:
        before = audit_head(register) if on_head is not None else None
        try:
            meter_store = open_store(store, read_only=True, keep_s=keep_s)
            try:
                if clock is None:
                    yield Gate(register, meter_store, load_catalogue())
                else:
                    yield Gate(register, meter_store, load_catalogue(), clock=clock)
            finally:
                meter_store.close()
        finally:
            if on_head is not None:
                after = audit_head(register)
                if after != before:
                    on_head(*after)
    finally:
        register.dispose()


def audit_head(register: Register) -> tuple[int, str]:
    """``(seq, hash)`` of the audit log's last record (PRV-7)."""
    with register.session() as session:
        return audit.head(session.db)
