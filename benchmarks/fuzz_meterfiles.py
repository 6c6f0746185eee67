"""Fuzz run of the meter-file readers (issue 13, items 9 and 12): CSV and Parquet.

Goal: at least 1,000,000 generated inputs, zero crashes, zero hangs, memory bounded.

Each input is a file made from a seeded generator: a CSV of a random kind with a
header that may repeat, miss or misname columns, rows of cells drawn from numbers at and
past every type's range (``1e30``, ``inf``, ``nan``, 25 digits), times with and without
offsets, phases ``0``..``9``, quotes, embedded line ends, NUL, Latin-1 and UTF-16 bytes,
fields over 128 KB, random bytes; or a Parquet file of a random kind with random column
types (ints of every width, floats with extremes, strings, timestamps with and without a
zone, nulls, dictionaries), duplicate and missing columns, sometimes truncated or with
bytes flipped. Every input is read piece by piece through ``read_meter_file``; one in
:data:`INGEST_EVERY` is also ingested into an in-memory store (refusals written to the
quarantine with their raw records).

* a **crash** is any exception other than :class:`MeterDataError` (a whole file refused
  with its rule), or a broken invariant (a record number below 1, a refusal without a
  rule, a piece not in the kind's source shape);
* a **hang** is an input that takes more than :data:`HANG_S` seconds (``SIGALRM``);
* **memory**: peak RSS after the first 1 % of inputs and at the end (bounded: no growth).

Run in the background (it takes a while on a shared machine), output to a file:

    nohup .venv/bin/python benchmarks/fuzz_meterfiles.py --inputs 1000000 > fuzz.txt &

Crashing inputs are saved under ``--keep`` to be replayed.

Measured (2026-12-06, seed 20261206, 2 shared cores): 1,000,000 inputs in 2,389 s,
0 crashes, 0 hangs, slowest input 1.92 s; peak RSS 220 MB after 1 % of the inputs,
286 MB at the end (the in-memory store keeps what every 50th input ingested). 623,580
inputs read, the rest refused whole: MTR-2.columns 187,303, MTR-2.duplicate_column
84,193, MTR-2.encoding 33,975, MTR-2.unreadable 30,879, MTR-2.unknown_kind 22,946,
MTR-3.naive 17,120, MTR-2.field_too_large 4. The first runs found 6 crashes (times
outside Python's years, integers past 2**53 in counter checks, a null phase, a damaged
Parquet schema), all fixed and covered by ``tests/meterdata``.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from meetpunt import rulebook
from meetpunt.errors import MeterDataError
from meetpunt.io.files import read_meter_file
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.store import open_store

HANG_S = 10
INGEST_EVERY = 50
FUZZ_KINDS = ("quarter_hours", "voltages_10min", "daily_readings", "gas_hourly", "voltage_events")
EAN = "871687400000000014"

NUMBERS = [
    "0", "1", "-1", "12.5", "1e30", "-1e30", "1e308", "1e309", "inf", "-inf", "nan", "NaN",
    "9" * 25, "-" + "9" * 25, "127", "128", "-129", "32768", "2147483648", "9223372036854775807",
    "9223372036854775808", "0x10", "1_000", " 7 ", "", "1,5", "١٢", "½",
]  # fmt: skip
TIMES = [
    "2025-06-03T00:00:00Z", "2025-06-03T00:15:00+02:00", "2025-06-03T00:10:00",
    "2025-03-30T02:30:00+01:00", "2025-13-01T00:00:00Z", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00", "2025-06-03", "yesterday", "", "2025-06-03T00:00:00.123456789Z",
]  # fmt: skip
PHASES = ["L1", "l2", "L3", "1", "2.0", "3", "0", "4", "9", "-1", "L9", "N", ""]
JUNK = ['"', '""', '"a,b"', '"line\nend"', "\r", "é", "\U0001f600", ";", "\t", "\\"]


def _cell(rng: random.Random, name: str) -> str:
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(JUNK)
    if name in ("start", "at", "end", "sent_at", "read_at"):
        return rng.choice(TIMES)
    if name == "phase":
        return rng.choice(PHASES)
    if name == "ean":
        return rng.choice([EAN, "871687400000000021", "", "x" * 40, EAN + " "])
    return rng.choice(NUMBERS)


def _columns(rng: random.Random, kind_name: str) -> list[str]:
    kind = KINDS[kind_name]
    names = [kind.ean_column, kind.time, *(c.name for c in kind.extra_key), *kind.value_names]
    names = [n.replace("_wh", "_kwh") if rng.random() < 0.3 else n for n in names]
    if rng.random() < 0.1:
        names.append(rng.choice(names))  # a duplicate column
    if rng.random() < 0.1 and len(names) > 2:
        names.pop(rng.randrange(len(names)))  # a missing column
    if rng.random() < 0.1:
        names.append(rng.choice(["connection", "extra", "", "é"]))
    rng.shuffle(names) if rng.random() < 0.2 else None
    return names


def make_csv(rng: random.Random) -> tuple[bytes, str, str | None]:
    """A CSV input: (bytes, file name, --kind or None)."""
    kind_name = rng.choice(FUZZ_KINDS)
    names = _columns(rng, kind_name)
    lines = [",".join(names)]
    for _ in range(rng.randrange(0, 25)):
        cells = [_cell(rng, n.replace("_kwh", "_wh")) for n in names]
        if rng.random() < 0.1:
            cells = cells[: rng.randrange(len(cells) + 1)]
        if rng.random() < 0.05:
            cells.append(_cell(rng, "x"))
        lines.append(",".join(cells))
    text = "\n".join(lines) + ("\n" if rng.random() < 0.9 else "")
    roll = rng.random()
    if roll < 0.002:
        text += EAN + ",2025-06-03T00:00:00Z," + "9" * (140 * 1024) + ",0\n"
    elif roll < 0.003:
        text = text.replace("\n", "\r\n")
    data = text.encode("utf-8")
    roll = rng.random()
    if roll < 0.03:
        data = text.encode("latin-1", "replace")
    elif roll < 0.04:
        data = text.encode("utf-16")
    elif roll < 0.06:
        data = b"\xef\xbb\xbf" + data
    elif roll < 0.16 and data:
        mutable = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            mutable[rng.randrange(len(mutable))] = rng.randrange(256)
        data = bytes(mutable)
    elif roll < 0.17:
        data = rng.randbytes(rng.randrange(0, 400))
    name = kind_name if rng.random() < 0.8 else "data"
    kind = rng.choice(FUZZ_KINDS) if name == "data" and rng.random() < 0.5 else None
    return data, f"{name}.csv", kind


def _array(rng: random.Random, n: int, name: str) -> pa.Array:
    roll = rng.random()
    if name in ("start", "at", "end", "sent_at", "read_at") and roll < 0.8:
        tz = rng.choice(["UTC", "Europe/Amsterdam", "+05:30", None, "UTC"])
        unit = rng.choice(["s", "ms", "us", "ns"])
        base = datetime(2025, 6, 3, tzinfo=UTC)
        values = [
            None if rng.random() < 0.1 else base + timedelta(minutes=rng.choice([0, 10, 15, 7]) * i)
            for i in range(n)
        ]
        array = pa.array(values, pa.timestamp(unit, tz))
        if unit != "ns" and rng.random() < 0.05:  # times off the calendar: year 0, 10000
            extreme = [(1 << 62) // 1_000_000, -(1 << 62) // 1_000_000, None]
            array = pa.array([rng.choice(extreme) for _ in range(n)], pa.int64()).cast(
                pa.timestamp(unit, tz)
            )
        return array
    if name == "ean" and roll < 0.8:
        eans = [rng.choice([EAN, "871687400000000021", None, ""]) for _ in range(n)]
        array = pa.array(eans, pa.string())
        return array.dictionary_encode() if rng.random() < 0.3 else array
    kind = rng.choice(["int8", "int16", "int32", "int64", "uint64", "float32", "float64",
                       "string", "null", "bool"])  # fmt: skip
    if kind == "null":
        return pa.nulls(n)
    if kind == "string":
        return pa.array([rng.choice(NUMBERS) for _ in range(n)], pa.string())
    if kind == "bool":
        return pa.array([rng.random() < 0.5 for _ in range(n)])
    if kind.startswith("float"):
        pool = [0.0, 1.5, -2.0, 1e30, -1e30, float("inf"), float("nan"), 9.2e18, 3.4e38, None]
        floats = [rng.choice(pool) for _ in range(n)]
        return pa.array(floats, pa.float32() if kind == "float32" else pa.float64())
    typ = getattr(pa, kind)()
    bits = typ.bit_width
    lo, hi = (0, 2**bits - 1) if kind.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    ints = [rng.choice([lo, hi, 0, 1, 2, 3, 9, None, rng.randint(lo, hi)]) for _ in range(n)]
    return pa.array(ints, typ)


def make_parquet(rng: random.Random) -> tuple[bytes, str, str | None]:
    """A Parquet input: (bytes, file name, --kind or None)."""
    kind_name = rng.choice(FUZZ_KINDS)
    names = _columns(rng, kind_name)
    n = rng.randrange(0, 40)
    arrays = [_array(rng, n, name.replace("_kwh", "_wh")) for name in names]
    table = pa.Table.from_arrays(arrays, names=names)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=rng.choice([1, 7, 64]))
    data = sink.getvalue().to_pybytes()
    roll = rng.random()
    if roll < 0.05:
        data = data[: rng.randrange(len(data))]
    elif roll < 0.15:
        mutable = bytearray(data)
        for _ in range(rng.randrange(1, 6)):
            mutable[rng.randrange(len(mutable))] = rng.randrange(256)
        data = bytes(mutable)
    return data, f"{kind_name}.parquet", None


class CrashError(Exception):
    """A broken invariant of the readers."""


def check(path: Path, kind: str | None, ingestor: Ingestor | None) -> str:
    """Read (and maybe ingest) one input: the outcome ``refused:<rule>`` or ``read``."""
    try:
        source = read_meter_file(path, kind)
        for piece in source.pieces():
            for name, table in piece.tables.items():
                wanted = KINDS[name].source_schema().names
                if table.column_names != wanted:
                    raise CrashError(f"piece columns {table.column_names} != {wanted}")
                records = table.column("record").to_pylist()
                if any(r is None or r < 1 for r in records):
                    raise CrashError("a record number below 1")
            for refusal in piece.refused:
                if not refusal.rule or refusal.record < 1:
                    raise CrashError(f"a refusal without rule or record: {refusal}")
        if ingestor is not None:
            ingestor.ingest(read_meter_file(path, kind))
    except MeterDataError as exc:
        return f"refused:{exc.rules[0] if exc.rules else '?'}"
    return "read"


def _hang(signum: int, frame: Any) -> None:
    raise TimeoutError(f"an input took more than {HANG_S} s")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ingestor() -> Ingestor:
    """An ingestor into an in-memory store whose register knows one EAN."""
    from meetpunt.domain.capacity import Commodity
    from meetpunt.register.meterindex import MeterIndexEntry

    rules = rulebook.vee_rules()
    entry = MeterIndexEntry(
        1, EAN, Commodity.ELECTRICITY, datetime(2020, 1, 1).date(), None, "3x25", "smart", "IBD"
    )
    return Ingestor(
        open_store(":memory:"),
        ConnectionIndex([entry], rules.phase_voltage_v),
        rules,
        now=datetime(2026, 1, 1, tzinfo=UTC),
        quarantine_cap=100,
    )


def run(inputs: int, seed: int, keep: Path, report_every: int) -> int:
    rng = random.Random(seed)
    ingestor = _ingestor()
    outcomes: Counter[str] = Counter()
    crashes = hangs = 0
    slowest = 0.0
    early_peak = 0.0
    signal.signal(signal.SIGALRM, _hang)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="meetpunt-fuzz-") as tmp:
        folder = Path(tmp)
        for i in range(1, inputs + 1):
            maker = make_csv if rng.random() < 0.85 else make_parquet
            data, name, kind = maker(rng)
            path = folder / name
            path.write_bytes(data)
            signal.alarm(HANG_S)
            t0 = time.perf_counter()
            try:
                outcome = check(path, kind, ingestor if i % INGEST_EVERY == 0 else None)
            except TimeoutError:
                hangs += 1
                outcome = "hang"
                _keep(keep, i, name, data, "hang")
            except Exception:  # a crash: anything but a refusal
                crashes += 1
                outcome = "crash"
                _keep(keep, i, name, data, traceback.format_exc())
            finally:
                signal.alarm(0)
            slowest = max(slowest, time.perf_counter() - t0)
            outcomes[outcome.split(":")[0] if outcome == "read" else outcome] += 1
            path.unlink()
            if i == max(inputs // 100, 1):
                early_peak = _peak_mb()
            if i % report_every == 0 or i == inputs:
                rate = i / (time.perf_counter() - began)
                print(
                    f"{i:>9} inputs  {rate:>6.0f}/s  crashes {crashes}  hangs {hangs}  "
                    f"slowest {slowest:.2f} s  peak RSS {_peak_mb():.0f} MB",
                    flush=True,
                )
    ingestor.store.close()
    print()
    print(f"inputs {inputs}, seconds {time.perf_counter() - began:.0f}")
    print(f"crashes {crashes}, hangs (> {HANG_S} s) {hangs}, slowest input {slowest:.2f} s")
    print(f"peak RSS after 1 % of inputs {early_peak:.0f} MB, at the end {_peak_mb():.0f} MB")
    print("outcomes:")
    for outcome, count in outcomes.most_common():
        print(f"  {outcome:<40}{count:>9}")
    return crashes + hangs


def _keep(keep: Path, i: int, name: str, data: bytes, why: str) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    (keep / f"{i:08d}-{name}").write_bytes(data)
    (keep / f"{i:08d}-{name}.why.txt").write_text(why)
    print(f"input {i} ({name}): {why.strip().splitlines()[-1][:300]}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    parser.add_argument("--keep", type=Path, default=Path("fuzz-crashes"))
    parser.add_argument("--report-every", type=int, default=50_000)
    args = parser.parse_args()
    print(f"seed {args.seed}", flush=True)
    failures = run(args.inputs, args.seed, args.keep, args.report_every)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
