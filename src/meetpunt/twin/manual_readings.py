"""A mechanic's manual readings of smart meters, right and misread (UC10 of the twin).

Writes ``operator/manual_readings.csv`` (what the mechanic wrote: reading id, EAN, local
time with offset, whole kWh per register) and ``truth/manual_readings.parquet`` (which
readings are misread, how, and the true registers). Right readings are the floor of the
true registers at the visit, at ANY moment of the day; a meter that was offline (meter
realities, issue 16) is visited while still offline, so its newest daily reading is days
old and there is consumption since. Misreads (rule file ``twin_manual_readings``):

* ``transposition``: two adjacent digits of one register swapped (12345 -> 12354);
* ``misread_1_7``: a 1 written as 7 or a 7 as 1 in one register;
* ``tariff_swap``: T1 and T2 written in each other's place;
* ``direction_swap``: import and export written in each other's place;
* ``neighbour_meter``: the neighbour's meter read under this EAN.

A misread that would leave the values unchanged (T1 = T2, say) is drawn again as a
neighbour's meter, so every misread in the truth is really wrong. Meters whose hub data
belongs to another meter (meter swaps, replaced meters) are not visited: their daily
readings do not describe the meter a mechanic would read.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meetpunt.domain.calendar import to_local
from meetpunt.errors import TwinError
from meetpunt.rulebook import load_rules
from meetpunt.twin.meters import MeterData
from meetpunt.twin.model import STEP_S, UTC_TS, TimeAxis
from meetpunt.twin.realities import Realities

MISREADS = ("transposition", "misread_1_7", "tariff_swap", "direction_swap", "neighbour_meter")
COLUMNS = (
    "reading_id",
    "ean",
    "taken_at",
    "import_t1_kwh",
    "import_t2_kwh",
    "export_t1_kwh",
    "export_t2_kwh",
)
TRUTH_SCHEMA = pa.schema(
    [
        ("reading_id", pa.string()),
        ("ean", pa.string()),
        ("taken_at", UTC_TS),
        ("misread", pa.string()),
        ("offline_visit", pa.bool_()),
        ("true_kwh", pa.list_(pa.float64())),
        ("reported_kwh", pa.list_(pa.float64())),
    ]
)
"""``misread`` is empty for a right reading."""


@dataclass(frozen=True)
class ManualParams:
    """The ``twin_manual_readings`` rule file."""

    smart_share: float
    offline_visit_share: float
    misread_share: float
    mix: Mapping[str, float]

    @classmethod
    def load(cls) -> ManualParams:
        body = load_rules("twin_manual_readings").body.get("readings", {})
        try:
            mix = {k: float(body["misreads"][k]) for k in MISREADS}
            params = cls(
                float(body["smart_share"]),
                float(body["offline_visit_share"]),
                float(body["misread_share"]),
                mix,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TwinError(f"twin_manual_readings.toml: missing or bad value ({exc})") from exc
        shares = (params.smart_share, params.offline_visit_share, params.misread_share)
        if not all(0.0 <= s <= 1.0 for s in shares) or sum(mix.values()) <= 0:
            raise TwinError("twin_manual_readings.toml: shares must lie in [0, 1], mix > 0")
        return params


def _digits_swap(value: int, rng: np.random.Generator) -> int | None:
    digits = list(str(value))
    pairs = [i for i in range(len(digits) - 1) if digits[i] != digits[i + 1]]
    if not pairs:
        return None
    i = pairs[int(rng.integers(len(pairs)))]
    digits[i], digits[i + 1] = digits[i + 1], digits[i]
    return int("".join(digits))


def _one_seven(value: int, rng: np.random.Generator) -> int | None:
    digits = list(str(value))
    spots = [i for i, c in enumerate(digits) if c in "17"]
    if not spots:
        return None
    i = spots[int(rng.integers(len(spots)))]
    digits[i] = "7" if digits[i] == "1" else "1"
    return int("".join(digits))


def misread(
    kind: str, true: Sequence[int], neighbour: Sequence[int], rng: np.random.Generator
) -> list[int]:
    """What the mechanic writes for ``kind`` (the true registers when it changes nothing)."""
    out = list(true)
    if kind in ("transposition", "misread_1_7"):
        # the registers that hold a number worth misreading (a zero export stays zero)
        regs = [i for i, v in enumerate(true) if v >= 10]
        if regs:
            i = regs[int(rng.integers(len(regs)))]
            slipped = (_digits_swap if kind == "transposition" else _one_seven)(true[i], rng)
            if slipped is not None:
                out[i] = slipped
    elif kind == "tariff_swap":
        out = [true[1], true[0], true[3], true[2]]
    elif kind == "direction_swap":
        out = [true[2], true[3], true[0], true[1]]
    else:
        out = list(neighbour)
    return out


def manual_readings(
    axis: TimeAxis,
    eans: Sequence[str],
    metered: MeterData,
    skip: Set[int],
    realities: Realities | None,
    rng: np.random.Generator,
    params: ManualParams | None = None,
) -> tuple[list[dict[str, str]], pa.Table]:
    """The operator file's rows and the truth table (see the module docstring)."""
    params = params or ManualParams.load()
    smart = [i for i in metered.smart if i not in skip]
    if len(smart) < 2 or axis.days < 2:
        return [], pa.Table.from_pylist([], schema=TRUTH_SCHEMA)
    kinds = list(MISREADS)
    weights = np.array([params.mix[k] for k in kinds])
    weights = weights / weights.sum()
    first = 86_400 // STEP_S + 1  # a day of history before any visit
    offline = dict(realities.offline) if realities is not None else {}
    rows: list[dict[str, str]] = []
    truth: dict[str, list[Any]] = {n: [] for n in TRUTH_SCHEMA.names}
    for pos, index in enumerate(smart):
        window = offline.get(index)
        visit_offline = False
        if window is not None and rng.random() < params.offline_visit_share:
            lo = max(first, window.start_s // STEP_S + 86_400 // STEP_S)
            hi = min(axis.n_steps, window.end_s // STEP_S)
            if lo < hi:
                step, visit_offline = int(rng.integers(lo, hi)), True
        if not visit_offline:
            if rng.random() >= params.smart_share:
                continue
            step = int(rng.integers(first, axis.n_steps))
        regs = metered.state.registers_mwh(index)[step]
        true = [int(v // 1_000_000) for v in regs]
        other = smart[pos - 1] if pos else smart[1]
        neighbour = [int(v // 1_000_000) for v in metered.state.registers_mwh(other)[step]]
        kind = ""
        reported = list(true)
        if rng.random() < params.misread_share:
            kind = str(rng.choice(kinds, p=weights))
            reported = misread(kind, true, neighbour, rng)
            if reported == true:
                kind, reported = "neighbour_meter", list(neighbour)
            if reported == true:
                kind = ""
        taken = axis.start_utc + timedelta(seconds=step * STEP_S)
        reading_id = f"M{len(rows) + 1:05d}"
        rows.append(
            {
                "reading_id": reading_id,
                "ean": eans[index],
                "taken_at": to_local(taken).isoformat(timespec="minutes"),
                **{c: str(v) for c, v in zip(COLUMNS[3:], reported, strict=True)},
            }
        )
        truth["reading_id"].append(reading_id)
        truth["ean"].append(eans[index])
        truth["taken_at"].append(taken)
        truth["misread"].append(kind)
        truth["offline_visit"].append(visit_offline)
        truth["true_kwh"].append([float(v) for v in true])
        truth["reported_kwh"].append([float(v) for v in reported])
    return rows, pa.table(truth, schema=TRUTH_SCHEMA)


def write_manual_readings(
    axis: TimeAxis,
    eans: Sequence[str],
    metered: MeterData,
    skip: Set[int],
    realities: Realities | None,
    rng: np.random.Generator,
    out: Path,
) -> None:
    """Write ``operator/manual_readings.csv`` and ``truth/manual_readings.parquet``."""
    rows, truth = manual_readings(axis, eans, metered, skip, realities, rng)
    (out / "operator").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    with (out / "operator" / "manual_readings.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    pq.write_table(truth, out / "truth" / "manual_readings.parquet")
