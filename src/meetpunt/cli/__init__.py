"""The ``meetpunt`` command: one Typer app over the application layer.

``main`` assembles the command groups (one module each); ``common`` holds what every
command shares (console, options, the error shape).
"""

from meetpunt.cli.main import app, main

__all__ = ["app", "main"]
