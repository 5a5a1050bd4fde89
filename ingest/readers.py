"""Per-format readers: one landing file -> a SQL relation the loader appends from.

Every reader produces the same two things (no per-row Python anywhere):

* a *relation* with ``_row_number`` plus the file's columns, names already mapped onto the
  registry's spelling; text values stay VARCHAR (the loader casts with TRY_CAST/STRPTIME);
* the temp table ``_ingest_rejects(_line_number, _reason, _raw_line)`` with the lines the
  parser could not turn into a record (broken quoting, wrong field count, bad encoding,
  invalid JSON).

``_row_number`` is the line number of the record in the file (header = line 1) for CSV and
JSONL, so raw rows and quarantined lines share one number space; for Parquet it is the
1-based row position.

CSV, in tiers (mode names as in the load report):

* ``csv``: the file in a temp table (parallel ``read_csv`` with ``store_rejects``), rows
  numbered by ``rowid``, reconciled against the physical lines (values with line breaks are
  counted in); the append from it is parallel too. Used up to ``PARALLEL_STAGE_MAX_BYTES``.
* ``csv_stream``: bigger files: the append reads ``read_csv(...) WITH ORDINALITY`` itself
  (constant memory, but ordinality keeps that pipeline on one thread); the loader proves
  loaded + quarantined = physical lines, else falls back to ``csv``.
* ``csv_lines``: DuckDB's CSV reader can silently swallow thousands of lines after a stray
  quote. When the counts do not add up, every physical line is read on its own (still in
  DuckDB) and split with RE2, so each line ends up either loaded or quarantined (a quoted
  value spanning lines is then quarantined line by line).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from ingest.errors import IngestError, safe_reason
from ingest.files import Fingerprint, read_csv_header, unique_names
from ingest.registry import METADATA_COLUMNS, SourceSpec
from ingest.sql import q

log = logging.getLogger(__name__)

STAGE = "_ingest_stage"
REJECTS = "_ingest_rejects"
CSV_ERRORS = "_ingest_csv_errors"
CSV_SCANS = "_ingest_csv_scans"
LINES = "_ingest_lines"
NUMBERED = "_ingest_numbered"
PARSED = "_ingest_parsed"
GAPS = "_ingest_gaps"
BAD = "_ingest_bad"
ROWNUM = "_ingest_rownum"
TEMP_TABLES = (
    STAGE, REJECTS, CSV_ERRORS, CSV_SCANS, LINES, NUMBERED, PARSED, GAPS, BAD, ROWNUM
)

#: Separator for the line-by-line scan: JSON cannot contain it raw, and the registry forbids
#: it as CSV delimiter, so every physical line arrives as one value.
LINE_SCAN_SEPARATOR = "\x1f"
#: CSV files up to this size are staged in a temp table first: parallel on all cores, but
#: memory grows with the file (about 8x its size). Bigger files stream (single pipeline).
PARALLEL_STAGE_MAX_BYTES = 256 << 20
#: Parser errors after which DuckDB's CSV reader may have lost or merged lines.
UNSAFE_CSV_ERRORS = ("UNQUOTED VALUE", "LINE SIZE OVER MAXIMUM", "INVALID STATE")


@dataclass(frozen=True)
class FileColumns:
    """Columns of one file: (name in the file, name in the warehouse, staged DuckDB type)."""

    columns: tuple[tuple[str, str, str], ...]
    empty: bool = False  # no content at all: a valid empty delivery

    @property
    def names(self) -> list[str]:
        return [name for _, name, _ in self.columns]


@dataclass
class StagedFile:
    """What the loader needs to commit one staged file."""

    mode: str  # csv | csv_stream | csv_lines | jsonl | parquet
    relation: str  # SQL FROM item yielding _row_number + columns (alias it as s)
    columns: dict[str, str]  # warehouse column -> staged DuckDB type
    raw_line_sql: str  # expression over alias s re-creating the source line of a record
    raw_line_params: dict[str, object] = field(default_factory=dict)
    records: int = 0  # rows in relation
    parser_rejects: int = 0  # rows in _ingest_rejects
    expected_total: int | None = None  # physical data lines, when the mode can prove it
    params: dict[str, object] = field(default_factory=dict)  # used by relation
    direct: bool = False  # relation reads the file itself (no temp stage, see stage_csv)
    rescan_relation: str = ""  # direct only: same records again, without collecting rejects
    expected_later: Callable[[], int | None] | None = None  # direct: physical lines, lazily
    header_lines: int = 0


def drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the previous file's staging (temp tables are connection-local)."""
    for table in TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS temp.main.{q(table)}")


def _fail(spec: SourceSpec, fp: Fingerprint, reason: str) -> IngestError:
    return IngestError(
        f"source {spec.name}: file {fp.name} (sha256 {fp.sha256[:12]}): {reason}",
        source=spec.name,
        file=fp.name,
    )


# --------------------------------------------------------------------------- inspect


def canonical_names(spec: SourceSpec, names: Sequence[str]) -> list[str]:
    """Rename file columns that match a registry column up to letter case to its spelling."""
    wanted = {column.lower(): column for column in spec.required_columns}
    reserved = (*METADATA_COLUMNS, "ordinality", "_key")
    return unique_names([wanted.get(name.lower(), name) for name in names], reserved)


def inspect_columns(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint
) -> FileColumns:
    """Read just enough of the file to know its columns (header, JSON keys, Parquet schema)."""
    if fp.size == 0:
        return FileColumns((), empty=True)
    if spec.format == "csv":
        names = read_csv_header(fp.path, spec, fp.name)
        if not names:
            return FileColumns((), empty=True)
        mapped = canonical_names(spec, names)
        return FileColumns(tuple((n, m, "VARCHAR") for n, m in zip(names, mapped, strict=True)))
    if spec.format == "jsonl":
        keys = _json_keys(con, spec, fp)
        if not keys and not _has_content(fp):
            return FileColumns((), empty=True)
        mapped = canonical_names(spec, keys)
        return FileColumns(tuple((k, m, "VARCHAR") for k, m in zip(keys, mapped, strict=True)))
    try:
        described = con.execute(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet($path))",
            {"path": str(fp.path)},
        ).fetchall()
    except duckdb.Error as error:
        raise _fail(spec, fp, f"cannot read Parquet file: {safe_reason(error)}") from error
    names = [str(name) for name, _ in described]
    mapped = canonical_names(spec, names)
    return FileColumns(
        tuple(
            (name, m, str(kind)) for (name, kind), m in zip(described, mapped, strict=True)
        )
    )


def _has_content(fp: Fingerprint) -> bool:
    stats = fp.line_stats()
    return stats is None or stats.has_content


def _line_scan_sql(encoding_param: bool = True) -> str:
    encoding = ", encoding=$encoding" if encoding_param else ""
    return (
        "read_csv($path, columns={'l': 'VARCHAR'}, header=false, delim=$sep, quote='', "
        f"escape='', auto_detect=false{encoding}"
    )


def _json_keys(con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint) -> list[str]:
    """Union of top-level keys over the file's JSON objects, roughly in first-seen order."""
    sql = f"""
        SELECT k FROM (
            SELECT unnest(json_keys(j)) AS k, unnest(range(len(json_keys(j)))) AS pos
            FROM (SELECT CASE WHEN json_valid(l) THEN l END AS j
                  FROM {_line_scan_sql(False)}, ignore_errors=true))
            WHERE json_type(j) = 'OBJECT')
        GROUP BY k ORDER BY min(pos), k
    """
    try:
        rows = con.execute(sql, {"path": str(fp.path), "sep": LINE_SCAN_SEPARATOR}).fetchall()
    except duckdb.Error as error:
        raise _fail(spec, fp, f"cannot read JSONL file: {safe_reason(error)}") from error
    return [str(k) for (k,) in rows]


# --------------------------------------------------------------------------- helpers


def count_temp(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rows in one of the staging temp tables."""
    row = con.execute(f"SELECT count(*) FROM temp.main.{q(table)}").fetchone()
    return int(row[0]) if row else 0


def _numbered_relation(
    con: duckdb.DuckDBPyConnection,
    table: str,
    offset: int,
    reject_ordinals_sql: str | None,
    *,
    wide: bool = False,
) -> str:
    """``table`` with ``_row_number`` = record ordinal in the file + ``offset``.

    The staged rows are in file order (``rowid``), but lines the parser rejected are missing
    from them. With the rejected ordinals q_1 < q_2 < ..., the k-th staged row sits at ordinal
    k + #{i : q_i - i < k}; an ASOF join on g_i = q_i - i finds that count. For wide tables
    the ASOF join would sort every column, so the ordinals are mapped on a narrow table first
    and joined back by position (hash join, parallel).
    """
    row = con.execute(
        f"SELECT coalesce(min(rowid), 0), count(*) FROM temp.main.{q(table)}"
    ).fetchone()
    base, count = (int(row[0]), int(row[1])) if row else (0, 0)
    position = f"(s.rowid - {base} + 1)"
    if reject_ordinals_sql is None:
        return (
            f"(SELECT {position} + {int(offset)} AS _row_number, s.* "
            f"FROM temp.main.{q(table)} s)"
        )
    create_gaps(con, reject_ordinals_sql)
    gaps = f"temp.main.{q(GAPS)}"
    if not wide:
        return (
            f"(SELECT {position} + coalesce(g.i, 0) + {int(offset)} AS _row_number, s.* "
            f"FROM temp.main.{q(table)} s ASOF LEFT JOIN {gaps} g ON {position} > g.g)"
        )
    con.execute(
        f"""CREATE TEMP TABLE {q(ROWNUM)} AS
            SELECT p.k, p.k + coalesce(g.i, 0) + {int(offset)} AS n
            FROM range(1, {count + 1}) p(k) ASOF LEFT JOIN {gaps} g ON p.k > g.g"""
    )
    return (
        f"(SELECT m.n AS _row_number, s.* FROM temp.main.{q(table)} s "
        f"JOIN temp.main.{q(ROWNUM)} m ON m.k = {position})"
    )


def create_gaps(con: duckdb.DuckDBPyConnection, reject_ordinals_sql: str) -> None:
    """GAPS(g, i): for rejected ordinals q_1 < q_2 < ..., g_i = q_i - i (see above)."""
    con.execute(
        f"""CREATE TEMP TABLE {q(GAPS)} AS
            SELECT g, max(i) AS i FROM (
                SELECT ordinal - row_number() OVER (ORDER BY ordinal) AS g,
                       row_number() OVER (ORDER BY ordinal) AS i
                FROM ({reject_ordinals_sql}))
            GROUP BY g"""
    )


def csv_error_stats(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(distinct rejected lines, errors after which lines may be lost) of the last scan."""
    row = con.execute(
        f"""SELECT count(DISTINCT line),
                   count(*) FILTER (WHERE error_type::VARCHAR IN $unsafe
                                       OR contains(trim(csv_line, $crlf), chr(10)))
            FROM temp.main.{q(CSV_ERRORS)}""",
        {"unsafe": list(UNSAFE_CSV_ERRORS), "crlf": "\r\n"},
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def create_csv_rejects(
    con: duckdb.DuckDBPyConnection, reason: str = "malformed CSV line", first_line: int = 0
) -> None:
    """REJECTS from DuckDB's CSV rejects table, one row per rejected line from ``first_line``."""
    con.execute(
        f"""CREATE TEMP TABLE {q(REJECTS)} AS
            SELECT line::BIGINT AS _line_number,
                   $reason || ': ' || string_agg(DISTINCT error_type::VARCHAR || ' ('
                       || error_message || ')', '; ') AS _reason,
                   trim(min(csv_line), $crlf) AS _raw_line
            FROM temp.main.{q(CSV_ERRORS)}
            WHERE line >= $first GROUP BY line""",
        {"crlf": "\r\n", "reason": reason, "first": first_line},
    )


def _regex_char(ch: str) -> str:
    """One character as an RE2 hex escape (safe inside and outside classes)."""
    return f"\\x{{{ord(ch):x}}}"


def _csv_raw_line(columns: Sequence[str], delimiter: str) -> tuple[str, dict[str, object]]:
    """Re-serialise a staged CSV record (only evaluated for quarantined rows)."""
    parts = []
    for column in columns:
        ref = f"s.{q(column)}"
        parts.append(
            f"CASE WHEN {ref} IS NULL THEN '' "
            f"WHEN regexp_matches({ref}, $needs_quote) "
            f"THEN '\"' || replace({ref}, '\"', '\"\"') || '\"' ELSE {ref} END"
        )
    needs_quote = "[" + "".join(_regex_char(c) for c in (delimiter, '"', "\r", "\n")) + "]"
    if not parts:
        return "NULL::VARCHAR", {}
    params: dict[str, object] = {"delim": delimiter, "needs_quote": needs_quote}
    return f"concat_ws($delim, {', '.join(parts)})", params


# --------------------------------------------------------------------------- CSV


_READ_CSV = """read_csv($path, columns=$columns, header=$header, delim=$delim, quote='"',
    escape='"', encoding=$encoding, auto_detect=false, parallel=true"""


def _read_csv_params(spec: SourceSpec, fp: Fingerprint, names: Sequence[str]) -> dict[str, object]:
    return {
        "path": str(fp.path),
        "columns": {name: "VARCHAR" for name in names},
        "header": spec.csv.header,
        "delim": spec.csv.delimiter,
        "encoding": spec.csv.encoding,
    }


def stage_csv(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, cols: FileColumns
) -> StagedFile:
    """Small files: ``stage_csv_staged``; big ones stream (no temp stage, one parse).

    Streaming: lines are counted in a helper thread meanwhile. The loader appends straight
    from ``read_csv(...) WITH ORDINALITY`` with ``store_rejects``, renumbers rows after
    rejected lines, and proves loaded + quarantined = physical lines. Errors after which
    DuckDB may have lost lines, or counts that do not add up, make the loader roll back and
    call ``stage_csv_staged``.
    """
    fp.prefetch_line_stats()
    if fp.size <= PARALLEL_STAGE_MAX_BYTES:
        return stage_csv_staged(con, spec, fp, cols)
    header_lines = 1 if spec.csv.header else 0
    drop_temp_tables(con)
    names = cols.names
    raw_line_sql, raw_params = _csv_raw_line(names, spec.csv.delimiter)

    def numbered(options: str) -> str:
        return (
            f"(SELECT ordinality + {header_lines} AS _row_number, * EXCLUDE (ordinality) "
            f"FROM {_READ_CSV}, {options}) WITH ORDINALITY)"
        )

    return StagedFile(
        mode="csv_stream",
        relation=numbered(
            f"store_rejects=true, rejects_table='{CSV_ERRORS}', rejects_scan='{CSV_SCANS}', "
            "rejects_limit=0"
        ),
        rescan_relation=numbered("ignore_errors=true"),
        columns={name: "VARCHAR" for name in names},
        raw_line_sql=raw_line_sql,
        raw_line_params=raw_params,
        expected_later=lambda: _physical_data_lines(fp, header_lines),
        params=_read_csv_params(spec, fp, names),
        direct=True,
        header_lines=header_lines,
    )


def stage_csv_staged(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, cols: FileColumns
) -> StagedFile:
    """DuckDB's parallel CSV reader with a rejects table; line-mode fallback if unprovable."""
    fp.prefetch_line_stats()
    drop_temp_tables(con)
    names = cols.names
    header_lines = 1 if spec.csv.header else 0
    try:
        con.execute(
            f"""CREATE TEMP TABLE {q(STAGE)} AS SELECT * FROM {_READ_CSV},
                    store_rejects=true, rejects_table='{CSV_ERRORS}',
                    rejects_scan='{CSV_SCANS}', rejects_limit=0)""",
            _read_csv_params(spec, fp, names),
        )
    except duckdb.Error as error:
        log.warning(
            "source=%s file=%s: CSV reader failed (%s); re-reading line by line",
            spec.name, fp.name, type(error).__name__,
        )
        return stage_csv_lines(con, spec, fp, cols)

    records = count_temp(con, STAGE)
    rejected, unsafe = csv_error_stats(con)
    physical = _physical_data_lines(fp, header_lines)
    # Records spanning lines are the only way fewer records than lines can still be complete.
    embedded = (
        _embedded_newlines(con, names)
        if physical is not None and records + rejected < physical
        else 0
    )
    if physical is None or unsafe or records + rejected + embedded != physical:
        log.warning(
            "source=%s file=%s: CSV reader result does not reconcile with the file's lines "
            "(records=%d rejected=%d physical=%s unsafe_errors=%d); re-reading line by line",
            spec.name, fp.name, records, rejected, physical, unsafe,
        )
        return stage_csv_lines(con, spec, fp, cols)

    create_csv_rejects(con)
    ordinals = (
        f"SELECT _line_number - {header_lines} AS ordinal FROM temp.main.{q(REJECTS)}"
        if rejected
        else None
    )
    raw_line_sql, raw_params = _csv_raw_line(names, spec.csv.delimiter)
    return StagedFile(
        mode="csv",
        relation=_numbered_relation(con, STAGE, header_lines, ordinals, wide=True),
        columns={name: "VARCHAR" for name in names},
        raw_line_sql=raw_line_sql,
        raw_line_params=raw_params,
        records=records,
        parser_rejects=rejected,
        expected_total=physical - embedded,
    )


def _physical_data_lines(fp: Fingerprint, header_lines: int) -> int | None:
    """Non-empty physical lines after the header, or None if empty lines sit in between."""
    stats = fp.line_stats()
    if stats is None or stats.has_inner_blank_lines:
        return None
    return max(stats.content_lines() - header_lines, 0)


def _embedded_newlines(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> int:
    """Line breaks inside loaded values (quoted multi-line fields)."""
    if not names:
        return 0
    any_newline = " OR ".join(f"contains({q(n)}, chr(10))" for n in names)
    row = con.execute(
        f"SELECT count(*) FROM temp.main.{q(STAGE)} WHERE {any_newline}"
    ).fetchone()
    if not row or not row[0]:
        return 0
    total = " + ".join(
        f"coalesce(length({q(n)}) - length(replace({q(n)}, chr(10), '')), 0)" for n in names
    )
    row = con.execute(f"SELECT sum({total}) FROM temp.main.{q(STAGE)}").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _scan_lines(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, encoding: str,
    first_data_line: int,
) -> int:
    """Every physical line of the file into NUMBERED(_line, l); unreadable lines to REJECTS.

    Returns the number of non-empty data lines (loaded + rejected must add up to it).
    """
    try:
        con.execute(
            f"""CREATE TEMP TABLE {q(LINES)} AS SELECT l FROM {_line_scan_sql()},
                    store_rejects=true, rejects_table='{CSV_ERRORS}',
                    rejects_scan='{CSV_SCANS}', rejects_limit=0)""",
            {"path": str(fp.path), "sep": LINE_SCAN_SEPARATOR, "encoding": encoding},
        )
    except duckdb.Error as error:
        raise _fail(spec, fp, f"cannot read file: {safe_reason(error)}") from error
    create_csv_rejects(con, "unreadable line", first_data_line)
    row = con.execute(f"SELECT count(DISTINCT line) FROM temp.main.{q(CSV_ERRORS)}").fetchone()
    has_errors = bool(row and row[0])
    ordinals = (
        f"SELECT DISTINCT line::BIGINT AS ordinal FROM temp.main.{q(CSV_ERRORS)}"
        if has_errors
        else None
    )
    relation = _numbered_relation(con, LINES, 0, ordinals)
    blank = "l IS NULL" if spec.format == "csv" else "l IS NULL OR trim(l) = ''"
    con.execute(
        f"""CREATE TEMP TABLE {q(NUMBERED)} AS
            SELECT _row_number AS _line, l FROM {relation} s
            WHERE _row_number >= $first AND NOT ({blank})""",
        {"first": first_data_line},
    )
    return count_temp(con, NUMBERED) + count_temp(con, REJECTS)


def stage_csv_lines(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, cols: FileColumns
) -> StagedFile:
    """Line-mode CSV: split each physical line with RE2 (quoted fields cannot span lines)."""
    drop_temp_tables(con)
    names = cols.names
    header_lines = 1 if spec.csv.header else 0
    expected = _scan_lines(con, spec, fp, spec.csv.encoding, header_lines + 1)
    d = _regex_char(spec.csv.delimiter)
    field_re = f'"(?:[^"]|"")*"|(?:[^"{d}][^{d}]*)?'
    params = {
        "line_re": f"(?:{field_re})(?:{d}(?:{field_re}))*",
        "field_re": f"{d}({field_re})",
        "delim": spec.csv.delimiter,
    }
    con.execute(
        f"""CREATE TEMP TABLE {q(PARSED)} AS
            SELECT _line, l,
                   CASE WHEN regexp_full_match(l, $line_re)
                        THEN regexp_extract_all($delim || l, $field_re, 1) END AS f
            FROM temp.main.{q(NUMBERED)}""",
        params,
    )
    width = len(names)
    con.execute(
        f"""INSERT INTO temp.main.{q(REJECTS)}
            SELECT _line, CASE
                WHEN f IS NULL THEN 'malformed CSV line: unbalanced or misplaced quote'
                WHEN len(f) < $width THEN 'malformed CSV line: MISSING COLUMNS (expected '
                    || $width || ' fields, found ' || len(f) || ')'
                ELSE 'malformed CSV line: TOO MANY COLUMNS (expected ' || $width
                    || ' fields, found ' || len(f) || ')' END, l
            FROM temp.main.{q(PARSED)} WHERE f IS NULL OR len(f) <> $width""",
        {"width": width},
    )
    fields = [
        f"""nullif(CASE WHEN starts_with(f[{i + 1}], '"')
                   THEN replace(substr(f[{i + 1}], 2, length(f[{i + 1}]) - 2), '""', '"')
                   ELSE f[{i + 1}] END, '') AS {q(name)}"""
        for i, name in enumerate(names)
    ]
    return _stage_lines(
        con, "csv_lines", names, expected, fields, f"temp.main.{q(PARSED)} WHERE len(f) = $width",
        {"width": width},
    )


def _stage_lines(
    con: duckdb.DuckDBPyConnection,
    mode: str,
    names: list[str],
    expected: int,
    fields: Sequence[str],
    parsed: str,
    params: dict[str, object],
) -> StagedFile:
    """STAGE from parsed lines (``_line``, ``l``): ``fields`` are the select items of the
    columns; each record keeps its line as ``_raw_line`` for quarantine."""
    con.execute(
        f"""CREATE TEMP TABLE {q(STAGE)} AS
            SELECT _line AS _row_number, l AS _raw_line{''.join(', ' + f for f in fields)}
            FROM {parsed}""",
        params,
    )
    return StagedFile(
        mode=mode,
        relation=f"temp.main.{q(STAGE)}",
        columns={name: "VARCHAR" for name in names},
        raw_line_sql="s._raw_line",
        records=count_temp(con, STAGE),
        parser_rejects=count_temp(con, REJECTS),
        expected_total=expected,
    )


# --------------------------------------------------------------------------- JSONL


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stage_jsonl(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, cols: FileColumns
) -> StagedFile:
    """One JSON object per line, parsed by DuckDB's JSON functions; other lines quarantined."""
    drop_temp_tables(con)
    expected = _scan_lines(con, spec, fp, "utf-8", 1)
    con.execute(
        f"""CREATE TEMP TABLE {q(PARSED)} AS
            SELECT _line, l, CASE WHEN json_valid(l) THEN json_type(l) END AS t
            FROM temp.main.{q(NUMBERED)}"""
    )
    con.execute(
        f"""INSERT INTO temp.main.{q(REJECTS)}
            SELECT _line, CASE WHEN t IS NULL THEN 'invalid JSON line'
                               ELSE 'JSON line is not an object (found ' || t || ')' END, l
            FROM temp.main.{q(PARSED)} WHERE t IS DISTINCT FROM 'OBJECT'"""
    )
    keys = [source for source, _, _ in cols.columns]
    names = cols.names
    return _stage_lines(
        con, "jsonl", names, expected,
        [f"v[{i + 1}] AS {q(name)}" for i, name in enumerate(names)],
        f"""(SELECT _line, l, json_extract_string(l, $paths::VARCHAR[]) AS v
             FROM temp.main.{q(PARSED)} WHERE t = 'OBJECT')""",
        {"paths": [_json_path(k) for k in keys]},
    )


# --------------------------------------------------------------------------- Parquet

_NESTED = re.compile(r"(STRUCT|MAP|UNION|\[)", re.IGNORECASE)


def stage_parquet(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, cols: FileColumns
) -> StagedFile:
    """Parquet via read_parquet; typed columns keep their native type, others become text."""
    drop_temp_tables(con)
    typed = spec.column_types
    select = []
    staged: dict[str, str] = {}
    for source_name, name, kind in cols.columns:
        ref = q(source_name)
        if name in typed:
            select.append(f"{ref} AS {q(name)}")
            staged[name] = kind
        elif _NESTED.search(kind):
            select.append(f"CAST(to_json({ref}) AS VARCHAR) AS {q(name)}")
            staged[name] = "VARCHAR"
        else:
            select.append(f"CAST({ref} AS VARCHAR) AS {q(name)}")
            staged[name] = "VARCHAR"
    try:
        con.execute(
            f"""CREATE TEMP TABLE {q(STAGE)} AS
                SELECT file_row_number + 1 AS _row_number{''.join(', ' + s for s in select)}
                FROM read_parquet($path, file_row_number=true)""",
            {"path": str(fp.path)},
        )
    except duckdb.Error as error:
        raise _fail(spec, fp, f"cannot read Parquet file: {safe_reason(error)}") from error
    con.execute(
        f"CREATE TEMP TABLE {q(REJECTS)} (_line_number BIGINT, _reason VARCHAR, _raw_line VARCHAR)"
    )
    packed = ", ".join(f"{q(name)} := s.{q(name)}" for name in staged)
    records = count_temp(con, STAGE)
    return StagedFile(
        mode="parquet",
        relation=f"temp.main.{q(STAGE)}",
        columns=staged,
        raw_line_sql=f"to_json(struct_pack({packed}))" if packed else "NULL::VARCHAR",
        records=records,
        parser_rejects=0,
        expected_total=records,
    )


STAGERS = {"csv": stage_csv, "jsonl": stage_jsonl, "parquet": stage_parquet}


def stage_file(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, cols: FileColumns
) -> StagedFile:
    """Stage one file with the reader of its source's format."""
    return STAGERS[spec.format](con, spec, fp, cols)


def missing_columns(spec: SourceSpec, present: Mapping[str, object] | Sequence[str]) -> list[str]:
    """Registry columns (key, timestamp, identity, typed) the file does not carry.

    JSON omits absent values, so a JSONL file only has to carry record key and timestamp;
    its other mapped keys may be missing from every line (they load as NULL).
    """
    have = {str(name) for name in present}
    required = (
        [spec.record_key, spec.timestamp] if spec.format == "jsonl" else spec.required_columns
    )
    return [column for column in dict.fromkeys(required) if column and column not in have]
