"""Next best offers in the serving store: every profile's verdicts, computed at publish time by
the export's own chain (:func:`profiles.activation.offers.offer_verdicts`, over all profiles at
once), with how long they hold.

A verdict moves with the clock where the chain reads it: a frequency cap counts from the
start of the week or month, a cool-down ends ``cooldown_days`` after a rejection, a response
dated later starts counting when its time comes. Each profile's stored verdicts carry the
first of those moments (``valid_until``); after it, and for a profile named by an event the
publication does not hold yet, the API asks the chain again for that one profile.

Few distinct verdict lists exist (most profiles are eligible for the same offers for the same
reasons), so the store keeps each list once (``offer_sets``) and per profile one set id per
channel: a million profiles cost tens of megabytes, not gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache

import duckdb

from core.vocabulary import CHANNELS
from profiles.activation.config import ActivationConfig
from profiles.activation.offers import Offer, Verdict, offer_verdicts, ranked
from profiles.publishing.published import PUBLISHED


@dataclass(frozen=True)
class Catalogue:
    """What the stored next best offers are computed from: the offers and the chain's
    configuration (its policy; the hot list's folder, which the fingerprint leaves out since
    profiles an event names are never answered from the store), as the API loads them."""

    offers: dict[str, Offer]
    config: ActivationConfig

    @cached_property
    def fingerprint(self) -> str:
        """Changes with any offer or suppression setting: a store built from another catalogue
        is not used for answers."""
        offers = sorted((o.id, o.product_group, o.channels, o.priority, o.eligible)
                        for o in self.offers.values())
        policy = self.config.policy
        text = json.dumps([offers, [policy.max_contacts, policy.period, policy.cooldown_days,
                                    list(policy.rejections)]])
        return hashlib.sha256(text.encode()).hexdigest()


SCHEMA = ("CREATE TABLE offer_sets (set_id INTEGER PRIMARY KEY, verdicts TEXT NOT NULL);"
          "CREATE TABLE offers (profile_id TEXT PRIMARY KEY, sets TEXT NOT NULL,"
          " valid_until REAL NOT NULL);")


def write_offers(source: duckdb.DuckDBPyConnection, store: sqlite3.Connection,
                 catalogue: Catalogue, now: datetime | None = None) -> int:
    """Every profile's verdicts per channel as of ``now`` (default: the wall clock) into the
    store; returns the number of distinct verdict lists."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    offers, config = catalogue.offers, catalogue.config
    store.executescript(SCHEMA)
    source.execute("CREATE OR REPLACE TABLE memory.main.offer_lists (profile_id VARCHAR, "
                   "channel VARCHAR, verdicts VARCHAR)")
    for channel in CHANNELS:  # also those no offer is made in: every answer is stored
        table = offer_verdicts(source, offers, config, channel, as_of=now)
        source.execute(
            f"INSERT INTO memory.main.offer_lists SELECT profile_id, ?, "
            f"to_json(list([offer_id, step, reason] ORDER BY offer_id))::VARCHAR "
            f"FROM {table} GROUP BY profile_id", [channel])
    sets = source.execute(
        "CREATE OR REPLACE TABLE memory.main.offer_set_ids AS SELECT verdicts, "
        "row_number() OVER (ORDER BY verdicts) AS set_id "
        "FROM (SELECT DISTINCT verdicts FROM memory.main.offer_lists); "
        "SELECT set_id, verdicts FROM memory.main.offer_set_ids").fetchall()
    store.executemany("INSERT INTO offer_sets VALUES (?, ?)", sets)
    cursor = source.execute(f"""
        WITH per_profile AS (
            SELECT l.profile_id, to_json(map(list(l.channel ORDER BY l.channel),
                                             list(s.set_id ORDER BY l.channel)))::VARCHAR AS sets
            FROM memory.main.offer_lists AS l JOIN memory.main.offer_set_ids AS s USING (verdicts)
            GROUP BY l.profile_id),
        expiry AS ({_expiry_sql(config)})
        SELECT p.profile_id, p.sets, epoch(coalesce(least(e.changes_at, $boundary), $boundary))
        FROM per_profile AS p LEFT JOIN expiry AS e USING (profile_id)
        ORDER BY p.profile_id""", {"now": now, "boundary": _next_period(now),
                                   "cooldown": config.policy.cooldown_days,
                                   "rejections": list(config.policy.rejections)})
    while rows := cursor.fetchmany(10_000):
        store.executemany("INSERT INTO offers VALUES (?, ?, ?)", rows)
    source.execute("DROP TABLE memory.main.offer_lists; DROP TABLE memory.main.offer_set_ids")
    return len(sets)


def _next_period(now: datetime) -> datetime:
    """The first moment after ``now`` a frequency-cap period (a week or a month) starts."""
    week = datetime(now.year, now.month, now.day) + timedelta(days=7 - now.weekday())
    month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1)
    return min(week, month)


def _expiry_sql(config: ActivationConfig) -> str:
    """Per profile, the first moment after ``$now`` its chain verdicts may change: a rejection
    leaving the cool-down window, or a response dated later coming due."""
    return f"""
        SELECT profile_id, min(changes_at) AS changes_at FROM (
            SELECT profile_id, responded_at + to_days($cooldown) AS changes_at
            FROM {PUBLISHED}.main.fct_offer_responses
            WHERE response IN (SELECT unnest($rejections::VARCHAR[]))
              AND responded_at <= $now AND responded_at + to_days($cooldown) >= $now
            UNION ALL
            SELECT profile_id, responded_at FROM {PUBLISHED}.main.fct_offer_responses
            WHERE responded_at > $now)
        GROUP BY profile_id"""


@lru_cache(maxsize=4096)
def _parsed(verdicts: str) -> tuple[tuple[str, str | None, str | None], ...]:
    return tuple((offer, step, reason) for offer, step, reason in json.loads(verdicts))


class UnknownProfile(LookupError):
    """The store holds an answer for every profile of its publication: this is none of them."""


def stored_verdicts(store: sqlite3.Connection, offers: dict[str, Offer], profile_id: str,
                    channel: str, now: float) -> list[Verdict] | None:
    """The stored answer for the profile in the channel, ranked; None when it no longer holds
    at ``now`` (epoch seconds). The same lookup tells an unknown profile
    (:class:`UnknownProfile`)."""
    row = store.execute(
        "SELECT o.valid_until, s.verdicts FROM offers AS o, json_each(o.sets) AS c "
        "JOIN offer_sets AS s ON s.set_id = c.value WHERE o.profile_id = ? AND c.key = ?",
        (profile_id, channel)).fetchone()
    if row is None:
        raise UnknownProfile(profile_id)
    return ranked(offers, list(_parsed(row[1]))) if row[0] > now else None
