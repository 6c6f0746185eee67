"""The chart helper renders real SVG and PNG and refuses a suffix it cannot write."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import pytest

from meetpunt.report import charts


def _chart() -> alt.Chart:
    data = pd.DataFrame({"feeder": ["A", "B", "C"], "events": [12, 3, 7]})
    return alt.Chart(data).mark_bar().encode(x="feeder:N", y="events:Q")


def test_svg_holds_the_bars() -> None:
    text = charts.svg(_chart())
    assert text.lstrip().startswith("<svg")
    assert text.count("<path") >= 3  # one mark per bar at least


def test_save_png_writes_a_png(tmp_path: Path) -> None:
    path = charts.save(_chart(), tmp_path / "events.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_refuses_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        charts.save(_chart(), tmp_path / "events.pdf")
