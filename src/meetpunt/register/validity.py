"""The one definition of "valid on day D" for the register's history (REG-6).

Connection versions and SAP statuses are rows valid on ``valid_from <= D < valid_to``
(``valid_to`` NULL: still valid); contracts use ``start_date``/``end_date`` the same
way (end exclusive). Every query that asks "what held on D" (or "what held on some
day from D1 to D2") builds its filter here.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Table, and_, or_
from sqlalchemy.sql.elements import ColumnElement


def holds_on(
    table: Table,
    day: date | ColumnElement[date],
    start: str = "valid_from",
    end: str = "valid_to",
) -> ColumnElement[bool]:
    """The rows of ``table`` whose interval ``[start, end)`` contains ``day`` (a date, or
    a bound parameter for a statement built once and run for many days)."""
    return and_(table.c[start] <= day, or_(table.c[end].is_(None), table.c[end] > day))


def contract_holds_on(table: Table, day: date) -> ColumnElement[bool]:
    """The contracts (``start_date``/``end_date``, end exclusive) in force on ``day``."""
    return holds_on(table, day, "start_date", "end_date")


def overlaps(
    table: Table,
    first: date | ColumnElement[date],
    last: date | ColumnElement[date],
    start: str = "valid_from",
    end: str = "valid_to",
) -> ColumnElement[bool]:
    """The rows of ``table`` whose interval ``[start, end)`` holds on at least one day
    from ``first`` to ``last`` inclusive (every version a period-wide check needs)."""
    return and_(table.c[start] <= last, or_(table.c[end].is_(None), table.c[end] > first))
