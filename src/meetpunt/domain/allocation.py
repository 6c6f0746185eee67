"""Allocation points and the secondary-allocation-point rules (REG-5).

Every connection has one primary allocation point (PAP) that shares its EAN. The user
of the connection may request extra metering points, secondary allocation points
(SAPs), each with its own EAN (Netcode elektriciteit art. 2.4). A request is assessed
against every REG-5 rule at once, so the answer lists every reason for a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from meetpunt.domain.capacity import (
    CapacityClasses,
    Commodity,
    ElectricityCapacity,
    SizeClass,
    require_electricity_capacity,
    size_class,
)
from meetpunt.domain.connection import ConnectionVersion, PhysicalStatus
from meetpunt.domain.findings import Finding


class AllocationPointKind(StrEnum):
    """Primary (shares the connection's EAN) or secondary (own EAN)."""

    PRIMARY = "primary"
    SECONDARY = "secondary"


class SapStatus(StrEnum):
    """Life of a secondary allocation point.

    Granted SAPs are ``in_construction`` until they carry energy (which needs a supply
    contract, REG-5.contract); they ``lapse`` when the primary goes out of service.
    """

    IN_CONSTRUCTION = "in_construction"
    IN_SERVICE = "in_service"
    LAPSED = "lapsed"


ACTIVE_SAP_STATUSES = frozenset({SapStatus.IN_CONSTRUCTION, SapStatus.IN_SERVICE})
_WILDCARD_SUFFIX = "x*"


@dataclass(frozen=True)
class SapCapacityRule:
    """One row of the operator-editable capacity table."""

    primary: str
    allowed: tuple[str, ...]
    source: str

    def matches(self, primary: ElectricityCapacity) -> bool:
        """True when this row is about ``primary`` (exact or phase wildcard)."""
        if self.primary.endswith(_WILDCARD_SUFFIX):
            return int(self.primary[0]) == primary.phases
        return require_electricity_capacity(self.primary) == primary

    def permits(self, primary: ElectricityCapacity, sap: ElectricityCapacity) -> bool:
        """True when ``sap`` is one of the allowed capacities behind ``primary``."""
        for allowed in self.allowed:
            if allowed.endswith(_WILDCARD_SUFFIX):
                if int(allowed[0]) == sap.phases and sap.amperes <= primary.amperes:
                    return True
            elif require_electricity_capacity(allowed) == sap:
                return True
        return False


@dataclass(frozen=True)
class SapRules:
    """The ``sap_rules`` rule file: limits, capacity table and charges."""

    version: str
    max_saps_small_connection: int
    max_saps_large_connection: int | None
    capacity: tuple[SapCapacityRule, ...]
    one_off_eur: Decimal
    meter_rent_eur_per_year: Decimal

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any], version: str) -> SapRules:
        """Build from the body of the ``sap_rules`` rule file; rows are checked here."""
        rows = tuple(
            SapCapacityRule(
                primary=str(row["primary"]),
                allowed=tuple(str(a) for a in row["allowed"]),
                source=str(row.get("source", "")),
            )
            for row in body.get("capacity", [])
        )
        for row in rows:  # fail on load, not at the first request that meets a typo
            for spec in (row.primary, *row.allowed):
                if not spec.endswith(_WILDCARD_SUFFIX):
                    require_electricity_capacity(spec)
        limits = body["limits"]
        large = limits.get("max_saps_large_connection")
        charges = body["charges"]
        return cls(
            version=version,
            max_saps_small_connection=int(limits["max_saps_small_connection"]),
            max_saps_large_connection=None if large is None else int(large),
            capacity=rows,
            one_off_eur=Decimal(str(charges["one_off_eur"])),
            meter_rent_eur_per_year=Decimal(str(charges["meter_rent_eur_per_year"])),
        )

    def capacity_rule_for(self, primary: ElectricityCapacity) -> SapCapacityRule | None:
        """The table row for ``primary``: an exact row wins over a wildcard row."""
        exact = [r for r in self.capacity if not r.primary.endswith(_WILDCARD_SUFFIX)]
        wildcard = [r for r in self.capacity if r.primary.endswith(_WILDCARD_SUFFIX)]
        for row in (*exact, *wildcard):
            if row.matches(primary):
                return row
        return None


@dataclass(frozen=True)
class SapRequest:
    """An application for an extra metering point on a primary allocation point."""

    capacity: ElectricityCapacity
    same_cabinet: bool = True
    woz_object_id: str | None = None
    residential: bool = False
    interconnected: bool = False
    purpose: str = ""


@dataclass(frozen=True)
class SapDecision:
    """Granted (with the new point's EAN once the register assigned one) or refused."""

    granted: bool
    reasons: tuple[Finding, ...]
    ean: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The CLI's JSON shape ``{"granted", "ean", "reasons": [{"rule", "message"}]}``."""
        return {
            "granted": self.granted,
            "ean": self.ean,
            "reasons": [r.as_dict() for r in self.reasons],
        }


def assess_sap_request(
    primary: ConnectionVersion,
    active_saps: int,
    request: SapRequest,
    rules: SapRules,
    classes: CapacityClasses,
) -> SapDecision:
    """Check a SAP request against every REG-5 rule; list every broken one.

    ``primary`` is the primary connection as it is on the request date and
    ``active_saps`` the number of its SAPs that have not lapsed.
    """
    reasons: list[Finding] = []
    attrs = primary.attributes
    if primary.commodity is not Commodity.ELECTRICITY:
        reasons.append(
            Finding(
                "REG-5.commodity",
                "an extra metering point exists for electricity connections only; "
                "this is a gas connection",
            )
        )
    if attrs.status not in (PhysicalStatus.IN_SERVICE, PhysicalStatus.IN_CONSTRUCTION):
        reasons.append(
            Finding(
                "REG-5.primary_status",
                f"the connection is {attrs.status.value} (not in service or in construction); "
                "an extra metering point needs a connection that is or will be in service",
            )
        )
    small = size_class(attrs.capacity, classes) is SizeClass.SMALL
    limit = rules.max_saps_small_connection if small else rules.max_saps_large_connection
    if limit is not None and active_saps >= limit:
        reasons.append(
            Finding(
                "REG-5.max_count",
                f"this {'small' if small else 'large'} connection already has {active_saps} "
                f"extra metering points; at most {limit} are allowed",
            )
        )
    if not request.same_cabinet:
        reasons.append(
            Finding(
                "REG-5.same_cabinet",
                "every extra metering point must fit in the same meter cabinet as the "
                "primary meter; choose a place in that cabinet",
            )
        )
    primary_woz = attrs.address.woz_object_id
    if request.woz_object_id and primary_woz and request.woz_object_id != primary_woz:
        reasons.append(
            Finding(
                "REG-5.woz",
                f"the extra metering point would serve WOZ object {request.woz_object_id}, "
                f"but all metering points of this connection serve WOZ object {primary_woz}",
            )
        )
    if request.interconnected:
        reasons.append(
            Finding(
                "REG-5.interconnected",
                "the installations behind different metering points may not be connected "
                "to each other; separate them first",
            )
        )
    if request.residential:
        reasons.append(
            Finding(
                "REG-5.residential",
                "an extra metering point may not be used for housing (student rooms, "
                "sub-letting); the law does not allow it",
            )
        )
    reasons.extend(_capacity_findings(attrs.capacity, request.capacity, rules))
    return SapDecision(granted=not reasons, reasons=tuple(reasons))


def _capacity_findings(
    primary: object, sap: ElectricityCapacity, rules: SapRules
) -> Sequence[Finding]:
    """REG-5.capacity / REG-5.capacity_not_covered from the operator's table."""
    if not isinstance(primary, ElectricityCapacity):
        return ()
    row = rules.capacity_rule_for(primary)
    if row is None:
        return (
            Finding(
                "REG-5.capacity_not_covered",
                f"the capacity table (version {rules.version}) has no rule for a {primary} A "
                "connection: this request needs manual assessment by the grid operator",
            ),
        )
    if not row.permits(primary, sap):
        options = ", ".join(
            f"any single-phase up to 1x{primary.amperes}" if a.endswith(_WILDCARD_SUFFIX) else a
            for a in row.allowed
        )
        return (
            Finding(
                "REG-5.capacity",
                f"behind a {primary} A connection an extra metering point can be {options} A; "
                f"{sap} A is not possible",
            ),
        )
    return ()


def check_sap_energise(sap_ean: str, has_contract: bool) -> Finding | None:
    """A SAP carries energy only with its own supply contract (REG-5.contract)."""
    if has_contract:
        return None
    return Finding(
        "REG-5.contract",
        f"extra metering point {sap_ean} has no supply contract on that date; each metering "
        "point needs its own contract with a supplier before it carries energy",
    )


class CostKind(StrEnum):
    """One-off or periodic SAP charge."""

    ONE_OFF = "one_off"
    PERIODIC = "periodic"


@dataclass(frozen=True)
class CostLine:
    """A SAP charge: who charges it, through whom, to whom (REG-5 costs)."""

    sap_ean: str
    kind: CostKind
    description: str
    amount_eur: Decimal
    period: str
    charged_by: str
    billed_via: str
    billed_to: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form (amount as a decimal string)."""
        return {
            "sap_ean": self.sap_ean,
            "kind": self.kind.value,
            "description": self.description,
            "amount_eur": str(self.amount_eur),
            "period": self.period,
            "charged_by": self.charged_by,
            "billed_via": self.billed_via,
            "billed_to": self.billed_to,
        }


def sap_cost_lines(
    sap_ean: str,
    grid_operator: str,
    primary_supplier: str | None,
    primary_contract_holder: str | None,
    rules: SapRules,
) -> tuple[CostLine, ...]:
    """The one-off charge (grid operator) and the yearly meter rent (via the PAP's supplier).

    Both go to the primary's contract holder: the grid operator deals only with the
    primary's customer (REG-5; Liander's extra-meetpunt page). Without a primary
    contract the periodic line names no supplier, which is itself a thing to resolve
    (contractless primary).
    """
    holder = primary_contract_holder or "(no contract holder on the primary)"
    return (
        CostLine(
            sap_ean=sap_ean,
            kind=CostKind.ONE_OFF,
            description="adapting the connection for an extra metering point",
            amount_eur=rules.one_off_eur,
            period="once",
            charged_by=grid_operator,
            billed_via=grid_operator,
            billed_to=holder,
        ),
        CostLine(
            sap_ean=sap_ean,
            kind=CostKind.PERIODIC,
            description="meter rent for the extra metering point",
            amount_eur=rules.meter_rent_eur_per_year,
            period="per year",
            charged_by=grid_operator,
            billed_via=primary_supplier or "(no supplier on the primary)",
            billed_to=holder,
        ),
    )
