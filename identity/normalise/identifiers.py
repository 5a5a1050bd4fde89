"""Identifiers: customer numbers, national ids, loyalty cards, user and cookie ids."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=200_000)
def normalise_code_value(raw: str) -> str | None:
    """Customer numbers, national ids, loyalty cards: upper-case alphanumerics only (spaces,
    dashes, dots and slashes dropped: ``12.345 678-x`` = ``12345678X``)."""
    text = re.sub(r"[^0-9A-Za-z]", "", raw).upper()
    return text or None


def strip_value(raw: str) -> str | None:
    return raw.strip() or None


