"""Open a privacy gate over a register and a meter-data store (PRV-1).

Callers above the application layer may not open a store themselves (PRV-1, one door
to meter data); they get a :class:`~meetpunt.privacy.gate.Gate` from here instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from meetpunt.meterdata.store import open_store
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.register import open_register


@contextmanager
def open_gate(
    db: str | None = None,
    store: Path | None = None,
    clock: Callable[[], datetime] | None = None,
    create: bool = True,
) -> Iterator[Gate]:
    """A gate over the register at ``db`` and the store at ``store`` (read-only), with
    the packaged use-case catalogue; both are closed when the block ends. ``clock``
    replaces the wall clock (the demo replays a month of reports in order); with
    ``create`` False a missing SQLite register is refused (REG-db.missing)."""
    register = open_register(db, create=create)
    try:
        meter_store = open_store(store, read_only=True)
        try:
            if clock is None:
                yield Gate(register, meter_store, load_catalogue())
            else:
                yield Gate(register, meter_store, load_catalogue(), clock=clock)
        finally:
            meter_store.close()
    finally:
        register.dispose()
