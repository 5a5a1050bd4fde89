"""Birth dates: parsed from dates or common text formats; implausible ones become null.

A date that is not a real date (``1949-00-13``, ``2001-12-64``) or lies before the floor still
carries evidence: its year, month and day are kept separately (:func:`birth_date_parts`), so
identity resolution can compare what is known instead of losing the whole value.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pyarrow as pa

from identity.normalise.text import distinct

DATE_DTYPE = pd.ArrowDtype(pa.date32())

# Earliest birth date believed by default: for living customers anything before 1900 is a typo
# or a placeholder.  ``min_birth_date`` in identity.yml lowers it for historical data.
MIN_BIRTH_DATE = dt.date(1900, 1, 1)
# Classic "unknown" placeholders, dropped whatever the floor.
PLACEHOLDER_BIRTH_DATES: frozenset[dt.date] = frozenset({dt.date(1900, 1, 1)})
# Parts kept as evidence whatever the floor: a year before this is no birth year.
EARLIEST_BIRTH_YEAR = 1000
BIRTH_DATE_PARTS: tuple[str, ...] = ("birth_year", "birth_month", "birth_day")
PART_DTYPE = "Int16"
_YMD = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:$|[ T])")
_DMY = re.compile(r"^\s*(\d{1,2})[./-](\d{1,2})[./-](\d{4})\s*$")
_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def normalise_birth_date(series: pd.Series, today: dt.date | None = None,
                         min_date: dt.date | None = None) -> pd.Series:
    """Dates from date objects or ISO / dd.mm.yyyy / dd/mm/yyyy strings; implausible → null.

    Implausible: in the future, before ``min_date`` (default :data:`MIN_BIRTH_DATE`), or a
    placeholder (:data:`PLACEHOLDER_BIRTH_DATES`).
    """
    today = today or dt.date.today()
    min_date = min_date or MIN_BIRTH_DATE
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
        # parse each distinct value once (birth dates repeat on every record of a person)
        codes, uniques = distinct(series)
        parsed = _parse_birth_dates(pd.Series(np.asarray(uniques, dtype=object), dtype=object),
                                    today, min_date)
        return pd.Series(parsed.array.take(codes, allow_fill=True), index=series.index,
                         dtype=DATE_DTYPE)
    return _parse_birth_dates(series, today, min_date)


def _parse_birth_dates(series: pd.Series, today: dt.date, min_date: dt.date) -> pd.Series:
    if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_date(series.dtype.pyarrow_dtype):
        parsed = pd.to_datetime(series.astype("object"), errors="coerce")
    elif pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = pd.to_datetime(series, errors="coerce")
    else:
        raw = series.astype("object")
        texts = raw.map(lambda v: v if isinstance(v, str) else None)
        parsed = pd.to_datetime(raw.where(texts.isna()), errors="coerce")
        for fmt in ("ISO8601", "%d.%m.%Y", "%d/%m/%Y", "%Y%m%d", "%d.%m.%y"):
            todo = parsed.isna() & texts.notna()
            if not todo.any():
                break
            parsed = parsed.where(
                ~todo, pd.to_datetime(texts.where(todo).str.strip(), format=fmt,
                                      errors="coerce"))
    parsed = pd.to_datetime(parsed, errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    dates = parsed.dt.normalize()
    ok = (dates >= pd.Timestamp(min_date)) & (dates <= pd.Timestamp(today))
    ok &= ~dates.isin([pd.Timestamp(d) for d in PLACEHOLDER_BIRTH_DATES])
    dates = dates.where(ok)
    return pd.Series(pa.array(dates.dt.date.astype("object").where(dates.notna(), None),
                              type=pa.date32()), index=series.index, dtype=DATE_DTYPE)


# ------------------------------------------------------------------------------------ frame


def birth_date_parts(raw: pd.Series, today: dt.date | None = None) -> pd.DataFrame:
    """``birth_year``, ``birth_month``, ``birth_day`` of each value (nullable ints): from a
    date value, or each plausible part of a text, real date or not and whatever the floor
    (``1949-00-13`` keeps 1949 and 13; ``12.64.2001`` keeps 12 and 2001; a lone 4-digit
    group keeps its year).  Placeholders and future dates give no parts."""
    today = today or dt.date.today()
    codes, uniques = distinct(raw)
    rows = [_value_parts(value, today) for value in uniques]
    out = pd.DataFrame(index=raw.index)
    for i, name in enumerate(BIRTH_DATE_PARTS):
        values = pd.array([row[i] for row in rows], dtype=PART_DTYPE)
        out[name] = pd.Series(values.take(codes, allow_fill=True), index=raw.index)
    return out


def _value_parts(value: object, today: dt.date) -> tuple[int | None, int | None, int | None]:
    if isinstance(value, dt.datetime | pd.Timestamp):
        value = value.date()
    if isinstance(value, dt.date):
        if value in PLACEHOLDER_BIRTH_DATES or value > today:
            return None, None, None
        return value.year, value.month, value.day
    if isinstance(value, str) and not _is_placeholder_text(value):
        return _text_parts(value, today.year)
    return None, None, None


def _is_placeholder_text(value: str) -> bool:
    return any(value.strip().startswith(d.isoformat()) for d in PLACEHOLDER_BIRTH_DATES)


def _text_parts(text: str, this_year: int) -> tuple[int | None, int | None, int | None]:
    """Plausible (year, month, day) of a text that is no real date."""
    for pattern, order in ((_YMD, (0, 1, 2)), (_COMPACT, (0, 1, 2)), (_DMY, (2, 1, 0))):
        found = pattern.match(text)
        if found:
            groups = [int(g) for g in found.groups()]
            year, month, day = (groups[i] for i in order)
            return (year if EARLIEST_BIRTH_YEAR <= year <= this_year else None,
                    month if 1 <= month <= 12 else None,
                    day if 1 <= day <= 31 else None)
    years = [int(y) for y in _YEAR.findall(text)]
    plausible = [y for y in years if EARLIEST_BIRTH_YEAR <= y <= this_year]
    return (plausible[0] if len(plausible) == 1 else None), None, None
