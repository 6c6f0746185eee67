"""Design rule 2, rules are data: every rule table is a versioned data file with its source."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from meetpunt.errors import RulesDataError
from meetpunt.rulebook import load_rules, parse_rules

PACKAGED = sorted(
    p.name.removesuffix(".toml")
    for p in resources.files("meetpunt.data").iterdir()
    if p.name.endswith(".toml")
)


def test_the_four_rule_tables_of_issue_2_are_packaged() -> None:
    for name in ("capacity_classes", "sap_rules", "outage_compensation", "offpeak_calendar"):
        assert name in PACKAGED


@pytest.mark.parametrize("name", PACKAGED)
def test_every_rule_file_names_version_date_and_source(name: str) -> None:
    loaded = load_rules(name)
    assert loaded.meta.name == name
    assert loaded.meta.version and len(loaded.meta.source) > 40
    assert loaded.body


def test_missing_file_refused() -> None:
    with pytest.raises(RulesDataError, match="not packaged"):
        load_rules("no_such_rules")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("x = 1", "no [meta]"),
        ('[meta]\nname = "a"\nversion = "1"\nsource = "s"', "valid_from"),
        ('[meta]\nname = "a"\nversion = "1"\nvalid_from = "2024"\nsource = "s"', "TOML date"),
        ("[meta", "not valid TOML"),
    ],
)
def test_malformed_rule_file_refused(text: str, needle: str) -> None:
    with pytest.raises(RulesDataError, match=needle.replace("[", r"\[")):
        parse_rules(text, "test.toml")


def test_operator_override_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "capacity_classes.toml").write_text(
        '[meta]\nname = "capacity_classes"\nversion = "operator-1"\n'
        'valid_from = 2026-01-01\nsource = "operator test"\n[electricity]\n'
    )
    monkeypatch.setenv("MEETPUNT_RULES_DIR", str(tmp_path))
    assert load_rules("capacity_classes").meta.version == "operator-1"
    assert load_rules("sap_rules").meta.version == "2025-07"  # not overridden: packaged
