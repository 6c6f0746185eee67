"""A crash (kill -9) in the middle of a batch loses nothing and doubles nothing (MTR-4).

``meetpunt ingest --verbose`` prints ``begin SOURCE`` when a batch's transaction starts;
the test kills the process at a random moment after such a line, again and again, checks
after every kill that the store holds only whole batches, then lets a last run finish and
compares the store with a clean single ingest.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meetpunt.domain.calendar import local_day_bounds_utc
from meetpunt.meterdata.kinds import KINDS
from tests.meterdata.conftest import E1X25, E3X25, E_CHANGES, build_register, utc

FILES = 5
QUARTERS_PER_FILE = 100_000
EANS = (E3X25, E1X25, E_CHANGES)


def _write_sources(folder: Path) -> None:
    """Quarter-hour files of three connections (some values missing, one refused) and
    daily readings around the gaps, so estimates and quarantine take part too."""
    folder.mkdir()
    rng = np.random.default_rng(5)
    start = utc(2010, 1, 1)  # five files of 100,000 quarter-hours end in 2024
    start_us = int(start.timestamp()) * 1_000_000
    for f in range(FILES):
        steps = start_us + (f * QUARTERS_PER_FILE + np.arange(QUARTERS_PER_FILE)) * 900_000_000
        keep = rng.random(QUARTERS_PER_FILE) > 0.001
        n = int(keep.sum())
        wh = rng.integers(0, 300, n * len(EANS))
        wh[7] = 99_999  # above any capacity: quarantined
        table = pa.table(
            {
                "ean": np.repeat(np.array(EANS), n),
                "start": pa.array(np.tile(steps[keep], len(EANS)), pa.timestamp("us", "UTC")),
                "import_wh": wh,
                "export_wh": np.zeros(n * len(EANS), dtype=np.int64),
            }
        )
        pq.write_table(table, folder / f"quarter_hours.{f}.parquet")
    day = start.date()
    rows = []
    for d in range(40):
        at = local_day_bounds_utc(day + timedelta(days=d))[0]
        rows += [(e, at, 1_000_000 + d * 7_000, 0, 0, 0) for e in EANS]
    columns = ["ean", "at", "import_t1_wh", "import_t2_wh", "export_t1_wh", "export_t2_wh"]
    pq.write_table(
        pa.table(dict(zip(columns, zip(*rows, strict=True), strict=True))),
        folder / "daily_readings.parquet",
    )


def _run(folder: Path, store: Path, db: str, **kw: object) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "meetpunt",
        "ingest",
        str(folder),
        "--store",
        str(store),
        "--db",
        db,
        "--verbose",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, **kw
    )  # type: ignore[call-overload]


def _whole_batches_only(store: Path) -> int:
    """Every stored row belongs to a committed batch; returns the committed sources (a
    large file is stored in parts, each its own batch; only its last part commits the
    source, see ``Ingestor._ingest_parts``)."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        committed = {r[0] for r in con.execute("SELECT id FROM batch").fetchall()}
        for name in (*KINDS, "quarantine", "finding"):
            batches = {r[0] for r in con.execute(f'SELECT DISTINCT batch FROM "{name}"').fetchall()}
            assert batches <= committed, f"{name} holds rows of an uncommitted batch"
        accepted = con.execute("SELECT coalesce(sum(accepted), 0) FROM batch").fetchall()[0][0]
        stored = sum(
            con.execute(f'SELECT count(*) FROM "{k}" WHERE quality IN (0, 1)').fetchall()[0][0]
            for k in KINDS
        )
        assert stored == accepted
        sources = con.execute(
            "SELECT count(DISTINCT sha256) FROM batch WHERE NOT contains(sha256, ':part')"
        ).fetchall()[0][0]
        return int(sources)
    finally:
        con.close()


def _content(store: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        out = {}
        for name, kind in KINDS.items():
            order = ", ".join(f'"{k}"' for k in kind.key)
            out[name] = con.execute(
                f'SELECT * EXCLUDE (batch) FROM "{name}" ORDER BY {order}'
            ).fetchall()
        out["quarantine"] = con.execute(
            "SELECT * EXCLUDE (batch) FROM quarantine ORDER BY source, record"
        ).fetchall()
        out["finding"] = con.execute(
            'SELECT * EXCLUDE (batch) FROM finding ORDER BY kind, connection, "from"'
        ).fetchall()
        out["batch"] = con.execute(
            "SELECT source, sha256, rows, accepted, duplicates, estimated, quarantined "
            "FROM batch ORDER BY ALL"
        ).fetchall()
        return out
    finally:
        con.close()


def test_killing_ingestion_mid_batch_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'register.sqlite'}"
    build_register(db).dispose()
    sources = tmp_path / "sources"
    _write_sources(sources)

    clean = tmp_path / "clean.duckdb"
    assert _run(sources, clean, db).wait(timeout=300) == 0
    assert _whole_batches_only(clean) == FILES + 1

    crashed = tmp_path / "crashed.duckdb"
    chance = random.Random(11)
    kills_mid_batch = 0
    for attempt in range(6):
        process = _run(sources, crashed, db)
        assert process.stderr is not None
        begun = 0
        target = 1 + attempt % 3
        for line in process.stderr:
            begun += line.startswith("begin ")
            if begun == target:
                time.sleep(chance.uniform(0.0, 0.08))
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=300)
        committed = _whole_batches_only(crashed)
        if process.returncode == -signal.SIGKILL and begun == target:
            kills_mid_batch += committed < FILES + 1
    assert kills_mid_batch >= 3, "the kills should land while batches are being written"

    final = _run(sources, crashed, db)
    assert final.wait(timeout=300) == 0
    assert _whole_batches_only(crashed) == FILES + 1
    assert _content(crashed) == _content(clean)
