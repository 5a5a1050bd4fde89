"""Identifiers: customer numbers, loyalty cards, user and cookie ids."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=200_000)
def normalise_code_value(raw: str) -> str | None:
    """Customer numbers / loyalty cards: upper-case alphanumerics only (drop spaces, dashes)."""
    text = re.sub(r"[^0-9A-Za-z]", "", raw).upper()
    return text or None


def strip_value(raw: str) -> str | None:
    return raw.strip() or None


