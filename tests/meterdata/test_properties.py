"""Properties of ingestion (MTR-4): any split, any order, any repetition of the same
readings stores each measured value exactly once, and an estimate never takes the
place of a measured value."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetpunt.meterdata.ingest import Ingestor
from meetpunt.meterdata.store import open_store
from tests.meterdata.conftest import E1X25, E3X25, NOW, Hub, utc

T0 = utc(2025, 6, 2, 22, 0)
KEYS = [(ean, step) for ean in (E3X25, E1X25) for step in range(24)]

readings = st.lists(
    st.tuples(st.sampled_from(KEYS), st.integers(0, 2000)),
    min_size=1,
    max_size=40,
    unique_by=lambda r: r[0],
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=readings, data=st.data())
def test_any_split_order_and_repetition_stores_each_value_once(hub: Hub, rows, data) -> None:  # type: ignore[no-untyped-def]
    records = [
        {"ean": ean, "start": T0 + timedelta(minutes=15 * step), "import_wh": wh, "export_wh": 0}
        for (ean, step), wh in rows
    ]
    batches = data.draw(
        st.lists(st.lists(st.sampled_from(records), max_size=15), min_size=1, max_size=5)
    )
    batches.append(data.draw(st.permutations(records)))  # everything arrives at least once
    store = open_store(":memory:")
    ingestor = Ingestor(store, hub.ingestor.index, hub.ingestor.rules, now=NOW)
    try:
        for batch in data.draw(st.permutations(batches)):
            report = ingestor.ingest(hub.source("quarter_hours", batch))
            assert report.quarantined == {}
        table = store.read("quarter_hours")
        measured = sorted(
            (c, s, wh)
            for c, s, wh, status in zip(
                table.column("connection").to_pylist(),
                table.column("start").to_pylist(),
                table.column("import_wh").to_pylist(),
                table.column("status").to_pylist(),
                strict=True,
            )
            if status == "measured"
        )
        expected = sorted((hub.ids[r["ean"]], r["start"], r["import_wh"]) for r in records)
        assert measured == expected
        keys = list(
            zip(
                table.column("connection").to_pylist(),
                table.column("start").to_pylist(),
                strict=True,
            )
        )
        assert len(keys) == len(set(keys))
    finally:
        store.close()
