"""Similarity predicates on normalised values: could two names / an address and a name be one
person?  Asked by the rules (e-mail owner checks) and by clustering (merge guards)."""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from identity.normalise.nicknames import NAME_GROUPS, NICKNAMES, SHORT_FORMS
from identity.normalise.text import fold


def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity (pure Python; used on a handful of first names per merge)."""
    if a == b:
        return 1.0
    la, lb = len(a), len(b)
    if not la or not lb:
        return 0.0
    window = max(max(la, lb) // 2 - 1, 0)
    a_flags = [False] * la
    b_flags = [False] * lb
    matches = 0
    for i, ch in enumerate(a):
        lo, hi = max(0, i - window), min(lb, i + window + 1)
        for j in range(lo, hi):
            if not b_flags[j] and b[j] == ch:
                a_flags[i] = b_flags[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    a_m = [ch for ch, f in zip(a, a_flags, strict=True) if f]
    b_m = [ch for ch, f in zip(b, b_flags, strict=True) if f]
    transpositions = sum(x != y for x, y in zip(a_m, b_m, strict=True)) / 2
    jaro = (matches / la + matches / lb + (matches - transpositions) / matches) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


def first_names_compatible(a: str, b: str, threshold: float) -> bool:
    """Could these two (normalised) first names belong to one person?

    Generous on purpose - this only has to tell *different people* apart (Anna vs Bernd),
    so prefixes, nicknames, shared tokens, typos and scrambled letters all count as the same.
    """
    if a == b or a.startswith(b) or b.startswith(a):
        return True
    if NICKNAMES.get(a, a) == NICKNAMES.get(b, b):
        return True
    # a short form and its full name, or two short forms of one name - also when the short
    # form is ambiguous (bert: Albert, Herbert, Robert) and so was left as typed
    ga, gb = NAME_GROUPS.get(a), NAME_GROUPS.get(b)
    if ga is not None and gb is not None and not ga.isdisjoint(gb):
        return True
    ta, tb = set(a.split()), set(b.split())
    if ta & tb:  # "hans peter" vs "peter"
        return True
    if jaro_winkler(a, b) >= threshold:
        return True
    if len(ta) > 1 or len(tb) > 1:  # one given name of several, typed with a typo
        return any(first_names_compatible(x, y, threshold) for x in ta for y in tb
                   if len(x) > 1 and len(y) > 1)
    # same letters, small length difference: "hnoan" vs "noah", "ilivoa" vs "olivia"
    ca, cb = Counter(a.replace(" ", "")), Counter(b.replace(" ", ""))
    common = sum((ca & cb).values())
    longest = max(sum(ca.values()), sum(cb.values()))
    if common >= 4 and common / longest >= 0.8:
        return True
    # a short name typed scrambled or clipped: all its letters in the other ("yi" / "ivy")
    shortest = min(sum(ca.values()), sum(cb.values()))
    return shortest >= 2 and common == shortest and shortest / longest >= 0.6


def _initials(given: str) -> set[str]:
    """Initials a person may use: of the name and of its nicknames (Dorothea -> d, t)."""
    return {given[:1]} | {short[:1] for short in SHORT_FORMS.get(NICKNAMES.get(given, given), ())}


_NON_LETTER = re.compile(r"[^a-z]")
_NON_LETTER_SPACE = re.compile(r"[^a-z ]")
_NON_LETTERS = re.compile(r"[^a-z]+")


@lru_cache(maxsize=200_000)
def _folded_local_part(email: str) -> str:
    """Folded local part of an address (cached: both e-mail/name checks ask per pair)."""
    return fold(email.split("@", 1)[0])


def email_contradicts_name(email: str, first: str | None, last: str | None,
                           threshold: float = 0.8) -> bool:
    """Does the e-mail's local part name *someone else* with this last name?

    ``emanuel.pointner@`` on Dorothea Pointner's record is her partner's address: the part
    beside the last name is a first name (or initial) that does not fit hers.  Only decides
    when the local part contains the last name; otherwise there is nothing to go on.
    """
    if not first or not last:
        return False
    local = _NON_LETTER.sub("", _folded_local_part(email))
    surname = _NON_LETTER.sub("", last)
    given = _NON_LETTER_SPACE.sub("", first).split(" ")[0]
    if len(surname) < 3 or surname not in local or not given:
        return False
    rest = local.replace(surname, "", 1)
    if not rest:
        return False
    if len(rest) <= 2:  # initials: "t.schwarz" for Dorothea ("Thea"), "hp.mueller"
        return rest[0] not in _initials(given)
    return not first_names_compatible(rest, _NON_LETTER.sub("", first), threshold)


def email_name_affinity(email: str, first: str | None, last: str | None) -> int:
    """How clearly the local part spells this person: 2 first (or initial) and last name,
    1 one of them, 0 nothing recognisable.  Picks the owner among household members."""
    local = _folded_local_part(email)
    letters = _NON_LETTER.sub("", local)
    surname = _NON_LETTER.sub("", last or "")
    given = _NON_LETTER_SPACE.sub("", first or "").split(" ")[0]
    has_last = len(surname) >= 3 and surname in letters
    rest = letters.replace(surname, "", 1) if has_last else letters
    tokens = [t for t in _NON_LETTERS.split(local) if len(t) >= 4]
    has_first = bool(given) and (
        (len(rest) <= 2 and rest[:1] in _initials(given) and has_last)
        or (len(given) >= 4 and given in rest)
        or any(first_names_compatible(t, given, 0.88) for t in tokens if t != surname))
    return int(has_last) + int(has_first)


