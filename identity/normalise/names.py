"""Person names: folded, titles and ranks dropped, nicknames mapped to the canonical name."""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

from identity.normalise.nicknames import NICKNAMES
from identity.normalise.text import fold, map_distinct

_TITLES = {"dr", "prof", "herr", "frau", "mr", "mrs", "ms", "miss", "dipl", "ing", "med"}
# Honorifics and ranks typed into the first-name field ("Sir", "Rt. Hon.", "Maj.-Gen.").  Only
# dropped from first names: Lord and Major are also family names.
_FIRST_NAME_TITLES = _TITLES | {
    "sir", "lady", "lord", "dame", "rev", "revd", "reverend", "hon", "rt", "the", "very", "st",
    "master", "baron", "capt", "captain", "col", "colonel", "gen", "general", "maj", "major",
    "admiral", "vice", "rear", "lt", "lieutenant", "brig", "sgt", "sergeant",
}
# Ordinals ("1st", "2nd") would otherwise leave "st", "nd" behind once digits are stripped.
_ORDINAL = re.compile(r"\b\d+(st|nd|rd|th)\b")


def _clean_name(raw: str, titles: set[str] = _TITLES) -> str | None:
    text = fold(raw)
    text = re.sub(r"[-_/.,]", " ", text)
    text = _ORDINAL.sub(" ", text)
    text = re.sub(r"[^a-z ]", "", text)
    tokens = [t for t in text.split() if t not in titles]
    return " ".join(tokens) or None


@lru_cache(maxsize=200_000)
def normalise_first_name_value(raw: str) -> str | None:
    """Fold, drop titles, and map nicknames to their canonical first name."""
    name = _clean_name(raw, _FIRST_NAME_TITLES)
    if name is None:
        return None
    return NICKNAMES.get(name, name)


@lru_cache(maxsize=200_000)
def normalise_last_name_value(raw: str) -> str | None:
    return _clean_name(raw)


def normalise_first_name(series: pd.Series) -> pd.Series:
    return map_distinct(series, normalise_first_name_value)


def normalise_last_name(series: pd.Series) -> pd.Series:
    return map_distinct(series, normalise_last_name_value)


def canonical_first_name(name: str) -> str:
    """Public nickname lookup (for tests / callers holding already-folded names)."""
    return NICKNAMES.get(name, name)

