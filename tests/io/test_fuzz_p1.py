"""The CI sample of the P1 fuzz run (``benchmarks/fuzz_parsers.py`` runs a million):
real telegrams with hostile values, lines dropped or doubled and bytes changed, the CRC
made right again, go through the parser, every accessor, both JSON writers and the
splitter in any chunks without an exception (MTR-2: refusals are values)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetpunt.io import TelegramSplitter, crc16_arc, parse_telegram, split_telegrams
from meetpunt.io.p1 import TELEGRAM_VALUES, Telegram
from tests.io.p1data import REAL_FILES, real

SEEDS = [frame for path in REAL_FILES for frame in split_telegrams(real(path.name))]

HOSTILE = [
    "",
    "(",
    ")",
    "*",
    "*kWh",
    "-1",
    "1e30",
    "NaN",
    "Infinity",
    "9" * 40,
    "²",
    "١٢",
    "\0",
    "\udcff",
    "632525252525W",
    "991332256161S",
    "250230120000W",
    "x" * 300,
]


def with_crc(data: bytes) -> bytes:
    """``data`` with a right CRC after its ``!``, so the parser looks further."""
    start, end = data.find(b"/"), data.rfind(b"!")
    if start < 0 or end < start:
        return data
    return data[: end + 1] + b"%04X\r\n" % crc16_arc(data[start : end + 1])


def use(telegram: Telegram) -> None:
    """Everything a caller may ask of a parsed telegram."""
    telegram.to_json()
    telegram.to_json_bytes()
    if telegram.valid:
        for name in TELEGRAM_VALUES:
            getattr(telegram, name)
        for obis in telegram.fields:
            telegram.value(obis)
            telegram.unit(obis)


@st.composite
def hostile_telegrams(draw: st.DrawFn) -> bytes:
    lines = draw(st.sampled_from(SEEDS)).split(b"\n")
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(lines) - 1))
        op = draw(st.integers(0, 3))
        if op == 0 and len(lines) > 1:
            del lines[index]
        elif op == 1:
            lines.insert(index, lines[draw(st.integers(0, len(lines) - 1))])
        else:
            line = lines[index]
            at = line.find(b"(") + 1
            close = line.find(b")", at)
            token = draw(st.sampled_from(HOSTILE)).encode("utf-8", "surrogateescape")
            if at and close > 0:
                lines[index] = line[:at] + token + line[close:]
            else:
                lines[index] = token + line
    data = bytearray(b"\n".join(lines))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return with_crc(bytes(data)) if draw(st.booleans()) else bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile_telegrams() | st.binary(max_size=2048), cuts=st.lists(st.integers(0, 4096)))
def test_no_input_makes_the_parser_or_the_splitter_raise(data: bytes, cuts: list[int]) -> None:
    telegram = parse_telegram(data)
    assert telegram.valid or telegram.error is not None
    use(telegram)
    splitter = TelegramSplitter()
    start = 0
    frames: list[Telegram] = []
    for cut in [*sorted({c for c in cuts if c < len(data)}), len(data)]:
        frames.extend(splitter.feed(data[start:cut]))
        start = cut
    frames.extend(splitter.flush())
    for frame in frames:
        use(frame)
