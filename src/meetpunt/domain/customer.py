"""End-customer types under the Energiewet 2026 (REG-4).

Three types: household (huishoudelijk eindafnemer), micro-enterprise
(micro-onderneming) and other enterprise. The type is independent of the
connection's size (a large connection can belong to a micro-enterprise). Being an
*active customer* (actieve afnemer: generating, storing, sharing or selling energy
that is not the main activity) is a separate flag any type can carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any


class CustomerType(StrEnum):
    """Eindafnemer type (REG-4)."""

    HOUSEHOLD = "household"
    MICRO_ENTERPRISE = "micro_enterprise"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class MicroEnterpriseCriteria:
    """Thresholds of the micro-enterprise test (rule file ``end_customer_types``)."""

    employees_below: int
    max_annual_turnover_eur: Decimal
    max_balance_total_eur: Decimal

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any]) -> MicroEnterpriseCriteria:
        """Build from the body of the ``end_customer_types`` rule file."""
        micro = body["micro_enterprise"]
        return cls(
            employees_below=int(micro["employees_below"]),
            max_annual_turnover_eur=Decimal(str(micro["max_annual_turnover_eur"])),
            max_balance_total_eur=Decimal(str(micro["max_balance_total_eur"])),
        )


@dataclass(frozen=True)
class BusinessFacts:
    """What a business customer declares; an unknown amount is ``None``."""

    employees: int
    annual_turnover_eur: Decimal | None
    balance_total_eur: Decimal | None


def is_micro_enterprise(facts: BusinessFacts, criteria: MicroEnterpriseCriteria) -> bool:
    """Fewer than 10 employees AND (turnover <= EUR 2 M OR balance total <= EUR 2 M)."""
    if facts.employees >= criteria.employees_below:
        return False
    turnover_ok = (
        facts.annual_turnover_eur is not None
        and facts.annual_turnover_eur <= criteria.max_annual_turnover_eur
    )
    balance_ok = (
        facts.balance_total_eur is not None
        and facts.balance_total_eur <= criteria.max_balance_total_eur
    )
    return turnover_ok or balance_ok


def classify_business(facts: BusinessFacts, criteria: MicroEnterpriseCriteria) -> CustomerType:
    """Micro-enterprise when the test holds, other enterprise otherwise (REG-4)."""
    if is_micro_enterprise(facts, criteria):
        return CustomerType.MICRO_ENTERPRISE
    return CustomerType.ENTERPRISE
