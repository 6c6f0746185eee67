"""``meetpunt serve``: the HTTP API under uvicorn (issue 17).

Checks first that the register and the store open (a missing store or an unreachable
database exits 2 before the port is bound), then serves until stopped. FastAPI and
uvicorn are imported only here, so the other commands start as fast as before.

uvicorn picks uvloop and the httptools parser (both dependencies) over asyncio and h11
(docs/api.md, Speed). ``--workers N`` starts N processes on one port (the app factory, with the
register and the store handed over in ``MEETPUNT_DATABASE_URL`` and ``MEETPUNT_STORE``):
they share the rate limits through a file beside the register (``api.limits``) and
queue their register writes on a file lock (``register.engine``), so every audit record
is still written in one chain (PRV-7).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from meetpunt.app.gate import open_gate
from meetpunt.cli.common import DbOption, StoreOption, fail
from meetpunt.errors import MeetpuntError


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes on the port (one per core is the most that helps; "
            "rate limits are shared by all of them).",
            min=1,
            max=64,
        ),
    ] = 1,
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

    if workers == 1:
        uvicorn.run(create_app(db, store), host=host, port=port, log_level="info")
        return
    from meetpunt.meterdata.store import STORE_ENV
    from meetpunt.register.engine import DATABASE_URL_ENV

    if db is not None:
        os.environ[DATABASE_URL_ENV] = db
    if store is not None:
        os.environ[STORE_ENV] = str(store)
    uvicorn.run(
        "meetpunt.api:create_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
    )
