"""What a reader hands the hub: one source's rows per kind, and what it could not read.

A source is one file, one MQTT micro-batch or one in-memory table; it is ingested as
one batch in one transaction (MTR-4). ``sha256`` identifies the source's bytes, so a
file already ingested in full is recognised and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


@dataclass(frozen=True)
class Refusal:
    """A record that did not pass a check: which record, which rule, why, and the raw
    record itself (kept in quarantine, never dropped;
    MTR-4/5, design rule 3: decisions are values)."""

    kind: str
    record: int
    ean: str
    rule: str
    message: str
    raw: str


@dataclass
class SourceData:
    """Rows of one source in the kinds' source shape (see :mod:`meetpunt.meterdata.kinds`)."""

    source: str
    sha256: str
    tables: dict[str, pa.Table] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Records read: stored candidates plus those refused while reading."""
        return sum(int(t.num_rows) for t in self.tables.values()) + len(self.refused)
