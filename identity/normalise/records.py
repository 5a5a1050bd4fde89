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

#: What a normalised record holds: the canonical fields plus the birth date's parts.
IDENTITY_COLUMNS: tuple[str, ...] = (*CANONICAL_FIELDS, *BIRTH_DATE_PARTS)
INPUT_COLUMNS: tuple[str, ...] = (*RECORD_COLUMNS, *CANONICAL_FIELDS)


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
    for column in BIRTH_DATE_PARTS:  # optional: parts a source states itself (split columns)
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype=PART_DTYPE)
    frame = frame[[*INPUT_COLUMNS, *BIRTH_DATE_PARTS]].reset_index(drop=True)
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
    out["birth_date"] = normalise_birth_date(frame["birth_date"], min_date=min_birth_date)
    stated = frame[list(BIRTH_DATE_PARTS)].astype(PART_DTYPE)
    derived = birth_date_parts(frame["birth_date"])
    own = stated.notna().any(axis=1).to_numpy()
    for column in BIRTH_DATE_PARTS:
        out[column] = stated[column].where(own, derived[column])
    street, embedded_house = normalise_street(frame["street"])
    out["street"] = street
    house = map_distinct(frame["house_number"], normalise_house_number_value)
    out["house_number"] = house.fillna(embedded_house)
    out["postcode"] = normalise_postcode(frame["postcode"], country)
    out["city"] = map_distinct(frame["city"], normalise_city_value)
    out["country"] = country
    out["customer_number"] = map_distinct(frame["customer_number"], normalise_code_value)
    out["user_id"] = map_distinct(frame["user_id"], strip_value)
    out["anonymous_id"] = map_distinct(frame["anonymous_id"], strip_value)
    out["loyalty_card"] = map_distinct(frame["loyalty_card"], normalise_code_value)
    return out


def as_normalised(table: pa.Table) -> pd.DataFrame:
    """Records normalised earlier (read back from ``int_identity__normalised``) in exactly the
    dtypes :func:`normalise_records` returns, so resolution need not normalise them again:
    text as ``string``, birth dates as Arrow dates."""
    columns = [*RECORD_COLUMNS, *IDENTITY_COLUMNS]
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
