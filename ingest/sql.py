"""Identifier quoting: the only way names reach SQL text in ingest (values go as parameters)."""

from __future__ import annotations


def q(identifier: str) -> str:
    """Quote one identifier for DuckDB (embedded double quotes are doubled)."""
    if "\x00" in identifier:
        raise ValueError("identifier contains a NUL character")
    return '"' + identifier.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    """``"schema"."table"``."""
    return f"{q(schema)}.{q(table)}"
