"""The use-case catalogue (PRV-2): the approved use cases' limits as data, strictly validated."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetpunt.cli import app
from meetpunt.errors import RulesDataError
from meetpunt.meterdata.kinds import KINDS
from meetpunt.privacy.catalogue import (
    AggregateRule,
    FrequencyLimit,
    NoiseRule,
    PurposeRule,
    RetentionRule,
    load_catalogue,
)
from meetpunt.privacy.model import QUARANTINE, REACHABILITY, VOLTAGE_PRESENCE, Role
from meetpunt.rulebook import RULES_DIR_ENV

PACKAGED = resources.files("meetpunt.data").joinpath("use_case_catalogue.toml")
USE_CASES = [f"UC{n}" for n in range(1, 16)]
OTHERS = [
    "supplier_monthly",
    "supplier_daily",
    "supplier_switch",
    "supplier_move",
    "app_consent",
    "customer_own",
]


def rule(purpose: str) -> PurposeRule:
    found = load_catalogue().get(purpose)
    assert found is not None, purpose
    return found


def test_version_and_every_purpose_present() -> None:
    catalogue = load_catalogue()
    assert catalogue.version == "2025-07"
    assert catalogue.valid_from == date(2025, 7, 1)
    assert "versie juli 2025" in catalogue.source
    assert list(catalogue.purposes) == [*USE_CASES, *OTHERS, "data_stewardship"]
    assert catalogue.get("research_release") is None  # research data: UC14's study only
    assert catalogue.get("nonsense") is None


def test_every_entry_is_well_formed() -> None:
    known = set(KINDS) | {VOLTAGE_PRESENCE, REACHABILITY}
    for purpose in load_catalogue().purposes.values():
        if purpose.id == "data_stewardship":  # the one purpose that reads the quarantine
            assert purpose.kinds == {QUARANTINE} and purpose.parties == {Role.GRID_OPERATOR}
            continue
        assert purpose.kinds <= known, purpose.id
        assert purpose.parties and all(isinstance(p, Role) for p in purpose.parties)
        assert purpose.notes.strip() and purpose.title_nl.strip()
        assert purpose.window_days >= 0 and purpose.pause_days >= 0
    for uc in USE_CASES:
        assert rule(uc).category == "use_case"
        assert rule(uc).retention is not None, uc


def test_uc1_reads_only_voltage_presence_on_an_outage_report() -> None:
    uc1 = rule("UC1")
    assert uc1.kinds == {VOLTAGE_PRESENCE, "last_gasp"}
    assert uc1.trigger == "outage_report"
    assert uc1.grid_management


def test_uc2_event_counters_once_a_quarter_without_reason() -> None:
    uc2 = rule("UC2")
    assert uc2.kinds == {"voltage_events"}
    assert uc2.frequency == (FrequencyLimit(1, per="quarter"),)
    assert uc2.trigger == "none"


def test_uc3_ten_days_after_uc2() -> None:
    uc3 = rule("UC3")
    assert uc3.window_days == 10
    assert uc3.kinds == {"voltages_10min", "quarter_hours"}
    assert (uc3.trigger, uc3.population) == ("uc2_many_events", "flagged")


def test_uc5_two_reads_of_ten_days_a_day_apart() -> None:
    uc5 = rule("UC5")
    assert (uc5.window_days, uc5.pause_days) == (10, 1)
    assert uc5.frequency == (FrequencyLimit(2, per_days=21),)
    assert uc5.trigger == "intervention"


def test_uc6_a_week_four_times_a_year_once_per_season_until_sunset() -> None:
    uc6 = rule("UC6")
    assert uc6.window_days == 7
    assert set(uc6.frequency) == {FrequencyLimit(4, per="year"), FrequencyLimit(1, per="season")}
    assert uc6.sunset == date(2028, 7, 1)
    assert "95" in uc6.sunset_condition


def test_uc7_once_a_year_and_delete_after_analysis() -> None:
    uc7 = rule("UC7")
    assert uc7.frequency == (FrequencyLimit(1, per="year"),)
    assert uc7.retention == RetentionRule("analysis", 0)
    assert uc7.kinds == {"voltages_10min"}


def test_uc12_ten_days_step_by_step() -> None:
    uc12 = rule("UC12")
    assert (uc12.window_days, uc12.population) == (10, "flagged")
    assert uc12.trigger == "higher_level_measurement"


def test_aggregates_only_for_uc11_uc13_uc14() -> None:
    with_aggregate = {p.id for p in load_catalogue().purposes.values() if p.aggregate}
    assert with_aggregate == {"UC11", "UC13", "UC14"}
    assert rule("UC11").population == rule("UC13").population == "already_read"


def test_uc14_ten_dynamic_and_ten_other_per_pc3_without_ean() -> None:
    uc14 = rule("UC14")
    assert uc14.aggregate == AggregateRule(
        10,
        0.5,
        "pc3",
        min_dynamic=10,
        min_non_dynamic=10,
        period="month",
        count_rounding=10,
        release="noisy",
        noise=NoiseRule(0.5, 60_000, 18.0, 1.0, 1e-6),
    )
    assert uc14.pseudonymise
    assert Role.RESEARCHER in uc14.parties
    assert not uc14.grid_management


def test_aggregate_purposes_say_grid_columns_and_release() -> None:
    """PRV-6: each aggregate purpose releases on a grid of whole local periods, sums only
    its value columns, and is exact-with-suppression or noisy (research first)."""
    uc11, uc13 = rule("UC11").aggregate, rule("UC13").aggregate
    assert uc11 is not None and uc13 is not None
    assert (uc11.period, uc11.release, uc11.noise) == ("day", "exact", None)
    assert (uc13.period, uc13.release) == ("month", "exact")
    for agg in (uc11, uc13):
        assert agg.columns == ("import_wh", "export_wh") and agg.p_percent == 10.0


def test_uc15_every_five_days_contractless_or_out_of_service() -> None:
    uc15 = rule("UC15")
    assert uc15.frequency == (FrequencyLimit(1, per_days=5),)
    assert uc15.population == "contractless_or_out_of_service"
    assert REACHABILITY in uc15.kinds


def test_uc8_only_contractless() -> None:
    assert rule("UC8").population == "contractless"


def test_opt_out_stops_suppliers_apps_and_research() -> None:
    for purpose in (*OTHERS, "UC14"):
        assert not rule(purpose).grid_management, purpose
    assert rule("supplier_daily").population == "supplied"
    assert rule("app_consent").population == "consented"
    assert rule("customer_own").population == "own"
    assert rule("app_consent").parties == {Role.APP}


def packaged_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    text = PACKAGED.read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "use_case_catalogue.toml").write_text(text.replace(old, new, 1), "utf-8")
    monkeypatch.setenv(RULES_DIR_ENV, str(tmp_path))


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('id = "UC3"\n', 'id = "UC3"\ncolour = "red"\n', r"purpose UC3: unknown key\(s\) colour"),
        (
            'kinds = ["voltage_events"]',
            'kinds = ["voltage_events", "heart_rate"]',
            r"purpose UC2: kinds: unknown kind\(s\) 'heart_rate'",
        ),
        (
            'window_days = 10\nfrequency = [{ count = 1, per = "quarter" }]',
            'window_days = -10\nfrequency = [{ count = 1, per = "quarter" }]',
            r"purpose UC3: window_days must not be negative",
        ),
        ('parties = ["grid_operator"]', 'parties = ["police"]', r"purpose UC1: parties: .*police"),
        ('population = "contractless"', 'population = "everyone"', r"purpose UC8: population"),
        ("pause_days = 1", "pause_days = -1", r"purpose UC5: pause_days"),
        ("{ count = 1, per_days = 5 }", "{ count = 1, per_days = -5 }", r"UC15: frequency\[0\]"),
        ('per = "season"', 'per = "fortnight"', r"purpose UC6: frequency\[1\]: per"),
        ('level = "pc3"', 'level = "galaxy"', r"purpose UC14: aggregate: level"),
        ('dominance = 0.5, level = "pc4"', 'dominance = 1.5, level = "pc4"', r"UC13: aggregate"),
        ('period = "month", columns', 'period = "fortnight", columns', r"UC13: aggregate: period"),
        ('release = "exact" }', 'release = "noisy" }', r"UC11: aggregate: .*noise table"),
        ("epsilon = 0.5,", "epsilon = 0,", r"UC14: aggregate: noise: epsilon must be above 0"),
        (
            'retention = { delete_after = "analysis"',
            'retention = { delete_after = "never"',
            r"UC7: retention: delete_after",
        ),
        ("sunset = 2028-07-01", 'sunset = "soon"', r"purpose UC6: sunset"),
        ("grid_management = true", 'grid_management = "yes"', r"purpose UC1: grid_management"),
        ('id = "UC2"', 'id = "UC1"', r"purpose UC1 is defined twice"),
    ],
)
def test_a_broken_catalogue_is_refused_naming_purpose_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, named: str
) -> None:
    packaged_with(tmp_path, monkeypatch, old, new)
    with pytest.raises(RulesDataError, match=named):
        load_catalogue()


def test_a_missing_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged_with(tmp_path, monkeypatch, "pause_days = 1\n", "")
    with pytest.raises(RulesDataError, match=r"purpose UC5: missing key\(s\) pause_days"):
        load_catalogue()


def test_an_operators_later_version_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = PACKAGED.read_text(encoding="utf-8")
    text = text.replace('version = "2025-07"', 'version = "2026-01"', 1)
    text = text.replace("valid_from = 2025-07-01", "valid_from = 2026-01-01", 1)
    text = text.replace("window_days = 92", "window_days = 91", 1)
    text += (
        '\n[[purpose]]\nid = "UC16"\ntitle_nl = "Nieuwe use case"\ntitle_en = "New use case"\n'
        'category = "use_case"\ngrid_management = true\nparties = ["grid_operator"]\n'
        'kinds = ["power_failures"]\npopulation = "any"\ntrigger = "none"\nwindow_days = 3\n'
        "frequency = []\npause_days = 0\npseudonymise = false\n"
        'notes = "Versie januari 2026"\n'
    )
    tomllib.loads(text)
    (tmp_path / "use_case_catalogue.toml").write_text(text, "utf-8")
    monkeypatch.setenv(RULES_DIR_ENV, str(tmp_path))
    catalogue = load_catalogue()
    assert (catalogue.version, catalogue.valid_from) == ("2026-01", date(2026, 1, 1))
    assert rule("UC2").window_days == 91
    new = rule("UC16")
    assert (new.kinds, new.retention, new.aggregate, new.sunset) == (
        {"power_failures"},
        None,
        None,
        None,
    )


def test_an_override_with_another_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged_with(tmp_path, monkeypatch, 'name = "use_case_catalogue"', 'name = "tariffs"')
    with pytest.raises(RulesDataError, match=r"meta\.name is 'tariffs'"):
        load_catalogue()


runner = CliRunner()


def test_cli_catalogue_json() -> None:
    result = runner.invoke(app, ["privacy", "catalogue", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["version"] == "2025-07"
    assert list(data["purposes"]) == [*USE_CASES, *OTHERS, "data_stewardship"]
    uc6 = data["purposes"]["UC6"]
    assert uc6["window_days"] == 7 and uc6["sunset"] == "2028-07-01"
    assert {"count": 1, "per_days": None, "per": "season"} in uc6["frequency"]
    assert data["purposes"]["UC14"]["aggregate"]["min_dynamic"] == 10
    assert data["purposes"]["UC1"]["kinds"] == ["last_gasp", "voltage_presence"]


def test_cli_catalogue_table_and_broken_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["privacy", "catalogue"])
    assert result.exit_code == 0, result.output
    assert re.search(r"UC15 .*1x/5d", result.output)
    packaged_with(tmp_path, monkeypatch, 'id = "UC3"\n', 'id = "UC3"\ncolour = "red"\n')
    broken = runner.invoke(app, ["privacy", "catalogue", "--json"])
    assert broken.exit_code == 1
    error = json.loads(broken.stdout)["error"]
    assert "colour" in error["message"] and error["rule"]
