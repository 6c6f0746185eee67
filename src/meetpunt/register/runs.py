"""The operator's use-case runs over the HTTP API (issue 17): what was asked and the
result document, kept in the register (``usecase_run``, migration 0007) so that
``GET /v1/usecases/{uc}/runs/{id}`` fetches a run after the answer to its POST, from
any server process on the same register."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select

from meetpunt.register import schema as t
from meetpunt.register.base import SessionBase


@dataclass(frozen=True)
class UseCaseRun:
    """One stored run: its id, use case, the operator party, what was asked, when, and
    the use case's result document (both JSON text, written by the caller's JSON writer,
    so the register keeps exactly what the API answered)."""

    id: int
    usecase: str
    party_id: int
    request: str
    created_at: datetime
    result: str


class UseCaseRuns(SessionBase):
    """Storing and fetching use-case runs (issue 17)."""

    def store_run(
        self,
        usecase: str,
        party_id: int,
        request: str,
        result: str,
        now: datetime,
    ) -> UseCaseRun:
        """Keep a finished run (``request`` and ``result`` as JSON text); its id names it
        from now on."""
        run_id = self._insert_id(
            insert(t.usecase_run).values(
                usecase=usecase, party_id=party_id, created_at=now, request=request, result=result
            )
        )
        return UseCaseRun(run_id, usecase, party_id, request, now, result)

    def run_by_id(self, usecase: str, run_id: int) -> UseCaseRun | None:
        """The run ``run_id`` of ``usecase``, or None (another use case's id too)."""
        r = t.usecase_run
        row = self._conn.execute(select(r).where(r.c.id == run_id, r.c.usecase == usecase)).first()
        if row is None:
            return None
        created = row.created_at
        created = created.astimezone(UTC) if created.tzinfo else created.replace(tzinfo=UTC)
        return UseCaseRun(
            row.id,
            row.usecase,
            row.party_id,
            row.request,
            created,
            row.result,
        )
