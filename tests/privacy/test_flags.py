"""Stored findings that open a flagged purpose (UC3 after UC2, UC12's steps): recorded
through the gate, audited, cited by id, and refused when the citation does not hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meetpunt.errors import RulesDataError
from meetpunt.privacy import audit, explain, flags
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate, GateError
from meetpunt.privacy.grant import Grant
from meetpunt.privacy.model import AccessRequest, Decision, Party, Period, Role
from meetpunt.register import Register
from tests.privacy.test_catalogue import packaged_with
from tests.scenarios.test_scenarios import EANS, build

NOW = datetime(2025, 7, 1, 6, tzinfo=UTC)
OPERATOR = Party("grid_operator", Role.GRID_OPERATOR)


def _uc3(cites: int | None, eans: tuple[str, ...]) -> AccessRequest:
    period = Period(NOW - timedelta(days=10), NOW)
    return AccessRequest(
        OPERATOR, "UC3", eans, frozenset({"voltages_10min"}), period, NOW, "test", "UC2", cites
    )


def test_a_finding_is_audited_and_opens_exactly_what_it_names(register: Register) -> None:
    build(register)
    gate = Gate(register, None, load_catalogue(), clock=lambda: NOW)
    normal, neighbour = EANS["normal"], EANS["neighbour"]
    flag_id = gate.flag(
        OPERATOR, "UC2", "quarterly ranking", "UC3", [normal], NOW + timedelta(days=90), "14 sags"
    )
    assert isinstance(gate.request(_uc3(flag_id, (normal,))), Grant)
    refused = gate.request(_uc3(flag_id, (neighbour,)))
    assert isinstance(refused, Decision)
    assert refused.rules == ("UC3.flagged",)
    assert neighbour in refused.findings[0].message
    with register.session() as s:
        records = audit.records(s.db)
        stored = flags.load(s.db, flag_id)
        assert not audit.verify(s.db)
    (flagged,) = [r for r in records if r.entry.event == "flag"]
    assert flagged.entry.connections == (normal,)
    assert stored is not None and (stored.usecase, len(stored.members)) == ("UC2", 1)
    cited = [r.entry.detail.get("cites") for r in records if r.entry.event == "decision"]
    assert cited == [flag_id, flag_id]
    assert "nader onderzoek" in explain.describe(flagged, "nl", {})


def test_a_finding_naming_an_unknown_connection_is_refused_whole(register: Register) -> None:
    build(register)
    gate = Gate(register, None, load_catalogue(), clock=lambda: NOW)
    with pytest.raises(GateError, match="unknown: 871687400000099990"):
        gate.flag(
            OPERATOR, "UC2", "ranking", "UC3", [EANS["normal"], "871687400000099990"], NOW, "x"
        )
    with register.session() as s:
        assert flags.load(s.db, 1) is None
        assert not [r for r in audit.records(s.db) if r.entry.event == "flag"]


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('flagged_by = ["UC2"]\n', "", r"UC3: population 'flagged' needs flagged_by"),
        ('flagged_by = ["UC2"]', 'flagged_by = ["UC99"]', r"UC3: flagged_by names unknown.*UC99"),
        (
            'trigger = "outage_incident"\n',
            'trigger = "outage_incident"\nflagged_by = ["UC2"]\n',
            r"UC4: flagged_by is for population 'flagged'",
        ),
    ],
)
def test_a_flagged_purpose_must_say_what_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, named: str
) -> None:
    packaged_with(tmp_path, monkeypatch, old, new)
    with pytest.raises(RulesDataError, match=named):
        load_catalogue()
