"""UC5's and UC12's pictures (issue 18), as Vega-Altair charts (:mod:`meetpunt.report.charts`).

* :func:`uc05_distributions`: per phase the share of 10-minute voltages per volt before
  and after the intervention, with the 207 and 253 V limits drawn.
* :func:`uc12_chain`: the step chain, one panel per step: the feeders' residual-current
  jumps (substation), the flagged feeders' cabinets (cable), and the departure of each
  meter phase read from its neighbours (connections), each against its threshold.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np

from meetpunt.usecases.uc05_intervention import Uc05Result
from meetpunt.usecases.uc12_unsafe import Uc12Result, Uc12Rules

LOW_V, HIGH_V = 207.0, 253.0


def uc05_distributions(result: Uc05Result, low_v: float = LOW_V, high_v: float = HIGH_V) -> Any:
    """Per phase: share of the window's 10-minute values per 1 V bin, before and after."""
    rows: list[dict[str, Any]] = []
    for phase, (before, after) in sorted(result.samples.items()):
        for window, values in (("before", before), ("after", after)):
            if not values:
                continue
            v = np.asarray(values)
            edges = np.arange(
                np.floor(min(v.min(), low_v - 2)), np.ceil(max(v.max(), high_v + 2)) + 1
            )
            counts, _ = np.histogram(v, edges)
            share = counts / counts.sum()
            rows.extend(
                {"phase": phase, "window": window, "voltage_v": float(e), "share": float(s)}
                for e, s in zip(edges[:-1], share, strict=True)
            )
    effects = {p.phase: p.effect_v for p in result.phases}
    base = alt.Chart({"values": rows})
    lines = base.mark_line(interpolate="step-after").encode(
        x=alt.X("voltage_v:Q", title="10-minute voltage (V)", scale=alt.Scale(zero=False)),
        y=alt.Y("share:Q", title="share of values", axis=alt.Axis(format="%")),
        color=alt.Color("window:N", sort=["before", "after"], title="window"),
    )
    limits = (
        alt.Chart({"values": [{"v": low_v}, {"v": high_v}]})
        .mark_rule(color="#b00", strokeDash=[4, 3])
        .encode(x="v:Q")
    )
    panels = []
    for phase in sorted(result.samples):
        effect = effects.get(phase)
        title = f"{phase}: effect {effect:+.2f} V" if effect is not None else phase
        panels.append(
            alt.layer(lines.transform_filter(alt.datum.phase == phase), limits).properties(
                width=220, height=160, title=title
            )
        )
    note = result.intervention
    return alt.hconcat(*panels).properties(
        title=f"UC5 {note.kind} on {note.feeder or note.substation} ({note.day}): before and after"
    )


def uc12_chain(result: Uc12Result, rules: Uc12Rules | None = None) -> Any:
    """Three panels: substation (feeders), cable (cabinets), connections (meter phases)."""
    rules = rules or Uc12Rules()
    panels = []
    first = next((s for s in result.steps if s.name == "substation"), None)
    second = next((s for s in result.steps if s.name == "cable"), None)
    if first is not None:
        rows = [{"x": f.feeder, "y": f.jump_a, "points": f.points} for f in first.looked_at]
        panels.append(
            _bars(rows, rules.residual_jump_a, "1 substation: residual jumps (A)", "feeder")
        )
    if second is not None:
        rows = [
            {"x": f"{f.feeder}/{f.cabinet}", "y": f.jump_a, "points": f.points}
            for f in second.looked_at
        ]
        panels.append(_bars(rows, rules.residual_jump_a, "2 cable: residual jumps (A)", "cabinet"))
    if result.meters:
        rows = [
            {"x": f"{m.ean[-6:]} L{m.phase}", "y": m.deviation_v, "points": m.unsafe}
            for m in result.meters
        ]
        panels.append(
            _bars(rows, rules.deviation_v, "3 connections: departure from neighbours (V)", "meter")
        )
    return alt.hconcat(*panels).properties(
        title=f"UC12 step chain: visit {', '.join(result.visit) or 'nobody'}"
    )


def _bars(rows: list[dict[str, Any]], threshold: float, title: str, what: str) -> Any:
    bars = (
        alt.Chart({"values": rows})
        .mark_bar()
        .encode(
            x=alt.X("x:N", title=what, sort=None),
            y=alt.Y("y:Q", title=None),
            color=alt.Color(
                "points:N",
                scale=alt.Scale(domain=[False, True], range=["#9ab", "#c40"]),
                title="points further",
            ),
        )
    )
    rule = (
        alt.Chart({"values": [{"t": threshold}]})
        .mark_rule(color="#b00", strokeDash=[4, 3])
        .encode(y="t:Q")
    )
    return alt.layer(bars, rule).properties(width=max(120, 14 * len(rows)), height=160, title=title)
