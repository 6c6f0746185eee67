"""Every MTR-2 rule refuses, as a value with rule, message and offset; nothing raises."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meetpunt.io import parse_telegram
from meetpunt.io.p1 import RULES, Telegram, parse_timestamp
from tests.io.p1data import real, recrc, with_crc

DSMR5 = real("dsmr50_iskra_am550_two_mbus.p1")
DSMR22 = real("dsmr22_iskra_mt382.p1")


def refused(data: bytes, rule: str) -> Telegram:
    telegram = parse_telegram(data)
    assert not telegram.valid
    assert telegram.error is not None, telegram
    assert telegram.error.rule == rule, telegram.error
    assert telegram.error.message
    assert 0 <= telegram.error.offset <= len(data)
    assert telegram.raw == data
    assert telegram.to_json()["error"] == telegram.error.as_dict()
    return telegram


def edited(old: bytes, new: bytes, source: bytes = DSMR5) -> bytes:
    """A DSMR 5 telegram with one line changed, CRC recomputed (the meter sent it so)."""
    assert old in source
    return recrc(source.replace(old, new, 1))


def test_every_rule_has_a_meaning() -> None:
    assert set(RULES) == {
        "MTR-2.header",
        "MTR-2.truncated",
        "MTR-2.crc",
        "MTR-2.malformed",
        "MTR-2.timestamp",
    }


# --- MTR-2.header -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage\r\n", b"ISK5\\2M550T-1012\r\n\r\n!\r\n", b"x" + DSMR5],
    ids=["empty", "text", "no-slash", "byte-before-slash"],
)
def test_header_no_slash(data: bytes) -> None:
    refused(data, "MTR-2.header")


def test_header_identification_is_not_maker_and_baud_digit() -> None:
    telegram = refused(with_crc(b"/12\r\n\r\n1-0:1.8.1(000001.000*kWh)\r\n!"), "MTR-2.header")
    assert telegram.error is not None and telegram.error.offset == 0


def test_leading_whitespace_is_not_a_header_problem() -> None:
    telegram = parse_telegram(b"\r\n  " + DSMR5)
    assert telegram.valid and telegram.crc_ok


# --- MTR-2.truncated --------------------------------------------------------------------


def test_truncated_before_the_end_marker() -> None:
    cut = DSMR5[: DSMR5.index(b"0-2:24.2.1")]
    telegram = refused(cut, "MTR-2.truncated")
    assert "cut off" in telegram.error.message  # type: ignore[union-attr]


def test_truncated_identification_line() -> None:
    refused(b"/ISK5\\2M550", "MTR-2.truncated")


def test_truncated_legacy_telegram() -> None:
    refused(DSMR22[: DSMR22.index(b"!")], "MTR-2.truncated")


# --- MTR-2.crc --------------------------------------------------------------------------


def test_crc_mismatch() -> None:
    damaged = DSMR5.replace(b"002130.115", b"002130.116")
    telegram = refused(damaged, "MTR-2.crc")
    assert telegram.crc_ok is False
    assert telegram.error is not None
    assert telegram.error.offset == damaged.index(b"!") + 1
    assert "56DD sent" in telegram.error.message
    assert telegram.fields == {}  # nothing of a damaged telegram is handed on


def test_crc_lower_case_hex_is_accepted() -> None:
    telegram = parse_telegram(DSMR5.replace(b"!56DD", b"!56dd"))
    assert telegram.valid and telegram.crc_ok


def test_crc_unpadded_is_accepted() -> None:
    # some meters drop leading zeros of the CRC (dsmr_parser PR #173): find such a body
    bodies = (f"/ISK5\\2M550T-1012\r\n\r\n1-0:1.7.0({i:06d}*W)\r\n!" for i in range(999))
    body = next(b.encode() for b in bodies if int(with_crc(b.encode())[-6:-2], 16) < 0x1000)
    crc = f"{int(with_crc(body)[-6:-2], 16):X}".encode()
    assert len(crc) < 4
    telegram = parse_telegram(body + crc + b"\r\n")
    assert telegram.valid and telegram.crc_ok


def test_crc_not_hex() -> None:
    refused(DSMR5.replace(b"!56DD", b"!56DX"), "MTR-2.crc")
    refused(DSMR5.replace(b"!56DD", b"!56DD0"), "MTR-2.crc")


def test_crc_missing_where_the_version_needs_one() -> None:
    telegram = refused(DSMR5.replace(b"!56DD", b"!"), "MTR-2.crc")
    assert "5.0 needs a CRC" in telegram.error.message  # type: ignore[union-attr]
    emucs = real("emucs171_fluvius.p1").replace(b"!3AD7", b"!")
    refused(emucs, "MTR-2.crc")


# --- MTR-2.malformed --------------------------------------------------------------------


def test_malformed_line() -> None:
    data = edited(b"1-0:1.7.0(00.111*kW)\r\n", b"1-0:1.7.0(00.111*kW)\r\nhello world\r\n")
    telegram = refused(data, "MTR-2.malformed")
    assert telegram.error is not None
    assert data[telegram.error.offset :].startswith(b"hello world")
    assert "hello world" in telegram.error.message


def test_malformed_line_in_a_legacy_telegram_without_crc() -> None:
    data = DSMR22.replace(b"1-0:1.8.2(00001.001*kWh)", b"1-0:1.8.2(00001.001*kWh")
    telegram = refused(data, "MTR-2.malformed")
    assert telegram.error is not None
    assert data[telegram.error.offset :].startswith(b"1-0:1.8.2(")


@pytest.mark.parametrize(
    "line",
    [b"1-0:1.8.1(00(1)\r\n", b"1-0:1.8.1)(\r\n", b"1-0:1.8.1\r\n", b"1-0:1.8.1()x\r\n"],
    ids=["nested", "inside-out", "no-value", "text-after"],
)
def test_malformed_groups(line: bytes) -> None:
    refused(edited(b"1-0:1.8.1(002130.115*kWh)\r\n", line), "MTR-2.malformed")


def test_malformed_obis_code() -> None:
    refused(edited(b"1-0:1.7.0(", b"1-0:1.7(", DSMR5), "MTR-2.malformed")


def test_malformed_repeated_object() -> None:
    data = edited(b"1-0:1.7.0(00.111*kW)\r\n", b"1-0:1.7.0(00.111*kW)\r\n1-0:1.7.0(00.112*kW)\r\n")
    telegram = refused(data, "MTR-2.malformed")
    assert "appears twice" in telegram.error.message  # type: ignore[union-attr]


def test_malformed_counter() -> None:
    telegram = refused(edited(b"1-0:72.32.0(00192)", b"1-0:72.32.0(0019x)"), "MTR-2.malformed")
    assert "1-0:72.32.0" in telegram.error.message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value", [b"(002130.115)", b"(0021x0.115*kWh)", b"(1*kWh)(2*kWh)"], ids=str
)
def test_malformed_register(value: bytes) -> None:
    refused(edited(b"1-0:1.8.1(002130.115*kWh)", b"1-0:1.8.1" + value), "MTR-2.malformed")


def test_malformed_failure_log_count() -> None:
    telegram = refused(
        edited(b"1-0:99.97.0(1)(0-0:96.7.19)", b"1-0:99.97.0(2)(0-0:96.7.19)"), "MTR-2.malformed"
    )
    assert "says 2 entries" in telegram.error.message  # type: ignore[union-attr]


def test_malformed_failure_duration() -> None:
    refused(edited(b"(0000002014*s)", b"(0000002014*min)"), "MTR-2.malformed")


def test_malformed_mbus_reading() -> None:
    refused(edited(b"(00246.138*m3)", b"(00246.1x8*m3)"), "MTR-2.malformed")
    refused(edited(b"0-2:24.2.1(200426223001S)", b"0-2:24.2.1"), "MTR-2.malformed")


def test_malformed_legacy_gas_record_without_its_value_line() -> None:
    refused(DSMR22.replace(b"\r\n(00001.001)", b""), "MTR-2.malformed")


def test_malformed_empty_telegram() -> None:
    refused(b"/ISK5\\2M550T-1012\r\n\r\n!\r\n", "MTR-2.malformed")
    refused(with_crc(b"/ISK5\\2M550T-1012\r\n\r\n!"), "MTR-2.malformed")


def test_an_exclamation_mark_inside_is_damage_not_the_end() -> None:
    # "1-3:0.2.8" with one bit flipped into "!-3:0.2.8" (0x31 -> 0x21)
    damaged = DSMR5.replace(b"\r\n1-3:0.2.8", b"\r\n!-3:0.2.8")
    refused(damaged, "MTR-2.crc")


def test_bytes_after_the_end() -> None:
    refused(DSMR5 + b"garbage", "MTR-2.malformed")


def test_trailing_line_ends_are_fine() -> None:
    assert parse_telegram(DSMR5 + b"\r\n\r\n").valid


# --- MTR-2.timestamp --------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp",
    [
        b"201326223325S",
        b"200230223325S",
        b"200426243325S",
        b"200426240000W",
        b"200426226025S",
        b"200426223325X",
        b"2004262233S",
        b"",
    ],
    ids=["month-13", "feb-30", "hour-24", "midnight-24", "minute-60", "flag-X", "short", "empty"],
)
def test_timestamp_telegram_time(stamp: bytes) -> None:
    data = edited(b"0-0:1.0.0(200426223325S)", b"0-0:1.0.0(" + stamp + b")")
    telegram = refused(data, "MTR-2.timestamp")
    assert telegram.error is not None
    assert data[telegram.error.offset :].startswith(b"0-0:1.0.0(")


def test_timestamp_failure_log_entry() -> None:
    refused(edited(b"(190326095015W)", b"(190336095015W)"), "MTR-2.timestamp")


def test_timestamp_mbus_capture() -> None:
    refused(edited(b"(200426223001S)", b"(200426223061S)"), "MTR-2.timestamp")


def test_timestamp_legacy_gas_record() -> None:
    refused(DSMR22.replace(b"(161107190000)", b"(161107250000)"), "MTR-2.timestamp")


# --- timestamps: S/W and the flagless DSMR 2.2/3.0 stamps (MTR-3) --------------------------


def test_summer_and_winter_flags() -> None:
    assert parse_timestamp("250602120000S") == (datetime(2025, 6, 2, 10, tzinfo=UTC), False)
    assert parse_timestamp("250102120000W") == (datetime(2025, 1, 2, 11, tzinfo=UTC), False)
    # the repeated hour of 26 Oct 2025, told apart by the flag
    assert parse_timestamp("251026023000S") == (datetime(2025, 10, 26, 0, 30, tzinfo=UTC), False)
    assert parse_timestamp("251026023000W") == (datetime(2025, 10, 26, 1, 30, tzinfo=UTC), False)
    assert parse_timestamp("700101010000W") == (datetime(1970, 1, 1, tzinfo=UTC), False)


def test_flagless_stamps_are_amsterdam_time_and_the_dst_hours_are_marked() -> None:
    assert parse_timestamp("250602120000") == (datetime(2025, 6, 2, 10, tzinfo=UTC), False)
    # 02:30 on 26 Oct 2025 happens twice: read as the first (summer) one, marked
    assert parse_timestamp("251026023000") == (datetime(2025, 10, 26, 0, 30, tzinfo=UTC), True)
    # 02:30 on 30 Mar 2025 never happens: marked
    stamp = parse_timestamp("250330023000")
    assert stamp is not None and stamp[1] is True


def test_ambiguous_legacy_gas_time_marks_the_telegram() -> None:
    data = DSMR22.replace(b"(161107190000)", b"(251026023000)")
    telegram = parse_telegram(data)
    assert telegram.valid and telegram.ambiguous_time
    assert telegram.gas is not None and telegram.gas.ambiguous_time
    assert telegram.gas.captured_at == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert not parse_telegram(DSMR22).ambiguous_time
