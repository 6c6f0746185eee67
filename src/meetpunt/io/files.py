"""Meter-data files in, the hub's source shape out (MTR-1, MTR-2, MTR-3, MTR-4).

``read_meter_file`` reads one Parquet or CSV file of one kind (quarter-hour values,
daily/monthly readings, hourly gas, 10-minute voltages, event counters, failure logs,
last-gasp messages, manual readings) or one P1 capture, and ``find_sources`` expands
a grid twin's output folder. The variable map turns the source's names and units into
ours (``*_kwh`` -> ``*_wh``, ``*_m3`` -> ``*_dm3``); the twin's own integer
``connection`` column is ignored, because the hub keys rows by the register's id.

Files are **streamed**: the header, the kind and the columns are checked when the file
is opened (a refused file raises :class:`MeterDataError` before anything is written),
and the rows come in bounded pieces (Parquet record batches of :data:`PARQUET_ROWS`,
CSV blocks of :data:`CSV_ROWS`), so memory stays flat however large the file.

Times must carry their zone: Parquet timestamps with a time zone, CSV times in ISO 8601
with an offset (``2025-03-30T01:45:00+01:00`` or ``...Z``). A record is refused on its
own, the rest of the file goes on, with the raw record kept:

* ``MTR-4.parse``: a CSV cell that is not a number or a time; a ``phase`` that is not
  ``L1``..``L3`` (any case) or ``1``..``3`` (CSV and Parquet);
* ``MTR-3.naive``: a CSV time without an offset; ``MTR-3.missing_time``: a record
  without a time (it cannot be placed on the time axis at all);
* ``MTR-4.out_of_range``: a number the column's type cannot hold (``1e30`` watt-hours,
  ``inf``, ``nan``);
* ``MTR-2.encoding``: a CSV line that is not UTF-8; ``MTR-2.field_too_large``: a CSV
  field over :data:`MAX_FIELD_CHARS` (128 KB).

A whole file is refused (nothing of it written) when it cannot be read as a whole:
``MTR-2.not_a_file`` (a folder or a device given as a file), ``MTR-2.unknown_kind``
(``--kind`` names no kind), ``MTR-2.encoding`` (UTF-16 or binary instead of UTF-8 CSV),
``MTR-2.duplicate_column`` (two columns meaning the same, e.g. ``import_kwh`` and
``import_wh``), ``MTR-2.columns`` (a needed column missing), ``MTR-2.unreadable`` (not
Parquet, a damaged row group), ``MTR-3.naive`` (a Parquet time column without a zone).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meetpunt.domain.findings import Finding
from meetpunt.errors import MeterDataError
from meetpunt.meterdata.kinds import KINDS, Kind
from meetpunt.meterdata.source import Refusal, SourceData

UNIT_SUFFIXES = {"_kwh": ("_wh", 1000), "_m3": ("_dm3", 1000)}
"""Source unit suffix -> our suffix and factor (the variable map)."""

P1_SUFFIXES = (".p1", ".txt", ".log", ".raw")
TABLE_SUFFIXES = (".parquet", ".csv")

PARQUET_ROWS = 65_536
"""Rows per Parquet piece: one record batch (a few MB whatever the file's size)."""
PARQUET_PRE_BUFFER = False
"""Whether the Parquet reader reads column chunks ahead (pyarrow's ``pre_buffer``, on by
default). Measured: with it on, reading a file batch by batch buffers the column chunks
of every row group it will read, so the reader held the whole file's compressed bytes
(33 MB for a 32 MB file, 125 MB for a 128 MB one); off, 4 MB for both (issue 13)."""
CSV_ROWS = 20_000
"""Rows per CSV piece: parsed in Python, so smaller than a Parquet piece."""
MAX_FIELD_CHARS = csv.field_size_limit()
"""A CSV field longer than this (the csv module's limit, 128 KB) is refused
(``MTR-2.field_too_large``): no meter value is that long."""
MAX_LINE_CHARS = 1 << 20
"""A CSV line longer than this is refused without being held (``MTR-2.field_too_large``)."""

_TOO_LONG = "\ud800"
"""Stands in for a line over :data:`MAX_LINE_CHARS`: a lone surrogate that decoding
(strict or ``surrogateescape``) never yields, so no real line can be mistaken for it."""

_FIRST = datetime(1, 1, 2, tzinfo=UTC)
_LAST = datetime(9999, 12, 30, tzinfo=UTC)
"""Times a record may carry: a day inside the years datetime can hold on both sides, so
a time shifted to local days (MTR-3) never falls off the calendar."""
_UNIT_PER_SECOND = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}

_INT_RANGES = {
    pa.int8(): (-(1 << 7), (1 << 7) - 1),
    pa.int16(): (-(1 << 15), (1 << 15) - 1),
    pa.int32(): (-(1 << 31), (1 << 31) - 1),
    pa.int64(): (-(1 << 63), (1 << 63) - 1),
}


def refuse_file(path: Path | str, rule: str, message: str, hint: str) -> MeterDataError:
    """A whole file refused: the error names the file, the rule and what to do."""
    text = f"{path}: {message}"
    return MeterDataError(text, [Finding(rule, text)], hint=hint)


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes (a source already ingested in full is skipped)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def our_name(name: str) -> tuple[str, int]:
    """Our column name for a source column, and the factor to our unit."""
    for suffix, (ours, factor) in UNIT_SUFFIXES.items():
        if name.endswith(suffix):
            return name[: -len(suffix)] + ours, factor
    return name, 1


def kind_named(name: str) -> Kind:
    """The kind ``--kind`` names; anything else is refused listing the kinds
    (``MTR-2.unknown_kind``)."""
    kind = KINDS.get(name)
    if kind is None:
        kinds = ", ".join(sorted(KINDS))
        raise MeterDataError(
            f"{name!r} is not a kind of meter data; the kinds are: {kinds}",
            [Finding("MTR-2.unknown_kind", f"{name!r} is not a kind of meter data")],
            hint=f"pass --kind with one of: {kinds} (or leave it out: the file name says it)",
        )
    return kind


def detect_kind(stem: str, columns: Sequence[str]) -> Kind:
    """The kind a file holds: by its name (``quarter_hours.csv``) or by its columns."""
    for name, candidate in KINDS.items():
        if stem == name or stem.startswith(name + "."):
            return candidate
    ours = {our_name(c)[0] for c in columns}
    matches = [
        k
        for k in KINDS.values()
        if {k.ean_column, k.time, *(c.name for c in k.extra_key), *k.value_names} <= ours
    ]
    if len(matches) == 1:
        return matches[0]
    named = ", ".join(k.name for k in matches) or "none"
    shown = ", ".join(c[:40] for c in columns[:20])
    raise MeterDataError(
        f"cannot tell which meter data kind columns {shown} hold "
        f"(matching kinds: {named}); name the file after its kind or pass --kind",
        [Finding("MTR-2.unknown_kind", f"columns {shown} match no single kind")],
        hint="name the file after its kind (quarter_hours.csv) or pass --kind",
    )


NOT_METER_DATA = frozenset({"truth", "register", "operator"})
"""Folders of a twin's output that hold no meter data (skipped in a folder search)."""


def find_sources(paths: Sequence[Path]) -> list[Path]:
    """Files to ingest: files as given; a folder (a twin's output, say) is searched for
    meter data (``meterdata/*.parquet``, ``*.csv``) and P1 captures (``p1/*.p1``), not
    in the twin's ``truth/``, ``register/`` and ``operator/`` folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix in (*TABLE_SUFFIXES, *P1_SUFFIXES)
                and not NOT_METER_DATA & set(p.relative_to(path).parts)
            )
        elif path.exists():
            found.append(path)  # a device or a pipe: refused as MTR-2.not_a_file when read
        else:
            raise refuse_file(path, "MTR-2.not_a_file", "no such file or folder", "check the path")
    return found


def read_meter_file(path: Path, kind_name: str | None = None, ean: str | None = None) -> SourceData:
    """Open one file as a streamed source; P1 captures go to ``read_p1_capture``.

    Everything that refuses the whole file is checked here, before any row is read
    into the hub; the rows themselves come from the source's stream, piece by piece.
    """
    kind = kind_named(kind_name) if kind_name else None
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file"
        raise refuse_file(
            path,
            "MTR-2.not_a_file",
            f"is {what}, not a meter-data file",
            "give a .parquet, .csv or P1 capture file, or a folder to search for them",
        )
    if path.suffix in P1_SUFFIXES:
        from meetpunt.io.p1_source import read_p1_capture

        return read_p1_capture(path, ean=ean)
    if path.suffix == ".parquet":
        return read_meter_parquet(path, kind)
    if path.suffix == ".csv":
        return read_meter_csv(path, kind.name if kind else None)
    raise refuse_file(
        path,
        "MTR-2.not_a_file",
        f"unknown file type {path.suffix!r}",
        "meetpunt reads .parquet, .csv and P1 captures (.p1, .txt, .log, .raw)",
    )


# --- Parquet -----------------------------------------------------------------------------


def _unreadable(path: Path, exc: Exception) -> MeterDataError:
    return refuse_file(
        path,
        "MTR-2.unreadable",
        f"not a readable Parquet file ({str(exc)[:200]})",
        "check that the file is complete Parquet (copy it again from its source)",
    )


def read_meter_parquet(
    path: Path, kind: Kind | None = None, batch_rows: int = PARQUET_ROWS
) -> SourceData:
    """A Parquet file of one kind, streamed in record batches of ``batch_rows``."""
    try:
        schema = pq.ParquetFile(path).schema_arrow
        kind = kind or detect_kind(path.stem, schema.names)
        keep = _columns_of(kind, schema.names, str(path))
        for name in keep:  # what refuses the file is known from the schema
            ours = our_name(name)[0]
            if ours == kind.time:
                _check_time_type(schema.field(name).type, name, str(path))
        text = [c for c in keep if pa.types.is_string(schema.field(c).type)]
    except (OSError, pa.ArrowException, ValueError) as exc:  # (a damaged schema: UnicodeError)
        raise _unreadable(path, exc) from exc

    def stream() -> Iterator[SourceData]:
        offset = 0
        try:
            parquet = pq.ParquetFile(path, read_dictionary=text, pre_buffer=PARQUET_PRE_BUFFER)
            batches = parquet.iter_batches(batch_size=batch_rows, columns=keep)
            for batch in batches:
                table = pa.Table.from_batches([batch])
                yield piece_from_arrow(kind, table, str(path), offset)
                offset += table.num_rows
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise _unreadable(path, exc) from exc

    return SourceData(str(path), sha256_of(path), stream=stream)


def _columns_of(kind: Kind, names: Sequence[str], where: str) -> list[str]:
    """The source columns the kind reads; two columns meaning the same column
    (``MTR-2.duplicate_column``) or a needed column missing (``MTR-2.columns``) refuse
    the file."""
    wanted = set(kind.source_schema().names)
    keep: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        ours = our_name(name.strip())[0]
        if ours not in wanted or ours == "record":
            continue
        if ours in seen:
            raise refuse_file(
                where,
                "MTR-2.duplicate_column",
                f"columns {seen[ours]!r} and {name!r} both give {ours}; which one holds?",
                "keep one column per value and ingest the file again",
            )
        seen[ours] = name
        keep.append(name)
    schema = kind.source_schema()
    missing = [
        f.name for f in list(schema)[1:] if f.name not in seen and f.name not in kind.optional
    ]
    if missing:
        raise refuse_file(
            where,
            "MTR-2.columns",
            f"{kind.name} needs column(s) {', '.join(missing)}",
            f"a {kind.name} file has columns {', '.join(f.name for f in list(schema)[1:])}",
        )
    return keep


def _check_time_type(kind_type: pa.DataType, name: str, where: str) -> None:
    if not pa.types.is_timestamp(kind_type):
        raise refuse_file(
            where,
            "MTR-2.columns",
            f"column {name} is {kind_type}, not a timestamp",
            "write times as Parquet timestamps with a time zone (UTC)",
        )
    if kind_type.tz is None:
        raise refuse_file(
            where,
            "MTR-3.naive",
            f"column {name} has no time zone (MTR-3)",
            "write UTC timestamps (a timestamp type with tz='UTC')",
        )


def _utc(array: pa.Array) -> pa.Array:
    return (
        array
        if array.type.tz in ("UTC", "+00:00", "Etc/UTC")
        else array.cast(pa.timestamp(array.type.unit, "UTC"))
    )


def table_from_arrow(kind: Kind, table: pa.Table, where: str) -> pa.Table:
    """Map an Arrow table with the source's names and units to the kind's source shape
    (a whole in-memory table: rows a reader would refuse raise instead)."""
    piece = piece_from_arrow(kind, table, where, 0)
    if piece.refused:
        first = piece.refused[0]
        raise MeterDataError(
            f"{where}: record {first.record}: {first.message}",
            [Finding(r.rule, r.message) for r in piece.refused[:10]],
        )
    return piece.tables[kind.name]


def piece_from_arrow(kind: Kind, table: pa.Table, where: str, offset: int) -> SourceData:
    """One piece of a Parquet file in the kind's source shape, records numbered from
    ``offset + 1`` (the row's place in the file). A row with a value its column cannot
    hold (``MTR-4.out_of_range``), a phase outside 1..3 (``MTR-4.parse``: the meter's
    phases are 1, 2 and 3) or no time
    (``MTR-3.missing_time``) is refused on its own."""
    n = table.num_rows
    renamed: dict[str, tuple[pa.Array, int]] = {}
    for name in table.column_names:
        ours, factor = our_name(name.strip())
        column = table.column(name)
        array = (
            column.unify_dictionaries().combine_chunks()
            if pa.types.is_dictionary(column.type)
            else column.combine_chunks()
        )
        renamed.setdefault(ours, (array, factor))
    schema = kind.source_schema()
    _columns_of(kind, list(renamed), where)
    bad: dict[int, tuple[str, str]] = {}
    arrays: list[pa.Array] = [pa.array(range(offset + 1, offset + n + 1), pa.int64())]
    fields: list[pa.Field] = [schema.field("record")]
    for wanted in list(schema)[1:]:
        found = renamed.get(wanted.name)
        if found is None:
            column = pa.nulls(n, wanted.type)
        elif wanted.name == kind.time:
            _check_time_type(found[0].type, wanted.name, where)
            column = _utc(found[0])
            for i in _null_rows(column):
                bad.setdefault(i, ("MTR-3.missing_time", f"{kind.time} is empty"))
            for i in _times_off_the_calendar(column):
                bad.setdefault(
                    i, ("MTR-4.out_of_range", f"{kind.time} lies outside the years 1..9999")
                )
        elif pa.types.is_dictionary(found[0].type) and pa.types.is_string(wanted.type):
            column = found[0]  # EANs stay dictionary-encoded: one register lookup per EAN
        else:
            column = _cast_column(found[0], found[1], wanted, where, bad)
            if wanted.name == "phase":
                wrong = pc.invert(pc.is_in(column, pa.array([1, 2, 3], column.type)))
                for i in pc.indices_nonzero(pc.and_(wrong, pc.is_valid(column))).to_pylist():
                    bad.setdefault(
                        i, ("MTR-4.parse", f"phase {column[i].as_py()} is not 1, 2 or 3")
                    )
            if wanted.name in {c.name for c in kind.extra_key}:
                for i in _null_rows(column):
                    bad.setdefault(i, _missing_key(wanted.name))
        arrays.append(column)
        fields.append(wanted.with_type(column.type))
    out = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    piece = SourceData(where, "")
    if bad:
        rows = sorted(bad)
        keep = pa.array([i not in bad for i in range(n)])
        refused_rows = _printable_rows(out.take(pa.array(rows, pa.int64())))
        for i, row in zip(rows, refused_rows, strict=True):
            rule, message = bad[i]
            ean = row.get(kind.ean_column)
            piece.refused.append(
                Refusal(
                    kind.name,
                    offset + i + 1,
                    _printable(str(ean or "")),
                    rule,
                    message,
                    _printable(_raw_json(row)),
                )
            )
        out = out.filter(keep)
    piece.tables[kind.name] = out
    return piece


def _missing_key(name: str) -> tuple[str, str]:
    return ("MTR-5.missing_value", f"{name} is empty; a record needs its {name} (part of its key)")


def _printable_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as Python values for a raw record; times as text, so a time outside the
    years Python can hold is kept too."""
    for at, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            column = table.column(at)
            try:
                text = column.cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                text = column.cast(pa.int64()).cast(pa.string())
            table = table.set_column(at, f.name, text)
    return table.to_pylist()  # type: ignore[no-any-return]


def _times_off_the_calendar(column: pa.Array) -> list[int]:
    """Rows of a UTC timestamp column outside :data:`_FIRST`..:data:`_LAST`."""
    per_second = _UNIT_PER_SECOND[column.type.unit]
    lo = int(_FIRST.timestamp()) * per_second
    hi = int(_LAST.timestamp()) * per_second
    if lo < -(1 << 63) or hi > (1 << 63) - 1:
        return []  # nanoseconds: every value lies in 1677..2262
    raw = column.cast(pa.int64())
    outside = pc.or_(pc.less(raw, lo), pc.greater(raw, hi)).fill_null(False)
    return pc.indices_nonzero(outside).to_pylist()  # type: ignore[no-any-return]


def _null_rows(column: pa.Array) -> list[int]:
    if not column.null_count:
        return []
    return pc.indices_nonzero(pc.is_null(column)).to_pylist()  # type: ignore[no-any-return]


def _cast_column(
    array: pa.Array, factor: int, wanted: pa.Field, where: str, bad: dict[int, tuple[str, str]]
) -> pa.Array:
    """``array`` in the unit and type of ``wanted``; values it cannot hold go to ``bad``
    (``MTR-4.out_of_range``), the others are cast. A column of another kind of value
    altogether (text where a number belongs) refuses the file (``MTR-2.columns``)."""
    target = wanted.type
    if pa.types.is_string(target):
        return array.cast(pa.string()) if not pa.types.is_string(array.type) else array
    if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
        if pa.types.is_null(array.type):
            return pa.nulls(len(array), target)
        raise refuse_file(
            where,
            "MTR-2.columns",
            f"column {wanted.name} is {array.type}, not a number",
            f"write {wanted.name} as a number column",
        )
    values = array
    if factor != 1 or (pa.types.is_floating(array.type) and pa.types.is_integer(target)):
        floats = array.cast(pa.float64())
        values = pc.round(pc.multiply(floats, float(factor))) if factor != 1 else floats
    fits = _fits(values, target)
    if fits is not None:
        for i in pc.indices_nonzero(pc.invert(fits)).to_pylist():
            bad.setdefault(
                i,
                ("MTR-4.out_of_range", f"{wanted.name} holds a value a {target} cannot hold"),
            )
        values = pc.if_else(fits, values, pa.scalar(None, values.type))
    if pa.types.is_floating(values.type) and pa.types.is_integer(target):
        whole = pc.equal(values, pc.round(values))
        for i in pc.indices_nonzero(pc.invert(whole.fill_null(True))).to_pylist():
            bad.setdefault(i, ("MTR-4.parse", f"{wanted.name} is not a whole number"))
        values = pc.if_else(whole.fill_null(True), values, pa.scalar(None, values.type))
    out = values.cast(target, safe=False) if pa.types.is_floating(values.type) else values
    try:
        return out.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise refuse_file(
            where,
            "MTR-2.columns",
            f"column {wanted.name} is not {target} ({exc})",
            f"write {wanted.name} as {target}",
        ) from exc


def _fits(values: pa.Array, target: pa.DataType) -> pa.Array | None:
    """Per row: does the value fit ``target`` (in range, finite)? None when all do."""
    if pa.types.is_floating(target):
        if not pa.types.is_floating(values.type):
            return None
        ok = pc.is_finite(values)
    elif target in _INT_RANGES:
        lo, hi = _INT_RANGES[target]
        if pa.types.is_floating(values.type):  # float64 cannot say 2**63 - 1 exactly
            hi_f = float(hi) if target != pa.int64() else 9.2e18
            ok = pc.and_(
                pc.is_finite(values),
                pc.and_(pc.greater_equal(values, float(lo)), pc.less_equal(values, hi_f)),
            )
        elif values.type == target:
            return None
        else:
            ok = pc.and_(pc.greater_equal(values, lo), pc.less_equal(values, hi))
    else:
        return None
    ok = ok.fill_null(True)
    return None if pc.all(ok).as_py() else ok


def _raw_json(row: dict[str, Any]) -> str:
    import json

    return json.dumps(
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()},
        default=str,
    )


def _printable(text: str) -> str:
    """Text safe to keep in the quarantine: undecodable bytes as ``\\xNN``, NUL spelled
    out, at most 4,096 characters (the file on disk holds the rest)."""
    text = text.replace(_TOO_LONG, f"<a line over {MAX_LINE_CHARS} characters, not kept>")
    safe = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    safe = safe.replace("\x00", "\\x00")
    return safe if len(safe) <= 4096 else safe[:4096] + f"... ({len(safe)} characters)"


# --- CSV ---------------------------------------------------------------------------------


def _csv_handle(path: Path) -> TextIO:
    """The file as text: UTF-8 (a BOM allowed); undecodable bytes are kept as lone
    surrogates so the line holding them can be refused on its own (``MTR-2.encoding``)."""
    with path.open("rb") as probe:
        head = probe.read(4096)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        what = "UTF-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "binary"
        raise refuse_file(
            path,
            "MTR-2.encoding",
            f"is {what}, not UTF-8 text (NUL bytes or a UTF-16 byte order mark at the start)",
            "save the CSV as UTF-8 and ingest it again",
        )
    return path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")


def _bounded_lines(handle: TextIO) -> Iterator[str]:
    """The handle's lines; one longer than :data:`MAX_LINE_CHARS` is read past (never
    held whole) and stands as :data:`_TOO_LONG`."""
    while True:
        line = handle.readline(MAX_LINE_CHARS)
        if not line:
            return
        if len(line) >= MAX_LINE_CHARS and not line.endswith("\n"):
            while True:
                more = handle.readline(MAX_LINE_CHARS)
                if not more or more.endswith("\n"):
                    break
            yield _TOO_LONG + "\n"
            continue
        yield line


def read_meter_csv(
    path: Path,
    kind_name: str | None = None,
    digest: str | None = None,
    block_rows: int = CSV_ROWS,
) -> SourceData:
    """A CSV file of one kind, streamed in blocks of ``block_rows`` rows; a row with a
    bad cell is refused, the rest goes on."""
    try:
        with _csv_handle(path) as handle:
            _, kind, positions = _csv_header(
                csv.reader(_bounded_lines(handle)), str(path), kind_name, path.stem
            )
    except OSError as exc:
        raise refuse_file(
            path, "MTR-2.not_a_file", f"cannot be read ({exc})", "check the file"
        ) from exc

    def stream() -> Iterator[SourceData]:
        with _csv_handle(path) as handle:
            reader = csv.reader(_bounded_lines(handle))
            next(reader, None)
            yield from _csv_pieces(reader, str(path), kind, positions, block_rows)

    return SourceData(str(path), digest or sha256_of(path), stream=stream)


def parse_meter_csv(
    text: str, where: str, kind_name: str | None, digest: str, stem: str = ""
) -> SourceData:
    """Parse CSV text (header row first) into the source shape of its kind, held whole."""
    reader = csv.reader(_bounded_lines(io.StringIO(text)))
    _, kind, positions = _csv_header(reader, where, kind_name, stem)
    source = SourceData(where, digest)
    tables: list[pa.Table] = []
    for piece in _csv_pieces(reader, where, kind, positions, CSV_ROWS):
        tables += piece.tables.values()
        source.refused += piece.refused
    source.tables[kind.name] = pa.concat_tables(tables)
    return source


def _csv_header(
    reader: Iterator[list[str]], where: str, kind_name: str | None, stem: str
) -> tuple[list[str], Kind, dict[str, tuple[int, int]]]:
    """The header row, the kind and each needed column's place and unit factor."""
    try:
        first = next(reader, None)
    except csv.Error as exc:
        raise refuse_file(
            where,
            "MTR-2.field_too_large",
            f"the header cannot be read ({exc})",
            "the first line must be the column names",
        ) from exc
    if first is None:
        raise refuse_file(
            where,
            "MTR-2.columns",
            "empty file; expected a header row",
            "the first line must be the column names",
        )
    header = [h.strip() for h in first]
    if any(_TOO_LONG in h or _has_surrogates(h) for h in header):
        raise refuse_file(
            where,
            "MTR-2.encoding",
            "the header row is not UTF-8 text (or far too long)",
            "save the CSV as UTF-8 and ingest it again",
        )
    kind = kind_named(kind_name) if kind_name else detect_kind(stem, header)
    keep = _columns_of(kind, header, where)
    positions = {our_name(h)[0]: (i, our_name(h)[1]) for i, h in enumerate(header) if h in keep}
    return header, kind, positions


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text) if not text.isascii() else False


def _csv_pieces(
    reader: Iterator[list[str]],
    where: str,
    kind: Kind,
    positions: dict[str, tuple[int, int]],
    block_rows: int,
) -> Iterator[SourceData]:
    """The data rows in pieces of ``block_rows`` rows (record = the row's number, the
    header being record 1)."""
    schema = kind.source_schema()
    ean_at = positions.get(kind.ean_column, (-1, 1))[0]
    record = 1

    def fresh() -> tuple[dict[str, list[Any]], SourceData]:
        return {f.name: [] for f in schema}, SourceData(where, "")

    columns, piece = fresh()
    count = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            record += 1
            rule = "MTR-2.field_too_large" if "field larger" in str(exc) else "MTR-4.parse"
            piece.refused.append(Refusal(kind.name, record, "", rule, _csv_message(rule, exc), ""))
            count += 1
            continue
        record += 1
        if not any(cell.strip() for cell in row):
            continue
        count += 1
        ean = row[ean_at].strip() if 0 <= ean_at < len(row) else ""
        problem = _row_problem(row)
        if problem is not None:
            rule, message = problem
            piece.refused.append(
                Refusal(
                    kind.name,
                    record,
                    _printable(ean[:64]),
                    rule,
                    message,
                    _printable(",".join(row)),
                )
            )
        else:
            parsed = _parse_row(kind, schema, positions, row)
            if isinstance(parsed, Refusal):
                piece.refused.append(
                    Refusal(
                        kind.name,
                        record,
                        _printable(ean[:64]),
                        parsed.rule,
                        parsed.message,
                        _printable(",".join(row)),
                    )
                )
            else:
                columns["record"].append(record)
                for name, value in parsed.items():
                    columns[name].append(value)
        if count >= block_rows:
            piece.tables[kind.name] = pa.Table.from_pydict(columns, schema=schema)
            yield piece
            columns, piece = fresh()
            count = 0
    piece.tables[kind.name] = pa.Table.from_pydict(columns, schema=schema)
    yield piece


def _csv_message(rule: str, exc: Exception) -> str:
    if rule == "MTR-2.field_too_large":
        return (
            f"a field is longer than {MAX_FIELD_CHARS // 1024} KB ({exc}); no meter value "
            "is: check the export (an unclosed quote?)"
        )
    return f"the line is not valid CSV ({exc})"


def _row_problem(row: list[str]) -> tuple[str, str] | None:
    """A row refused before its cells are read: too long, or not UTF-8."""
    for cell in row:
        if _TOO_LONG in cell:
            return (
                "MTR-2.field_too_large",
                f"the line is longer than {MAX_LINE_CHARS // (1 << 20)} MB; no meter record "
                "is: check the export",
            )
        if _has_surrogates(cell):
            return (
                "MTR-2.encoding",
                "the line is not UTF-8 text (Latin-1?); save the CSV as UTF-8 and ingest it again",
            )
    return None


def _parse_row(
    kind: Kind, schema: pa.Schema, positions: dict[str, tuple[int, int]], row: list[str]
) -> dict[str, Any] | Refusal:
    out: dict[str, Any] = {}
    for f in list(schema)[1:]:
        at, factor = positions.get(f.name, (-1, 1))
        cell = row[at].strip() if 0 <= at < len(row) else ""
        if not cell:
            if any(f.name == c.name for c in kind.extra_key):
                rule, message = _missing_key(f.name)
                return Refusal(kind.name, 0, "", rule, message, "")
            if f.name == kind.time:
                return Refusal(
                    kind.name,
                    0,
                    "",
                    "MTR-3.missing_time",
                    f"{kind.time} is empty; a record needs its time",
                    "",
                )
            out[f.name] = None
            continue
        try:
            out[f.name] = _cell(f, cell, factor)
        except _OutOfRangeError as exc:
            return Refusal(kind.name, 0, "", "MTR-4.out_of_range", f"column {f.name}: {exc}", "")
        except (ValueError, OverflowError) as exc:
            rule = "MTR-3.naive" if "time zone" in str(exc) else "MTR-4.parse"
            return Refusal(kind.name, 0, "", rule, f"column {f.name}: {str(exc)[:200]}", "")
    return out


class _OutOfRangeError(ValueError):
    """A number the column's type cannot hold (``MTR-4.out_of_range``)."""


PHASES = {"L1": 1, "L2": 2, "L3": 3}
"""Phase names as DSMR (``1-0:32.7.0`` is "voltage L1") and head-ends write them."""


def parse_phase(cell: str) -> int:
    """A phase cell as the meter's phase number 1..3: ``L1``..``L3`` in any case, or the
    number itself (``2``, ``2.0``). Anything else is a ``ValueError`` (MTR-4.parse)."""
    text = cell.strip().upper()
    if text in PHASES:
        return PHASES[text]
    try:
        number = float(text)
    except ValueError:
        number = 0.0
    if number in (1.0, 2.0, 3.0):
        return int(number)
    raise ValueError(f"{cell[:40]!r} is not a phase; write L1, L2 or L3 (or 1, 2 or 3)")


def _cell(f: pa.Field, cell: str, factor: int) -> Any:
    if f.name == "phase":
        return parse_phase(cell)
    if pa.types.is_timestamp(f.type):
        instant = datetime.fromisoformat(cell.replace("Z", "+00:00"))
        if instant.tzinfo is None:
            raise ValueError(f"{cell!r} has no time zone; write an offset such as +01:00 or Z")
        try:
            utc = instant.astimezone(UTC)
        except OverflowError:
            raise _OutOfRangeError(f"{cell[:40]!r} lies before the year 1 in UTC") from None
        if not _FIRST <= utc <= _LAST:
            raise _OutOfRangeError(f"{cell[:40]!r} lies outside the years 1..9999 in UTC")
        return instant
    if pa.types.is_integer(f.type):
        lo, hi = _INT_RANGES.get(f.type, (-(1 << 63), (1 << 63) - 1))
        if factor != 1:
            number = float(cell) * factor
            if not math.isfinite(number):
                raise _OutOfRangeError(f"{cell[:40]!r} is not a finite number")
            value = round(number)
        else:
            try:
                value = int(cell)
            except ValueError:
                as_float = float(cell)
                if not math.isfinite(as_float):
                    raise _OutOfRangeError(f"{cell[:40]!r} is not a finite number") from None
                if not as_float.is_integer():
                    raise ValueError(f"{cell[:40]!r} is not a whole number") from None
                value = int(as_float)
        if not lo <= value <= hi:
            raise _OutOfRangeError(f"{cell[:40]!r} is outside what a {f.type} holds ({lo}..{hi})")
        return value
    if pa.types.is_floating(f.type):
        number = float(cell)
        if not math.isfinite(number) or (f.type == pa.float32() and abs(number) > 3.4e38):
            raise _OutOfRangeError(f"{cell[:40]!r} is not a finite {f.type}")
        return number
    return cell
