"""Ingestion: raw -> validated -> curated, one source per transaction (MTR-3, MTR-4, MTR-5).

* **raw**: a source as read (:class:`SourceData`), identified by the SHA-256 of its
  bytes; records the reader could not parse are already refusals.
* **validated**: every row is looked up in the register (EAN -> connection id and the
  capacity on the row's date) and checked (:mod:`meetpunt.meterdata.vee`); rows with
  the same key inside the batch are duplicates (identical) or conflicts (different).
* **curated**: the kind's table, written with its declared merge policy
  ``append_if_not_exists`` (see :mod:`meetpunt.meterdata.kinds`); counters are checked
  against the stored readings around them; for interval kinds the gaps inside the
  batch's window are found and estimated, each estimate marked with status and method.

Everything of one source happens in one DuckDB transaction and the ``batch`` row is
its last write, so a crash leaves no half batch and a rerun completes it; the same
source ingested twice changes nothing, unless records of it are in quarantine: those
are tried again (the register may know their connection by now), and the ones that
pass are stored and their quarantine rows marked resolved.

A streamed source (a file) is checked and stored piece by piece, in parts of
:data:`PART_ROWS` rows that are each one transaction (see :meth:`Ingestor._ingest_parts`),
so memory does not follow the file's size; gaps are estimated once at the end, over the
window of the whole source. One source keeps at most
:data:`QUARANTINE_CAP` refused records one by one; the rest are counted per rule in one
summary record (``MTR-4.quarantine_cap``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from meetpunt.domain.calendar import (
    MICROS_PER_DAY,
    local_day_bounds_utc,
    local_wall_micros,
)
from meetpunt.domain.capacity import Commodity, ElectricityCapacity, parse_electricity_capacity
from meetpunt.domain.vee import VeeRules
from meetpunt.meterdata.kinds import (
    ESTIMATED_CODES,
    FROM_HISTORY,
    FROM_READINGS,
    KINDS,
    MEASURED,
    MEASURED_CODES,
    METER_SWAP,
    READINGS_FIRST,
    REGISTERS,
    Kind,
)
from meetpunt.meterdata.source import Refusal, SourceData
from meetpunt.meterdata.store import MeterStore, arrow
from meetpunt.meterdata.vee import (
    NO_TIME,
    ROW_RULES,
    US,
    CounterPoint,
    RowInput,
    implausible_jumps,
    row_codes,
    row_message,
    spread,
    walk_counters,
)
from meetpunt.register.store import MeterIndexEntry

_EPOCH = date(1970, 1, 1)

QUARANTINE_CAP = 10_000
"""Refused records one source keeps one by one in the quarantine. Past it, a source is
broken as a whole (10 MB of ``/`` once wrote 10.5 M quarantine rows in 249 s): its other
refusals are counted per rule with their first and last record in one summary record
(:data:`CAP_RULE`), which says to fix the file and ingest it again; that ingest tries
every record of the file again. 10,000 is far above what one meter's bad days give
(a year of quarter-hours of one meter is 35,040 rows) and small enough to write in
well under a second."""
CAP_RULE = "MTR-4.quarantine_cap"

PART_ROWS = 250_000
"""Rows of a streamed source per transaction. Measured: DuckDB keeps ~30 bytes a row of
transaction state until the commit, whatever its memory limit (6.4 M rows in one
transaction: +180 MB), so one transaction per file would grow with the file. Ingesting
1.6 M quarter-hours in parts of 1 M / 250 k / 100 k rows peaked at 315 / 290 / 273 MB
and took 4.0 / 3.6 / 2.8 s: smaller parts cost nothing (the commits are cheap), and
250 k rows keeps a part of a daily file of 1,000 meters' quarter-hours whole."""


# --- the register as the hub sees it -----------------------------------------------------


class ConnectionIndex:
    """EAN -> register connection id, and each connection's capacity by date.

    Built once per ingest run from :meth:`RegisterSession.meter_index` (the hub reads the
    register through its API).
    """

    def __init__(self, entries: Iterable[MeterIndexEntry], phase_voltage_v: float) -> None:
        self._ids: dict[tuple[str, Commodity], int] = {}
        self.ean_of: dict[int, tuple[str, Commodity]] = {}
        versions: dict[int, list[tuple[int, int, float]]] = {}
        for e in entries:
            self._ids[(e.ean, e.commodity)] = e.connection_id
            self.ean_of[e.connection_id] = (e.ean, e.commodity)
            capacity = parse_electricity_capacity(e.capacity)
            watts = (
                capacity.phases * capacity.amperes * phase_voltage_v
                if isinstance(capacity, ElectricityCapacity)
                else np.nan
            )
            start = (e.valid_from - _EPOCH).days
            end = (e.valid_to - _EPOCH).days if e.valid_to else 1 << 30
            versions.setdefault(e.connection_id, []).append((start, end, watts))
        size = max(versions, default=0) + 1
        self._single = np.full(size, np.nan)
        self._max = np.full(size, np.nan)
        for cid, spans in versions.items():
            finite = [w for _, _, w in spans if not np.isnan(w)]
            self._max[cid] = max(finite) if finite else np.nan
        self._versions = versions
        self._varying = np.zeros(size, dtype=bool)
        for cid, spans in versions.items():
            distinct = {w for _, _, w in spans}
            if len(distinct) == 1:
                self._single[cid] = spans[0][2]
            else:
                self._varying[cid] = True

    def knows(self, ean: str, commodity: Commodity = Commodity.ELECTRICITY) -> bool:
        """Whether ``ean`` is such a connection (else its rows are MTR-5.unknown_connection)."""
        return (ean, commodity) in self._ids

    def connection_ids(self, eans: pa.Array, commodity: Commodity) -> npt.NDArray[np.int32]:
        """The connection id per row; -1 where the EAN is not such a connection."""
        encoded = eans if pa.types.is_dictionary(eans.type) else pc.dictionary_encode(eans)
        known = [self._ids.get((str(e), commodity), -1) for e in encoded.dictionary.to_pylist()]
        lookup = np.array([*known, -1], dtype=np.int32)  # the last entry: no EAN at all
        indices = encoded.indices.fill_null(len(known))
        return np.asarray(lookup[indices.to_numpy(zero_copy_only=False)], dtype=np.int32)

    def max_watts(self, ids: npt.NDArray[np.int32]) -> npt.NDArray[np.float64]:
        """The largest nominal watts a connection ever had (MTR-5.implausible_jump: a
        generous bound that needs no date); NaN when unknown."""
        known = (ids >= 0) & (ids < len(self._max))
        out = np.full(len(ids), np.nan)
        out[known] = self._max[ids[known]]
        return out

    def capacity_watts(
        self, ids: npt.NDArray[np.int32], time_us: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        """Nominal watts (phases x A x V) on each row's local date; NaN when unknown."""
        known = ids >= 0
        out = np.full(len(ids), np.nan)
        out[known] = self._single[ids[known]]
        varying = np.zeros(len(ids), dtype=bool)
        varying[known] = self._varying[ids[known]]
        if varying.any():
            rows = np.flatnonzero(varying)
            days = local_wall_micros(time_us[rows]) // MICROS_PER_DAY
            spans = sorted(
                (cid, start, end, watts)
                for cid in map(int, np.unique(ids[rows]))
                for start, end, watts in self._versions[cid]
            )
            keys = np.array([(cid << 32) + start for cid, start, _, _ in spans], dtype=np.int64)
            ends = np.array([end for _, _, end, _ in spans], dtype=np.int64)
            watts = np.array([w for _, _, _, w in spans])
            at = np.searchsorted(keys, (ids[rows].astype(np.int64) << 32) + days, "right") - 1
            same = (at >= 0) & ((keys[at] >> 32) == ids[rows]) & (days < ends[at])
            out[rows] = np.where(same, watts[at], np.nan)
        return out


# --- reports -----------------------------------------------------------------------------


@dataclass
class KindReport:
    """What happened to one kind's rows of a source."""

    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    corrected: int = 0
    estimated: int = 0
    gaps_missing: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)


@dataclass
class BatchReport:
    """What happened to one source (file, MQTT micro-batch): MTR-4's summary."""

    source: str
    batch: int | None
    already_ingested: bool = False
    kinds: dict[str, KindReport] = field(default_factory=dict)
    retry_of: int | None = None
    """The batch of the same source whose quarantined records this one tried again."""
    parts: int = 1
    """Transactions the source was stored in (a streamed source: one per
    :data:`PART_ROWS` rows)."""
    error: dict[str, Any] | None = None
    """Why the source was refused whole (``rule``, ``message``, ``hint``): nothing of it
    was written (a folder as a file, not UTF-8, a duplicate column, ...)."""

    def total(self, attribute: str) -> int:
        return sum(int(getattr(k, attribute)) for k in self.kinds.values())

    def absorb(self, other: BatchReport) -> None:
        """Add the counts of ``other`` (another part of the same source)."""
        for name, theirs in other.kinds.items():
            mine = self.kinds.setdefault(name, KindReport())
            for attribute in ("rows", "accepted", "duplicates", "corrected", "estimated"):
                setattr(mine, attribute, getattr(mine, attribute) + getattr(theirs, attribute))
            mine.gaps_missing += theirs.gaps_missing
            mine.quarantined.update(theirs.quarantined)

    @property
    def quarantined(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for k in self.kinds.values():
            out.update(k.quarantined)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "batch": self.batch,
            "already_ingested": self.already_ingested,
            "retry_of": self.retry_of,
            "error": self.error,
            "rows": self.total("rows"),
            "accepted": self.total("accepted"),
            "duplicates": self.total("duplicates"),
            "corrected": self.total("corrected"),
            "estimated": self.total("estimated"),
            "quarantined": dict(sorted(self.quarantined.items())),
            "kinds": {
                name: {
                    "rows": k.rows,
                    "accepted": k.accepted,
                    "duplicates": k.duplicates,
                    "corrected": k.corrected,
                    "estimated": k.estimated,
                    "gaps_missing": k.gaps_missing,
                    "quarantined": dict(sorted(k.quarantined.items())),
                }
                for name, k in self.kinds.items()
            },
        }


# --- the pipeline ------------------------------------------------------------------------


@dataclass
class Ingestor:
    """Ingests sources into one store against one register snapshot.

    ``now`` is the ingestion moment for the clock check (MTR-5.clock); ``on_begin`` is
    called with the source name when its transaction starts (progress, crash tests);
    for a retry of quarantined records, once it is known to change something.
    """

    store: MeterStore
    index: ConnectionIndex
    rules: VeeRules
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    on_begin: Callable[[str], None] | None = None
    quarantine_cap: int = QUARANTINE_CAP
    part_rows: int = PART_ROWS
    checkpoint_parts: bool = True
    """Checkpoint the store after each committed part of a streamed source. Measured
    (issue 13): a part's rows are written straight to the database file, but the
    checkpoint that settles them held ~17 MB per million rows written since the last
    one, and it came when the store was closed (+220 MB for a 12.8 M-row file); after
    each part it is bounded by the part. Cost: ~0.13 s a part, +3 to +15 % CPU time
    for a 12.8 M-row file (10.7 / 11.0 s against 10.4 / 9.6 s). Off: the memory grows
    with the file (that file: 574 MB instead of 350)."""
    _raw_rows: Callable[[], int | None] = field(default=lambda: None, init=False, repr=False)
    """How many more refused rows the quarantine keeps one by one (their raw records
    are built; the others are only counted). Set per source."""

    def ingest(self, source: SourceData) -> BatchReport:
        """Ingest one source as one batch. A source whose bytes were committed before is
        skipped as a whole (every row a duplicate), unless records of it are still in
        quarantine: then only those are tried again (see :meth:`_retry`).

        A source held whole is one store lease (the check and the write together, so two
        processes cannot both store it); a streamed source takes one lease per part, so
        other processes get the store between parts (MTR-1 side by side)."""
        with self.store.lease():
            done = self.store.committed_batch(source.sha256) if source.sha256 else None
            if done is not None:
                pending = self.store.unresolved_refusals(source.sha256)
                if pending:
                    return self._retry(source, done, pending)
                return _skipped(source, done)
            whole = source.stream is None or not source.sha256
            if whole:
                if self.on_begin is not None:
                    self.on_begin(source.source)
                return self._ingest_whole(source)
        if self.on_begin is not None:
            self.on_begin(source.source)
        return self._ingest_parts(source)

    def _ingest_whole(self, source: SourceData) -> BatchReport:
        """A source held whole (a micro-batch, a small reader's output) in one
        transaction."""
        with self.store.transaction() as con:
            batch = _next_batch(con)
            report = BatchReport(source.source, batch)
            quarantine = _Quarantine(con, batch, source.source, self.quarantine_cap)
            self._validate_and_store(
                con, source, batch, report, quarantine.add, room=quarantine.room
            )
            quarantine.close()
            self._batch_row(con, source, report)
        return report

    def _ingest_parts(self, source: SourceData) -> BatchReport:
        """A streamed source in parts of about :attr:`part_rows` rows, each part one
        transaction (its rows, refusals and batch row), so that neither the reader nor
        DuckDB's transaction state (~30 bytes a row) grows with the file.

        A part not yet the last is committed under ``<sha256>:part<n>``; the last part
        also estimates the gaps over everything the source stored, merges the parts'
        quarantine summaries into one, and renames every part's batch to the plain
        SHA-256: only then is the source committed (``committed_batch``). A rerun after a
        crash skips the parts committed and goes on with the next (the pieces are
        deterministic: the same reader cuts the same file the same way)."""
        sha = source.sha256
        prior = self.store.query(
            "SELECT id, sha256 FROM batch WHERE starts_with(sha256, ?) ORDER BY id",
            [f"{sha}:part"],
        ).to_pylist()
        batches = [int(r["id"]) for r in prior]
        report = BatchReport(source.source, batches[0] if batches else None)
        report.parts = len(batches)
        written = 0
        if batches:
            found = self.store.query(
                "SELECT count(*) AS n FROM quarantine WHERE rule <> ? AND batch IN "
                f"({', '.join(map(str, batches))})",
                [CAP_RULE],
            )
            written = int(found.column("n")[0].as_py())
        pieces = _Lookahead(source.pieces())
        part = 0
        while True:
            part += 1
            if part <= len(batches):  # committed before a crash: read past it
                pieces.skip_part(self.part_rows)
                continue
            with self.store.lease() as held:  # one lease: the part, then its checkpoint
                with self.store.transaction() as con:
                    batch = _next_batch(con)
                    if report.batch is None:
                        report.batch = batch
                    this = BatchReport(source.source, batch)
                    room = self.quarantine_cap - written
                    quarantine = _Quarantine(con, batch, source.source, room, self.quarantine_cap)
                    self._validate_and_store(
                        con,
                        _part(source, pieces, self.part_rows),
                        batch,
                        this,
                        quarantine.add,
                        gaps=False,
                        room=quarantine.room,
                    )
                    last = pieces.exhausted()
                    batches.append(batch)
                    if last:
                        self._finish_parts(con, source, batches, this, quarantine)
                    else:
                        quarantine.close()
                    self._batch_row(con, source, this, sha=sha if last else f"{sha}:part{part}")
                if self.checkpoint_parts:
                    held.execute("CHECKPOINT")
            written += quarantine.written
            report.absorb(this)
            report.parts += 1
            if last:
                return report

    def _finish_parts(
        self,
        con: duckdb.DuckDBPyConnection,
        source: SourceData,
        batches: list[int],
        report: BatchReport,
        quarantine: _Quarantine,
    ) -> None:
        """The last part of a streamed source: gaps over all its parts, one quarantine
        summary for all of them, and every part's batch renamed to the source's SHA-256."""
        ids = ", ".join(map(str, batches))
        for name, kind in sorted(KINDS.items(), key=lambda item: _kind_order(item[0])):
            if not kind.estimate_gaps:
                continue
            spans = arrow(
                con,
                f"SELECT DISTINCT connection FROM {_q(name)} WHERE batch IN ({ids})",
            )
            if spans.num_rows == 0:
                continue
            lo, hi = con.execute(
                f"SELECT min({_q(kind.time)}), max({_q(kind.time)}) FROM {_q(name)} "
                f"WHERE batch IN ({ids})"
            ).fetchall()[0]
            connections = set(spans.column(0).to_pylist())
            estimated, missing = _fill_gaps(con, kind, connections, lo, hi, batches[-1], self.rules)
            k = report.kinds.setdefault(name, KindReport())
            k.estimated += estimated
            k.gaps_missing += missing
        earlier = con.execute(
            f"SELECT rowid, raw FROM quarantine WHERE rule = ? AND batch IN ({ids})", [CAP_RULE]
        ).fetchall()
        for _, raw in earlier:
            quarantine.merge(json.loads(raw))
        if earlier:
            con.execute(f"DELETE FROM quarantine WHERE rule = ? AND batch IN ({ids})", [CAP_RULE])
        quarantine.close()
        con.execute(f"UPDATE batch SET sha256 = ? WHERE id IN ({ids})", [source.sha256])

    def _retry(
        self, source: SourceData, done: int, pending: Sequence[tuple[int, str, int, str, str]]
    ) -> BatchReport:
        """Try again the records of a committed source that are still in quarantine
        (the register may know their connection now, a P1 capture may come with the
        right EAN): its other records are stored already and count as duplicates.

        One transaction, as a first ingest: the records that pass now are stored, their
        quarantine rows get ``resolved_by`` (this batch) and ``resolved_at``; a record
        refused again for the same rule keeps its quarantine row (no second one), one
        refused for another rule resolves the old row and gets a new one. The batch row
        names the batch retried (``retry_of``). When nothing changes, nothing is
        written and the report is that of a skipped source.

        When the quarantine holds a summary of the source (``MTR-4.quarantine_cap``:
        more refusals than were kept one by one), every record is tried again (those
        stored already are duplicates); the summary stays when the new one is the same,
        else it is resolved and the new one written."""
        caps = [p for p in pending if p[4] == CAP_RULE]
        singles = [p for p in pending if p[4] != CAP_RULE]
        records = {(kind, record) for _, kind, record, _, _ in singles}
        retry, skipped = (source, Counter[str]()) if caps else _only(source, records)
        try:
            with self.store.transaction() as con:
                batch = _next_batch(con)
                report = BatchReport(source.source, batch, retry_of=done)
                quarantine = _Quarantine(con, batch, source.source, self.quarantine_cap)
                open_rows: dict[tuple[str, int, str, str], list[int]] = {}
                for rowid, kind, record, ean, rule in singles:
                    open_rows.setdefault((kind, record, ean, rule), []).append(rowid)

                def refused_again(refused: pa.Table) -> None:
                    again = [
                        open_rows[key].pop() if open_rows.get(key) else -1
                        for key in zip(
                            refused.column("kind").to_pylist(),
                            refused.column("record").to_pylist(),
                            refused.column("ean").to_pylist(),
                            refused.column("rule").to_pylist(),
                            strict=True,
                        )
                    ]
                    quarantine.kept += sum(1 for rowid in again if rowid != -1)
                    quarantine.add(
                        refused.filter(pa.array([rowid == -1 for rowid in again], pa.bool_()))
                    )

                self._validate_and_store(con, retry, batch, report, refused_again)
                resolved = [rowid for rows in open_rows.values() for rowid in rows]
                old_summary = _summary_raw(con, caps[0][0]) if caps else None
                summary = quarantine.summary()
                same_summary = summary is not None and summary[1] == old_summary
                if caps and not same_summary:
                    resolved += [rowid for rowid, *_ in caps]
                if (
                    not resolved
                    and report.total("accepted") == 0
                    and quarantine.written == 0
                    and (summary is None or same_summary)
                ):
                    raise _UnchangedError
                if self.on_begin is not None:  # only a retry that changes something
                    self.on_begin(source.source)
                at = self.now.astimezone(UTC).replace(tzinfo=None)
                if resolved:
                    con.register("resolved", pa.table({"id": pa.array(resolved, pa.int64())}))
                    con.execute(
                        "UPDATE quarantine SET resolved_by = ?, resolved_at = ? "
                        "WHERE rowid IN (SELECT id FROM resolved)",
                        [batch, at],
                    )
                    con.unregister("resolved")
                if not same_summary:
                    quarantine.close()
                for name, count in skipped.items():
                    k = report.kinds.setdefault(name, KindReport())
                    k.rows += count
                    k.duplicates += count
                self._batch_row(con, source, report, retry_of=done)
        except _UnchangedError:
            return _skipped(source, done)
        return report

    def _validate_and_store(
        self,
        con: duckdb.DuckDBPyConnection,
        source: SourceData,
        batch: int,
        report: BatchReport,
        refused: Callable[[pa.Table], None],
        gaps: bool = True,
        room: Callable[[], int] | None = None,
    ) -> None:
        """Check and store every row of ``source`` under ``batch``, piece by piece:
        its refusals (the reader's and the checks') go to ``refused`` in quarantine
        layout, counted in ``report``. Gaps are estimated once, after the last piece,
        over the window of the whole source."""
        windows: dict[str, _Window] = {}
        self._raw_rows = room or (lambda: None)
        for piece in source.pieces():
            if piece.refused:
                refused(_refusal_table(piece.refused))
            for refusal in piece.refused:
                k = report.kinds.setdefault(refusal.kind, KindReport())
                k.rows += 1
                k.quarantined[refusal.rule] += 1
            for name in sorted(piece.tables, key=_kind_order):
                kind = KINDS[name]
                k = report.kinds.setdefault(name, KindReport())
                refused(self._ingest_table(con, kind, piece.tables[name], batch, k, windows))
        for name in sorted(windows if gaps else (), key=_kind_order):
            window = windows[name]
            estimated, missing = _fill_gaps(
                con, KINDS[name], window.connections, window.lo, window.hi, batch, self.rules
            )
            report.kinds[name].estimated += estimated
            report.kinds[name].gaps_missing += missing

    def _batch_row(
        self,
        con: duckdb.DuckDBPyConnection,
        source: SourceData,
        report: BatchReport,
        retry_of: int | None = None,
        sha: str | None = None,
    ) -> None:
        """The batch row, the batch's last write: the source is done when it is (a part
        of a streamed source carries ``sha``, see :meth:`_ingest_parts`)."""
        con.execute(
            "INSERT INTO batch (id, source, sha256, committed_at, rows, accepted, duplicates, "
            "estimated, quarantined, retry_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                report.batch,
                source.source,
                source.sha256 if sha is None else sha,
                self.now.astimezone(UTC).replace(tzinfo=None),
                report.total("rows"),
                report.total("accepted"),
                report.total("duplicates"),
                report.total("estimated"),
                sum(report.quarantined.values()),
                retry_of,
            ],
        )

    def ingest_all(self, sources: Iterable[SourceData]) -> list[BatchReport]:
        """Ingest sources one after another, each its own batch."""
        return [self.ingest(source) for source in sources]

    # -- one kind of one source -------------------------------------------------------------

    def _ingest_table(
        self,
        con: duckdb.DuckDBPyConnection,
        kind: Kind,
        table: pa.Table,
        batch: int,
        report: KindReport,
        windows: dict[str, _Window],
    ) -> pa.Table:
        n = table.num_rows
        report.rows += n
        if n == 0:
            return _refusal_table([])
        times = table.column(kind.time).combine_chunks()
        time_us = micros(times)
        ids = self.index.connection_ids(
            table.column(kind.ean_column).combine_chunks(), kind.commodity
        )
        values = {name: _numbers(table.column(name)) for name in kind.value_names}
        capacity = self.index.capacity_watts(ids, time_us) if kind.energy or kind.counters else None
        now_us = int(self.now.timestamp() * US)
        codes = row_codes(kind, RowInput(ids, time_us, values, capacity), self.rules, now_us)
        refused: dict[int, tuple[str, str]] = {}
        messages = {
            int(code): (ROW_RULES[code], row_message(kind, int(code), self.rules))
            for code in np.unique(codes)
            if code
        }
        for at, code in zip(
            np.flatnonzero(codes).tolist(), codes[codes != 0].tolist(), strict=True
        ):
            refused[at] = messages[code]
        work = _working_table(kind, table, ids, time_us, codes == 0)
        duplicates, conflicts = _batch_duplicates(kind, work)
        for conflict in conflicts:
            refused[conflict] = ("MTR-5.conflict", _CONFLICT_IN_BATCH)
        report.duplicates += len(duplicates)
        work = _without(work, np.array([*duplicates, *conflicts], dtype=np.int64), n)
        if work.num_rows:
            merged = _against_store(con, kind, work, batch)
            for key, old in merged.conflicts.items():
                refused[key] = ("MTR-5.conflict", _CONFLICT_IN_STORE.format(old=old))
            report.duplicates += len(merged.duplicates)
            report.corrected += merged.corrected
            conflict_rows = np.fromiter(merged.conflicts, dtype=np.int64)
            work = _without(work, np.concatenate([merged.duplicates, conflict_rows]), n)
        swaps: set[int] = set()
        if kind.counters and work.num_rows:
            backwards, swaps, jumps = _check_counters(
                con, kind, work, self.rules, self.index.max_watts
            )
            for key, message in backwards.items():
                refused[key] = ("MTR-5.counter_backwards", message)
            for key, message in jumps.items():
                refused[key] = ("MTR-5.implausible_jump", message)
            work = _without(work, np.fromiter([*backwards, *jumps], dtype=np.int64), n)
        if work.num_rows:
            _insert(con, kind, work, batch, swaps)
            report.accepted += work.num_rows
            if swaps:
                _swap_findings(con, kind, work, batch, swaps)
            if kind.estimate_gaps:
                windows.setdefault(kind.name, _Window()).widen(kind, work)
        return _refusals(con, kind, table, refused, report, self._raw_rows())


class _UnchangedError(Exception):
    """A retry that would change nothing: its transaction is rolled back."""


def _kind_order(name: str) -> tuple[int, str]:
    """Readings before intervals (their estimates use the readings around a day)."""
    return (READINGS_FIRST.index(name) if name in READINGS_FIRST else 99, name)


@dataclass
class _Window:
    """The connections and time span a source stored of one interval kind: where its
    gaps are looked for once the whole source is in (MTR-5.gap)."""

    connections: set[int] = field(default_factory=set)
    lo: datetime | None = None
    hi: datetime | None = None

    def widen(self, kind: Kind, work: pa.Table) -> None:
        self.connections.update(np.unique(work.column("connection").to_numpy()).tolist())
        lo, hi = (v.as_py() for v in pc.min_max(work.column(kind.time)).values())
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)


class _Lookahead:
    """The pieces of a streamed source with one piece of lookahead: a part knows whether
    it is the last before it commits."""

    def __init__(self, pieces: Iterator[SourceData]) -> None:
        self._pieces = pieces
        self._next: SourceData | None = next(pieces, None)

    def exhausted(self) -> bool:
        return self._next is None

    def take(self) -> SourceData | None:
        piece, self._next = self._next, None
        if piece is not None:
            self._next = next(self._pieces, None)
        return piece

    def skip_part(self, rows: int) -> None:
        """Read past one part (committed before a crash)."""
        for _ in _part_pieces(self, rows):
            pass


def _piece_rows(piece: SourceData) -> int:
    return sum(int(t.num_rows) for t in piece.tables.values()) + len(piece.refused)


def _part_pieces(pieces: _Lookahead, rows: int) -> Iterator[SourceData]:
    """Pieces up to about ``rows`` rows (at least one piece)."""
    taken = 0
    while taken < rows:
        piece = pieces.take()
        if piece is None:
            return
        taken += _piece_rows(piece)
        yield piece


def _part(source: SourceData, pieces: _Lookahead, rows: int) -> SourceData:
    """One part of a streamed source, as a source of its own."""
    return SourceData(source.source, source.sha256, stream=lambda: _part_pieces(pieces, rows))


def _only(source: SourceData, records: set[tuple[str, int]]) -> tuple[SourceData, Counter[str]]:
    """The records of ``source`` named in ``records`` (kind, record), streamed as the
    source is, and the count per kind of the others (filled as the stream is read)."""
    skipped: Counter[str] = Counter()

    def stream() -> Iterator[SourceData]:
        skipped.clear()
        offset = 0
        for piece in source.pieces():
            part = SourceData(piece.source, piece.sha256)
            for name, read in piece.tables.items():
                table = read
                if "record" not in table.column_names:  # numbered by position, as in quarantine
                    positions = np.arange(offset + 1, offset + table.num_rows + 1, dtype=np.int64)
                    table = table.append_column("record", pa.array(positions))
                numbers = table.column("record").combine_chunks().fill_null(0).to_numpy()
                wanted = np.array([r for k, r in records if k == name], dtype=np.int64)
                part.tables[name] = table.filter(pa.array(np.isin(numbers, wanted)))
                skipped[name] += table.num_rows - part.tables[name].num_rows
            offset += max((t.num_rows for t in piece.tables.values()), default=0)
            for refusal in piece.refused:
                if (refusal.kind, refusal.record) in records:
                    part.refused.append(refusal)
                else:
                    skipped[refusal.kind] += 1
            yield part

    return SourceData(source.source, source.sha256, stream=stream), skipped


class _Quarantine:
    """Writes one batch's refused records to the quarantine, the first ``cap`` one by
    one; the rest are counted per kind and rule, with their first and last record, and
    written as one summary record by :meth:`close` (MTR-4.quarantine_cap)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: int,
        source: str,
        cap: int,
        total_cap: int | None = None,
    ) -> None:
        self.con = con
        self.batch = batch
        self.source = source
        self.cap = max(cap, 0)
        self.total_cap = cap if total_cap is None else total_cap
        """The cap of the whole source (``cap`` is what is left of it for this part)."""
        self.written = 0
        self.kept = 0
        """Refusals whose quarantine row from an earlier batch stays (a retry): they
        count towards the cap as the rows written do."""
        self.over: dict[tuple[str, str], list[int]] = {}
        """(kind, rule) -> [count, first record, last record] of the records past the cap."""

    def room(self) -> int:
        """Refused records this batch still keeps one by one."""
        return max(self.cap - self.written - self.kept, 0)

    def add(self, refused: pa.Table) -> None:
        if refused.num_rows == 0:
            return
        room = max(self.cap - self.written - self.kept, 0)
        if room:
            head = refused.slice(0, room)
            _write_quarantine(self.con, self.batch, self.source, [head])
            self.written += head.num_rows
        rest = refused.slice(room)
        if rest.num_rows == 0:
            return
        counted = rest.group_by(["kind", "rule"]).aggregate(
            [("record", "count"), ("record", "min"), ("record", "max")]
        )
        for kind, rule, count, first, last in zip(
            counted.column("kind").to_pylist(),
            counted.column("rule").to_pylist(),
            counted.column("record_count").to_pylist(),
            counted.column("record_min").to_pylist(),
            counted.column("record_max").to_pylist(),
            strict=True,
        ):
            entry = self.over.setdefault((kind, rule), [0, first, last])
            entry[0] += count
            entry[1] = min(entry[1], first)
            entry[2] = max(entry[2], last)

    def merge(self, summary: dict[str, Any]) -> None:
        """Add the counts of an earlier part's summary record (its raw JSON)."""
        for entry in summary["refused"]:
            key = (str(entry["kind"]), str(entry["rule"]))
            mine = self.over.setdefault(key, [0, int(entry["first"]), int(entry["last"])])
            mine[0] += int(entry["count"])
            mine[1] = min(mine[1], int(entry["first"]))
            mine[2] = max(mine[2], int(entry["last"]))

    def summary(self) -> tuple[str, str] | None:
        """The summary record's message and raw JSON; None when nothing was past the cap."""
        if not self.over:
            return None
        total = sum(entry[0] for entry in self.over.values())
        parts = [
            f"{rule} {count} ({kind}, records {first}..{last})"
            for (kind, rule), (count, first, last) in sorted(self.over.items())
        ]
        message = (
            f"{total} more refused record(s) of this source are not kept one by one (the "
            f"first {self.total_cap} are): {'; '.join(parts)}. The source is broken as a whole: "
            "fix the file and ingest it again; that ingest tries every record again"
        )
        raw = json.dumps(
            {
                "cap": self.total_cap,
                "refused": [
                    {"kind": kind, "rule": rule, "count": count, "first": first, "last": last}
                    for (kind, rule), (count, first, last) in sorted(self.over.items())
                ],
            }
        )
        return message, raw

    def close(self) -> None:
        """Write the summary record, if any refusal was past the cap."""
        summary = self.summary()
        if summary is None:
            return
        message, raw = summary
        kinds = sorted({kind for kind, _ in self.over})
        first = min(entry[1] for entry in self.over.values())
        self.con.execute(
            "INSERT INTO quarantine (batch, kind, source, record, ean, rule, message, raw) "
            "VALUES (?, ?, ?, ?, '', ?, ?, ?)",
            [self.batch, ",".join(kinds), self.source, first, CAP_RULE, message, raw],
        )


def _summary_raw(con: duckdb.DuckDBPyConnection, rowid: int) -> str | None:
    rows = con.execute("SELECT raw FROM quarantine WHERE rowid = ?", [rowid]).fetchall()
    return str(rows[0][0]) if rows else None


def _skipped(source: SourceData, done: int) -> BatchReport:
    """The report of a source committed before (batch ``done``) that changes nothing:
    every row counts as a duplicate (records still refused stay in quarantine once)."""
    report = BatchReport(source.source, done, already_ingested=True)
    for piece in source.pieces():
        for name, table in piece.tables.items():
            k = report.kinds.setdefault(name, KindReport())
            k.rows += table.num_rows
            k.duplicates += table.num_rows
        for refusal in piece.refused:
            k = report.kinds.setdefault(refusal.kind, KindReport())
            k.rows += 1
            k.duplicates += 1
    return report


_CONFLICT_IN_BATCH = (
    "another record in this source has the same connection and time with different "
    "values; all of them are kept here: send one corrected record"
)
_CONFLICT_IN_STORE = (
    "a different value is already stored for this connection and time ({old}); a "
    "measured value is not overwritten silently: send a correction"
)


def _without(work: pa.Table, rows: npt.NDArray[np.int64], n: int) -> pa.Table:
    """``work`` without the given source rows (``n`` = rows in the source)."""
    if len(rows) == 0:
        return work
    keep = np.ones(n, dtype=bool)
    keep[rows] = False
    return work.filter(pa.array(keep[work.column("row").to_numpy()]))


def _refusals(
    con: duckdb.DuckDBPyConnection,
    kind: Kind,
    table: pa.Table,
    refused: dict[int, tuple[str, str]],
    report: KindReport,
    raw_rows: int | None = None,
) -> pa.Table:
    """The refused rows in quarantine layout: record, EAN, rule, message and the raw
    record as JSON (built in bulk: a file with a wrong clock refuses every row); only
    for the first ``raw_rows`` when given (the rest go past the quarantine's cap and
    are only counted: no raw record is built for them)."""
    rows = np.array(sorted(refused), dtype=np.int64)
    rules = [refused[r][0] for r in rows.tolist()]
    report.quarantined.update(rules)
    taken = table.take(pa.array(rows))
    records = (
        taken.column("record").combine_chunks().fill_null(0).to_numpy(zero_copy_only=False)
        if "record" in taken.column_names
        else rows + 1
    )
    shown = taken if raw_rows is None else taken.slice(0, max(raw_rows, 0))
    con.register("refused_rows", shown)
    raw = con.sql("SELECT CAST(to_json(r) AS VARCHAR) FROM refused_rows r").to_arrow_table()
    con.unregister("refused_rows")
    if shown.num_rows < taken.num_rows:
        unkept = pa.array([""] * (taken.num_rows - shown.num_rows), pa.string())
        raw = pa.table({"raw": pa.chunked_array([*raw.column(0).chunks, unkept], pa.string())})
    return pa.table(
        {
            "kind": pa.array([kind.name] * len(rows), pa.string()),
            "record": pa.array(records, pa.int64()),
            "ean": taken.column(kind.ean_column).cast(pa.string()).fill_null(""),
            "rule": pa.array(rules, pa.string()),
            "message": pa.array([refused[r][1] for r in rows.tolist()], pa.string()),
            "raw": raw.column(0),
        }
    )


def _refusal_table(refused: Sequence[Refusal]) -> pa.Table:
    """Reader refusals in quarantine layout."""
    return pa.table(
        {
            "kind": pa.array([r.kind for r in refused], pa.string()),
            "record": pa.array([r.record for r in refused], pa.int64()),
            "ean": pa.array([r.ean for r in refused], pa.string()),
            "rule": pa.array([r.rule for r in refused], pa.string()),
            "message": pa.array([r.message for r in refused], pa.string()),
            "raw": pa.array([r.raw for r in refused], pa.string()),
        }
    )


def _next_batch(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT nextval('batch_id')").fetchall()[0][0])


def micros(times: pa.Array) -> npt.NDArray[np.int64]:
    """Microseconds since the epoch (UTC) of a timestamp column; NO_TIME where empty."""
    unit = times.type.unit if pa.types.is_timestamp(times.type) else "us"
    factor = {"s": US, "ms": 1000, "us": 1, "ns": 1}[unit]
    raw = times.cast(pa.int64())
    if times.null_count:
        raw = raw.fill_null(NO_TIME)
    out = raw.to_numpy(zero_copy_only=False)
    if unit == "ns":
        return np.asarray(out // 1000, dtype=np.int64)
    return np.asarray(out * factor if factor != 1 else out, dtype=np.int64)


def _numbers(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    """A value column as NumPy: as stored when complete, float64 with NaN when not."""
    array = column.combine_chunks()
    if array.null_count:
        return np.asarray(array.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False))
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _working_table(
    kind: Kind,
    table: pa.Table,
    ids: npt.NDArray[np.int32],
    time_us: npt.NDArray[np.int64],
    ok: npt.NDArray[np.bool_],
) -> pa.Table:
    """The rows that passed the row checks, in the curated column order plus ``row``.

    Times become naive microseconds holding UTC, the store's form (see ``store``).
    """
    columns: dict[str, pa.Array] = {
        "row": pa.array(np.arange(table.num_rows, dtype=np.int64)),
        "connection": pa.array(ids, pa.int32()),
        kind.time: pa.array(time_us, pa.timestamp("us")),
    }
    for c in (*kind.extra_key, *kind.values):
        columns[c.name] = table.column(c.name).combine_chunks().cast(c.arrow)
    work = pa.table(columns)
    return work if ok.all() else work.filter(pa.array(ok))


def _batch_duplicates(kind: Kind, work: pa.Table) -> tuple[list[int], list[int]]:
    """Rows repeating a key inside the batch: identical copies (duplicates, all but the
    first) and keys with different values (conflicts, every copy)."""
    if work.num_rows < 2:
        return [], []
    if not kind.extra_key:
        key = work.column("connection").to_numpy().astype(np.int64) << 40
        key += work.column(kind.time).cast(pa.int64()).to_numpy() // US
        if np.all(key[1:] > key[:-1]):
            return [], []
    grouped = work.group_by(list(kind.key)).aggregate([("row", "count")])
    repeated = grouped.filter(pc.greater(grouped.column("row_count"), 1))
    if repeated.num_rows == 0:
        return [], []
    dup_rows = work.join(repeated.select(list(kind.key)), keys=list(kind.key), join_type="inner")
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for rec in dup_rows.to_pylist():
        groups.setdefault(tuple(rec[k] for k in kind.key), []).append(rec)
    duplicates: list[int] = []
    conflicts: list[int] = []
    for records in groups.values():
        records.sort(key=lambda r: r["row"])
        first = tuple(records[0][v] for v in kind.value_names)
        if all(tuple(r[v] for v in kind.value_names) == first for r in records):
            duplicates += [r["row"] for r in records[1:]]
        else:
            conflicts += [r["row"] for r in records]
    return duplicates, conflicts


def _q(name: str) -> str:
    """A quoted SQL identifier (column names come from the kinds, never from input)."""
    return f'"{name}"'


def _values_json(kind: Kind, alias: str) -> str:
    """SQL for a row's values as a JSON object (kept with conflicts and corrections)."""
    fields = ", ".join(f"{v} := {alias}.{_q(v)}" for v in kind.value_names)
    return f"to_json(struct_pack({fields or 'none := NULL'}))"


def _key_join(kind: Kind, left: str, right: str) -> str:
    return " AND ".join(f'{left}."{k}" = {right}."{k}"' for k in kind.key)


@dataclass
class _Merge:
    """How incoming rows meet the stored ones (see ``_against_store``)."""

    duplicates: npt.NDArray[np.int64]
    corrected: int
    conflicts: dict[int, str]


def _against_store(
    con: duckdb.DuckDBPyConnection, kind: Kind, work: pa.Table, batch: int
) -> _Merge:
    """Compare with stored rows of the same keys (the merge policy of ``kinds``):
    identical -> duplicate; a stored estimate -> replaced by the measured value, the
    estimate kept in ``correction``; a different measured value -> conflict."""
    lo, hi = (v.as_py() for v in pc.min_max(work.column(kind.time)).values())
    stored = con.execute(
        f"SELECT EXISTS (SELECT 1 FROM {_q(kind.name)} WHERE {_q(kind.time)} BETWEEN ? AND ?)",
        [lo, hi],
    ).fetchall()
    if not stored[0][0]:  # nothing stored in the window: every row is new
        return _Merge(np.zeros(0, dtype=np.int64), 0, {})
    con.register("incoming", work)
    same = " AND ".join(f"c.{_q(v)} IS NOT DISTINCT FROM i.{_q(v)}" for v in kind.value_names)
    old = _values_json(kind, "c")
    on = f"{_key_join(kind, 'c', 'i')} AND c.{_q(kind.time)} BETWEEN ? AND ?"
    estimated = ", ".join(str(code) for code in ESTIMATED_CODES)
    matched = arrow(
        con,
        f"SELECT i.row, CASE WHEN {same or 'TRUE'} THEN 0 "
        f"WHEN c.quality IN ({estimated}) THEN 1 ELSE 2 END AS verdict, "
        f"CASE WHEN NOT ({same or 'TRUE'}) THEN {old} || ', status ' || q.status END AS old "
        f"FROM incoming i JOIN {_q(kind.name)} c ON {on} JOIN quality q ON q.code = c.quality",
        [lo, hi],
    )
    rows = matched.column("row").to_numpy()
    verdict = matched.column("verdict").to_numpy()
    corrections = rows[verdict == 1]
    conflicts = {
        int(r): str(o)
        for r, v, o in zip(
            rows[verdict == 2],
            verdict[verdict == 2],
            matched.filter(pc.equal(matched.column("verdict"), 2)).column("old").to_pylist(),
            strict=True,
        )
        if v == 2
    }
    if len(corrections):
        extra = ", ".join(f"c.{_q(c.name)}" for c in kind.extra_key)
        key_json = f"to_json(list_value({extra}))" if extra else "'[]'"
        con.register("corrected_rows", pa.table({"row": pa.array(corrections, pa.int64())}))
        con.execute(
            f"INSERT INTO correction SELECT ?, ?, c.connection, c.{_q(kind.time)}, {key_json}, "
            f"{old}, q.status, c.batch FROM incoming i "
            f"JOIN corrected_rows r ON r.row = i.row JOIN {_q(kind.name)} c ON {on} "
            "JOIN quality q ON q.code = c.quality",
            [batch, kind.name, lo, hi],
        )
        con.execute(
            f"DELETE FROM {_q(kind.name)} c USING incoming i, corrected_rows r "
            f"WHERE r.row = i.row AND {on}",
            [lo, hi],
        )
        con.unregister("corrected_rows")
    con.unregister("incoming")
    return _Merge(np.asarray(rows[verdict == 0], dtype=np.int64), len(corrections), conflicts)


def _check_counters(
    con: duckdb.DuckDBPyConnection,
    kind: Kind,
    work: pa.Table,
    rules: VeeRules,
    max_watts: Callable[[npt.NDArray[np.int32]], npt.NDArray[np.float64]] | None = None,
) -> tuple[dict[int, str], set[int], dict[int, str]]:
    """Counters of each connection in time order, incoming rows between the stored
    readings around them (MTR-5.counter_backwards, MTR-5.meter_swap); first the rises
    larger than physically possible (MTR-5.implausible_jump), which are left out of
    the backwards walk. Returns (backwards, swaps, jumps).

    The stored readings around the incoming ones are the last before and the first
    after their window, found by ``max``/``min`` per series: once a window function
    over every stored reading of the series, which sorted them all for every piece
    and held them (issue 13: memory and time grew with the meter's history)."""
    counters = list(kind.counters)
    extra = [c.name for c in kind.extra_key]
    series = ["connection", *extra]
    con.register("incoming", work)
    lo, hi = pc.min_max(work.column(kind.time)).values()
    cols = ", ".join(f'"{c}"' for c in [*series, kind.time, *counters])
    part = " AND ".join(f's."{c}" = i."{c}"' for c in series)
    t = _q(kind.time)
    wanted = ", ".join(f"s.{_q(c)}" for c in [*series, kind.time, *counters])
    names = ", ".join(_q(c) for c in series)
    edge = " AND ".join(f's."{c}" = e."{c}"' for c in series)
    stored = arrow(
        con,
        f"WITH keys AS (SELECT DISTINCT {names} FROM incoming), "
        f"near AS NOT MATERIALIZED (SELECT {wanted} FROM {_q(kind.name)} s "
        f"JOIN keys i ON {part}), "
        f"edges AS (SELECT {names}, max({t}) AS {t} FROM near WHERE {t} < ? GROUP BY ALL "
        f"UNION ALL SELECT {names}, min({t}) AS {t} FROM near WHERE {t} > ? GROUP BY ALL) "
        f"SELECT {cols} FROM near WHERE {t} BETWEEN ? AND ? UNION ALL "
        f"SELECT {wanted} FROM near s JOIN edges e ON {edge} AND s.{t} = e.{t}",
        [lo.as_py(), hi.as_py(), lo.as_py(), hi.as_py()],
    )
    con.unregister("incoming")
    incoming = work.select(["row", *series, kind.time, *counters])
    stored = stored.append_column("row", pa.array(np.full(stored.num_rows, -1, dtype=np.int64)))
    both = pa.concat_tables([incoming, stored.select(incoming.column_names).cast(incoming.schema)])
    both = both.sort_by([(c, "ascending") for c in [*series, kind.time]] + [("row", "ascending")])
    regs = np.column_stack(
        [
            both.column(c).cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            for c in counters
        ]
    )
    group = np.zeros(both.num_rows, dtype=np.int64)
    for c in series:
        encoded = pc.dictionary_encode(both.column(c).combine_chunks()).indices
        col = encoded.fill_null(0).to_numpy(zero_copy_only=False)
        group = group * (int(col.max(initial=0)) + 1) + col
    rows = both.column("row").to_numpy()
    times = both.column(kind.time).cast(pa.int64()).to_numpy()
    jumps: dict[int, str] = {}
    if max_watts is not None:
        ids = both.column("connection").to_numpy().astype(np.int32)
        jumps = implausible_jumps(kind, rules, times, regs, group, rows, max_watts(ids))
        if jumps:
            keep = ~np.isin(rows, np.fromiter(jumps, dtype=np.int64))
            regs, group, rows, times = regs[keep], group[keep], rows[keep], times[keep]
    same_series = group[1:] == group[:-1]
    down = np.any(regs[1:] < regs[:-1], axis=1) & same_series
    if not down.any():
        return {}, set(), jumps
    refused: dict[int, str] = {}
    swaps: set[int] = set()
    for g in np.unique(group[1:][down]):
        members = np.flatnonzero(group == g)
        points = [CounterPoint(int(times[i]), tuple(regs[i]), int(rows[i])) for i in members]
        r, s = walk_counters(points, rules)
        refused.update(r)
        swaps |= s
    return refused, swaps, jumps


def _insert(
    con: duckdb.DuckDBPyConnection, kind: Kind, work: pa.Table, batch: int, swaps: set[int]
) -> None:
    """Append the rows as measured; a meter swap's first reading carries its rule."""
    names = ["connection", kind.time, *(c.name for c in kind.extra_key), *kind.value_names]
    columns = ", ".join(_q(c) for c in names)
    quality = str(MEASURED.code)
    if swaps:
        swapped = np.isin(work.column("row").to_numpy(), np.fromiter(swaps, dtype=np.int64))
        codes = np.where(swapped, METER_SWAP.code, MEASURED.code).astype(np.uint8)
        work = work.append_column("quality", pa.array(codes))
        quality = "quality"
    con.register("accepted", work)
    con.execute(
        f"INSERT INTO {_q(kind.name)} SELECT {columns}, {quality}, ? FROM accepted", [batch]
    )
    con.unregister("accepted")


def _swap_findings(
    con: duckdb.DuckDBPyConnection, kind: Kind, work: pa.Table, batch: int, swaps: set[int]
) -> None:
    rows = work.column("row").to_numpy()
    conn = work.column("connection").to_numpy()
    times = work.column(kind.time)
    for i in np.flatnonzero(np.isin(rows, np.fromiter(swaps, dtype=np.int64))):
        at = times[int(i)].as_py()
        con.execute(
            "INSERT INTO finding VALUES (?, ?, ?, ?, ?, 'MTR-5.meter_swap', ?)",
            [
                batch,
                kind.name,
                int(conn[i]),
                at,
                at,
                "registers restarted near zero: a new meter; consumption across the swap "
                "is not the difference of the two readings",
            ],
        )


# --- gaps and estimates ------------------------------------------------------------------


def _fill_gaps(
    con: duckdb.DuckDBPyConnection,
    kind: Kind,
    connections: set[int],
    lo: datetime | None,
    hi: datetime | None,
    batch: int,
    rules: VeeRules,
) -> tuple[int, int]:
    """Find missing intervals in the batch's window for the connections it holds and
        estimate them (MTR-5.gap): from the register readings around the local day when
        both exist (the estimates add up to their difference), else from the connection's
        own history; otherwise they stay missing. ``connections``, ``lo`` and ``hi``: what
    the batch stored (see ``_Window``). Returns (estimated, left missing)."""
    assert kind.interval_s is not None
    if not connections or lo is None or hi is None:
        return 0, 0
    step = kind.interval_s * US
    con.register("incoming", pa.table({"connection": pa.array(sorted(connections), pa.int32())}))
    counts = con.execute(
        f'SELECT q.connection, count(*) AS n, min(q."{kind.time}") AS first FROM "{kind.name}" q '
        f"WHERE q.connection IN (SELECT DISTINCT connection FROM incoming) "
        f'AND q."{kind.time}" <= ? GROUP BY q.connection',
        [hi],
    ).fetchall()
    in_window = dict(
        con.execute(
            f'SELECT connection, count(*) FROM "{kind.name}" WHERE "{kind.time}" BETWEEN ? AND ? '
            f"AND connection IN (SELECT DISTINCT connection FROM incoming) GROUP BY connection",
            [lo, hi],
        ).fetchall()
    )
    con.unregister("incoming")
    lo_us = _us(lo)
    hi_us = _us(hi)
    estimated = 0
    missing_total = 0
    for connection, _, first in counts:
        start_us = max(lo_us, _us(first))
        expected = (hi_us - start_us) // step + 1
        if in_window.get(connection, 0) >= expected:
            continue
        present = micros(
            arrow(
                con,
                f"SELECT {_q(kind.time)} FROM {_q(kind.name)} WHERE connection = ? "
                f"AND {_q(kind.time)} BETWEEN ? AND ?",
                [connection, _naive(start_us), hi],
            )
            .column(0)
            .combine_chunks()
        )
        grid = np.arange(start_us, hi_us + 1, step, dtype=np.int64)
        gaps = np.setdiff1d(grid, present)
        if len(gaps) == 0:
            continue
        e, m = _estimate(con, kind, int(connection), gaps, batch, rules)
        estimated += e
        missing_total += m
    return estimated, missing_total


def _us(value: datetime) -> int:
    return int(value.replace(tzinfo=UTC).timestamp()) * US + value.microsecond


def _naive(us: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=us)


def _estimate(
    con: duckdb.DuckDBPyConnection,
    kind: Kind,
    connection: int,
    gaps: npt.NDArray[np.int64],
    batch: int,
    rules: VeeRules,
) -> tuple[int, int]:
    """Estimate the missing intervals ``gaps`` of one connection; record the findings."""
    values = list(kind.energy) or list(kind.value_names)
    span = rules.history_days * MICROS_PER_DAY
    history = arrow(
        con,
        f"SELECT {_q(kind.time)}, {', '.join(_q(v) for v in values)} FROM {_q(kind.name)} "
        f"WHERE connection = ? AND quality IN ({', '.join(map(str, MEASURED_CODES))}) "
        f"AND {_q(kind.time)} >= ? AND {_q(kind.time)} < ? ORDER BY {_q(kind.time)}",
        [connection, _naive(int(gaps.min()) - span), _naive(int(gaps.max()))],
    )
    est = np.full((len(gaps), len(values)), np.nan)
    if history.num_rows:
        h_us = micros(history.column(0).combine_chunks())
        for j, name in enumerate(values):
            h_values = _numbers(history.column(name))
            est[:, j] = history_means(h_us, h_values, gaps, span, rules.history_min_values)
    quality = np.where(np.isnan(est).any(axis=1), -1, FROM_HISTORY.code).astype(np.int16)
    if kind.name == "quarter_hours":
        _from_readings(con, connection, gaps, est, quality, values)
    done = quality >= 0
    if done.any():
        rows = pa.table(
            {
                "connection": pa.array(np.full(int(done.sum()), connection), pa.int32()),
                kind.time: pa.array(gaps[done], pa.timestamp("us")),
                **{
                    name: pa.array(np.rint(est[done, j]).astype(np.int64))
                    for j, name in enumerate(values)
                },
                "quality": pa.array(quality[done].astype(np.uint8)),
            }
        )
        con.register("estimates", rows)
        value_sql = ", ".join(_q(n) if n in values else "NULL" for n in kind.value_names)
        con.execute(
            f"INSERT INTO {_q(kind.name)} SELECT connection, {_q(kind.time)}, {value_sql}, "
            "quality, ? FROM estimates",
            [batch],
        )
        con.unregister("estimates")
    _gap_findings(con, kind, connection, gaps, quality, batch)
    return int(done.sum()), int((~done).sum())


def history_means(
    h_us: npt.NDArray[np.int64],
    h_values: npt.NDArray[Any],
    gaps: npt.NDArray[np.int64],
    span_us: int,
    least: int,
) -> npt.NDArray[np.float64]:
    """Per gap: the mean of the measured values at the same local time of day in the
    ``span_us`` before it (MTR-5 own-history estimate); NaN with fewer than ``least``."""
    day = MICROS_PER_DAY
    h_tod = local_wall_micros(h_us) % day
    g_tod = local_wall_micros(gaps) % day
    ok = ~np.isnan(h_values.astype(np.float64))
    out = np.full(len(gaps), np.nan)
    for tod in np.unique(g_tod):
        mine = ok & (h_tod == tod)
        times = h_us[mine]
        sums = np.concatenate([[0.0], np.cumsum(h_values[mine].astype(np.float64))])
        which = np.flatnonzero(g_tod == tod)
        lo = np.searchsorted(times, gaps[which] - span_us, "left")
        hi = np.searchsorted(times, gaps[which], "left")
        count = hi - lo
        out[which] = np.where(count >= least, (sums[hi] - sums[lo]) / np.maximum(count, 1), np.nan)
    return out


def _from_readings(
    con: duckdb.DuckDBPyConnection,
    connection: int,
    gaps: npt.NDArray[np.int64],
    est: npt.NDArray[np.float64],
    quality: npt.NDArray[np.int16],
    values: Sequence[str],
) -> None:
    """Quarter-hour estimates per local day that add up to the daily register readings
    (import = 1.8.1 + 1.8.2, export = 2.8.1 + 2.8.2) minus the values present; the
    shape follows the own-history estimate where there is one (MTR-5)."""
    gap_days = local_wall_micros(gaps) // MICROS_PER_DAY
    first = _EPOCH + timedelta(days=int(gap_days.min()))
    last = _EPOCH + timedelta(days=int(gap_days.max()) + 1)
    lo, _ = local_day_bounds_utc(first)
    hi, _ = local_day_bounds_utc(last)
    lo_n, hi_n = lo.replace(tzinfo=None), hi.replace(tzinfo=None)
    readings = arrow(
        con,
        f'SELECT "at", {", ".join(REGISTERS)} FROM daily_readings '
        'WHERE connection = ? AND "at" BETWEEN ? AND ?',
        [connection, lo_n, hi_n],
    )
    if readings.num_rows < 2:
        return
    r_us = micros(readings.column("at").combine_chunks())
    r_regs = {name: _numbers(readings.column(name)) for name in REGISTERS}
    present = arrow(
        con,
        "SELECT start, import_wh, export_wh FROM quarter_hours "
        "WHERE connection = ? AND start >= ? AND start < ?",
        [connection, lo_n, hi_n],
    )
    p_days = local_wall_micros(micros(present.column("start").combine_chunks())) // MICROS_PER_DAY
    pairs = {
        "import_wh": ("import_t1_wh", "import_t2_wh"),
        "export_wh": ("export_t1_wh", "export_t2_wh"),
    }
    for day in np.unique(gap_days):
        start, end = local_day_bounds_utc(_EPOCH + timedelta(days=int(day)))
        at = np.searchsorted(r_us, [_us(start), _us(end)])
        if at[0] >= len(r_us) or at[1] >= len(r_us):
            continue
        if r_us[at[0]] != _us(start) or r_us[at[1]] != _us(end):
            continue
        in_day = gap_days == day
        totals: dict[str, int] = {}
        for name in values:
            t1, t2 = pairs[name]
            ends = [r_regs[t][i] for t in (t1, t2) for i in at]
            if any(np.isnan(float(v)) for v in ends):
                totals[name] = 0
                continue
            used = _numbers(present.column(name))[p_days == day].sum()
            totals[name] = int(
                r_regs[t1][at[1]] + r_regs[t2][at[1]] - r_regs[t1][at[0]] - r_regs[t2][at[0]] - used
            )
        if any(total < 0 for total in totals.values()):
            continue
        for j, name in enumerate(values):
            est[in_day, j] = spread(totals[name], est[in_day, j])
        quality[in_day] = FROM_READINGS.code


def _gap_findings(
    con: duckdb.DuckDBPyConnection,
    kind: Kind,
    connection: int,
    gaps: npt.NDArray[np.int64],
    quality: npt.NDArray[np.int16],
    batch: int,
) -> None:
    """One finding per run of consecutive missing intervals with the same outcome."""
    assert kind.interval_s is not None
    step = kind.interval_s * US
    breaks = np.flatnonzero((np.diff(gaps) != step) | (quality[1:] != quality[:-1])) + 1
    outcome = {
        FROM_READINGS.code: "estimated from the register readings at both ends of the day",
        FROM_HISTORY.code: "estimated from the connection's own history",
        -1: "left missing: no register readings and too little history",
    }
    runs = np.split(np.arange(len(gaps)), breaks)
    firsts = np.array([run[0] for run in runs])
    lasts = np.array([run[-1] for run in runs])
    findings = pa.table(
        {
            "batch": pa.array(np.full(len(runs), batch), pa.int32()),
            "kind": [kind.name] * len(runs),
            "connection": pa.array(np.full(len(runs), connection), pa.int32()),
            "from": pa.array(gaps[firsts], pa.timestamp("us")),
            "until": pa.array(gaps[lasts] + step, pa.timestamp("us")),
            "rule": ["MTR-5.gap"] * len(runs),
            "message": [
                f"{len(run)} interval(s) missing; {outcome[int(quality[run[0]])]}" for run in runs
            ],
        }
    )
    con.register("gap_findings", findings)
    con.execute("INSERT INTO finding SELECT * FROM gap_findings")
    con.unregister("gap_findings")


def _write_quarantine(
    con: duckdb.DuckDBPyConnection, batch: int, source: str, refused: Sequence[pa.Table]
) -> None:
    """Keep every refused record with its reason (MTR-4/5: nothing is dropped)."""
    table = pa.concat_tables(refused)
    if table.num_rows == 0:
        return
    con.register("refused", table)
    con.execute(
        "INSERT INTO quarantine (batch, kind, source, record, ean, rule, message, raw) "
        "SELECT ?, kind, ?, record, ean, rule, message, raw FROM refused",
        [batch, source],
    )
    con.unregister("refused")
