"""UC4 sends an interruption its neighbours contradict to review instead of paying it
(MTR-5.contradicted_interruption), and does not place its neighbours in the dark on it."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from meetpunt.app.hub import hub_store, ingestor
from meetpunt.domain.capacity import ElectricityCapacity
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.source import SourceData
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.rulebook import capacity_classes, compensation_scheme
from meetpunt.usecases.uc04_outage_compensation import (
    CONTRADICTED,
    NOT_INTERRUPTED,
    Meter,
    Uc04Result,
    assess,
    compensate,
)
from meetpunt.usecases.uc09_interruption_registration import LogEntry, group_outages
from tests.usecases.conftest import AT, OPERATOR, Twin
from tests.usecases.conftest import period as _period

START = datetime(2025, 6, 2, 10, tzinfo=UTC)
END = START + timedelta(hours=5)


def _meter(ean: str, feeder: str, number: int, smart: bool) -> Meter:
    return Meter(
        ean,
        "OS1",
        feeder,
        f"Straat {feeder}",
        number,
        f"Straat {feeder} {number}",
        ElectricityCapacity(1, 35),
        smart,
        True,
    )


METERS = {
    m.ean: m
    for m in (
        _meter("a1", "K1", 1, True),
        _meter("a3", "K1", 5, True),
        _meter("a4", "K1", 7, False),  # between dark a3 and a5: paid on the outage
        _meter("a5", "K1", 9, True),
        _meter("a6", "K1", 11, False),  # between dark a5 and lit a7: review
        _meter("a7", "K1", 13, True),
    )
}
SMART = [e for e, m in METERS.items() if m.smart]


def _assess(entries: list[LogEntry]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    found = assess(
        group_outages(entries), METERS, SMART, [], compensation_scheme(), capacity_classes()
    )
    paid = {o.ean: str(o.compensation.amount) for o in found.owed}
    reviewed = {r.ean: r.reason for r in found.reviews}
    states = [f"{m.ean}={m.state}" for mp in found.maps for m in mp.meters]
    return paid, reviewed, states


def test_a_real_outage_is_paid_as_before() -> None:
    entries = [LogEntry(e, "OS1", "K1", START, END, 5 * 3600) for e in ("a3", "a5")]
    paid, reviewed, _ = _assess(entries)
    assert set(paid) == {"a3", "a4", "a5"} and set(reviewed) == {"a6"}


def test_a_long_log_the_neighbours_contradict_is_reviewed_not_paid() -> None:
    """a7 logs 30 days ending just after the real outage; a1 (asked) logged nothing and
    a3/a5 logged 5 hours: its neighbours contradict it."""
    days30 = 30 * 86400
    long_end = END + timedelta(minutes=10)
    entries = [
        *(LogEntry(e, "OS1", "K1", START, END, 5 * 3600) for e in ("a3", "a5")),
        LogEntry("a7", "OS1", "K1", long_end - timedelta(seconds=days30), long_end, days30),
    ]
    paid, reviewed, states = _assess(entries)
    assert "a7" not in paid
    assert reviewed["a7"].startswith(CONTRADICTED)
    assert "a1" not in paid  # the lit neighbour is not placed in the dark
    assert set(paid) == {"a3", "a4", "a5"}  # a6 stays in review, as without the bad log
    assert "meter without a log" in reviewed["a6"]
    assert all(amount == "35.00" for amount in paid.values()), paid  # 5 h, not 30 days
    # its 30 days did not start with the real outage: an outage of its own, drawn on no
    # map (no credible log), and never '1' on the real one (issue 16)
    assert "a7=1" not in states and "a1=N" in states


def test_a_long_single_failure_nobody_can_contradict_is_paid() -> None:
    """No other meter on its feeder was asked: nobody saw otherwise. (3 days and 2 h:
    exactly 3 days is the end of a 4-hour block of the scheme, where a lone meter's clock
    could tip the amount and UC4 reviews it instead, issue 16.)"""
    meters = {"x1": _meter("x1", "K9", 1, True)}
    long = 3 * 86400 + 7200
    found = assess(
        group_outages([LogEntry("x1", "OS1", "K9", START, START + timedelta(seconds=long), long)]),
        meters,
        ["x1"],
        [],
        compensation_scheme(),
        capacity_classes(),
    )
    assert [o.ean for o in found.owed] == ["x1"] and not found.reviews


def test_a_short_single_connection_fault_is_still_paid() -> None:
    """A service-cable fault of 6 hours on one meter, neighbours lit: under the threshold."""
    entries = [LogEntry("a1", "OS1", "K1", START, START + timedelta(hours=6), 6 * 3600)]
    paid, reviewed, _ = _assess(entries)
    assert set(paid) == {"a1"}
    assert not [r for r in reviewed.values() if r.startswith(CONTRADICTED)]


# --- the twin: one absurd-but-plausible failure injected into the store ------------------


def _compensate(twin: Twin, store_path: Path) -> Uc04Result:
    with hub_store(store_path) as store:
        gate = Gate(twin.register, store, load_catalogue(), clock=lambda: AT)
        return compensate(gate, OPERATOR, _period(), AT, "review test", [])


@pytest.mark.parametrize("twin", [1], indirect=True, ids=["seed1"])
@pytest.mark.parametrize("duration", [30 * 86400, 9_999_999], ids=["30days", "115days"])
def test_an_injected_long_failure_is_reviewed_and_darkens_nobody(
    twin: Twin, tmp_path: Path, duration: int
) -> None:
    """The issue's case: one log row of 9,999,999 s (115 days) paid EUR 13,895 to its
    customer and a neighbour; a month is as wrong. Both pass VEE (a meter can have
    lived that long), so UC4 must catch them."""
    copy = tmp_path / "meterdata.duckdb"
    shutil.copy(twin.store_path, copy)
    before = _compensate(twin, copy)
    target = None
    for m in before.maps:  # an asked meter that kept its voltage on a feeder that went dark
        outage = next(o for o in before.outages if o.id == m.outage_id)
        lit = [x for x in m.meters if x.state == NOT_INTERRUPTED and x.smart]
        lit = [x for x in lit if x.feeder in m.faulted and x.why == "asked, no log entry"]
        if lit and outage.planned is None:
            target = (outage, lit[0])
            break
    assert target is not None, "seed 1 should have a partly dark feeder"
    outage, meter = target
    end = outage.end.replace(microsecond=0) + timedelta(minutes=7)
    schema = KINDS["power_failure_log"].source_schema()
    table = pa.Table.from_pydict(
        {"record": [1], "ean": [meter.ean], "end": [end], "duration_s": [duration]},
        schema=schema,
    )
    with hub_store(copy) as store:
        report = ingestor(store, twin.register, now=AT).ingest(
            SourceData("injected.csv", "injected", {"power_failure_log": table})
        )
    assert report.total("accepted") == 1
    after = _compensate(twin, copy)
    reviewed = {r.ean: r.reason for r in after.reviews}
    assert reviewed[meter.ean].startswith(CONTRADICTED)
    assert meter.ean not in {p.ean for p in after.payments}
    # nothing else changed: the same payments, the same amounts, nobody placed in the dark
    assert [(p.ean, p.amount) for p in after.payments] == [
        (p.ean, p.amount) for p in before.payments
    ]
    assert after.total == before.total
    assert {(r.ean, r.reason) for r in before.reviews} <= {(r.ean, r.reason) for r in after.reviews}
    # it did not start with the real outage, so it is an outage of its own (issue 16),
    # with no credible log: no map, nobody placed; the real outage is decided as before
    review = next(r for r in after.reviews if r.ean == meter.ean)
    decided = next(o for o in after.outages if o.id == review.outage_id)
    assert decided.logged == 1 and decided.start < outage.start - timedelta(days=1)
    assert not [mp for mp in after.maps if mp.outage_id == review.outage_id]
    assert [(o.id, o.start, o.end) for o in after.outages if o.id != decided.id] == [
        (o.id, o.start, o.end) for o in before.outages
    ]
