"""Property tests of the register: the timeline answers 'what was true on D' for any
order of recordings, and the CSV importer accounts for every row whatever it holds."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetpunt.domain.capacity import Commodity
from meetpunt.domain.ean import complete_ean
from meetpunt.register import Register, open_register
from meetpunt.register.csvio import CONNECTION_COLUMNS, import_csv

from ..unit.domain.factories import attributes

CAPACITIES = ["1x25", "1x35", "1x40", "3x25", "3x35"]
START = date(2020, 1, 1)
_FRESH = itertools.count(1)


@pytest.fixture(scope="module")
def sqlite_register(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Register]:
    path: Path = tmp_path_factory.mktemp("prop") / "register.sqlite"
    register = open_register(f"sqlite:///{path}")
    yield register
    register.dispose()


recordings = st.lists(
    st.tuples(st.integers(0, 60), st.sampled_from(CAPACITIES)), min_size=1, max_size=12
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(recordings)
def test_timeline_answers_any_date(sqlite_register: Register, steps: list[tuple[int, str]]) -> None:
    ean = complete_ean(f"871{next(_FRESH):014d}")  # a new connection for every example
    expected: dict[date, str] = {}
    with sqlite_register.session() as s:
        for offset, capacity in steps:
            day = START + timedelta(days=offset)
            s.record_connection(ean, Commodity.ELECTRICITY, attributes(capacity), day)
            expected[day] = capacity  # the last recording for a date wins
        for probe in range(-1, 62):
            day = START + timedelta(days=probe)
            known = [d for d in expected if d <= day]
            version = s.connection_at(ean, day)
            if not known:
                assert version is None
            else:
                assert version is not None
                assert str(version.attributes.capacity) == expected[max(known)]
        history = s.connection_history(ean)
        # intervals are contiguous and never overlap
        for before, after in itertools.pairwise(history):
            assert before.valid_to == after.valid_from
        assert history[-1].valid_to is None


cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "871694840008583575",
            "IBD",
            "UBD",
            "3x25",
            "1x35",
            "G4",
            "gas",
            "electricity",
            "2024-01-01",
            "5617BD",
            "L1",
            "household",
            "true",
            "",
        ]
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.lists(cells, min_size=len(CONNECTION_COLUMNS), max_size=len(CONNECTION_COLUMNS)),
        max_size=6,
    )
)
def test_importer_accounts_for_every_row(sqlite_register: Register, rows: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CONNECTION_COLUMNS)
    writer.writerows(rows)
    with sqlite_register.session() as s:
        before = len(s.quarantined())
        report = import_csv(s, out.getvalue(), "fuzz.csv")
        after = len(s.quarantined())
    assert report.rows == len(rows)
    assert report.inserted + report.changed + report.unchanged + len(report.refused) == len(rows)
    assert after - before == len(report.refused)  # every refusal is kept
    assert all(r.rule and r.message for r in report.refused)
    assert sorted(r.line for r in report.refused) == [r.line for r in report.refused]
