"""A frame of source records in, the same frame with every identity column normalised out."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from core.vocabulary import CANONICAL_FIELDS, RECORD_COLUMNS
from identity.normalise.address import (
    normalise_city_value,
    normalise_house_number_value,
    normalise_postcode,
    normalise_street,
)
from identity.normalise.birth_date import (
    BIRTH_DATE_PARTS,
    DATE_DTYPE,
    PART_DTYPE,
    birth_date_parts,
    normalise_birth_date,
)
from identity.normalise.country import normalise_country_value
from identity.normalise.email import normalise_email
from identity.normalise.identifiers import normalise_code_value, strip_value
from identity.normalise.names import normalise_first_name, normalise_last_name
from identity.normalise.phone import normalise_phone
from identity.normalise.text import map_distinct

IDENTITY_COLUMNS: tuple[str, ...] = CANONICAL_FIELDS
INPUT_COLUMNS: tuple[str, ...] = (*RECORD_COLUMNS, *CANONICAL_FIELDS)
#: Optional input: the birth date as the source wrote it (``int_identity__records`` keeps it
#: beside the parsed date), so the parts of a text that is no date are not lost.
RAW_BIRTH_DATE = "birth_date_raw"


def coerce_input(records: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """Accept pandas or Arrow, add missing identity columns as null, validate keys."""
    # a shallow copy is enough: columns are replaced, never modified in place (copy-on-write)
    frame = records.to_pandas() if isinstance(records, pa.Table) else records.copy(deep=False)
    missing_keys = [c for c in ("source", "record_id") if c not in frame.columns]
    if missing_keys:
        raise ValueError(f"identity input lacks required column(s): {missing_keys}")
    for column in INPUT_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype="object")
    if RAW_BIRTH_DATE not in frame.columns:
        frame[RAW_BIRTH_DATE] = pd.Series(pd.NA, index=frame.index, dtype="object")
    frame = frame[[*INPUT_COLUMNS, RAW_BIRTH_DATE]].reset_index(drop=True)
    frame["source"] = frame["source"].astype("string")
    frame["record_id"] = frame["record_id"].astype("string")
    if frame["source"].isna().any() or frame["record_id"].isna().any():
        raise ValueError("identity input has null source or record_id")
    keys = pa.table({"source": pa.array(frame["source"].array, type=pa.string()),
                     "record_id": pa.array(frame["record_id"].array, type=pa.string())})
    distinct = keys.group_by(["source", "record_id"]).aggregate([]).num_rows
    if distinct != len(frame):
        count = len(frame) - distinct  # rows repeating an earlier row's key
        raise ValueError(f"identity input has {count} duplicate (source, record_id) rows")
    return frame


def normalise_records(records: pd.DataFrame | pa.Table, default_region: str = "DE",
                      min_birth_date: dt.date | None = None) -> pd.DataFrame:
    """Normalise every identity column; same column names, canonical values, nulls for junk.

    ``min_birth_date`` (identity.yml ``min_birth_date``): full birth dates before it are not
    believed (``birth_date`` null); ``None`` means :data:`MIN_BIRTH_DATE`.  The parts
    ``birth_year``/``birth_month``/``birth_day`` keep what any date, real or not, states
    (the record's own parts where the input carries them).
    """
    frame = coerce_input(records)
    out = frame[["source", "record_id", "record_ts"]].copy()
    out["email"] = normalise_email(frame["email"])
    country = map_distinct(frame["country"], normalise_country_value)
    out["phone"] = normalise_phone(frame["phone"], default_region, regions=country)
    out["first_name"] = normalise_first_name(frame["first_name"])
    out["last_name"] = normalise_last_name(frame["last_name"])
    stated = pd.DataFrame({column: _part(frame[column], high)
                           for column, high in zip(BIRTH_DATE_PARTS, (9999, 12, 31),
                                                   strict=True)})
    raw = frame[RAW_BIRTH_DATE].where(frame[RAW_BIRTH_DATE].notna(), frame["birth_date"])
    derived = birth_date_parts(raw)
    own = stated.notna().any(axis=1).to_numpy()
    parts = pd.DataFrame({column: stated[column].where(own, derived[column])
                          for column in BIRTH_DATE_PARTS})
    dates = frame["birth_date"].where(frame["birth_date"].notna(), _date_of(stated))
    out["birth_date"] = normalise_birth_date(dates, min_date=min_birth_date)
    for column in BIRTH_DATE_PARTS:
        out[column] = parts[column]
    street, embedded_house = normalise_street(frame["street"])
    out["street"] = street
    house = map_distinct(frame["house_number"], normalise_house_number_value)
    out["house_number"] = house.fillna(embedded_house)
    out["postcode"] = normalise_postcode(frame["postcode"], country)
    out["city"] = map_distinct(frame["city"], normalise_city_value)
    out["country"] = country
    out["customer_number"] = map_distinct(frame["customer_number"], normalise_code_value)
    out["national_id"] = map_distinct(frame["national_id"], normalise_code_value)
    out["user_id"] = map_distinct(frame["user_id"], strip_value)
    out["anonymous_id"] = map_distinct(frame["anonymous_id"], strip_value)
    out["loyalty_card"] = map_distinct(frame["loyalty_card"], normalise_code_value)
    return out


def _part(values: pd.Series, high: int) -> pd.Series:
    """A stated birth-date part as a nullable int; outside 1..``high`` it states nothing."""
    numbers = pd.to_numeric(values.astype("object"), errors="coerce")
    numbers = numbers.where((numbers >= 1) & (numbers <= high) & (numbers % 1 == 0))
    return numbers.astype(PART_DTYPE)


def _date_of(parts: pd.DataFrame) -> pd.Series:
    """The date three stated parts make where they make one (objects; None elsewhere)."""
    out = pd.Series(None, index=parts.index, dtype=object)
    complete = parts.notna().all(axis=1).to_numpy()
    rows = zip(*(parts[c][complete].astype(int).tolist() for c in BIRTH_DATE_PARTS),
               strict=True)
    dates: list[dt.date | None] = []
    for year, month, day in rows:
        try:
            dates.append(dt.date(year, month, day))
        except ValueError:
            dates.append(None)
    out[complete] = dates
    return out


def as_normalised(table: pa.Table) -> pd.DataFrame:
    """Records normalised earlier (read back from ``int_identity__normalised``) in exactly the
    dtypes :func:`normalise_records` returns, so resolution need not normalise them again:
    text as ``string``, birth dates as Arrow dates."""
    columns = list(INPUT_COLUMNS)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"normalised identity records lack column(s): {missing}")
    frame = pd.DataFrame({"record_ts": table.column("record_ts").to_pandas()})
    for column in columns:
        if column == "birth_date":
            dates = table.column(column).cast(pa.date32())
            frame[column] = pd.Series(dates, dtype=DATE_DTYPE)
        elif column in BIRTH_DATE_PARTS:
            frame[column] = pd.Series(table.column(column).to_pylist(), dtype=PART_DTYPE)
        elif column != "record_ts":
            frame[column] = table.column(column).to_pandas().astype("string")
    return frame[columns]
