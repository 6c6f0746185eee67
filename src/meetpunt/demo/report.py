"""The demo's HTML report: the summary, each use case's findings, the outage maps
(UC4's picture) and the audit log, in one self-contained file.

The page is built from plain rows here and rendered by the packaged
``demo_report.html.j2`` template; the maps are also written as ``maps/<outage>.svg``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meetpunt.demo import grid_checks
from meetpunt.demo.score import EXTENT, Truth, truth_outage_of
from meetpunt.demo.uc07 import report_context
from meetpunt.demo.voltage import pictures
from meetpunt.domain.calendar import to_local
from meetpunt.report.html import picture, render
from meetpunt.report.outage_map import render_outage_map
from meetpunt.usecases.uc04_outage_compensation import INTERRUPTED, NOT_INTERRUPTED, UNKNOWN

if TYPE_CHECKING:
    from meetpunt.demo.chain import DemoRun


def local(moment: datetime) -> str:
    """A moment as local (Europe/Amsterdam) wall time, to the minute."""
    return to_local(moment).strftime("%Y-%m-%d %H:%M")


def hours(span: timedelta | float) -> str:
    """A duration as h:mm (seconds or a timedelta)."""
    seconds = int(span.total_seconds() if isinstance(span, timedelta) else span)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}"


def _uc1_rows(run: DemoRun, truth: Truth) -> list[dict[str, Any]]:
    rows = []
    for r in run.uc1:
        outage = truth_outage_of(truth, r.ean, r.at)
        expected = EXTENT[str(outage["extent"])] if outage else None
        rows.append(
            {
                "at": local(r.at),
                "reporter": r.ean,
                "classification": r.classification.replace("_", " "),
                "crew": r.crew or "-",
                "asked": len(r.asked),
                "dark": sum(f.dark for f in r.feeders),
                "lit": sum(f.lit for f in r.feeders),
                "unknown": sum(f.unknown for f in r.feeders),
                "truth": (expected or "none").replace("_", " "),
                "ok": expected == r.classification,
                "evidence": "; ".join(r.verdict.evidence),
                "suspects": len(r.suspected_gis_errors),
            }
        )
    return rows


def _uc4_context(run: DemoRun) -> dict[str, Any]:
    result = run.require_uc4()
    maps = {m.outage_id: m for m in result.maps}
    folder = run.settings.folder / "maps"
    folder.mkdir(parents=True, exist_ok=True)
    outages = []
    for o in result.outages:
        m = maps.get(o.id)
        svg = ""
        if m is not None:
            svg = render_outage_map(m)
            (folder / f"{o.id}.svg").write_text(svg, encoding="utf-8")
        outages.append(
            {
                "id": o.id,
                "substation": o.substation,
                "feeders": ", ".join(o.feeders),
                "level": str(o.grid_level),
                "start": local(o.start),
                "duration": hours(o.duration),
                "planned": o.planned is not None,
                "logged": o.logged,
                "paid": sum(1 for p in result.payments if p.outage_id == o.id),
                "reviewed": sum(1 for r in result.reviews if r.outage_id == o.id),
                "map": picture(svg) if svg else None,
                "counts": {
                    s: (m.count(s) if m else 0) for s in (INTERRUPTED, NOT_INTERRUPTED, UNKNOWN)
                },
            }
        )
    return {
        "outages": outages,
        "payments": [
            {
                "ean": p.ean,
                "customer": p.customer,
                "address": p.address,
                "outage": p.outage_id,
                "duration": hours(p.duration),
                "class": p.compensation.class_id,
                "amount": f"{p.amount:.2f}",
                "source": p.compensation.duration_source,
            }
            for p in result.payments
        ],
        "reviews": [
            {"ean": r.ean, "outage": r.outage_id, "reason": r.reason} for r in result.reviews
        ],
        "total": f"{result.total:.2f}",
        "letter": result.letters[0].text if result.letters else "",
        "scheme": result.scheme_version,
    }


def _uc9_context(run: DemoRun) -> dict[str, Any]:
    result = run.require_uc9()
    f = result.figures
    figures = [
        ("customers served (N)", f"{f.customers_served:,}"),
        ("customer interruptions (CI)", f"{f.customer_interruptions:,}"),
        ("customer minutes lost (CML)", f"{f.customer_minutes_lost:,.1f}"),
        ("SAIFI = CI / N", "-" if f.saifi is None else f"{f.saifi:.4f}"),
        ("CAIDI = CML / CI (min)", "-" if f.caidi_min is None else f"{f.caidi_min:.2f}"),
        ("SAIDI = CML / N (min, period)", "-" if f.saidi_min is None else f"{f.saidi_min:.2f}"),
        (
            "SAIDI per year (min)",
            "-" if f.saidi_min_per_year is None else f"{f.saidi_min_per_year:.2f}",
        ),
    ]
    return {
        "outages": [
            {
                "id": o.id,
                "substation": o.substation,
                "feeders": ", ".join(o.feeders),
                "customers": o.affected,
                "start": local(o.start),
                "end": local(o.end),
                "duration": hours(o.duration_s),
                "source": o.source,
            }
            for o in result.outages
        ],
        "figures": figures,
    }


def _audit_context(run: DemoRun) -> dict[str, Any]:
    summary = run.require_audit()
    keys = sorted(set(summary.counts) | set(summary.expected))
    return {
        "rows": [
            {
                "purpose": k[0],
                "event": k[1],
                "outcome": k[2],
                "count": summary.counts.get(k, 0),
                "expected": summary.expected.get(k, 0),
            }
            for k in keys
        ],
        "findings": list(summary.findings),
        "head": f"{summary.head[0]}:{summary.head[1]}",
        "as_expected": summary.as_expected,
    }


def write_report(run: DemoRun, truth: Truth, began: datetime) -> Path:
    """Render the report to ``report.html`` in the demo folder (maps to ``maps/``)."""
    s = run.settings
    refusal = run.refusal
    html = render(
        "demo_report.html.j2",
        generated=local(began),
        settings={
            "connections": s.connections,
            "days": s.days,
            "start": s.start.isoformat(),
            "seed": s.seed,
            "faults": s.faults,
            "folder": str(s.folder),
        },
        steps=[
            {"name": x.name, "seconds": f"{x.seconds:.1f}", "summary": x.summary} for x in run.steps
        ],
        total=f"{sum(x.seconds for x in run.steps):.1f}",
        scores=[
            {
                "use_case": x.use_case,
                "found": x.found,
                "accuracy": x.accuracy,
                "seconds": f"{run.seconds.get(x.use_case, 0.0):.1f}",
                "perfect": x.perfect,
                "misses": list(x.misses),
            }
            for x in run.scores
        ],
        refusal=None
        if refusal is None
        else [{"rule": f.rule, "message": f.message} for f in refusal.findings],
        uc1=_uc1_rows(run, truth),
        uc4=_uc4_context(run),
        uc9=_uc9_context(run),
        uc7=report_context(run.uc7),
        audit=_audit_context(run),
        grid_checks=grid_checks.section(run.grid_checks, s.folder),
        voltage=None if run.voltage is None else pictures(run.voltage, s.folder / "voltage"),
    )
    path = s.folder / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
