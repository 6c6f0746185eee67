"""The hub in the application layer: register + store + readers wired for the CLI, the demo
and the API.

Apart from ``hub_store``, the functions here open nothing themselves: the caller passes
the register and the store, so tests and the demo can hand in their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from meetpunt import rulebook
from meetpunt.domain.capacity import Commodity
from meetpunt.domain.connection import MeterType, PhysicalStatus
from meetpunt.domain.vee import VeeRules
from meetpunt.errors import MeterDataError, StoreUnavailableError
from meetpunt.io.files import find_sources, kind_named, read_meter_file
from meetpunt.meterdata.ingest import BatchReport, ConnectionIndex, Ingestor, KindReport
from meetpunt.meterdata.kinds import KINDS
from meetpunt.meterdata.retention import RetentionRecord, run_retention
from meetpunt.meterdata.source import SourceData
from meetpunt.meterdata.store import MeterStore, default_store_path, open_store
from meetpunt.register.store import Register


@contextmanager
def hub_store(path: Path | None = None, create: bool = True) -> Iterator[MeterStore]:
    """The store opened for the hub's own writers (ingestion, retention, quarantine).

    Created or migrated here; after that the file is held only in short leases (one per
    batch, part of a file, retention run or read; MTR-1 side by side), so other
    processes use the store while the block runs. Readers of meter data go through the
    privacy gate instead (one door to meter data); a test checks that only ``meterdata``
    and ``privacy`` open a store. With ``create`` False a missing store is refused
    (MTR-1.store_unavailable) instead of created empty.
    """
    if not create:
        where = Path(path) if path is not None else default_store_path()
        if str(where) != ":memory:" and not where.exists():
            open_store(where, read_only=True).close()  # refuses: there is no store there
    store = open_store(path)
    try:
        yield store
    finally:
        store.close()


def connection_index(register: Register, rules: VeeRules) -> ConnectionIndex:
    """The register as the hub needs it (EAN -> connection id, capacity by date)."""
    with register.session() as session:
        return ConnectionIndex(session.meter_index(), rules.phase_voltage_v)


def ingestor(
    store: MeterStore,
    register: Register,
    rules: VeeRules | None = None,
    now: datetime | None = None,
    on_begin: Callable[[str], None] | None = None,
) -> Ingestor:
    """An :class:`Ingestor` for ``store`` against the current register."""
    rules = rules or rulebook.vee_rules()
    return Ingestor(
        store,
        connection_index(register, rules),
        rules,
        now=now or datetime.now(UTC),
        on_begin=on_begin,
    )


def read_sources(
    paths: Sequence[Path], kind: str | None = None, ean: str | None = None
) -> Iterable[SourceData]:
    """Read every file under ``paths``, one source at a time (files stay on disk)."""
    for path in find_sources(paths):
        yield read_meter_file(path, kind, ean)


UNKNOWN_CONNECTION = "MTR-5.unknown_connection"


def register_matches(index: ConnectionIndex, source: SourceData) -> tuple[int, int]:
    """How many rows of ``source`` are looked up in the register, and how many of those
    are a connection there (the rest would be refused as MTR-5.unknown_connection)."""
    looked_up = matched = 0
    for piece in source.pieces():  # a streamed file: read until a row matches
        for name, table in piece.tables.items():
            if table.num_rows:
                kind = KINDS[name]
                eans = table.column(kind.ean_column).combine_chunks()
                ids = index.connection_ids(eans, kind.commodity)
                looked_up += len(ids)
                matched += int((ids >= 0).sum())
        if matched:
            break
    return looked_up, matched


def unstored_report(source: SourceData) -> BatchReport:
    """The report of a source held back unwritten (``batch`` None): its table rows under
    MTR-5.unknown_connection, its unreadable rows under their own rule (MTR-3/4)."""
    report = BatchReport(source.source, None)
    for piece in source.pieces():
        for refusal in piece.refused:
            k = report.kinds.setdefault(refusal.kind, KindReport())
            k.rows += 1
            k.quarantined[refusal.rule] += 1
        for name, table in piece.tables.items():
            k = report.kinds.setdefault(name, KindReport())
            k.rows += table.num_rows
            if table.num_rows:
                k.quarantined[UNKNOWN_CONNECTION] += table.num_rows
    return report


def refused_report(path: Path, exc: MeterDataError) -> BatchReport:
    """The report of a file refused whole (nothing of it written): its rule, message
    and hint; the run goes on with the other files."""
    rule = exc.findings[0].rule if exc.findings else "MTR-2.unreadable"
    return BatchReport(str(path), None, error={"rule": rule, "message": str(exc), "hint": exc.hint})


def refused_files(reports: Iterable[BatchReport]) -> int:
    """Files of a run refused whole (see :func:`refused_report`)."""
    return sum(1 for r in reports if r.error is not None)


def unmatched_rows(reports: Iterable[BatchReport]) -> int:
    """Rows refused because no row of the run matched a connection in the register
    (MTR-5.unknown_connection in the unwritten reports of :func:`ingest_paths`); 0 when
    some row matched."""
    return sum(
        r.quarantined[UNKNOWN_CONNECTION]
        for r in reports
        if r.batch is None and not r.already_ingested
    )


def ingest_paths(
    store: MeterStore,
    register: Register,
    paths: Sequence[Path],
    kind: str | None = None,
    ean: str | None = None,
    on_begin: Callable[[str], None] | None = None,
) -> list[BatchReport]:
    """``meetpunt ingest PATH...``: every file its own batch, readings before intervals.

    While no row has matched a connection in the register (an empty or another
    register), a file none of whose rows matches is held back unwritten: were its
    refusals committed, the same file would be skipped as already ingested after
    ``meetpunt register import``. Once a row matches, held files are ingested as usual
    (their rows quarantined as MTR-5.unknown_connection). If none ever matches, they are
    reported with ``batch`` None, counted by :func:`unmatched_rows`, and nothing of
    them is written.

    Files are streamed (memory stays flat however large a file). A file refused whole
    (not a file, not UTF-8, a duplicate column, damaged Parquet: a
    :class:`MeterDataError`) is reported with its ``error`` and nothing of it written;
    the run goes on with the other files (:func:`refused_files` counts them). An unknown
    ``kind`` refuses the run before anything is read (``MTR-2.unknown_kind``).
    """
    if kind is not None:
        kind_named(kind)  # --kind bogus: refused before anything is read (MTR-2.unknown_kind)
    engine = ingestor(store, register, on_begin=on_begin)
    files = find_sources(paths)
    files.sort(key=lambda p: (0 if "reading" in p.stem else 1, str(p)))
    reports: list[BatchReport] = []
    held: list[tuple[int, Path]] = []  # (place in reports, file) while nothing matched
    matched_any = False

    def one(path: Path) -> BatchReport:
        try:
            return engine.ingest(read_meter_file(path, kind, ean))
        except StoreUnavailableError:
            raise
        except MeterDataError as exc:  # this file refused whole; the run goes on
            return refused_report(path, exc)

    for path in files:
        if not matched_any:
            try:
                source = read_meter_file(path, kind, ean)
                looked_up, matched = register_matches(engine.index, source)
                if looked_up and not matched:
                    report = unstored_report(source)
                    held.append((len(reports), path))
                    reports.append(report)
                    continue
            except StoreUnavailableError:
                raise
            except MeterDataError as exc:
                reports.append(refused_report(path, exc))
                continue
            matched_any = matched > 0
        reports.append(one(path))
        if matched_any:
            for at, earlier in held:
                reports[at] = one(earlier)
            held.clear()
    return reports


def contract_starts(register: Register, index: ConnectionIndex, today: date) -> dict[int, date]:
    """Start of the contract in force on ``today`` per connection id (MTR-6)."""
    ids = {key: cid for cid, key in index.ean_of.items()}
    starts: dict[int, date] = {}
    with register.session() as session:
        for contract, commodity in session.all_contracts():
            cid = ids.get((contract.allocation_point_ean, commodity))
            if cid is not None and contract.holds_on(today):
                starts[cid] = contract.start
    return starts


def retention(
    store: MeterStore,
    register: Register,
    today: date,
    rules: VeeRules | None = None,
    *,
    dry_run: bool = False,
    confirmed: bool = True,
) -> list[RetentionRecord]:
    """``meetpunt retention run``: delete daily readings past their retention (MTR-6);
    a future ``today`` is refused, ``dry_run`` deletes nothing, an unconfirmed large
    deletion is refused (see :func:`~meetpunt.meterdata.retention.run_retention`)."""
    rules = rules or rulebook.vee_rules()
    index = connection_index(register, rules)
    return run_retention(
        store,
        contract_starts(register, index, today),
        rules,
        today,
        dry_run=dry_run,
        confirmed=confirmed,
    )


def expected_areas(register: Register, day: date, by: str = "pc4") -> dict[int, str]:
    """Connection id -> area (``pc4`` or ``municipality``) of every in-service
    electricity connection with a smart meter on ``day``: those quarter-hour values are
    expected from (MTR-5 completeness)."""
    with register.session() as session:
        ids = {(e.ean, e.commodity): e.connection_id for e in session.meter_index()}
        out: dict[int, str] = {}
        for version in session.connection_versions(on=day):
            a = version.attributes
            if (
                version.commodity is Commodity.ELECTRICITY
                and a.status is PhysicalStatus.IN_SERVICE
                and a.meter_type is MeterType.SMART
            ):
                area = a.address.municipality if by == "municipality" else a.address.postcode[:4]
                out[ids[(version.ean, version.commodity)]] = area
    return out
