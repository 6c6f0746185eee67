"""The demo's UC10 and UC15 stage (issue 20): the mechanic's readings of the month
approved through the gate, and the month's UC15 schedule run day by day, each scored
against the twin's truth.

Hooks: :func:`analyse` from ``chain.analyse`` (the gate and its clock are the chain's),
:func:`expected_audit` from ``chain.check_audit``, :func:`scores` from ``chain.score``.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from meetpunt.app.schedule import ScheduleReport, run_schedule
from meetpunt.demo.score import Score, Truth
from meetpunt.domain.calendar import to_local
from meetpunt.privacy import audit
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party
from meetpunt.register import open_register
from meetpunt.register import schedule as schedule_store
from meetpunt.usecases.uc10_manual_readings import Uc10Result, approve_readings, readings_from_rows

if TYPE_CHECKING:
    from meetpunt.demo.chain import DemoRun


@dataclass
class Uc10Uc15Run:
    """What the stage did: UC10's verdicts, UC15's schedule report."""

    uc10: Uc10Result | None = None
    uc15: ScheduleReport | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def analyse(run: DemoRun, gate: Gate, party: Party, after: datetime) -> Uc10Uc15Run:
    """UC10 over ``operator/manual_readings.csv`` and the UC15 schedule over the month,
    both as of ``after`` (the morning after the month; the gate's clock is set there)."""
    out = Uc10Uc15Run()
    path = run.twin / "operator" / "manual_readings.csv"
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as f:
            readings = readings_from_rows(csv.DictReader(f), str(path))
        out.uc10 = approve_readings(gate, party, readings, after)
    out.uc15 = run_schedule(gate, party, after, since=run.settings.start)
    return out


def summary(stage: Uc10Uc15Run) -> str:
    """One line for the chain's step list."""
    readings = len(stage.uc10.verdicts) if stage.uc10 else 0
    checks = stage.uc15.checks if stage.uc15 else 0
    return f"{readings} manual readings checked, {checks} UC15 checks"


def expected_audit(run: DemoRun, stage: Uc10Uc15Run | None) -> dict[tuple[str, str, str], int]:
    """The audit records the stage must have left: one decision and one read per gate
    request of UC10 and per UC15 check (a refusal is an outcome of its own)."""
    if stage is None:
        return {}
    reads = sum(v.reads for v in stage.uc10.verdicts) if stage.uc10 else 0
    uc10_refused = sum(1 for v in stage.uc10.verdicts if v.rules) if stage.uc10 else 0
    checks = stage.uc15.checks - stage.uc15.outcomes.get("refused", 0) if stage.uc15 else 0
    refused = stage.uc15.outcomes.get("refused", 0) if stage.uc15 else 0
    return {
        ("UC10", "decision", "granted"): reads,
        ("UC10", "read", "read"): reads,
        ("UC10", "decision", "refused"): uc10_refused,
        ("UC15", "decision", "granted"): checks,
        ("UC15", "read", "read"): checks,
        ("UC15", "decision", "refused"): refused,
    }


def score_uc10(result: Uc10Result, twin: Path) -> Score:
    """UC10 against ``truth/manual_readings.parquet``: misreads caught, false alarms of
    ours and of the naive baseline (right readings flagged)."""
    truth = {
        str(r["reading_id"]): str(r["misread"] or "")
        for r in pq.read_table(twin / "truth" / "manual_readings.parquet").to_pylist()
    }
    mis = [v for v in result.verdicts if truth.get(v.reading_id)]
    right = [v for v in result.verdicts if not truth.get(v.reading_id)]
    caught = sum(v.flagged for v in mis)
    false_alarms = sum(v.flagged for v in right)
    naive_false = sum(v.naive_flagged for v in right)
    naive_flagged = sum(v.naive_flagged for v in result.verdicts)
    misses = [
        f"{v.reading_id} ({v.ean}): {truth[v.reading_id]} not caught ({v.basis})"
        for v in mis
        if not v.flagged
    ] + [f"{v.reading_id} ({v.ean}): right reading flagged ({v.basis})" for v in right if v.flagged]
    by_kind: Counter[str] = Counter()  # per misread kind (not a fault class of by_case)
    for v in mis:
        by_kind[f"truth_{truth[v.reading_id]}"] += 1
        by_kind[f"caught_{truth[v.reading_id]}"] += int(v.flagged)
    share = caught / len(mis) if mis else 1.0
    return Score(
        "UC10",
        f"{len(result.verdicts)} manual readings: {sum(v.approved for v in result.verdicts)} "
        f"approved, {sum(v.flagged for v in result.verdicts)} flagged",
        f"{caught}/{len(mis)} misreads caught ({share:.1%}); false alarms {false_alarms} "
        f"(naive check: {naive_false} of its {naive_flagged} flags are right readings)",
        caught + len(right) - false_alarms,
        len(result.verdicts),
        misses=tuple(misses),
        counts={
            "readings": len(result.verdicts),
            "approved": sum(v.approved for v in result.verdicts),
            "flagged": sum(v.flagged for v in result.verdicts),
            "gate_reads": sum(v.reads for v in result.verdicts),
        },
        metrics={
            "misreads_truth": len(mis),
            "misreads_caught": caught,
            "misreads_caught_share": round(share, 4),
            "false_alarms": false_alarms,
            "naive_false_alarms": naive_false,
            "naive_flagged": naive_flagged,
            "right_readings": len(right),
            **{k: float(n) for k, n in sorted(by_kind.items())},
        },
    )


def _contract_starts(twin: Path, since: date) -> dict[str, date]:
    """The twin's contracts starting inside the run (register file = the truth of it)."""
    out: dict[str, date] = {}
    with (twin / "register" / "contracts.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            start = date.fromisoformat(row["start_date"])
            if row["commodity"] == "electricity" and start > since:
                out[row["ean"]] = min(start, out.get(row["ean"], start))
    return out


def score_uc15(run: DemoRun, truth: Truth) -> Score:
    """UC15 against the twin: contractless and out-of-service consuming connections with
    a smart meter found consuming; reads on or after a contract's start (must be 0)."""
    readable: set[str] = set()
    ping_only: set[str] = set()
    register = open_register(run.db_url)
    try:
        with register.session() as s:
            runs = schedule_store.runs(s.db, "UC15")
            records = [
                r.entry
                for r in audit.records(s.db)
                if r.entry.purpose == "UC15" and r.entry.event == "read"
            ]
    finally:
        register.dispose()
    groups = {r.ean: r.group for r in runs}
    for c in truth.connections:
        if c["meter"] == "ferraris" or not (c["contractless"] or c["out_of_service_consuming"]):
            continue
        if groups.get(str(c["ean"])) == "out_of_service_off":
            ping_only.add(str(c["ean"]))
        else:
            readable.add(str(c["ean"]))
    found = {r.ean for r in runs if r.outcome == "consuming"}
    starts = _contract_starts(run.twin, run.settings.start)
    after_stop = [
        e
        for e in records
        if e.period_start is not None
        and any(
            ean in starts and to_local(e.period_start).date() >= starts[ean]
            for ean in e.connections
        )
    ]
    outcomes = Counter(r.outcome for r in runs)
    misses = [f"{ean}: consuming, not found" for ean in sorted(readable - found)]
    misses += [f"{ean}: found consuming, not in the truth" for ean in sorted(found - readable)]
    misses += [
        f"read {e.connections} on {e.period_start} after its contract started" for e in after_stop
    ]
    stopped = sum(1 for r in runs if r.outcome == "stopped")
    return Score(
        "UC15",
        f"{len(groups)} watches, {sum(outcomes.values())} checks "
        f"({', '.join(f'{n} {k}' for k, n in sorted(outcomes.items()))})",
        f"{len(found & readable)}/{len(readable)} consuming connections found; "
        f"{len(after_stop)} reads after a stop; {len(ping_only)} only pinged (admin off)",
        len(found & readable) + (1 if not after_stop else 0),
        len(readable) + 1,
        misses=tuple(misses),
        counts={
            "watches": len(groups),
            "checks": sum(outcomes.values()),
            "stopped": stopped,
            **{f"outcome_{k}": float(n) for k, n in sorted(outcomes.items())},
        },
        metrics={
            "consuming_truth": len(readable),
            "consuming_found": len(found & readable),
            "consuming_false": len(found - readable),
            "ping_only_truth": len(ping_only),
            "reads_after_stop": len(after_stop),
        },
    )


def scores(run: DemoRun, truth: Truth, stage: Uc10Uc15Run | None) -> list[Score]:
    """The stage's scores (none when it did not run)."""
    if stage is None:
        return []
    out: list[Score] = []
    if stage.uc10 is not None:
        out.append(score_uc10(stage.uc10, run.twin))
    out.append(score_uc15(run, truth))
    return out


def as_json(stage: Uc10Uc15Run | None) -> dict[str, Any]:
    """The stage's raw results for the report files."""
    if stage is None:
        return {}
    return {
        "uc10": None if stage.uc10 is None else stage.uc10.as_dict(),
        "uc15": None if stage.uc15 is None else stage.uc15.as_dict(),
    }
