"""DSMR P1 telegrams rendered by the twin (DSMR 5.0.2 / 4.2 P1 companion standard; MTR-2)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import Tariff
from meetpunt.twin.meters import MeterData
from meetpunt.twin.p1 import (
    GasReading,
    P1Snapshot,
    captures,
    crc16_arc,
    p1_timestamp,
    render_telegram,
    snapshots_for,
    telegrams_for,
)
from tests.io.p1data import crc_bitwise
from tests.io.p1data import snapshot as base_snapshot
from tests.twin.test_meters import CUTS, SPRING, run

LINE = re.compile(r"^(\d+-\d+:\d+\.\d+\.\d+)((?:\([^()]*\))+)$")
TELEGRAM = re.compile(
    rb"^/(?P<ident>[^\r\n]+)\r\n\r\n(?P<body>.*?)!(?P<crc>[0-9A-F]{4})\r\n$", re.S
)


def snapshot(**changes: object) -> P1Snapshot:
    """The P1 tests' meter with values that show which phase is which."""
    values: dict[str, object] = {
        "identification": "XMX5LGF0000000000000",
        "failure_log": (
            (datetime(2010, 12, 8, 14, 24, 15, tzinfo=UTC), 240),
            (datetime(2010, 12, 8, 14, 10, 4, tzinfo=UTC), 301),
        ),
        "voltages_v": (220.1, 220.2, 220.3),
        "phase_import_w": (1_111, 2_222, 3_333),
        "phase_export_w": (4_444, 5_555, 6_666),
    }
    values.update(changes)
    return base_snapshot(**values)


def parse(telegram: bytes) -> tuple[str, dict[str, list[str]]]:
    """A tiny line parser: identification and OBIS -> values; checks the CRC first."""
    match = TELEGRAM.match(telegram)
    assert match, telegram
    end = telegram.index(b"!") + 1
    assert crc16_arc(telegram[:end]) == int(match["crc"], 16)
    fields: dict[str, list[str]] = {}
    for line in match["body"].decode("ascii").split("\r\n"):
        if not line:
            continue
        found = LINE.match(line)
        assert found, line
        fields[found[1]] = re.findall(r"\(([^()]*)\)", found[2])
    return match["ident"].decode("ascii"), fields


# --- CRC ---------------------------------------------------------------------------------------


def test_crc16_arc_known_vector() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D
    assert crc16_arc(b"") == 0


@given(st.binary(max_size=300))
def test_crc16_arc_table_matches_the_definition(data: bytes) -> None:
    assert crc16_arc(data) == crc_bitwise(data)


# --- rendering ---------------------------------------------------------------------------------


def test_dsmr5_telegram_parses_back() -> None:
    telegram = render_telegram(snapshot(), "5.0")
    assert telegram.startswith(b"/XMX5LGF0000000000000\r\n\r\n1-3:0.2.8(50)\r\n")
    assert re.search(rb"\r\n![0-9A-F]{4}\r\n$", telegram)
    ident, fields = parse(telegram)
    assert ident == "XMX5LGF0000000000000"
    assert fields["0-0:1.0.0"] == ["250602120000S"]
    assert fields["0-0:96.1.1"] == [b"E0045000012345678".hex().upper()]
    assert fields["1-0:1.8.1"] == ["001234.567*kWh"]
    assert fields["1-0:1.8.2"] == ["002345.678*kWh"]
    assert fields["1-0:2.8.1"] == ["000345.678*kWh"]
    assert fields["1-0:2.8.2"] == ["000456.789*kWh"]
    assert fields["0-0:96.14.0"] == ["0002"]
    assert fields["1-0:1.7.0"] == ["01.193*kW"]
    assert fields["1-0:2.7.0"] == ["00.000*kW"]
    assert fields["0-0:96.7.21"] == ["00004"]
    assert fields["0-0:96.7.9"] == ["00002"]
    # the P1 companion standard's own example of the log (END time, duration)
    assert fields["1-0:99.97.0"] == [
        "2", "0-0:96.7.19", "101208152415W", "0000000240*s", "101208151004W", "0000000301*s"
    ]  # fmt: skip
    assert [fields[f"1-0:{c}.32.0"] for c in (32, 52, 72)] == [["00002"], ["00001"], ["00000"]]
    assert [fields[f"1-0:{c}.36.0"] for c in (32, 52, 72)] == [["00000"], ["00003"], ["00000"]]
    assert [fields[f"1-0:{c}.7.0"] for c in (32, 52, 72)] == [["220.1*V"], ["220.2*V"], ["220.3*V"]]
    assert [fields[f"1-0:{c}.7.0"] for c in (31, 51, 71)] == [["001*A"], ["002*A"], ["003*A"]]
    assert fields["1-0:21.7.0"] == ["01.111*kW"] and fields["1-0:62.7.0"] == ["06.666*kW"]
    assert fields["0-2:24.1.0"] == ["003"]
    assert fields["0-2:96.1.0"] == [b"G0032000012345678".hex().upper()]
    assert fields["0-2:24.2.1"] == ["250602115500S", "01234.567*m3"]
    assert "0-1:24.2.1" not in fields


def test_dsmr42_telegram() -> None:
    telegram = render_telegram(snapshot(), "4.2")
    _, fields = parse(telegram)
    assert fields["1-3:0.2.8"] == ["42"]
    assert "1-0:32.7.0" not in fields and fields["0-0:96.13.1"] == [""]
    assert fields["1-0:31.7.0"] == ["001*A"]


def test_single_phase_meter_reports_l1_only_and_empty_log() -> None:
    single = snapshot(
        sags=(1,), swells=(0,), voltages_v=(231.4,), currents_a=(5,),
        phase_import_w=(1_193,), phase_export_w=(0,), failure_log=(), gas=None,
    )  # fmt: skip
    _, fields = parse(render_telegram(single, "5.0"))
    assert fields["1-0:99.97.0"] == ["0", "0-0:96.7.19"]
    assert fields["1-0:32.7.0"] == ["231.4*V"] and "1-0:52.7.0" not in fields
    assert "1-0:52.32.0" not in fields and "0-1:24.1.0" not in fields


def test_winter_time_is_w_and_summer_time_s() -> None:
    assert p1_timestamp(datetime(2025, 1, 15, 10, 0, tzinfo=UTC)) == "250115110000W"
    assert p1_timestamp(datetime(2025, 6, 2, 10, 0, tzinfo=UTC)) == "250602120000S"
    # the repeated autumn hour: 02:30 happens twice, first S then W
    assert p1_timestamp(datetime(2025, 10, 26, 0, 30, tzinfo=UTC)) == "251026023000S"
    assert p1_timestamp(datetime(2025, 10, 26, 1, 30, tzinfo=UTC)) == "251026023000W"


def test_unknown_version_and_bad_phases_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        render_telegram(snapshot(), "2.2")
    with pytest.raises(ValueError, match="per-phase"):
        render_telegram(snapshot(sags=(1, 2)), "5.0")


@settings(max_examples=50)
@given(
    st.integers(0, 10**9 - 1), st.integers(0, 10**9 - 1), st.integers(0, 99_999),
    st.integers(0, 99_999), st.sampled_from(list(Tariff)), st.sampled_from(["5.0", "4.2"]),
    st.integers(1, 4), st.integers(0, 10**8 - 1),
)  # fmt: skip
def test_values_survive_the_round_trip(
    t1: int, t2: int, power: int, failures: int, tariff: Tariff, version: str,
    channel: int, litres: int,
) -> None:  # fmt: skip
    gas = GasReading(channel, "G1", datetime(2025, 1, 1, tzinfo=UTC), litres)
    snap = snapshot(
        import_wh=(t1, t2), power_import_w=power, failures=failures, tariff=tariff, gas=gas
    )
    _, fields = parse(render_telegram(snap, version))
    assert round(float(fields["1-0:1.8.1"][0].removesuffix("*kWh")) * 1000) == t1
    assert round(float(fields["1-0:1.8.2"][0].removesuffix("*kWh")) * 1000) == t2
    assert round(float(fields["1-0:1.7.0"][0].removesuffix("*kW")) * 1000) == power
    assert int(fields["0-0:96.7.21"][0]) == failures
    assert Tariff.from_p1_indicator(fields["0-0:96.14.0"][0]) is tariff
    assert round(float(fields[f"0-{channel}:24.2.1"][1].removesuffix("*m3")) * 1000) == litres


@given(st.data())
def test_a_bit_flip_breaks_the_crc(data: st.DataObject) -> None:
    telegram = bytearray(render_telegram(snapshot(), "5.0"))
    end = telegram.index(b"!")
    position = data.draw(st.integers(0, end - 1))
    telegram[position] ^= 1 << data.draw(st.integers(0, 7))
    assert crc16_arc(bytes(telegram[: end + 1])) != int(telegram[end + 1 : end + 5], 16)


# --- telegrams from the simulated meters -------------------------------------------------------


@pytest.fixture(scope="module")
def metered() -> MeterData:
    return run(SPRING, CUTS)


def split(capture: bytes) -> list[bytes]:
    parts = capture.split(b"\r\n/")
    return [parts[0] + b"\r\n"] + [b"/" + p + b"\r\n" for p in parts[1:-1]] + (
        [b"/" + parts[-1]] if len(parts) > 1 else []
    )  # fmt: skip


def test_capture_is_valid_telegrams_in_time_order(metered: MeterData) -> None:
    capture = telegrams_for(metered, 0, every_steps=3)
    telegrams = split(capture)
    assert b"".join(telegrams) == capture
    stamps = []
    for telegram in telegrams:
        _, fields = parse(telegram)
        assert fields["1-3:0.2.8"] == ["50"]
        stamps.append(fields["0-0:1.0.0"][0])
    quarters = SPRING.n_steps // 3
    assert len(telegrams) == quarters  # its interruptions fell between two telegrams
    assert len(set(stamps)) == len(stamps) and stamps[0] == "250328000000W"
    # connection 3 had no supply from 23:00:30 to 01:00:40: no telegram 23:15 .. 01:00
    assert len(split(telegrams_for(metered, 3, every_steps=3))) == quarters - 8


def test_telegrams_agree_with_the_meter_data(metered: MeterData) -> None:
    daily = metered.tables["daily_readings"].to_pandas()
    events = metered.tables["voltage_events"].to_pandas()
    failures = metered.tables["power_failures"].to_pandas()
    for conn in (0, 1, 3, 5):
        snaps = {s.timestamp: s for s in snapshots_for(metered, conn, every_steps=3)}
        for row in daily[daily.connection == conn].itertuples():
            snap = snaps.get(row.at.to_pydatetime())
            if snap is None:
                continue
            assert snap.import_wh == (
                round(row.import_t1_kwh * 1000),
                round(row.import_t2_kwh * 1000),
            )
            assert snap.export_wh == (
                round(row.export_t1_kwh * 1000),
                round(row.export_t2_kwh * 1000),
            )
            ended = events[(events.connection == conn) & (events["at"] == row.at)]
            for counter in ended.itertuples():
                assert snap.sags[counter.phase - 1] == counter.sags
                assert snap.swells[counter.phase - 1] == counter.swells
            count = failures[(failures.connection == conn) & (failures["at"] == row.at)]
            if len(count):
                assert snap.failures == count.failures.iloc[0]
                assert snap.long_failures == count.long_failures.iloc[0]
    last = snapshots_for(metered, 0, every_steps=3)[-1]
    log = metered.tables["power_failure_log"].to_pandas()
    kept = log[(log.connection == 0) & log.in_meter_buffer]
    assert [(e, d) for e, d in last.failure_log] == [
        (r.end.to_pydatetime(), r.duration_s) for r in kept.itertuples()
    ]


def test_gas_in_telegrams_matches_the_hourly_readings(metered: MeterData) -> None:
    gas = metered.tables["gas_hourly"].to_pandas()
    for conn in (0, 1):  # DSMR 5 (5-minute capture) and DSMR 4 (hourly capture)
        hourly = gas[gas.connection == conn]
        by_end = {
            (r.start + timedelta(hours=1)).to_pydatetime(): r.reading_m3
            for r in hourly.itertuples()
        }
        for snap in snapshots_for(metered, conn, every_steps=12):
            assert snap.gas is not None
            if snap.gas.captured_at in by_end:
                assert snap.gas.reading_dm3 == round(by_end[snap.gas.captured_at] * 1000)


def test_captures_of_a_sample_and_no_p1_on_ferraris(metered: MeterData) -> None:
    found = list(captures(metered, SPRING, sample=2, every_steps=96))
    assert [ean for ean, _ in found] == [metered.state.connections[i].ean for i in (0, 1)]
    assert b"1-3:0.2.8(42)" in found[1][1]  # connection 1 has a DSMR 4 meter
    with pytest.raises(ValueError, match="ferraris"):
        snapshots_for(metered, 2)
