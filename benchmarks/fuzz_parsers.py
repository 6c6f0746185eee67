"""Fuzzing the P1 parser and the register CSV importer: no crash, no hang, memory bounded.

Targets, each fed ``--inputs`` generated inputs (default 1,000,000):

* ``p1``: :func:`meetpunt.io.p1.parse_telegram` on mutated real telegrams
  (``tests/io/telegrams``: bytes flipped, inserted, deleted; lines dropped, doubled,
  swapped; values replaced by hostile ones; cut off; random bytes), the CRC made right
  again for most of them so the parser gets past MTR-2.crc; every accessor and both
  JSON writers on what comes back; and the same bytes through
  :class:`~meetpunt.io.p1.TelegramSplitter` in random chunk sizes.
* ``register``: register CSV text (the example register's three files and generated
  connections, with hostile cells: ``²``, Arabic-Indic digits, NaN, 1e30, NUL, long
  text, stray quotes, doubled columns, bytes that are not UTF-8, ...) through the
  import's own reading and checking (``detect_kind``, ``_chunks``, ``_check_rows``:
  the work a worker process does) for every input, and every ``--full-every``-th
  input through the whole import (``import_csv`` into a SQLite register, undone
  after), by the batch and the one-row path, whose outcomes must agree.

A crash is any exception other than meetpunt's own (``MeetpuntError``); a hang is an
input that takes longer than ``--time-limit`` seconds (an interval timer stops it);
a mismatch is a file the two import paths end differently. Memory: the peak RSS, and
the RSS after a tenth of the inputs and at the end (a leak would make it grow).
Crashing inputs are written to ``--crash-dir``. Exit 1 on any crash, hang or mismatch.

    .venv/bin/python benchmarks/fuzz_parsers.py [--inputs 1000000] [--seed 1]
        [--targets p1,register] [--full-every 100] [--time-limit 2]
"""

from __future__ import annotations

import argparse
import collections
import csv
import functools
import io
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from meetpunt.domain.ean import ean_from_serial
from meetpunt.errors import MeetpuntError
from meetpunt.io.crc import crc16_arc
from meetpunt.io.p1 import (
    TELEGRAM_VALUES,
    Telegram,
    TelegramSplitter,
    parse_telegram,
    split_telegrams,
)
from meetpunt.register import open_register
from meetpunt.register.csvio import (
    CONNECTION_COLUMNS,
    ImportReport,
    _check_rows,
    _chunks,
    capacity_parser,
    detect_kind,
    import_csv,
)
from meetpunt.rulebook import capacity_classes

ROOT = Path(__file__).parents[1]
TELEGRAMS = ROOT / "tests" / "io" / "telegrams"
EXAMPLE = ROOT / "src" / "meetpunt" / "data" / "example_register"

HOSTILE = [
    "",
    " ",
    "(",
    ")",
    "()",
    "((",
    "*",
    "*kWh",
    "0",
    "-1",
    "1e30",
    "NaN",
    "Infinity",
    "-inf",
    "sNaN",
    "9" * 40,
    "0.0000000000001",
    "²",
    "١٢",
    "٣x٢٥",
    "\0",
    "\x1b[31m",
    "\udcff",
    "\ufeff",
    "\u202e",
    "😀",
    '"',
    '""',
    '"a\nb"',
    ",",
    "\r",
    "\n",
    "!",
    "/",
    "632525252525W",
    "991332256161S",
    "250230120000W",
    "000101000000S",
    "x" * 200,
    "x" * 5000,
]


class HangError(Exception):
    """An input ran over the time limit."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise HangError


def rss_kib() -> int:
    """This process's resident set now, in KiB."""
    with open("/proc/self/statm") as handle:  # noqa: PTH123
        pages = int(handle.read().split()[1])
    return pages * (resource.getpagesize() // 1024)


class Tally:
    """What one target met: inputs, crashes (by kind), hangs, mismatches."""

    def __init__(self, name: str, crash_dir: Path) -> None:
        self.name = name
        self.inputs = 0
        self.extra = collections.Counter[str]()
        self.crashes = collections.Counter[str]()
        self.hangs = 0
        self.mismatches = 0
        self.crash_dir = crash_dir
        self.slowest = 0.0

    def crash(self, exc: BaseException, data: bytes) -> None:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        key = f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}: {exc}"[:200]
        self.crashes[key] += 1
        if self.crashes[key] <= 3:
            self.crash_dir.mkdir(parents=True, exist_ok=True)
            name = f"{self.name}-{sum(self.crashes.values())}.bin"
            (self.crash_dir / name).write_bytes(data)


def run_guarded(tally: Tally, limit: float, data: bytes, work: Callable[[], Any]) -> None:
    """``work()`` under the time limit; any exception but meetpunt's own is a crash."""
    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        work()
    except HangError:
        tally.hangs += 1
        tally.crash_dir.mkdir(parents=True, exist_ok=True)
        (tally.crash_dir / f"{tally.name}-hang-{tally.hangs}.bin").write_bytes(data)
    except MeetpuntError:
        tally.extra["refused by MeetpuntError"] += 1
    except Exception as exc:
        tally.crash(exc, data)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    tally.slowest = max(tally.slowest, time.perf_counter() - started)


# -- P1 -------------------------------------------------------------------------------


def p1_seeds() -> list[bytes]:
    """Every real telegram of the test set."""
    seeds: list[bytes] = []
    for path in sorted(TELEGRAMS.glob("*.p1")):
        seeds.extend(split_telegrams(path.read_bytes()))
    return seeds


def with_crc(data: bytes) -> bytes:
    """``data`` with the CRC after its ``!`` made right (when it has a ``!``)."""
    start, end = data.find(b"/"), data.rfind(b"!")
    if start < 0 or end < start:
        return data
    return data[: end + 1] + b"%04X\r\n" % crc16_arc(data[start : end + 1])


def mutate_p1(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One hostile input grown from a real telegram."""
    data = rng.choice(seeds)
    how = rng.random()
    if how < 0.05:
        return rng.randbytes(rng.randrange(0, 2048))
    data = _mutate_lines(rng, data) if how < 0.45 else _mutate_bytes(rng, data)
    if rng.random() < 0.1:
        data = data[: rng.randrange(len(data) + 1)]
    if rng.random() < 0.75:
        data = with_crc(data)
    return data


def _mutate_lines(rng: random.Random, data: bytes) -> bytes:
    """Lines dropped, doubled, swapped, or a value replaced by a hostile one."""
    lines = data.split(b"\n")
    for _ in range(rng.randrange(1, 4)):
        index = rng.randrange(len(lines))
        op = rng.randrange(6)
        if op == 0:
            del lines[index]
            lines = lines or [b""]
        elif op == 1:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif op == 2:
            other = rng.randrange(len(lines))
            lines[index], lines[other] = lines[other], lines[index]
        else:
            lines[index] = _hostile_value(rng, lines[index])
    return b"\n".join(lines)


def _hostile_value(rng: random.Random, line: bytes) -> bytes:
    opens = [i for i, b in enumerate(line) if b == 0x28]  # "("
    token = rng.choice(HOSTILE).encode("utf-8", "surrogateescape")
    if not opens:
        return token + line
    at = rng.choice(opens) + 1
    close = line.find(b")", at)
    close = len(line) if close < 0 else close
    if rng.random() < 0.5:  # keep the unit, change the number
        star = line.find(b"*", at, close)
        close = star if star >= 0 else close
    return line[:at] + token + line[close:]


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Bytes flipped, inserted (P1's own punctuation mostly), deleted, or made digits."""
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 9)):
        if not buf:
            buf.extend(rng.randbytes(8))
        at = rng.randrange(len(buf))
        op = rng.randrange(4)
        if op == 0:
            buf[at] = rng.randrange(256)
        elif op == 1:
            buf.insert(at, rng.choice(b"/!()*:-.\r\n0123456789SW\x00\xff"))
        elif op == 2:
            del buf[at : at + rng.randrange(1, 16)]
        else:
            buf[at] = rng.choice(b"0123456789")
    return bytes(buf)


def use_telegram(telegram: Telegram) -> None:
    """Everything a caller may ask of a parsed telegram."""
    telegram.to_json()
    telegram.to_json_bytes()
    repr(telegram)
    if telegram.valid:
        for name in TELEGRAM_VALUES:
            getattr(telegram, name)
        for obis in telegram.fields:
            telegram.value(obis)
            telegram.unit(obis)


def p1_input(rng: random.Random, data: bytes, seen: collections.Counter[str]) -> Callable[[], None]:
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(0, 4)))

    def work() -> None:
        telegram = parse_telegram(data)
        seen["valid" if telegram.error is None else telegram.error.rule] += 1
        use_telegram(telegram)
        splitter = TelegramSplitter()
        frames: list[Telegram] = []
        start = 0
        for cut in [*cuts, len(data)]:
            frames.extend(splitter.feed(data[start:cut] + (b"\r\n" if cut == len(data) else b"")))
            start = cut
        frames.extend(splitter.flush())
        for frame in frames:
            use_telegram(frame)

    return work


# -- register CSV ---------------------------------------------------------------------


def register_seeds() -> list[str]:
    """The example register's files and a generated connections file."""
    seeds = [path.read_text(encoding="utf-8") for path in sorted(EXAMPLE.glob("*.csv"))]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CONNECTION_COLUMNS)
    for serial in range(2, 12):
        single = serial % 3 != 0
        writer.writerow(
            [
                ean_from_serial("871234", serial),
                "electricity",
                "2020-01-01",
                "1x35" if single else "3x25",
                "IBD",
                "on",
                "smart",
                "standard",
                f"{1000 + serial}AB",
                str(serial),
                "",
                "Dorpsstraat",
                "Meetdorp",
                "Meetdorp",
                f"{serial:012d}",
                "OS-1",
                "OS-1/K1",
                f"L{1 + serial % 3}" if single else "",
                "household",
                "false",
                "4.2" if serial % 4 == 0 else "",
                "2020-01-01" if serial % 4 == 0 else "",
            ]
        )
    seeds.append(out.getvalue())
    return seeds


def mutate_register(rng: random.Random, seeds: list[str]) -> str:
    """One hostile register file grown from a sound one."""
    text = rng.choice(seeds)
    how = rng.random()
    if how < 0.6:  # cell level
        rows = list(csv.reader(io.StringIO(text)))
        for _ in range(rng.randrange(1, 5)):
            row = rows[rng.randrange(len(rows))]
            if not row:
                continue
            at = rng.randrange(len(row))
            op = rng.randrange(10)
            if op == 0:
                row.append(rng.choice(HOSTILE))
            elif op == 1:
                del row[at]
            elif op == 2 and rows[0]:
                rows[0].append(rng.choice(rows[0]))  # a doubled column
            else:
                row[at] = rng.choice(HOSTILE) if op < 7 else row[at] + rng.choice(HOSTILE)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=rng.choice(["\n", "\r\n"]))
        writer.writerows(rows)
        text = out.getvalue()
    else:  # character and byte level
        chars = list(text)
        for _ in range(rng.randrange(1, 9)):
            if not chars:
                chars.append("x")
            at = rng.randrange(len(chars))
            op = rng.randrange(4)
            if op == 0:
                chars[at] = rng.choice('",\n\r\0;\ufeff²١x9')
            elif op == 1:
                chars.insert(at, rng.choice(HOSTILE))
            elif op == 2:
                del chars[at : at + rng.randrange(1, 12)]
            else:
                chars[at] = bytes([rng.randrange(128, 256)]).decode("utf-8", "surrogateescape")
        text = "".join(chars)
    if rng.random() < 0.02:  # a cell over csv's 128 KiB limit
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(['"', ""]) + "z" * 140_000 + text[at:]
    return text


def check_only(text: str, capacity_of: Any) -> None:
    """The import's reading and checking of ``text`` (what a worker process does)."""
    stream = iter(io.StringIO(text))
    reader = csv.DictReader(stream)
    try:
        kind = detect_kind(reader.fieldnames or [])
    except csv.Error:
        return  # the import refuses the header (REG-import.header)
    if isinstance(kind, str) and kind == "connections":
        fieldnames = list(reader.fieldnames or [])
        for chunk in _chunks(stream, reader.line_num):
            checked = _check_rows(fieldnames, capacity_of, chunk.lines, chunk.starts)
            assert len(checked) == len(chunk.starts)


class UndoError(Exception):
    """Roll the fuzz import back."""


Outcome = tuple[int, int, list[tuple[int, str]]]


def full_import(url: str, text: str) -> tuple[Outcome, Outcome]:
    """What importing ``text`` does by the batch path and by the one-row path."""
    outcomes: list[Outcome] = []
    register = open_register(url)
    try:
        for row_by_row in (False, True):
            seen: list[ImportReport] = []
            try:
                with register.session() as session:
                    seen.append(import_csv(session, text, "fuzz.csv", row_by_row=row_by_row))
                    raise UndoError
            except UndoError:
                pass
            report = seen[0]
            outcomes.append(
                (report.rows, report.inserted, [(r.line, r.rule) for r in report.refused])
            )
    finally:
        register.dispose()
    return outcomes[0], outcomes[1]


# -- the run ---------------------------------------------------------------------------


def run_p1(args: argparse.Namespace, rss_tenth: dict[str, int]) -> Tally:
    """The P1 target: parser, accessors, JSON writers and splitter."""
    rng = random.Random(args.seed)
    seeds = p1_seeds()
    tally = Tally("p1", args.crash_dir)
    started = time.perf_counter()
    for index in range(args.inputs):
        data = mutate_p1(rng, seeds)
        run_guarded(tally, args.time_limit, data, p1_input(rng, data, tally.extra))
        tally.inputs += 1
        if index == args.inputs // 10:
            rss_tenth["p1"] = rss_kib()
    tally.extra["seconds"] = round(time.perf_counter() - started)
    return tally


def run_register(args: argparse.Namespace, rss_tenth: dict[str, int]) -> Tally:
    """The register target: reading and checking every input, a whole import (both
    paths, compared) every ``--full-every``-th."""
    rng = random.Random(args.seed + 1)
    seeds = register_seeds()
    capacity_of = capacity_parser(capacity_classes())
    tally = Tally("register", args.crash_dir)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/fuzz.sqlite"
        open_register(url).dispose()
        for index in range(args.inputs):
            text = mutate_register(rng, seeds)
            data = text.encode("utf-8", "surrogateescape")
            run_guarded(
                tally, args.time_limit, data, functools.partial(check_only, text, capacity_of)
            )
            if index % args.full_every == 0:
                _full(tally, args, url, text, data)
            tally.inputs += 1
            if index == args.inputs // 10:
                rss_tenth["register"] = rss_kib()
    tally.extra["seconds"] = round(time.perf_counter() - started)
    return tally


def _full(tally: Tally, args: argparse.Namespace, url: str, text: str, data: bytes) -> None:
    paths: list[tuple[Outcome, Outcome]] = []
    run_guarded(tally, args.time_limit * 5, data, lambda: paths.append(full_import(url, text)))
    tally.extra["full imports"] += 1
    if not paths:
        return
    batch, one_by_one = paths[0]
    _rows, inserted, refused = batch
    tally.extra["rows in"] += inserted
    tally.extra["rows refused"] += len(refused)
    if batch != one_by_one:
        tally.mismatches += 1
        args.crash_dir.mkdir(parents=True, exist_ok=True)
        (args.crash_dir / f"register-mismatch-{tally.mismatches}.csv").write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--targets", default="p1,register")
    parser.add_argument("--full-every", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=2.0, help="seconds per input")
    parser.add_argument("--crash-dir", type=Path, default=Path("/tmp/fuzz_crashes"))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _on_alarm)
    targets = args.targets.split(",")
    tallies: list[Tally] = []
    rss_tenth: dict[str, int] = {}
    started_all = time.perf_counter()
    if "p1" in targets:
        tallies.append(run_p1(args, rss_tenth))
        print(f"p1 done: {tallies[-1].inputs} inputs", flush=True)
    if "register" in targets:
        tallies.append(run_register(args, rss_tenth))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\nfuzz run: seed {args.seed}, {time.perf_counter() - started_all:.0f} s in all")
    bad = 0
    for tally in tallies:
        crashes = sum(tally.crashes.values())
        bad += crashes + tally.hangs + tally.mismatches
        print(
            f"{tally.name:9} {tally.inputs:>9,} inputs  {crashes} crashes  {tally.hangs} hangs  "
            f"{tally.mismatches} mismatches  slowest {tally.slowest * 1000:.1f} ms  "
            f"rss after 10%: {rss_tenth.get(tally.name, 0) // 1024} MiB  {dict(tally.extra)}"
        )
        for key, count in tally.crashes.most_common(20):
            print(f"    {count:>7} x {key}")
    print(f"rss at the end: {rss_kib() // 1024} MiB, peak {peak // 1024} MiB")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
