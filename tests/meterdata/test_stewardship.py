"""Reading the quarantine is data stewardship (PRV-1, PRV-7): only the grid operator,
every read audited with the connections it showed, a refusal audited too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.privacy import audit
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate, GateError
from meetpunt.privacy.model import QUARANTINE, Party, Role
from meetpunt.privacy.stewardship import STEWARDSHIP, read_quarantine
from tests.meterdata.conftest import E3X25, NOW, UNKNOWN, Hub, quarters, utc

runner = CliRunner()
OPERATOR = Party("8716874000009", Role.GRID_OPERATOR, "Netbeheer Meetdorp")


@pytest.fixture
def gate(hub: Hub) -> Gate:
    """A gate over the hub's register and store, after one source whose two rows of a
    connection the register lacks were refused (MTR-5.unknown_connection)."""
    hub.ingest(
        "quarter_hours", quarters(E3X25, utc(2025, 6, 2), 2) + quarters(UNKNOWN, utc(2025, 6, 2), 2)
    )
    return Gate(hub.register, hub.store, load_catalogue(), clock=lambda: NOW)


def _log(gate: Gate) -> list[audit.AuditRecord]:
    with gate.register.session() as session:
        return audit.records(session.db)


def test_the_operator_reads_the_quarantine_and_the_read_is_audited(gate: Gate) -> None:
    rows = read_quarantine(gate, OPERATOR, justification="why were rows refused")
    assert [(r["ean"], r["rule"]) for r in rows] == [(UNKNOWN, "MTR-5.unknown_connection")] * 2
    (record,) = _log(gate)
    entry = record.entry
    assert (entry.event, entry.purpose, entry.outcome) == ("read", STEWARDSHIP, "read")
    assert entry.connections == (UNKNOWN,) and entry.kinds == (QUARANTINE,)
    assert entry.detail["records"] == 2 and entry.detail["justification"]


@pytest.mark.parametrize("role", [Role.SUPPLIER, Role.APP, Role.CUSTOMER, Role.RESEARCHER])
def test_anyone_but_the_grid_operator_is_refused_and_the_refusal_audited(
    gate: Gate, role: Role
) -> None:
    with pytest.raises(GateError) as refused:
        read_quarantine(gate, Party("someone", role))
    assert refused.value.rules == (f"{STEWARDSHIP}.party",)
    (record,) = _log(gate)
    assert (record.entry.outcome, record.entry.rules) == ("refused", (f"{STEWARDSHIP}.party",))
    assert record.entry.connections == ()  # a refusal shows nothing, so names nothing


def test_a_negative_limit_is_refused(gate: Gate) -> None:
    with pytest.raises(GateError) as refused:
        read_quarantine(gate, OPERATOR, limit=-1)
    assert refused.value.rules == ("MTR-5.quarantine_limit",)
    assert _log(gate)[0].entry.outcome == "refused"


def test_the_cli_read_is_audited_and_publishes_the_head(hub: Hub, tmp_path: Path) -> None:
    """``meetpunt ingest quarantine``: JSON rows on stdout, the new audit head on stderr;
    the customer finds the read in their own audit list."""
    hub.ingest("quarter_hours", quarters(UNKNOWN, utc(2025, 6, 2), 1))
    hub.store.close()
    common = ["--db", f"sqlite:///{tmp_path / 'register.sqlite'}"]
    common += ["--store", str(tmp_path / "meterdata.duckdb")]
    listed = runner.invoke(app, ["ingest", "quarantine", *common, "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["ean"] == UNKNOWN
    head = runner.invoke(app, ["audit", "head", "--db", common[1]]).stdout.strip()
    assert f"audit head {head}" in listed.stderr
    mine = runner.invoke(app, ["audit", "list", "--ean", UNKNOWN, "--db", common[1]])
    assert "geweigerde meetgegevens (quarantaine)" in mine.stdout
    negative = runner.invoke(app, ["ingest", "quarantine", *common, "--limit", "-1", "--json"])
    assert negative.exit_code == 2  # a usage error, before anything is read
    assert json.loads(negative.stdout)["error"]["rule"] == "CLI.range"
