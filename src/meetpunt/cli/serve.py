"""``meetpunt serve``: the HTTP API under uvicorn (issue 17).

Checks first that the register and the store open (a missing store or an unreachable
database exits 2 before the port is bound), then serves until stopped. FastAPI and
uvicorn are imported only here, so the other commands start as fast as before.
"""

from __future__ import annotations

from typing import Annotated

import typer

from meetpunt.app.gate import open_gate
from meetpunt.cli.common import DbOption, StoreOption, fail
from meetpunt.errors import MeetpuntError


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs, paths /v1/...); every
    read goes through the privacy gate with the calling party's purpose (PRV-1)."""
    try:
        with open_gate(db, store):
            pass
    except MeetpuntError as exc:
        raise fail(exc, False) from exc
    import uvicorn

    from meetpunt.api import create_app

    uvicorn.run(create_app(db, store), host=host, port=port, log_level="info")
