"""Splitting byte streams into telegrams: chunks, garbage, cut-off telegrams (MTR-2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meetpunt.io import TelegramSplitter, parse_stream, read_p1_file, split_telegrams
from meetpunt.io.p1 import MAX_TELEGRAM_BYTES
from tests.io.p1data import REAL_FILES, real, twin_telegrams

DSMR5 = real("dsmr50_iskra_am550_two_mbus.p1")
DSMR42 = real("dsmr42_kaifa.p1")
DSMR22 = real("dsmr22_iskra_mt382.p1")


def test_a_capture_splits_into_its_telegrams() -> None:
    capture = DSMR5 + DSMR42 + DSMR22 + DSMR5
    assert split_telegrams(capture) == [DSMR5, DSMR42, DSMR22, DSMR5]
    assert [t.valid for t in parse_stream(capture)] == [True] * 4


def test_garbage_before_and_between_is_skipped() -> None:
    splitter = TelegramSplitter()
    telegrams = splitter.feed(b"\x00\xffnoise!12\r\n" + DSMR5 + b"line noise" + DSMR42)
    telegrams += splitter.flush()
    assert [t.raw for t in telegrams] == [DSMR5, DSMR42]
    assert splitter.skipped == len(b"\x00\xffnoise!12\r\n") + len(b"line noise")


def test_a_cut_off_telegram_is_reported_and_the_next_one_found() -> None:
    cut = DSMR5[:500]
    telegrams = list(parse_stream(cut + DSMR42))
    assert [t.valid for t in telegrams] == [False, True]
    assert telegrams[0].raw == cut
    assert telegrams[0].error is not None and telegrams[0].error.rule == "MTR-2.truncated"
    assert telegrams[1].raw == DSMR42


def test_one_byte_at_a_time() -> None:
    capture = b"junk" + DSMR5 + DSMR22 + b"\r\n" + DSMR42
    splitter = TelegramSplitter()
    telegrams = [t for i in range(len(capture)) for t in splitter.feed(capture[i : i + 1])]
    telegrams += splitter.flush()
    assert [t.raw for t in telegrams] == [DSMR5, DSMR22, DSMR42]
    assert all(t.valid for t in telegrams)


def test_the_splitter_waits_for_the_crc_and_line_end() -> None:
    splitter = TelegramSplitter()
    bang = DSMR5.index(b"!")
    assert splitter.feed(DSMR5[: bang + 1]) == []
    assert splitter.feed(DSMR5[bang + 1 : bang + 3]) == []
    assert splitter.feed(DSMR5[bang + 3 : -1]) == []  # the CR, not yet the LF
    (telegram,) = splitter.feed(DSMR5[-1:])
    assert telegram.raw == DSMR5 and telegram.valid


def test_telegrams_without_line_end_after_the_crc() -> None:
    capture = DSMR5[:-2] + DSMR42[:-2]
    splitter = TelegramSplitter()
    first = splitter.feed(capture)
    assert [t.raw for t in first] == [DSMR5[:-2]]
    (last,) = splitter.flush()
    assert last.raw == DSMR42[:-2] and last.valid


def test_a_whole_message_ending_with_the_crc_ends_its_telegram() -> None:
    """message_end (MQTT, issue 14): "!XXXX" or "!XXXX\r" at the end of a message is
    the telegram's end; a CRC cut short, or a DSMR 2.2 bare "!", still waits."""
    for cut in (DSMR5[:-2], DSMR5[:-1]):
        splitter = TelegramSplitter()
        assert splitter.feed(cut) == [] and splitter.pending == len(cut)  # a stream: waits
        splitter = TelegramSplitter()
        (telegram,) = splitter.feed(cut, message_end=True)
        assert telegram.raw == cut and telegram.valid and splitter.pending == 0
    splitter = TelegramSplitter()
    assert splitter.feed(DSMR5[:-4], message_end=True) == []  # "!XX": more CRC may come
    (telegram,) = splitter.feed(DSMR5[-4:], message_end=True)
    assert telegram.raw == DSMR5 and telegram.valid
    bare = DSMR22.rstrip(b"\r\n")
    assert bare.endswith(b"!")
    splitter = TelegramSplitter()
    assert splitter.feed(bare, message_end=True) == [] and splitter.pending == len(bare)


def test_a_stream_ending_in_the_middle() -> None:
    splitter = TelegramSplitter()
    assert splitter.feed(DSMR5[:300]) == []
    (telegram,) = splitter.flush()
    assert telegram.error is not None and telegram.error.rule == "MTR-2.truncated"
    assert splitter.flush() == []


def test_a_runaway_candidate_is_given_up() -> None:
    splitter = TelegramSplitter(max_size=2048)
    telegrams = splitter.feed(b"/ABC5" + b"x" * 5000)
    assert [t.error.rule for t in telegrams if t.error] == ["MTR-2.truncated"]
    assert len(telegrams[0].raw) == 2048
    assert [t.raw for t in splitter.feed(DSMR5)] == [DSMR5]
    assert MAX_TELEGRAM_BYTES >= 8192


def test_read_p1_file_in_small_chunks(tmp_path: Path) -> None:
    capture = b"".join(real(p.name) for p in REAL_FILES) + b"".join(twin_telegrams(10))
    path = tmp_path / "capture.p1"
    path.write_bytes(capture)
    telegrams = list(read_p1_file(path, chunk_size=97))
    assert len(telegrams) == len(REAL_FILES) + 10
    assert all(t.valid for t in telegrams)
    assert [t.raw for t in telegrams] == list(split_telegrams(capture))


def test_read_p1_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        list(read_p1_file(tmp_path / "missing.p1"))
