"""Voltage quality rules (UC2, UC3) as typed, pure values.

The numbers live in the ``voltage_quality`` rule file (design rule 2, rules are data): the
legal band 207-253 V, the operators' inverter limits (Enexis 248 V, Stedin 249 V, Liander
250 V; unconfirmed), UC2's rule for feeders with notably many events, and UC3's rule for
an inverter trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meetpunt.errors import RulesDataError


@dataclass(frozen=True)
class InverterLimit:
    """One operator's upper voltage limit for PV inverters (use-case list, UC3)."""

    operator: str
    limit_v: float
    confirmed: bool
    source: str


@dataclass(frozen=True)
class VoltageQualityRules:
    """The ``voltage_quality`` rule file as typed values."""

    low_v: float
    high_v: float
    event_longer_than_s: int
    operator: str
    limits: tuple[InverterLimit, ...]
    feeder_min_events: int
    feeder_min_events_per_meter: float
    connection_min_events: int
    quarter_days: int
    trip_feed_in_share: float
    trip_voltage_margin_v: float
    episode_gap_quarters: int
    min_reference_wh: int
    trip_import_base_factor: float = 2.0
    trip_stop_share: float = 0.1
    episode_min_lost_quarters: float = 0.75
    trip_over_limit_v: float = 0.2
    min_sun_elevation_deg: float = 3.0
    area_latitude: float = 52.1
    area_longitude: float = 5.2
    version: str = ""

    @property
    def inverter(self) -> InverterLimit:
        """The limit of the operator the file (or the caller) chose."""
        return self.limit_of(self.operator)

    def limit_of(self, operator: str) -> InverterLimit:
        """``operator``'s inverter limit; a clear error naming the known operators."""
        for limit in self.limits:
            if limit.operator.casefold() == operator.casefold():
                return limit
        known = ", ".join(x.operator for x in self.limits)
        raise RulesDataError(
            f"voltage_quality: no inverter limit for operator {operator!r}; known: {known}"
        )

    def scaled(self, threshold: float, days: float) -> float:
        """A per-quarter threshold for a read period of ``days`` (at least 1 event)."""
        return max(1.0, threshold * days / self.quarter_days)

    @classmethod
    def from_mapping(
        cls, body: Mapping[str, Any], version: str = "", operator: str | None = None
    ) -> VoltageQualityRules:
        """Build from the rule file's tables; ``operator`` overrides the file's choice."""
        try:
            band, inv, notable, trips = (
                body["band"],
                body["inverter"],
                body["notable"],
                body["trips"],
            )
            limits = tuple(
                InverterLimit(
                    str(x["operator"]),
                    float(x["limit_v"]),
                    bool(x.get("confirmed", False)),
                    str(x["source"]),
                )
                for x in inv["limit"]
            )
            rules = cls(
                low_v=float(band["low_v"]),
                high_v=float(band["high_v"]),
                event_longer_than_s=int(band["event_longer_than_s"]),
                operator=str(operator or inv["operator"]),
                limits=limits,
                feeder_min_events=int(notable["feeder_min_events"]),
                feeder_min_events_per_meter=float(notable["feeder_min_events_per_meter"]),
                connection_min_events=int(notable["connection_min_events"]),
                quarter_days=int(notable["quarter_days"]),
                trip_feed_in_share=float(trips["trip_feed_in_share"]),
                trip_voltage_margin_v=float(trips["trip_voltage_margin_v"]),
                episode_gap_quarters=int(trips["episode_gap_quarters"]),
                min_reference_wh=int(trips["min_reference_wh"]),
                trip_import_base_factor=float(trips["trip_import_base_factor"]),
                trip_stop_share=float(trips["trip_stop_share"]),
                episode_min_lost_quarters=float(trips["episode_min_lost_quarters"]),
                trip_over_limit_v=float(trips["trip_over_limit_v"]),
                min_sun_elevation_deg=float(trips["min_sun_elevation_deg"]),
                area_latitude=float(trips["area_latitude"]),
                area_longitude=float(trips["area_longitude"]),
                version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RulesDataError(
                f"voltage_quality: missing or bad entry {exc}; see the packaged file"
            ) from exc
        if not rules.low_v < rules.high_v:
            raise RulesDataError("voltage_quality: band.low_v must lie below band.high_v")
        rules.inverter  # noqa: B018 - the chosen operator must have a limit
        return rules
