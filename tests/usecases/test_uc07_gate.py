"""UC7 through the gate on a small twin (issue 19): one request, the read copy deleted
after the analysis (checked in the store and the audit), the once-a-year limit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from meetpunt.app.hub import hub_store
from meetpunt.demo.score import Truth
from meetpunt.demo.uc07 import score_placements
from meetpunt.domain.calendar import local_midnight_utc
from meetpunt.privacy import audit
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Period
from meetpunt.register import schema as t
from meetpunt.usecases.uc07_gis_topology import FEEDER_DIFFERS, UNDECIDED, Uc07Error, find_topology
from tests.usecases.conftest import AT, OPERATOR, START, build_twin


def test_uc07_reads_once_deletes_its_copy_and_refuses_a_second_run(tmp_path: Path) -> None:
    built = build_twin(tmp_path, seed=3, connections=80, days=2)
    period = Period(local_midnight_utc(START), local_midnight_utc(START + timedelta(days=2)))
    work = tmp_path / "uc07"
    try:
        with hub_store(built.store_path) as store:
            gate = Gate(built.register, store, load_catalogue(), clock=lambda: AT)
            result = find_topology(gate, OPERATOR, "OS001", period, AT, "GIS review", work)
            with pytest.raises(Uc07Error, match=r"UC7\.frequency"):
                find_topology(gate, OPERATOR, "OS001", period, AT, "GIS review", work)
            with pytest.raises(Uc07Error, match="no in-service smart meter"):
                find_topology(gate, OPERATOR, "NOPE", period, AT, "GIS review", work)
        assert result.rows_read > 0 and result.connections
        assert result.phase_labels == "anchored"
        # the copy is gone from disk and marked deleted in the register (PRV-5)
        assert result.deleted and not any(Path(p).exists() for p in result.deleted)
        with built.register.session() as session:
            copies = session.db.execute(select(t.privacy_copy)).all()
            records = audit.records(session.db)
        assert copies and all(c.deleted_at is not None for c in copies)
        ours = [r.entry for r in records if r.entry.purpose == "UC7"]
        events = [(e.event, e.outcome) for e in ours]
        assert events.count(("decision", "granted")) == 1
        assert events.count(("read", "read")) == 1
        assert events.count(("retention", "deleted")) == 1
        assert ("decision", "refused") in events
        # against the truth: every decided connection is where the twin put it
        truth = Truth.read(built.folder / "twin").connections
        score = score_placements(result.connections, truth)
        assert score.false_flags == 0
        assert score.gis_phase_errors_found == score.gis_phase_errors
        found = {p.ean for p in result.connections if p.verdict != UNDECIDED}
        assert len(found) >= 0.9 * len(result.connections)
        assert all(
            p.found_phase is None
            for p in result.connections
            if p.verdict == FEEDER_DIFFERS and p.registered_phase is None
        )
    finally:
        built.register.dispose()
