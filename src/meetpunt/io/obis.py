"""The OBIS objects of a DSMR P1 telegram that get a type (MTR-2; P1 companion standard 5.0.2).

Sources: the DSMR 5.0.2 P1 companion standard ('DSMR P1 objects' in docs/requirements.md), the
Belgian e-MUCS-H additions and the DSMR 2.2/3.0 M-Bus gas record. Every object not
listed here is still kept: a single ``(number*unit)`` becomes a ``Decimal`` with its
unit, anything else stays text.

``KINDS`` maps an OBIS code to how its value is read. M-Bus objects are listed with
``n`` for the channel (``0-n:24.2.1``); :func:`generic` turns ``0-2:24.2.1`` into that key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, Literal

Kind = Literal[
    "str",
    "int",
    "hex",
    "timestamp",
    "failure_log",
    "mbus_value",
    "legacy_gas",
    "max_demand",
    "max_demand_history",
]

#: The version object of DSMR 4+ (``42`` = 4.2, ``50`` = 5.0) and the e-MUCS one.
VERSION: Final = "1-3:0.2.8"
VERSION_BE: Final = "0-0:96.1.4"
TIMESTAMP: Final = "0-0:1.0.0"
EQUIPMENT_ID: Final = "0-0:96.1.1"
EQUIPMENT_ID_ALT: Final = "0-0:96.1.0"
TARIFF: Final = "0-0:96.14.0"
IMPORT_T1: Final = "1-0:1.8.1"
IMPORT_T2: Final = "1-0:1.8.2"
EXPORT_T1: Final = "1-0:2.8.1"
EXPORT_T2: Final = "1-0:2.8.2"
POWER_IMPORT: Final = "1-0:1.7.0"
POWER_EXPORT: Final = "1-0:2.7.0"
FAILURES: Final = "0-0:96.7.21"
LONG_FAILURES: Final = "0-0:96.7.9"
FAILURE_LOG: Final = "1-0:99.97.0"
FAILURE_LOG_BUFFER: Final = "0-0:96.7.19"
SAGS: Final = ("1-0:32.32.0", "1-0:52.32.0", "1-0:72.32.0")
SWELLS: Final = ("1-0:32.36.0", "1-0:52.36.0", "1-0:72.36.0")
VOLTAGES: Final = ("1-0:32.7.0", "1-0:52.7.0", "1-0:72.7.0")
CURRENTS: Final = ("1-0:31.7.0", "1-0:51.7.0", "1-0:71.7.0")
TEXT_MESSAGE: Final = "0-0:96.13.0"
#: e-MUCS: this month's maximum demand ``(time)(value*kW)``, the highest quarter-hour
#: average import power, and its 13-month history (a profile-generic list).
MAX_DEMAND: Final = "1-0:1.6.0"
MAX_DEMAND_HISTORY: Final = "0-0:98.1.0"

#: M-Bus objects per channel n = 1..4 (the code after ``0-n:``).
MBUS_DEVICE_TYPE: Final = "24.1.0"
MBUS_IDS: Final = ("96.1.0", "96.1.1")
MBUS_VALUES: Final = ("24.2.1", "24.2.3", "24.3.0")
MBUS_CHANNELS: Final = (1, 2, 3, 4)
#: M-Bus device types (EN 13757-7): 3 gas, 7 water; others are heat/cooling meters.
MBUS_GAS: Final = 3

#: Energy registers that must carry a number with a unit (``kWh`` or ``Wh``).
ENERGY_REGISTERS: Final = (IMPORT_T1, IMPORT_T2, EXPORT_T1, EXPORT_T2)

KINDS: Final[dict[str, Kind]] = {
    VERSION: "str",
    VERSION_BE: "str",
    TIMESTAMP: "timestamp",
    EQUIPMENT_ID: "hex",
    EQUIPMENT_ID_ALT: "hex",
    "0-0:42.0.0": "hex",  # COSEM logical device name (E.ON Hungary)
    TARIFF: "str",
    FAILURES: "int",
    LONG_FAILURES: "int",
    FAILURE_LOG: "failure_log",
    **dict.fromkeys(SAGS, "int"),
    **dict.fromkeys(SWELLS, "int"),
    TEXT_MESSAGE: "hex",
    "0-0:96.13.1": "hex",  # text message codes (DSMR 2.2-4.2)
    "0-0:96.3.10": "str",  # breaker state
    MAX_DEMAND: "max_demand",
    MAX_DEMAND_HISTORY: "max_demand_history",  # E.ON Hungary: billing history, kept as text
    "0-n:24.1.0": "int",
    "0-n:96.1.0": "hex",
    "0-n:96.1.1": "hex",
    "0-n:24.2.1": "mbus_value",
    "0-n:24.2.3": "mbus_value",  # e-MUCS: gas volume, not temperature converted
    "0-n:24.3.0": "legacy_gas",  # DSMR 2.2/3.0 gas record, value on the next line
    "0-n:24.4.0": "str",  # valve position
}

#: The fields checked when a telegram is parsed: counters must be digits.
INT_FIELDS: Final = (FAILURES, LONG_FAILURES, *SAGS, *SWELLS)


def generic(obis: str) -> str:
    """``0-2:24.2.1`` -> ``0-n:24.2.1`` for M-Bus channels 1..4; other codes unchanged."""
    if obis.startswith("0-") and obis[3:4] == ":" and obis[2] in "1234":
        return "0-n" + obis[3:]
    return obis


@lru_cache(maxsize=4096)
def kind_of(obis: str) -> Kind | None:
    """How the value of ``obis`` is read, or None for an object without a known type."""
    return KINDS.get(obis) or KINDS.get(generic(obis))


def _known_codes() -> frozenset[str]:
    listed = [code for code in KINDS if not code.startswith("0-n:")]
    per_channel = [
        f"0-{n}:{code[4:]}" for code in KINDS if code.startswith("0-n:") for n in MBUS_CHANNELS
    ]
    common = [
        POWER_IMPORT,
        POWER_EXPORT,
        *ENERGY_REGISTERS,
        *VOLTAGES,
        *CURRENTS,
        "1-0:21.7.0",
        "1-0:41.7.0",
        "1-0:61.7.0",
        "1-0:22.7.0",
        "1-0:42.7.0",
        "1-0:62.7.0",
        "0-0:17.0.0",
        "1-0:31.4.0",
        "1-0:1.4.0",
        "1-0:1.8.0",
        "1-0:2.8.0",
    ]
    return frozenset([*listed, *per_channel, *common])


#: OBIS codes whose syntax needs no check when a telegram is split (a speed shortcut).
KNOWN_CODES: Final = _known_codes()
