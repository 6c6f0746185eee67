"""UC15's cases in the twin: contractless connections whose new contract starts inside
the run, and out-of-service connections that consume with the admin switch on or off.

Deterministic by the connection's index (no draw from any random stream, so adding these
cases reshuffles nothing): every other contractless connection gets a new supply
contract :data:`CONTRACT_AFTER_DAYS` days after the run's first day (a new tenant signs
mid-month: UC15 must stop reading it from that day), and every other out-of-service
consuming connection has its admin switch ON (UC15 reads its consumption; with the
switch off it may only ping it).
"""

from __future__ import annotations

from datetime import date, timedelta

CONTRACT_AFTER_DAYS = 6
"""A new contract of a contractless connection starts this many days into the run."""


def new_contract_from(index: int, first_day: date) -> date | None:
    """The day a contractless connection's new contract starts (None: stays contractless)."""
    return first_day + timedelta(days=CONTRACT_AFTER_DAYS) if index % 2 == 0 else None


def admin_switch_on(index: int) -> bool:
    """Whether an out-of-service consuming connection's admin switch is on."""
    return index % 2 == 1
