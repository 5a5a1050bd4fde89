"""Landing files rewritten without a person's records.

A landing file is what a delivery was; after an erasure it must hold nothing of the person,
and still count as loaded (its other rows are in raw), so the rewritten bytes take over the
delivery's ledger entry: a new ledger row under the new SHA-256, the old one marked
``erased`` (still "seen", so the old bytes, should they come back, are not loaded as new),
and the raw rows pointing at the new SHA-256. The database changes commit before the file is
replaced, and the rewrite is deterministic, so a kill in between is completed by a rerun. A
file that held nothing but their rows is deleted.

A record of the person is a row whose record key is one of theirs, or any of whose values is
one of their identifiers as the source wrote it (a quarantined line has no usable key).
CSV is re-written through the csv module (content kept, quoting may change), JSON lines line
by line (other lines byte for byte), Parquet through pyarrow.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ingest.files import discover, fingerprint, is_gzip, read_csv_header
from ingest.ledger import FILE_QUARANTINE, LEDGER, RAW, REDELIVERED
from ingest.registry import SourceSpec, compose_key
from ingest.sql import qualified


@dataclass(frozen=True)
class RewrittenFile:
    source: str
    name: str
    old_sha256: str
    new_sha256: str | None  # None: the file held only their rows and was deleted
    rows_removed: int


def rewrite_landing(con: duckdb.DuckDBPyConnection, specs: Iterable[SourceSpec],
                    landing: Path, records: dict[str, set[str]],
                    needles: set[str]) -> list[RewrittenFile]:
    """Rewrite every landing file of ``specs`` that holds a record of the person."""
    done = []
    for spec in specs:
        folder = landing / spec.name
        for path in discover(folder, spec.path):
            rewritten = _rewrite(con, spec, folder, path, records.get(spec.name, set()),
                                 needles)
            if rewritten is not None:
                done.append(rewritten)
    return done


def _rewrite(con: duckdb.DuckDBPyConnection, spec: SourceSpec, folder: Path, path: Path,
             keys: set[str], needles: set[str]) -> RewrittenFile | None:
    old = fingerprint(path, folder, text=spec.format != "parquet")
    content, removed, kept = _without(spec, path, old.name, keys, needles)
    if not removed:
        return None
    if not kept:  # nothing but theirs: the delivery goes (its old bytes stay "seen")
        _take_over_ledger(con, spec.name, old.sha256, None, removed)
        path.unlink()
        return RewrittenFile(spec.name, old.name, old.sha256, None, removed)
    tmp = path.with_name(f".{path.name}.erasure.tmp")  # hidden: discover() skips it
    tmp.write_bytes(content)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    new_sha = fingerprint(tmp, folder, text=False).sha256
    _take_over_ledger(con, spec.name, old.sha256, new_sha, removed)
    os.replace(tmp, path)
    return RewrittenFile(spec.name, old.name, old.sha256, new_sha, removed)


def _without(spec: SourceSpec, path: Path, name: str, keys: set[str],
             needles: set[str]) -> tuple[bytes, int, int]:
    """The file's bytes without the person's rows, how many rows went and how many stay."""
    if spec.format == "parquet":
        return _parquet_without(spec, path, keys, needles)
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if spec.format == "jsonl":
        content, removed, kept = _jsonl_without(spec, raw, keys, needles)
    else:
        content, removed, kept = _csv_without(spec, path, name, raw, keys, needles)
    if removed and is_gzip(path):
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped:
            zipped.write(content)
        content = buffer.getvalue()
    return content, removed, kept


def _key_of(spec: SourceSpec, parts: list[object]) -> object:
    """A row's record key from its key column values (composed as ingest composes it)."""
    return compose_key(parts) if spec.composite_key else parts[0]


def _is_theirs(values: Iterable[object], key: object, keys: set[str],
               needles: set[str]) -> bool:
    if key is not None and str(key).strip() in keys:
        return True
    return any(isinstance(v, str | int) and str(v).strip() in needles for v in values)


def _csv_without(spec: SourceSpec, path: Path, name: str, raw: bytes, keys: set[str],
                 needles: set[str]) -> tuple[bytes, int, int]:
    options = spec.csv
    encoding = "utf-8-sig" if options.encoding == "utf-8" else options.encoding
    text = raw.decode(encoding)
    header = read_csv_header(path, spec, name)
    parts_at = ([header.index(part) for part in spec.key_columns]
                if all(part in header for part in spec.key_columns) else None)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=options.delimiter))
    body_start = 1 if options.header else 0
    kept = rows[:body_start]
    removed = 0
    for row in rows[body_start:]:
        key = (_key_of(spec, [row[at] for at in parts_at])
               if parts_at is not None and max(parts_at) < len(row) else None)
        if _is_theirs(row, key, keys, needles):
            removed += 1
        else:
            kept.append(row)
    if not removed:
        return raw, 0, len(kept) - body_start
    out = io.StringIO(newline="")
    line_end = "\r\n" if "\r\n" in text[:65536] else "\n"
    csv.writer(out, delimiter=options.delimiter, lineterminator=line_end).writerows(kept)
    prefix = "\ufeff" if text.startswith("\ufeff") else ""
    return (prefix + out.getvalue()).encode(options.encoding), removed, len(kept) - body_start


def _jsonl_without(spec: SourceSpec, raw: bytes, keys: set[str],
                   needles: set[str]) -> tuple[bytes, int, int]:
    kept, removed = [], 0
    for line in raw.splitlines(keepends=True):
        try:
            record = json.loads(line)
        except ValueError:  # a line ingest quarantined: judge it by its text
            record = None
        if isinstance(record, dict):
            key = _key_of(spec, [record.get(part) for part in spec.key_columns])
            theirs = _is_theirs(record.values(), key, keys, needles)
        else:
            decoded = line.decode("utf-8", "replace")
            theirs = any(needle in decoded for needle in needles)
        if theirs:
            removed += 1
        else:
            kept.append(line)
    return b"".join(kept), removed, sum(1 for line in kept if line.strip())


def _parquet_without(spec: SourceSpec, path: Path, keys: set[str],
                     needles: set[str]) -> tuple[bytes, int, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    theirs = pa.array([False] * table.num_rows)
    for column in table.column_names:
        values = pc.utf8_trim_whitespace(pc.cast(table[column], pa.string()))
        wanted = needles | keys if column == spec.record_key else needles
        theirs = pc.or_(theirs, _among(values, wanted))
    if spec.composite_key and all(part in table.column_names for part in spec.key_columns):
        parts = [pc.cast(table[part], pa.string()).to_pylist() for part in spec.key_columns]
        composed = pa.array([compose_key(values) for values in zip(*parts, strict=True)],
                            pa.string())
        theirs = pc.or_(theirs, _among(composed, keys))
    removed = int(pc.sum(pc.cast(theirs, pa.int64())).as_py() or 0)
    if not removed:
        return path.read_bytes(), 0, table.num_rows
    buffer = pa.BufferOutputStream()
    kept = table.filter(pc.invert(theirs))
    pq.write_table(kept, buffer, compression="zstd")
    return bytes(buffer.getvalue().to_pybytes()), removed, kept.num_rows


def _among(values: Any, wanted: set[str]) -> Any:
    """Per value of a string array: one of ``wanted`` (an empty set too: typed as strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.fill_null(pc.is_in(values, pa.array(sorted(wanted), pa.string())), False)


def _take_over_ledger(con: duckdb.DuckDBPyConnection, source: str, old: str, new: str | None,
                      removed: int) -> None:
    """The rewritten bytes become the delivery: ledger, file quarantine and raw rows (without
    new bytes, the delivery only ends: its old entry says ``erased``)."""
    params = {"source": source, "old": old, "new": new, "removed": removed}
    ledger = qualified(RAW, LEDGER)
    con.execute("BEGIN TRANSACTION")
    if new is None:
        try:
            con.execute(f"UPDATE {ledger} SET status = 'erased' "
                        "WHERE source = $source AND file_sha256 = $old",
                        {"source": source, "old": old})
            con.execute(f"DELETE FROM {qualified(RAW, FILE_QUARANTINE)} "
                        "WHERE source = $source AND file_sha256 = $old",
                        {"source": source, "old": old})
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return
    try:
        # Counts of what stays: raw and quarantine no longer hold the person's rows.
        con.execute(
            f"""INSERT INTO {ledger} BY NAME
                SELECT * REPLACE (
                    $new AS file_sha256,
                    greatest(rows_in_file - $removed, 0) AS rows_in_file,
                    (SELECT count(*) FROM {qualified(RAW, source)}
                     WHERE _file_sha256 = $old) AS rows_loaded,
                    (SELECT count(*) FROM {qualified(RAW, source + "__rejected")}
                     WHERE _file_sha256 = $old) AS rows_rejected)
                FROM {ledger}
                WHERE source = $source AND file_sha256 = $old
                  AND NOT EXISTS (SELECT 1 FROM {ledger}
                                  WHERE source = $source AND file_sha256 = $new)""", params)
        con.execute(f"UPDATE {ledger} SET status = 'erased' "
                    "WHERE source = $source AND file_sha256 = $old",
                    {"source": source, "old": old})
        moved = {"source": source, "old": old, "new": new}
        con.execute(f"UPDATE {qualified(RAW, FILE_QUARANTINE)} SET file_sha256 = $new "
                    "WHERE source = $source AND file_sha256 = $old", moved)
        con.execute(f"UPDATE {qualified(RAW, REDELIVERED)} SET _file_sha256 = $new "
                    "WHERE source = $source AND _file_sha256 = $old", moved)
        con.execute(f'UPDATE {qualified(RAW, source)} SET _file_sha256 = $new '
                    "WHERE _file_sha256 = $old", {"old": old, "new": new})
        con.execute(f'UPDATE {qualified(RAW, source + "__rejected")} SET _file_sha256 = $new '
                    "WHERE _file_sha256 = $old", {"old": old, "new": new})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
