"""Data-quality noise for the demo sources.

Real source systems disagree about spellings, formats and completeness; identity resolution is
only worth testing against data that has those problems. Every rate lives in one
:class:`NoiseConfig` so a level can be tuned (or scaled with :meth:`NoiseConfig.scaled`) without
touching the generators.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from datetime import date

from cdp.demo.model import Person, Phone
from cdp.demo.vocab import NICKNAMES, UMLAUT_CHARS, transliterate

# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class NoiseConfig:
    """Probabilities (0..1) of each data-quality problem; per record unless noted."""

    name: str
    typo: float  # a name, street or city gets a typing error
    nickname: float  # the first name is replaced by a nickname (Johannes -> Hans)
    swap_names: float  # first and last name swapped
    umlaut: float  # umlauts / ß transliterated (Müller -> Mueller / Muller)
    name_case: float  # name typed in upper or lower case
    missing: float  # an optional identity field is left empty
    email_case: float  # case and whitespace noise in an email address
    plus_tag: float  # plus-tag in a self-typed email (foo+shop@...)
    alt_email: float  # a record carries a secondary email (work) instead of the primary one
    phone_format: float  # phone written in some other format than the source's usual one
    street_variant: float  # Straße / Str. / str. / Strasse, Road / Rd
    birth_date_error: float  # day/month swapped or a digit off
    # structure of the population (per person)
    move: float  # person moved: old and new address
    household: float  # person lives in a two-person household (shared landline, some shared email)
    shared_email: float  # per record: a household member uses the partner's email
    old_email: float  # person has an old, since abandoned email address
    duplicate_account: float  # online person registered a second shop account
    duplicate_event: float  # per email event: the ESP delivered the row twice
    late_event: float  # per web event: arrives in the next month's file
    # hard cases that keep identity honest (per person; the truth labels them, HARD_CASES)
    twins: float  # per household: twins (one surname, one birth date, one address)
    second_given_name: float  # records write "Anna Maria", "Anna" or "Maria"
    initial: float  # some records carry only the initial ("A." for Anna)
    unlisted_nickname: float  # a short form no nickname table lists (Michael -> Michi)
    swapped_person: float  # given and family name swapped in about half the records

    def scaled(self, factor: float, name: str | None = None) -> NoiseConfig:
        """Return a copy with every rate multiplied by ``factor`` (capped at 0.9)."""
        if factor < 0:
            raise ValueError(f"noise scale factor must be >= 0, got {factor}")
        changes: dict[str, float | str] = {
            f.name: min(0.9, getattr(self, f.name) * factor)
            for f in fields(self)
            if f.name != "name"
        }
        changes["name"] = name or f"{self.name}x{factor:g}"
        return replace(self, **changes)  # type: ignore[arg-type]


NOISE_LEVELS: dict[str, NoiseConfig] = {
    "low": NoiseConfig(
        name="low",
        typo=0.01,
        nickname=0.02,
        swap_names=0.002,
        umlaut=0.05,
        name_case=0.01,
        missing=0.03,
        email_case=0.02,
        plus_tag=0.01,
        alt_email=0.03,
        phone_format=0.05,
        street_variant=0.05,
        birth_date_error=0.003,
        move=0.04,
        household=0.04,
        shared_email=0.1,
        old_email=0.05,
        duplicate_account=0.02,
        duplicate_event=0.003,
        late_event=0.01,
        twins=0.02,
        second_given_name=0.01,
        initial=0.01,
        unlisted_nickname=0.01,
        swapped_person=0.005,
    ),
    "default": NoiseConfig(
        name="default",
        typo=0.04,
        nickname=0.08,
        swap_names=0.01,
        umlaut=0.2,
        name_case=0.04,
        missing=0.08,
        email_case=0.08,
        plus_tag=0.04,
        alt_email=0.1,
        phone_format=0.25,
        street_variant=0.2,
        birth_date_error=0.01,
        move=0.08,
        household=0.1,
        shared_email=0.25,
        old_email=0.15,
        duplicate_account=0.05,
        duplicate_event=0.01,
        late_event=0.03,
        twins=0.05,
        second_given_name=0.03,
        initial=0.03,
        unlisted_nickname=0.03,
        swapped_person=0.01,
    ),
    "hard": NoiseConfig(
        name="hard",
        typo=0.12,
        nickname=0.2,
        swap_names=0.04,
        umlaut=0.4,
        name_case=0.1,
        missing=0.18,
        email_case=0.25,
        plus_tag=0.1,
        alt_email=0.25,
        phone_format=0.6,
        street_variant=0.45,
        birth_date_error=0.04,
        move=0.15,
        household=0.18,
        shared_email=0.4,
        old_email=0.3,
        duplicate_account=0.12,
        duplicate_event=0.03,
        late_event=0.08,
        twins=0.15,
        second_given_name=0.06,
        initial=0.06,
        unlisted_nickname=0.06,
        swapped_person=0.03,
    ),
}


def resolve_noise(noise: str | NoiseConfig) -> NoiseConfig:
    """Turn a level name into its config; pass a ready config through."""
    if isinstance(noise, NoiseConfig):
        return noise
    try:
        return NOISE_LEVELS[noise]
    except (KeyError, TypeError):
        levels = ", ".join(NOISE_LEVELS)
        raise ValueError(f"unknown noise level {noise!r}; expected one of: {levels}") from None


# ----------------------------------------------------------------------------------------------
# Perturbations

# Neighbouring keys on a German QWERTZ keyboard (enough for plausible substitutions).
_NEIGHBOURS: dict[str, str] = {
    "a": "sq", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj",
    "i": "uo", "j": "hk", "k": "jl", "l": "kö", "m": "n", "n": "bm", "o": "ip", "p": "oü",
    "q": "wa", "r": "et", "s": "ad", "t": "rz", "u": "zi", "v": "cb", "w": "qe", "x": "yc",
    "y": "x", "z": "tu", "ä": "ö", "ö": "lä", "ü": "p",
}

PHONE_STYLES = ("national", "international", "intl_00", "grouped", "e164", "compact", "slash")


def format_phone(phone: Phone, style: str) -> str:
    """Write a phone number the way one kind of system or person would."""
    cc, area, sub = phone.country_code, phone.area, phone.subscriber
    if cc == "1":  # North American numbering: no trunk zero, 3-3-4 grouping
        a, b, c = area, sub[:3], sub[3:]
        return {
            "national": f"({a}) {b}-{c}",
            "international": f"+1 {a} {b} {c}",
            "intl_00": f"001-{a}-{b}{c}",
            "grouped": f"{a}.{b}.{c}",
            "e164": f"+1{a}{sub}",
            "compact": f"{a}{sub}",
            "slash": f"{a}/{b}-{c}",
        }[style]
    if style == "national":
        return f"0{area} {sub}"
    if style == "international":
        return f"+{cc} {area} {sub}"
    if style == "intl_00":
        return f"00{cc}-{area}-{sub}"
    if style == "grouped":
        groups = " ".join(sub[i : i + 3] for i in range(0, len(sub), 3))
        return f"(0{area}) {groups}"
    if style == "e164":
        return f"+{cc}{area}{sub}"
    if style == "compact":
        return f"0{area}{sub}"
    if style == "slash":
        return f"0{area}/{sub}"
    raise ValueError(f"unknown phone style {style!r}")


class Noiser:
    """Applies a :class:`NoiseConfig` to field values, drawing from one seeded RNG; a second
    one decides how a hard-case person's record writes their name, so adding hard cases leaves
    every other record as it was."""

    def __init__(self, config: NoiseConfig, rng: random.Random,
                 case_rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.case_rng = case_rng

    def chance(self, rate: float) -> bool:
        return self.rng.random() < rate

    # -- strings -------------------------------------------------------------------------------
    def typo(self, text: str) -> str:
        """One substitution, transposition, deletion or doubling inside the word."""
        if len(text) < 4:
            return text
        rng = self.rng
        i = rng.randrange(1, len(text) - 1)  # keep the first letter: people rarely miss it
        op = rng.random()
        if op < 0.35:
            ch = text[i]
            options = _NEIGHBOURS.get(ch.lower())
            if not options or not ch.isalpha():
                return text
            new = rng.choice(options)
            return text[:i] + (new.upper() if ch.isupper() else new) + text[i + 1 :]
        if op < 0.65:
            if text[i] == text[i + 1] or not text[i + 1].isalpha():
                return text[:i] + text[i + 1 :]
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        if op < 0.9:
            return text[:i] + text[i + 1 :]
        return text[:i] + text[i] + text[i:]

    def umlauts(self, text: str) -> str:
        if not any(ch in text for ch in UMLAUT_CHARS) or not self.chance(self.config.umlaut):
            return text
        return transliterate(text, short=self.rng.random() < 0.25)

    def maybe_typo(self, text: str) -> str:
        return self.typo(text) if text and self.chance(self.config.typo) else text

    def person_name(self, person: Person, ascii_only: bool = False) -> tuple[str, str]:
        """First and last name as one record would hold them."""
        cfg, rng = self.config, self.rng
        first, last = person.first_name, person.last_name
        if person.given_name_variants and self.case_rng.random() < 0.5:
            first = self.case_rng.choice(person.given_name_variants)
        if person.pattern == "swapped_names" and self.case_rng.random() < 0.5:
            first, last = last, first
        if first in NICKNAMES and rng.random() < cfg.nickname:
            first = rng.choice(NICKNAMES[first])
        if ascii_only:
            first, last = transliterate(first), transliterate(last)
        else:
            first, last = self.umlauts(first), self.umlauts(last)
        if rng.random() < cfg.typo:
            if rng.random() < 0.5:
                first = self.typo(first)
            else:
                last = self.typo(last)
        if "-" in first and rng.random() < cfg.typo * 3:
            first = first.replace("-", rng.choice((" ", "")))
        if rng.random() < cfg.name_case:
            if rng.random() < 0.6:
                last = last.upper()
            else:
                first, last = first.lower(), last.lower()
        if rng.random() < cfg.swap_names:
            first, last = last, first
        if rng.random() < cfg.typo / 2:
            first = first + " "
        return first, last

    def missing(self, value: str, weight: float = 1.0) -> str:
        return "" if value and self.rng.random() < self.config.missing * weight else value

    # -- email ---------------------------------------------------------------------------------
    def email(self, address: str, self_typed: bool = True) -> str:
        """Plus-tags and case/whitespace noise as people and importers introduce them."""
        cfg, rng = self.config, self.rng
        if self_typed and rng.random() < cfg.plus_tag:
            local, domain = address.split("@", 1)
            tag = rng.choice(("shop", "news", "promo", "web", "2026"))
            address = f"{local}+{tag}@{domain}"
        if rng.random() < cfg.email_case:
            local, domain = address.split("@", 1)
            style = rng.random()
            if style < 0.4:
                local = ".".join(p[:1].upper() + p[1:] for p in local.split("."))
                domain = domain[:1].upper() + domain[1:]
            elif style < 0.6:
                local, domain = local.upper(), domain.upper()
            address = f"{local}@{domain}"
            if rng.random() < 0.6:
                address = rng.choice((" ", "  ", "")) + address + rng.choice((" ", "\t", "  "))
        return address

    # -- phone ---------------------------------------------------------------------------------
    def phone(self, phone: Phone, usual_style: str) -> str:
        style = usual_style
        if self.rng.random() < self.config.phone_format:
            style = self.rng.choice(PHONE_STYLES)
        if style == "slash" and phone.country_code not in ("49", "43", "41"):
            style = "national"  # the 0151/234567 habit is German-speaking only
        return format_phone(phone, style)

    # -- address -------------------------------------------------------------------------------
    def street(self, street: str) -> str:
        rng = self.rng
        if rng.random() < self.config.street_variant:
            for long, variants in _STREET_VARIANTS:
                if long in street:
                    street = street.replace(long, rng.choice(variants), 1)
                    break
        street = self.umlauts(street)
        return self.maybe_typo(street)

    def house_number(self, number: str) -> str:
        if number[-1:].isalpha() and self.rng.random() < self.config.street_variant:
            return number[:-1] + self.rng.choice((" ", "")) + number[-1].upper()
        return number

    def city(self, city: str) -> str:
        return self.maybe_typo(self.umlauts(city))

    # -- dates ---------------------------------------------------------------------------------
    def birth_date(self, born: date) -> date:
        if self.rng.random() >= self.config.birth_date_error:
            return born
        if born.day <= 12 and born.day != born.month and self.rng.random() < 0.5:
            return born.replace(day=born.month, month=born.day)
        try:
            return born.replace(year=born.year + self.rng.choice((-1, 1, -10, 10)))
        except ValueError:  # 29 February
            return born


_STREET_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("straße", ("str.", "strasse", "str", "straße ")),
    ("Straße", ("Str.", "Strasse", "str.")),
    ("strasse", ("str.", "straße")),
    ("Strasse", ("Str.", "Straße")),
    ("Road", ("Rd", "Rd.", "road")),
    ("Street", ("St", "St.", "street")),
    ("Avenue", ("Ave", "Ave.")),
    ("Lane", ("Ln",)),
    ("Platz", ("Pl.", "platz")),
    ("Gasse", ("gasse", "Gaße")),
    ("weg", ("-Weg", " Weg")),
)
