"""Build the hidden population: who exists, where they live, which identifiers they hold.

Only this module talks to Faker. Faker is used to fill per-locale pools once (fast, and the pools
are deterministic for a seed); persons are then drawn from the pools with one ``random.Random``.
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from faker import Faker

from cdp.demo import vocab
from cdp.demo.model import (
    REFERENCE_DATE,
    WINDOW_DAYS,
    WINDOW_START,
    Address,
    AnonymousVisitor,
    Person,
    Phone,
    ShopAccount,
)
from cdp.demo.noise import NoiseConfig

# locale, country, language, weight: ~75 % German-speaking, the rest English.
LOCALES: tuple[tuple[str, str, str, float], ...] = (
    ("de_DE", "DE", "de", 0.62),
    ("de_AT", "AT", "de", 0.09),
    ("de_CH", "CH", "de", 0.04),
    ("en_GB", "GB", "en", 0.17),
    ("en_US", "US", "en", 0.08),
)

# Share of known persons per identifier (before noise-driven structure such as moves).
CRM_RATE = 0.8
LOYALTY_RATE = 0.4  # of CRM customers
SHOP_RATE = 0.45  # of CRM customers; persons outside CRM mostly have an account
ONLINE_RATE = 0.8  # account holders who also browse with cookies (tracked)
WORK_EMAIL_RATE = 0.2
ANONYMOUS_VISITOR_RATE = 0.15  # extra anonymous persons per known person
BABY_RATE = 0.06  # of persons aged 22-42: first baby purchase in the window

_GB_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def new_uuid(rng: random.Random) -> str:
    """UUID4-shaped id from the seeded RNG (``uuid.uuid4`` would break reproducibility)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# Relative activity per hour of the day (people sleep; shops and call centres open by day).
HOUR_WEIGHTS: tuple[float, ...] = (0.3, 0.15, 0.1, 0.05, 0.05, 0.1, 0.4, 1.0, 1.8, 2.5, 3.0, 3.0,
                                   3.0, 2.8, 2.6, 2.6, 2.7, 3.0, 3.4, 3.8, 3.9, 3.3, 2.0, 0.9)
_HOUR_CUM = list(itertools.accumulate(HOUR_WEIGHTS))


def at_daytime(moment: datetime, rng: random.Random) -> datetime:
    """Same day, a plausible time of day."""
    hour = rng.choices(range(24), cum_weights=_HOUR_CUM)[0]
    return moment.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60),
                          microsecond=0)


def days_ago(days: float, rng: random.Random) -> datetime:
    """A moment ``days`` before the reference date, at a plausible time of day."""
    return at_daytime(REFERENCE_DATE - timedelta(days=days), rng)


def random_time_in_window(rng: random.Random, start_day: float = 0.0,
                          end_day: float = WINDOW_DAYS) -> datetime:
    """A moment on a random day between two day offsets of the 12-month window."""
    day = int(rng.uniform(start_day, end_day))
    return at_daytime(WINDOW_START + timedelta(days=min(day, WINDOW_DAYS - 1)), rng)


@dataclass
class LocalePool:
    """Names and places of one locale, drawn once from a seeded Faker."""

    locale: str
    country: str
    lang: str
    male: list[str]
    female: list[str]
    last: list[str]
    streets: list[str]
    cities: list[tuple[str, str]]  # (city, base postcode)
    company_domains: list[str]


def _unique(values: list[str]) -> list[str]:
    """Deduplicate keeping first-seen order (never via a set: iteration order must not vary)."""
    return list(dict.fromkeys(values))


def _domain_from_company(company: str, country: str) -> str:
    word = vocab.ascii_fold(company.split()[0].replace(",", "")).replace(".", "")
    tld = {"DE": "de", "AT": "at", "CH": "ch", "GB": "co.uk", "US": "com"}[country]
    return f"{word or 'firma'}-{'gmbh' if country in ('DE', 'AT') else 'group'}.{tld}"


def build_pools(seed: int, people: int) -> dict[str, LocalePool]:
    """One pool per locale; pool sizes grow slowly with the population for name variety."""
    size = min(2000, max(200, people // 8))
    pools: dict[str, LocalePool] = {}
    for index, (locale, country, lang, _) in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 31 + index)
        male = _unique([fake.first_name_male() for _ in range(size)])
        female = _unique([fake.first_name_female() for _ in range(size)])
        last = _unique([fake.last_name() for _ in range(size * 2)])
        companies = _unique([_domain_from_company(fake.company(), country) for _ in range(60)])
        streets: list[str] = []
        cities: list[tuple[str, str]] = []
        rng = random.Random(f"{seed}:pool:{locale}")
        if country in ("DE", "AT"):
            bases = vocab.DE_STREET_BASES
            for _ in range(size):
                roll = rng.random()
                if roll < 0.55:
                    base, suffix = rng.choice(bases), rng.choice(vocab.DE_STREET_SUFFIXES)
                    if base[-1] in " -":  # "Grüner Weg", "Käthe-Kollwitz-Straße"
                        suffix = suffix.capitalize()
                    streets.append(base + suffix)
                elif roll < 0.7:
                    streets.append(rng.choice(vocab.DE_ADJ_STREETS))
                else:
                    streets.append(fake.street_name())
            cities = [(fake.city(), fake.postcode()) for _ in range(max(50, size // 4))]
        elif country == "CH":
            streets = [fake.street_name() for _ in range(size)]
            cities = [(fake.city(), fake.postcode()) for _ in range(max(50, size // 4))]
        elif country == "GB":
            for _ in range(size):
                if rng.random() < 0.5:
                    streets.append(rng.choice(vocab.GB_STREETS))
                else:
                    streets.append(f"{fake.last_name()} {rng.choice(vocab.GB_STREET_SUFFIXES)}")
            cities = [(city, area) for city, area in vocab.GB_CITIES]
        else:
            streets = [
                f"{fake.last_name()} {rng.choice(vocab.US_STREET_SUFFIXES)}" for _ in range(size)
            ]
            cities = [(city, zip3) for city, zip3, _ in vocab.US_CITIES]
        pools[locale] = LocalePool(locale, country, lang, male, female, last, _unique(streets),
                                   _unique_cities(cities), companies)
    return pools


def _unique_cities(cities: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(cities))


class PopulationBuilder:
    """Draws persons from the pools; holds the id sequences so ids are unique and reproducible."""

    def __init__(self, people: int, seed: int, noise: NoiseConfig) -> None:
        self.people = people
        self.noise = noise
        self.rng = random.Random(f"{seed}:people")
        self.pools = build_pools(seed, people)
        rng = self.rng
        self.customer_numbers = iter(rng.sample(range(10_000_000, 99_999_999), people))
        self.loyalty_cards = iter(rng.sample(range(100_000_000, 999_999_999), people))
        self.account_ids = iter(rng.sample(range(1_000_000, 9_999_999), people * 2))
        self.used_emails: dict[str, str] = {}
        self.email_counters: dict[str, int] = {}  # next free number per address base
        self.locale_weights = list(itertools.accumulate(w for *_, w in LOCALES))
        ranks = range(len(vocab.COMMON_DE_LAST_NAMES))
        self.common_de_weights = list(itertools.accumulate(1.0 / (rank + 8) for rank in ranks))

    # -- parts ---------------------------------------------------------------------------------
    def _pick_locale(self) -> LocalePool:
        choice = self.rng.choices(LOCALES, cum_weights=self.locale_weights)[0]
        return self.pools[choice[0]]

    def _first_name(self, pool: LocalePool, gender: str) -> str:
        rng = self.rng
        if rng.random() < 0.22:
            return rng.choice(vocab.FORMAL_FIRST_NAMES[(pool.lang, gender)])
        return rng.choice(pool.male if gender == "m" else pool.female)

    def _last_name(self, pool: LocalePool) -> str:
        rng = self.rng
        share = {"DE": 0.55, "AT": 0.4, "CH": 0.2}.get(pool.country, 0.0)
        if rng.random() < share:
            return rng.choices(vocab.COMMON_DE_LAST_NAMES, cum_weights=self.common_de_weights)[0]
        return rng.choice(pool.last)

    def _address(self, pool: LocalePool) -> Address:
        rng = self.rng
        street = rng.choice(pool.streets)
        city, base = rng.choice(pool.cities)
        country = pool.country
        if country == "GB":
            number = str(rng.randint(1, 250))
            letters = rng.choice(_GB_LETTERS) + rng.choice(_GB_LETTERS)
            postcode = f"{base}{rng.randint(1, 20)} {rng.randint(1, 9)}{letters}"
        elif country == "US":
            number = str(rng.randint(100, 9999))
            postcode = f"{base}{rng.randint(0, 99):02d}"
        else:
            number = str(rng.randint(1, 120))
            if rng.random() < 0.08:
                number += rng.choice("abc")
            digits = len(base)
            postcode = f"{(int(base) + rng.randint(0, 9)) % 10**digits:0{digits}d}"
        return Address(street, number, postcode, city, country)

    def _phone(self, country: str, mobile: bool, city: str) -> Phone:
        rng = self.rng
        code, mobiles, areas = vocab.PHONE_PLANS[country]
        if country == "US":
            area = next(a for c, _, a in vocab.US_CITIES if c == city)
            return Phone(code, area, f"{rng.randint(200, 999)}{rng.randint(0, 9999):04d}", mobile)
        if mobile:
            area = rng.choice(mobiles)
            length = 10 - len(area) if country == "GB" else rng.choice((7, 8))
        else:
            area = rng.choice(areas)
            length = 10 - len(area) if country == "GB" else rng.randint(5, 8)
        first = str(rng.randint(1, 9))
        rest = "".join(str(rng.randint(0, 9)) for _ in range(length - 1))
        return Phone(code, area, first + rest, mobile)

    def _claim_email(self, local: str, domain: str, owner: str) -> str:
        """Reserve an address for one person, adding digits on collision."""
        local = local.strip(".-_") or "kunde"
        base = f"{local}@{domain}"
        candidate = base
        while candidate in self.used_emails:
            counter = self.email_counters.get(base, 1) + 1
            self.email_counters[base] = counter
            candidate = f"{local}{counter}@{domain}"
        self.used_emails[candidate] = owner
        return candidate

    def _email_local(self, first: str, last: str, born: date) -> str:
        f, ln = vocab.ascii_fold(first).replace(" ", ""), vocab.ascii_fold(last).replace(" ", "")
        yy = f"{born.year % 100:02d}"
        patterns = (f"{f}.{ln}", f"{f}.{ln}", f"{f[:1]}.{ln}", f"{f}{ln}", f"{ln}.{f}",
                    f"{f}.{ln}{yy}", f"{f}_{ln}", f"{f}{yy}", f"{ln}{f[:1]}", f"{f[:1]}{ln}{yy}")
        return self.rng.choice(patterns)

    # -- persons -------------------------------------------------------------------------------
    def person(self, index: int, partner: Person | None) -> Person:
        rng, noise = self.rng, self.noise
        pool = self.pools[partner.locale] if partner else self._pick_locale()
        gender = rng.choice("mf")
        first = self._first_name(pool, gender)
        last = partner.last_name if partner and rng.random() < 0.7 else self._last_name(pool)
        if partner:
            born = partner.birth_date + timedelta(days=rng.randint(-8 * 365, 8 * 365))
            born = min(born, (REFERENCE_DATE - timedelta(days=18 * 366)).date())
        else:
            born = (REFERENCE_DATE - timedelta(days=rng.randint(18 * 366, 85 * 365))).date()
        person_id = f"P{index:07d}"
        country = pool.country
        domains = vocab.EMAIL_DOMAINS[country]
        primary = self._claim_email(self._email_local(first, last, born), rng.choice(domains),
                                    person_id)
        address = partner.address if partner else self._address(pool)
        person = Person(
            person_id=person_id,
            locale=pool.locale,
            lang=pool.lang,
            gender=gender,
            first_name=first,
            last_name=last,
            birth_date=born,
            country=country,
            address=address,
            primary_email=primary,
        )
        age = (REFERENCE_DATE.date() - born).days / 365.25
        if age < 67 and rng.random() < WORK_EMAIL_RATE:
            company = rng.choice(pool.company_domains)
            local = f"{vocab.ascii_fold(first)}.{vocab.ascii_fold(last)}".replace(" ", "")
            person.work_email = self._claim_email(local, company, person_id)
        if rng.random() < noise.old_email:
            person.old_email = self._claim_email(self._email_local(first, last, born),
                                                 rng.choice(vocab.OLD_EMAIL_DOMAINS), person_id)
            person.email_changed = days_ago(rng.uniform(60, 6 * 365), rng)
        # phones: mobile and/or landline; a household shares the landline
        if rng.random() < (0.92 if age < 60 else 0.7):
            person.mobile = self._phone(country, True, address.city)
        if partner and partner.landline:
            person.landline = partner.landline
        elif person.mobile is None or rng.random() < (0.25 if age < 50 else 0.55):
            person.landline = self._phone(country, False, address.city)
        # moves (a household moves together)
        if partner:
            person.old_address, person.move_date = partner.old_address, partner.move_date
        elif rng.random() < noise.move:
            old = self._address(self._pick_locale() if rng.random() < 0.05 else pool)
            person.old_address, person.move_date = old, days_ago(rng.uniform(20, 3 * 365), rng)
        if partner:
            person.partner_id = partner.person_id
            person.shared_email = partner.primary_email
        return person

    def assign_identifiers(self, person: Person) -> None:
        """CRM customer number, loyalty card, shop accounts, cookies, consents, life events."""
        rng, noise = self.rng, self.noise
        age = (REFERENCE_DATE.date() - person.birth_date).days / 365.25
        adult_days = max(20.0, (age - 18) * 365)  # nobody is a customer before turning 18
        in_crm = rng.random() < CRM_RATE
        if in_crm:
            person.customer_number = str(next(self.customer_numbers))
            person.customer_since = days_ago(rng.uniform(10, min(12 * 365, adult_days)), rng)
            if rng.random() < LOYALTY_RATE:
                person.loyalty_card = f"2900{next(self.loyalty_cards)}"
                earliest = (REFERENCE_DATE - person.customer_since).days
                person.card_since = days_ago(rng.uniform(5, max(6, earliest)), rng)
        shop_chance = (SHOP_RATE if in_crm else 0.85) * (1.2 if age < 45 else 0.8)
        if rng.random() < shop_chance:
            created = days_ago(rng.uniform(15, min(8 * 365, adult_days)), rng)
            email = person.primary_email
            if person.old_email and person.email_changed and created < person.email_changed:
                email = person.old_email
            elif person.work_email and rng.random() < noise.alt_email:
                email = person.work_email
            person.accounts.append(self._account(created, email))
            if rng.random() < noise.duplicate_account:
                candidates = [e for e in person.emails() if e != email]
                if not candidates:  # a fresh private address (keeps persons at <= 3)
                    local = self._email_local(person.first_name, person.last_name,
                                              person.birth_date)
                    domain = rng.choice(vocab.EMAIL_DOMAINS[person.country])
                    person.alt_email = self._claim_email(local, domain, person.person_id)
                    candidates = [person.alt_email]
                second = days_ago(rng.uniform(15, min(6 * 365, adult_days)), rng)
                person.accounts.append(self._account(second, rng.choice(candidates)))
                person.accounts.sort(key=lambda a: a.created_at)
        elif not in_crm:
            person.web_identify = True
        online = person.web_identify or (person.accounts and rng.random() < ONLINE_RATE)
        if online:
            count = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
            person.cookies = [new_uuid(rng) for _ in range(count)]
        person.initial_consent = {
            "email": rng.random() < 0.55,
            "sms": person.mobile is not None and rng.random() < 0.15,
            "phone": rng.random() < 0.25,
            "post": rng.random() < (0.7 if in_crm else 0.1),
            "online_ads": rng.random() < 0.45,
        }
        if person.web_identify:
            person.initial_consent["email"] = False
            person.newsletter_signup = random_time_in_window(rng, 5, WINDOW_DAYS - 5)
        newsletter = person.primary_email
        if person.work_email and rng.random() < 0.15:
            newsletter = person.work_email
        person.newsletter_email = newsletter
        if 22 <= age <= 42 and rng.random() < BABY_RATE:
            person.baby_date = random_time_in_window(rng, 30, WINDOW_DAYS - 40)

    def _account(self, created: datetime, email: str) -> ShopAccount:
        rng = self.rng
        age_days = (REFERENCE_DATE - created).days
        later = created + timedelta(days=int(rng.uniform(0, max(1, age_days - 1))))
        updated = max(created, at_daytime(later, rng))
        if rng.random() < 0.3:
            updated = created + timedelta(minutes=rng.randint(0, 30))
        return ShopAccount(f"U{next(self.account_ids)}", email, created, updated)


#: truth ``pattern`` labels: two people who must stay apart, or one person whose records
#: disagree the way real duplicates do
HARD_CASES = ("twin", "household", "second_given_name", "initial", "unlisted_nickname",
              "swapped_names")


def _pick(draw: float, shares: tuple[tuple[float, str], ...]) -> str | None:
    """The label whose share of [0, 1) the uniform ``draw`` falls in (None: past them all)."""
    for share, label in shares:
        if draw < share:
            return label
        draw -= share
    return None


def add_hard_cases(persons: list[Person], pools: dict[str, LocalePool], noise: NoiseConfig,
                   rng: random.Random) -> None:
    """Label households (some of them twins: one surname, birth date and address, an e-mail
    one of them uses for both) and give some single persons records that write their name
    another way.  A separate RNG keeps every other person as it was."""
    by_id = {person.person_id: person for person in persons}
    for person in persons:
        if person.pattern is not None:
            continue
        partner = by_id.get(person.partner_id) if person.partner_id else None
        if partner is not None:
            if rng.random() < noise.twins:
                partner.last_name, partner.birth_date = person.last_name, person.birth_date
                person.pattern = partner.pattern = "twin"
            else:
                person.pattern = partner.pattern = "household"
            continue
        first = person.first_name
        pattern = _pick(rng.random(), ((noise.second_given_name, "second_given_name"),
                                       (noise.initial, "initial"),
                                       (noise.unlisted_nickname, "unlisted_nickname"),
                                       (noise.swapped_person, "swapped_names")))
        if pattern is None:
            continue
        if pattern == "second_given_name":
            pool = pools[person.locale]
            names = [n for n in (pool.male if person.gender == "m" else pool.female)
                     if n != first and " " not in n and "-" not in n]
            second = rng.choice(names)
            person.given_name_variants = (f"{first} {second}", second)
        elif pattern == "initial":
            person.given_name_variants = (f"{first[0]}.", first[0])
        elif pattern == "unlisted_nickname":
            if first in vocab.NICKNAMES or len(first) < 5 or not first.isalpha():
                continue
            person.given_name_variants = (first[: 4 if len(first) > 6 else 3]
                                          + rng.choice("iy"),)
        person.pattern = pattern


def build_population(people: int, seed: int, noise: NoiseConfig
                     ) -> tuple[list[Person], list[AnonymousVisitor]]:
    """Known persons (households adjacent) plus anonymous web visitors with their own ids."""
    builder = PopulationBuilder(people, seed, noise)
    rng = builder.rng
    persons: list[Person] = []
    index = 1
    while len(persons) < people:
        person = builder.person(index, None)
        persons.append(person)
        index += 1
        # household: the next person shares address, landline and (sometimes) an email
        if len(persons) < people and rng.random() < noise.household / 2:
            partner = builder.person(index, person)
            person.partner_id = partner.person_id
            persons.append(partner)
            index += 1
    add_hard_cases(persons, builder.pools, noise, random.Random(f"{seed}:hard-cases"))
    for person in persons:
        builder.assign_identifiers(person)
    visitors = [
        AnonymousVisitor(f"P{index + n:07d}", new_uuid(rng))
        for n in range(round(people * ANONYMOUS_VISITOR_RATE))
    ]
    return persons, visitors
