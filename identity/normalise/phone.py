"""Phone numbers: E.164 via libphonenumber, read per record's own country when it has one."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from identity.normalise.text import blank_to_none, distinct, from_uniques, map_distinct

# ------------------------------------------------------------------------------------ phone


# Regions tried for a number that cannot be a national number of the assumed region: North
# American numbers written nationally, "(404) 727-1863", have no trunk prefix.
FALLBACK_PHONE_REGIONS: tuple[str, ...] = ("US",)


def _parse_valid(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


@lru_cache(maxsize=200_000)
def normalise_phone_value(raw: str, region: str = "DE") -> str | None:
    """E.164 via libphonenumber, ``None`` for anything that is not a valid number.

    Without an international prefix the number is read as national for ``region`` - unless
    it lacks that region's trunk prefix (German national numbers always start with 0), in
    which case the fallback regions are tried first.
    """
    text = raw.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return None
    international = text.lstrip("(").startswith("+") or digits.startswith("00")
    number = None
    if not international:
        trunk = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = trunk.national_prefix if trunk is not None else None
        if prefix and not digits.startswith(prefix):
            for fallback in FALLBACK_PHONE_REGIONS:
                if fallback != region and (number := _parse_valid(text, fallback)):
                    break
    if number is None:
        number = _parse_valid(text, region)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_COUNTRY_CODES = pa.array(sorted(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE))


def phone_national_digits(e164: pd.Series) -> pd.Series:
    """National significant number of E.164 phones: the digits that survive a wrong country
    guess (a British "07700 900123" read as German keeps "7700900123").

    Country calling codes are prefix-free, so the code is the one 1-3 digit prefix that is a
    known code; done in Arrow (as libphonenumber's ``national_number``, leading zeros go)."""
    values = pa.array(e164.array, type=pa.string())
    national = pa.nulls(len(values), pa.string())
    for width in (3, 2, 1):
        code = pc.utf8_slice_codeunits(values, 1, 1 + width)
        known = pc.and_(pc.starts_with(values, "+"), pc.is_in(code, value_set=_COUNTRY_CODES))
        rest = pc.utf8_ltrim(pc.utf8_slice_codeunits(values, 1 + width), "0")
        national = pc.if_else(pc.and_(known, pc.greater(pc.utf8_length(rest), 0)), rest,
                              national)
    return pd.Series(pd.arrays.ArrowStringArray(national).astype("string"), index=e164.index,
                     name=e164.name)


def normalise_phone(
    series: pd.Series, default_region: str = "DE", regions: pd.Series | None = None
) -> pd.Series:
    """Parse phones; a record's own (normalised) country, if known, beats the default region."""
    if regions is None:
        return map_distinct(series, lambda v: normalise_phone_value(v, default_region))
    # distinct (raw phone, region) pairs only: region codes are few, phones repeat a lot
    codes, uniques = distinct(series)
    region_codes, region_values = distinct(regions)
    region_names = [str(r) if str(r) in phonenumbers.SUPPORTED_REGIONS else default_region
                    for r in region_values]
    default_code = len(region_names)
    region_names.append(default_region)
    region_codes = np.where(region_codes < 0, default_code, region_codes).astype(np.int64)
    present = codes >= 0
    pair = np.full(len(codes), -1, dtype=np.int64)
    pair_codes, pairs = pd.factorize(
        codes[present].astype(np.int64) * (default_code + 1) + region_codes[present])
    pair[present] = pair_codes
    values: list[str | None] = []
    for key in pairs:
        text = blank_to_none(uniques[key // (default_code + 1)])
        region = region_names[key % (default_code + 1)]
        values.append(normalise_phone_value(text, region) if text is not None else None)
    return from_uniques(values, pair, series)


