"""E-mail addresses: lower-cased, plus-tags and ``mailto:`` dropped, Gmail's spellings folded."""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

from identity.normalise.text import map_distinct

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}


@lru_cache(maxsize=200_000)
def normalise_email_value(raw: str) -> str | None:
    """Lower-case, trim, drop ``mailto:`` and plus-tags; ``None`` if not an address."""
    text = raw.strip().casefold()
    if text.startswith("mailto:"):
        text = text[7:]
    text = text.strip("<>\"' ")
    if text.count("@") != 1:
        return None
    local, domain = text.split("@")
    local = local.split("+", 1)[0]
    domain = domain.rstrip(".")
    if domain in _GMAIL_DOMAINS:  # Gmail ignores dots and has two spellings of one domain
        domain = "gmail.com"
        local = local.replace(".", "")
    if not local:
        return None
    email = f"{local}@{domain}"
    return email if _EMAIL_RE.fullmatch(email) else None


def normalise_email(series: pd.Series) -> pd.Series:
    return map_distinct(series, normalise_email_value)
