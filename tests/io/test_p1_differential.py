"""Differential test against dsmr_parser (the compatibility oracle; MTR-2).

Same real telegrams, each with the dsmr_parser specification for its meter: every
object both parsers understand has the same value and unit, the M-Bus channels and
the failure log agree, and both give the same CRC verdict.

One known, deliberate difference: dsmr_parser reads a ``YYMMDDhhmmssX`` stamp as
Amsterdam wall clock and takes the offset from the calendar; we take it from the X
flag (S = UTC+2, W = UTC+1), as the companion standard defines it. The two agree
whenever the flag matches the calendar; the Iskra IE fixture has ``S`` in February.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from meetpunt.io import parse_telegram, split_telegrams
from meetpunt.io.p1 import Telegram
from tests.io.p1data import real, twin_telegrams

dsmr_parser = pytest.importorskip("dsmr_parser")
from dsmr_parser import obis_references, telegram_specifications  # noqa: E402
from dsmr_parser.exceptions import InvalidChecksumError  # noqa: E402
from dsmr_parser.objects import CosemObject, MBusObject, ProfileGenericObject  # noqa: E402
from dsmr_parser.parsers import TelegramParser  # noqa: E402

S = telegram_specifications
CASES: dict[str, Any] = {
    "dsmr22_iskra_mt382.p1": S.V2_2,
    "dsmr30_iskra_mt382.p1": S.V3,
    "dsmr42_kaifa.p1": S.V4,
    "dsmr50_iskra_mt382.p1": S.V5,
    "dsmr50_iskra_am550_two_mbus.p1": S.V5,
    "emucs171_fluvius.p1": S.BELGIUM_FLUVIUS,
    "emucs171_fluvius_peak_history.p1": S.BELGIUM_FLUVIUS,
    "sagemcom_t210_d_r_austria.p1": S.V5,  # its own spec expects the encrypted frame
    "iskra_ie.p1": S.ISKRA_IE,
    "eon_hungary_sagemcom.p1": S.EON_HUNGARY,
    "easymeter_q3d_b1024_gateway.p1": S.Q3D,
    "easymeter_q3d_a1004_gateway.p1": S.Q3D,
}


def _code_of(pattern: str) -> str | None:
    """``^\\d-\\d:1\\.8\\.1.+?\\r\\n`` -> ``1.8.1`` (the C.D.E part of the OBIS code)."""
    found = re.fullmatch(
        r"\^(?:\\d|\d)-(?:\\d|\d):((?:\d+\\\.){2}\d+)(?:\\\*255)?\.\+\?\\r\\n", pattern
    )
    return found.group(1).replace("\\", "") if found else None


CODES = {
    name: code
    for name in dir(obis_references)
    if isinstance(getattr(obis_references, name), str)
    and (code := _code_of(getattr(obis_references, name)))
}


def theirs(name: str) -> Any:
    frame = split_telegrams(real(name))[0]
    return TelegramParser(CASES[name]).parse(frame.decode("latin-1"), throw_ex=True)


def same_instant(ours: datetime | None, other: datetime, stamp: str) -> None:
    assert ours is not None
    if ours == other:
        return
    # the flag contradicts the calendar: we trust the flag, dsmr_parser the calendar
    assert abs(ours - other) == timedelta(hours=1), (ours, other, stamp)
    assert stamp.endswith(("S", "W"))


def compare_cosem(ours: Telegram, obis: str, obj: Any) -> bool:
    """Compare one plain object; False when we keep it as text only (not compared)."""
    raw = ours.raw_value(obis)
    assert raw is not None, obis
    value = obj.value
    if isinstance(value, datetime):
        same_instant(ours.value(obis), value, raw[1:-1])  # type: ignore[arg-type]
        return True
    if isinstance(value, Decimal):
        mine = ours.value(obis)
        if isinstance(mine, str):  # a number without unit: we keep it as text
            assert Decimal(mine) == value
        else:
            assert mine == value, obis
            assert ours.unit(obis) == obj.unit, obis
        return True
    if isinstance(value, int):
        mine = ours.value(obis)
        # a switch position, a DSMR 3 text-message code: we keep them as text
        assert mine == value if isinstance(mine, int) else int(raw[1:-1]) == value, obis
        return True
    if value is None:
        assert raw == "()", obis
        return True
    # text: dsmr_parser keeps it as sent, we hex-decode where printable
    assert raw[1:-1] == value, obis
    return True


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_values_as_dsmr_parser(name: str) -> None:
    other = theirs(name)
    ours = parse_telegram(split_telegrams(real(name))[0])
    assert ours.valid
    compared = 0
    for attr, obj in other:
        if attr == "MBUS_DEVICES":
            compare_mbus(ours, obj)
            continue
        if attr == "POWER_EVENT_FAILURE_LOG":
            entries = [(e.datetime, e.value) for e in obj.buffer]
            assert len(entries) == len(ours.power_failure_log)
            for (when, seconds), mine in zip(entries, ours.power_failure_log, strict=True):
                same_instant(mine.end, when, "")
                assert mine.duration_s == seconds
            compared += 1
            continue
        code = CODES.get(attr)
        if code is None or isinstance(obj, ProfileGenericObject | MBusObject):
            continue  # objects we keep as text (peaks, histories)
        if not isinstance(obj, CosemObject):
            continue
        a, b = obj.obis_id_code
        obis = f"{a}-{b}:{code}"
        if ours.raw_value(obis) is None:
            obis += "*255"  # EasyMeter's OBIS codes carry the *255 suffix
        compared += compare_cosem(ours, obis, obj)
    assert compared >= 5, name


def compare_mbus(ours: Telegram, devices: list[Any]) -> None:
    mine = {ch.channel: ch for ch in ours.mbus}
    for device in devices:
        channel = mine[device.channel_id]
        for attr, obj in device:
            if attr.endswith("DEVICE_TYPE"):
                assert channel.device_type == int(obj.value)
            elif "EQUIPMENT_IDENTIFIER" in attr:
                raw = ours.raw_value(f"0-{device.channel_id}:96.1.0") or ours.raw_value(
                    f"0-{device.channel_id}:96.1.1"
                )
                assert raw is not None and (raw[1:-1] or None) == obj.value
            elif attr.endswith("READING") and isinstance(obj, MBusObject):
                assert channel.value == obj.value and channel.unit == obj.unit
                same_instant(channel.captured_at, obj.datetime, "")
            elif attr == "GAS_METER_READING":  # DSMR 2.2/3.0: value on the next line
                assert channel.value == obj.value and channel.unit == obj.unit


CRC_CASES = [name for name, spec in CASES.items() if spec["checksum_support"]]


@pytest.mark.parametrize("name", CRC_CASES)
def test_same_crc_verdict(name: str) -> None:
    good = split_telegrams(real(name))[0]
    assert parse_telegram(good).crc_ok is True
    TelegramParser(CASES[name]).parse(good.decode("latin-1"))  # does not raise
    # one digit changed in the first register value
    body_end = good.index(b"!")
    at = good.index(b"*", good.index(b"(", good.index(b"\n1-0:")))
    digit = good[at - 1 : at]
    bad = good[: at - 1] + (b"0" if digit != b"0" else b"1") + good[at:]
    assert bad.index(b"!") == body_end
    ours = parse_telegram(bad)
    assert ours.crc_ok is False and ours.error is not None and ours.error.rule == "MTR-2.crc"
    with pytest.raises(InvalidChecksumError):
        TelegramParser(CASES[name]).parse(bad.decode("latin-1"))


def test_twin_telegrams_agree_with_dsmr_parser() -> None:
    parser = TelegramParser(S.V5)
    for data in twin_telegrams(12):
        other = parser.parse(data.decode("ascii"), throw_ex=True)
        ours = parse_telegram(data)
        assert ours.timestamp == other.P1_MESSAGE_TIMESTAMP.value
        assert Decimal(ours.import_t1_wh or 0) / 1000 == other.ELECTRICITY_USED_TARIFF_1.value
        assert ours.voltages[0] == other.INSTANTANEOUS_VOLTAGE_L1.value
        assert ours.gas is not None
        device = other.get_mbus_device_by_channel(ours.gas.channel)
        assert device.MBUS_METER_READING.value == ours.gas.value
        assert device.MBUS_METER_READING.datetime == ours.gas.captured_at
        log = [(e.datetime, e.value) for e in other.POWER_EVENT_FAILURE_LOG.buffer]
        assert log == [(e.end, e.duration_s) for e in ours.power_failure_log]
