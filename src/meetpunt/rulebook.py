"""Rules as data (design rule 2 in docs/requirements.md): load the versioned rule files.

Every rule table (capacity classes, the SAP capacity table, the outage compensation
scheme, the off-peak calendar, ...) is a TOML file in ``meetpunt/data/`` with a
``[meta]`` table naming its version, validity date and source (seed or law). An
operator overrides a file by putting one of the same name in the directory named by
``MEETPUNT_RULES_DIR``; the code never hard-codes the values.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from meetpunt.domain.allocation import SapRules
from meetpunt.domain.calendar import OffPeakCalendar
from meetpunt.domain.capacity import CapacityClasses
from meetpunt.domain.compensation import CompensationScheme
from meetpunt.domain.customer import MicroEnterpriseCriteria
from meetpunt.domain.vee import VeeRules
from meetpunt.domain.voltage import VoltageQualityRules
from meetpunt.errors import RulesDataError

RULES_DIR_ENV = "MEETPUNT_RULES_DIR"
_REQUIRED_META = ("name", "version", "valid_from", "source")


@dataclass(frozen=True)
class RulesMeta:
    """Where a rule table comes from and since when it holds."""

    name: str
    version: str
    valid_from: date
    source: str
    path: str


@dataclass(frozen=True)
class RulesFile:
    """A loaded rule file: its ``meta`` and the rest of its tables as ``body``."""

    meta: RulesMeta
    body: dict[str, Any]


def rules_path(name: str) -> Path | None:
    """The operator's override for ``name`` if ``MEETPUNT_RULES_DIR`` has one."""
    override = os.environ.get(RULES_DIR_ENV)
    if override:
        candidate = Path(override) / f"{name}.toml"
        if candidate.is_file():
            return candidate
    return None


def load_rules(name: str) -> RulesFile:
    """Load rule file ``name`` (without ``.toml``), override first, packaged second.

    Raises :class:`RulesDataError` naming the file when it is missing, not valid TOML,
    or lacks one of the ``[meta]`` keys.
    """
    override = rules_path(name)
    if override is not None:
        text, where = override.read_text(encoding="utf-8"), str(override)
    else:
        resource = resources.files("meetpunt.data").joinpath(f"{name}.toml")
        if not resource.is_file():
            raise RulesDataError(f"rules file {name}.toml is not packaged with meetpunt")
        text, where = resource.read_text(encoding="utf-8"), f"meetpunt/data/{name}.toml"
    return parse_rules(text, where)


def parse_rules(text: str, where: str) -> RulesFile:
    """Parse the TOML ``text`` of a rule file; ``where`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesDataError(f"{where}: not valid TOML ({exc}); fix the file") from exc
    meta = data.pop("meta", None)
    if not isinstance(meta, dict):
        raise RulesDataError(f"{where}: has no [meta] table with {', '.join(_REQUIRED_META)}")
    missing = [k for k in _REQUIRED_META if k not in meta]
    if missing:
        raise RulesDataError(f"{where}: [meta] lacks {', '.join(missing)}")
    valid_from = meta["valid_from"]
    if not isinstance(valid_from, date):
        raise RulesDataError(f"{where}: meta.valid_from must be a TOML date (YYYY-MM-DD)")
    return RulesFile(
        meta=RulesMeta(
            name=str(meta["name"]),
            version=str(meta["version"]),
            valid_from=valid_from,
            source=str(meta["source"]),
            path=where,
        ),
        body=data,
    )


def capacity_classes() -> CapacityClasses:
    """The small/large thresholds and gas meter sizes (REG-3)."""
    return CapacityClasses.from_mapping(load_rules("capacity_classes").body)


def sap_rules() -> SapRules:
    """The SAP limits, capacity table and charges (REG-5)."""
    loaded = load_rules("sap_rules")
    return SapRules.from_mapping(loaded.body, version=loaded.meta.version)


def micro_enterprise_criteria() -> MicroEnterpriseCriteria:
    """The micro-enterprise test thresholds (REG-4)."""
    return MicroEnterpriseCriteria.from_mapping(load_rules("end_customer_types").body)


def offpeak_calendar() -> OffPeakCalendar:
    """The off-peak holidays and regional normal-tariff hours (MKT-2)."""
    loaded = load_rules("offpeak_calendar")
    return OffPeakCalendar.from_mapping(loaded.body, version=loaded.meta.version)


def compensation_scheme() -> CompensationScheme:
    """The outage compensation classes, thresholds and amounts (MKT-8)."""
    loaded = load_rules("outage_compensation")
    return CompensationScheme.from_mapping(loaded.body, version=loaded.meta.version)


def vee_rules() -> VeeRules:
    """The VEE thresholds and the retention period of daily readings (MTR-5, MTR-6)."""
    loaded = load_rules("vee_rules")
    return VeeRules.from_mapping(loaded.body, version=loaded.meta.version)


def voltage_quality(operator: str | None = None) -> VoltageQualityRules:
    """The voltage band, inverter limits and UC2/UC3 rules (UC2, UC3); ``operator``
    chooses whose inverter limit applies (default: the file's ``inverter.operator``)."""
    loaded = load_rules("voltage_quality")
    return VoltageQualityRules.from_mapping(loaded.body, loaded.meta.version, operator)
