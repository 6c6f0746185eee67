"""Test data for the P1 parser: the real-meter telegrams, CRC helpers, twin snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from meetpunt.domain.calendar import Tariff
from meetpunt.twin.p1 import GasReading, P1Snapshot, render_telegram

TELEGRAMS = Path(__file__).parent / "telegrams"
REAL_FILES = sorted(TELEGRAMS.glob("*.p1"))
#: The real telegrams that carry a CRC16 (DSMR 4+ framing).
WITH_CRC = [p.name for p in REAL_FILES if not p.read_bytes().split(b"!", 1)[1][:1].isspace()]


def real(name: str) -> bytes:
    """The bytes of one real telegram file."""
    return (TELEGRAMS / name).read_bytes()


def crc_bitwise(data: bytes) -> int:
    """CRC16/ARC straight from its definition: reflected poly 0x8005 (0xA001), init 0."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(upto_bang: bytes) -> bytes:
    """A telegram ``/ ... !`` completed with its correct CRC and CRLF."""
    assert upto_bang.endswith(b"!")
    return upto_bang + f"{crc_bitwise(upto_bang):04X}\r\n".encode()


def recrc(telegram: bytes) -> bytes:
    """Recompute the CRC of an edited DSMR 4+ telegram."""
    return with_crc(telegram[: telegram.index(b"!") + 1])


def snapshot(**changes: object) -> P1Snapshot:
    """A three-phase DSMR 5 meter with gas on channel 2 and two logged failures."""
    values: dict[str, object] = {
        "identification": "XMX5LGF0000000000042",
        "timestamp": datetime(2025, 6, 2, 10, 0, tzinfo=UTC),
        "equipment_id": "E0045000012345678",
        "import_wh": (1_234_567, 2_345_678),
        "export_wh": (345_678, 456_789),
        "tariff": Tariff.T2,
        "power_import_w": 1_193,
        "power_export_w": 0,
        "failures": 4,
        "long_failures": 2,
        "failure_log": (
            (datetime(2010, 12, 8, 14, 24, 15, tzinfo=UTC), 240),
            (datetime(2025, 5, 8, 14, 10, 4, tzinfo=UTC), 301),
        ),
        "sags": (2, 1, 0),
        "swells": (0, 3, 0),
        "voltages_v": (230.1, 229.2, 231.3),
        "currents_a": (1, 2, 3),
        "phase_import_w": (1_111, 82, 0),
        "phase_export_w": (0, 0, 0),
        "gas": GasReading(
            2, "G0032000012345678", datetime(2025, 6, 2, 9, 55, tzinfo=UTC), 1_234_567
        ),
    }
    values.update(changes)
    return P1Snapshot(**values)  # type: ignore[arg-type]


def twin_telegrams(count: int = 24) -> list[bytes]:
    """Twin-rendered DSMR 5 telegrams, one every 5 minutes, registers and gas moving on."""
    start = datetime(2025, 10, 26, 0, 0, tzinfo=UTC)  # across the autumn DST change
    out = []
    for i in range(count):
        at = start + timedelta(minutes=5 * i)
        out.append(
            render_telegram(
                snapshot(
                    timestamp=at,
                    import_wh=(1_234_567 + 37 * i, 2_345_678),
                    gas=GasReading(1 + i % 4, "G0032000012345678", at, 1_234_567 + 11 * i),
                ),
                "5.0",
            )
        )
    return out
