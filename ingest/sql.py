"""SQL text helpers of ingest: names reach SQL only quoted (values go as parameters)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import duckdb

from core.vocabulary import quote_identifier

_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def qualified(schema: str, table: str) -> str:
    """``"schema"."table"``."""
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"


def used_params(sql: str, params: Mapping[str, object]) -> dict[str, object]:
    """Only the named parameters a statement uses (DuckDB rejects extra ones)."""
    names = set(_PARAMETER.findall(sql))
    return {k: v for k, v in params.items() if k in names}


def execute_count(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object]) -> int:
    """Run a statement that returns a count (``INSERT``/``DELETE`` rows, ``SELECT count``)."""
    row = con.execute(sql, used_params(sql, params)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
