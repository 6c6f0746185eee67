"""What a reader hands the hub: one source's rows per kind, and what it could not read.

A source is one file, one MQTT micro-batch or one in-memory table; it is ingested as
one batch in one transaction (MTR-4). ``sha256`` identifies the source's bytes, so a
file already ingested in full is recognised and skipped.

A file is *streamed*: its ``stream`` yields the source in bounded pieces (a Parquet
record batch, a block of CSV rows, a run of P1 telegrams), each itself a
:class:`SourceData` without a stream, so memory does not grow with the file. Record
numbers are the file's own throughout (a piece's ``record`` column or its refusals'
``record``), so a retry of quarantined records finds them again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    """Rows of one source in the kinds' source shape (see :mod:`meetpunt.meterdata.kinds`).

    Either held whole (``tables`` and ``refused``) or streamed: ``stream`` is called
    once per pass over the source and yields its pieces in order; a reader error in
    the middle of a file is raised from the stream (the batch then rolls back whole).
    """

    source: str
    sha256: str
    tables: dict[str, pa.Table] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    stream: Callable[[], Iterator[SourceData]] | None = None

    def pieces(self) -> Iterator[SourceData]:
        """The source in bounded pieces: itself when held whole, else its stream."""
        if self.stream is None:
            yield self
        else:
            yield from self.stream()

    def whole(self) -> SourceData:
        """The source held whole: every piece's tables concatenated per kind and every
        refusal (for small sources and tests; ingestion reads the pieces)."""
        if self.stream is None:
            return self
        held = SourceData(self.source, self.sha256)
        tables: dict[str, list[pa.Table]] = {}
        for piece in self.pieces():
            for name, table in piece.tables.items():
                tables.setdefault(name, []).append(table)
            held.refused += piece.refused
        held.tables = {name: pa.concat_tables(parts) for name, parts in tables.items()}
        return held

    @property
    def rows(self) -> int:
        """Records read: stored candidates plus those refused while reading."""
        return sum(
            sum(int(t.num_rows) for t in piece.tables.values()) + len(piece.refused)
            for piece in self.pieces()
        )
