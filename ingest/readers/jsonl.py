"""JSON Lines: one object per line, parsed by DuckDB's JSON functions; other lines quarantined."""

from __future__ import annotations

import duckdb

from core.vocabulary import quote_identifier as q
from ingest.files import Fingerprint
from ingest.readers.common import (
    LINE_SCAN_SEPARATOR,
    FileColumns,
    StagedFile,
    has_content,
    line_scan_sql,
    reader_error,
    scan_lines,
    stage_lines,
    text_columns,
)
from ingest.registry import SourceSpec
from ingest.temp_tables import NUMBERED, PARSED, REJECTS, drop_temp_tables


def _json_keys(con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint) -> list[str]:
    """Union of top-level keys over the file's JSON objects, roughly in first-seen order."""
    sql = f"""
        SELECT k FROM (
            SELECT unnest(json_keys(j)) AS k, unnest(range(len(json_keys(j)))) AS pos
            FROM (SELECT CASE WHEN json_valid(l) THEN l END AS j
                  FROM {line_scan_sql(False)}, ignore_errors=true))
            WHERE json_type(j) = 'OBJECT')
        GROUP BY k ORDER BY min(pos), k
    """
    try:
        rows = con.execute(sql, {"path": str(fp.path), "sep": LINE_SCAN_SEPARATOR}).fetchall()
    except duckdb.Error as error:
        raise reader_error(spec, fp, "cannot read JSONL file", error) from error
    return [str(k) for (k,) in rows]


def inspect_jsonl(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint
) -> FileColumns:
    """Columns = the union of the lines' top-level keys."""
    keys = _json_keys(con, spec, fp)
    if not keys and not has_content(fp):
        return FileColumns((), empty=True)
    return text_columns(spec, keys)


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stage_jsonl(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, cols: FileColumns
) -> StagedFile:
    """One JSON object per line, parsed by DuckDB's JSON functions; other lines quarantined."""
    drop_temp_tables(con)
    expected = scan_lines(con, spec, fp, "utf-8", 1)
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
    return stage_lines(
        con, "jsonl", names, expected,
        [f"v[{i + 1}] AS {q(name)}" for i, name in enumerate(names)],
        f"""(SELECT _line, l, json_extract_string(l, $paths::VARCHAR[]) AS v
             FROM temp.main.{q(PARSED)} WHERE t = 'OBJECT')""",
        {"paths": [_json_path(k) for k in keys]},
    )
