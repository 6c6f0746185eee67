"""Supply contracts per allocation point, and contractlessness (REG-6, MKT-1, MKT-2).

A contract holds on ``start <= D < end`` (``end`` exclusive, ``None`` = open). A point
that is in service on D with no contract holding on D is *contractless* on D.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from meetpunt.domain.connection import MeterType
from meetpunt.domain.ean import gs1_check_digit
from meetpunt.domain.findings import Finding


class ContractType(StrEnum):
    """Vast, variabel or dynamisch (MKT-1)."""

    FIXED = "fixed"
    VARIABLE = "variable"
    DYNAMIC = "dynamic"


class TariffKind(StrEnum):
    """Enkel or dubbel tarief (MKT-2)."""

    SINGLE = "single"
    DOUBLE = "double"


class ModelContract(StrEnum):
    """The model contracts every supplier must offer (MKT-2)."""

    VARIABLE = "variable"
    FIXED = "fixed"

    @property
    def dutch_name(self) -> str:
        """How a customer's document names it (MKT-2): the model contract and its kind."""
        return {
            ModelContract.VARIABLE: "Modelcontract variabel (onbepaalde tijd, variabele prijzen)",
            ModelContract.FIXED: "Modelcontract vast (vaste looptijd, vaste prijzen)",
        }[self]


@dataclass(frozen=True, slots=True)
class SupplyContract:
    """A supply contract on one allocation point.

    ``supplier`` is the supplier's 13-digit GLN (market party code); ``contract_holder``
    the customer who signed it (the one the supplier bills).
    """

    allocation_point_ean: str
    supplier: str
    contract_holder: str
    contract_type: ContractType
    tariff: TariffKind
    start: date
    end: date | None = None

    def holds_on(self, day: date) -> bool:
        """True when the contract is in force on ``day``."""
        return self.start <= day and (self.end is None or day < self.end)

    def overlaps(self, other: SupplyContract) -> bool:
        """True when the two contracts share at least one day."""
        self_end = self.end or date.max
        other_end = other.end or date.max
        return self.start < other_end and other.start < self_end


def check_supplier_gln(code: str) -> Finding | None:
    """A supplier is named by its 13-digit GLN with GS1 check digit (REG-6.supplier)."""
    if len(code) != 13 or not code.isdigit() or gs1_check_digit(code[:-1]) != int(code[-1]):
        return Finding(
            "REG-6.supplier",
            f"supplier {code!r} is not a 13-digit GLN market-party code with a valid "
            "check digit (e.g. 8712423010208); use the supplier's GLN, not its name",
        )
    return None


def check_contract(
    contract: SupplyContract,
    meter_type: MeterType,
    existing: Iterable[SupplyContract] = (),
) -> list[Finding]:
    """Every rule a new contract breaks, given the point's meter and earlier contracts."""
    findings: list[Finding] = []
    supplier = check_supplier_gln(contract.supplier)
    if supplier is not None:
        findings.append(supplier)
    if not contract.contract_holder.strip():
        findings.append(Finding("REG-6.contract_holder", "a contract needs a contract holder"))
    if contract.end is not None and contract.end <= contract.start:
        findings.append(
            Finding(
                "REG-6.dates",
                f"contract ends on {contract.end} which is not after its start {contract.start}",
            )
        )
    if contract.contract_type is ContractType.FIXED and contract.end is None:
        findings.append(Finding("MKT-1.fixed_end", "a fixed contract has an end date; give one"))
    if contract.tariff is TariffKind.DOUBLE and meter_type not in (
        MeterType.SMART,
        MeterType.DIGITAL,
    ):
        findings.append(
            Finding(
                "MKT-2.double_tariff",
                f"double tariff needs a digital meter; this point has {meter_type.value}",
            )
        )
    for other in existing:
        if other.allocation_point_ean == contract.allocation_point_ean and contract.overlaps(other):
            findings.append(
                Finding(
                    "REG-6.overlap",
                    f"the point already has a contract from {other.start} to "
                    f"{other.end or 'open end'} with supplier {other.supplier}; end it first",
                )
            )
    return findings


def contract_on(contracts: Iterable[SupplyContract], day: date) -> SupplyContract | None:
    """The contract in force on ``day``, if any."""
    for contract in contracts:
        if contract.holds_on(day):
            return contract
    return None


def is_contractless(in_service: bool, contracts: Iterable[SupplyContract], day: date) -> bool:
    """In service on ``day`` and no contract in force: contractless (REG-6, UC15)."""
    return in_service and contract_on(contracts, day) is None
