"""Keyset pagination on ``profile_id`` with an opaque cursor: stable and complete under
concurrent paging, because a page starts after the last id of the previous one."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import duckdb
from fastapi import HTTPException

from profiles.api.queries import rows_after

_INVALID = "invalid cursor: pass next_cursor from the previous page"


def encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def decode_cursor(cursor: str | None) -> str:
    """The last ``profile_id`` of the previous page (``""`` for the first); 400 otherwise."""
    if not cursor:
        return ""
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))["after"]
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error):
        raise HTTPException(400, _INVALID) from None
    if not isinstance(after, str):
        raise HTTPException(400, _INVALID)
    return after


def page(cur: duckdb.DuckDBPyConnection, table: str, cursor: str | None,
         limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a table stored in ``profile_id`` order, and the cursor of the next."""
    rows = rows_after(cur, table, decode_cursor(cursor), limit + 1)
    items = rows[:limit]
    return items, encode_cursor(items[-1]["profile_id"]) if len(rows) > limit else None
