"""The operator's work planning (UC1, UC4; MKT-8): read whole or refused whole, with
every bad line named."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetpunt.usecases.planned_works import RULE, PlannedWork, PlannedWorkError, read_planned

HEADER = "substation,feeder,start,end\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "planned.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_planning_reads_with_and_without_a_feeder(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "\ufeff" + HEADER + "OS001,OS001-K2,2025-06-03T10:00:00+00:00,2025-06-03T13:30:00+00:00\n"
        "OS002,,2025-06-04T08:00:00+02:00,2025-06-04T09:00:00+02:00\n",
    )
    first, second = read_planned(path)
    assert first.feeder == "OS001-K2" and second.feeder is None
    noon = datetime(2025, 6, 3, 12, tzinfo=UTC)
    assert first.covers_at("OS001", "OS001-K2", noon)
    assert not first.covers_at("OS001", "OS001-K1", noon)
    assert not first.covers_at("OS001", "OS001-K2", noon + timedelta(hours=2))
    assert second.covers_at("OS002", "any feeder", datetime(2025, 6, 4, 6, 30, tzinfo=UTC))


def test_every_bad_line_is_named_and_nothing_is_used(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        HEADER + "OS001,K1,2025-06-03T10:00:00+00:00,2025-06-03T13:00:00+00:00\n"
        ",K1,2025-06-03T10:00:00+00:00,2025-06-03T13:00:00+00:00\n"
        "OS001,K1,2025-06-03T10:00:00,2025-06-03T13:00:00\n"
        "OS001,K1,2025-06-03T13:00:00+00:00,2025-06-03T10:00:00+00:00\n"
        "OS001,K1,tomorrow,2025-06-03T10:00:00+00:00\n",
    )
    with pytest.raises(PlannedWorkError) as caught:
        read_planned(path)
    messages = [f.message for f in caught.value.findings]
    assert caught.value.rules == (RULE,) * 4
    assert [m.split(": ")[0] for m in messages] == [f"{path}:{n}" for n in (3, 4, 5, 6)]
    assert "no substation" in messages[0] and "UTC offset" in messages[1]
    assert "after the start" in messages[2] and "ISO 8601" in messages[3]
    assert "4 bad line(s)" in str(caught.value)


def test_a_file_that_is_not_a_planning_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlannedWorkError, match="missing column"):
        read_planned(_write(tmp_path, "ean,reported_at\n1,2\n"))
    with pytest.raises(PlannedWorkError, match="cannot read"):
        read_planned(tmp_path / "absent.csv")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["OS001", "OS002"]),
            st.sampled_from(["", "K1", "K2"]),
            st.integers(0, 10_000_000),
            st.integers(1, 100_000),
        ),
        max_size=8,
    )
)
def test_any_valid_planning_reads_back_as_written(
    rows: list[tuple[str, str, int, int]],
) -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    works = [
        PlannedWork(s, f or None, base + timedelta(seconds=a), base + timedelta(seconds=a + n))
        for s, f, a, n in rows
    ]
    text = HEADER + "".join(
        f"{w.substation},{w.feeder or ''},{w.start.isoformat()},{w.end.isoformat()}\n"
        for w in works
    )
    with tempfile.TemporaryDirectory() as folder:
        assert read_planned(_write(Path(folder), text)) == works
