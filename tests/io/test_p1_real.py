"""Real-meter telegrams (dsmr_parser's fixtures), values checked by hand (MTR-2, MTR-3).

Timestamps: ``W`` = UTC+1, ``S`` = UTC+2; DSMR 2.2/3.0 stamps have no flag and are
Europe/Amsterdam wall clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from meetpunt.domain.calendar import Tariff
from meetpunt.io import parse_stream, parse_telegram, read_p1_file, split_telegrams
from meetpunt.io.p1 import MaxDemand, MBusChannel, PowerFailure, Telegram
from meetpunt.jsonout import dumps_bytes
from tests.io.p1data import REAL_FILES, TELEGRAMS, WITH_CRC, real, with_crc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def one(name: str) -> Telegram:
    telegrams = list(parse_stream(real(name)))
    assert len(telegrams) == 1
    return telegrams[0]


@pytest.mark.parametrize("name", [p.name for p in REAL_FILES])
def test_every_real_telegram_is_valid(name: str) -> None:
    telegrams = list(read_p1_file(TELEGRAMS / name))
    assert [t.valid for t in telegrams] == [True], [t.error for t in telegrams]
    telegram = telegrams[0]
    assert telegram.crc_ok is (True if name in WITH_CRC else None)
    assert real(name).startswith(telegram.raw) and telegram.raw.endswith(b"\r\n")
    assert telegram.to_json()["error"] is None


def test_the_fixture_set_covers_the_versions() -> None:
    versions = {one(p.name).version for p in REAL_FILES}
    assert {"2.2/3.0", "4.2", "5.0", "e-MUCS", None} <= versions
    assert len(WITH_CRC) == 8


def test_dsmr22_iskra() -> None:
    t = one("dsmr22_iskra_mt382.p1")
    assert (t.valid, t.crc_ok, t.version, t.header) == (True, None, "2.2/3.0", r"ISk5\2MT382-1004")
    assert t.timestamp is None
    assert t.equipment_id == "00000000000000"  # hex of NUL bytes: kept as sent
    assert (t.import_t1_wh, t.import_t2_wh, t.export_t1_wh, t.export_t2_wh) == (1001,) * 4
    assert t.tariff is Tariff.T1
    assert t.value("1-0:1.7.0") == Decimal("1.01") and t.unit("1-0:1.7.0") == "kW"
    assert t.value("0-0:17.0.0") == Decimal("999.00")
    # the DSMR 2.2 gas record: value on the next line, stamp without S/W flag
    # 161107190000 = 7 Nov 2016 19:00 Amsterdam winter time = 18:00 UTC
    assert t.mbus == (
        MBusChannel(1, 3, "000000000000", utc(2016, 11, 7, 18, 0, 0), Decimal("1.001"), "m3"),
    )
    assert t.gas is not None and t.gas.value == Decimal("1.001")
    assert t.raw_value("0-1:24.3.0") == "(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)(00001.001)"
    assert t.value("0-1:24.4.0") == "1"
    assert t.power_failure_log == ()
    assert not t.ambiguous_time


def test_dsmr30_iskra_hex_texts() -> None:
    t = one("dsmr30_iskra_mt382.p1")
    assert t.valid and t.crc_ok is None and t.version == "2.2/3.0"
    assert t.equipment_id == "K8EG004046395507"
    assert t.import_t1_wh == t.import_t2_wh == t.export_t1_wh == t.export_t2_wh == 12_345_678
    assert t.tariff is Tariff.T2
    assert t.value("0-0:96.13.1") == "012345678"
    assert t.value("0-0:96.13.0") == "0123456789:;<=>?" * 4 + "0123456789:;<=>?"
    assert t.value("0-0:17.0.0") == Decimal(16) and t.unit("0-0:17.0.0") == "A"
    gas = t.gas
    assert gas is not None
    # 090212160000: 12 Feb 2009 16:00 Amsterdam (winter, UTC+1)
    assert (gas.channel, gas.device_type, gas.equipment_id) == (1, 3, "2222ABCD123456789")
    assert (gas.captured_at, gas.value, gas.unit) == (utc(2009, 2, 12, 15), Decimal("1.001"), "m3")


def test_dsmr42_kaifa_with_failure_log() -> None:
    t = one("dsmr42_kaifa.p1")
    assert (t.valid, t.crc_ok, t.version, t.header) == (True, True, "4.2", "KFM5KAIFA-METER")
    assert t.timestamp == utc(2016, 11, 13, 19, 57, 57)  # 161113205757W
    # not printable as hex ASCII (anonymised by the fixture's author): kept as sent
    assert t.equipment_id == "3960221976967177082151037881335713"
    assert (t.import_t1_wh, t.import_t2_wh) == (1_581_123, 1_435_706)
    assert (t.export_t1_wh, t.export_t2_wh) == (0, 0)
    assert t.tariff is Tariff.T2
    assert t.power_import_kw == Decimal("2.027") and t.power_export_kw == Decimal(0)
    assert (t.power_failures, t.long_power_failures) == (15, 7)
    assert t.power_failure_log == (
        PowerFailure(utc(2000, 1, 4, 17, 3, 20), 237_126),  # 000104180320W
        PowerFailure(utc(1999, 12, 31, 23, 0, 1), 2_147_583_646),  # 000101000001W
        PowerFailure(utc(2000, 1, 1, 23, 0, 3), 2_317_482_647),  # 000102000003W
    )
    # 237126 s = 2 days 17:52:06 before the end
    assert t.power_failure_log[0].start == utc(2000, 1, 1, 23, 11, 14)
    assert t.sags == (0, 0, 0) and t.swells == (0, 0, 0)
    assert t.voltages == (None, None, None)  # DSMR 4.2 has no voltages
    assert t.currents == (Decimal(0), Decimal(6), Decimal(2))
    assert t.gas == MBusChannel(
        1,
        3,
        "4819243993373755377509728609491464",
        utc(2016, 11, 29, 19, 0, 0),  # 161129200000W
        Decimal("981.443"),
        "m3",
    )


def test_dsmr50_iskra() -> None:
    t = one("dsmr50_iskra_mt382.p1")
    assert (t.valid, t.crc_ok, t.version) == (True, True, "5.0")
    assert t.timestamp == utc(2017, 1, 2, 18, 20, 2)  # 170102192002W
    assert t.equipment_id == "K8EG004046395507"
    assert (t.import_t1_wh, t.import_t2_wh, t.export_t1_wh, t.export_t2_wh) == (
        4426,
        2399,
        2444,
        0,
    )
    assert (t.power_failures, t.long_power_failures) == (13, 0)
    assert t.power_failure_log == ()  # 1-0:99.97.0(0)(0-0:96.7.19)
    assert t.voltages == (Decimal("230.0"), Decimal("230.0"), Decimal("229.0"))
    assert t.currents == (Decimal("0.48"), Decimal("0.44"), Decimal("0.86"))
    assert t.value("0-0:96.13.0") is None  # empty text message
    channel_1, channel_2 = t.mbus
    assert channel_1 == MBusChannel(
        1, 3, "2222ABCD123456789", utc(2017, 1, 2, 15, 10, 5), Decimal("0.107"), "m3"
    )
    assert channel_2 == MBusChannel(2, 3, None, None, None, None)
    assert channel_2.is_placeholder
    assert t.gas_readings == (channel_1,)


def test_dsmr50_am550_gas_on_channel_2() -> None:
    t = one("dsmr50_iskra_am550_two_mbus.p1")
    assert t.valid and t.crc_ok and t.header == r"ISK5\2M550T-1012"
    assert t.timestamp == utc(2020, 4, 26, 20, 33, 25)  # 200426223325S
    assert t.equipment_id == "E0044007382246019"
    assert (t.import_t1_wh, t.import_t2_wh) == (2_130_115, 245_467)
    assert t.tariff is Tariff.T1
    assert (t.power_failures, t.long_power_failures) == (5, 3)
    assert t.power_failure_log == (PowerFailure(utc(2019, 3, 26, 8, 50, 15), 2014),)
    assert t.sags == (1, 1, 192) and t.swells == (1, 1, 1)
    assert t.voltages == (Decimal("229.9"), Decimal("229.2"), Decimal("222.9"))
    placeholder, gas = t.mbus
    # channel 1 is the meters' empty placeholder: 700101010000W and a unitless zero
    assert placeholder == MBusChannel(1, 3, None, utc(1970, 1, 1), Decimal(0), None)
    assert placeholder.is_placeholder and placeholder.is_gas
    assert gas == MBusChannel(
        2, 3, "G0039001936990619", utc(2020, 4, 26, 20, 30, 1), Decimal("246.138"), "m3"
    )
    assert t.gas == gas and t.gas_readings == (gas,)


def test_emucs_fluvius() -> None:
    t = one("emucs171_fluvius.p1")
    assert (t.valid, t.crc_ok, t.version) == (True, True, "e-MUCS")
    assert t.value("0-0:96.1.4") == "50217"
    assert t.timestamp == utc(2020, 5, 12, 11, 54, 9)  # 200512135409S
    assert t.equipment_id == "1SAG3101021605"
    assert (t.import_t1_wh, t.import_t2_wh, t.export_t1_wh, t.export_t2_wh) == (34, 15_758, 0, 11)
    assert t.tariff is Tariff.T1  # register 1 (in Belgium: day tariff)
    assert t.value("1-0:1.4.0") == Decimal("2.351") and t.unit("1-0:1.4.0") == "kW"
    # the month's maximum demand and its history: typed, each with its own time
    peak = MaxDemand(utc(2020, 5, 9, 11, 45, 58), Decimal("2.589"), "kW")
    assert t.max_demand == peak and t.value("1-0:1.6.0") == peak and t.unit("1-0:1.6.0") == "kW"
    assert t.max_demand_history == (
        MaxDemand(utc(2020, 4, 23, 17, 25, 38), Decimal("3.695"), "kW", utc(2020, 4, 30, 22)),
        MaxDemand(utc(2020, 3, 5, 10, 21, 39), Decimal("5.980"), "kW", utc(2020, 3, 31, 22)),
        MaxDemand(utc(2020, 2, 10, 2, 54, 21), Decimal("4.318"), "kW", utc(2020, 2, 29, 22)),
    )
    assert t.value("0-0:98.1.0") == t.max_demand_history
    gas, water = t.mbus
    assert gas == MBusChannel(
        1, 3, "7FLO2119033733", utc(2020, 5, 12, 11, 45, 58), Decimal("112.384"), "m3"
    )
    assert gas.is_gas and not water.is_gas
    assert (water.device_type, water.equipment_id, water.value) == (
        7,
        "8SAG1234567890",
        Decimal("872.234"),
    )
    assert t.gas_readings == (gas,)


def test_emucs_fluvius_no_time_stamp_in_peak_history() -> None:
    t = one("emucs171_fluvius_peak_history.p1")
    assert t.valid and t.crc_ok
    assert t.timestamp == utc(2023, 11, 2, 11, 15, 48)  # 231102121548W
    assert "(632525252525W)" in str(t.raw_value("0-0:98.1.0"))
    # 632525252525W is the meter's "no time": August 2023 had no maximum yet
    first, *rest = t.max_demand_history
    assert first == MaxDemand(None, Decimal("0.000"), "kW", utc(2023, 7, 31, 22))
    assert [(e.at, e.value) for e in rest] == [
        (utc(2023, 8, 31, 16, 15), Decimal("1.862")),
        (utc(2023, 9, 10, 16, 30), Decimal("4.229")),
        (utc(2023, 10, 16, 11), Decimal("4.927")),
    ]
    assert rest[-1].closed_at == utc(2023, 10, 31, 23)  # 231101000000W
    assert t.max_demand == MaxDemand(utc(2023, 11, 2, 10, 45), Decimal("3.064"), "kW")
    assert (t.import_t1_wh, t.import_t2_wh, t.export_t1_wh, t.export_t2_wh) == (
        301_548,
        270_014,
        5,
        0,
    )
    assert t.gas is not None
    assert (t.gas.captured_at, t.gas.value) == (utc(2023, 11, 2, 11, 10, 2), Decimal("92.287"))


def test_sagemcom_austria_registers_in_wh() -> None:
    t = one("sagemcom_t210_d_r_austria.p1")
    assert (t.valid, t.crc_ok, t.version) == (True, True, "5.0")
    assert t.timestamp == utc(2022, 10, 6, 13, 50, 14)  # 221006155014S
    assert (t.import_t1_wh, t.import_t2_wh, t.export_t1_wh, t.export_t2_wh) == (
        5_017_120,
        1_528_646,
        0,
        58,
    )
    assert t.value("1-0:1.8.0") == Decimal(6_545_766) and t.unit("1-0:1.8.0") == "Wh"
    assert t.value("1-0:3.8.0") == Decimal(747) and t.unit("1-0:3.8.0") == "varh"
    assert t.tariff is None and t.equipment_id is None and t.mbus == ()


def test_iskra_ie_control_byte_in_header() -> None:
    t = one("iskra_ie.p1")
    assert t.valid and t.crc_ok and t.version is None
    assert t.header == "ISk5\x02MIE5T-200"
    assert t.timestamp == utc(2023, 2, 2, 11, 27, 47)  # 230202132747S: the flag says UTC+2
    assert t.equipment_id == "09610"  # 0-0:96.1.0, odd length: not hex
    assert t.value("1-0:0.0.0") == "00000000"
    assert t.import_t1_wh == 10_181
    # 0-1:96.1.1() alone: a channel without type, id or reading
    assert t.mbus == (MBusChannel(1, None, None, None, None, None),)
    assert t.gas is None


def test_eon_hungary() -> None:
    t = one("eon_hungary_sagemcom.p1")
    assert t.valid and t.crc_ok and t.version is None
    assert t.timestamp == utc(2023, 7, 24, 13, 7, 30)
    assert t.equipment_id == "890082200002160"  # 0-0:96.1.0, hex-decoded
    assert t.value("0-0:42.0.0") == "SAG3082200002160"
    assert (t.import_t1_wh, t.export_t1_wh) == (47_719, 401_829)
    assert t.value("1-0:1.8.3") == Decimal("0.000")
    assert t.value("1-0:13.7.0") == "4.556"  # no unit, no known type: text
    assert t.value("1-0:14.7.0") == Decimal("50.00") and t.unit("1-0:14.7.0") == "Hz"
    assert len(t.fields) == 45
    # 0-0:98.1.0 here is a monthly billing history, not e-MUCS's maximum demands: text
    assert str(t.value("0-0:98.1.0")).startswith("(230701000000S)(000040.777*kWh)")
    assert t.max_demand_history == () and t.max_demand is None


def test_easymeter_behind_a_gateway() -> None:
    data = real("easymeter_q3d_b1024_gateway.p1")
    telegrams = list(parse_stream(data))
    assert len(telegrams) == 1
    t = telegrams[0]
    assert t.valid and t.crc_ok is None and t.header == "ESY5Q3DB1024 V3.04"
    assert t.value("1-0:1.8.0*255") == Decimal("52185.7825309")
    assert t.value("1-0:21.7.0*255") == Decimal("747.85") and t.unit("1-0:21.7.0*255") == "W"
    assert t.value("0-0:96.1.255*255") == "1ESY1313002565"
    # the gateway's own bytes after "!" are not part of the telegram
    assert t.raw.endswith(b"!\r\n")
    whole = parse_telegram(data)
    assert not whole.valid and whole.error is not None
    assert whole.error.rule == "MTR-2.malformed"


def test_json_shape() -> None:
    t = one("dsmr50_iskra_am550_two_mbus.p1")
    out = t.to_json()
    assert list(out) == [
        "valid",
        "crc_ok",
        "version",
        "header",
        "timestamp",
        "fields",
        "power_failure_log",
        "mbus",
        "error",
    ]
    assert out["timestamp"] == "2020-04-26T20:33:25Z"
    assert out["fields"]["1-0:1.8.1"] == {"value": 2130.115, "unit": "kWh"}
    assert out["fields"]["0-0:96.7.21"] == {"value": 5, "unit": None}
    assert out["fields"]["0-0:96.14.0"] == {"value": "0001", "unit": None}
    assert out["fields"]["0-0:96.1.1"] == {"value": "E0044007382246019", "unit": None}
    assert out["fields"]["0-0:1.0.0"] == {"value": "2020-04-26T20:33:25Z", "unit": None}
    assert out["fields"]["0-0:96.13.0"] == {"value": None, "unit": None}
    assert out["fields"]["1-0:99.97.0"] == {"value": 1, "unit": None}
    assert out["power_failure_log"] == [{"end": "2019-03-26T08:50:15Z", "duration_s": 2014}]
    assert out["mbus"][1] == {
        "channel": 2,
        "device_type": 3,
        "id": "G0039001936990619",
        "timestamp": "2020-04-26T20:30:01Z",
        "value": 246.138,
        "unit": "m3",
    }
    assert out["error"] is None
    assert len(out["fields"]) == 38


def test_dsmr40_layout() -> None:
    """DSMR 4.0.x: version 40, hourly gas; built here (no real 4.0 fixture is MIT)."""
    body = (
        b"/ISk5\\2MT382-1000\r\n\r\n"
        b"1-3:0.2.8(40)\r\n"
        b"0-0:1.0.0(101209113020W)\r\n"
        b"0-0:96.1.1(4B384547303034303436333935353037)\r\n"
        b"1-0:1.8.1(123456.789*kWh)\r\n"
        b"1-0:1.8.2(123456.789*kWh)\r\n"
        b"0-0:96.14.0(0002)\r\n"
        b"0-0:17.0.0(016.1*kW)\r\n"
        b"0-0:96.3.10(1)\r\n"
        b"1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004W)(0000000301*s)\r\n"
        b"0-0:96.13.1(3031203631203831)\r\n"
        b"0-1:24.1.0(03)\r\n"
        b"0-1:96.1.0(3232323241424344313233343536373839)\r\n"
        b"0-1:24.2.1(101209110000W)(12785.123*m3)\r\n"
        b"0-1:24.4.0(1)\r\n"
        b"!"
    )
    t = parse_telegram(with_crc(body))
    assert (t.valid, t.crc_ok, t.version) == (True, True, "4.0")
    assert t.timestamp == utc(2010, 12, 9, 10, 30, 20)
    assert t.import_t1_wh == 123_456_789
    assert t.value("0-0:96.13.1") == "01 61 81"
    assert t.power_failure_log == (
        PowerFailure(utc(2010, 12, 8, 14, 24, 15), 240),
        PowerFailure(utc(2010, 12, 8, 14, 10, 4), 301),
    )
    assert t.gas is not None
    assert (t.gas.captured_at, t.gas.value) == (utc(2010, 12, 9, 10), Decimal("12785.123"))
    without_crc = parse_telegram(body + b"\r\n")
    assert without_crc.error is not None and without_crc.error.rule == "MTR-2.crc"


@pytest.mark.parametrize("name", [p.name for p in REAL_FILES])
def test_json_bytes_are_to_json_written(name: str) -> None:
    """``to_json_bytes`` (shared, cached parts) writes exactly ``dumps_bytes(to_json())``,
    for valid telegrams and refused ones, the second time (from the caches) too."""
    data = real(name)
    damaged = data.replace(b"1-0:1.8.1(", b"1-0:1.8.1(x", 1)
    for telegram in [*parse_stream(data), parse_telegram(data), *parse_stream(damaged)]:
        for _ in range(2):
            assert telegram.to_json_bytes() == dumps_bytes(telegram.to_json())
    assert json.loads(parse_telegram(split_telegrams(data)[0]).to_json_bytes())["fields"]
