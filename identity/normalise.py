"""Turn raw identity attributes into comparable canonical forms.

Matching quality depends more on normalisation than on the matcher: the same e-mail typed
with a plus-tag, a phone written five ways, "Müller"/"Mueller"/"Muller" must each collapse to
one value before rules or Splink see them.  Every normaliser is a scalar function applied
once per *distinct* raw value (``map_distinct``) because source data repeats the same values
heavily (event streams), which makes this as fast as vectorised string code and far simpler.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

IDENTITY_COLUMNS: tuple[str, ...] = (
    "email", "phone", "first_name", "last_name", "birth_date", "street", "house_number",
    "postcode", "city", "country", "customer_number", "user_id", "anonymous_id", "loyalty_card",
)
INPUT_COLUMNS: tuple[str, ...] = ("source", "record_id", "record_ts", *IDENTITY_COLUMNS)

DATE_DTYPE = pd.ArrowDtype(pa.date32())

# --------------------------------------------------------------------------------- helpers


def _blank_to_none(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    text = str(value).strip()
    if not text or text.lower() in {"nan", "none", "null", "n/a", "na", "-"}:
        return None
    return text


def _distinct(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of ``series``; missing values get code -1."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)  # iterating Arrow arrays is slow


def _from_uniques(values: list[str | None], codes: np.ndarray, like: pd.Series) -> pd.Series:
    """Expand per-distinct results back to rows (code -1 -> missing) as a ``string`` Series."""
    mapped = pd.array(values, dtype="string")
    return pd.Series(mapped.take(codes, allow_fill=True), index=like.index, name=like.name)


def map_distinct(series: pd.Series, func: Callable[[str], str | None]) -> pd.Series:
    """Apply ``func`` once per distinct non-blank value; blanks become missing."""
    codes, uniques = _distinct(series)
    values: list[str | None] = []
    for value in uniques:
        text = _blank_to_none(value)
        values.append(func(text) if text is not None else None)
    return _from_uniques(values, codes, series)


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


# ------------------------------------------------------------------------------------ email

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}


@lru_cache(maxsize=200_000)
def normalise_email_value(raw: str) -> str | None:
    """Lower-case, trim, drop ``mailto:`` and plus-tags; ``None`` if not an address."""
    text = raw.strip().casefold()
    if text.startswith("mailto:"):
        text = text[7:]
    text = text.strip("<>\"' ")
    if text.count("@") != 1:
        return None
    local, domain = text.split("@")
    local = local.split("+", 1)[0]
    domain = domain.rstrip(".")
    if domain in _GMAIL_DOMAINS:  # Gmail ignores dots and has two spellings of one domain
        domain = "gmail.com"
        local = local.replace(".", "")
    if not local:
        return None
    email = f"{local}@{domain}"
    return email if _EMAIL_RE.fullmatch(email) else None


def normalise_email(series: pd.Series) -> pd.Series:
    return map_distinct(series, normalise_email_value)


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
    codes, uniques = _distinct(series)
    region_codes, region_values = _distinct(regions)
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
        text = _blank_to_none(uniques[key // (default_code + 1)])
        region = region_names[key % (default_code + 1)]
        values.append(normalise_phone_value(text, region) if text is not None else None)
    return _from_uniques(values, pair, series)


# ------------------------------------------------------------------------------------ names

_TITLES = {"dr", "prof", "herr", "frau", "mr", "mrs", "ms", "miss", "dipl", "ing", "med"}
# Honorifics and ranks typed into the first-name field ("Sir", "Rt. Hon.", "Maj.-Gen.").  Only
# dropped from first names: Lord and Major are also family names.
_FIRST_NAME_TITLES = _TITLES | {
    "sir", "lady", "lord", "dame", "rev", "revd", "reverend", "hon", "rt", "the", "very", "st",
    "master", "baron", "capt", "captain", "col", "colonel", "gen", "general", "maj", "major",
    "admiral", "vice", "rear", "lt", "lieutenant", "brig", "sgt", "sergeant",
}
# Ordinals ("1st", "2nd") would otherwise leave "st", "nd" behind once digits are stripped.
_ORDINAL = re.compile(r"\b\d+(st|nd|rd|th)\b")

# Canonical first name per nickname / short form (German and English).  Conservative: only
# forms that are hardly ever given names in their own right.
_NICKNAMES_RAW: dict[str, tuple[str, ...]] = {
    # English.  A short form used for several names about equally (bert: Albert, Herbert,
    # Robert; millie: Amelia, Emily, Mildred) is listed under each: it then stays as typed and
    # is only *compatible* with each of them (see first_names_compatible).  One with a clearly
    # dominant full name is listed under that one only (ted: Edward, sam: Samuel, pat:
    # Patricia, harry: Henry).
    "robert": ("bob", "bobby", "rob", "robbie", "robby", "bert", "rab"),
    "william": ("bill", "billy", "will", "willy", "wills", "wm"),
    "elizabeth": ("liz", "lizzy", "lizzie", "beth", "betty", "bette", "betsy", "betsey", "bess",
                 "bessie", "eliza", "libby"),
    "katherine": ("kate", "katie", "kathy", "kath", "kat", "kitty", "kit", "catherine", "kathryn",
                 "cathy", "cath"),
    "james": ("jim", "jimmy", "jimmie", "jamie", "jem", "jas"),
    "michael": ("mike", "mikey", "mick", "micky", "mickey", "mickie"),
    "richard": ("rick", "ricky", "rickie", "dick", "dickie", "dicky", "rich", "richie",
                "ritchie"),
    "thomas": ("tom", "tommy", "tommie", "thommy", "thos"),
    "christopher": ("chris", "kit", "topher"),
    "jonathan": ("jon", "jonny"),
    "john": ("johnny", "johnnie", "jock", "jno"),
    "joseph": ("joe", "joey", "jo"),
    "daniel": ("dan", "danny", "dani"),
    "david": ("dave", "davey", "davy", "davie"),
    "edward": ("ed", "eddie", "eddy", "ted", "teddy", "teddie", "ned", "neddy"),
    "anthony": ("tony", "ant"),
    "andrew": ("andy", "drew"),
    "benjamin": ("ben", "benny", "benji"),
    "samuel": ("sam", "sammy", "sammie"),
    "matthew": ("matt", "matty"),
    "nicholas": ("nick", "nicky"),
    "alexander": ("alex", "alick", "al", "sandy", "sasha", "xander"),
    "margaret": ("maggie", "meg", "meggie", "peg", "peggy", "madge", "margie", "marge"),
    "jennifer": ("jen", "jenny", "jennie"),
    "patricia": ("pat", "patty", "patsy", "tricia", "trish"),
    "susan": ("sue", "susie", "suzy", "suzie"),
    "deborah": ("deb", "debbie", "debby"),
    "rebecca": ("becky", "becca"),
    "victoria": ("vicky", "vicki", "vickie", "tori"),
    "jessica": ("jess", "jessie", "jessi"),
    "charles": ("charlie", "charley", "chuck", "chas"),
    "stephen": ("steve", "stevie", "steven"),
    "timothy": ("tim", "timmy"),
    "peter": ("pete",),
    "frederick": ("fred", "freddie", "freddy"),
    "alfred": ("alf", "al", "fred", "freddie"),
    "henry": ("hank", "hal"),
    "albert": ("bert", "bertie", "al"),
    "herbert": ("herb", "herbie", "bert", "bertie"),
    "hubert": ("bert",),
    "arthur": ("art", "artie", "arty"),
    "archibald": ("archy",),
    "augustus": ("gus", "gussie"),
    "bernard": ("bernie", "barney"),
    "clifford": ("cliff",),
    "donald": ("don", "donny", "donnie"),
    "douglas": ("doug", "dougie"),
    "ernest": ("ernie",),
    "gerald": ("gerry",),
    "gregory": ("greg",),
    "isaac": ("ike",),
    "kenneth": ("ken", "kenny"),
    "lawrence": ("laurence",),
    "louis": ("lou", "louie"),
    "montague": ("monty",),
    "nathaniel": ("nat", "nate"),
    "norman": ("norm", "norrie"),
    "oliver": ("ollie",),
    "percival": ("percy",),
    "philip": ("phil", "pip"),
    "raymond": ("ray",),
    "reginald": ("reg", "reggie"),
    "ronald": ("ronny",),
    "stanley": ("stan",),
    "vincent": ("vince", "vinny", "vinnie"),
    "zachary": ("zach", "zak", "zack"),
    # English, women
    "adelaide": ("addie", "addy"),
    "agnes": ("aggie", "nessie"),
    "amelia": ("millie", "milly"),
    "arabella": ("bella", "belle"),
    "caroline": ("caro",),
    "dorothy": ("dot", "dottie", "dotty", "dolly"),
    "eleanor": ("nell", "nellie", "elinor"),
    "emily": ("emmie", "millie", "milly"),
    "florence": ("florrie", "flossie"),
    "frances": ("fran",),
    "gertrude": ("gertie",),
    "harriet": ("hattie", "hatty"),
    "helen": ("nell", "nellie"),
    "henrietta": ("hettie", "hetty"),
    "isabella": ("bella", "belle", "izzy"),
    "josephine": ("jo",),
    "lavinia": ("vinnie",),
    "louisa": ("lou", "lulu", "lula"),
    "mary": ("mamie",),
    "matilda": ("mattie",),
    "mildred": ("millie", "milly"),
    "pamela": ("pam",),
    "sarah": ("sal",),
    "virginia": ("ginny",),
    "winifred": ("winnie", "win"),
    # German
    "johannes": ("hans", "hannes", "jo", "johann", "hansi"),
    "josef": ("sepp", "seppl", "joseph", "jupp", "beppo"),
    "alexandra": ("alex", "alexa", "sandra", "sandy"),
    "andreas": ("andi", "andy", "anderl"),
    "anton": ("toni", "tony"),
    "christian": ("chris", "christl"),
    "christina": ("tina", "christine", "kristina"),
    "elisabeth": ("lisa", "liesel", "lies", "elli", "sissi", "sisi", "betti"),
    "franziska": ("franzi", "fanny"),
    "friedrich": ("fritz", "friedel"),
    "gabriele": ("gabi", "gaby"),
    "heinrich": ("heinz", "heini", "hinrich"),
    "jakob": ("jacob", "jockel", "kobi"),
    "katharina": ("kathi", "kati", "katja", "kaethe", "trina"),
    "magdalena": ("magda", "lena", "leni"),
    "margarete": ("grete", "gretel", "gretchen", "marga", "margit"),
    "matthias": ("matze", "matthes", "hias", "mathias"),
    "maximilian": ("max", "maxi"),
    "nikolaus": ("klaus", "niko", "nico"),
    "sebastian": ("basti", "wastl"),
    "stefanie": ("steffi", "stephanie"),
    "susanne": ("susi", "sanne", "suse"),
    "theresa": ("resi", "teresa", "tessie"),
    "ulrich": ("uli", "ulli"),
    "ulrike": ("ulla", "rike"),
    "wilhelm": ("willi", "willy", "wim", "helm"),
    "wolfgang": ("wolf", "wolfi"),
    "barbara": ("babsi", "barbel", "babette", "babs", "barb"),
    "bernhard": ("bernd", "berni"),
    "cornelia": ("conny", "nele"),
    "dorothea": ("dora", "doro", "thea"),
    "florian": ("flo",),
    "georg": ("schorsch",),
    "gottfried": ("friedl",),
    "helene": ("leni", "helena"),
    "konstantin": ("konsti", "constantin"),
    "leonhard": ("leo", "lenz", "leonard"),
    "ludwig": ("lutz", "wiggerl"),
    "manfred": ("manni", "fred"),
    "michaela": ("michi", "micha"),
    "patrick": ("paddy", "patrik"),
    "rudolf": ("rudi", "rudolph"),
    "tobias": ("tobi",),
    "valentin": ("valle",),
    "walter": ("walt", "walther"),
    "veronika": ("vroni", "veronica"),
    "jurgen": ("jurgi",),
    "zacharias": ("zack",),
}
# Short forms that are also given names in their own right (Jack, Harry, Molly, Sophie): never
# rewritten, so Jack and John stay two names for matching, but compatible with the full name
# when the clustering guard asks whether two names could be one person.
_NAME_VARIANTS_RAW: dict[str, tuple[str, ...]] = {
    "robert": ("bobbie", "bobbi"),
    "william": ("billie", "willie"),
    "elizabeth": ("lisbeth",),
    "katherine": ("katy",),
    "john": ("jack",),
    "theodore": ("theo",),
    "nicholas": ("nicol",),
    "alexander": ("alec", "lex"),
    "margaret": ("maisie",),
    "alfred": ("alfie",),
    "henry": ("harry",),
    "archibald": ("archie",),
    "eugene": ("gene",),
    "gerald": ("jerry",),
    "joshua": ("josh",),
    "lawrence": ("laurie", "larry"),
    "louis": ("lewis",),
    "philip": ("phillip",),
    "walter": ("wally",),
    "ronald": ("ron", "ronnie"),
    "gregory": ("gregg",),
    "constance": ("connie",),
    "wilfred": ("wilf",),
    "frances": ("fanny",),
    "terence": ("terry",),
    "abigail": ("abby", "abbie"),
    "agnes": ("nessa",),
    "caroline": ("carrie",),
    "cynthia": ("cindy",),
    "eleanor": ("ellie",),
    "evelyn": ("evie",),
    "gertrude": ("trudy", "trude"),
    "gwendolyn": ("gwen",),
    "henrietta": ("etta",),
    "josephine": ("josie",),
    "judith": ("judy", "jude"),
    "mary": ("polly", "molly", "mollie"),
    "matilda": ("tilly", "tillie"),
    "penelope": ("penny",),
    "sarah": ("sally", "sadie"),
    "sophia": ("sophie",),
    "tobias": ("toby",),
    "jakob": ("jake",),
    "theresa": ("tess",),
}
# A short form claimed by several canonical names (alex, chris, leni, ...) is ambiguous and is
# left as typed: Jaro-Winkler still relates "chris" to both "christian" and "christina".
_NICKNAMES: dict[str, str] = {}
_SHORT_FORMS: dict[str, tuple[str, ...]] = {}  # canonical -> every short form (incl. ambiguous)
_NAME_GROUPS: dict[str, frozenset[str]] = {}  # canonical or short form -> canonical(s) it is


def _build_nicknames() -> None:
    claims: dict[str, set[str]] = {}
    for canonical, shorts in _NICKNAMES_RAW.items():
        for short in shorts:
            claims.setdefault(fold(short), set()).add(fold(canonical))
    for canonical, shorts in _NICKNAMES_RAW.items():
        _SHORT_FORMS[fold(canonical)] = tuple(fold(short) for short in shorts)
    canonicals = {fold(c) for c in _NICKNAMES_RAW}
    for short, targets in claims.items():
        # A canonical name is never itself rewritten to another canonical name.
        if len(targets) == 1 and short not in canonicals:
            _NICKNAMES[short] = next(iter(targets))
    for canonical in canonicals:
        claims.setdefault(canonical, set()).add(canonical)
    for canonical, variants in _NAME_VARIANTS_RAW.items():
        claims.setdefault(fold(canonical), set()).add(fold(canonical))
        for variant in variants:
            claims.setdefault(fold(variant), set()).add(fold(canonical))
    _NAME_GROUPS.update({name: frozenset(targets) for name, targets in claims.items()})


def _clean_name(raw: str, titles: set[str] = _TITLES) -> str | None:
    text = fold(raw)
    text = re.sub(r"[-_/.,]", " ", text)
    text = _ORDINAL.sub(" ", text)
    text = re.sub(r"[^a-z ]", "", text)
    tokens = [t for t in text.split() if t not in titles]
    return " ".join(tokens) or None


@lru_cache(maxsize=200_000)
def normalise_first_name_value(raw: str) -> str | None:
    """Fold, drop titles, and map nicknames to their canonical first name."""
    name = _clean_name(raw, _FIRST_NAME_TITLES)
    if name is None:
        return None
    return _NICKNAMES.get(name, name)


@lru_cache(maxsize=200_000)
def normalise_last_name_value(raw: str) -> str | None:
    return _clean_name(raw)


def normalise_first_name(series: pd.Series) -> pd.Series:
    return map_distinct(series, normalise_first_name_value)


def normalise_last_name(series: pd.Series) -> pd.Series:
    return map_distinct(series, normalise_last_name_value)


def canonical_first_name(name: str) -> str:
    """Public nickname lookup (for tests / callers holding already-folded names)."""
    return _NICKNAMES.get(name, name)


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
    if _NICKNAMES.get(a, a) == _NICKNAMES.get(b, b):
        return True
    # a short form and its full name, or two short forms of one name - also when the short
    # form is ambiguous (bert: Albert, Herbert, Robert) and so was left as typed
    ga, gb = _NAME_GROUPS.get(a), _NAME_GROUPS.get(b)
    if ga is not None and gb is not None and not ga.isdisjoint(gb):
        return True
    ta, tb = set(a.split()), set(b.split())
    if ta & tb:  # "hans peter" vs "peter"
        return True
    if jaro_winkler(a, b) >= threshold:
        return True
    # same letters, small length difference: "hnoan" vs "noah", "ilivoa" vs "olivia"
    ca, cb = Counter(a.replace(" ", "")), Counter(b.replace(" ", ""))
    common = sum((ca & cb).values())
    return common >= 4 and common / max(sum(ca.values()), sum(cb.values())) >= 0.8


def _initials(given: str) -> set[str]:
    """Initials a person may use: of the name and of its nicknames (Dorothea -> d, t)."""
    return {given[:1]} | {short[:1] for short in _SHORT_FORMS.get(_NICKNAMES.get(given, given), ())}


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


# ---------------------------------------------------------------------------------- address

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
    codes, uniques = _distinct(series)
    streets: list[str | None] = []
    houses: list[str | None] = []
    for value in uniques:
        text = _blank_to_none(value)
        street, house = split_street_value(text) if text else (None, None)
        streets.append(street)
        houses.append(house)
    return _from_uniques(streets, codes, series), _from_uniques(houses, codes, series)


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


_COUNTRIES = {
    "de": "DE", "deu": "DE", "ger": "DE", "deutschland": "DE", "germany": "DE",
    "brd": "DE", "d": "DE",
    "at": "AT", "aut": "AT", "osterreich": "AT", "austria": "AT", "a": "AT",
    "ch": "CH", "che": "CH", "schweiz": "CH", "switzerland": "CH", "suisse": "CH",
    "nl": "NL", "nld": "NL", "niederlande": "NL", "netherlands": "NL", "holland": "NL",
    "fr": "FR", "fra": "FR", "frankreich": "FR", "france": "FR",
    "gb": "GB", "uk": "GB", "gbr": "GB", "united kingdom": "GB", "grossbritannien": "GB",
    "england": "GB",
    "us": "US", "usa": "US", "united states": "US", "vereinigte staaten": "US",
    "pl": "PL", "pol": "PL", "polen": "PL", "poland": "PL",
    "it": "IT", "ita": "IT", "italien": "IT", "italy": "IT",
    "es": "ES", "esp": "ES", "spanien": "ES", "spain": "ES",
    "be": "BE", "bel": "BE", "belgien": "BE", "belgium": "BE",
    "dk": "DK", "dnk": "DK", "danemark": "DK", "denmark": "DK",
    "lu": "LU", "lux": "LU", "luxemburg": "LU", "luxembourg": "LU",
}


@lru_cache(maxsize=200_000)
def normalise_country_value(raw: str) -> str | None:
    key = " ".join(re.sub(r"[^a-z ]", " ", fold(raw)).split())
    if key in _COUNTRIES:
        return _COUNTRIES[key]
    code = key.upper()
    return code if len(code) == 2 and code in phonenumbers.SUPPORTED_REGIONS else None


# ------------------------------------------------------------------------------ identifiers


@lru_cache(maxsize=200_000)
def normalise_code_value(raw: str) -> str | None:
    """Customer numbers / loyalty cards: upper-case alphanumerics only (drop spaces, dashes)."""
    text = re.sub(r"[^0-9A-Za-z]", "", raw).upper()
    return text or None


def _strip_value(raw: str) -> str | None:
    return raw.strip() or None


# ------------------------------------------------------------------------------ birth dates

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
        codes, uniques = _distinct(series)
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
    frame = frame[list(INPUT_COLUMNS)].reset_index(drop=True)
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

    ``min_birth_date`` (identity.yml ``min_birth_date``): birth dates before it are dropped;
    ``None`` means :data:`MIN_BIRTH_DATE`.
    """
    frame = coerce_input(records)
    out = frame[["source", "record_id", "record_ts"]].copy()
    out["email"] = normalise_email(frame["email"])
    country = map_distinct(frame["country"], normalise_country_value)
    out["phone"] = normalise_phone(frame["phone"], default_region, regions=country)
    out["first_name"] = normalise_first_name(frame["first_name"])
    out["last_name"] = normalise_last_name(frame["last_name"])
    out["birth_date"] = normalise_birth_date(frame["birth_date"], min_date=min_birth_date)
    street, embedded_house = normalise_street(frame["street"])
    out["street"] = street
    house = map_distinct(frame["house_number"], normalise_house_number_value)
    out["house_number"] = house.fillna(embedded_house)
    out["postcode"] = normalise_postcode(frame["postcode"], country)
    out["city"] = map_distinct(frame["city"], normalise_city_value)
    out["country"] = country
    out["customer_number"] = map_distinct(frame["customer_number"], normalise_code_value)
    out["user_id"] = map_distinct(frame["user_id"], _strip_value)
    out["anonymous_id"] = map_distinct(frame["anonymous_id"], _strip_value)
    out["loyalty_card"] = map_distinct(frame["loyalty_card"], normalise_code_value)
    return out


_build_nicknames()
