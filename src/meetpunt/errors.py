"""The one exception root of meetpunt (decisions are values; errors carry rule IDs).

Rules report their decisions as values (:class:`meetpunt.domain.findings.Finding`);
only the ``assert_*`` / ``require_*`` wrappers raise, and they raise a subclass of
:class:`MeetpuntError`, one per package, carrying the same rule IDs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meetpunt.domain.findings import Finding


class MeetpuntError(Exception):
    """Root of every error meetpunt raises on purpose.

    ``findings`` lists the broken rules (rule ID + plain-language message); it may be
    empty for errors that are not a rule decision (a missing file, say). ``hint`` says
    what to do about it, when there is something to say.
    """

    def __init__(
        self, message: str, findings: Iterable[Finding] = (), hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.findings: tuple[Finding, ...] = tuple(findings)
        self.hint = hint

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule IDs of the findings, in order."""
        return tuple(f.rule for f in self.findings)


class UnavailableError(MeetpuntError):
    """Something the command needs cannot be opened or reached (a database, a store
    file): not a refusal, so the CLI exits 2 instead of 1."""


class DomainError(MeetpuntError):
    """A domain rule was broken (``meetpunt.domain``)."""


class RulesDataError(MeetpuntError):
    """A rules data file is missing or malformed (``meetpunt.rulebook``)."""


class MarketError(MeetpuntError):
    """A market rule refuses a contract, an invoice, a switch or a termination (MKT-1..7)."""


class RegisterError(MeetpuntError):
    """The connection register refused an operation (``meetpunt.register``)."""


class TwinError(MeetpuntError):
    """The grid twin could not simulate what it was asked (``meetpunt.twin``)."""


class MeterDataError(MeetpuntError):
    """The meter-data hub could not read or store what it was given (``meetpunt.meterdata``)."""


class StoreUnavailableError(MeterDataError, UnavailableError):
    """The meter-data store file cannot be opened (missing, locked, not a store)."""
