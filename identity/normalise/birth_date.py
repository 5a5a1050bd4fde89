"""Birth dates: parsed from dates or common text formats; implausible ones become null."""

from __future__ import annotations

import datetime as dt

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
