"""The connection (aansluiting) and its versioned attributes (REG-2, REG-3, REG-7, REG-8).

A connection is identified by its EAN and commodity (the same EAN can occur for an
electricity and a gas connection, so the pair is the key). Everything else about it
can change over time and is kept as :class:`ConnectionAttributes` versions, each valid
from a date until the next version (REG-6: the register can say what was true on any
past date).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from meetpunt.domain.capacity import Capacity, Commodity, ElectricityCapacity, GasCapacity
from meetpunt.domain.customer import CustomerType
from meetpunt.domain.ean import check_ean
from meetpunt.domain.findings import Finding


class PhysicalStatus(StrEnum):
    """Physical status as the Dutch connection register writes it (REG-2)."""

    IN_CONSTRUCTION = "IAL"
    IN_SERVICE = "IBD"
    OUT_OF_SERVICE = "UBD"
    DEMOLISHED = "SLP"


class AdminSwitch(StrEnum):
    """The administrative meter switch (administratieve meterschakelaar, REG-2)."""

    ON = "on"
    OFF = "off"


class MeterType(StrEnum):
    """What kind of meter measures the connection (REG-2)."""

    SMART = "smart"
    DIGITAL = "digital"  # digital but not communicating (remote reading impossible)
    FERRARIS = "ferraris"
    NONE = "none"


class RemoteReading(StrEnum):
    """Remote-reading setting of a smart meter (REG-7).

    ``administratively_off``: at the customer's request nothing goes to suppliers or
    apps; the grid operator reads only what managing grid, connection and meter needs.
    """

    STANDARD = "standard"
    ADMINISTRATIVELY_OFF = "administratively_off"


class Phase(StrEnum):
    """The phase a single-phase connection hangs on; three-phase connections have none."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


HOUSE_NUMBER_MAX = 99999
"""The largest house number: the BAG (Basisregistratie Adressen en Gebouwen) gives a
house number of 1 to 5 digits, 1 to 99999 (REG-2.house_number)."""

_POSTCODE = re.compile(r"^\s*([1-9][0-9]{3})\s*([A-Za-z]{2})\s*$")
_POSTCODE_UNUSED_LETTERS = frozenset({"SA", "SD", "SS"})


def normalise_postcode(text: str) -> str | Finding:
    """``1234 ab`` -> ``1234AB``; a :class:`Finding` when it is not a Dutch postcode (PC6)."""
    match = _POSTCODE.match(text)
    if match is None or match.group(2).upper() in _POSTCODE_UNUSED_LETTERS:
        return Finding(
            "REG-2.postcode",
            f"postcode {text!r} is not a Dutch postcode: four digits (not starting with 0) "
            "and two letters, like 5611AB",
        )
    return f"{match.group(1)}{match.group(2).upper()}"


@dataclass(frozen=True, slots=True)
class Address:
    """Where the connection is: postcode (PC6), house number and the WOZ object."""

    postcode: str
    house_number: int
    house_number_suffix: str = ""
    street: str = ""
    city: str = ""
    municipality: str = ""
    woz_object_id: str = ""

    @property
    def pc4(self) -> str:
        """The four-digit postcode area."""
        return self.postcode[:4]

    @property
    def pc3(self) -> str:
        """The three-digit postcode area (UC14 release cells)."""
        return self.postcode[:3]


@dataclass(frozen=True, slots=True)
class GridPosition:
    """Where the connection hangs in the grid: substation -> LV feeder -> phase (REG-2)."""

    substation: str = ""
    feeder: str = ""
    phase: Phase | None = None


@dataclass(frozen=True, slots=True)
class ConnectionAttributes:
    """Everything about a connection that can change over time (one version)."""

    capacity: Capacity
    status: PhysicalStatus
    admin_switch: AdminSwitch
    meter_type: MeterType
    remote_reading: RemoteReading
    address: Address
    grid: GridPosition
    customer_type: CustomerType
    active_customer: bool = False
    solar_kwp: Decimal | None = None
    solar_registered_on: date | None = None

    @property
    def in_service(self) -> bool:
        """True when the physical status is 'in bedrijf' (IBD)."""
        return self.status is PhysicalStatus.IN_SERVICE


@dataclass(frozen=True, slots=True)
class ConnectionVersion:
    """One version of a connection: attributes valid on ``valid_from <= D < valid_to``."""

    ean: str
    commodity: Commodity
    valid_from: date
    valid_to: date | None
    attributes: ConnectionAttributes

    def holds_on(self, day: date) -> bool:
        """True when this version describes the connection on ``day``."""
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


def check_connection(
    ean: str, commodity: Commodity, attributes: ConnectionAttributes
) -> list[Finding]:
    """Every REG rule a connection version breaks (empty when it is acceptable)."""
    findings: list[Finding] = []
    ean_finding = check_ean(ean)
    if ean_finding is not None:
        findings.append(ean_finding)
    postcode = normalise_postcode(attributes.address.postcode)
    if isinstance(postcode, Finding):
        findings.append(postcode)
    if not 1 <= attributes.address.house_number <= HOUSE_NUMBER_MAX:
        findings.append(
            Finding(
                "REG-2.house_number",
                f"house number {attributes.address.house_number} is not 1 to "
                f"{HOUSE_NUMBER_MAX} (the BAG's house numbers)",
            )
        )
    capacity = attributes.capacity
    if commodity is Commodity.ELECTRICITY:
        if not isinstance(capacity, ElectricityCapacity):
            findings.append(
                Finding("REG-3.capacity_format", "an electricity connection needs phases x A")
            )
        elif capacity.phases == 1 and attributes.grid.phase is None:
            findings.append(
                Finding(
                    "REG-2.phase",
                    "a single-phase connection must name its phase (L1, L2 or L3)",
                )
            )
        elif capacity.phases == 3 and attributes.grid.phase is not None:
            findings.append(
                Finding(
                    "REG-2.phase",
                    "a three-phase connection uses all phases; leave the phase empty",
                )
            )
    else:
        if not isinstance(capacity, GasCapacity):
            findings.append(Finding("REG-3.capacity_format", "a gas connection needs a G-size"))
        if attributes.solar_kwp is not None:
            findings.append(
                Finding("REG-8.commodity", "solar capacity is registered on electricity only")
            )
        if attributes.grid.phase is not None:
            findings.append(Finding("REG-2.phase", "a gas connection has no phase"))
    if attributes.solar_kwp is not None and not attributes.solar_kwp.is_finite():
        findings.append(Finding("REG-8.solar_kwp", "registered solar kWp must be a number"))
    elif attributes.solar_kwp is not None and attributes.solar_kwp < 0:
        findings.append(Finding("REG-8.solar_kwp", "registered solar kWp cannot be negative"))
    if (
        attributes.remote_reading is RemoteReading.ADMINISTRATIVELY_OFF
        and attributes.meter_type is not MeterType.SMART
    ):
        findings.append(
            Finding(
                "REG-7.remote_reading",
                "remote reading can only be switched off on a smart meter; "
                f"this connection has meter type {attributes.meter_type.value}",
            )
        )
    return findings
