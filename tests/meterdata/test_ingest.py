"""Ingestion and VEE (MTR-3..5): what is stored, what is refused and why, nothing lost."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from meetpunt.domain.calendar import local_day_bounds_utc, quarter_hours_in_local_day
from tests.meterdata.conftest import (
    E1X25,
    E3X25,
    E_CHANGES,
    GAS,
    UNKNOWN,
    Hub,
    quarters,
    reading,
    utc,
)

T0 = utc(2025, 6, 2, 22, 0)  # local midnight 2025-06-03


def quarantine(hub: Hub) -> list[dict[str, object]]:
    return hub.store.query("SELECT * FROM quarantine ORDER BY batch, record").to_pylist()


def test_rows_are_stored_under_the_register_connection_id_not_the_ean(hub: Hub) -> None:
    report = hub.ingest("quarter_hours", quarters(E3X25, T0, 4))
    assert report.total("accepted") == 4
    table = hub.store.read("quarter_hours")
    assert "ean" not in table.column_names
    assert set(table.column("connection").to_pylist()) == {hub.ids[E3X25]}
    assert table.column("status").to_pylist() == ["measured"] * 4
    assert table.column("start").type.tz == "UTC"
    assert table.column("start")[0].as_py() == T0


def test_the_same_source_twice_changes_nothing(hub: Hub) -> None:
    source = hub.source("quarter_hours", quarters(E3X25, T0, 8))
    source.sha256 = "abc"
    first = hub.ingestor.ingest(source)
    before = hub.values("quarter_hours", "connection", "start", "import_wh", "batch")
    again = hub.ingestor.ingest(source)
    assert first.total("accepted") == 8
    assert again.already_ingested and again.total("duplicates") == 8
    assert hub.values("quarter_hours", "connection", "start", "import_wh", "batch") == before


def test_the_same_rows_from_another_source_are_duplicates(hub: Hub) -> None:
    hub.ingest("quarter_hours", quarters(E3X25, T0, 8))
    report = hub.ingest("quarter_hours", quarters(E3X25, T0 + timedelta(hours=1), 8))
    assert report.total("duplicates") == 4
    assert report.total("accepted") == 4
    assert hub.store.count("quarter_hours") == 12


def test_out_of_order_batches_give_the_same_store(hub: Hub) -> None:
    rows = quarters(E3X25, T0, 12)
    hub.ingest("quarter_hours", rows[8:])
    hub.ingest("quarter_hours", rows[:4])
    hub.ingest("quarter_hours", rows[4:8])
    stored = hub.values("quarter_hours", "start", "import_wh", "status")
    assert [s for s, _, _ in stored] == [r["start"] for r in rows]
    assert all(status == "measured" for _, _, status in stored)


def test_an_unknown_ean_is_quarantined_and_the_rest_of_the_batch_goes_on(hub: Hub) -> None:
    rows = quarters(E3X25, T0, 2) + quarters(UNKNOWN, T0, 1) + quarters(GAS, T0, 1)
    report = hub.ingest("quarter_hours", rows)
    assert report.total("accepted") == 2
    assert report.quarantined == {"MTR-5.unknown_connection": 2}
    refused = quarantine(hub)
    assert [r["record"] for r in refused] == [3, 4]
    assert refused[0]["ean"] == UNKNOWN
    assert "register import" in str(refused[0]["message"])
    assert json.loads(str(refused[0]["raw"]))["import_wh"] == 100  # the raw record is kept


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"import_wh": -1}, "MTR-5.negative"),
        ({"export_wh": None}, "MTR-5.missing_value"),
        ({"start": T0 + timedelta(minutes=7)}, "MTR-5.interval"),
        ({"start": utc(2026, 1, 1)}, "MTR-5.clock"),
    ],
)
def test_each_row_check_refuses_on_its_own(hub: Hub, change: dict[str, object], rule: str) -> None:
    rows = quarters(E3X25, T0, 3)
    rows[1] = rows[1] | change
    report = hub.ingest("quarter_hours", rows)
    assert report.quarantined == {rule: 1}
    assert report.total("accepted") == 2
    assert quarantine(hub)[0]["record"] == 2


def test_import_above_what_the_fuse_lets_through_is_refused(hub: Hub) -> None:
    # 1x25 A: 25 A x 230 V x 0.25 h = 1437.5 Wh; the fuse blows at 1.6 x: 2300 Wh
    rows = quarters(E1X25, T0, 2)
    rows[0]["import_wh"] = 2300
    rows[1]["export_wh"] = 2301
    report = hub.ingest("quarter_hours", rows)
    assert report.quarantined == {"MTR-5.capacity": 1}
    assert quarantine(hub)[0]["record"] == 2
    assert "capacity" in str(quarantine(hub)[0]["message"])


def test_the_capacity_that_held_on_the_day_is_used(hub: Hub) -> None:
    # 1x35 until 2025-06-01 (limit 3220 Wh), 3x25 from then on (limit 6900 Wh)
    before = {"ean": E_CHANGES, "start": utc(2025, 5, 20, 12), "import_wh": 4000, "export_wh": 0}
    after = {"ean": E_CHANGES, "start": utc(2025, 6, 20, 12), "import_wh": 4000, "export_wh": 0}
    report = hub.ingest("quarter_hours", [before, after])
    assert report.quarantined == {"MTR-5.capacity": 1}
    assert hub.values("quarter_hours", "start") == [(after["start"],)]


def test_an_impossible_voltage_is_refused(hub: Hub) -> None:
    rows = [
        {"ean": E3X25, "start": T0, "phase": 1, "voltage_v": 231.5},
        {"ean": E3X25, "start": T0, "phase": 2, "voltage_v": 2315.0},
        {"ean": E3X25, "start": T0, "phase": 3, "voltage_v": 0.0},
    ]
    report = hub.ingest("voltages_10min", rows)
    assert report.quarantined == {"MTR-5.range": 1}
    assert hub.values("voltages_10min", "phase", "voltage_v") == [(1, 231.5), (3, 0.0)]


def test_identical_copies_in_a_batch_are_stored_once(hub: Hub) -> None:
    rows = quarters(E3X25, T0, 3)
    report = hub.ingest("quarter_hours", [*rows, rows[1], rows[1]])
    assert report.total("duplicates") == 2
    assert report.total("accepted") == 3
    assert hub.store.count("quarter_hours") == 3


def test_different_values_for_one_key_in_a_batch_are_all_quarantined(hub: Hub) -> None:
    rows = quarters(E3X25, T0, 3)
    report = hub.ingest("quarter_hours", [*rows, rows[1] | {"import_wh": 555}])
    assert report.quarantined == {"MTR-5.conflict": 2}
    assert [r["record"] for r in quarantine(hub)] == [2, 4]
    # the key is now missing between two measured values: a gap, recorded as such
    assert rows[1]["start"] not in [s for (s,) in hub.values("quarter_hours", "start")]
    gap = hub.store.query("SELECT * FROM finding").to_pylist()
    assert [(g["rule"], g["from"]) for g in gap] == [("MTR-5.gap", rows[1]["start"])]


def test_a_different_measured_value_never_overwrites_a_stored_one(hub: Hub) -> None:
    hub.ingest("quarter_hours", quarters(E3X25, T0, 2))
    report = hub.ingest("quarter_hours", quarters(E3X25, T0, 1, wh=999))
    assert report.quarantined == {"MTR-5.conflict": 1}
    assert "already stored" in str(quarantine(hub)[0]["message"])
    assert hub.values("quarter_hours", "import_wh") == [(100,), (100,)]


def _readings(ean: str, day_start: datetime, day_end: datetime, start_wh: int, end_wh: int) -> list:
    return [reading(ean, day_start, start_wh), reading(ean, day_end, end_wh)]


def test_a_gap_is_estimated_from_the_register_readings_and_adds_up(hub: Hub) -> None:
    day = T0.date() + timedelta(days=1)
    start, end = local_day_bounds_utc(day)
    hub.ingest("daily_readings", _readings(E3X25, start, end, 50_000, 60_000))
    rows = quarters(E3X25, start, 96)
    kept = [r for i, r in enumerate(rows) if i not in (10, 11, 12, 50)]
    report = hub.ingest("quarter_hours", kept)
    assert report.total("estimated") == 4
    stored = hub.values("quarter_hours", "start", "import_wh", "status", "method", "rule")
    estimated = [s for s in stored if s[2] != "measured"]
    assert [s[0] for s in estimated] == [rows[i]["start"] for i in (10, 11, 12, 50)]
    assert {s[2:] for s in estimated} == {("estimated_final", "register_readings", "MTR-5.gap")}
    assert sum(s[1] for s in stored) == 10_000  # the readings' difference, to the Wh
    findings = hub.store.query("SELECT * FROM finding WHERE rule = 'MTR-5.gap'").to_pylist()
    assert [f["message"].split(" ")[0] for f in findings] == ["3", "1"]


def test_a_gap_without_readings_is_estimated_from_own_history(hub: Hub) -> None:
    first = T0 - timedelta(days=7)
    rows = quarters(E3X25, first, 96 * 8, wh=80)
    kept = rows[:-20] + rows[-10:]
    report = hub.ingest("quarter_hours", kept)
    assert report.total("estimated") == 10
    stored = hub.values("quarter_hours", "import_wh", "status", "method")
    estimated = [s for s in stored if s[1] != "measured"]
    assert estimated == [(80, "estimated_temporary", "own_history")] * 10


def test_a_gap_without_readings_or_history_stays_missing_and_is_recorded(hub: Hub) -> None:
    rows = quarters(E3X25, T0, 10)
    report = hub.ingest("quarter_hours", rows[:3] + rows[5:])
    assert report.total("estimated") == 0
    assert hub.store.count("quarter_hours") == 8
    finding = hub.store.query("SELECT * FROM finding").to_pylist()[0]
    assert finding["rule"] == "MTR-5.gap" and "left missing" in finding["message"]
    assert finding["from"] == rows[3]["start"] and finding["until"] == rows[5]["start"]


def test_a_measured_value_replaces_an_estimate_and_the_estimate_is_kept(hub: Hub) -> None:
    first = T0 - timedelta(days=7)
    rows = quarters(E3X25, first, 96 * 8, wh=80)
    hub.ingest("quarter_hours", rows[:-2] + rows[-1:])
    late = rows[-2] | {"import_wh": 77}
    report = hub.ingest("quarter_hours", [late])
    assert report.total("corrected") == 1 and report.total("accepted") == 1
    stored = hub.store.read("quarter_hours", "start = ?", [late["start"].replace(tzinfo=None)])
    assert stored.column("import_wh").to_pylist() == [77]
    assert stored.column("status").to_pylist() == ["measured"]
    history = hub.store.query("SELECT * FROM correction").to_pylist()
    assert len(history) == 1 and history[0]["old_status"] == "estimated_temporary"
    assert json.loads(history[0]["old_values"])["import_wh"] == 80


def test_the_dst_day_has_100_quarter_hours_and_estimates_follow_the_local_day(hub: Hub) -> None:
    day = T0.date().replace(month=10, day=26)
    assert quarter_hours_in_local_day(day) == 100
    start, end = local_day_bounds_utc(day)
    hub.ingest("daily_readings", _readings(E3X25, start, end, 0, 10_003))
    rows = quarters(E3X25, start, 100)
    report = hub.ingest("quarter_hours", rows[:40] + rows[44:])
    assert report.total("estimated") == 4
    stored = hub.values("quarter_hours", "start", "import_wh")
    assert len(stored) == 100
    assert sum(wh for _, wh in stored) == 10_003


def test_registers_that_go_backwards_are_refused(hub: Hub) -> None:
    rows = [
        reading(E3X25, utc(2025, 6, d, 22), wh, 5_000_000)
        for d, wh in ((1, 4_000_000), (2, 4_000_500), (3, 3_999_000), (4, 4_001_000))
    ]
    report = hub.ingest("daily_readings", rows)
    assert report.quarantined == {"MTR-5.counter_backwards": 1}
    assert quarantine(hub)[0]["record"] == 3
    assert "below the earlier reading" in str(quarantine(hub)[0]["message"])


def test_a_misread_spike_is_refused_not_the_reading_after_it(hub: Hub) -> None:
    rows = [
        reading(E3X25, utc(2025, 6, d, 22), wh, 0, None, None)
        for d, wh in ((1, 4_000_000), (2, 4_500_500), (3, 4_001_000), (4, 4_002_000))
    ]
    report = hub.ingest(
        "manual_readings", [r | {"read_at": r.pop("at"), "meter": "M1"} for r in rows]
    )
    assert report.quarantined == {"MTR-5.counter_backwards": 1}
    assert quarantine(hub)[0]["record"] == 2


def test_a_meter_swap_restarts_the_registers_without_an_error(hub: Hub) -> None:
    rows = [
        reading(E3X25, utc(2025, 6, d, 22), wh, wh)
        for d, wh in ((1, 4_000_000), (2, 4_000_500), (3, 1_200), (4, 3_000))
    ]
    report = hub.ingest("daily_readings", rows)
    assert report.quarantined == {}
    rules = hub.values("daily_readings", "import_t1_wh", "rule")
    assert rules[2] == (1_200, "MTR-5.meter_swap")
    finding = hub.store.query("SELECT rule FROM finding").to_pylist()
    assert finding == [{"rule": "MTR-5.meter_swap"}]


def test_an_old_reading_arriving_late_is_checked_against_the_stored_later_one(hub: Hub) -> None:
    def on(day: int, wh: int) -> dict[str, object]:
        return reading(E3X25, utc(2025, 6, day, 22), wh)

    hub.ingest("daily_readings", [on(1, 4_000_000), on(5, 4_000_800)])
    report = hub.ingest("daily_readings", [on(3, 4_000_400), on(4, 4_009_999)])
    assert report.quarantined == {"MTR-5.counter_backwards": 1}
    assert quarantine(hub)[0]["record"] == 2
    assert "above the later reading" in str(quarantine(hub)[0]["message"])


def test_gas_rows_go_to_the_gas_connection(hub: Hub) -> None:
    rows = [
        {
            "gas_ean": GAS,
            "start": T0 + timedelta(hours=h),
            "volume_dm3": 120,
            "reading_dm3": 1_000_000 + 120 * h,
        }
        for h in range(3)
    ]
    report = hub.ingest("gas_hourly", [*rows, rows[0] | {"gas_ean": E3X25}])
    assert report.total("accepted") == 3
    assert report.quarantined == {"MTR-5.unknown_connection": 1}  # E3X25 is not gas
    assert {c for (c,) in hub.values("gas_hourly", "connection")} == {hub.ids[GAS]}
