"""The use-case catalogue (PRV-2): every purpose meter data may be read for, as data.

One entry per approved use case ("Goedgekeurde use cases, versie juli
2025", UC1..UC15) and per supplier, app and customer purpose, each with its limits:
parties, data kinds, population, trigger, read window, frequency, pauses,
aggregation, pseudonymisation, retention and sunset. The values live in
``meetpunt/data/use_case_catalogue.toml``; :func:`load_catalogue` reads it through
:func:`meetpunt.rulebook.load_rules`, so an operator loads a later version by putting
a file of the same name in ``MEETPUNT_RULES_DIR``. Validation is strict: an unknown
key, kind, role or population, or a negative number, is a :class:`RulesDataError`
naming the purpose and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from meetpunt.errors import RulesDataError
from meetpunt.meterdata.kinds import KINDS
from meetpunt.privacy.model import QUARANTINE, REACHABILITY, VOLTAGE_PRESENCE, Role
from meetpunt.rulebook import RulesFile, load_rules

CATALOGUE_NAME = "use_case_catalogue"
"""The rule file's name (``[meta] name`` and the file name without ``.toml``)."""

KNOWN_KINDS = frozenset(KINDS) | {VOLTAGE_PRESENCE, REACHABILITY, QUARANTINE}
"""Kinds a purpose may name: the hub's tables, the two on-request kinds and the
quarantine of refused records (read only for data stewardship)."""
CATEGORIES = frozenset({"use_case", "supplier", "app", "customer", "research", "stewardship"})
POPULATIONS = frozenset(
    {
        "any",
        "contractless_or_out_of_service",
        "contractless",
        "already_read",
        "supplied",
        "consented",
        "own",
        "flagged",
    }
)
PERIODS = frozenset({"season", "quarter", "year"})
LEVELS = ("street", "pc6", "pc4", "pc3", "municipality")
"""Aggregation levels, finest first (PRV-6 merges a small cell into the next one)."""
DELETE_AFTER = frozenset({"analysis", "days", "purpose_end"})

_REQUIRED = (
    "id",
    "title_nl",
    "title_en",
    "category",
    "grid_management",
    "parties",
    "kinds",
    "population",
    "trigger",
    "window_days",
    "frequency",
    "pause_days",
    "pseudonymise",
    "notes",
)
_OPTIONAL = ("aggregate", "retention", "sunset", "sunset_condition", "flagged_by")
_AGGREGATE_KEYS = ("required", "min_connections", "dominance", "level")
_AGGREGATE_OPTIONAL = (
    "min_dynamic",
    "min_non_dynamic",
    "period",
    "columns",
    "p_percent",
    "count_rounding",
    "release",
    "noise",
)
_NOISE_KEYS = ("epsilon", "clip_wh_per_day", "budget_per_year", "population_epsilon", "delta")
GRID_UNITS = ("day", "week", "month")
"""The release period grids (PRV-6.period_grid): whole local days, ISO weeks, months."""
RELEASES = frozenset({"exact", "noisy"})


@dataclass(frozen=True)
class FrequencyLimit:
    """At most ``count`` reads of one connection per ``per_days`` days or per ``per``
    (a meteorological season, calendar quarter or calendar year); exactly one is set."""

    count: int
    per_days: int | None = None
    per: str | None = None

    def describe(self) -> str:
        """``1x/5d``, ``4x/year``."""
        every = f"{self.per_days}d" if self.per_days is not None else str(self.per)
        return f"{self.count}x/{every}"


@dataclass(frozen=True)
class NoiseRule:
    """Differential-privacy noise on a purpose's cell sums (PRV-6.noise).

    Each connection's contribution to a cell is clipped to ``clip_wh_per_day`` times
    the grid period's days (the sensitivity), discrete Laplace noise of scale
    sensitivity / ``epsilon`` is added to the sum, and every member of the cell spends
    ``epsilon`` of its ``budget_per_year`` (local calendar year of the period;
    PRV-6.budget). UC14's population rule is decided on counts with discrete Laplace
    noise of scale 1 / ``population_epsilon`` plus a margin that a count below the
    threshold passes with probability at most ``delta`` (PRV-6.population_noise).
    """

    epsilon: float
    clip_wh_per_day: int
    budget_per_year: float
    population_epsilon: float = 1.0
    delta: float = 1e-6


@dataclass(frozen=True)
class AggregateRule:
    """Only aggregates leave (PRV-6): fixed cells (every countable connection of an area)
    at ``level`` or coarser, on a grid of whole local periods (``period``); only the
    ``columns`` may be summed; at least ``min_connections`` *contributors* (non-zero
    contribution) per cell, none above ``dominance`` of the cell's total and the
    ``p_percent`` rule (the rest of the cell must exceed p % of the largest
    contribution, so the second largest cannot estimate the largest closer than that);
    the count of a cell leaves rounded to ``count_rounding`` (0: not at all). UC14 also
    needs ``min_dynamic`` dynamic and ``min_non_dynamic`` other contracts per cell.
    ``release``: ``exact`` (with suppression) or ``noisy`` (``noise`` set)."""

    min_connections: int
    dominance: float
    level: str
    min_dynamic: int | None = None
    min_non_dynamic: int | None = None
    period: str = "day"
    columns: tuple[str, ...] = ("import_wh", "export_wh")
    p_percent: float = 10.0
    count_rounding: int = 0
    release: str = "exact"
    noise: NoiseRule | None = None

    def describe(self) -> str:
        """``>=10 @street, dom 0.5``."""
        text = f">={self.min_connections} @{self.level}, dom {self.dominance:g}"
        if self.min_dynamic is not None or self.min_non_dynamic is not None:
            text += f", dyn>={self.min_dynamic} non-dyn>={self.min_non_dynamic}"
        return text


@dataclass(frozen=True)
class RetentionRule:
    """When data read for the purpose is deleted (PRV-5): after the ``analysis``, after
    ``days`` days, or when the purpose is fulfilled (``purpose_end``)."""

    delete_after: str
    days: int = 0


@dataclass(frozen=True)
class PurposeRule:
    """One purpose of the catalogue with its limits (PRV-2).

    ``trigger`` is ``"none"`` or the evidence a read needs; ``window_days`` 0 and an
    empty ``frequency`` mean the source sets no such limit; ``aggregate`` is ``None``
    when individual values may leave; ``grid_management`` exempts the purpose from the
    customer's administrative opt-out (PRV-3).
    """

    id: str
    title_nl: str
    title_en: str
    category: str
    grid_management: bool
    parties: frozenset[Role]
    kinds: frozenset[str]
    population: str
    trigger: str
    window_days: float
    frequency: tuple[FrequencyLimit, ...]
    pause_days: float
    aggregate: AggregateRule | None
    pseudonymise: bool
    retention: RetentionRule | None
    sunset: date | None
    sunset_condition: str
    notes: str
    flagged_by: tuple[str, ...] = ()
    """Population "flagged": the findings that open this purpose, as ``PURPOSE`` or
    ``PURPOSE:STEP`` (UC3: ``UC2``; UC12: ``UC12:cable``, the step before the individual
    meters); a request must cite one (``<id>.flagged``)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, keys as in the TOML file."""
        return {
            "id": self.id,
            "title_nl": self.title_nl,
            "title_en": self.title_en,
            "category": self.category,
            "grid_management": self.grid_management,
            "parties": sorted(r.value for r in self.parties),
            "kinds": sorted(self.kinds),
            "population": self.population,
            "trigger": self.trigger,
            "window_days": self.window_days,
            "frequency": [
                {"count": f.count, "per_days": f.per_days, "per": f.per} for f in self.frequency
            ],
            "pause_days": self.pause_days,
            "aggregate": None if self.aggregate is None else _aggregate_dict(self.aggregate),
            "pseudonymise": self.pseudonymise,
            "retention": None if self.retention is None else self.retention.__dict__.copy(),
            "sunset": None if self.sunset is None else self.sunset.isoformat(),
            "sunset_condition": self.sunset_condition,
            "notes": self.notes,
            **({"flagged_by": list(self.flagged_by)} if self.flagged_by else {}),
        }


@dataclass(frozen=True)
class Catalogue:
    """A version of the use-case catalogue (PRV-2): its source and its purposes by id."""

    version: str
    valid_from: date
    source: str
    purposes: dict[str, PurposeRule]

    def get(self, purpose_id: str) -> PurposeRule | None:
        """The purpose called ``purpose_id``, or ``None`` when the catalogue lacks it."""
        return self.purposes.get(purpose_id)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: version, validity, source and every purpose by id."""
        return {
            "version": self.version,
            "valid_from": self.valid_from.isoformat(),
            "source": self.source,
            "purposes": {pid: rule.as_dict() for pid, rule in self.purposes.items()},
        }


def _aggregate_dict(rule: AggregateRule) -> dict[str, Any]:
    out = rule.__dict__.copy()
    out["columns"] = list(rule.columns)
    out["noise"] = None if rule.noise is None else rule.noise.__dict__.copy()
    return out


def load_catalogue() -> Catalogue:
    """Load ``use_case_catalogue.toml`` (operator override first) and validate it."""
    return catalogue_from_rules(load_rules(CATALOGUE_NAME))


def catalogue_from_rules(loaded: RulesFile) -> Catalogue:
    """Build and validate a :class:`Catalogue` from a loaded rule file."""
    where = loaded.meta.path
    if loaded.meta.name != CATALOGUE_NAME:
        raise RulesDataError(
            f"{where}: meta.name is {loaded.meta.name!r}; a catalogue says {CATALOGUE_NAME!r}"
        )
    extra = sorted(set(loaded.body) - {"purpose"})
    if extra:
        raise RulesDataError(f"{where}: unknown table(s) {', '.join(extra)}; only [[purpose]]")
    entries = loaded.body.get("purpose")
    if not isinstance(entries, list) or not entries:
        raise RulesDataError(f"{where}: no [[purpose]] entries")
    purposes: dict[str, PurposeRule] = {}
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise RulesDataError(f"{where}: purpose #{index} is not a table")
        rule = _purpose(entry, f"{where}: purpose {entry.get('id', f'#{index}')!s}")
        if rule.id in purposes:
            raise RulesDataError(f"{where}: purpose {rule.id} is defined twice")
        purposes[rule.id] = rule
    for rule in purposes.values():
        unknown = sorted({f.split(":")[0] for f in rule.flagged_by} - set(purposes))
        if unknown:
            raise RulesDataError(
                f"{where}: purpose {rule.id}: flagged_by names unknown purpose(s) "
                f"{', '.join(unknown)}"
            )
    return Catalogue(loaded.meta.version, loaded.meta.valid_from, loaded.meta.source, purposes)


def _purpose(entry: Mapping[str, Any], at: str) -> PurposeRule:
    _keys(entry, _REQUIRED, _OPTIONAL, at)
    parties: set[Role] = set()
    for value in _list(entry, "parties", at):
        try:
            parties.add(Role(value))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise RulesDataError(f"{at}: parties: unknown role {value!r}; known: {known}") from None
    kinds = _list(entry, "kinds", at)
    unknown = sorted(set(kinds) - KNOWN_KINDS)
    if unknown:
        raise RulesDataError(
            f"{at}: kinds: unknown kind(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(KNOWN_KINDS))}"
        )
    sunset = entry.get("sunset")
    if sunset is not None and (not isinstance(sunset, date) or isinstance(sunset, datetime)):
        raise RulesDataError(f"{at}: sunset must be a TOML date (YYYY-MM-DD)")
    frequency = entry["frequency"]
    if not isinstance(frequency, list):
        raise RulesDataError(f"{at}: frequency must be a list of {{count, per_days|per}}")
    return PurposeRule(
        id=_text(entry, "id", at),
        title_nl=_text(entry, "title_nl", at),
        title_en=_text(entry, "title_en", at),
        category=_choice(entry, "category", CATEGORIES, at),
        grid_management=_bool(entry, "grid_management", at),
        parties=frozenset(parties),
        kinds=frozenset(kinds),
        population=_choice(entry, "population", POPULATIONS, at),
        trigger=_text(entry, "trigger", at),
        window_days=_number(entry, "window_days", at),
        frequency=tuple(_frequency(f, f"{at}: frequency[{i}]") for i, f in enumerate(frequency)),
        pause_days=_number(entry, "pause_days", at),
        aggregate=_aggregate(entry.get("aggregate"), f"{at}: aggregate"),
        pseudonymise=_bool(entry, "pseudonymise", at),
        retention=_retention(entry.get("retention"), f"{at}: retention"),
        sunset=sunset,
        sunset_condition=_text(entry, "sunset_condition", at, required=False),
        notes=_text(entry, "notes", at),
        flagged_by=_flagged_by(entry, at),
    )


def _flagged_by(entry: Mapping[str, Any], at: str) -> tuple[str, ...]:
    """``flagged_by``: required exactly when the population is "flagged"."""
    flagged = entry.get("population") == "flagged"
    if "flagged_by" not in entry:
        if flagged:
            raise RulesDataError(
                f"{at}: population 'flagged' needs flagged_by, the purposes whose stored "
                "finding opens this one"
            )
        return ()
    names = tuple(_list(entry, "flagged_by", at))
    if not flagged or not names:
        raise RulesDataError(
            f"{at}: flagged_by is for population 'flagged' and names at least one purpose"
        )
    return names


def _frequency(value: Any, at: str) -> FrequencyLimit:
    if not isinstance(value, dict):
        raise RulesDataError(f"{at}: must be a table {{count, per_days}} or {{count, per}}")
    _keys(value, ("count",), ("per_days", "per"), at)
    if ("per_days" in value) == ("per" in value):
        raise RulesDataError(f"{at}: give exactly one of per_days and per")
    count = _integer(value, "count", at, minimum=1)
    if "per_days" in value:
        return FrequencyLimit(count, per_days=_integer(value, "per_days", at, minimum=1))
    return FrequencyLimit(count, per=_choice(value, "per", PERIODS, at))


def _aggregate(value: Any, at: str) -> AggregateRule | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RulesDataError(f"{at}: must be a table")
    _keys(value, _AGGREGATE_KEYS, _AGGREGATE_OPTIONAL, at)
    required = _bool(value, "required", at)
    dominance = value["dominance"]
    if isinstance(dominance, bool) or not isinstance(dominance, int | float):
        raise RulesDataError(f"{at}: dominance must be a number above 0, at most 1")
    if not 0 < dominance <= 1:
        raise RulesDataError(f"{at}: dominance must be above 0 and at most 1, not {dominance}")
    columns = (
        tuple(_list(value, "columns", at)) if "columns" in value else ("import_wh", "export_wh")
    )
    p_percent = float(_number(value, "p_percent", at)) if "p_percent" in value else 10.0
    release = _choice(value, "release", RELEASES, at) if "release" in value else "exact"
    noise = _noise(value.get("noise"), f"{at}: noise")
    if (release == "noisy") != (noise is not None):
        raise RulesDataError(f'{at}: release = "noisy" needs a noise table, and only it')
    rule = AggregateRule(
        min_connections=_integer(value, "min_connections", at, minimum=1),
        dominance=float(dominance),
        level=_choice(value, "level", frozenset(LEVELS), at),
        min_dynamic=_integer(value, "min_dynamic", at) if "min_dynamic" in value else None,
        min_non_dynamic=(
            _integer(value, "min_non_dynamic", at) if "min_non_dynamic" in value else None
        ),
        period=_choice(value, "period", frozenset(GRID_UNITS), at) if "period" in value else "day",
        columns=columns,
        p_percent=p_percent,
        count_rounding=(_integer(value, "count_rounding", at) if "count_rounding" in value else 0),
        release=release,
        noise=noise,
    )
    return rule if required else None


def _noise(value: Any, at: str) -> NoiseRule | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RulesDataError(f"{at}: must be a table")
    _keys(value, _NOISE_KEYS[:3], _NOISE_KEYS[3:], at)
    numbers = {k: _number(value, k, at) for k in _NOISE_KEYS if k in value}
    for key in ("epsilon", "budget_per_year", "population_epsilon"):
        if key in numbers and numbers[key] <= 0:
            raise RulesDataError(f"{at}: {key} must be above 0")
    if not 0 < numbers.get("delta", 1e-6) < 1:
        raise RulesDataError(f"{at}: delta must lie between 0 and 1")
    return NoiseRule(
        epsilon=float(numbers["epsilon"]),
        clip_wh_per_day=_integer(value, "clip_wh_per_day", at, minimum=1),
        budget_per_year=float(numbers["budget_per_year"]),
        population_epsilon=float(numbers.get("population_epsilon", 1.0)),
        delta=float(numbers.get("delta", 1e-6)),
    )


def _retention(value: Any, at: str) -> RetentionRule | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RulesDataError(f"{at}: must be a table {{delete_after, days}}")
    _keys(value, ("delete_after", "days"), (), at)
    delete_after = _choice(value, "delete_after", DELETE_AFTER, at)
    days = _integer(value, "days", at, minimum=1 if delete_after == "days" else 0)
    return RetentionRule(delete_after, days)


def _keys(
    value: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...], at: str
) -> None:
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        allowed = ", ".join((*required, *optional))
        raise RulesDataError(f"{at}: unknown key(s) {', '.join(unknown)}; allowed: {allowed}")
    missing = [k for k in required if k not in value]
    if missing:
        raise RulesDataError(f"{at}: missing key(s) {', '.join(missing)}")


def _text(value: Mapping[str, Any], key: str, at: str, *, required: bool = True) -> str:
    text = value.get(key, "")
    if not isinstance(text, str) or (required and not text.strip()):
        raise RulesDataError(f"{at}: {key} must be a non-empty string")
    return text


def _bool(value: Mapping[str, Any], key: str, at: str) -> bool:
    flag = value[key]
    if not isinstance(flag, bool):
        raise RulesDataError(f"{at}: {key} must be true or false, not {flag!r}")
    return flag


def _choice(value: Mapping[str, Any], key: str, allowed: frozenset[str], at: str) -> str:
    choice = value[key]
    if choice not in allowed:
        raise RulesDataError(
            f"{at}: {key}: unknown value {choice!r}; known: {', '.join(sorted(allowed))}"
        )
    return str(choice)


def _list(value: Mapping[str, Any], key: str, at: str) -> list[str]:
    items = value[key]
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise RulesDataError(f"{at}: {key} must be a non-empty list of names")
    if len(set(items)) != len(items):
        raise RulesDataError(f"{at}: {key} names a value twice")
    return items


def _number(value: Mapping[str, Any], key: str, at: str) -> float:
    number = value[key]
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise RulesDataError(f"{at}: {key} must be a number, not {number!r}")
    if not math.isfinite(number) or number < 0:
        raise RulesDataError(f"{at}: {key} must not be negative, not {number}")
    return number


def _integer(value: Mapping[str, Any], key: str, at: str, *, minimum: int = 0) -> int:
    number = value[key]
    if isinstance(number, bool) or not isinstance(number, int):
        raise RulesDataError(f"{at}: {key} must be a whole number, not {number!r}")
    if number < minimum:
        raise RulesDataError(f"{at}: {key} must be at least {minimum}, not {number}")
    return number
