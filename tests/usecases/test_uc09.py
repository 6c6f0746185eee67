"""UC9 interruption registration through the privacy gate, scored against the twin's
truth (what each meter really logged) on several seeds."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from meetpunt.app.gate import open_gate
from meetpunt.app.hub import hub_store
from meetpunt.cli import app
from meetpunt.cli.usecases import duration_text, local_outage_id
from meetpunt.privacy import audit
from meetpunt.privacy.catalogue import load_catalogue
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Period, Role
from meetpunt.usecases.planned_works import read_planned
from meetpunt.usecases.uc09_interruption_registration import (
    SOURCE,
    LogEntry,
    Outage,
    Uc09Error,
    Uc09Result,
    group_outages,
    register_interruptions,
    reliability,
)
from tests.usecases.conftest import AT, DAYS, OPERATOR, SEEDS, START, TRIGGER, Twin, fresh_copy
from tests.usecases.conftest import period as _period


def _truth(twin: Twin) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    truth = twin.folder / "twin" / "truth"
    outages = pq.read_table(truth / "outages.parquet").to_pylist()
    asked = _population(twin)
    seen = [
        r
        for r in pq.read_table(truth / "interruptions_seen.parquet").to_pylist()
        if r["logged"] and r["ean"] in asked
    ]
    return outages, seen


def _population(twin: Twin) -> frozenset[str]:
    """The EANs UC9 asked for: in service with a smart meter in the register. The twin
    also has meters that log while the register says out of service (seed 5); UC9's
    population leaves them out, so the truth is compared on the population."""
    decision = next(r.entry for r in twin.audit_records if r.entry.purpose == "UC9")
    return frozenset(decision.connections)


def _registered_by_ean(result: Uc09Result) -> dict[str, list[Outage]]:
    out: dict[str, list[Outage]] = {}
    for o in result.outages:
        for c in o.customers:
            out.setdefault(c.ean, []).append(o)
    return out


def test_every_logged_interruption_is_in_exactly_one_outage_to_the_second(twin: Twin) -> None:
    _, seen = _truth(twin)
    assert seen, "the twin should have logged interruptions"
    by_ean = _registered_by_ean(twin.result)
    for row in seen:
        found = by_ean.get(str(row["ean"]), [])
        assert len(found) == 1, f"{row['ean']} of {row['outage_id']} in {len(found)} outages"
        customer = next(c for c in found[0].customers if c.ean == row["ean"])
        assert customer.duration_s == row["log_duration_s"]
        assert customer.end == row["log_end"]
        assert customer.start == customer.end - timedelta(seconds=customer.duration_s)


def test_truth_outages_map_one_to_one_to_registered_outages(twin: Twin) -> None:
    outages, seen = _truth(twin)
    by_ean = _registered_by_ean(twin.result)
    logged: dict[str, set[str]] = {}
    for row in seen:
        logged.setdefault(str(row["outage_id"]), set()).add(str(row["ean"]))
    mapping: dict[str, str] = {}
    for truth in outages:
        eans = logged.get(str(truth["outage_id"]))
        if not eans:  # only Ferraris meters were hit: nothing was logged, nothing to register
            continue
        registered = {by_ean[e][0].id for e in eans}
        assert len(registered) == 1, f"{truth['outage_id']} split into {registered}"
        outage = next(o for o in twin.result.outages if o.id in registered)
        assert outage.substation == truth["substation"]
        if truth["feeder"] is not None:  # a GIS feeder error is put back on its street's feeder
            assert outage.feeders == (truth["feeder"],), truth["outage_id"]
        assert {c.ean for c in outage.customers} == eans
        rows = [r for r in seen if r["outage_id"] == truth["outage_id"]]
        assert outage.start == min(
            r["log_end"] - timedelta(seconds=int(r["log_duration_s"])) for r in rows
        )
        assert outage.end == max(r["log_end"] for r in rows)
        assert outage.source == SOURCE
        mapping[str(truth["outage_id"])] = outage.id
    assert len(set(mapping.values())) == len(mapping), "two truth outages merged into one"
    assert set(mapping.values()) == {o.id for o in twin.result.outages}, "an outage not in truth"
    planned = [str(t["outage_id"]) for t in outages if t["planned"]]
    assert planned and all(p in mapping for p in planned), "UC9 registers planned work too"
    assert len(mapping) >= 3


def test_reliability_figures_follow_from_the_outages(twin: Twin) -> None:
    result = twin.result
    f = result.figures
    _, seen = _truth(twin)
    assert f.customer_interruptions == len(seen)
    assert f.customer_minutes_lost == pytest.approx(
        sum(int(r["log_duration_s"]) for r in seen) / 60
    )
    assert f.customers_served > 0
    assert f.saifi == pytest.approx(f.customer_interruptions / f.customers_served)
    assert f.caidi_min == pytest.approx(f.customer_minutes_lost / f.customer_interruptions)
    assert f.saidi_min == pytest.approx(f.customer_minutes_lost / f.customers_served)
    assert f.saidi_min is not None
    assert f.saidi_min_per_year == pytest.approx(f.saidi_min * 365.25 / DAYS)
    json.dumps(result.as_dict())


def test_one_decision_and_one_read_are_audited(twin: Twin) -> None:
    uc9 = [r.entry for r in twin.audit_records if r.entry.purpose == "UC9"]
    assert [(e.event, e.outcome) for e in uc9] == [("decision", "granted"), ("read", "read")]
    assert uc9[0].kinds == ("power_failure_log",)
    assert len(uc9[0].connections) == twin.result.figures.customers_served


def test_without_a_trigger_the_gate_refuses(twin: Twin) -> None:
    with hub_store(twin.store_path) as store:
        gate = Gate(twin.register, store, load_catalogue(), clock=lambda: AT)
        with pytest.raises(Uc09Error) as caught:
            register_interruptions(gate, OPERATOR, _period(), AT, trigger="")
    assert "UC9.trigger" in caught.value.rules
    with twin.register.session() as session:
        last = audit.records(session.db)[-1].entry
    assert (last.purpose, last.event, last.outcome) == ("UC9", "decision", "refused")


def test_a_supplier_may_not_register_interruptions(twin: Twin) -> None:
    with hub_store(twin.store_path) as store:
        gate = Gate(twin.register, store, load_catalogue(), clock=lambda: AT)
        supplier = Party("8712423000005", Role.SUPPLIER)
        with pytest.raises(Uc09Error) as caught:
            register_interruptions(gate, supplier, _period(), AT, TRIGGER)
    assert "UC9.party" in caught.value.rules


def test_area_limits_the_population(twin: Twin) -> None:
    with hub_store(twin.store_path) as store:
        gate = Gate(twin.register, store, load_catalogue(), clock=lambda: AT)
        nowhere = register_interruptions(gate, OPERATOR, _period(), AT, TRIGGER, area="9999")
    assert nowhere.outages == () and nowhere.figures.customers_served == 0


@pytest.mark.parametrize("twin", [SEEDS[0]], indirect=True, ids=[f"seed{SEEDS[0]}"])
def test_the_cli_prints_outages_and_figures(twin: Twin, tmp_path: Path) -> None:
    built = fresh_copy(twin, tmp_path)
    built.register.dispose()
    to = (START + timedelta(days=DAYS)).isoformat()
    common = ["--from", START.isoformat(), "--to", to, "--db", built.db_url]
    common += ["--store", str(built.store_path)]
    runner = CliRunner()
    shown = runner.invoke(app, ["usecase", "uc09", *common])
    assert shown.exit_code == 0, shown.output
    assert "SAIFI" in shown.output and built.result.outages[0].substation in shown.output
    for o in built.result.outages:  # June: local time is UTC+2, in the ID as in the table
        assert o.id.endswith("Z") and o.id not in shown.output
        assert local_outage_id(o.id).endswith("+0200") and local_outage_id(o.id) in shown.output
        assert duration_text(o.duration_s) in shown.output
    as_json = runner.invoke(app, ["usecase", "uc09", *common, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert len(data["outages"]) == len(built.result.outages)
    assert data["figures"]["customer_interruptions"] == built.result.figures.customer_interruptions
    planning = ["--planned", str(built.folder / "twin" / "operator" / "planned_works.csv")]
    apart = json.loads(runner.invoke(app, ["usecase", "uc09", *common, *planning, "--json"]).stdout)
    counted = apart["figures"]["customer_interruptions"]
    planned_ci = apart["planned_figures"]["customer_interruptions"]
    assert planned_ci > 0 and counted + planned_ci == data["figures"]["customer_interruptions"]
    assert sum(1 for o in apart["outages"] if o["planned"]) >= 1
    refused = runner.invoke(app, ["usecase", "uc09", *common, "--trigger", "", "--json"])
    assert refused.exit_code == 1
    assert "UC9.trigger" in [f["rule"] for f in json.loads(refused.stdout)["error"]["findings"]]
    # each run wrote to the audit log, the refused one too: each published its new head
    heads = [r.stderr.split("audit head ")[1].split()[0] for r in (shown, as_json, refused)]
    assert len(set(heads)) == 3 and all(":" in h for h in heads)
    bad = tmp_path / "bad_planning.csv"
    bad.write_text("substation,feeder,start,end\nOS001,,tomorrow,later\n", encoding="utf-8")
    broken = runner.invoke(app, ["usecase", "uc09", *common, "--planned", str(bad), "--json"])
    assert broken.exit_code != 0 and "MKT-8.planned_works" in broken.stdout


def _seconds(text: str) -> float:
    """:func:`duration_text` read back: the seconds a shown duration stands for."""
    if text == "< 1 s":
        return 0
    match = re.fullmatch(r"(?:(\d+) h (\d{2}) min|(\d+) min|(\d+) s)", text)
    assert match is not None, f"not the one duration format: {text!r}"
    hours, minutes, only_minutes, seconds = match.groups()
    if hours is not None:
        assert int(hours) >= 1 and int(minutes) < 60, text
        return int(hours) * 3600 + int(minutes) * 60
    if only_minutes is not None:
        assert 1 <= int(only_minutes) < 60, text
        return int(only_minutes) * 60
    assert int(seconds) < 60, text
    return int(seconds)


def test_the_one_duration_format() -> None:
    cases = {
        0: "0 s",
        0.4: "< 1 s",
        45: "45 s",
        60: "1 min",
        12 * 60 + 59: "12 min",
        3600: "1 h 00 min",
        3900: "1 h 05 min",
        4 * 3600 - 1: "3 h 59 min",
    }
    assert {s: duration_text(s) for s in cases} == cases
    assert duration_text(timedelta(hours=26, minutes=5)) == "26 h 05 min"
    assert duration_text(None) == "-"


SECONDS = st.floats(min_value=0, max_value=10 * 365 * 86400, allow_nan=False)


@given(SECONDS)
def test_a_shown_duration_reads_back_to_its_unit_never_more(seconds: float) -> None:
    """Truncated to its unit (seconds, minutes), never rounded up: 3 h 59 min 59 s
    must not read as the 4 hours that make a customer owed (MKT-8)."""
    back = _seconds(duration_text(seconds))
    unit = 1 if seconds < 60 else 60
    assert back <= seconds < back + unit
    whole = int(seconds)
    assert duration_text(timedelta(seconds=whole)) == duration_text(whole)


@given(SECONDS, SECONDS)
def test_shown_durations_keep_their_order(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert _seconds(duration_text(low)) <= _seconds(duration_text(high))


def test_outage_ids_are_shown_in_local_time_across_dst() -> None:
    """UC9's ID keeps its UTC start (the use cases key on it); the CLI shows the local
    start with its offset: summer UTC+2, winter UTC+1, and the two 02:30's of the autumn
    change stay two IDs."""
    summer = group_outages([_entry("a", "K1", 0, 60)])[0]  # 2025-06-02 10:00 UTC
    assert summer.id == "OS1-20250602T100000Z"
    assert local_outage_id(summer.id) == "OS1-20250602T120000+0200"
    first = "OS-7-20241027T003000Z"  # 02:30 summer time
    second = "OS-7-20241027T013000Z"  # 02:30 winter time, an hour later
    assert local_outage_id(first) == "OS-7-20241027T023000+0200"
    assert local_outage_id(second) == "OS-7-20241027T023000+0100"
    assert local_outage_id("OS-7-20250330T010000Z") == "OS-7-20250330T030000+0200"
    assert local_outage_id("not an outage id") == "not an outage id"


def _entry(
    ean: str, feeder: str, start_min: int, minutes: int, substation: str = "OS1"
) -> LogEntry:
    start = datetime(2025, 6, 2, 10, 0, tzinfo=UTC) + timedelta(minutes=start_min)
    end = start + timedelta(minutes=minutes)
    return LogEntry(ean, substation, feeder, start, end, minutes * 60)


def test_grouping_rules_on_plain_entries() -> None:
    entries = [
        _entry("a", "K1", 0, 60),
        _entry("b", "K1", 0, 100),  # same feeder, same start: one outage
        _entry("c", "K1", 30, 60),  # overlaps a, started 30 min later: another fault
        _entry("d", "K2", 20, 30),  # another feeder, overlapping, other start: apart
        _entry("e", "K3", 200, 30),
        _entry("f", "K4", 200, 31),  # a substation outage: every feeder at once
        _entry("g", "K1", 200, 30, substation="OS2"),  # another substation: apart
    ]
    outages = group_outages(entries)
    groups = sorted(tuple(c.ean for c in o.customers) for o in outages)
    assert groups == [("a", "b"), ("c",), ("d",), ("e", "f"), ("g",)]
    ab = next(o for o in outages if o.affected == 2 and o.feeders == ("K1",))
    assert ab.duration_s == 100 * 60
    assert ab.customer_minutes == 60 + 100
    period = Period(datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 6, 4, tzinfo=UTC))
    f = reliability(outages, 10, period)
    assert f.customer_interruptions == 7 and f.saifi == pytest.approx(0.7)
    assert f.saidi_min_per_year == pytest.approx(f.customer_minutes_lost / 10 * 365.25 / 2)
    assert reliability([], 0, period).saifi is None


def test_an_interruption_its_feeder_contradicts_is_set_aside_not_counted() -> None:
    """A meter logs 115 days alone while three neighbours on its feeder logged nothing
    (the issue's 9,999,999 s row): set aside for review, not in SAIDI; the real outage of
    the others is registered as it was (MTR-5.contradicted_interruption)."""
    from meetpunt.usecases.grid import GridSpot
    from meetpunt.usecases.uc09_interruption_registration import (
        CONTRADICTED,
        LogEntry,
        set_aside_contradicted,
    )

    start = datetime(2025, 6, 10, 8, tzinfo=UTC)
    end = start + timedelta(hours=2)
    spots = {e: GridSpot("OS1", "K1") for e in ("a", "b", "c", "d")}
    real = [LogEntry(e, "OS1", "K1", start, end, 7200) for e in ("a", "b")]
    absurd = LogEntry(
        "c",
        "OS1",
        "K1",
        end + timedelta(hours=1) - timedelta(seconds=9_999_999),
        end + timedelta(hours=1),
        9_999_999,
    )
    outages, doubted = set_aside_contradicted(group_outages([*real, absurd]), spots)
    assert [d.ean for d in doubted] == ["c"] and doubted[0].as_dict()["rule"] == CONTRADICTED
    (outage,) = outages
    assert [c.ean for c in outage.customers] == ["a", "b"]
    assert (outage.start, outage.end) == (start, end)
    # alone on its feeder (nobody to contradict it) or within a day: counted as logged
    counted, none_doubted = set_aside_contradicted(
        group_outages([absurd]), {"c": GridSpot("OS1", "K1")}
    )
    assert not none_doubted and counted[0].affected == 1
    day = LogEntry("c", "OS1", "K1", start, start + timedelta(hours=20), 72_000)
    assert set_aside_contradicted(group_outages([day]), spots)[1] == []


def test_planned_work_is_registered_and_counted_apart(twin: Twin, tmp_path: Path) -> None:
    """Issue 16: the national register reports planned interruptions separately. With
    the operator's planning, every planned interruption is registered as planned and
    left out of the figures; without it, the same interruptions count as unplanned."""
    register_file = Path(twin.db_url.removeprefix("sqlite:///"))
    for path in (register_file, twin.store_path):  # each with its write-ahead log
        for part in path.parent.glob(path.name + "*"):
            shutil.copy(part, tmp_path / part.name)
    works = read_planned(twin.folder / "twin" / "operator" / "planned_works.csv")
    _, seen = _truth(twin)
    with open_gate(
        f"sqlite:///{tmp_path / 'register.sqlite'}",
        tmp_path / "meterdata.duckdb",
        clock=lambda: AT,
    ) as gate:
        result = register_interruptions(gate, OPERATOR, _period(), AT, TRIGGER, planned=works)
    planned_rows = {(r["ean"], r["log_end"]) for r in seen if r["planned"]}
    assert planned_rows, "the twin should have planned work that meters logged"
    marked = {(c.ean, c.end) for o in result.outages if o.planned is not None for c in o.customers}
    assert marked == planned_rows
    assert result.figures.customer_interruptions == len(seen) - len(planned_rows)
    assert result.planned_figures is not None
    assert result.planned_figures.customer_interruptions == len(planned_rows)
    assert twin.result.figures.customer_interruptions == len(seen), "no planning: all counted"
    assert all(o["planned"] is None for o in twin.result.as_dict()["outages"])
    assert any(o["planned"] for o in result.as_dict()["outages"])
