"""Contract terms the market tests build again and again (MKT-1/2)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.domain.contract import ContractType, TariffKind
from meetpunt.market.pricing import ContractTerms, PriceSet


def gas_terms(
    meter: MeterType = MeterType.SMART,
    area: str | None = "A",
    *,
    reference: str = "G-1",
    start: date = date(2026, 1, 1),
    price: str = "1.00",
    residence: bool = True,
) -> ContractTerms:
    """A variable single-price gas contract from ``start`` at ``price`` a m³ in grid
    area ``area`` (its calorific factors), class G4."""
    return ContractTerms(
        reference=reference,
        commodity=Commodity.GAS,
        contract_type=ContractType.VARIABLE,
        tariff=TariffKind.SINGLE,
        meter_type=meter,
        start=start,
        prices=(PriceSet(start, single=Decimal(price)),),
        grid_class="gas_G4",
        residence=residence,
        gas_area=area,
    )
