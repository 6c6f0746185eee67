"""One MQTT micro-batch of several meters as one source (issue 14, MTR-4): it stores
exactly what one source per meter stored, and refuses the same telegrams with the same
rule and raw text. No broker: the batcher's sources go straight to two hubs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from meetpunt import rulebook
from meetpunt.io.mqtt import P1Batcher, merge_sources
from meetpunt.meterdata.ingest import ConnectionIndex, Ingestor
from meetpunt.meterdata.store import MeterStore, open_store
from tests.meterdata.conftest import E1X25, E3X25, E_CHANGES, NOW, UNKNOWN, Hub
from tests.meterdata.test_mqtt import T0, crc_broken, telegram

P1_KINDS = ("p1_readings", "power_failures", "power_failure_log", "voltage_events", "p1_gas")
METERS = (E3X25, E1X25, E_CHANGES, UNKNOWN)


def stored(store: MeterStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored P1 row without its batch number, and every quarantine record by
    what it says (kind, EAN, rule, message, raw), each sorted."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for kind in P1_KINDS:
        rows = store.query(f'SELECT * EXCLUDE (batch) FROM "{kind}"').to_pylist()
        out[kind] = sorted(tuple(r.values()) for r in rows)
    refused = store.query("SELECT kind, ean, rule, message, raw FROM quarantine").to_pylist()
    out["quarantine"] = sorted(
        tuple({**r, "raw": _without_record(r["raw"])}.values()) for r in refused
    )
    return out


def _without_record(raw: str) -> str:
    """A row refusal's raw JSON without its record number (a batch numbers its meters'
    records one after another; the per-meter sources each from 1)."""
    if not raw.startswith("{"):
        return raw  # a telegram's own text
    row = json.loads(raw)
    row.pop("record", None)
    return json.dumps(row, sort_keys=True)


@pytest.fixture
def reference(hub: Hub, tmp_path: Path) -> Iterator[Ingestor]:
    """A second store over the same register: the per-meter path."""
    rules = rulebook.vee_rules()
    with hub.register.session() as s:
        index = ConnectionIndex(s.meter_index(), rules.phase_voltage_v)
    store = open_store(tmp_path / "per-meter.duckdb")
    yield Ingestor(store, index, rules, now=NOW)
    store.close()


def messages(bad: int) -> list[list[tuple[str, bytes]]]:
    """Three micro-batches of four meters, one telegram every 5 minutes each; the
    ``bad``-th message of the second batch fails its CRC; a telegram of E1X25 is
    split across the second and third batch."""
    batches: list[list[tuple[str, bytes]]] = []
    for b in range(3):
        batch = [(f"p1/{ean}", telegram(b, f"E00{m}")) for m, ean in enumerate(METERS)]
        batches.append(batch)
    topic, payload = batches[1][bad]
    batches[1][bad] = (topic, crc_broken(payload))
    split = telegram(7)
    batches[1].append((f"p1/{E1X25}", split[:200]))
    batches[2].append((f"p1/{E1X25}", split[200:]))
    return batches


def ingest_both(hub: Hub, reference: Ingestor, bad: int) -> None:
    merged, per_meter = P1Batcher("m", "p1/+"), P1Batcher("m", "p1/+")
    batches = messages(bad)
    for n, batch in enumerate(batches):
        final = n == len(batches) - 1
        for topic, payload in batch:
            merged.add(topic, payload)
            per_meter.add(topic, payload)
        sources = merged.take_batch(final)
        assert len(sources) == 1  # every meter in one source: one transaction
        hub.ingestor.ingest(sources[0])
        for source in per_meter.take(final):
            reference.ingest(source)


@pytest.mark.parametrize("bad", range(len(METERS)))
def test_a_batch_of_meters_stores_what_one_source_per_meter_stored(
    hub: Hub, reference: Ingestor, bad: int
) -> None:
    ingest_both(hub, reference, bad)
    got, want = stored(hub.store), stored(reference.store)
    assert got == want
    rules = [(ean, rule) for _, ean, rule, _, _ in got["quarantine"]]
    assert (METERS[bad], "MTR-2.crc") in rules  # the CRC-failed telegram is kept
    crc = [raw for _, _, rule, _, raw in got["quarantine"] if rule == "MTR-2.crc"]
    assert crc == [crc_broken(telegram(1, f"E00{bad}")).decode("latin-1")]
    assert len(got["p1_readings"]) > 0  # good telegrams of the batch went in
    batches = hub.store.query("SELECT count(*) AS n FROM batch").to_pylist()
    assert batches == [{"n": 3}]  # one batch (transaction) per micro-batch


def test_merged_record_numbers_are_unique_and_each_meter_keeps_its_order() -> None:
    batcher = P1Batcher("m", "p1/+")
    for i in range(3):
        batcher.add(f"p1/{E3X25}", telegram(i))
    batcher.add(f"p1/{E1X25}", crc_broken(telegram(0)))
    batcher.add(f"p1/{E1X25}", telegram(1))
    parts = batcher.take()
    merged = merge_sources("m/p1/+ #1..2", parts)
    readings = merged.tables["p1_readings"]
    assert readings.column("record").to_pylist() == [1, 2, 3, 5]
    assert readings.column("ean").to_pylist() == [E3X25] * 3 + [E1X25]
    assert readings.column("at").to_pylist()[-1] == T0 + timedelta(minutes=5)
    assert [(r.record, r.ean, r.rule) for r in merged.refused] == [(4, E1X25, "MTR-2.crc")]
    again = P1Batcher("m", "p1/+")
    for i in range(3):
        again.add(f"p1/{E3X25}", telegram(i))
    again.add(f"p1/{E1X25}", crc_broken(telegram(0)) + telegram(1))
    assert merge_sources("x", again.take()).sha256 == merged.sha256  # same batch, same digest


def test_the_batch_source_is_the_per_meter_sources_merged() -> None:
    one, each = P1Batcher("m", "p1/+"), P1Batcher("m", "p1/+")
    for batcher in (one, each):
        for i in range(3):
            batcher.add(f"p1/{E3X25}", telegram(i))
            batcher.add(f"p1/{E1X25}", crc_broken(telegram(i)) if i == 1 else telegram(i))
        batcher.add(f"p1/{UNKNOWN}", telegram(0)[:150])  # a fragment: no telegram yet
    [batch] = one.take_batch()
    merged = merge_sources(batch.source, each.take())
    assert batch.tables.keys() == merged.tables.keys()
    for kind, table in batch.tables.items():
        assert table.equals(merged.tables[kind]), kind
    assert batch.refused == merged.refused
    assert batch.sha256 == merged.sha256
    assert batch.source == "m/p1/+ #1..2"


@pytest.mark.parametrize("batched", [True, False])
def test_every_message_leaves_a_trace_even_garbage(hub: Hub, batched: bool) -> None:
    """A payload with no '/' (208 bytes, or 5 MB of 'X') is neither stored nor lost:
    one bounded quarantine record each (MTR-2.garbage); the telegrams around it are
    stored; line ends between telegrams are no garbage."""
    batcher = P1Batcher("mqtt://test", "meters/p1/#")
    topic = f"meters/p1/{E3X25}"
    batcher.add(topic, telegram(0))
    batcher.add(topic, b"\r\n")
    batcher.add(topic, bytes(range(1, 209)).replace(b"/", b"."))
    batcher.add(topic, b"X" * 5_000_000)
    batcher.add(topic, telegram(1))
    sources = batcher.take_batch(final=True) if batched else batcher.take(final=True)
    reports = [hub.ingestor.ingest(s) for s in sources]
    assert sum(r.total("accepted") for r in reports) > 0
    refused = hub.store.quarantined()
    assert [r["rule"] for r in refused] == ["MTR-2.garbage", "MTR-2.garbage"]
    assert [len(r["raw"]) for r in refused] == [208, 4096]
    assert "5000000 byte(s) of a 5000000-byte message" in refused[1]["message"]
    assert hub.values("p1_readings", "at") == [(T0,), (T0 + timedelta(minutes=5),)]
