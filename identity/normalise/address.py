"""Addresses: streets (with an embedded house number split off), house numbers, postcodes,
cities and countries."""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

from identity.normalise.text import blank_to_none, distinct, fold, from_uniques, map_distinct

_STREET_SUFFIX_RE = re.compile(r"(strasse|str\b\.?|str$)")
_HOUSE_RE = re.compile(r"^(?P<street>.*?\D)[\s,]*(?P<house>\d+\s*[a-z]?(\s*[-/]\s*\d+\s*[a-z]?)?)$")


@lru_cache(maxsize=200_000)
def split_street_value(raw: str) -> tuple[str | None, str | None]:
    """Normalise a street and pull off a trailing house number if one is embedded."""
    text = fold(raw)
    house: str | None = None
    match = _HOUSE_RE.match(text.strip())
    if match and match.group("street").strip(" ,"):
        text, house = match.group("street"), re.sub(r"\s+", "", match.group("house"))
    text = _STREET_SUFFIX_RE.sub("str", text)
    text = re.sub(r"[^a-z0-9]", "", text)
    return (text or None), house


def normalise_street(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return (street, house number found inside the street text)."""
    codes, uniques = distinct(series)
    streets: list[str | None] = []
    houses: list[str | None] = []
    for value in uniques:
        text = blank_to_none(value)
        street, house = split_street_value(text) if text else (None, None)
        streets.append(street)
        houses.append(house)
    return from_uniques(streets, codes, series), from_uniques(houses, codes, series)


@lru_cache(maxsize=200_000)
def normalise_house_number_value(raw: str) -> str | None:
    text = re.sub(r"\s+", "", raw.casefold())
    return text or None


@lru_cache(maxsize=200_000)
def normalise_postcode_value(raw: str) -> str | None:
    """Upper-case alphanumerics with country prefixes ('D-', 'A-') dropped."""
    text = re.sub(r"[^0-9A-Za-z]", "", raw.upper())
    text = re.sub(r"^(DE|D|A|AT|CH)-?(?=\d{4,5}$)", "", text)
    return text or None


def normalise_postcode(series: pd.Series, country: pd.Series) -> pd.Series:
    """Postcodes; a German one that lost its leading zero in a spreadsheet gets it back."""
    codes = map_distinct(series, normalise_postcode_value)
    german = country.isna() | (country == "DE")
    short = codes.str.fullmatch(r"\d{4}").fillna(False).astype(bool) & german
    return codes.where(~short, "0" + codes)


@lru_cache(maxsize=200_000)
def normalise_city_value(raw: str) -> str | None:
    text = fold(raw)
    text = re.sub(r"\(.*?\)", " ", text)
    text = re.sub(r"[^a-z ]", " ", text)
    return " ".join(text.split()) or None


# ------------------------------------------------------------------------------ identifiers

