"""meetpunt: an open-source smart-meter data platform for Dutch grid operators.

The curated public API; see ARCHITECTURE.md for the shape and docs/glossary.md for
the names.
"""

from meetpunt.domain.ean import assert_valid_ean, check_ean, ean_from_serial, is_valid_ean
from meetpunt.domain.findings import Finding
from meetpunt.errors import DomainError, MeetpuntError, RegisterError, RulesDataError

__version__ = "0.1.0"

__all__ = [
    "DomainError",
    "Finding",
    "MeetpuntError",
    "RegisterError",
    "RulesDataError",
    "__version__",
    "assert_valid_ean",
    "check_ean",
    "ean_from_serial",
    "is_valid_ean",
]
