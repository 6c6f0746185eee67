"""Outage compensation (compensatievergoeding), MKT-8, as used by UC4.

A grid operator pays a fixed amount, unasked, when an unplanned interruption lasts
strictly longer than a threshold (Elektriciteitswet 1998 art. 24 with Netcode
elektriciteit par. 6.3; gas: Aansluit- en transportcode gas RNB art. 4.2). The amount
depends on the connection's class and, for larger connections, on the grid level of the
fault; after the base period (8 h) every further 4-hour block adds a step amount.

All amounts, thresholds, the block rounding and the exclusions are data (the
``outage_compensation`` rule file, design rule 2, rules are data). :class:`CompensationScheme`
is built from that data and is pure; a decision is a :class:`Compensation` value whose
``reasons`` carry the rule IDs (design rule 3, decisions are values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from meetpunt.domain.capacity import (
    Capacity,
    CapacityClasses,
    Commodity,
    ElectricityCapacity,
    GasCapacity,
    SizeClass,
    size_class,
)
from meetpunt.domain.findings import Finding
from meetpunt.errors import DomainError, RulesDataError

_ZERO = Decimal(0)


class GridLevel(StrEnum):
    """Voltage level of the grid where the fault was (MKT-8 thresholds depend on it).

    ``EHV`` is a grid of 220 kV or more (TenneT's 220/380 kV grid): never compensated.
    """

    LV = "LV"
    MV = "MV"
    HV = "HV"
    EHV = "EHV"


class ConnectionLevel(StrEnum):
    """Voltage level of a connection that is known by level, not by capacity."""

    MV = "MV"
    HV = "HV"


class BlockRounding(StrEnum):
    """How a partly used 4-hour block after the base period counts (MKT-8, [C] in sources)."""

    STARTED = "started"
    """Every started block counts (ACM: 13 h -> 35 + 20 + 20 = EUR 75)."""
    COMPLETE = "complete"
    """Only complete blocks count (Interpolis: 13 h -> EUR 55)."""


class Circumstance(StrEnum):
    """Circumstances that the rule file may exclude from compensation (MKT-8)."""

    PLANNED = "planned"
    GRID_220KV = "grid_220kv"
    PUBLIC_LIGHTING = "public_lighting"
    OWN_INSTALLATION = "own_installation"


@dataclass(frozen=True, slots=True)
class CapacityConnection:
    """An LV electricity or a gas connection known by its capacity and REG-3 size class."""

    capacity: Capacity
    size: SizeClass

    @classmethod
    def classify(cls, capacity: Capacity, classes: CapacityClasses) -> CapacityConnection:
        """Decide the size class with :func:`meetpunt.domain.capacity.size_class` (REG-3)."""
        return cls(capacity=capacity, size=size_class(capacity, classes))

    @property
    def commodity(self) -> Commodity:
        """Electricity or gas, from the kind of capacity."""
        if isinstance(self.capacity, ElectricityCapacity):
            return Commodity.ELECTRICITY
        return Commodity.GAS


@dataclass(frozen=True, slots=True)
class VoltageConnection:
    """An MV or HV connection; an HV connection needs its contracted capacity in kW."""

    level: ConnectionLevel
    contracted_kw: Decimal | None = None

    def __post_init__(self) -> None:
        if self.level is ConnectionLevel.HV and (
            self.contracted_kw is None or self.contracted_kw <= 0
        ):
            finding = Finding(
                "MKT-8.contracted_kw",
                "an HV connection's compensation is per contracted kW; give contracted_kw > 0",
            )
            raise DomainError(finding.message, [finding])

    def __str__(self) -> str:
        return f"{self.level} connection"


OutageConnection = CapacityConnection | VoltageConnection


@dataclass(frozen=True, slots=True)
class CompensationClass:
    """One row of the MKT-8 table: thresholds per fault level, base and step amounts."""

    id: str
    description: str
    thresholds: Mapping[GridLevel, timedelta]
    base: Decimal
    step: Decimal
    per_contracted_kw: bool = False
    unpaid_max_amperes: int | None = None
    unpaid_operators: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ClassMatch:
    """A rule mapping connections to a class; every key that is set must match."""

    class_id: str
    commodity: Commodity | None = None
    size: SizeClass | None = None
    phases: int | None = None
    max_amperes: int | None = None
    level: ConnectionLevel | None = None

    def matches(self, connection: OutageConnection) -> bool:
        """True when ``connection`` fits every key this rule sets."""
        if isinstance(connection, VoltageConnection):
            return self.level is connection.level and self._no_capacity_keys()
        if self.level is not None:
            return False
        if self.commodity is not None and self.commodity is not connection.commodity:
            return False
        if self.size is not None and self.size is not connection.size:
            return False
        if self.phases is None and self.max_amperes is None:
            return True
        capacity = connection.capacity
        if not isinstance(capacity, ElectricityCapacity):
            return False
        return (self.phases is None or capacity.phases == self.phases) and (
            self.max_amperes is None or capacity.amperes <= self.max_amperes
        )

    def _no_capacity_keys(self) -> bool:
        keys = (self.commodity, self.size, self.phases, self.max_amperes)
        return all(k is None for k in keys)


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A circumstance that is never compensated, with its rule ID and reason."""

    circumstance: Circumstance
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class Compensation:
    """The MKT-8 decision for one interruption of one connection.

    ``amount`` is zero when nothing is due; ``reasons`` then carries the refusing rule
    IDs (``MKT-8.planned``, ``MKT-8.threshold``, ...), otherwise one ``MKT-8`` finding
    saying how the amount was made up.
    """

    amount: Decimal
    currency: str
    class_id: str
    threshold: timedelta | None
    blocks: int
    duration: timedelta
    rounding: BlockRounding
    reasons: tuple[Finding, ...]
    scheme_version: str
    duration_source: str | None = None

    @property
    def paid(self) -> bool:
        """True when an amount is due."""
        return self.amount > 0

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule IDs of the reasons, in order."""
        return tuple(r.rule for r in self.reasons)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (amount as a decimal string, durations in seconds)."""
        return {
            "amount": str(self.amount),
            "currency": self.currency,
            "class_id": self.class_id,
            "threshold_seconds": (
                None if self.threshold is None else int(self.threshold.total_seconds())
            ),
            "blocks": self.blocks,
            "duration_seconds": self.duration.total_seconds(),
            "rounding": str(self.rounding),
            "reasons": [r.as_dict() for r in self.reasons],
            "scheme_version": self.scheme_version,
            "duration_source": self.duration_source,
        }


@dataclass(frozen=True)
class CompensationScheme:
    """The outage compensation scheme of the ``outage_compensation`` rule file (MKT-8)."""

    classes: Mapping[str, CompensationClass]
    matches: tuple[ClassMatch, ...]
    exclusions: tuple[Exclusion, ...]
    base_period: timedelta
    block: timedelta
    rounding: BlockRounding
    amount_quantum: Decimal
    currency: str = "EUR"
    version: str = "unversioned"

    @classmethod
    def from_mapping(
        cls, body: Mapping[str, Any], *, version: str = "unversioned"
    ) -> CompensationScheme:
        """Build from the body of the ``outage_compensation`` rule file.

        Raises :class:`RulesDataError` when the data is incomplete or inconsistent.
        """
        try:
            classes = {str(k): _compensation_class(str(k), v) for k, v in body["classes"].items()}
            matches = tuple(_class_match(m) for m in body["match"])
            exclusions = tuple(
                Exclusion(
                    circumstance=Circumstance(str(e["circumstance"])),
                    rule=str(e["rule"]),
                    reason=str(e["reason"]),
                )
                for e in body.get("exclusions", ())
            )
            settings = body["scheme"]
            scheme = cls(
                classes=classes,
                matches=matches,
                exclusions=exclusions,
                base_period=_hours(settings["base_period_hours"]),
                block=_hours(settings["block_hours"]),
                rounding=BlockRounding(str(settings["block_rounding"])),
                amount_quantum=_decimal(settings.get("amount_quantum", "0.01")),
                currency=str(settings.get("currency", "EUR")),
                version=version,
            )
        except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation) as exc:
            raise RulesDataError(
                f"outage_compensation: malformed data ({type(exc).__name__}: {exc}); "
                "see the comments in meetpunt/data/outage_compensation.toml"
            ) from exc
        unknown = sorted({m.class_id for m in matches} - set(classes))
        if unknown:
            raise RulesDataError(f"outage_compensation: [[match]] names unknown class {unknown}")
        if scheme.block <= timedelta(0) or scheme.base_period < timedelta(0):
            raise RulesDataError("outage_compensation: block_hours must be > 0, base >= 0")
        return scheme

    def class_for(self, connection: OutageConnection) -> CompensationClass:
        """The class of ``connection``: the first ``[[match]]`` rule that fits."""
        for rule in self.matches:
            if rule.matches(connection):
                return self.classes[rule.class_id]
        raise RulesDataError(
            f"outage_compensation: no [[match]] rule covers {_describe(connection)}; "
            "add one to the rule file"
        )

    def blocks_after_base(self, duration: timedelta) -> int:
        """Number of step blocks after the base period, by the scheme's rounding."""
        extra = duration - self.base_period
        if extra <= timedelta(0):
            return 0
        if self.rounding is BlockRounding.STARTED:
            return -(-extra // self.block)
        return extra // self.block

    def compensate(
        self,
        connection: OutageConnection,
        fault_level: GridLevel,
        duration: timedelta,
        *,
        operator: str | None = None,
        planned: bool = False,
        public_lighting: bool = False,
        own_installation: bool = False,
        duration_source: str | None = None,
    ) -> Compensation:
        """Decide the compensation for one interruption (MKT-8).

        ``duration`` is the interruption's length; the base amount is due only when it
        is strictly longer than the class's threshold for ``fault_level``. ``operator``
        matters for the smallest class (Stedin pays nothing up to 1x6 A). Exclusions
        (planned work, a >= 220 kV grid, public lighting, the customer's own
        installation) refuse with their rule IDs. ``duration_source`` (meter log, first
        report, ...) is carried into the result so UC4 can record it.
        """
        if duration < timedelta(0):
            finding = Finding("MKT-8.duration", f"duration {duration} is negative")
            raise DomainError(finding.message, [finding])
        klass = self.class_for(connection)
        threshold = klass.thresholds.get(fault_level)

        def decide(amount: Decimal, blocks: int, reasons: Sequence[Finding]) -> Compensation:
            return Compensation(
                amount=amount,
                currency=self.currency,
                class_id=klass.id,
                threshold=threshold,
                blocks=blocks,
                duration=duration,
                rounding=self.rounding,
                reasons=tuple(reasons),
                scheme_version=self.version,
                duration_source=duration_source,
            )

        def refuse(*reasons: Finding) -> Compensation:
            return decide(_ZERO.quantize(self.amount_quantum), 0, reasons)

        present = _circumstances(fault_level, planned, public_lighting, own_installation)
        excluded = [
            Finding(e.rule, f"no compensation: {e.reason}")
            for e in self.exclusions
            if e.circumstance in present
        ]
        if excluded:
            return refuse(*excluded)
        if threshold is None:
            return refuse(
                Finding(
                    "MKT-8.grid_level",
                    f"class {klass.id} is not compensated for a fault in the {fault_level} grid",
                )
            )
        if _unpaid_small(klass, connection, operator):
            return refuse(
                Finding(
                    "MKT-8.up_to_1x6",
                    f"{operator} pays nothing for connections up to 1x{klass.unpaid_max_amperes} A",
                )
            )
        if duration <= threshold:
            return refuse(
                Finding(
                    "MKT-8.threshold",
                    f"interruption of {duration} is not longer than the {threshold} threshold "
                    f"for class {klass.id} (fault in the {fault_level} grid)",
                )
            )
        blocks = self.blocks_after_base(duration)
        amount = klass.base + klass.step * blocks
        per = ""
        if klass.per_contracted_kw:
            kw = connection.contracted_kw if isinstance(connection, VoltageConnection) else None
            if kw is None:
                finding = Finding(
                    "MKT-8.contracted_kw", f"class {klass.id} pays per contracted kW; none given"
                )
                raise DomainError(finding.message, [finding])
            amount = (amount * kw).quantize(self.amount_quantum, rounding=ROUND_HALF_UP)
            per = f" per kW x {kw} kW"
        reason = Finding(
            "MKT-8",
            f"interruption of {duration} > {threshold} (fault in the {fault_level} grid): "
            f"base {klass.base} + {blocks} x {klass.step} ({self.rounding} "
            f"{_hours_text(self.block)} blocks after {_hours_text(self.base_period)})"
            f"{per} = {self.currency} {amount}",
        )
        return decide(amount, blocks, (reason,))


def _circumstances(
    fault_level: GridLevel, planned: bool, public_lighting: bool, own_installation: bool
) -> frozenset[Circumstance]:
    flags = {
        Circumstance.PLANNED: planned,
        Circumstance.GRID_220KV: fault_level is GridLevel.EHV,
        Circumstance.PUBLIC_LIGHTING: public_lighting,
        Circumstance.OWN_INSTALLATION: own_installation,
    }
    return frozenset(c for c, on in flags.items() if on)


def _unpaid_small(
    klass: CompensationClass, connection: OutageConnection, operator: str | None
) -> bool:
    if klass.unpaid_max_amperes is None or operator is None:
        return False
    if operator.strip().casefold() not in klass.unpaid_operators:
        return False
    if not isinstance(connection, CapacityConnection):
        return False
    capacity = connection.capacity
    return (
        isinstance(capacity, ElectricityCapacity)
        and capacity.phases == 1
        and capacity.amperes <= klass.unpaid_max_amperes
    )


def _describe(connection: OutageConnection) -> str:
    if isinstance(connection, VoltageConnection):
        return str(connection)
    kind = "gas" if isinstance(connection.capacity, GasCapacity) else "electricity"
    return f"{kind} connection {connection.capacity} ({connection.size})"


def _decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        value = str(value)
    result = Decimal(value)
    if not result.is_finite() or result < 0:
        raise ValueError(f"amount {value!r} must be a finite, non-negative number")
    return result


def _hours(value: Any) -> timedelta:
    return timedelta(hours=float(value))


def _hours_text(span: timedelta) -> str:
    hours = span / timedelta(hours=1)
    return f"{hours:g} h"


def _compensation_class(cid: str, raw: Mapping[str, Any]) -> CompensationClass:
    unpaid = raw.get("unpaid_max_amperes")
    return CompensationClass(
        id=cid,
        description=str(raw.get("description", cid)),
        thresholds={GridLevel(str(k)): _hours(v) for k, v in raw["thresholds_hours"].items()},
        base=_decimal(raw["base"]),
        step=_decimal(raw["step"]),
        per_contracted_kw=bool(raw.get("per_contracted_kw", False)),
        unpaid_max_amperes=None if unpaid is None else int(unpaid),
        unpaid_operators=frozenset(
            str(o).strip().casefold() for o in raw.get("unpaid_operators", ())
        ),
    )


def _class_match(raw: Mapping[str, Any]) -> ClassMatch:
    def opt_int(key: str) -> int | None:
        value = raw.get(key)
        return None if value is None else int(value)

    commodity, size, level = raw.get("commodity"), raw.get("size_class"), raw.get("level")
    return ClassMatch(
        class_id=str(raw["class"]),
        commodity=None if commodity is None else Commodity(str(commodity)),
        size=None if size is None else SizeClass(str(size)),
        phases=opt_int("phases"),
        max_amperes=opt_int("max_amperes"),
        level=None if level is None else ConnectionLevel(str(level)),
    )
