"""First-name nicknames and variants (``identity/data/nicknames.yml``) as lookup tables.

The data is a file so that adding a name is a data edit, reviewed as such, not code.
"""

from __future__ import annotations

from importlib import resources

import yaml

from identity.normalise.text import fold


def _read() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    text = resources.files("identity").joinpath("data", "nicknames.yml").read_text("utf-8")
    document = yaml.safe_load(text)
    return document["nicknames"], document["variants"]


def _build() -> tuple[dict[str, str], dict[str, tuple[str, ...]], dict[str, frozenset[str]]]:
    """``(nickname -> canonical, canonical -> short forms, name -> canonical(s) it is)``.

    A short form claimed by several canonical names (alex, chris, leni, ...) is ambiguous and
    is left as typed: Jaro-Winkler still relates "chris" to both "christian" and "christina".
    """
    nicknames_raw, variants_raw = _read()
    nicknames: dict[str, str] = {}
    claims: dict[str, set[str]] = {}
    for canonical, shorts in nicknames_raw.items():
        for short in shorts:
            claims.setdefault(fold(short), set()).add(fold(canonical))
    short_forms = {fold(canonical): tuple(fold(short) for short in shorts)
                   for canonical, shorts in nicknames_raw.items()}
    canonicals = {fold(c) for c in nicknames_raw}
    for short, targets in claims.items():
        # A canonical name is never itself rewritten to another canonical name.
        if len(targets) == 1 and short not in canonicals:
            nicknames[short] = next(iter(targets))
    for canonical in canonicals:
        claims.setdefault(canonical, set()).add(canonical)
    for canonical, variants in variants_raw.items():
        claims.setdefault(fold(canonical), set()).add(fold(canonical))
        for variant in variants:
            claims.setdefault(fold(variant), set()).add(fold(canonical))
    groups = {name: frozenset(targets) for name, targets in claims.items()}
    return nicknames, short_forms, groups


#: nickname -> canonical first name (unambiguous short forms only)
NICKNAMES: dict[str, str]
#: canonical -> every short form (incl. ambiguous ones)
SHORT_FORMS: dict[str, tuple[str, ...]]
#: canonical or short form -> the canonical name(s) it may be
NAME_GROUPS: dict[str, frozenset[str]]
NICKNAMES, SHORT_FORMS, NAME_GROUPS = _build()
