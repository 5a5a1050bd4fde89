"""Parquet: typed columns keep their native type, other columns become text."""

from __future__ import annotations

import re

import duckdb

from core.vocabulary import quote_identifier as q
from ingest.files import Fingerprint
from ingest.readers.common import FileColumns, StagedFile, canonical_names, reader_error
from ingest.registry import SourceSpec
from ingest.temp_tables import REJECTS, STAGE, count_temp, drop_temp_tables

_NESTED = re.compile(r"(STRUCT|MAP|UNION|\[)", re.IGNORECASE)


def inspect_parquet(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint
) -> FileColumns:
    """Columns and their types from the Parquet schema."""
    try:
        described = con.execute(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet($path))",
            {"path": str(fp.path)},
        ).fetchall()
    except duckdb.Error as error:
        raise reader_error(spec, fp, "cannot read Parquet file", error) from error
    names = [str(name) for name, _ in described]
    mapped = canonical_names(spec, names)
    return FileColumns(
        tuple(
            (name, m, str(kind)) for (name, kind), m in zip(described, mapped, strict=True)
        )
    )


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
        raise reader_error(spec, fp, "cannot read Parquet file", error) from error
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
