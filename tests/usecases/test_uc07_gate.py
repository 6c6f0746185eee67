"""UC7 through the gate on a small twin (issue 19): one request, the read copy deleted
after the analysis (checked in the store and the audit), the once-a-year limit."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from meetpunt.app.hub import hub_store
from meetpunt.cli import app
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

K2 = "OS001-K2"


def test_uc07_reads_once_deletes_its_copy_and_refuses_a_second_run(tmp_path: Path) -> None:
    built = build_twin(tmp_path, seed=3, connections=120, days=2)
    period = Period(local_midnight_utc(START), local_midnight_utc(START + timedelta(days=2)))
    work = tmp_path / "uc07"
    try:
        with hub_store(built.store_path) as store:
            gate = Gate(built.register, store, load_catalogue(), clock=lambda: AT)
            result = find_topology(gate, OPERATOR, "OS001", period, AT, "GIS review", work, K2)
            with pytest.raises(Uc07Error, match=r"UC7\.frequency"):
                find_topology(gate, OPERATOR, "OS001", period, AT, "GIS review", work, K2)
            with pytest.raises(Uc07Error, match="no in-service smart meter"):
                find_topology(gate, OPERATOR, "NOPE", period, AT, "GIS review", work)
        # the same through the CLI for another feeder, with the clerk's table
        table = tmp_path / "corrections.csv"
        done = CliRunner().invoke(
            app,
            [
                "usecase", "uc07", "--substation", "OS001", "--feeder", "OS001-K1",
                "--from", "2025-06-02", "--to", "2025-06-04", "--db", built.db_url,
                "--store", str(built.store_path), "--corrections", str(table), "--json",
            ],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        doc = json.loads(done.stdout)
        assert doc["substation"] == "OS001" and doc["summary"]["source_data_deleted"]
        assert {c["verdict"] for c in doc["connections"]} <= {
            "agrees", "phase_differs", "feeder_differs", "undecided"
        }  # fmt: skip
        three = [c for c in doc["connections"] if c["registered_phase"] is None]
        assert three and all(c["found_phase"] is None for c in three)
        flagged = [c for c in doc["connections"] if c["verdict"].endswith("differs")]
        assert len(table.read_text(encoding="utf-8").splitlines()) == 1 + len(flagged)
        shown = CliRunner().invoke(
            app,
            [
                "usecase", "uc07", "--substation", "OS001", "--feeder", "OS001-K3",
                "--from", "2025-06-02", "--to", "2025-06-04", "--db", built.db_url,
                "--store", str(built.store_path),
            ],
        )  # fmt: skip
        assert shown.exit_code == 0, shown.output
        assert "UC7 OS001 feeder OS001-K3:" in shown.stdout and "deleted: yes" in shown.stdout
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
        assert events.count(("decision", "granted")) == 3  # the call's and the CLI's two
        assert events.count(("read", "read")) == 3
        assert events.count(("retention", "deleted")) == 3
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


def test_confirmed_corrections_become_a_new_version_with_uc07_as_source(tmp_path: Path) -> None:
    """Issue 19: only rows a person confirmed are applied, as a new connection version
    with UC7 named as the source; a stale row and a missing confirmer are refused."""
    from dataclasses import replace
    from datetime import UTC, date, datetime

    from meetpunt.cli.uc07 import read_confirmed
    from meetpunt.domain.capacity import Commodity
    from meetpunt.errors import RegisterError
    from meetpunt.register import open_register
    from meetpunt.register.gis import GisCorrection, apply_corrections
    from meetpunt.register.read import RegisterView

    register = open_register(f"sqlite:///{tmp_path / 'r.sqlite'}")
    csv_text = (
        "ean,commodity,valid_from,capacity,status,admin_switch,meter_type,remote_reading,"
        "postcode,house_number,house_number_suffix,street,city,municipality,woz_object_id,"
        "substation,feeder,phase,customer_type,active_customer,solar_kwp,solar_registered_on\n"
        "871687400000000014,electricity,2017-03-10,1x35,IBD,on,smart,standard,5646AB,1,,"
        "Dorpsstraat,Meetdorp,Meetdorp,564600000001,OS001,OS001-K1,L1,household,false,,\n"
    )
    (tmp_path / "connections.csv").write_text(csv_text, encoding="utf-8")
    from meetpunt.register.csvio import import_file

    table = tmp_path / "corrections.csv"
    table.write_text(
        "ean,registered_feeder,registered_phase,found_feeder,found_phase,confidence,verdict,confirmed\n"
        "871687400000000014,OS001-K1,L1,OS001-K1,L3,1.00,phase_differs,yes\n"
        "871687400000000021,OS001-K1,L2,OS001-K2,L2,0.90,feeder_differs,\n",
        encoding="utf-8",
    )
    now = datetime(2025, 7, 1, tzinfo=UTC)
    try:
        with register.session() as session:
            import_file(session, tmp_path / "connections.csv")
        rows = read_confirmed(table)
        assert [r.ean for r in rows] == ["871687400000000014"]  # the unconfirmed row stays out
        with pytest.raises(RegisterError, match="confirmed"), register.session() as session:
            apply_corrections(session, rows, date(2025, 7, 1), " ", "UC7", now)
        with register.session() as session:
            assert apply_corrections(session, rows, date(2025, 7, 1), "J. Jansen", "UC7", now) == 1
        stale = [GisCorrection("871687400000000014", "OS001-K1", "L1", "OS001-K2", "L1")]
        with (
            pytest.raises(RegisterError, match="proposed against"),
            register.session() as session,
        ):
            apply_corrections(session, stale, date(2025, 7, 2), "J. Jansen", "UC7", now)
        with register.session() as session:
            before = session.connection_at(
                "871687400000000014", date(2025, 6, 30), Commodity.ELECTRICITY
            )
            after = session.connection_at(
                "871687400000000014", date(2025, 7, 1), Commodity.ELECTRICITY
            )
            history = session.db.execute(select(t.gis_correction)).all()
        assert before is not None and before.attributes.grid.phase == "L1"
        assert after is not None and after.attributes.grid.phase == "L3"
        assert [(h.source, h.old_phase, h.new_phase, h.confirmed_by) for h in history] == [
            ("UC7", "L1", "L3", "J. Jansen")
        ]
        # UC1, UC4 and UC9 take the confirmed correction as the grid position from its
        # day on; a later registration that is not UC7's is no confirmed position
        view = RegisterView(register)
        assert view.gis_confirmed(date(2025, 6, 30)) == set()
        assert view.gis_confirmed(date(2025, 7, 1)) == {"871687400000000014"}
        with register.session() as session:
            moved = replace(
                after.attributes, grid=replace(after.attributes.grid, feeder="OS001-K2")
            )
            session.record_connection(
                "871687400000000014", Commodity.ELECTRICITY, moved, date(2025, 8, 1)
            )
        assert view.gis_confirmed(date(2025, 7, 31)) == {"871687400000000014"}
        assert view.gis_confirmed(date(2025, 8, 1)) == set()
    finally:
        register.dispose()


def test_apply_refuses_a_table_that_is_not_uc07s(tmp_path: Path) -> None:
    bad = tmp_path / "other.csv"
    bad.write_text("ean,feeder\n871687400000000014,OS001-K1\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    done = CliRunner().invoke(
        app,
        [
            "usecase",
            "uc07-apply",
            str(bad),
            "--on",
            "2025-07-01",
            "--confirmed-by",
            "J",
            "--db",
            db,
        ],
    )
    assert done.exit_code == 1
    assert "REG-2.gis_table" in done.output or "not a UC7 correction table" in done.output


def test_a_missing_operator_file_is_a_clear_error(tmp_path: Path) -> None:
    """`usecase uc07 --operator DIR` without substation measurements in DIR names the
    file and what to do, before any gate request is made."""
    from meetpunt.cli.uc07 import read_stations
    from meetpunt.errors import MeetpuntError

    missing = tmp_path / "substation_measurements.parquet"
    with pytest.raises(MeetpuntError, match="no substation measurements") as caught:
        read_stations(missing)
    assert caught.value.findings[0].rule == "UC7.operator"
    assert caught.value.hint and "--operator" in caught.value.hint
