"""The HTTP API (issue 17): suppliers, customers and the operator call meetpunt over HTTP.

A FastAPI app (:func:`create_app`) over one register and one meter-data store, opened
through the application layer (``app.gate.open_gate``) like the CLI: every read of
meter data goes through the privacy gate with the calling party's purpose (PRV-1) and is
audited (PRV-7). ``auth`` (API keys, ``Authorization: Bearer``), ``errors`` (the error
shape, every broken rule), ``readings`` (a read through the gate, JSON and CSV),
``app`` (the routes). See docs/api.md.
"""

from meetpunt.api.app import create_app

__all__ = ["create_app"]
