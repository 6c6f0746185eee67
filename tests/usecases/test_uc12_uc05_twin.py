"""UC5 and UC12 through the gate on one small twin: the twin's intervention and broken
neutral are real in its physics, UC5 recovers the effect, UC12's chain is in the audit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from meetpunt.app.hub import hub_store, ingest_paths
from meetpunt.demo import grid_checks
from meetpunt.demo.score import Truth
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.privacy import audit
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period, Role
from meetpunt.register import Register, open_register
from meetpunt.register.csvio import import_file
from meetpunt.twin.generate import TwinSettings, generate

START = date(2025, 6, 2)
DAYS = 7
OPERATOR = Party("8716874000009", Role.GRID_OPERATOR, "Meetnet")


@dataclass
class Built:
    folder: Path
    register: Register
    checks: grid_checks.GridChecks
    truth: Truth
    records: list[audit.AuditRecord]
    gate: Gate


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("uc05_uc12")
    generate(TwinSettings(150, DAYS, START, 3, intervention="reinforcement"), folder / "twin")
    register = open_register(f"sqlite:///{folder / 'register.sqlite'}")
    for name in ("connections", "secondary_allocation_points", "contracts"):
        with register.session() as session:
            import_file(session, folder / "twin" / "register" / f"{name}.csv")
    period = Period(local_midnight_utc(START), local_midnight_utc(START + timedelta(days=DAYS)))
    now = [period.end]
    with hub_store(folder / "meterdata.duckdb") as store:
        ingest_paths(store, register, [folder / "twin" / "meterdata"])
        gate = Gate(register, store, load_catalogue(), clock=lambda: now[0])

        def set_clock(t: datetime) -> None:
            now[0] = t

        checks = grid_checks.run_stage(gate, OPERATOR, folder / "twin", period, set_clock)
        with register.session() as session:
            records = audit.records(session.db)
        yield Built(folder, register, checks, Truth.read(folder / "twin"), records, gate)
    register.dispose()


def test_the_broken_neutral_swings_with_its_own_load_in_the_physics(built: Built) -> None:
    """Twin check: the broken neutral's voltage departs from its healthy same-phase
    feeder neighbours' by far more than any healthy meter's does."""
    conns = [c for c in built.truth.connections if c["phase"] is not None]
    broken = next(c for c in conns if c["broken_neutral"])
    same = [
        c["connection"]
        for c in conns
        if c["feeder"] == broken["feeder"] and c["phase"] == broken["phase"]
    ]
    v = pq.read_table(built.folder / "twin" / "truth" / "voltages_15min.parquet")
    v = v.filter(pc.is_in(v["connection"], value_set=__import__("pyarrow").array(same, "int32")))
    frame = v.to_pandas().pivot_table(index="start", columns="connection", values="voltage_v")
    spread = {}
    for c in same:
        others = frame.drop(columns=[c, broken["connection"]], errors="ignore").median(axis=1)
        departure = frame[c] - others
        spread[c] = float((departure - departure.median()).abs().quantile(0.99))
    healthy = max(s for c, s in spread.items() if c != broken["connection"])
    assert spread[broken["connection"]] > 2 * healthy, spread


def test_uc5_recovers_the_reinforcement_at_equal_conditions(built: Built) -> None:
    result = built.checks.uc5
    assert result is not None
    assert result.intervention.kind == "reinforcement"
    [score] = [
        s
        for s in grid_checks.scores(built.checks, built.folder / "twin", built.truth)
        if s.use_case == "UC5"
    ]
    assert score.metrics["effect_error_v"] < 0.5, (
        result.as_dict()["phases"],
        result.left_out[:5],
        result.intervention,
    )
    assert (result.after.start - result.before.end) >= timedelta(days=1)
    uc5 = [r for r in built.records if r.entry.purpose == "UC5" and r.entry.event == "decision"]
    assert [r.entry.outcome for r in uc5] == ["granted", "granted"]


def test_uc12_chain_is_in_the_audit_and_finds_the_broken_neutral(built: Built) -> None:
    result = built.checks.uc12
    assert result is not None
    unsafe = {c["ean"] for c in built.truth.connections if c["broken_neutral"]}
    assert set(result.visit) == unsafe, "; ".join(
        f"{m.ean[-3:]} {m.phase} {m.deviation_v:.1f}" for m in result.meters
    )
    assert 0 < result.individual_reads < result.whole_feeder_reads
    chain = [
        (r.entry.event, r.entry.detail.get("step"))
        for r in built.records
        if r.entry.purpose == "UC12"
    ]
    assert chain[:3] == [("flag", "substation"), ("flag", "cable"), ("decision", None)]
    decision = next(
        r for r in built.records if r.entry.purpose == "UC12" and r.entry.event == "decision"
    )
    assert set(decision.entry.connections) == set(result.steps[1].names) & set(
        decision.entry.connections
    )
    assert len(decision.entry.connections) == result.individual_reads


def test_uc12_reading_a_connection_the_cable_step_did_not_name_is_refused(built: Built) -> None:
    result = built.checks.uc12
    assert result is not None
    cable = result.steps[1]
    outside = next(
        c["ean"]
        for c in built.truth.connections
        if c["ean"] not in cable.names and c["meter"] != "traditional"
    )
    end = datetime(2025, 6, 9, tzinfo=UTC)
    request = AccessRequest(
        OPERATOR,
        "UC12",
        (cable.names[0], outside),
        frozenset({"voltages_10min"}),
        Period(end - timedelta(days=5), end),
        end + timedelta(hours=9),
        trigger="UC12 cable step",
        cites=cable.flag_id,
    )
    answer = built.gate.request(request)
    assert isinstance(answer, Decision)
    assert "UC12.flagged" in answer.rules
    # the substation step's finding names the feeder, but it is the cable step that may open
    # individual reads only where it pointed: citing nothing is refused as well
    bare = built.gate.request(
        AccessRequest(
            OPERATOR,
            "UC12",
            (cable.names[0],),
            frozenset({"voltages_10min"}),
            Period(end - timedelta(days=5), end),
            end + timedelta(hours=9),
            trigger="UC12",
        )
    )
    assert isinstance(bare, Decision) and "UC12.flagged" in bare.rules
    assert np.isfinite(len(cable.names))
