"""The suppression chain every export passes, in a fixed order, recording why each drop happened.

1. ``consent``: no opt-in for the segment's channel (or an opt-out), or a hashed identifier of
   the profile on the suppression list - which outlives erasure and re-imports and, whatever
   channel it was recorded for, blocks every channel;
2. ``frequency_cap``: the customer's own ``max_contacts`` per week/month (else the global
   default) already reached, counting deliveries in *all* channels in the current period;
3. ``cooldown``: the same offer rejected in any channel within the cool-down window, so an
   offer turned down on the phone is not e-mailed a week later;
4. ``excluded_product_group``: the customer excluded the offer's product group.

Every step also reads the hot list (``profiles.activation.hot_events``): opt-outs and offer
contacts posted to the API since the publication count as if they were published - an opt-out
as an opted-out contact point (and, for email / sms / phone, a suppressed identifier), a
delivery towards the cap, a rejection for the cool-down.

Everything runs as SQL over the published marts (attached read-only as ``pub``) into two
in-memory tables: members (profile_id, contact_point) and drops (profile_id, step, reason).
Reasons are short codes, never personal data, so previews and reports can show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from profiles.activation import hot_events
from profiles.activation.segment import Segment
from profiles.activation.syntax import SegmentError
from profiles.publishing.published import PUBLISHED, require_tables

STEPS = ("consent", "frequency_cap", "cooldown", "excluded_product_group")
REQUIRED_TABLES = {
    "main.dim_profiles", "main.dim_profile_consent", "main.dim_suppression_list",
    "main.dim_profile_preferences", "main.fct_offer_responses",
}
PERIODS = ("week", "month")


@dataclass(frozen=True)
class SuppressionPolicy:
    """Global defaults from ``segments.yml``; a customer's own preferences override the cap.

    Validated by ``profiles.activation.config``, whose defaults are these.
    """

    max_contacts: int = 3
    period: str = "week"
    cooldown_days: int = 30
    rejections: tuple[str, ...] = ("rejected", "declined")


@dataclass(frozen=True)
class StepCount:
    step: str
    dropped: int
    remaining: int


@dataclass(frozen=True)
class Suppressed:
    """Where the chain left its results, and how many each step dropped."""

    members: str
    drops: str
    candidates: int
    steps: tuple[StepCount, ...]

    @property
    def remaining(self) -> int:
        return self.steps[-1].remaining if self.steps else self.candidates


def consent_verdict_sql(members: str) -> str:
    """Per member: the contact point to use for the channel bound to the one ``?`` parameter,
    and a reason when there is none - the rule of the chain's ``consent`` step, shared with
    every other purpose an export file needs (``online_ads`` for ad audiences).

    A point is usable when its consent row is contactable and neither it nor any other
    identifier of the profile is on the suppression list; of the usable points the most
    recently decided wins. ``email`` / ``phone`` are the most recent usable point of each kind
    (a file may hand out both), ``contact_point`` the most recent of all.
    """
    pub = f"{PUBLISHED}.main"
    return f"""
        WITH hashes AS (
            SELECT identifier_hash FROM {pub}.dim_suppression_list
            WHERE identifier_hash IS NOT NULL
            UNION ALL SELECT identifier_hash FROM {hot_events.SUPPRESSED}),
        profile_hashes AS (  -- a listed identifier of the profile blocks all its points
            SELECT p.profile_id, sha256(p.email) AS identifier_hash
            FROM {members} AS m JOIN {pub}.dim_profiles AS p USING (profile_id)
            WHERE p.email IS NOT NULL
            UNION ALL
            SELECT p.profile_id, sha256(p.phone)
            FROM {members} AS m JOIN {pub}.dim_profiles AS p USING (profile_id)
            WHERE p.phone IS NOT NULL),
        blocked AS (
            SELECT DISTINCT profile_id
            FROM profile_hashes SEMI JOIN hashes USING (identifier_hash)),
        consent AS (  -- a hot opt-out newer than the published decision withdraws it
            SELECT c.*, {hot_events.opted_out_since_sql('c')} AS hot_opt_out
            FROM {members} AS m
            JOIN {pub}.dim_profile_consent AS c ON c.profile_id = m.profile_id AND c.channel = ?),
        points AS (
            SELECT c.profile_id, c.contact_point,
                   CASE WHEN c.hot_opt_out THEN 'opted_out' ELSE c.status END AS status,
                   c.decided_at,
                   c.is_contactable AND NOT c.hot_opt_out AND c.contact_point <> 'none'
                       AS contactable,
                   sha256(c.contact_point) IN (SELECT identifier_hash FROM hashes)
                   OR c.profile_id IN (SELECT profile_id FROM blocked) AS suppressed
            FROM consent AS c),
        verdict AS (
            SELECT m.profile_id,
                   first(x.contact_point ORDER BY x.decided_at DESC NULLS LAST, x.contact_point)
                       FILTER (WHERE x.contactable AND NOT x.suppressed) AS contact_point,
                   first(x.contact_point ORDER BY x.decided_at DESC NULLS LAST, x.contact_point)
                       FILTER (WHERE x.contactable AND NOT x.suppressed
                               AND contains(x.contact_point, '@')) AS email,
                   first(x.contact_point ORDER BY x.decided_at DESC NULLS LAST, x.contact_point)
                       FILTER (WHERE x.contactable AND NOT x.suppressed
                               AND starts_with(x.contact_point, '+')) AS phone,
                   coalesce(bool_or(x.suppressed), false) AS suppressed,
                   coalesce(bool_or(x.status = 'opted_out'), false) AS opted_out
            FROM {members} AS m LEFT JOIN points AS x USING (profile_id)
            GROUP BY m.profile_id)
        SELECT profile_id, contact_point, email, phone,
               CASE WHEN contact_point IS NOT NULL THEN NULL
                    WHEN suppressed THEN 'suppressed_identifier'
                    WHEN opted_out THEN 'opted_out' ELSE 'no_opt_in' END AS reason
        FROM verdict"""


def _step_queries(segment: Segment, policy: SuppressionPolicy, as_of: datetime,
                  members: str) -> dict[str, tuple[str, list[Any]]]:
    """Per step: SQL returning (profile_id, reason) for the members that step drops.

    ``consent`` is the exception: it returns every member with the contact point to use for
    the channel and a reason only when there is none, because it also picks that point.
    """
    pub = f"{PUBLISHED}.main"
    responses = (  # the published contact history plus the hot list's
        f"(SELECT profile_id, offer_id, channel, response, responded_at "
        f"FROM {pub}.fct_offer_responses UNION ALL SELECT profile_id, offer_id, channel, "
        f"response, responded_at FROM {hot_events.RESPONSES})")
    preferences = (
        f"(SELECT * FROM {pub}.dim_profile_preferences "
        "QUALIFY row_number() OVER (PARTITION BY profile_id ORDER BY decided_at DESC) = 1)"
    )
    cap = f"""
        WITH limits AS (
            SELECT m.profile_id,
                   coalesce(f.max_contacts, ?) AS max_contacts,
                   coalesce(f.contact_period, ?) AS period
            FROM {members} AS m LEFT JOIN {preferences} AS f USING (profile_id)),
        windows AS (
            SELECT *, CASE period WHEN 'month' THEN date_trunc('month', ?::TIMESTAMP)
                                  ELSE date_trunc('week', ?::TIMESTAMP) END AS starts
            FROM limits)
        SELECT w.profile_id, 'cap_reached_per_' || w.period
        FROM windows AS w JOIN {responses} AS r
          ON r.profile_id = w.profile_id AND r.response = 'delivered'
         AND r.responded_at >= w.starts AND r.responded_at <= ?::TIMESTAMP
        GROUP BY w.profile_id, w.period, w.max_contacts
        HAVING count(*) >= any_value(w.max_contacts)"""
    cooldown = f"""
        SELECT r.profile_id, 'offer_rejected_via_' || arg_max(r.channel, r.responded_at)
        FROM {members} AS m JOIN {responses} AS r USING (profile_id)
        WHERE r.offer_id = ? AND r.response IN (SELECT unnest(?::VARCHAR[]))
          AND r.responded_at >= ?::TIMESTAMP - to_days(?) AND r.responded_at <= ?::TIMESTAMP
        GROUP BY r.profile_id"""
    excluded = f"""
        WITH offer AS (
            SELECT coalesce(?, (SELECT arg_max(product_group, responded_at)
                                FROM {pub}.fct_offer_responses WHERE offer_id = ?)) AS grp)
        SELECT m.profile_id, 'product_group_excluded'
        FROM {members} AS m JOIN {preferences} AS f USING (profile_id), offer
        WHERE offer.grp IS NOT NULL AND list_contains(f.excluded_product_groups, offer.grp)"""
    return {
        "consent": (consent_verdict_sql(members), [segment.channel]),
        "frequency_cap": (cap, [policy.max_contacts, policy.period, as_of, as_of, as_of]),
        "cooldown": (cooldown, [segment.offer_id, list(policy.rejections), as_of,
                                policy.cooldown_days, as_of]),
        "excluded_product_group": (excluded, [segment.product_group, segment.offer_id]),
    }


def suppress(
    con: duckdb.DuckDBPyConnection,
    segment: Segment,
    policy: SuppressionPolicy,
    as_of: datetime | None = None,
    table_prefix: str = "activation",
    events: Path | None = None,
    profile_id: str | None = None,
) -> Suppressed:
    """Select the segment's candidates (only ``profile_id``, if given: one profile's verdict)
    and run the chain; results stay in memory tables.

    The hot list is read from ``events`` (the API's landing folder, again only after a batch
    landed); without it, what this connection loaded before, else an empty list (a hand-made
    publication, a test).
    """
    require_tables(con, REQUIRED_TABLES | segment.required_tables(),
                   f"segment {segment.name!r}")
    if events is None:
        hot_events.ensure_hot_events(con)
    else:
        hot_events.load_hot_events(con, events)
    now = (as_of or datetime.now(UTC)).replace(tzinfo=None)
    members, drops = f'memory.main."{table_prefix}_members"', f'memory.main."{table_prefix}_drops"'
    select, params = segment.candidates_sql()
    if profile_id is not None:
        select, params = f"SELECT * FROM ({select}) AS c WHERE c.profile_id = ?", [
            *params, profile_id]
    try:
        con.execute(f"CREATE OR REPLACE TABLE {members} AS SELECT DISTINCT profile_id, "
                    f"NULL::VARCHAR AS contact_point FROM ({select}) AS s", params)
    except duckdb.Error as error:  # e.g. a trait column the other marts do not have yet
        raise SegmentError(f"segment {segment.name!r} cannot be selected: {error}") from error
    con.execute(f"CREATE OR REPLACE TABLE {drops} "
                "(profile_id VARCHAR, step VARCHAR, reason VARCHAR)")
    candidates = _count(con, members)
    counts: list[StepCount] = []
    for step, (query, step_params) in _step_queries(segment, policy, now, members).items():
        before = counts[-1].remaining if counts else candidates
        if before == 0:  # nobody left to drop (often so for one profile's verdict)
            counts.append(StepCount(step, 0, 0))
            continue
        if step == "consent":
            verdict = f'memory.main."{table_prefix}_verdict"'
            con.execute(f"CREATE OR REPLACE TABLE {verdict} AS {query}", step_params)
            con.execute(f"INSERT INTO {drops} SELECT profile_id, ?, reason FROM {verdict} "
                        "WHERE reason IS NOT NULL", [step])
            con.execute(f"CREATE OR REPLACE TABLE {members} AS SELECT profile_id, "
                        f"contact_point FROM {verdict} WHERE reason IS NULL")
            con.execute(f"DROP TABLE {verdict}")
        else:
            con.execute(f"INSERT INTO {drops} SELECT d.profile_id, ?, d.reason "
                        f"FROM ({query}) AS d(profile_id, reason)", [step, *step_params])
            con.execute(f"DELETE FROM {members} WHERE profile_id IN "
                        f"(SELECT profile_id FROM {drops} WHERE step = ?)", [step])
        remaining = _count(con, members)
        counts.append(StepCount(step, before - remaining, remaining))
    return Suppressed(members, drops, candidates, tuple(counts))


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0
