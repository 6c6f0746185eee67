"""Fuzz and round-trip properties of the P1 parser (hypothesis; MTR-2).

Nothing raises, a damaged telegram is never valid with a wrong CRC, the splitter finds
every telegram again whatever garbage lies between them, and the twin's telegrams parse
back to the snapshot they were rendered from.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetpunt.domain.calendar import Tariff
from meetpunt.io import (
    TelegramSplitter,
    crc16_arc,
    parse_stream,
    parse_telegram,
    split_telegrams,
)
from meetpunt.io.p1 import Telegram
from meetpunt.twin.p1 import GasReading, P1Snapshot, render_telegram
from tests.io.p1data import REAL_FILES, WITH_CRC, crc_bitwise, real, snapshot, twin_telegrams

# one frame per file (the EasyMeter gateway adds bytes after the telegram)
SAMPLES = [split_telegrams(real(p.name))[0] for p in REAL_FILES] + twin_telegrams(6)
CRC_SAMPLES = [real(name) for name in WITH_CRC] + twin_telegrams(6)


def crc_really_ok(telegram: Telegram) -> bool:
    """The CRC check redone from the definition on the raw bytes."""
    raw = telegram.raw.lstrip(b" \t\r\n\x00")
    bang = raw.index(b"!")
    sent = raw[bang + 1 :].split(b"\n")[0].strip()
    return int(sent, 16) == crc_bitwise(raw[: bang + 1])


def sound(telegram: Telegram) -> None:
    """What every parse result must satisfy, valid or not."""
    assert telegram.valid == (telegram.error is None)
    if telegram.crc_ok:
        assert crc_really_ok(telegram)
    if telegram.valid and telegram.crc_ok is None:
        assert telegram.version in (None, "2.2/3.0")
    out = telegram.to_json()  # never raises, whatever was read
    assert out["valid"] is telegram.valid
    for accessor in (
        "equipment_id",
        "import_t1_wh",
        "export_t2_wh",
        "tariff",
        "sags",
        "voltages",
        "power_failure_log",
        "gas_readings",
    ):
        getattr(telegram, accessor)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    sound(parse_telegram(data))
    for telegram in parse_stream(data):
        sound(telegram)


@settings(max_examples=300)
@given(st.sampled_from(SAMPLES), st.data())
def test_truncated_telegrams_never_raise_nor_pass(sample: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, sample.index(b"!")))
    telegram = parse_telegram(sample[:cut])
    sound(telegram)
    assert not telegram.valid


@settings(max_examples=600)
@given(st.sampled_from(CRC_SAMPLES), st.data())
def test_a_flipped_bit_never_passes_the_crc(sample: bytes, data: st.DataObject) -> None:
    covered = sample.index(b"!") + 5  # "/" .. "!" and the 4 CRC digits
    position = data.draw(st.integers(0, covered - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(sample)
    damaged[position] ^= 1 << bit
    telegram = parse_telegram(bytes(damaged))
    sound(telegram)
    # the one harmless flip: a CRC letter's case (0x20), "C4B0" -> "c4B0", same value
    harmless = position > sample.index(b"!") and bit == 5 and chr(sample[position]) in "ABCDEF"
    assert not telegram.valid or harmless
    for piece in parse_stream(bytes(damaged)):
        sound(piece)
        assert not piece.valid or harmless


@settings(max_examples=300)
@given(st.sampled_from(SAMPLES), st.binary(min_size=1, max_size=40), st.data())
def test_random_bytes_spliced_in_never_raise(
    sample: bytes, noise: bytes, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(sample)))
    spliced = sample[:at] + noise + sample[at:]
    telegram = parse_telegram(spliced)
    sound(telegram)
    if sample in CRC_SAMPLES and at <= sample.index(b"!"):
        assert not telegram.valid or crc_really_ok(telegram)


garbage = st.binary(max_size=60).map(lambda b: b.replace(b"/", b""))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(garbage, st.sampled_from(SAMPLES)), min_size=1, max_size=6), st.data())
def test_the_splitter_finds_every_telegram_between_garbage(
    pieces: list[tuple[bytes, bytes]], data: st.DataObject
) -> None:
    # garbage right after a CRC could extend it (hex digits, line end): keep a line end
    capture = b"".join(noise + telegram for noise, telegram in pieces) + b"\r\n"
    expected = [telegram for _, telegram in pieces]
    whole = [t.raw for t in parse_stream(capture)]
    assert whole == expected
    # the same stream fed in random chunks
    cuts = sorted(data.draw(st.lists(st.integers(0, len(capture)), max_size=12)))
    splitter = TelegramSplitter()
    found: list[Telegram] = []
    for start, end in zip([0, *cuts], [*cuts, len(capture)], strict=True):
        found += splitter.feed(capture[start:end])
    found += splitter.flush()
    assert [t.raw for t in found] == expected
    assert all(t.valid for t in found)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=40), st.sampled_from(SAMPLES)), min_size=1, max_size=5)
)
def test_garbage_with_slashes_never_hides_a_telegram(pieces: list[tuple[bytes, bytes]]) -> None:
    # a "/" in the garbage starts a false candidate, cut off (refused) at the next "/"
    capture = b"".join(noise + b"\r\n" + telegram for noise, telegram in pieces)
    raws = [t.raw for t in parse_stream(capture) if t.valid]
    for _, telegram in pieces:
        assert telegram in raws


@given(st.binary(max_size=500))
def test_crc_matches_the_definition(data: bytes) -> None:
    assert crc16_arc(data) == crc_bitwise(data)


def test_crc_known_vectors() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D  # the CRC-16/ARC check value
    assert crc16_arc(b"") == 0
    # CRC-16/ARC with init 0 is unchanged by leading zero bytes
    assert crc16_arc(b"\x00\x00" + b"123456789") == 0xBB3D


# --- round trip through the twin's renderer ------------------------------------------------

counters = st.integers(0, 99_999)
instants = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2060, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@st.composite
def snapshots(draw: st.DrawFn) -> P1Snapshot:
    phases = draw(st.sampled_from([1, 3]))
    per_phase = st.lists(counters, min_size=phases, max_size=phases).map(tuple)
    gas = draw(
        st.none()
        | st.builds(
            GasReading,
            st.integers(1, 4),
            st.text("0123456789ABCDEFGHJK", min_size=1, max_size=17),
            instants,
            st.integers(0, 10**8 - 1),
        )
    )
    log = draw(st.lists(st.tuples(instants, st.integers(0, 10**9)), max_size=10))
    return snapshot(
        identification=draw(st.from_regex(r"[A-Z]{2}[a-z]5[A-Za-z0-9\\_-]{0,20}", fullmatch=True)),
        timestamp=draw(instants),
        equipment_id=draw(st.text("0123456789ABCDEFGHJK", min_size=1, max_size=20)),
        import_wh=(draw(st.integers(0, 10**9 - 1)), draw(st.integers(0, 10**9 - 1))),
        export_wh=(draw(st.integers(0, 10**9 - 1)), draw(st.integers(0, 10**9 - 1))),
        tariff=draw(st.sampled_from(Tariff)),
        power_import_w=draw(counters),
        power_export_w=draw(counters),
        failures=draw(counters),
        long_failures=draw(counters),
        failure_log=tuple(log),
        sags=draw(per_phase),
        swells=draw(per_phase),
        voltages_v=tuple(
            draw(
                st.lists(st.integers(0, 9999), min_size=phases, max_size=phases).map(
                    lambda vs: [v / 10 for v in vs]
                )
            )
        ),
        currents_a=tuple(draw(st.lists(st.integers(0, 999), min_size=phases, max_size=phases))),
        phase_import_w=draw(per_phase),
        phase_export_w=draw(per_phase),
        gas=gas,
        text_message=draw(st.text("abc XYZ 012", max_size=30)),
    )


@settings(max_examples=200, deadline=None)
@given(snapshots(), st.sampled_from(["5.0", "4.2"]))
def test_twin_telegrams_parse_back_to_their_snapshot(s: P1Snapshot, version: str) -> None:
    telegram = parse_telegram(render_telegram(s, version))
    assert telegram.valid, telegram.error
    assert telegram.crc_ok and telegram.version == version
    assert telegram.header == s.identification
    assert telegram.timestamp == s.timestamp
    assert telegram.equipment_id == s.equipment_id
    assert (telegram.import_t1_wh, telegram.import_t2_wh) == s.import_wh
    assert (telegram.export_t1_wh, telegram.export_t2_wh) == s.export_wh
    assert telegram.tariff is s.tariff
    assert telegram.power_import_kw == Decimal(s.power_import_w) / 1000
    assert telegram.power_export_kw == Decimal(s.power_export_w) / 1000
    assert (telegram.power_failures, telegram.long_power_failures) == (
        s.failures,
        s.long_failures,
    )
    assert [(e.end, e.duration_s) for e in telegram.power_failure_log] == list(s.failure_log)
    n = len(s.sags)
    assert telegram.sags[:n] == s.sags and telegram.swells[:n] == s.swells
    assert telegram.sags[n:] == (None,) * (3 - n)
    if version == "5.0":
        assert telegram.voltages[:n] == tuple(Decimal(f"{v:.1f}") for v in s.voltages_v)
    else:
        assert telegram.voltages == (None, None, None)
    assert telegram.currents[:n] == tuple(Decimal(a) for a in s.currents_a)
    assert telegram.value("0-0:96.13.0") == (s.text_message or None)
    if s.gas is None:
        assert telegram.mbus == () and telegram.gas is None
    else:
        gas = telegram.gas
        assert gas is not None
        assert (gas.channel, gas.device_type, gas.equipment_id) == (
            s.gas.channel,
            3,
            s.gas.equipment_id,
        )
        assert gas.captured_at == s.gas.captured_at
        assert gas.value == Decimal(s.gas.reading_dm3) / 1000 and gas.unit == "m3"


def test_twin_telegrams_across_the_autumn_dst_change() -> None:
    telegrams = [parse_telegram(t) for t in twin_telegrams(48)]
    stamps = [t.timestamp for t in telegrams]
    assert all(t.valid for t in telegrams)
    assert stamps == [
        datetime(2025, 10, 26, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(48)
    ]
    flags = {t.raw_value("0-0:1.0.0")[-2:-1] for t in telegrams}  # type: ignore[index]
    assert flags == {"S", "W"}


def test_parse_is_deterministic() -> None:
    data = real("dsmr42_kaifa.p1")
    first, second = parse_telegram(data), parse_telegram(data)
    assert first.to_json() == second.to_json()
