"""Behaviour over time that several sources must agree on.

Consent decides who gets mailed; mailing decides which offers a person has seen; a do-not-contact
request in a support call stops the mailing. These plans are made once here, before any source is
rendered, so the sources tell one consistent story.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from cdp.demo import texts, vocab
from cdp.demo.model import (
    CONSENT_LOG_START,
    REFERENCE_DATE,
    WINDOW_DAYS,
    WINDOW_START,
    ConsentChange,
    Person,
    TicketPlan,
)
from cdp.demo.people import random_time_in_window

TICKET_RATE = 0.12  # persons with at least one support contact
TICKET_CHANNELS = ("phone", "email", "chat")
TICKET_CHANNEL_WEIGHTS = (0.45, 0.35, 0.2)


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    at: datetime
    offer_id: str
    product_group: str
    reach: float  # share of eligible subscribers in the campaign's segment


def offers_valid_at(when: datetime, group: str | None = None) -> list[tuple[str, str]]:
    """(offer_id, product_group) of offers running at a moment, optionally for one group."""
    day = (when - WINDOW_START).days
    return [
        (offer_id, offer_group)
        for offer_id, offer_group, first, last in vocab.OFFERS
        if first <= day <= last and (group is None or offer_group == group)
    ]


def build_campaigns(rng: random.Random) -> list[Campaign]:
    """Two newsletters a month; most promote one running offer."""
    campaigns: list[Campaign] = []
    for month in range(12):
        for slot in range(2):
            day = month * 30 + slot * 15 + rng.randint(1, 12)
            at = WINDOW_START + timedelta(days=day, hours=rng.randint(8, 10))
            if at >= REFERENCE_DATE - timedelta(days=1):
                continue
            valid = offers_valid_at(at)
            if valid and rng.random() < 0.8:
                offer_id, group = rng.choice(valid)
            else:
                offer_id, group = "", rng.choice(vocab.BASE_PRODUCT_GROUPS)
            campaigns.append(
                Campaign(f"CMP-{at:%Y%m}-{slot + 1}", at, offer_id, group, rng.uniform(0.15, 0.3))
            )
    return campaigns


def plan_tickets(persons: list[Person], rng: random.Random) -> None:
    """Support contacts; some end in a do-not-contact request (logged by the call centre)."""
    for person in persons:
        if rng.random() >= TICKET_RATE:
            continue
        count = rng.choices((1, 2, 3), weights=(70, 22, 8))[0]
        plans = []
        for _ in range(count):
            at = random_time_in_window(rng, 0, WINDOW_DAYS - 1)
            channel = rng.choices(TICKET_CHANNELS, weights=TICKET_CHANNEL_WEIGHTS)[0]
            if channel != "email" and not 8 <= at.hour < 20:  # call centre / chat opening hours
                at = at.replace(hour=rng.randint(8, 19))
            label = rng.choices(texts.LABELS, weights=texts.LABEL_WEIGHTS)[0]
            dnc = rng.random() < (0.1 if label == "complaint" else 0.01)
            plans.append(TicketPlan(at, channel, label, dnc))
            if dnc:
                stop = at + timedelta(minutes=rng.randint(1, 30))
                channels = ["phone", "email"] + (["sms"] if person.mobile else [])
                for channel_name in channels:
                    person.consent_changes.append(
                        ConsentChange(stop, channel_name, False, "call_centre",
                                      email=person.newsletter_email)
                    )
        person.tickets = sorted(plans, key=lambda plan: plan.at)


def plan_consents(persons: list[Person], rng: random.Random) -> None:
    """Logged consent history: sign-up opt-ins, web-form sign-ups and preference changes."""
    for person in persons:
        changes = person.consent_changes
        since = person.customer_since or (
            person.accounts[0].created_at if person.accounts else None
        )
        # consents given since the log started are logged; older ones live only in CRM flags
        if since is not None and since >= CONSENT_LOG_START:
            origin = "web_form" if person.accounts and rng.random() < 0.7 else "call_centre"
            for channel, given in person.initial_consent.items():
                if given:
                    person.initial_consent[channel] = False
                    changes.append(ConsentChange(since, channel, True, origin,
                                                 email=person.newsletter_email))
        if person.newsletter_signup is not None:
            changes.append(ConsentChange(person.newsletter_signup, "email", True, "web_form",
                                         email=person.newsletter_email))
        roll = rng.random()
        known = first_contact(person)
        opened = 0 if known is None else max(0, (known - WINDOW_START).days + 1)
        if opened >= WINDOW_DAYS - 2:
            continue
        at = random_time_in_window(rng, opened, WINDOW_DAYS - 1)
        if roll < 0.05:  # preference centre with frequency cap / excluded product groups
            cap = rng.random() < 0.7
            excluded = tuple(sorted(rng.sample(vocab.PRODUCT_GROUPS, rng.randint(1, 2))))
            changes.append(ConsentChange(
                at, "email", True, "preference_centre",
                max_contacts=rng.randint(1, 4) if cap else None,
                per=rng.choice(("week", "month")) if cap else None,
                excluded_groups=excluded if rng.random() < 0.6 else (),
                email=person.newsletter_email,
            ))
        elif roll < 0.08 and person.mobile:
            changes.append(ConsentChange(at, "sms", True, rng.choice(("web_form",
                                                                     "preference_centre"))))
        elif roll < 0.11:
            changes.append(ConsentChange(at, "online_ads", False,
                                         rng.choice(("web_form", "preference_centre"))))
        elif roll < 0.13 and person.customer_number:
            changes.append(ConsentChange(at, "post", False, "call_centre"))
        elif roll < 0.15 and (person.landline or person.mobile):
            changes.append(ConsentChange(at, "phone", True, "call_centre"))


def email_preferences(person: Person, when: datetime) -> tuple[bool, tuple[str, ...]]:
    """Email consent at a moment and the product groups the person excluded."""
    state = person.initial_consent.get("email", False)
    excluded: tuple[str, ...] = ()
    latest: datetime | None = None
    for change in person.consent_changes:
        if change.channel == "email" and change.at <= when and (
            latest is None or change.at >= latest
        ):
            state, latest, excluded = change.opt_in, change.at, change.excluded_groups
    return state, excluded


def first_contact(person: Person) -> datetime | None:
    """When the company first learnt this person's email (no mail before that)."""
    moments = [m for m in (person.customer_since, person.newsletter_signup) if m is not None]
    moments += [account.created_at for account in person.accounts]
    return min(moments) if moments else None
