"""HTML pages from Jinja2 templates packaged with meetpunt (see ARCHITECTURE.md).

Autoescaping is on for every template: use-case results carry names and addresses
from the register, and only pictures built by meetpunt itself (the SVG outage maps)
are marked safe with :func:`picture`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


@cache
def environment() -> Environment:
    """The template environment: packaged templates, autoescape, undefined names fail."""
    return Environment(
        loader=PackageLoader("meetpunt.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def picture(svg: str) -> Markup:
    """An SVG document built by meetpunt (already escaped inside), to inline as is."""
    start = svg.find("<svg")
    return Markup(svg[start:] if start >= 0 else svg)


def render(template: str, **context: Any) -> str:
    """Render a packaged template with ``context``."""
    return environment().get_template(template).render(**context)
