"""The demo's UC5 and UC12 stage (issue 18): run them through the gate, score them
against the twin's truth, and draw their pictures for the report.

UC5 assesses the twin's intervention (``operator/interventions.csv``) with a before and
an after read; UC12 walks its step chain over the operator's substation and cabinet
measurements of the month, then reads the pointed section's meters. Hooks: ``chain``
calls :func:`run_stage` inside the gate, :func:`expected_audit` in the audit check and
:func:`scores` in the scoring; ``report`` inlines :func:`section`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq
from markupsafe import Markup

from meetpunt.demo.score import Score, Truth
from meetpunt.domain.calendar import to_local
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Period
from meetpunt.report import charts
from meetpunt.report.grid_check_charts import uc05_distributions, uc12_chain
from meetpunt.report.html import picture
from meetpunt.usecases.uc05_intervention import (
    InterventionNote,
    SeriesEffect,
    Uc05Result,
    assess_intervention,
    read_interventions,
)
from meetpunt.usecases.uc12_unsafe import Uc12Result, find_unsafe, read_cabinets

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

GOAL_V = 0.5
"""Issue 18: UC5's estimate within 0.5 V of the true effect."""


@dataclass
class GridChecks:
    """What the stage did."""

    uc5: Uc05Result | None = None
    uc12: Uc12Result | None = None
    uc5_skipped: str = ""


def fitting_days(note: InterventionNote, period: Period) -> int:
    """The longest window (at most 10 days) such that both reads fall inside ``period``."""
    days_before = (note.day - to_local(period.start).date()).days
    days_after = (to_local(period.end).date() - note.day).days - 1
    return max(0, min(10, days_before, days_after))


def run_stage(
    gate: Gate, party: Party, twin: Path, period: Period, set_clock: Callable[[datetime], None]
) -> GridChecks:
    """UC5 (when the twin made an intervention) and UC12 over the twin's month."""
    operator = twin / "operator"
    stations = pq.read_table(operator / "substation_measurements.parquet")
    out = GridChecks()
    notes = read_interventions(operator / "interventions.csv")
    after = period.end + timedelta(hours=8)
    if notes and (days := fitting_days(notes[0], period)) >= 1:
        set_clock(after)
        out.uc5 = assess_intervention(gate, party, notes[0], stations, days=days)
    else:
        out.uc5_skipped = "no intervention in the period"
    set_clock(after)
    versions = gate.register_view.connection_versions(
        to_local(period.end).date() - timedelta(days=1)
    )
    smart = {
        v.ean: None if v.attributes.grid.phase is None else int(v.attributes.grid.phase.value[1])
        for v in versions
        if v.commodity is Commodity.ELECTRICITY and v.attributes.meter_type is MeterType.SMART
    }
    out.uc12 = find_unsafe(
        gate,
        party,
        stations,
        pq.read_table(operator / "cabinet_measurements.parquet"),
        read_cabinets(operator / "cable_cabinets.csv"),
        period,
        after,
        smart=smart,
    )
    return out


def expected_audit(checks: GridChecks | None) -> dict[tuple[str, str, str], int]:
    """The audit records the stage leaves (PRV-7): UC5 two decisions and two reads;
    UC12 one finding per step that pointed further (one per pointed section at the cable
    step), and per section with smart meters one decision and two reads."""
    if checks is None:
        return {}
    out: dict[tuple[str, str, str], int] = {}
    if checks.uc5 is not None:
        out[("UC5", "decision", "granted")] = 2
        out[("UC5", "read", "read")] = 2
    if checks.uc12 is not None:
        flags = sum(1 for s in checks.uc12.steps if s.flag_id is not None)
        out[("UC12", "flag", "recorded")] = flags
        sections = sum(1 for r in checks.uc12.reads if r.eans)
        out[("UC12", "decision", "granted")] = sections
        out[("UC12", "read", "read")] = 2 * sections
    return {k: v for k, v in out.items() if v}


def true_effects(twin: Path, result: Uc05Result, truth: Truth) -> dict[str, float]:
    """Per grid phase the true mean effect over the same meter phases UC5 used, over its
    after window (``truth/intervention_effect``: steps-weighted daily means)."""
    return true_effects_of(twin, result.effects, truth.connections, result.after)


def true_effects_of(
    twin: Path,
    effects: Iterable[SeriesEffect],
    connections: Iterable[Mapping[str, Any]],
    after: Period,
) -> dict[str, float]:
    """:func:`true_effects` for UC5's per-series ``effects`` over ``after``, with the
    twin's truth ``connections`` (rows of ``truth/connections``); also used by
    scripts/uc05_effect.py."""
    table = pq.read_table(twin / "truth" / "intervention_effect.parquet").to_pylist()
    conn = {c["ean"]: c for c in connections}
    first, last = after.start.date(), after.end.date()
    sums: dict[tuple[int, int], list[float]] = {}
    for row in table:
        if first <= row["day"] < last:
            acc = sums.setdefault((row["connection"], row["phase"]), [0.0, 0.0])
            acc[0] += row["effect_v"] * row["steps"]
            acc[1] += row["steps"]
    per_phase: dict[str, list[float]] = {}
    for e in effects:
        c = conn.get(e.series.ean)
        if c is None:
            continue
        grid = e.series.meter_phase if c["phase"] is None else int(str(c["phase"])[1])
        total, steps = sums.get((int(c["connection"]), grid), [0.0, 0.0])
        if steps > 0:
            per_phase.setdefault(e.series.grid_phase, []).append(total / steps)
    return {ph: float(np.mean(v)) for ph, v in per_phase.items()}


def scores(checks: GridChecks | None, twin: Path, truth: Truth) -> list[Score]:
    """UC5 ``effect_error_v`` and UC12 ``unsafe_*``, ``false_alarms``, ``individual_reads``."""
    out: list[Score] = []
    if checks is None:
        return out
    r5 = checks.uc5
    if r5 is not None:
        true = true_effects(twin, r5, truth)
        errors = {
            p.phase: abs(p.effect_v - true[p.phase])
            for p in r5.phases
            if p.effect_v is not None and p.phase in true
        }
        naive = {
            p.phase: abs(p.naive_v - true[p.phase])
            for p in r5.phases
            if p.naive_v is not None and p.phase in true
        }
        worst = max(errors.values()) if errors else float("nan")
        metrics = {"effect_error_v": round(worst, 3)}
        metrics["naive_error_v"] = round(max(naive.values()), 3) if naive else float("nan")
        for p in r5.phases:
            if p.effect_v is not None:
                metrics[f"effect_{p.phase}_v"] = round(p.effect_v, 3)
            if p.phase in true:
                metrics[f"true_{p.phase}_v"] = round(true[p.phase], 3)
        note = r5.intervention
        out.append(
            Score(
                "UC5",
                f"{note.kind} on {note.feeder or note.substation}: "
                + ", ".join(
                    f"{p.phase} {p.effect_v:+.2f} V" for p in r5.phases if p.effect_v is not None
                ),
                f"largest error {worst:.2f} V against the true effect (goal < {GOAL_V} V; "
                f"without the load/weather control {metrics['naive_error_v']:.2f} V)",
                sum(1 for e in errors.values() if e < GOAL_V),
                len(errors),
                tuple(f"{ph}: off by {e:.2f} V" for ph, e in errors.items() if e >= GOAL_V),
                counts={"connections": r5.connections, "series": len(r5.effects)},
                metrics=metrics,
            )
        )
    r12 = checks.uc12
    if r12 is not None:
        unsafe = {c["ean"] for c in truth.connections if c.get("broken_neutral")}
        visit = set(r12.visit)
        found = unsafe & visit
        false = visit - unsafe
        # a broken neutral behind a meter that cannot be read: the cable step pointed
        # at its section, whose connections without a smart meter are listed to visit
        pointed = (unsafe - visit) & set(r12.unresolved)
        missed = unsafe - visit - pointed
        metrics = {
            "unsafe_truth": len(unsafe),
            "unsafe_found": len(found),
            "unsafe_pointed_no_smart_meter": len(pointed),
            "false_alarms": len(false),
            "unresolved_visits": len(r12.unresolved),
            "individual_reads": r12.individual_reads,
            "whole_feeder_reads": r12.whole_feeder_reads,
        }
        out.append(
            Score(
                "UC12",
                f"visit {', '.join(sorted(visit)) or 'nobody'}; "
                f"{r12.individual_reads} meters read of {r12.whole_feeder_reads} on the feeder(s)",
                f"{len(found)} of {len(unsafe)} broken neutrals found, {len(pointed)} more in a "
                f"section without smart meters to read, {len(false)} false alarm(s)",
                len(found) + len(pointed),
                len(unsafe) + len(false),
                tuple(f"missed {e}" for e in sorted(missed))
                + tuple(f"false alarm {e}" for e in sorted(false)),
                counts={"visit": len(visit), "unresolved": len(r12.unresolved)},
                metrics=metrics,
            )
        )
    return out


def section(checks: GridChecks | None, folder: Path) -> Markup:
    """The report's UC5 and UC12 section; the pictures also as ``charts/*.png``."""
    if checks is None:
        return Markup("")
    charts_dir = folder / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    parts: list[str] = []
    if checks.uc5 is not None:
        chart = uc05_distributions(checks.uc5)
        charts.save(chart, charts_dir / "uc05_before_after.png")
        parts.append('<h2 id="uc5">UC5 effectiveness of an intervention</h2>')
        parts.append(_uc5_table(checks.uc5))
        parts.append(f"<figure>{picture(charts.svg(chart))}</figure>")
    if checks.uc12 is not None:
        chart = uc12_chain(checks.uc12)
        charts.save(chart, charts_dir / "uc12_steps.png")
        parts.append('<h2 id="uc12">UC12 unsafe situations</h2>')
        visit = ", ".join(checks.uc12.visit) or "nobody"
        parts.append(
            f'<p>Visit: <span class="mono">{Markup.escape(visit)}</span>. '
            f"{checks.uc12.individual_reads} meters read individually, of "
            f"{checks.uc12.whole_feeder_reads} on the flagged feeder(s).</p>"
        )
        parts.append(f"<figure>{picture(charts.svg(chart))}</figure>")
    return Markup("\n".join(parts))


def _uc5_table(result: Uc05Result) -> str:
    rows = []
    for p in result.phases:
        effect = "" if p.effect_v is None else f"{p.effect_v:+.2f}"
        naive = "" if p.naive_v is None else f"{p.naive_v:+.2f}"
        rows.append(
            f"<tr><td>{p.phase}</td><td>{p.series}</td><td>{effect}</td><td>{naive}</td>"
            f"<td>{p.before.minutes_above} / {p.after.minutes_above}</td>"
            f"<td>{p.before.minutes_below} / {p.after.minutes_below}</td>"
            f"<td>{p.before.excursions} / {p.after.excursions}</td></tr>"
        )
    head = (
        "<tr><th>phase</th><th>meter phases</th><th>effect (V)</th><th>means' difference (V)</th>"
        "<th>minutes &gt; 253 V before / after</th><th>minutes &lt; 207 V</th>"
        "<th>excursions</th></tr>"
    )
    return f'<table data-testid="uc5">{head}{"".join(rows)}</table>'


def summary(checks: GridChecks) -> str:
    """The stage's one line for the console."""
    parts = []
    if checks.uc5 is not None:
        effects = ", ".join(
            f"{p.phase} {p.effect_v:+.2f} V" for p in checks.uc5.phases if p.effect_v is not None
        )
        parts.append(f"UC5 {checks.uc5.intervention.kind}: {effects}")
    else:
        parts.append(f"UC5: {checks.uc5_skipped}")
    if checks.uc12 is not None:
        parts.append(
            f"UC12: visit {len(checks.uc12.visit)}, {checks.uc12.individual_reads} meters read"
        )
    return "; ".join(parts)
