"""The import quarantine: refused records kept with their reason (REG-2..8).

An import never drops a row silently: a row a rule refuses is kept here with its
source, line, raw text and the rule ID, for ``meetpunt register quarantine``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select

from meetpunt.domain.findings import Finding
from meetpunt.register import schema as t
from meetpunt.register.base import SessionBase


@dataclass(frozen=True)
class QuarantinedRecord:
    """An imported record the register refused, kept with its reason (nothing lost)."""

    source: str
    line: int
    record: str
    rule: str
    message: str


class Quarantine(SessionBase):
    """Keeping and listing refused import records."""

    def quarantine(self, source: str, line: int, record: str, finding: Finding) -> None:
        """Keep a refused import record with its reason (nothing is lost)."""
        self.quarantine_many(source, [(line, record, finding)])

    def quarantine_many(self, source: str, refused: Iterable[tuple[int, str, Finding]]) -> None:
        """Keep many refused records of one source at once, in the order given (one
        multi-row INSERT, so a file with many bad rows stays fast). A NUL character,
        which PostgreSQL cannot store in text, is kept as the two characters ``\\0``."""
        now = datetime.now(UTC)
        rows = [
            {
                "source": source,
                "line": line,
                "record": record.replace("\0", "\\0"),
                "rule": finding.rule,
                "message": finding.message,
                "recorded_at": now,
            }
            for line, record, finding in refused
        ]
        if rows:
            self._conn.execute(insert(t.import_quarantine), rows)

    def quarantined(self) -> list[QuarantinedRecord]:
        """Every quarantined import record, oldest first."""
        q = t.import_quarantine
        rows = self._conn.execute(select(q).order_by(q.c.id))
        return [QuarantinedRecord(r.source, r.line, r.record, r.rule, r.message) for r in rows]
