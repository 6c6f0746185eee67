"""The connection register with history (REG-1..8, MKT-6), persisted with SQLAlchemy.

SQLite file by default (no server), PostgreSQL in production; the schema is managed
by Alembic migrations that run when a register is opened. Everyone reads the
register through :class:`RegisterSession`.
"""

from meetpunt.register.engine import default_database_url, open_register
from meetpunt.register.store import (
    MeterIndexEntry,
    Register,
    RegisterRules,
    RegisterSession,
    SecondaryPoint,
)

__all__ = [
    "MeterIndexEntry",
    "Register",
    "RegisterRules",
    "RegisterSession",
    "SecondaryPoint",
    "default_database_url",
    "open_register",
]
