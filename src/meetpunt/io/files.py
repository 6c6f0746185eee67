"""Meter-data files in, the hub's source shape out (MTR-1, MTR-3, MTR-4).

``read_meter_file`` reads one Parquet or CSV file of one kind (quarter-hour values,
daily/monthly readings, hourly gas, 10-minute voltages, event counters, failure logs,
last-gasp messages, manual readings) or one P1 capture, and ``find_sources`` expands
a grid twin's output folder. The variable map turns the source's names and units into
ours (``*_kwh`` -> ``*_wh``, ``*_m3`` -> ``*_dm3``); the twin's own integer
``connection`` column is ignored, because the hub keys rows by the register's id.

Times must carry their zone: Parquet timestamps with a time zone, CSV times in ISO 8601
with an offset (``2025-03-30T01:45:00+01:00`` or ``...Z``). A CSV cell that is not a
number or such a time refuses its row (``MTR-4.parse`` / ``MTR-3.naive``) with the raw
line kept; the rest of the file goes on. A ``phase`` cell is ``L1``, ``L2`` or ``L3`` (as
DSMR and head-ends write it, any case) or ``1``, ``2`` or ``3``; anything else refuses its
row as ``MTR-4.parse``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meetpunt.errors import MeterDataError
from meetpunt.meterdata.kinds import KINDS, Kind
from meetpunt.meterdata.source import Refusal, SourceData

UNIT_SUFFIXES = {"_kwh": ("_wh", 1000), "_m3": ("_dm3", 1000)}
"""Source unit suffix -> our suffix and factor (the variable map)."""

P1_SUFFIXES = (".p1", ".txt", ".log", ".raw")
TABLE_SUFFIXES = (".parquet", ".csv")


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
    raise MeterDataError(
        f"cannot tell which meter data kind columns {', '.join(columns)} hold "
        f"(matching kinds: {named}); name the file after its kind or pass --kind"
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
        elif path.is_file():
            found.append(path)
        else:
            raise MeterDataError(f"{path}: no such file or folder")
    return found


def read_meter_file(path: Path, kind_name: str | None = None, ean: str | None = None) -> SourceData:
    """Read one file into the hub's source shape; P1 captures go to ``read_p1_capture``."""
    if path.suffix in P1_SUFFIXES:
        from meetpunt.io.p1_source import read_p1_capture

        return read_p1_capture(path, ean=ean)
    digest = sha256_of(path)
    if path.suffix == ".parquet":
        try:
            columns = pq.ParquetFile(path).schema_arrow
            kind = KINDS[kind_name] if kind_name else detect_kind(path.stem, columns.names)
            wanted = set(kind.source_schema().names)
            keep = [c for c in columns.names if our_name(c)[0] in wanted]
            text = [c for c in keep if pa.types.is_string(columns.field(c).type)]
            table = pq.read_table(path, columns=keep, read_dictionary=text)
        except (OSError, pa.ArrowInvalid) as exc:
            raise MeterDataError(f"{path}: not a readable Parquet file ({exc})") from exc
        source = SourceData(str(path), digest)
        source.tables[kind.name] = table_from_arrow(kind, table, str(path))
        return source
    if path.suffix == ".csv":
        return read_meter_csv(path, kind_name, digest)
    raise MeterDataError(
        f"{path}: unknown file type; meetpunt reads .parquet, .csv and P1 captures"
    )


def _utc(column: pa.ChunkedArray | pa.Array, name: str, where: str) -> pa.Array:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_timestamp(array.type):
        raise MeterDataError(f"{where}: column {name} is {array.type}, not a timestamp")
    if array.type.tz is None:
        raise MeterDataError(
            f"{where}: column {name} has no time zone (MTR-3); write UTC timestamps"
        )
    return (
        array
        if array.type.tz in ("UTC", "+00:00", "Etc/UTC")
        else array.cast(pa.timestamp(array.type.unit, "UTC"))
    )


def table_from_arrow(kind: Kind, table: pa.Table, where: str) -> pa.Table:
    """Map an Arrow table with the source's names and units to the kind's source shape."""
    renamed: dict[str, pa.Array] = {}
    for name in table.column_names:
        ours, factor = our_name(name)
        if ours in renamed:
            continue
        column = table.column(name)
        column = (
            column.unify_dictionaries().combine_chunks()
            if pa.types.is_dictionary(column.type)
            else column.combine_chunks()
        )
        if factor != 1:
            values = pc.round(pc.multiply(column.cast(pa.float64()), float(factor)))
            column = values.cast(pa.int64())
        renamed[ours] = column
    schema = kind.source_schema()
    missing = [
        f.name
        for f in schema
        if f.name != "record" and f.name not in renamed and f.name not in kind.optional
    ]
    if missing:
        raise MeterDataError(f"{where}: {kind.name} needs column(s) {', '.join(missing)}")
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for wanted in list(schema)[1:]:  # no "record": a row's record number is its position
        column = renamed.get(wanted.name)
        if column is None:
            column = pa.nulls(table.num_rows, wanted.type)
        elif wanted.name == kind.time:
            column = _utc(column, wanted.name, where)
        elif not (pa.types.is_dictionary(column.type) and pa.types.is_string(wanted.type)):
            try:  # (EANs stay dictionary-encoded: one register lookup per EAN)
                column = column.cast(wanted.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise MeterDataError(
                    f"{where}: column {wanted.name} is not {wanted.type} ({exc})"
                ) from exc
        arrays.append(column)
        fields.append(wanted.with_type(column.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def read_meter_csv(
    path: Path, kind_name: str | None = None, digest: str | None = None
) -> SourceData:
    """Read a CSV file of one kind; a row with a bad cell is refused, the rest goes on."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MeterDataError(f"{path}: cannot read as UTF-8 text ({exc})") from exc
    return parse_meter_csv(text, str(path), kind_name, digest or sha256_of(path), path.stem)


def parse_meter_csv(
    text: str, where: str, kind_name: str | None, digest: str, stem: str = ""
) -> SourceData:
    """Parse CSV text (header row first) into the source shape of its kind."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise MeterDataError(f"{where}: empty file; expected a header row")
    header = [h.strip() for h in rows[0]]
    kind = KINDS[kind_name] if kind_name else detect_kind(stem, header)
    source = SourceData(where, digest)
    schema = kind.source_schema()
    positions = {our_name(h)[0]: (i, our_name(h)[1]) for i, h in enumerate(header)}
    needed = [f.name for f in list(schema)[1:]]
    missing = [n for n in needed if n not in positions and n not in kind.optional]
    if missing:
        raise MeterDataError(f"{where}: {kind.name} needs column(s) {', '.join(missing)}")
    columns: dict[str, list[Any]] = {f.name: [] for f in schema}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        parsed = _parse_row(kind, schema, positions, row)
        if isinstance(parsed, Refusal):
            ean_at = positions.get(kind.ean_column, (0, 1))[0]
            ean = row[ean_at].strip() if ean_at < len(row) else ""
            source.refused.append(
                Refusal(kind.name, line, ean, parsed.rule, parsed.message, ",".join(row))
            )
            continue
        columns["record"].append(line)
        for name, value in parsed.items():
            columns[name].append(value)
    source.tables[kind.name] = pa.Table.from_pydict(columns, schema=schema)
    return source


def _parse_row(
    kind: Kind, schema: pa.Schema, positions: dict[str, tuple[int, int]], row: list[str]
) -> dict[str, Any] | Refusal:
    out: dict[str, Any] = {}
    for f in list(schema)[1:]:
        at, factor = positions.get(f.name, (-1, 1))
        cell = row[at].strip() if 0 <= at < len(row) else ""
        if not cell:
            out[f.name] = None
            continue
        try:
            out[f.name] = _cell(f, cell, factor)
        except (ValueError, OverflowError) as exc:
            rule = "MTR-3.naive" if "time zone" in str(exc) else "MTR-4.parse"
            return Refusal(kind.name, 0, "", rule, f"column {f.name}: {exc}", "")
    return out


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
    raise ValueError(f"{cell!r} is not a phase; write L1, L2 or L3 (or 1, 2 or 3)")


def _cell(f: pa.Field, cell: str, factor: int) -> Any:
    if f.name == "phase":
        return parse_phase(cell)
    if pa.types.is_timestamp(f.type):
        instant = datetime.fromisoformat(cell.replace("Z", "+00:00"))
        if instant.tzinfo is None:
            raise ValueError(f"{cell!r} has no time zone; write an offset such as +01:00 or Z")
        return instant
    if pa.types.is_integer(f.type):
        number = float(cell) * factor if factor != 1 else None
        if number is not None:
            return round(number)
        try:
            return int(cell)
        except ValueError:
            as_float = float(cell)
            if not as_float.is_integer():
                raise ValueError(f"{cell!r} is not a whole number") from None
            return int(as_float)
    if pa.types.is_floating(f.type):
        return float(cell)
    return cell
