"""Countries to ISO 3166-1 alpha-2, from pycountry's maintained tables.

Every alpha-2 and alpha-3 code, English name, official and common name, and the names in the
languages customer data here is written in (German, French, Italian, Dutch, Polish, Spanish:
pycountry ships their translations) fold to one code; so do the spellings people type that
no standard lists - car stickers (D, A), old names (BRD), parts for the whole (England). The
folding is the identity normaliser's (umlauts and ß transliterated, case and punctuation
dropped), so "Österreich", "osterreich" and "OESTERREICH" agree.
"""

from __future__ import annotations

import gettext
import re
from functools import cache, lru_cache

import pycountry

from identity.normalise.text import fold

#: Languages whose country names are recognised besides English.
NAME_LANGUAGES = ("de", "fr", "it", "nl", "pl", "es")

#: Spellings no standard lists: international vehicle codes, colloquial and former names.
COLLOQUIAL = {
    "d": "DE", "brd": "DE", "ger": "DE", "a": "AT", "f": "FR", "i": "IT", "e": "ES", "b": "BE",
    "l": "LU", "dk": "DK", "uk": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "great britain": "GB", "grossbritannien": "GB", "holland": "NL", "usa": "US",
    "united states": "US", "vereinigte staaten": "US", "america": "US", "amerika": "US",
}


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z ]", " ", fold(text)).split())


@cache
def _lookup() -> dict[str, str]:
    """Folded name or code → alpha-2; built once per process (a few thousand entries)."""
    table: dict[str, str] = {}
    translations = [gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang],
                                        fallback=True) for lang in NAME_LANGUAGES]
    for country in pycountry.countries:
        names = [country.alpha_2, country.alpha_3, country.name,
                 getattr(country, "official_name", None), getattr(country, "common_name", None)]
        names += [t.gettext(name) for t in translations for name in list(names[2:]) if name]
        for name in names:
            if name:
                table.setdefault(_key(name), country.alpha_2)
    table.update(COLLOQUIAL)
    return table


@lru_cache(maxsize=200_000)
def normalise_country_value(raw: str) -> str | None:
    """ISO 3166-1 alpha-2 code of a country as typed, or None when it names none."""
    return _lookup().get(_key(raw))
