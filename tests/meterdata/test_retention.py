"""Retention (MTR-6): daily readings older than 24 months, or than the contract, go."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from meetpunt import rulebook
from meetpunt.app.hub import retention
from meetpunt.domain.calendar import local_day_bounds_utc
from meetpunt.errors import MeterDataError
from meetpunt.meterdata.retention import is_large_deletion, run_retention
from tests.meterdata.conftest import CONTRACT_START, E1X25, E3X25, E_CHANGES, Hub, quarters, reading


def _daily(ean: str, first: date, days: int) -> list[dict[str, object]]:
    return [
        reading(ean, local_day_bounds_utc(first + timedelta(days=d))[0], 1000 * d)
        for d in range(days)
    ]


def test_the_cutoff_is_24_months_or_the_contract_start_if_later() -> None:
    rules = rulebook.vee_rules()
    assert rules.retention_cutoff(date(2026, 11, 23), None) == date(2024, 11, 23)
    assert rules.retention_cutoff(date(2026, 11, 23), date(2025, 3, 1)) == date(2025, 3, 1)
    assert rules.retention_cutoff(date(2026, 11, 23), date(2020, 3, 1)) == date(2024, 11, 23)
    assert rules.retention_cutoff(date(2028, 2, 29), None) == date(2026, 2, 28)


def test_retention_deletes_old_daily_readings_and_logs_what_went(hub: Hub) -> None:
    first = date(2023, 1, 1)
    hub.ingest("daily_readings", _daily(E3X25, first, 1000) + _daily(E1X25, first, 1000))
    today = date(2025, 9, 1)
    records = retention(hub.store, hub.register, today)
    kept = hub.store.read("daily_readings")
    by_connection = {
        cid: sorted(
            at
            for c, at in zip(
                kept.column("connection").to_pylist(), kept.column("at").to_pylist(), strict=True
            )
            if c == cid
        )
        for cid in (hub.ids[E3X25], hub.ids[E1X25])
    }
    # E3X25 has a contract since 2025-01-01: nothing from before it stays
    assert by_connection[hub.ids[E3X25]][0] == local_day_bounds_utc(CONTRACT_START)[0]
    # E1X25 has no contract: 24 months back from today
    assert by_connection[hub.ids[E1X25]][0] == local_day_bounds_utc(date(2023, 9, 1))[0]
    assert {(r.connection, r.cutoff) for r in records} == {
        (hub.ids[E3X25], CONTRACT_START),
        (hub.ids[E1X25], date(2023, 9, 1)),
    }
    log = hub.store.query("SELECT * FROM retention_log ORDER BY connection").to_pylist()
    assert [row["rows"] for row in log] == [
        (CONTRACT_START - first).days,
        (date(2023, 9, 1) - first).days,
    ]
    assert {row["rule"] for row in log} == {"MTR-6.daily_readings"}
    assert retention(hub.store, hub.register, today) == []  # nothing left to delete
    assert hub.store.count("retention_log") == 2


def test_completeness_counts_measured_d1_and_billing_ready_per_area(hub: Hub) -> None:
    from datetime import UTC, datetime

    from meetpunt.meterdata.completeness import completeness

    day = date(2025, 10, 26)  # 100 quarter-hours
    start, end = local_day_bounds_utc(day)
    hub.ingestor.now = datetime(2025, 10, 27, 12, tzinfo=UTC)  # D+1
    hub.ingest("daily_readings", [reading(E3X25, start, 0), reading(E3X25, end, 10_000)])
    rows = quarters(E3X25, start, 100)
    hub.ingest("quarter_hours", rows[:60] + rows[70:])  # 10 missing: estimated from readings
    hub.ingestor.now = datetime(2025, 11, 5, 12, tzinfo=UTC)  # after D+5
    hub.ingest("quarter_hours", quarters(E1X25, start, 100))
    areas = {hub.ids[E3X25]: "5617", hub.ids[E1X25]: "5617", hub.ids[E_CHANGES]: "5618"}
    found = {a.area: a for a in completeness(hub.store, areas, day)}
    a = found["5617"]
    assert (a.connections, a.expected) == (2, 200)
    assert a.measured == 190  # E1X25's 100 came, but only after D+5
    assert a.measured_by_d1 == 90
    assert a.billing_ready_by_d5 == 100  # E3X25's 90 measured + 10 estimated in time
    assert found["5618"].as_dict()["measured"] == 0.0 and found["5618"].expected == 100


def test_a_retention_date_after_today_is_refused_and_deletes_nothing(hub: Hub) -> None:
    hub.ingest("daily_readings", _daily(E1X25, date(2023, 1, 1), 30))
    now = datetime(2026, 1, 10, 23, 30, tzinfo=UTC)  # already 11 January in Amsterdam
    rules = rulebook.vee_rules()
    with pytest.raises(MeterDataError) as refused:
        run_retention(hub.store, {}, rules, date(2026, 1, 12), now=now)
    assert refused.value.rules == ("MTR-6.future_date",) and refused.value.hint
    assert run_retention(hub.store, {}, rules, date(2026, 1, 11), now=now)  # local today
    with pytest.raises(MeterDataError, match="2099-01-01"):
        retention(hub.store, hub.register, date(2099, 1, 1))
    assert hub.store.count("retention_log") == 1


def test_a_dry_run_says_what_would_go_and_deletes_nothing(hub: Hub) -> None:
    hub.ingest("daily_readings", _daily(E1X25, date(2023, 1, 1), 1000))
    today = date(2025, 9, 1)
    planned = retention(hub.store, hub.register, today, dry_run=True, confirmed=False)
    assert [(r.connection, r.cutoff, r.rows) for r in planned] == [
        (hub.ids[E1X25], date(2023, 9, 1), (date(2023, 9, 1) - date(2023, 1, 1)).days)
    ]
    assert hub.store.count("daily_readings") == 1000
    assert hub.store.count("retention_log") == 0
    assert retention(hub.store, hub.register, today, confirmed=True) == planned


def test_an_unconfirmed_large_deletion_is_refused_whole(hub: Hub) -> None:
    hub.ingest("daily_readings", _daily(E3X25, date(2023, 1, 1), 1000))
    with pytest.raises(MeterDataError) as refused:
        retention(hub.store, hub.register, date(2025, 9, 1), confirmed=False)
    assert refused.value.rules == ("MTR-6.large_deletion",)
    assert "--dry-run" in (refused.value.hint or "") and "--yes" in (refused.value.hint or "")
    assert hub.store.count("daily_readings") == 1000
    assert hub.store.count("retention_log") == 0


def test_what_counts_as_a_large_deletion() -> None:
    assert not is_large_deletion(100, 100)  # a small store is not asked each time
    assert is_large_deletion(101, 1000)
    assert not is_large_deletion(101, 1010)  # exactly 10 %
    assert not is_large_deletion(10_000, 1_000_000)
    assert is_large_deletion(10_001, 1_000_000)
