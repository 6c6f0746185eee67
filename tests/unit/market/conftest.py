"""Constructed market rules with round numbers, so test amounts can be worked out by hand."""

from __future__ import annotations

import pytest

from meetpunt.domain.calendar import OffPeakCalendar
from meetpunt.market.rules import ContractRules, MarketTariffs, contract_rules
from meetpunt.rulebook import offpeak_calendar

# 2026: tax 0.10/kWh, reduction 365/yr (1.00 a day), grid 730/yr (2.00 a day).
# 2027: tax 0.12/kWh, reduction 365/yr (1.00 a day), grid 1095/yr (3.00 a day).
HAND_TARIFFS = {
    "netting": {
        "netting_ends": __import__("datetime").date(2027, 1, 1),
        "feed_in_floor_until": __import__("datetime").date(2030, 1, 1),
        "feed_in_floor_share": "0.50",
    },
    "years": {
        "2026": {
            "vat_rate": "0.21",
            "electricity_tax": [{"up_to": 100000, "rate": "0.10"}],
            "gas_tax": [{"up_to": 100000, "rate": "0.50"}],
            "tax_reduction_per_year": "365",
            "grid": {"electricity_3x25A": "730", "gas_G4": "365"},
        },
        "2027": {
            "vat_rate": "0.21",
            "electricity_tax": [{"up_to": 100000, "rate": "0.12"}],
            "gas_tax": [{"up_to": 100000, "rate": "0.60"}],
            "tax_reduction_per_year": "365",
            "grid": {"electricity_3x25A": "1095", "gas_G4": "365"},
        },
    },
    "large_consumer": {
        "fixed_per_month": "45.00",
        "contracted_kw_per_month": "2.00",
        "peak_kw_per_month": "1.50",
        "metering_per_month": "25.00",
    },
    "vzc": {"electricity_per_kwh": "0.30", "gas_per_m3": "1.40"},
    "unconfirmed_nl": {"temperature_factor_uncorrected": "standaard temperatuurfactor"},
    # Gas: area "A" has calorific factors 1.02 in December 2026 and 1.05 in January
    # 2027 (none in February: the default 1.00, unconfirmed); a meter that does not
    # convert to the reference temperature gets a standard factor of 0.98 (hand values).
    "gas_conversion": {
        "reference_mj_per_m3": "35.17",
        "temperature_factor_uncorrected": "0.98",
        "default_calorific_factor": "1.00",
        "unconfirmed": ["temperature_factor_uncorrected"],
        "calorific": [
            {
                "area": "A",
                "factors": [
                    {"month": __import__("datetime").date(2026, 12, 1), "factor": "1.02"},
                    {"month": __import__("datetime").date(2027, 1, 1), "factor": "1.05"},
                ],
            }
        ],
    },
}


@pytest.fixture(scope="session")
def tariffs() -> MarketTariffs:
    """The constructed tariffs above."""
    return MarketTariffs.from_mapping(HAND_TARIFFS, version="test")


@pytest.fixture(scope="session")
def calendar() -> OffPeakCalendar:
    """The packaged off-peak calendar (07:00-23:00 normal on working days)."""
    return offpeak_calendar()


@pytest.fixture(scope="session")
def rules() -> ContractRules:
    """The packaged switching rules (30 days notice, fee rules, placement fees)."""
    return contract_rules()
