"""The change feed's questions to the meter-data store (issue 17), for the API.

The API reaches meter data only through the application layer (ARCHITECTURE.md): the
values of a feed page leave through the gate; what the feed asks the store directly is
only which batches touched which of the caller's connections (counts and time spans)
and which rows were corrections, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from meetpunt.meterdata import store as _store
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.store import MeterStore, naive_utc

ChangeKey = _store.ChangeKey
"""A stored row as the feed names it: batch, kind, connection, naive UTC time."""


def changed_since(
    store: MeterStore, kinds: Sequence[str], connections: Sequence[int], after: int
) -> tuple[int, list[tuple[int, str, int, int, datetime, datetime]], set[ChangeKey]]:
    """The newest batch, what each batch after ``after`` stored per connection and kind
    (batch, kind, connection, rows, first, last), and the corrections among it."""
    return store.changed_since(kinds, connections, after)


def time_column(kind: str) -> str:
    """The name of ``kind``'s time column (``start``, ``day``, ...)."""
    return KINDS[kind].time


def change_key(batch: int, kind: str, connection: int, at: datetime) -> ChangeKey:
    """A granted row as :func:`changed_since` names its corrections."""
    return (batch, kind, connection, naive_utc(at))
