"""UC7 in the demo: each substation's cables and phases from the last days' voltages,
scored against the twin's truth (issue 19)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from meetpunt.demo.score import Score
from meetpunt.domain.calendar import local_midnight_utc, to_local
from meetpunt.privacy.gate import Gate
from meetpunt.privacy.model import Party, Period
from meetpunt.usecases.uc07_gis_topology import (
    FEEDER_DIFFERS,
    PHASE_DIFFERS,
    UNDECIDED,
    Placement,
    Uc07Result,
    find_topology,
    in_population,
)

FLAGS = (PHASE_DIFFERS, FEEDER_DIFFERS)


@dataclass(frozen=True)
class Uc07Score:
    """UC7 against the twin's truth: the keys issue 19 names."""

    connections: int
    single_phase_connections: int
    phase_right: float | None
    gis_phase_errors: int
    gis_phase_errors_found: int
    gis_feeder_errors: int
    gis_feeder_errors_found: int
    false_flags: int
    undecided: int

    @property
    def false_flag_rate(self) -> float | None:
        return None if not self.connections else self.false_flags / self.connections

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "single_phase_connections": self.single_phase_connections,
            "phase_right": None if self.phase_right is None else round(self.phase_right, 4),
            "gis_phase_errors": self.gis_phase_errors,
            "gis_phase_errors_found": self.gis_phase_errors_found,
            "gis_feeder_errors": self.gis_feeder_errors,
            "gis_feeder_errors_found": self.gis_feeder_errors_found,
            "false_flags": self.false_flags,
            "false_flag_rate": None
            if self.false_flag_rate is None
            else round(self.false_flag_rate, 4),
            "undecided": self.undecided,
        }


def score_placements(
    placements: Iterable[Placement], truth: Iterable[Mapping[str, Any]]
) -> Uc07Score:
    """Score UC7's placements against the truth's connections (``ean``, ``feeder``,
    ``phase``, ``registered_feeder``, ``registered_phase``). ``phase_right`` is the
    share of single-phase connections whose found phase is the true one (an undecided
    one is not right); an error is found when UC7 flags it with the true value; a false
    flag is a flag on a connection the register has right, or a flag naming a wrong value."""
    rows = {r["ean"]: r for r in truth}
    placed = [p for p in placements if p.ean in rows]
    single = [p for p in placed if rows[p.ean]["phase"] is not None]
    right = sum(p.found_phase == rows[p.ean]["phase"] for p in single)
    phase_err = feeder_err = phase_found = feeder_found = false = 0
    for p in placed:
        t = rows[p.ean]
        wrong_feeder = t["registered_feeder"] != t["feeder"]
        wrong_phase = t["phase"] is not None and t["registered_phase"] != t["phase"]
        phase_err += wrong_phase
        feeder_err += wrong_feeder
        hit = p.found_feeder == t["feeder"] and p.found_phase == t["phase"]
        if p.verdict == PHASE_DIFFERS and wrong_phase and hit:
            phase_found += 1
        elif p.verdict == FEEDER_DIFFERS and wrong_feeder and p.found_feeder == t["feeder"]:
            feeder_found += 1
        elif p.verdict in FLAGS:
            false += 1
    return Uc07Score(
        len(placed),
        len(single),
        right / len(single) if single else None,
        phase_err,
        phase_found,
        feeder_err,
        feeder_found,
        false,
        sum(p.verdict == UNDECIDED for p in placed),
    )


def merge(scores: Sequence[Uc07Score]) -> Uc07Score:
    """Scores of several substations as one."""
    single = sum(s.single_phase_connections for s in scores)
    right = sum((s.phase_right or 0.0) * s.single_phase_connections for s in scores)
    return Uc07Score(
        sum(s.connections for s in scores),
        single,
        right / single if single else None,
        sum(s.gis_phase_errors for s in scores),
        sum(s.gis_phase_errors_found for s in scores),
        sum(s.gis_feeder_errors for s in scores),
        sum(s.gis_feeder_errors_found for s in scores),
        sum(s.false_flags for s in scores),
        sum(s.undecided for s in scores),
    )


UC7_DAYS = 10
"""UC7 reads at most 10 days (``use_case_catalogue``): the demo takes the month's last."""


def uc07_period(period: Period) -> Period:
    """The last :data:`UC7_DAYS` local days of the demo's period (all of it if shorter)."""
    last = to_local(period.end).date()
    first = max(to_local(period.start).date(), last - timedelta(days=UC7_DAYS))
    return Period(local_midnight_utc(first), period.end)


def run_uc07(
    gate: Gate,
    party: Party,
    period: Period,
    at: datetime,
    work: Path,
    stations: pa.Table | None = None,
) -> list[Uc07Result]:
    """UC7 for every substation of the register (one gate request each), over
    :func:`uc07_period`; each read copy is deleted after its analysis (PRV-5).
    ``stations`` are the operator's substation measurements (the twin's ``operator/``),
    UC7's second signal."""
    day = to_local(period.start).date()
    substations = sorted(
        {
            v.attributes.grid.substation
            for v in gate.register_view.connection_versions(day)
            if in_population(v) and v.attributes.grid.substation
        }
    )
    span = uc07_period(period)
    trigger = f"GIS review of {day:%B %Y}: cable and phase from voltages"
    return [
        find_topology(gate, party, sub, span, at, trigger, work, stations=stations)
        for sub in substations
    ]


def expected_audit(results: Sequence[Uc07Result]) -> dict[tuple[str, str, str], int]:
    """What the audit log must hold for the demo's UC7 runs: per substation one
    decision, one read, one deletion of the read copy (PRV-5, PRV-7)."""
    n = len(results)
    return {
        ("UC7", "decision", "granted"): n,
        ("UC7", "read", "read"): n,
        ("UC7", "retention", "deleted"): sum(len(r.deleted) for r in results),
    }


def score_uc07(results: Sequence[Uc07Result], connections: Iterable[Mapping[str, Any]]) -> Score:
    """UC7 against the twin's truth (issue 19): the scored keys as metrics; correct =
    connections placed on their true feeder and phase; every flag that is not a real
    GIS error, every error not found, is a miss."""
    rows = {str(r["ean"]): r for r in connections}
    placements = [p for r in results for p in r.connections]
    s = score_placements(placements, rows.values())
    misses: list[str] = []
    correct = 0
    for p in placements:
        t = rows.get(p.ean)
        if t is None:
            continue
        right = p.found_feeder == t["feeder"] and p.found_phase == t["phase"]
        correct += right
        wrong = t["registered_feeder"] != t["feeder"] or t["registered_phase"] != t["phase"]
        if wrong and p.verdict not in FLAGS:
            misses.append(
                f"{p.ean}: GIS error not flagged (registered {p.registered_feeder} "
                f"{p.registered_phase or '3-phase'}, true {t['feeder']} {t['phase'] or '3-phase'}; "
                f"{p.verdict} {p.reason})".strip()
            )
        elif p.verdict in FLAGS and not right:
            misses.append(f"{p.ean}: {p.verdict} to {p.found_feeder} {p.found_phase}, wrong")
        elif p.verdict in FLAGS and not wrong:
            misses.append(f"{p.ean}: false flag {p.verdict}")
    d = s.as_dict()
    found = s.gis_phase_errors_found + s.gis_feeder_errors_found
    errors = s.gis_phase_errors + s.gis_feeder_errors
    phase_right = "-" if s.phase_right is None else f"{100 * s.phase_right:.1f} %"
    return Score(
        "UC7",
        f"{len(results)} substations, {s.connections} connections, {found} GIS errors flagged, "
        f"{s.undecided} undecided",
        f"phase right {phase_right}; {found}/{errors} GIS errors found, "
        f"{s.false_flags} false flags",
        correct,
        s.connections,
        tuple(misses),
        counts={
            "substations": len(results),
            "connections": s.connections,
            "undecided": s.undecided,
        },
        metrics={k: v for k, v in d.items() if v is not None},
    )


def picture(result: Uc07Result, feeder: str | None = None) -> Any:
    """The use-case list's picture (issue 19): the mean voltage along the row of houses
    on one cable, per phase, as registered (a wrong phase makes its line zig-zag) and as
    UC7 found it (each phase gradual). ``feeder`` defaults to the one with the most
    proposed corrections. Single-phase connections only; an Altair chart."""
    import altair as alt

    placed = [p for p in result.connections if p.registered_phase and p.mean_v is not None]
    if feeder is None:
        flagged = [p.registered_feeder for p in result.corrections] or [
            p.registered_feeder for p in placed
        ]
        feeder = max(sorted(set(flagged)), key=flagged.count) if flagged else ""
    rows: list[dict[str, Any]] = []
    for p in placed:
        if p.registered_feeder == feeder:
            rows.append(_row(p, "as registered", p.registered_phase))
        if (p.found_feeder or p.registered_feeder) == feeder:
            rows.append(_row(p, "as UC7 found", p.found_phase or p.registered_phase))
    data = alt.Data(values=rows)  # type: ignore[no-untyped-call]
    base = alt.Chart(data).encode(
        x=alt.X("position:Q", title="house number along the cable"),
        y=alt.Y("mean_v:Q", title="mean voltage (V)", scale=alt.Scale(zero=False)),
        color=alt.Color("phase:N", title="phase"),
    )
    layered = base.mark_line(opacity=0.6) + base.mark_point(filled=True).encode(
        shape=alt.Shape("flagged:N", title="UC7 proposes a correction")
    )
    return layered.properties(width=360, height=220).facet(
        column=alt.Column(
            "view:N",
            title=f"{result.substation} cable {feeder}",
            sort=["as registered", "as UC7 found"],
        )
    )


def _row(p: Placement, view: str, phase: str | None) -> dict[str, Any]:
    return {
        "position": p.position,
        "mean_v": round(p.mean_v or 0.0, 2),
        "phase": phase or "?",
        "view": view,
        "flagged": "yes" if p.verdict in FLAGS else "no",
        "ean": p.ean,
    }


def report_context(results: Sequence[Uc07Result]) -> dict[str, Any]:
    """What the HTML report shows of UC7: the GIS correction table for a GIS clerk and
    the picture of the cable with the most corrections (SVG)."""
    from meetpunt.report.charts import svg
    from meetpunt.report.html import picture as inline

    corrections = [
        {
            "substation": r.substation,
            "ean": p.ean,
            "registered": f"{p.registered_feeder} {p.registered_phase or '3-phase'}",
            "found": f"{p.found_feeder} {p.found_phase or '3-phase'}",
            "confidence": f"{p.confidence:.2f}",
            "verdict": p.verdict,
        }
        for r in results
        for p in r.corrections
    ]
    busiest = max(results, key=lambda r: len(r.corrections), default=None)
    return {
        "corrections": corrections,
        "undecided": sum(p.verdict == UNDECIDED for r in results for p in r.connections),
        "picture": None if busiest is None else inline(svg(picture(busiest))),
    }
