"""A small fuzz sample of the meter-file readers (MTR-2/3/4), seconds in CI.

The full run is ``benchmarks/fuzz_meterfiles.py`` (a million inputs); this draws a few
hundred inputs from the same generator and checks the same things: every input is read
piece by piece, or refused whole with a rule (:class:`MeterDataError`); never another
exception, never a record without a number or a refusal without a rule. Some inputs
are ingested too, so refused records reach the quarantine with their raw records.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.io.files import parse_meter_csv

ROOT = Path(__file__).resolve().parents[2]


def _fuzz_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fuzz_meterfiles", ROOT / "benchmarks" / "fuzz_meterfiles.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_meterfiles"] = module
    spec.loader.exec_module(module)
    return module


fuzz = _fuzz_module()
_INGESTOR: list[object] = []


def _ingestor() -> object:
    """One in-memory store for the sample (ingesting into it again is fine)."""
    if not _INGESTOR:
        _INGESTOR.append(fuzz._ingestor())
    return _INGESTOR[0]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), parquet=st.booleans(), ingest=st.booleans())
def test_a_generated_meter_file_is_read_or_refused_with_a_rule(
    tmp_path_factory: pytest.TempPathFactory, seed: int, parquet: bool, ingest: bool
) -> None:
    rng = random.Random(seed)
    data, name, kind = (fuzz.make_parquet if parquet else fuzz.make_csv)(rng)
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    outcome = fuzz.check(path, kind, _ingestor() if ingest else None)
    assert outcome == "read" or outcome.startswith("refused:MTR-")


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.text(max_size=12) | st.sampled_from(fuzz.NUMBERS + fuzz.TIMES), max_size=6),
        max_size=10,
    )
)
def test_csv_text_of_any_cells_is_read_or_refused_with_a_rule(rows: list[list[str]]) -> None:
    text = "ean,start,phase,voltage_v\n" + "\n".join(",".join(r) for r in rows) + "\n"
    try:
        source = parse_meter_csv(text, "fuzz.csv", "voltages_10min", "x")
    except fuzz.MeterDataError as exc:
        assert exc.rules and exc.rules[0].startswith("MTR-")
        return
    assert all(r.rule.startswith("MTR-") and r.record >= 2 for r in source.refused)
    phases = source.tables["voltages_10min"].column("phase").to_pylist()
    assert set(phases) <= {1, 2, 3}
