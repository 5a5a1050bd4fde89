"""The hidden ground truth: persons and their real attributes, before any source sees them.

Source generators render records *from* these objects (adding noise), so every record knows the
person it belongs to and the truth file can be written without guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

# All dates derive from this fixed day, never from the wall clock, so runs are reproducible.
REFERENCE_DATE = datetime(2026, 11, 1)
# Behavioural data (web, email, POS, tickets, consent changes) covers the last 12 months.
WINDOW_START = REFERENCE_DATE - timedelta(days=365)
WINDOW_DAYS = 365
# Consent changes were first logged from this day on; older consents exist only as CRM flags.
CONSENT_LOG_START = datetime(2024, 1, 1)


@dataclass(frozen=True)
class Phone:
    """A phone number split the way formatting needs it (no trunk zero in ``area``)."""

    country_code: str
    area: str
    subscriber: str
    mobile: bool


@dataclass(frozen=True)
class Address:
    street: str
    house_number: str
    postcode: str
    city: str
    country: str  # ISO 3166 alpha-2


@dataclass
class ShopAccount:
    account_id: str
    email: str
    created_at: datetime
    updated_at: datetime


@dataclass
class ConsentChange:
    """One explicit consent change, as the consent log records it."""

    at: datetime
    channel: str
    opt_in: bool
    origin: str  # preference_centre | web_form | call_centre
    max_contacts: int | None = None
    per: str | None = None
    excluded_groups: tuple[str, ...] = ()
    email: str | None = None  # the address the change was made for (email channel)


@dataclass
class TicketPlan:
    """A support contact decided before marketing runs (do-not-contact stops campaigns)."""

    at: datetime
    channel: str  # phone | email | chat
    label: str  # complaint | praise | request
    do_not_contact: bool


@dataclass(frozen=True)
class AnonymousVisitor:
    """A web visitor who never logs in or identifies: a person of their own in the truth."""

    person_id: str
    cookie: str


@dataclass
class Person:
    """One real customer (or anonymous visitor) with everything sources may know about them."""

    person_id: str
    locale: str
    lang: str  # de | en
    gender: str  # m | f
    first_name: str
    last_name: str
    birth_date: date
    country: str
    address: Address
    primary_email: str
    work_email: str | None = None
    old_email: str | None = None  # abandoned address, used in records before email_changed
    email_changed: datetime | None = None
    alt_email: str | None = None  # second private address (second shop account)
    mobile: Phone | None = None
    landline: Phone | None = None
    old_address: Address | None = None  # address before move_date
    move_date: datetime | None = None
    partner_id: str | None = None
    shared_email: str | None = None  # partner's email this person sometimes uses
    customer_number: str | None = None
    customer_since: datetime | None = None
    loyalty_card: str | None = None
    card_since: datetime | None = None
    accounts: list[ShopAccount] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)
    web_identify: bool = False  # online without an account: identified by email on the web
    newsletter_signup: datetime | None = None  # web-form opt-in (identify event on the site)
    baby_date: datetime | None = None  # life event: first baby purchase not before this
    initial_consent: dict[str, bool] = field(default_factory=dict)
    consent_changes: list[ConsentChange] = field(default_factory=list)
    newsletter_email: str | None = None
    tickets: list[TicketPlan] = field(default_factory=list)
    sent_offers: list[str] = field(default_factory=list)  # offers mailed to this person
    clicked_offers: list[tuple[str, datetime]] = field(default_factory=list)
    # the hard case this person stands for (truth column ``pattern``, see HARD_CASES)
    pattern: str | None = None
    given_name_variants: tuple[str, ...] = ()  # other ways their records write the given name

    def address_at(self, when: datetime) -> Address:
        if self.old_address is not None and self.move_date is not None and when < self.move_date:
            return self.old_address
        return self.address

    def emails(self) -> list[str]:
        """All addresses that belong to this person (not the partner's)."""
        found = [self.primary_email, self.work_email, self.old_email, self.alt_email]
        return [e for e in found if e]

    def consent_at(self, channel: str, when: datetime) -> bool:
        """Consent state of one channel at a moment (initial state plus logged changes)."""
        state = self.initial_consent.get(channel, False)
        latest: datetime | None = None
        for change in self.consent_changes:
            if change.channel == channel and change.at <= when and (
                latest is None or change.at >= latest
            ):
                state, latest = change.opt_in, change.at
        return state
