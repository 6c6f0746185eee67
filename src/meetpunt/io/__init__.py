"""The edge: formats in, meetpunt's vocabulary out (ARCHITECTURE.md, "edges (io/)").

Fixed verbs: ``parse_*`` takes bytes, ``read_*`` takes a file. Nothing here writes to
a database or decides what to store; it reads, checks and hands back values, and a
refusal is a value (``valid=False`` with the rule ID), never an exception.

- :mod:`meetpunt.io.p1`: DSMR P1 telegrams (MTR-2), all versions in the field.
- :mod:`meetpunt.io.crc`: CRC16/ARC, the P1 checksum.
- :mod:`meetpunt.io.obis`: the OBIS objects that get a type.
- :mod:`meetpunt.io.files`: meter-data Parquet and CSV files in the hub's source shape.
- :mod:`meetpunt.io.p1_source`: P1 captures and telegrams in the hub's source shape.
- :mod:`meetpunt.io.mqtt`: live P1 telegrams from an MQTT broker (MTR-4).

The last three are imported where they are used, not here, so that parsing a
telegram does not load DuckDB or an MQTT client.
"""

from __future__ import annotations

from meetpunt.io.crc import crc16_arc
from meetpunt.io.p1 import (
    MBusChannel,
    P1Error,
    PowerFailure,
    Telegram,
    TelegramSplitter,
    parse_stream,
    parse_telegram,
    read_p1_file,
    split_telegrams,
)

__all__ = [
    "MBusChannel",
    "P1Error",
    "PowerFailure",
    "Telegram",
    "TelegramSplitter",
    "crc16_arc",
    "parse_stream",
    "parse_telegram",
    "read_p1_file",
    "split_telegrams",
]
