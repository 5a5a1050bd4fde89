"""Render the seven landing sources from the hidden population.

Each renderer returns a :class:`SourceData`: the rows per file (already in file order, with their
record keys) and the truth pairs (record key, person id). Each source draws from its own RNG
stream, so changing one renderer does not reshuffle the others.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cdp.demo import texts, vocab
from cdp.demo.model import (
    CONSENT_LOG_START,
    REFERENCE_DATE,
    WINDOW_DAYS,
    WINDOW_START,
    AnonymousVisitor,
    ConsentChange,
    Person,
    Phone,
)
from cdp.demo.noise import Noiser
from cdp.demo.people import at_daytime, new_uuid, random_time_in_window
from cdp.demo.timeline import Campaign, email_preferences, first_contact, offers_valid_at

# Column order of every landing file: the contract with config/sources.yml.
COLUMNS: dict[str, tuple[str, ...]] = {
    "web_events": ("event_id", "event_ts", "anonymous_id", "user_id", "event_type", "email",
                   "product_group", "offer_id", "page"),
    "shop_accounts": ("account_id", "created_at", "updated_at", "email", "first_name",
                      "last_name", "birth_date", "phone", "street", "house_number", "postcode",
                      "city", "country", "newsletter_opt_in"),
    "email_events": ("event_id", "event_ts", "email", "event_type", "campaign_id", "offer_id",
                     "product_group"),
    "crm_customers": ("crm_row_id", "customer_number", "anrede", "vorname", "nachname",
                      "geburtsdatum", "email", "telefon", "strasse", "hausnummer", "plz", "ort",
                      "land", "kundenkarte", "email_opt_in", "post_opt_in", "phone_opt_in",
                      "updated_at"),
    "pos_orders": ("order_id", "order_ts", "store_id", "loyalty_card", "amount", "product_group",
                   "offer_id"),
    "support_tickets": ("ticket_id", "created_at", "channel", "customer_number", "first_name",
                        "last_name", "email", "phone", "subject", "text", "offer_id",
                        "offer_outcome", "do_not_contact"),
    "consent_log": ("change_id", "changed_at", "customer_number", "email", "phone", "channel",
                    "action", "origin", "max_contacts", "per", "excluded_product_groups"),
}

COUNTRY_NAMES: dict[str, tuple[str, ...]] = {
    "DE": ("Deutschland", "Germany", "D", "de"),
    "AT": ("Österreich", "Austria", "A", "at"),
    "CH": ("Schweiz", "Switzerland", "CH", "ch"),
    "GB": ("United Kingdom", "UK", "Großbritannien", "gb"),
    "US": ("USA", "United States", "us"),
}

Row = tuple[Any, ...]


@dataclass
class SourceData:
    """Rendered records of one source, ready to be written."""

    name: str
    files: dict[str, list[Row]]  # file name -> rows in file order (values in COLUMNS order)
    truth: list[tuple[str, str]]  # (record key, person id), one per distinct record key
    fmt: str = "csv"  # csv | jsonl
    delimiter: str = ","
    extra: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        return COLUMNS[self.name]

    def record_count(self) -> int:
        return sum(len(rows) for rows in self.files.values())


# ----------------------------------------------------------------------------------------------
# shared helpers


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def month_key(moment: datetime) -> str:
    return f"{moment.year}{moment.month:02d}"


def window_months() -> list[str]:
    months, moment = [], WINDOW_START
    while moment < REFERENCE_DATE:
        months.append(month_key(moment))
        moment = (moment.replace(day=1) + timedelta(days=32)).replace(day=1)
    return months


def pick_email(person: Person, when: datetime, noiser: Noiser, shared_ok: bool = True) -> str:
    """Which of a person's addresses a record made at ``when`` would carry."""
    rng, cfg = noiser.rng, noiser.config
    stale = person.old_email and person.email_changed and when < person.email_changed
    if stale and person.old_email and rng.random() < 0.85:
        return person.old_email
    if shared_ok and person.shared_email and rng.random() < cfg.shared_email:
        return person.shared_email
    if person.work_email and rng.random() < cfg.alt_email:
        return person.work_email
    if person.alt_email and rng.random() < cfg.alt_email:
        return person.alt_email
    return person.primary_email


def pick_phone(person: Person, rng: random.Random, prefer_mobile: float = 0.7) -> Phone | None:
    if person.mobile and person.landline:
        return person.mobile if rng.random() < prefer_mobile else person.landline
    return person.mobile or person.landline


def country_value(code: str, noiser: Noiser, weight: float = 1.0) -> str:
    if noiser.rng.random() < noiser.config.street_variant * 0.3 * weight:
        return noiser.rng.choice(COUNTRY_NAMES[code])
    return code


def interests(person: Person) -> tuple[str, str]:
    """Two favourite product groups, stable per person (derived from the id, not the RNG)."""
    number = int(person.person_id[1:])
    groups = vocab.BASE_PRODUCT_GROUPS
    return groups[number % len(groups)], groups[(number * 7 + 3) % len(groups)]


def shopping_group(person: Person, when: datetime, rng: random.Random) -> str:
    if person.baby_date is not None and when >= person.baby_date and rng.random() < 0.45:
        return "baby"
    if rng.random() < 0.7:
        return rng.choice(interests(person))
    return rng.choice(vocab.BASE_PRODUCT_GROUPS)


def _truth_in_order(files: dict[str, list[Row]], owners: dict[str, str]) -> list[tuple[str, str]]:
    truth: list[tuple[str, str]] = []
    seen: dict[str, None] = {}
    for rows in files.values():
        for row in rows:
            key = row[0]
            if key not in seen:
                seen[key] = None
                truth.append((key, owners[key]))
    return truth


def _keyed(
    rows: list[tuple[datetime, str, Row]], key_format: str
) -> tuple[list[Row], dict[str, str]]:
    """Give sorted (time, person id, row) entries their record keys by position
    (``key_format.format(1)``, ...) in place of the row's first field; also key -> person id."""
    keyed: list[Row] = []
    owners: dict[str, str] = {}
    for index, (_, person_id, row) in enumerate(rows, start=1):
        key = key_format.format(index)
        keyed.append((key, *row[1:]))
        owners[key] = person_id
    return keyed, owners


# ----------------------------------------------------------------------------------------------
# email events (runs first: it completes the consent history and the offers people saw)


def render_email_events(persons: list[Person], campaigns: list[Campaign], noiser: Noiser
                        ) -> SourceData:
    """ESP export: sent -> delivered -> open -> click funnels, bounces, unsubscribes, complaints."""
    rng, cfg = noiser.rng, noiser.config
    events: list[tuple[datetime, str, Row]] = []  # (sort time, person id, row)
    # The ESP stores an address as imported and repeats that exact string in every event.
    stored: dict[str, str] = {}

    def emit(person: Person, at: datetime, address: str, kind: str, campaign: Campaign) -> None:
        if at >= REFERENCE_DATE:
            return
        if address not in stored:
            stored[address] = noiser.email(address, self_typed=False)
        row = (new_uuid(rng), iso(at), stored[address], kind,
               campaign.campaign_id, campaign.offer_id, campaign.product_group)
        events.append((at, person.person_id, row))
        if rng.random() < cfg.duplicate_event:  # the ESP re-delivers the same event later
            events.append((at + timedelta(minutes=rng.randint(30, 2880)), person.person_id, row))

    for person in persons:
        start = first_contact(person)
        if start is None or person.newsletter_email is None:
            continue
        stale_old = person.old_email is not None and rng.random() < 0.5
        for campaign in campaigns:
            if campaign.at < start:
                continue
            subscribed, excluded = email_preferences(person, campaign.at)
            if not subscribed or campaign.product_group in excluded:
                continue
            if rng.random() >= campaign.reach:
                continue
            sent = campaign.at + timedelta(seconds=rng.randint(0, 3 * 3600))
            if stale_old and person.old_email:  # the list still holds the abandoned address
                emit(person, sent, person.old_email, "sent", campaign)
                emit(person, sent + timedelta(seconds=rng.randint(5, 900)), person.old_email,
                     "bounce", campaign)
                stale_old = False
                continue
            address = person.newsletter_email
            emit(person, sent, address, "sent", campaign)
            if rng.random() < 0.01:  # soft bounce (mailbox full)
                emit(person, sent + timedelta(seconds=rng.randint(5, 900)), address, "bounce",
                     campaign)
                continue
            emit(person, sent + timedelta(seconds=rng.randint(1, 300)), address, "delivered",
                 campaign)
            if campaign.offer_id:
                person.sent_offers.append(campaign.offer_id)
            if rng.random() < 0.003:  # spam complaint: the ESP suppresses the address for good
                emit(person, sent + timedelta(minutes=rng.randint(60, 2880)), address,
                     "complaint", campaign)
                break
            if rng.random() >= 0.35:
                continue
            opened = at_daytime(sent + timedelta(days=rng.choice((0, 0, 0, 1, 2))), rng)
            if opened < sent + timedelta(minutes=10):
                opened = sent + timedelta(minutes=rng.randint(10, 240))
            emit(person, opened, address, "open", campaign)
            if rng.random() < 0.3:
                clicked = opened + timedelta(seconds=rng.randint(5, 600))
                emit(person, clicked, address, "click", campaign)
                if campaign.offer_id:
                    person.clicked_offers.append((campaign.offer_id, clicked))
            if rng.random() < 0.03:
                gone = opened + timedelta(seconds=rng.randint(20, 300))
                emit(person, gone, address, "unsubscribe", campaign)
                person.consent_changes.append(
                    ConsentChange(gone, "email", False, "web_form", email=address)
                )
                if rng.random() < 0.3:  # explicit re-subscribe later in the preference centre
                    back = gone + timedelta(days=rng.uniform(7, 120))
                    if back < REFERENCE_DATE - timedelta(days=1):
                        cap = rng.random() < 0.5
                        person.consent_changes.append(ConsentChange(
                            back, "email", True, "preference_centre",
                            max_contacts=rng.randint(1, 2) if cap else None,
                            per="month" if cap else None,
                            email=address,
                        ))
    events.sort(key=lambda item: (item[0], item[2][0]))
    rows = [row for _, _, row in events]
    owners = {row[0]: person_id for _, person_id, row in events}
    files = {"email_events.csv": rows}
    return SourceData("email_events", files, _truth_in_order(files, owners))


# ----------------------------------------------------------------------------------------------
# web events


def _page(kind: str, group: str | None, offer_id: str | None, rng: random.Random) -> str:
    pages = vocab.WEB_PAGES
    if kind == "page_view":
        if group and rng.random() < 0.6:
            return rng.choice(pages["category"]).format(g=group)
        return rng.choice(pages["home"])
    if kind in ("product_view", "add_to_cart"):
        if kind == "add_to_cart" and rng.random() < 0.5:
            return rng.choice(pages["cart"])
        return rng.choice(pages["product"]).format(g=group, n=rng.randint(10000, 99999))
    if kind == "login":
        return rng.choice(pages["login"])
    if kind == "identify":
        return rng.choice(pages["newsletter"])
    return rng.choice(pages["offer"]).format(o=offer_id)


def _session(person: Person | None, cookie: str, start: datetime, size: int,
             link: tuple[str, str] | None, rng: random.Random,
             out: list[tuple[datetime, str, dict[str, Any]]], owner: str) -> None:
    """One visit: browsing events with an optional login/identify event somewhere inside.

    ``link`` is ("login", account_id) or ("identify", email as typed).
    """
    kinds: list[str] = []
    while len(kinds) < size:
        roll = rng.random()
        if not kinds or roll < 0.2:
            kinds.append("page_view")
        elif roll < 0.6:
            kinds.append("product_view")
        elif roll < 0.75:
            kinds.append("add_to_cart")
        else:
            kinds.append("offer_view")
            if rng.random() < 0.4:
                kinds.append("offer_dismiss")
    kinds = kinds[:size]
    if kinds and kinds[-1] == "offer_view" and size > 1 and rng.random() < 0.3:
        kinds[-1] = "product_view"
    if link is not None:
        lowest = 0 if link[0] == "identify" or not kinds else 1  # logins follow some browsing
        kinds.insert(rng.randint(lowest, len(kinds)), link[0])
    user_id: str | None = None
    moment = start
    offer: tuple[str, str] | None = None
    for kind in kinds:
        moment += timedelta(seconds=rng.randint(5, 240))
        group: str | None = None
        offer_id: str | None = None
        email: str | None = None
        if kind in ("product_view", "add_to_cart"):
            group = shopping_group(person, moment, rng) if person else rng.choice(
                vocab.BASE_PRODUCT_GROUPS)
        elif kind == "page_view" and rng.random() < 0.5:
            group = rng.choice(vocab.BASE_PRODUCT_GROUPS)
        elif kind in ("offer_view", "offer_dismiss"):
            if kind == "offer_view" or offer is None:
                valid = offers_valid_at(moment)
                seen = [o for o in valid if person and o[0] in person.sent_offers]
                offer = rng.choice(seen) if seen and rng.random() < 0.4 else rng.choice(valid)
            offer_id, group = offer
        elif kind == "login" and link is not None:
            user_id = link[1]
        elif kind == "identify" and link is not None:
            email = link[1]
        if moment >= REFERENCE_DATE:
            moment = REFERENCE_DATE - timedelta(seconds=rng.randint(1, 3600))
        event = {
            "event_id": new_uuid(rng),
            "event_ts": iso(moment),
            "anonymous_id": cookie,
            "user_id": user_id,
            "event_type": kind,
            "email": email,
            "product_group": group,
            "offer_id": offer_id,
            "page": _page(kind, group, offer_id, rng),
        }
        out.append((moment, owner, event))


def render_web_events(persons: list[Person], visitors: list[AnonymousVisitor], noiser: Noiser
                      ) -> SourceData:
    """Clickstream split by month; every known cookie logs in or identifies at least once."""
    rng, cfg = noiser.rng, noiser.config
    events: list[tuple[datetime, str, dict[str, Any]]] = []
    last_start = WINDOW_DAYS - 0.5
    for person in persons:
        if not person.cookies:
            continue
        # 1..15 events; each cookie gets its linking event plus a random share of the rest
        shares = [1] * len(person.cookies)
        for _ in range(min(15 - len(shares), int(rng.expovariate(1 / 5)))):
            shares[rng.randrange(len(shares))] += 1
        for index, (cookie, share) in enumerate(zip(person.cookies, shares, strict=True)):
            typed = noiser.email(person.newsletter_email or person.primary_email)
            link: tuple[str, str] = ("identify", typed)
            if index == 0 and person.newsletter_signup is not None:
                start = person.newsletter_signup - timedelta(seconds=rng.randint(30, 600))
            elif person.accounts and rng.random() < 0.9:
                account = rng.choice(person.accounts)
                link = ("login", account.account_id)
                opened = max(0, (account.created_at - WINDOW_START).days + 1)
                start = random_time_in_window(rng, opened, last_start)
            else:
                start = random_time_in_window(rng, 0, last_start)
            first = rng.randint(0, min(4, share - 1))
            _session(person, cookie, start, first, link, rng, events, person.person_id)
            left = share - 1 - first
            while left > 0:
                size = min(left, rng.randint(1, 5))
                later = start + timedelta(days=rng.uniform(0.1, 60))
                if later >= REFERENCE_DATE - timedelta(hours=2):
                    later = start + timedelta(hours=rng.uniform(1, 3))
                _session(person, cookie, later, size, None, rng, events, person.person_id)
                left -= size
    for visitor in visitors:
        start = random_time_in_window(rng, 0, last_start)
        _session(None, visitor.cookie, start, rng.randint(1, 5), None, rng, events,
                 visitor.person_id)
    months = window_months()
    files: dict[str, list[tuple[datetime, dict[str, Any]]]] = {m: [] for m in months}
    owners: dict[str, str] = {}
    for moment, owner, event in events:
        index = months.index(month_key(moment))
        if index + 1 < len(months) and rng.random() < cfg.late_event:
            index += 1  # late arrival: older timestamp lands in the next month's file
        files[months[index]].append((moment, event))
        owners[event["event_id"]] = owner
    rendered: dict[str, list[Row]] = {}
    for month in months:
        rows = sorted(files[month], key=lambda item: (item[0], item[1]["event_id"]))
        rendered[f"events_{month}.jsonl"] = [
            tuple(event[c] for c in COLUMNS["web_events"]) for _, event in rows
        ]
    return SourceData("web_events", rendered, _truth_in_order(rendered, owners), fmt="jsonl")


# ----------------------------------------------------------------------------------------------
# shop accounts


def render_shop_accounts(persons: list[Person], noiser: Noiser) -> SourceData:
    """Self-registered accounts: self-typed names and emails, optional fields often empty."""
    rng = noiser.rng
    rows: list[tuple[datetime, str, Row]] = []
    for person in persons:
        for account in person.accounts:
            first, last = noiser.person_name(person, ascii_only=rng.random() < 0.1)
            email = account.email
            # a single account is sometimes registered with the partner's address
            single = len(person.accounts) == 1
            if single and person.shared_email and rng.random() < noiser.config.shared_email * 0.5:
                email = person.shared_email
            born = "" if rng.random() < 0.3 else noiser.birth_date(person.birth_date).isoformat()
            phone = ""
            if person.mobile and rng.random() < 0.55:
                phone = noiser.missing(noiser.phone(person.mobile, "compact"))
            address = person.address_at(account.updated_at)
            rows.append((account.created_at, person.person_id, (
                account.account_id,
                iso(account.created_at),
                iso(account.updated_at),
                noiser.email(email),
                noiser.missing(first, 0.3),
                noiser.missing(last, 0.3),
                noiser.missing(born, 0.5),
                phone,
                noiser.missing(noiser.street(address.street), 0.5),
                noiser.missing(noiser.house_number(address.house_number), 0.5),
                noiser.missing(address.postcode, 0.5),
                noiser.missing(noiser.city(address.city), 0.5),
                country_value(address.country, noiser),
                "true" if person.consent_at("email", account.updated_at) else "false",
            )))
    rows.sort(key=lambda item: (item[0], item[2][0]))
    files = {"accounts.csv": [row for _, _, row in rows]}
    owners = {row[0]: person_id for _, person_id, row in rows}
    return SourceData("shop_accounts", files, _truth_in_order(files, owners))


# ----------------------------------------------------------------------------------------------
# CRM


def _crm_row(person: Person, updated: datetime, latest: bool, noiser: Noiser) -> Row:
    rng = noiser.rng
    first, last = noiser.person_name(person)
    salutation = {"m": "Herr", "f": "Frau"}[person.gender]
    if rng.random() < 0.03:
        salutation = ""
    phone = pick_phone(person, rng, prefer_mobile=0.5)
    address = person.address_at(updated)
    card = ""
    if person.loyalty_card and (latest or (person.card_since and person.card_since <= updated)):
        card = person.loyalty_card
    return (
        "",  # crm_row_id, assigned after sorting
        person.customer_number,
        salutation,
        noiser.missing(first, 0.2),
        last,
        noiser.missing(f"{noiser.birth_date(person.birth_date):%d.%m.%Y}", 0.6),
        noiser.missing(noiser.email(pick_email(person, updated, noiser), self_typed=False), 1.5),
        noiser.missing(noiser.phone(phone, "slash"), 1.2) if phone else "",
        noiser.missing(noiser.street(address.street), 0.3),
        noiser.missing(noiser.house_number(address.house_number), 0.3),
        noiser.missing(address.postcode, 0.3),
        noiser.missing(noiser.city(address.city), 0.3),
        country_value(address.country, noiser),
        card,
        "ja" if person.consent_at("email", updated) else "nein",
        "ja" if person.consent_at("post", updated) else "nein",
        "ja" if person.consent_at("phone", updated) else "nein",
        f"{updated:%d.%m.%Y %H:%M}",
    )


def render_crm(persons: list[Person], noiser: Noiser) -> SourceData:
    """CRM export; a customer who moved appears twice with the same customer number."""
    rng = noiser.rng
    rows: list[tuple[datetime, str, Row]] = []
    for person in persons:
        if person.customer_number is None or person.customer_since is None:
            continue
        since = person.customer_since
        until_now = (REFERENCE_DATE - since).total_seconds()
        moved = person.move_date is not None and person.old_address is not None
        if moved and person.move_date and since < person.move_date:
            span = (person.move_date - since).total_seconds()
            old_update = since + timedelta(seconds=rng.uniform(0, span * 0.95))
            old_update = min(max(since, at_daytime(old_update, rng)), person.move_date)
            told = rng.random() < 0.85  # most movers told the CRM; the rest keep a stale address
            rows.append((old_update, person.person_id,
                         _crm_row(person, old_update, not told, noiser)))
            if told:
                gap = min(60.0, (REFERENCE_DATE - person.move_date).days - 0.5)
                new_update = person.move_date + timedelta(days=int(rng.uniform(0, max(0, gap))))
                new_update = max(person.move_date, at_daytime(new_update, rng))
                rows.append((new_update, person.person_id,
                             _crm_row(person, new_update, True, noiser)))
            continue
        updated = since + timedelta(days=int(rng.uniform(0, until_now / 86400 - 1)))
        updated = max(since, at_daytime(updated, rng))
        if person.card_since and person.card_since > updated:
            updated = person.card_since
        rows.append((updated, person.person_id, _crm_row(person, updated, True, noiser)))
    rows.sort(key=lambda item: (item[0], item[2][1]))
    numbered, owners = _keyed(rows, "CRM-{:07d}")
    files = {"crm_export.csv": numbered}
    return SourceData("crm_customers", files, _truth_in_order(files, owners), delimiter=";")


# ----------------------------------------------------------------------------------------------
# POS orders


def render_pos_orders(persons: list[Person], noiser: Noiser) -> SourceData:
    """Till receipts with a scanned loyalty card; coupons are offer redemptions (accepted)."""
    rng = noiser.rng
    orders: list[tuple[datetime, str, Row]] = []
    for person in persons:
        if not person.loyalty_card or not person.card_since:
            continue
        start = max(person.card_since, WINDOW_START)
        span_days = (REFERENCE_DATE - start).days
        if span_days < 1:
            continue
        home_store = f"S{rng.randint(1, 40):03d}"
        count = max(1, round(rng.randint(1, 14) * span_days / WINDOW_DAYS))
        moments = []
        for _ in range(count):
            day = start + timedelta(days=rng.randrange(span_days))
            if day.weekday() == 6:  # closed on Sundays
                day -= timedelta(days=1)
            moment = day.replace(hour=rng.randint(9, 19), minute=rng.randint(0, 59),
                                 second=rng.randint(0, 59), microsecond=0)
            if moment >= start:
                moments.append(moment)
        moments.sort()
        baby_done = False
        for moment in moments:
            group = shopping_group(person, moment, rng)
            if person.baby_date and moment >= person.baby_date and not baby_done:
                group, baby_done = "baby", True  # the life event: first baby purchase
            offer_id = ""
            valid = offers_valid_at(moment, group)
            if valid:
                clicked = any(
                    offer == valid[0][0] and timedelta(0) <= moment - at <= timedelta(days=21)
                    for offer, at in person.clicked_offers
                )
                if rng.random() < (0.6 if clicked else 0.1):
                    offer_id = valid[0][0]
            store = home_store if rng.random() < 0.8 else f"S{rng.randint(1, 40):03d}"
            amount = f"{rng.lognormvariate(3.6, 0.7):.2f}"
            orders.append((moment, person.person_id,
                           ("", iso(moment), store, person.loyalty_card, amount, group, offer_id)))
    orders.sort(key=lambda item: (item[0], item[2][3]))
    files: dict[str, list[Row]] = {f"orders_{m}.csv": [] for m in window_months()}
    keyed, owners = _keyed(orders, "ORD-{:08d}")
    for (moment, _, _), row in zip(orders, keyed, strict=True):
        files[f"orders_{month_key(moment)}.csv"].append(row)
    return SourceData("pos_orders", files, _truth_in_order(files, owners))


# ----------------------------------------------------------------------------------------------
# support tickets


def render_tickets(persons: list[Person], noiser: Noiser) -> SourceData:
    """Service contacts; the label goes only to the truth, never into the landing file."""
    rng = noiser.rng
    tickets: list[tuple[datetime, str, Row, str]] = []
    for person in persons:
        for plan in person.tickets:
            has_number = {"phone": 0.6, "email": 0.3, "chat": 0.2}[plan.channel]
            known = person.customer_since is not None and person.customer_since <= plan.at
            number = person.customer_number if (
                known and person.customer_number and rng.random() < has_number) else ""
            first, last = noiser.person_name(person)
            if plan.channel == "chat" and rng.random() < 0.4:
                last = ""
            email_rate = {"phone": 0.25, "email": 1.0, "chat": 0.7}[plan.channel]
            email = ""
            if rng.random() < email_rate:
                email = noiser.email(pick_email(person, plan.at, noiser))
            phone_rate = {"phone": 0.95, "email": 0.2, "chat": 0.1}[plan.channel]
            phone_value = ""
            phone = pick_phone(person, rng, prefer_mobile=0.6)
            if phone and rng.random() < phone_rate:
                phone_value = noiser.phone(phone, "national")
            offer: tuple[str, str] | None = None
            if plan.channel == "phone" and rng.random() < 0.3:
                valid = [o for o, group in offers_valid_at(plan.at)
                         if group != "baby" or person.baby_date is not None]
                mailed = [o for o in person.sent_offers if o in valid]
                # cross-channel: often the very offer the person was already mailed
                pool = mailed if mailed and rng.random() < 0.6 else valid
                if pool:
                    outcome = "accepted" if rng.random() < 0.35 else "declined"
                    offer = (rng.choice(pool), outcome)
            address = person.address_at(plan.at)
            subject, text = texts.ticket_text(
                rng, person.lang, person.gender, plan.label, plan.channel, address.city,
                rng.choice(interests(person)), offer, plan.do_not_contact,
            )
            row = ("", iso(plan.at), plan.channel, number, noiser.missing(first, 0.3),
                   noiser.missing(last, 0.5), noiser.missing(email, 0.5),
                   noiser.missing(phone_value, 0.5), subject, text,
                   offer[0] if offer else "", offer[1] if offer else "",
                   "true" if plan.do_not_contact else "false")
            tickets.append((plan.at, person.person_id, row, plan.label))
    tickets.sort(key=lambda item: (item[0], item[1]))
    rows, owners = _keyed([(at, person_id, row) for at, person_id, row, _ in tickets],
                          "TCK-{:06d}")
    labels = [(row[0], label) for row, (*_, label) in zip(rows, tickets, strict=True)]
    files = {"tickets.csv": rows}
    return SourceData("support_tickets", files, _truth_in_order(files, owners),
                      extra={"ticket_labels": labels})


# ----------------------------------------------------------------------------------------------
# consent log


def _consent_row(person: Person, change: ConsentChange, noiser: Noiser) -> Row:
    rng = noiser.rng
    number_rate = {"call_centre": 0.95, "preference_centre": 0.7, "web_form": 0.25}[change.origin]
    number = person.customer_number if (
        person.customer_number and rng.random() < number_rate) else ""
    email = ""
    if change.channel == "email":
        email = change.email or person.newsletter_email or person.primary_email
    elif rng.random() < 0.5:
        email = person.primary_email
    phone: Phone | None = None
    if change.channel == "sms":
        phone = person.mobile
    elif change.channel == "phone":
        phone = pick_phone(person, rng, prefer_mobile=0.4)
    elif rng.random() < 0.1:
        phone = pick_phone(person, rng)
    phone_value = noiser.phone(phone, "e164") if phone else ""
    if not (number or email or phone_value):
        email = person.primary_email
    return (
        "",
        iso(change.at),
        number,
        noiser.email(email, self_typed=change.origin == "web_form") if email else "",
        phone_value,
        change.channel,
        "opt_in" if change.opt_in else "opt_out",
        change.origin,
        "" if change.max_contacts is None else str(change.max_contacts),
        change.per or "",
        "|".join(change.excluded_groups),
    )


def render_consent_log(persons: list[Person], noiser: Noiser) -> SourceData:
    """Explicit consent changes since the log started (older consents are CRM flags only)."""
    changes: list[tuple[datetime, str, Row]] = []
    for person in persons:
        for change in sorted(person.consent_changes, key=lambda c: (c.at, c.channel)):
            if CONSENT_LOG_START <= change.at < REFERENCE_DATE:
                changes.append((change.at, person.person_id, _consent_row(person, change, noiser)))
    changes.sort(key=lambda item: (item[0], item[1], item[2][5]))
    rows, owners = _keyed(changes, "CHG-{:07d}")
    files = {"consent_changes.csv": rows}
    return SourceData("consent_log", files, _truth_in_order(files, owners))
