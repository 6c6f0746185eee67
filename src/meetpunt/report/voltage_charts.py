"""UC2 and UC3 pictures (issue 18), drawn as Vega-Altair charts by :mod:`.charts`.

``feeder_events``: UC2's voltage events per feeder, ranked, under- and over-voltage
stacked, the notable feeders marked. ``phase_voltages``: UC3's 10-minute voltage per
phase of one connection over the window, with the band (207 and 253 V) and the
operator's inverter limit drawn as lines.
"""

from __future__ import annotations

from typing import Any

import altair as alt

from meetpunt.usecases.uc02_voltage_quality import Uc02Result
from meetpunt.usecases.uc03_seasonal import Uc03Result


def _data(rows: list[dict[str, Any]]) -> Any:
    """Inline rows as a chart's data."""
    return alt.Data(values=rows)  # type: ignore[no-untyped-call]


def feeder_events(result: Uc02Result, top: int = 20) -> Any:
    """A ranked bar chart of the ``top`` feeders by events (UC2)."""
    rows: list[dict[str, Any]] = []
    for rank, f in enumerate(result.ranking.feeders[:top], start=1):
        label = f"{rank}. {f.name}" + (" (notable)" if f.notable else "")
        rows.append({"feeder": label, "kind": "under-voltage (sag)", "events": f.sags})
        rows.append({"feeder": label, "kind": "over-voltage (swell)", "events": f.swells})
    order = [r["feeder"] for r in rows[::2]]
    return (
        alt.Chart(_data(rows))
        .mark_bar()
        .encode(
            x=alt.X("events:Q", title="voltage events in the period (counter deltas)"),
            y=alt.Y("feeder:N", sort=order, title=None),
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(range=["#1f77b4", "#d62728"]),
                legend=alt.Legend(orient="bottom", title=None),
            ),
        )
        .properties(
            width=520,
            height=max(120, 18 * len(order)),
            title=f"UC2: voltage events per feeder, {result.days_text}",
        )
    )


def worst_connection(result: Uc03Result) -> str | None:
    """The picture's subject: the EAN with the most trip episodes, then the most minutes
    beyond any limit."""
    episodes: dict[str, int] = {}
    minutes: dict[str, int] = {}
    for e in result.episodes:
        episodes[e.ean] = episodes.get(e.ean, 0) + 1
    for b in result.breaks:
        minutes[b.ean] = minutes.get(b.ean, 0) + b.minutes
    eans = set(episodes) | set(minutes)
    if not eans:
        return None
    return max(eans, key=lambda e: (episodes.get(e, 0), minutes.get(e, 0), e))


def phase_voltages(result: Uc03Result, ean: str, connection_id: int) -> Any:
    """Line chart of ``ean``'s 10-minute voltage per phase over the window, with the
    band and the inverter limit as horizontal lines and trip episodes shaded (UC3)."""
    table = result.voltages
    rows: list[dict[str, Any]] = []
    if table is not None:
        for cid, start, phase, v in zip(
            table.column("connection").to_pylist(),
            table.column("start").to_pylist(),
            table.column("phase").to_pylist(),
            table.column("voltage_v").to_pylist(),
            strict=True,
        ):
            if cid == connection_id and v:
                rows.append({"time": start.isoformat(), "phase": f"L{phase}", "voltage_v": v})
    limits = [
        {"limit": "207 V (band)", "v": 207.0},
        {"limit": "253 V (band)", "v": 253.0},
        {
            "limit": f"{result.inverter_limit_v:g} V ({result.operator} inverter)",
            "v": result.inverter_limit_v,
        },
    ]
    episodes = [
        {"start": e.start.isoformat(), "end": e.end.isoformat()}
        for e in result.episodes
        if e.ean == ean
    ]
    lines = (
        alt.Chart(_data(rows))
        .mark_line(strokeWidth=1)
        .encode(
            x=alt.X("time:T", title="time (UTC)", axis=alt.Axis(format="%d %b", tickCount=10)),
            y=alt.Y("voltage_v:Q", title="10-minute mean voltage (V)", scale=alt.Scale(zero=False)),
            color=alt.Color("phase:N", legend=alt.Legend(orient="bottom")),
        )
    )
    rules = (
        alt.Chart(_data(limits))
        .mark_rule(strokeDash=[6, 3])
        .encode(y="v:Q", color=alt.value("#555"), tooltip=["limit:N"])
    )
    labels = (
        alt.Chart(_data(limits))
        .mark_text(align="left", dx=4, dy=-6, fontSize=10, color="#555")
        .encode(y="v:Q", x=alt.value(0), text="limit:N")
    )
    layers: list[Any] = []
    if episodes:
        layers.append(
            alt.Chart(_data(episodes))
            .mark_rect(opacity=0.25, color="#ff7f0e")
            .encode(x="start:T", x2="end:T")
        )
    layers += [lines, rules, labels]
    return alt.layer(*layers).properties(
        width=640,
        height=260,
        title=f"UC3: {ean} on {result.feeder}, per phase (shaded: likely inverter trips)",
    )
