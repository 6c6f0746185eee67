"""UC4's outage map as one standalone SVG document (pure: an ``OutageMap`` in, text out).

The picture follows UC4 of the approved use-case list, July 2025 ("Tegemoetkoming na een
storing"): "De rondjes staan voor slimme meters en de ruitjes voor traditionele meters.
Alles met een '1' heeft een storing gehad; alles met een 'N' niet." So a circle is a smart
meter, a diamond a traditional one, and the character in the shape is its state: '1'
interrupted, 'N' not, '?' cannot be placed. The list also notes that meters off the
faulted cable registered the failure (registration errors); a suspected GIS feeder error
gets a dashed ring and a line in the note under the map.

Layout: the substation is a box on the left, each feeder a horizontal cable to the right.
House numbers run along the cable; odd and even numbers sit opposite each other at
backbone node ``(house_number + 1) // 2``, odd above the cable and even below, each on a
short stub. Meters at the same place (same feeder, node and side) are stacked outwards.
Colours are presentation attributes (no ``<style>``, which would leak into an HTML page
the SVG is inlined in) and stay apart for colour-blind readers by lightness as well as
hue; the state character carries the meaning anyway.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from meetpunt.usecases.uc04_outage_compensation import (
    INTERRUPTED,
    NOT_INTERRUPTED,
    UNKNOWN,
    MapMeter,
    OutageMap,
)

__all__ = ["render_outage_map"]

# Layout, in px.
MARGIN = 12
NODE_DX = 16
"""Horizontal distance between two backbone nodes on a cable."""
CIRCLE_R = 6.0
DIAMOND_R = 7.0
"""Half diagonal of a diamond (a square on its point), so it looks as big as a circle."""
RING_R = 8.5
"""Radius of the dashed ring around a suspected GIS feeder error."""
STUB = 16
"""From the cable to the centre of the first meter on a side."""
STACK_DY = 18
"""Between the centres of meters stacked at the same place."""
ROW_GAP = 8
FONT = 10
SHAPE_FONT = 8
HEADING_FONT = 12
HEADING_H = 22
CHAR_W = 6.0
"""A generous estimate of one character's width at ``FONT`` (no font metrics in SVG)."""
LINE_H = 14
LEGEND_ROW_H = 22
LEGEND_GAP = 16
SUBSTATION_MIN_W = 56
LABEL_PAD = 8
MIN_WIDTH = 320
NOTE_HEAD = "Suspected GIS registration errors (dashed ring):"

# Colours: lightness differs between the three fills, so they stay apart without hue.
INK = "#1a1a1a"
CABLE = "#8c8c8c"
CABLE_W = 1.5
FAULTED = "#d55e00"  # Okabe-Ito vermillion
FAULTED_W = 4.0
STUB_COLOUR = "#7f7f7f"
RING = "#2166ac"  # blue: apart from the red and amber fills for every colour vision
SUBSTATION_FILL = "#eeeeee"


@dataclass(frozen=True)
class _Style:
    word: str
    fill: str
    stroke: str
    text: str


_STYLES = {
    INTERRUPTED: _Style("interrupted", "#b2182b", "#67001f", "#ffffff"),
    NOT_INTERRUPTED: _Style("not interrupted", "#ffffff", "#404040", INK),
    UNKNOWN: _Style("cannot be placed", "#f6c141", "#7a5c00", INK),
}

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold at all (escaping cannot save
    a NUL or a lone surrogate), each replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _t(text: str) -> str:
    """``text`` as XML character data."""
    return escape(_clean(text))


def _a(text: str) -> str:
    """``text`` as a quoted XML attribute value."""
    return quoteattr(_clean(text))


def _n(value: float) -> str:
    """A coordinate without needless decimals."""
    return f"{value:.1f}".removesuffix(".0")


def _style(state: str) -> _Style:
    """The look of a state; any state other than '1' and 'N' is drawn as unknown."""
    return _STYLES.get(state, _STYLES[UNKNOWN])


def _node(meter: MapMeter) -> int:
    """The backbone node of a meter (numbers below 1 are put at node 1)."""
    return max(1, (meter.house_number + 1) // 2)


def _above(meter: MapMeter) -> bool:
    """Odd house numbers sit above the cable, even ones below."""
    return meter.house_number % 2 == 1


def _text_w(text: str, font: float = FONT) -> float:
    return len(text) * CHAR_W * font / FONT


def _shape(smart: bool, fill: str, stroke: str) -> str:
    """A circle (smart meter) or a diamond (traditional meter) centred on (0, 0)."""
    if smart:
        return f'<circle r="{_n(CIRCLE_R)}" fill="{fill}" stroke="{stroke}" stroke-width="1"/>'
    d = _n(DIAMOND_R)
    return (
        f'<polygon points="0,-{d} {d},0 0,{d} -{d},0" fill="{fill}" stroke="{stroke}"'
        ' stroke-width="1"/>'
    )


def _ring() -> str:
    return (
        f'<circle class="suspect-ring" r="{_n(RING_R)}" fill="none" stroke="{RING}"'
        ' stroke-width="1.3" stroke-dasharray="2.5 1.5"/>'
    )


def _char(state: str, colour: str) -> str:
    """The state character, centred in its shape (baseline a third of the font down)."""
    return (
        f'<text y="{_n(SHAPE_FONT * 0.35)}" text-anchor="middle" font-size="{SHAPE_FONT}"'
        f' font-weight="bold" fill="{colour}">{_t(state)}</text>'
    )


def _tooltip(meter: MapMeter) -> str:
    kind = "smart meter" if meter.smart else "traditional meter"
    text = (
        f"EAN {meter.ean}, house number {meter.house_number}, {kind} on {meter.feeder}: "
        f"{_style(meter.state).word} ({meter.why})"
    )
    if meter.suspect:
        text += f"; suspected registration error: street on {meter.street_feeder}"
    return text


def _meter_group(meter: MapMeter, x: float, y: float) -> str:
    """One meter as a ``<g>`` translated to its place, with data attributes and a tooltip."""
    look = _style(meter.state)
    attrs = (
        f'class="meter" data-ean={_a(meter.ean)} data-state={_a(meter.state)}'
        f' data-shape="{"circle" if meter.smart else "diamond"}"'
        f' data-feeder={_a(meter.feeder)} data-house-number="{meter.house_number}"'
    )
    if meter.suspect:
        attrs += f' data-suspect="true" data-street-feeder={_a(meter.street_feeder)}'
    parts = [
        f'<g {attrs} transform="translate({_n(x)},{_n(y)})">',
        f"<title>{_t(_tooltip(meter))}</title>",
        _shape(meter.smart, look.fill, look.stroke),
    ]
    if meter.suspect:
        parts.append(_ring())
    parts += [_char(meter.state, look.text), "</g>"]
    return "".join(parts)


def _legend_items() -> list[tuple[str, str]]:
    """(symbol drawn around (0, 0), label) for each entry of the legend."""
    blank = _STYLES[NOT_INTERRUPTED]
    items = [
        (_shape(True, blank.fill, blank.stroke), "smart meter"),
        (_shape(False, blank.fill, blank.stroke), "traditional meter"),
    ]
    for state in (INTERRUPTED, NOT_INTERRUPTED, UNKNOWN):
        look = _STYLES[state]
        symbol = _shape(True, look.fill, look.stroke) + _char(state, look.text)
        items.append((symbol, f"{state} = {look.word}"))
    items.append((_ring(), "dashed ring = suspected registration error"))
    cable = (
        f'<line x1="-{_n(RING_R)}" y1="0" x2="{_n(RING_R)}" y2="0" stroke="{FAULTED}"'
        f' stroke-width="{_n(FAULTED_W)}"/>'
    )
    items.append((cable, "faulted feeder"))
    return items


def _legend_item_w(label: str) -> float:
    return 2 * RING_R + 6 + _text_w(label)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _summary(m: OutageMap) -> str:
    """The ``<desc>``: the counts of the picture in words."""
    interrupted = sum(1 for x in m.meters if x.state == INTERRUPTED)
    not_interrupted = sum(1 for x in m.meters if x.state == NOT_INTERRUPTED)
    unknown = len(m.meters) - interrupted - not_interrupted
    suspects = sum(1 for x in m.meters if x.suspect)
    faulted = ", ".join(sorted(m.faulted)) or "none"
    return (
        f"{interrupted} interrupted, {not_interrupted} not, {unknown} unknown; "
        "circles smart meters, diamonds traditional meters; "
        f"{_plural(suspects, 'suspected registration error')}; faulted feeders: {faulted}"
    )


@dataclass(frozen=True)
class _Layout:
    """Where everything goes; computed once, then drawn."""

    heading: str
    feeders: list[str]
    faulted: frozenset[str]
    box_w: float
    cable_y: dict[str, float]
    cable_end: dict[str, float]
    placed: list[tuple[MapMeter, float, float]]
    map_bottom: float
    notes: list[str]
    width: float

    @property
    def box_right(self) -> float:
        return MARGIN + self.box_w


def _label(feeder: str, faulted: frozenset[str]) -> str:
    return f"{feeder} (faulted)" if feeder in faulted else feeder


def _layout(m: OutageMap, heading: str) -> _Layout:
    """Place the substation, the cables and every meter; size the picture to its content."""
    faulted = frozenset(m.faulted)
    feeders = sorted({x.feeder for x in m.meters} | faulted)
    meters = sorted(m.meters, key=lambda x: (x.feeder, x.house_number, x.ean))

    # Each meter's rank in the stack at its place (feeder, node, side).
    stack: dict[tuple[str, int, bool], int] = defaultdict(int)
    rank: list[int] = []
    for meter in meters:
        key = (meter.feeder, _node(meter), _above(meter))
        rank.append(stack[key])
        stack[key] += 1
    up = dict.fromkeys(feeders, 1)
    down = dict.fromkeys(feeders, 1)
    last = dict.fromkeys(feeders, 0)
    for (feeder, node, above), count in stack.items():
        side = up if above else down
        side[feeder] = max(side[feeder], count)
        last[feeder] = max(last[feeder], node)

    # Columns: substation box, feeder labels, then the cables with node 0 at x0.
    box_w = max(SUBSTATION_MIN_W, _text_w(m.substation, 11) + 2 * LABEL_PAD)
    label_w = max((_text_w(_label(f, faulted)) for f in feeders), default=0.0)
    # The labels sit above their cables, so node 1's ring may start right after them.
    x0 = MARGIN + box_w + label_w + 2 * LABEL_PAD + RING_R - NODE_DX

    # Rows: each feeder as tall as its stacks need.
    cable_y: dict[str, float] = {}
    y = float(MARGIN + HEADING_H)
    for feeder in feeders:
        y += STUB + (up[feeder] - 1) * STACK_DY + RING_R + 2
        cable_y[feeder] = y
        y += STUB + (down[feeder] - 1) * STACK_DY + RING_R + 2 + ROW_GAP

    placed: list[tuple[MapMeter, float, float]] = []
    for meter, k in zip(meters, rank, strict=True):
        offset = STUB + k * STACK_DY
        cy = cable_y[meter.feeder]
        placed.append(
            (meter, x0 + _node(meter) * NODE_DX, cy - offset if _above(meter) else cy + offset)
        )

    notes = [
        f"{x.ean} (no. {x.house_number}): registered on {x.feeder}, street on {x.street_feeder}"
        for x in meters
        if x.suspect
    ]
    width = max(
        MIN_WIDTH,
        x0 + max(last.values(), default=0) * NODE_DX + RING_R + MARGIN,
        2 * MARGIN + _text_w(heading, HEADING_FONT),
        *(2 * MARGIN + _text_w(s) for s in ([NOTE_HEAD, *notes] if notes else [])),
        *(2 * MARGIN + _legend_item_w(label) for _, label in _legend_items()),
    )
    return _Layout(
        heading=heading,
        feeders=feeders,
        faulted=faulted,
        box_w=box_w,
        cable_y=cable_y,
        cable_end={f: x0 + max(last[f] + 0.5, 1) * NODE_DX for f in feeders},
        placed=placed,
        map_bottom=y if feeders else y + 2 * STUB,
        notes=notes,
        width=width,
    )


def _draw_grid(m: OutageMap, lay: _Layout) -> list[str]:
    """The substation box, one cable per feeder and the feeders' labels."""
    if not lay.feeders:
        return [
            f'<text x="{MARGIN}" y="{_n(lay.map_bottom - STUB)}" font-size="{FONT}"'
            f' fill="{INK}">No meters and no faulted feeders on this map.</text>'
        ]
    top = lay.cable_y[lay.feeders[0]] - 14
    bottom = lay.cable_y[lay.feeders[-1]] + 14
    out = [
        f'<g class="substation"><title>{_t("substation " + m.substation)}</title>'
        f'<rect x="{MARGIN}" y="{_n(top)}" width="{_n(lay.box_w)}" height="{_n(bottom - top)}"'
        f' fill="{SUBSTATION_FILL}" stroke="{INK}" stroke-width="1.2" rx="2"/>'
        f'<text x="{_n(MARGIN + lay.box_w / 2)}" y="{_n((top + bottom) / 2 + 4)}"'
        f' text-anchor="middle" font-size="11" font-weight="bold" fill="{INK}">'
        f"{_t(m.substation)}</text></g>"
    ]
    for feeder in lay.feeders:
        cy = lay.cable_y[feeder]
        hot = feeder in lay.faulted
        out.append(
            f'<line class="cable" data-feeder={_a(feeder)}'
            f' data-faulted="{"true" if hot else "false"}" x1="{_n(lay.box_right)}"'
            f' y1="{_n(cy)}" x2="{_n(lay.cable_end[feeder])}" y2="{_n(cy)}"'
            f' stroke="{FAULTED if hot else CABLE}"'
            f' stroke-width="{_n(FAULTED_W if hot else CABLE_W)}" stroke-linecap="round"/>'
        )
        weight = ' font-weight="bold"' if hot else ""
        out.append(
            f'<text class="feeder-label" data-feeder={_a(feeder)}'
            f' x="{_n(lay.box_right + LABEL_PAD)}" y="{_n(cy - FAULTED_W / 2 - 3)}"'
            f' font-size="{FONT}"{weight} fill="{FAULTED if hot else INK}">'
            f"{_t(_label(feeder, lay.faulted))}</text>"
        )
    return out


def _draw_meters(lay: _Layout) -> list[str]:
    """Every meter on its stub; all stubs first, so the shapes lie on top of them."""
    if not lay.placed:
        return []
    out = [f'<g class="stubs" stroke="{STUB_COLOUR}" stroke-width="0.8">']
    out += [
        f'<line x1="{_n(x)}" y1="{_n(lay.cable_y[meter.feeder])}" x2="{_n(x)}" y2="{_n(y)}"/>'
        for meter, x, y in lay.placed
    ]
    out += ["</g>", '<g class="meters">']
    out += [_meter_group(meter, x, y) for meter, x, y in lay.placed]
    out.append("</g>")
    return out


def _draw_note(lay: _Layout) -> tuple[list[str], float]:
    """The note listing the suspected registration errors, and the y below it."""
    y = lay.map_bottom
    if not lay.notes:
        return [], y
    y += LINE_H
    out = [
        f'<g class="note" font-size="{FONT}" fill="{INK}">',
        f'<text x="{MARGIN}" y="{_n(y)}" font-weight="bold">{_t(NOTE_HEAD)}</text>',
    ]
    for note in lay.notes:
        y += LINE_H
        out.append(f'<text x="{MARGIN}" y="{_n(y)}">{_t(note)}</text>')
    out.append("</g>")
    return out, y + LINE_H / 2


def _draw_legend(top: float, width: float) -> tuple[list[str], float]:
    """The legend flowed into rows as wide as the picture, and the y below it."""
    out = [f'<g class="legend" font-size="{FONT}" fill="{INK}">']
    row_y = top + LEGEND_ROW_H / 2 + 4
    x = float(MARGIN)
    for symbol, label in _legend_items():
        w = _legend_item_w(label)
        if x > MARGIN and x + w > width - MARGIN:
            x = MARGIN
            row_y += LEGEND_ROW_H
        out.append(
            f'<g transform="translate({_n(x + RING_R)},{_n(row_y)})">{symbol}'
            f'<text x="{_n(RING_R + 6)}" y="{_n(FONT * 0.35)}">{_t(label)}</text></g>'
        )
        x += w + LEGEND_GAP
    out.append("</g>")
    return out, row_y + LEGEND_ROW_H / 2


def render_outage_map(m: OutageMap, title: str | None = None) -> str:
    """UC4's outage map as one standalone SVG document string.

    Pure: no I/O, the same map gives the same text. Inline it in HTML or write it to a
    ``.svg`` file. Each meter is a ``<g class="meter">`` carrying ``data-ean``,
    ``data-state``, ``data-shape`` ("circle"/"diamond") and a ``<title>`` tooltip, placed
    with ``transform="translate(x,y)"``; each cable is a ``<line class="cable">`` with
    ``data-feeder``. All text is XML-escaped.
    """
    heading = title if title is not None else f"Outage {m.outage_id} on {m.substation}"
    lay = _layout(m, heading)
    note, below_note = _draw_note(lay)
    legend, below_legend = _draw_legend(below_note, lay.width)
    w, h = str(math.ceil(lay.width)), str(math.ceil(below_legend + MARGIN))
    return (
        "\n".join(
            [
                f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{w}" height="{h}"'
                f' viewBox="0 0 {w} {h}" font-family="sans-serif">',
                f"<title>{_t(heading)}</title>",
                f"<desc>{_t(_summary(m))}</desc>",
                f'<rect class="background" width="{w}" height="{h}" fill="#ffffff"/>',
                f'<text x="{MARGIN}" y="{MARGIN + HEADING_FONT}" font-size="{HEADING_FONT}"'
                f' font-weight="bold" fill="{INK}">{_t(heading)}</text>',
                *_draw_grid(m, lay),
                *_draw_meters(lay),
                *note,
                *legend,
                "</svg>",
            ]
        )
        + "\n"
    )
