"""Vocabulary of the privacy gate (PRV-1..7): parties, periods, requests, decisions.

Every read of meter data names a purpose (an approved use case UC1..UC15 or a supplier, app,
customer or research purpose), a party, the connections (EANs), the data kinds and
the period; the gate answers with a :class:`Decision` that carries every broken rule as
a :class:`~meetpunt.domain.findings.Finding` (``UC3.window``, ``PRV-3.opt_out``, ...).
Times are aware UTC datetimes; a period is ``start <= t < end``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from meetpunt.domain import calendar
from meetpunt.domain.findings import Finding

VOLTAGE_PRESENCE = "voltage_presence"
"""Data kind of UC1: whether the meter has voltage now (yes/no), nothing else."""
REACHABILITY = "reachability"
"""Data kind of UC15 for switched-off meters: does the meter answer (a 'ping')."""
QUARANTINE = "quarantine"
"""The hub's refused records with their raw content: read only for data stewardship."""


stored_utc = calendar.stored_utc
"""Kept here for the privacy package's callers; it lives in the domain so that the
register may use it too."""


class Role(StrEnum):
    """What a party is to the data (docs/requirements.md, scope and parties)."""

    GRID_OPERATOR = "grid_operator"
    SUPPLIER = "supplier"
    APP = "app"
    CUSTOMER = "customer"
    RESEARCHER = "researcher"


@dataclass(frozen=True)
class Party:
    """Who asks: ``id`` is a GLN for suppliers, an app id, a customer name, ..."""

    id: str
    role: Role
    name: str = ""


@dataclass(frozen=True)
class Period:
    """``start <= t < end``, aware UTC datetimes."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def days(self) -> float:
        return self.length.total_seconds() / 86_400


@dataclass(frozen=True)
class AccessRequest:
    """One request to read meter data (PRV-1): who, why, which connections, what, when.

    ``trigger`` is the evidence a purpose may need (an outage report or last-gasp id for
    UC1, the UC2 ranking for UC3, the higher-level measurement for UC12, ...).
    ``at`` is when the request is made (frequency and pauses count from it).
    ``cites`` is the id of a stored finding (:mod:`meetpunt.privacy.flags`) that a
    purpose with population "flagged" needs: UC2's result for UC3, UC12's step before.
    """

    party: Party
    purpose: str
    connections: tuple[str, ...]
    kinds: frozenset[str]
    period: Period
    at: datetime
    justification: str = ""
    trigger: str | None = None
    cites: int | None = None


@dataclass(frozen=True)
class Cut:
    """A stretch of one requested connection's period that a rule took out of a grant
    (``PRV-3.opt_out`` from the day the customer opted out, ``PRV-1.supplier_scope``
    after the contract ended, ...; PRV-1)."""

    ean: str
    rule: str
    period: Period


@dataclass(frozen=True)
class Decision:
    """The gate's answer: granted, or refused with every broken rule.

    A granted decision covers, per connection, exactly the sub-periods of the request
    in which every rule held (``periods``: EAN -> its sub-periods, in order); ``cuts``
    says which rule took out the rest. A decision without ``periods`` covers the whole
    requested period for every connection."""

    request: AccessRequest
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    audit_seq: int | None = None
    periods: tuple[tuple[str, tuple[Period, ...]], ...] = ()
    cuts: tuple[Cut, ...] = ()

    def periods_of(self, ean: str) -> tuple[Period, ...]:
        """The sub-periods granted for ``ean`` (the whole period when none are given)."""
        for name, found in self.periods:
            if name == ean:
                return found
        return () if self.periods else (self.request.period,)

    @property
    def granted(self) -> bool:
        return not self.findings

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(f.rule for f in self.findings)
