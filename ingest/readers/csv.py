"""CSV, in tiers (mode names as in the load report).

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
from collections.abc import Sequence

import duckdb

from core.vocabulary import quote_identifier as q
from ingest.files import Fingerprint, read_csv_header
from ingest.readers.common import (
    FileColumns,
    StagedFile,
    create_csv_rejects,
    numbered_relation,
    scan_lines,
    stage_lines,
    text_columns,
)
from ingest.registry import SourceSpec
from ingest.temp_tables import (
    CSV_ERRORS,
    CSV_SCANS,
    NUMBERED,
    PARSED,
    REJECTS,
    STAGE,
    count_temp,
    drop_temp_tables,
)

log = logging.getLogger(__name__)


#: CSV files up to this size are staged in a temp table first: parallel on all cores, but
#: memory grows with the file (about 8x its size). Bigger files stream (single pipeline).
PARALLEL_STAGE_MAX_BYTES = 256 << 20
#: Parser errors after which DuckDB's CSV reader may have lost or merged lines.
UNSAFE_CSV_ERRORS = ("UNQUOTED VALUE", "LINE SIZE OVER MAXIMUM", "INVALID STATE")


def inspect_csv(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint
) -> FileColumns:
    """Columns from the header (``column0 ..`` by the first record's width without one)."""
    names = read_csv_header(fp.path, spec, fp.name)
    return text_columns(spec, names) if names else FileColumns((), empty=True)


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
        relation=numbered_relation(con, STAGE, header_lines, ordinals, wide=True),
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


def stage_csv_lines(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, cols: FileColumns
) -> StagedFile:
    """Line-mode CSV: split each physical line with RE2 (quoted fields cannot span lines)."""
    drop_temp_tables(con)
    names = cols.names
    header_lines = 1 if spec.csv.header else 0
    expected = scan_lines(con, spec, fp, spec.csv.encoding, header_lines + 1)
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
    return stage_lines(
        con, "csv_lines", names, expected, fields, f"temp.main.{q(PARSED)} WHERE len(f) = $width",
        {"width": width},
    )
