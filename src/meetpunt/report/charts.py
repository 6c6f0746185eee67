"""Static pictures for reports: Vega-Altair charts rendered to SVG or PNG.

One way of drawing for every use case (issue 18: "no hand-drawn charts"). A chart is
built with Vega-Altair (a declarative Vega-Lite spec, so a web page can later show the
same spec interactively) and rendered here by vl-convert, which bundles the Vega
renderer and needs neither a browser nor the internet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import altair as alt
import vl_convert as vlc

# Charts may hold a whole feeder's 10-minute series; Altair's default refuses > 5,000 rows.
alt.data_transformers.disable_max_rows()


def svg(chart: Any) -> str:
    """The chart as an SVG document (text), e.g. to embed in an HTML report."""
    return str(vlc.vegalite_to_svg(_spec(chart)))


def png(chart: Any, scale: float = 2.0) -> bytes:
    """The chart as PNG bytes; ``scale`` 2 gives print resolution."""
    return bytes(vlc.vegalite_to_png(_spec(chart), scale=scale))


def save(chart: Any, path: Path) -> Path:
    """Write the chart to ``path`` as SVG or PNG by its suffix; returns the path."""
    suffix = path.suffix.lower()
    if suffix == ".svg":
        path.write_text(svg(chart), encoding="utf-8")
    elif suffix == ".png":
        path.write_bytes(png(chart))
    else:
        raise ValueError(f"{path}: a chart is saved as .svg or .png, not {suffix or 'no suffix'}")
    return path


def _spec(chart: Any) -> str:
    """The Vega-Lite JSON of an Altair chart (or a spec given as a dict or JSON text)."""
    if isinstance(chart, str):
        return chart
    if isinstance(chart, dict):
        import orjson

        return orjson.dumps(chart).decode()
    return str(chart.to_json())
