"""Connection capacity and the small/large classification (REG-3).

Electricity capacity is phases x amperes (``1x40``, ``3x25``); gas capacity is a meter
size (``G4`` ... ``G25`` and up) with its maximum flow in m3(n)/h. Whether a connection
is *small* (kleine aansluiting) or *large* (grote aansluiting) is decided by the
thresholds in the ``capacity_classes`` rule file, passed in as :class:`CapacityClasses`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from meetpunt.domain.findings import Finding
from meetpunt.errors import DomainError


class Commodity(StrEnum):
    """What a connection carries (REG-2)."""

    ELECTRICITY = "electricity"
    GAS = "gas"


class SizeClass(StrEnum):
    """Kleine or grote aansluiting (REG-3, Energiewet 2026)."""

    SMALL = "small"
    LARGE = "large"


# re.ASCII: \d is 0-9 only, as for EANs and house numbers (Arabic-Indic or superscript
# digits are refused, not read as numbers)
_ELECTRICITY = re.compile(r"^\s*([13])\s*[xX×]\s*(\d{1,5})\s*[aA]?\s*$", re.ASCII)
_GAS = re.compile(r"^\s*[gG]\s*(\d{1,5})\s*$", re.ASCII)


@dataclass(frozen=True, slots=True, order=True)
class ElectricityCapacity:
    """Phases x amperes per phase, e.g. 3x25 A."""

    phases: int
    amperes: int

    def __str__(self) -> str:
        return f"{self.phases}x{self.amperes}"

    @property
    def apparent_power_kva(self) -> float:
        """Nominal apparent power at 230 V phase voltage (plausibility limit for VEE)."""
        return self.phases * self.amperes * 230.0 / 1000.0


@dataclass(frozen=True, slots=True)
class GasCapacity:
    """A gas meter size (G-class) and its maximum flow Qmax in m3(n)/h."""

    meter_size: str
    flow_m3n_per_h: float

    def __str__(self) -> str:
        return self.meter_size


Capacity = ElectricityCapacity | GasCapacity


@dataclass(frozen=True)
class CapacityClasses:
    """The small/large thresholds and the known gas meter sizes (rule file data)."""

    small_max_phases: int
    small_max_amperes: int
    standard_electricity: tuple[ElectricityCapacity, ...]
    gas_small_max_flow: float
    gas_meter_flow: Mapping[str, float]
    max_amperes: int | None = None
    """The largest fuse of a connection written as phases x A (REG-3.capacity_range);
    None: no limit (an operator's rule file without it)."""

    @classmethod
    def from_mapping(cls, body: Mapping[str, Any]) -> CapacityClasses:
        """Build from the body of the ``capacity_classes`` rule file."""
        elec, gas = body["electricity"], body["gas"]
        return cls(
            small_max_phases=int(elec["small_max_phases"]),
            small_max_amperes=int(elec["small_max_amperes"]),
            standard_electricity=tuple(require_electricity_capacity(s) for s in elec["standard"]),
            gas_small_max_flow=float(gas["small_max_flow_m3n_per_h"]),
            gas_meter_flow={k.upper(): float(v) for k, v in gas["meter_flow_m3n_per_h"].items()},
            max_amperes=int(elec["max_amperes"]) if "max_amperes" in elec else None,
        )


def parse_electricity_capacity(text: str) -> ElectricityCapacity | Finding:
    """Parse ``1x40`` / ``3x25A`` / ``3 x 25 A``; a :class:`Finding` when it is not one."""
    match = _ELECTRICITY.match(text)
    if match is None:
        return Finding(
            "REG-3.capacity_format",
            f"capacity {text!r} is not phases x amperes; write it as 1x40 or 3x25",
        )
    amperes = int(match.group(2))
    if amperes == 0:
        return Finding("REG-3.capacity_format", f"capacity {text!r} has 0 A; give the fuse size")
    return ElectricityCapacity(phases=int(match.group(1)), amperes=amperes)


def require_electricity_capacity(text: str) -> ElectricityCapacity:
    """Like :func:`parse_electricity_capacity` but raises :class:`DomainError`."""
    parsed = parse_electricity_capacity(text)
    if isinstance(parsed, Finding):
        raise DomainError(parsed.message, [parsed])
    return parsed


def parse_gas_capacity(text: str, classes: CapacityClasses) -> GasCapacity | Finding:
    """Parse a gas meter size such as ``G4``; it must be one the rule file knows."""
    match = _GAS.match(text)
    if match is None:
        return Finding(
            "REG-3.capacity_format", f"gas capacity {text!r} is not a meter size like G4 or G25"
        )
    size = f"G{int(match.group(1))}"
    flow = classes.gas_meter_flow.get(size)
    if flow is None:
        known = ", ".join(classes.gas_meter_flow)
        return Finding(
            "REG-3.capacity_unknown",
            f"gas meter size {size} is not in the capacity_classes rule file (known: {known})",
        )
    return GasCapacity(meter_size=size, flow_m3n_per_h=flow)


def parse_capacity(commodity: Commodity, text: str, classes: CapacityClasses) -> Capacity | Finding:
    """Parse a capacity for a connection of ``commodity``."""
    if commodity is Commodity.ELECTRICITY:
        parsed = parse_electricity_capacity(text)
        if (
            isinstance(parsed, ElectricityCapacity)
            and classes.max_amperes is not None
            and parsed.amperes > classes.max_amperes
        ):
            return Finding(
                "REG-3.capacity_range",
                f"capacity {text.strip()!r} has {parsed.amperes} A per phase; the largest "
                f"connection written as phases x A has {classes.max_amperes} A "
                "(capacity_classes rule file): check the fuse size",
            )
        return parsed
    return parse_gas_capacity(text, classes)


def size_class(capacity: Capacity, classes: CapacityClasses) -> SizeClass:
    """Small when electricity <= 3x80 A or gas Qmax <= 40 m3(n)/h; large otherwise (REG-3)."""
    if isinstance(capacity, ElectricityCapacity):
        small = (
            capacity.phases <= classes.small_max_phases
            and capacity.amperes <= classes.small_max_amperes
        )
    else:
        small = capacity.flow_m3n_per_h <= classes.gas_small_max_flow
    return SizeClass.SMALL if small else SizeClass.LARGE
