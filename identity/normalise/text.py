"""Shared machinery of the normalisers: blanks, per-distinct-value mapping, folding.

Every normaliser is a scalar function applied once per *distinct* raw value
(:func:`map_distinct`) because source data repeats the same values heavily (event streams),
which makes this as fast as vectorised string code and far simpler.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import numpy as np
import pandas as pd


def blank_to_none(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    text = str(value).strip()
    if not text or text.lower() in {"nan", "none", "null", "n/a", "na", "-"}:
        return None
    return text


def distinct(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of ``series``; missing values get code -1."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)  # iterating Arrow arrays is slow


def from_uniques(values: list[str | None], codes: np.ndarray, like: pd.Series) -> pd.Series:
    """Expand per-distinct results back to rows (code -1 -> missing) as a ``string`` Series."""
    mapped = pd.array(values, dtype="string")
    return pd.Series(mapped.take(codes, allow_fill=True), index=like.index, name=like.name)


def map_distinct(series: pd.Series, func: Callable[[str], str | None]) -> pd.Series:
    """Apply ``func`` once per distinct non-blank value; blanks become missing."""
    codes, uniques = distinct(series)
    values: list[str | None] = []
    for value in uniques:
        text = blank_to_none(value)
        values.append(func(text) if text is not None else None)
    return from_uniques(values, codes, series)


_FOLD_TABLE = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ø": "o", "ł": "l", "ı": "i",
                             "đ": "d", "æ": "ae", "œ": "oe", "þ": "th"})


_FOLD_AOU_E = re.compile(r"([aou])e")


def fold(text: str) -> str:
    """Case-fold and transliterate so German spelling variants compare equal.

    ß→ss (casefold), ä/ö/ü→a/o/u, other diacritics stripped, and the ASCII spellings
    ae/oe/ue folded too, so müller, mueller and muller all become ``muller``.
    """
    text = text.casefold().translate(_FOLD_TABLE)
    if not text.isascii():  # NFKD leaves ASCII unchanged and it has no combining marks
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _FOLD_AOU_E.sub(r"\1", text)


