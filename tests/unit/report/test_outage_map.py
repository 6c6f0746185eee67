"""The UC4 outage map as SVG (the use-case list's picture): shapes, states, sides, escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from meetpunt.report.outage_map import RING_R, render_outage_map
from meetpunt.usecases.uc04_outage_compensation import (
    INTERRUPTED,
    NOT_INTERRUPTED,
    UNKNOWN,
    MapMeter,
    OutageMap,
)

SVG = "{http://www.w3.org/2000/svg}"
STATES = (INTERRUPTED, NOT_INTERRUPTED, UNKNOWN)


def _meter(
    ean: str,
    feeder: str,
    number: int,
    smart: bool,
    state: str,
    street: str | None = None,
    why: str = "test",
) -> MapMeter:
    return MapMeter(ean, feeder, street or feeder, number, smart, state, why)


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def _groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "data-shape" in g.attrib]


def _at(group: ET.Element) -> tuple[float, float]:
    found = re.fullmatch(r"translate\(([-\d.]+),([-\d.]+)\)", group.attrib["transform"])
    assert found, group.attrib["transform"]
    return float(found[1]), float(found[2])


def _cables(root: ET.Element) -> dict[str, ET.Element]:
    return {
        line.attrib["data-feeder"]: line
        for line in root.iter(f"{SVG}line")
        if line.attrib.get("class") == "cable"
    }


def _labels(root: ET.Element) -> set[str]:
    return {
        "".join(t.itertext())
        for t in root.iter(f"{SVG}text")
        if t.attrib.get("class") == "feeder-label"
    }


def _size(root: ET.Element) -> tuple[float, float]:
    x, y, w, h = (float(v) for v in root.attrib["viewBox"].split())
    assert (x, y) == (0, 0)
    assert (w, h) == (float(root.attrib["width"]), float(root.attrib["height"]))
    return w, h


def _counts(root: ET.Element) -> tuple[int, int, int]:
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    found = re.search(r"(\d+) interrupted, (\d+) not, (\d+) unknown", desc.text)
    assert found, desc.text
    return int(found[1]), int(found[2]), int(found[3])


def _check_meters(m: OutageMap, root: ET.Element) -> None:
    """One group per meter with the right shape, state character, and side of its cable."""
    groups = _groups(root)
    assert len(groups) == len(m.meters)
    by_ean = {x.ean: x for x in m.meters}
    assert {g.attrib["data-ean"] for g in groups} == set(by_ean)
    cables = _cables(root)
    width, height = _size(root)
    centres = set()
    for g in groups:
        meter = by_ean[g.attrib["data-ean"]]
        assert g.attrib["data-state"] == meter.state
        assert g.attrib["data-shape"] == ("circle" if meter.smart else "diamond")
        shape = f"{SVG}circle" if meter.smart else f"{SVG}polygon"
        assert g.find(shape) is not None
        assert ["".join(t.itertext()) for t in g.findall(f"{SVG}text")] == [meter.state]
        tooltip = g.find(f"{SVG}title")
        assert tooltip is not None and tooltip.text is not None
        assert meter.ean in tooltip.text and meter.why in tooltip.text
        dashed = [e for e in g.iter() if "stroke-dasharray" in e.attrib]
        assert bool(dashed) == meter.suspect
        x, y = _at(g)
        assert RING_R <= x <= width - RING_R and RING_R <= y <= height - RING_R
        cable_y = float(cables[meter.feeder].attrib["y1"])
        assert (y < cable_y) == (meter.house_number % 2 == 1)
        assert (x, y) not in centres, "two meters drawn on top of each other"
        centres.add((x, y))


K1, K2, K3 = "OS001-K1", "OS001-K2", "OS001-K3"
HAND = OutageMap(
    "o-1",
    "OS001",
    (K3,),
    (
        _meter("a1", K1, 1, True, NOT_INTERRUPTED),
        _meter("a2", K1, 2, False, NOT_INTERRUPTED),
        _meter("b1", K3, 1, True, INTERRUPTED),
        _meter("b2", K3, 2, False, INTERRUPTED),
        _meter("b3", K3, 3, False, UNKNOWN),
        _meter("b4", K3, 4, True, INTERRUPTED),
        _meter("b5", K3, 9, True, NOT_INTERRUPTED),
        _meter("c1", K2, 5, True, INTERRUPTED, street=K3, why="logged the outage"),
    ),
)


def test_shapes_states_and_sides_of_a_hand_built_map() -> None:
    root = _parse(render_outage_map(HAND))
    groups = _groups(root)
    shapes = [g.attrib["data-shape"] for g in groups]
    assert shapes.count("circle") == sum(1 for x in HAND.meters if x.smart) == 5
    assert shapes.count("diamond") == sum(1 for x in HAND.meters if not x.smart) == 3
    _check_meters(HAND, root)
    at = {g.attrib["data-ean"]: _at(g) for g in groups}
    # 1 and 2 face each other at node 1, 3 and 4 at node 2; 9 lies further along.
    assert at["b1"][0] == at["b2"][0] < at["b3"][0] == at["b4"][0] < at["b5"][0]
    assert at["b1"][1] < at["b2"][1] and at["b3"][1] < at["b4"][1]
    assert root.attrib["role"] == "img"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "Outage o-1 on OS001"


def test_a_faulted_feeder_is_drawn_differently_and_labelled() -> None:
    root = _parse(render_outage_map(HAND))
    cables = _cables(root)
    assert set(cables) == {K1, K2, K3}
    hot, cold = cables[K3].attrib, cables[K1].attrib
    assert float(hot["stroke-width"]) > float(cold["stroke-width"])
    assert hot["stroke"] != cold["stroke"]
    assert cables[K2].attrib["stroke"] == cold["stroke"]
    assert _labels(root) == {K1, K2, f"{K3} (faulted)"}
    substation = [t for t in root.iter(f"{SVG}text") if t.text == "OS001"]
    assert len(substation) == 1


def test_a_suspect_gets_a_dashed_ring_and_a_line_in_the_note() -> None:
    root = _parse(render_outage_map(HAND))
    (suspect,) = [g for g in _groups(root) if g.attrib["data-ean"] == "c1"]
    assert [e for e in suspect.iter() if "stroke-dasharray" in e.attrib]
    note = next(g for g in root.iter(f"{SVG}g") if g.attrib.get("class") == "note")
    lines = ["".join(t.itertext()) for t in note.iter(f"{SVG}text")]
    assert len(lines) == 2
    assert "c1" in lines[1]
    assert f"registered on {K2}, street on {K3}" in lines[1]
    # a dashed ring in the legend only, when nothing is suspect
    plain = OutageMap("o-2", "OS001", (), tuple(x for x in HAND.meters if not x.suspect))
    root = _parse(render_outage_map(plain))
    assert not [g for g in root.iter(f"{SVG}g") if g.attrib.get("class") == "note"]
    assert not [e for g in _groups(root) for e in g.iter() if "stroke-dasharray" in e.attrib]


def test_the_desc_counts_the_states_and_the_title_can_be_given() -> None:
    root = _parse(render_outage_map(HAND, title="Storing Kerkstraat"))
    assert _counts(root) == (4, 3, 1)
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    assert "circles smart meters, diamonds traditional meters" in desc.text
    assert "1 suspected registration error;" in desc.text
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "Storing Kerkstraat"


def test_the_legend_explains_every_symbol() -> None:
    root = _parse(render_outage_map(HAND))
    legend = next(g for g in root.iter(f"{SVG}g") if g.attrib.get("class") == "legend")
    text = " | ".join("".join(t.itertext()) for t in legend.iter(f"{SVG}text"))
    for words in (
        "smart meter",
        "traditional meter",
        "1 = interrupted",
        "N = not interrupted",
        "? = cannot be placed",
        "suspected registration error",
    ):
        assert words in text


def test_text_is_escaped() -> None:
    nasty = "E<&>\"'1"
    why = '<script>alert("&")</script>'
    m = OutageMap(
        'o<&>"',
        "OS<1>&",
        ("F&<1>",),
        (
            _meter(nasty, "F&<1>", 3, True, INTERRUPTED, why=why),
            _meter("e2", 'F"2', 4, False, UNKNOWN, street="F&<1>", why="\n\ttab"),
        ),
    )
    svg = render_outage_map(m, title="<b>&amp;</b>")
    root = _parse(svg)
    assert "<script>" not in svg
    _check_meters(m, root)
    (first,) = [g for g in _groups(root) if g.attrib["data-ean"] == nasty]
    tooltip = first.find(f"{SVG}title")
    assert tooltip is not None and tooltip.text is not None and why in tooltip.text
    assert _labels(root) == {'F"2', "F&<1> (faulted)"}
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "<b>&amp;</b>"


def test_characters_xml_cannot_hold_are_replaced() -> None:
    m = OutageMap("o", "OS1", (), (_meter("x\x00y", "K\x1b1", 1, True, NOT_INTERRUPTED),))
    root = _parse(render_outage_map(m))
    (g,) = _groups(root)
    assert g.attrib["data-ean"] == "x\ufffdy"


def test_an_empty_map_is_still_a_picture() -> None:
    root = _parse(render_outage_map(OutageMap("o", "OS1", (), ())))
    assert _groups(root) == [] and _cables(root) == {}
    assert _counts(root) == (0, 0, 0)
    width, height = _size(root)
    assert width > 0 and height > 0


@st.composite
def outage_maps(draw: st.DrawFn) -> OutageMap:
    feeders = [f"OS001-K{i}" for i in range(1, draw(st.integers(1, 4)) + 1)]
    count = draw(st.integers(0, 60))
    meters = []
    for i in range(count):
        feeder = draw(st.sampled_from(feeders))
        street = feeder if draw(st.integers(0, 9)) else draw(st.sampled_from(feeders))
        meters.append(
            _meter(
                f"87168740{i:010d}",
                feeder,
                draw(st.integers(1, 120)),
                draw(st.booleans()),
                draw(st.sampled_from(STATES)),
                street=street,
                why=draw(st.sampled_from(["logged the outage", "asked, no log entry", "x<&>"])),
            )
        )
    faulted = tuple(draw(st.lists(st.sampled_from(feeders), unique=True, max_size=2)))
    return OutageMap("o-p", "OS001", faulted, tuple(meters))


@settings(max_examples=150, deadline=None)
@given(outage_maps())
def test_any_map_renders_every_meter_once_inside_the_picture(m: OutageMap) -> None:
    root = _parse(render_outage_map(m))
    _check_meters(m, root)
    shown = {x.feeder for x in m.meters} | set(m.faulted)
    assert set(_cables(root)) == shown
    assert _labels(root) == {f"{f} (faulted)" if f in m.faulted else f for f in shown}
    assert _counts(root) == tuple(m.count(s) for s in STATES)
