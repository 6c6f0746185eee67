"""The register's operations on one database transaction (REG-2..8).

:class:`Register` owns the engine and hands out :class:`RegisterSession` objects, one
per transaction; everything that reads or changes the register goes through a
session. History is kept as validity intervals (see :mod:`meetpunt.register.schema`):
recording a version on date D closes the version that held on D and opens the new one
until the next recorded version, so "what was true on D" stays answerable (REG-6);
"valid on D" itself is defined once, in :mod:`meetpunt.register.validity`.

A session is composed of one part per concern; look for an operation here:

=====================  ==========================================================
module                 concern
=====================  ==========================================================
``base``               the transaction, the rules, the timeline write (REG-6), finding
                       a connection or allocation point by EAN (REG-1, REG-2)
``connections``        connections and their versions (REG-2..4, REG-6..8)
``contracts``          supply contracts, contractless points (REG-6, MKT-1, MKT-2)
``allocation``         allocation points and SAPs: request, record, energise, costs
                       (REG-5)
``issuing``            new EANs from the operator's prefix (REG-1)
``meterindex``         the flat connection index the meter-data hub reads (MTR-4/5)
``quarantine``         refused import records with their rule
``parties``            the HTTP API's parties and their key hashes (issue 17)
``bulk``               recording many connection rows at once (the file import)
=====================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from meetpunt.register.activation import ActivationCodes
from meetpunt.register.allocation import AllocationPoints, SecondaryPoint, StatusVersion
from meetpunt.register.base import DEFAULT_EAN_PREFIX, ChangeOutcome, RegisterRules
from meetpunt.register.connections import OUT_OF_SERVICE
from meetpunt.register.meterindex import MeterIndex, MeterIndexEntry
from meetpunt.register.quarantine import Quarantine, QuarantinedRecord
from meetpunt.register.runs import UseCaseRuns

__all__ = [
    "DEFAULT_EAN_PREFIX",
    "OUT_OF_SERVICE",
    "ChangeOutcome",
    "MeterIndexEntry",
    "QuarantinedRecord",
    "Register",
    "RegisterRules",
    "RegisterSession",
    "SecondaryPoint",
    "StatusVersion",
]


class RegisterSession(AllocationPoints, MeterIndex, Quarantine, ActivationCodes, UseCaseRuns):
    """Register operations inside one transaction (see :meth:`Register.session`).

    Connections, contracts, allocation points and EAN issuing come in through
    :class:`~meetpunt.register.allocation.AllocationPoints` (each of those parts builds
    on the one before); the meter index, the quarantine, the API parties, their activation
    codes and the use-case runs stand on their own.
    """


class Register:
    """The connection register on one database; open it with ``open_register``."""

    def __init__(self, engine: Engine, rules: RegisterRules) -> None:
        self.engine = engine
        self.rules = rules

    @contextmanager
    def session(self) -> Iterator[RegisterSession]:
        """One transaction: committed when the block ends, rolled back on an error."""
        with self.engine.begin() as conn:
            yield RegisterSession(conn, self.rules)

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()
