"""What each export file is for, who may be in it, and which value of a contact point it carries.

Every file of an export declares the consent purpose its rows need; the manifest lists per
file the purpose, the rows written and the rows dropped (by reason):

=================================================== ===================== ====================
file                                                purpose               dropped from
=================================================== ===================== ====================
``members.csv``, ``members.parquet``                the segment's channel the segment's
                                                                          candidates (the
                                                                          suppression chain)
``joined.csv``, ``left.csv``                        the segment's channel nothing (a delta of
                                                                          the members file)
``google_customer_match.csv``,                      ``online_ads``        the members file's
``meta_custom_audience.csv``                                              rows
``suppressed.csv``                                  none (profile ids and reasons only, for
                                                    the audit)
=================================================== ===================== ====================

Uploading hashed addresses to an ad platform is advertising: the segment's e-mail consent does
not cover it. The ad audiences are written only for a segment that declares
``ad_audiences: true`` in ``segments.yml`` (unset: only an ``online_ads`` segment); a segment
with no ad purpose writes no ad files. Their rows are the members whose ``online_ads`` consent
verdict - the suppression chain's own consent rule (``consent_verdict_sql``): a contactable
opt-in, no identifier of the profile on the suppression list - leaves a usable contact point;
the identifiers hashed are exactly the usable ``online_ads`` email and phone. A member without
is dropped from them with that verdict's reason.

Matching key and deliverable value are kept apart: suppression and consent work on the
normalised contact point, the files and the API carry the deliverable value of
``main.dim_profile_contact_values`` (the email as the customer gave it, the E.164 phone), and
the ad hashes apply each platform's rules (``profiles.activation.hashing``) to that value.
"""

from __future__ import annotations

import duckdb

from profiles.activation.suppression import consent_verdict_sql
from profiles.publishing.published import PUBLISHED, published_tables

AD_PURPOSE = "online_ads"
AD_FILES = ("google_customer_match.csv", "meta_custom_audience.csv")
CONTACT_VALUES = "main.dim_profile_contact_values"
NO_CONTACT_VALUES = (f"{CONTACT_VALUES} not in the publication (published before it existed): "
                     "contact points handed out in their normalised form")


def contact_values(con: duckdb.DuckDBPyConnection) -> str | None:
    """The deliverable-values mart of the publication, ``None`` for one that predates it."""
    return f"{PUBLISHED}.{CONTACT_VALUES}" if CONTACT_VALUES in published_tables(con) else None


def deliverable_sql(point: str, profile: str, values: str | None) -> str:
    """SQL for the deliverable value of contact point ``point`` of profile ``profile`` (column
    expressions, qualified: they are read inside a subquery); the point itself when ``values``
    is ``None`` (see ``contact_values``)."""
    if values is None:
        return point
    return (f"coalesce((SELECT v.deliverable_value FROM {values} AS v "
            f"WHERE v.profile_id = {profile} AND v.contact_point = {point}), {point})")


def build_ad_audience(con: duckdb.DuckDBPyConnection, members: str, into: str,
                      drops: str) -> None:
    """Tables ``into`` - per member with ``online_ads`` consent its profile id, deliverable
    ``email`` and ``phone`` and their matching keys ``email_key`` / ``phone_key`` - and
    ``drops`` - (profile_id, reason) for every member without."""
    verdict = f"{into}__verdict"
    values = contact_values(con)
    con.execute(f"CREATE OR REPLACE TABLE {verdict} AS {consent_verdict_sql(members)}",
                [AD_PURPOSE])
    con.execute(
        f"CREATE OR REPLACE TABLE {into} AS SELECT a.profile_id, "
        f"{deliverable_sql('a.email', 'a.profile_id', values)} AS email, "
        f"{deliverable_sql('a.phone', 'a.profile_id', values)} AS phone, "
        f"a.email AS email_key, a.phone AS phone_key "
        f"FROM {verdict} AS a WHERE a.reason IS NULL ORDER BY a.profile_id")
    con.execute(f"CREATE OR REPLACE TABLE {drops} AS SELECT profile_id, reason FROM {verdict} "
                "WHERE reason IS NOT NULL ORDER BY profile_id")
    con.execute(f"DROP TABLE {verdict}")


def dropped_by_reason(con: duckdb.DuckDBPyConnection, drops: str) -> dict[str, int]:
    """How many rows a file lost, per reason (codes, never personal data)."""
    return {reason: int(n) for reason, n in con.execute(
        f"SELECT reason, count(*) FROM {drops} GROUP BY reason ORDER BY reason").fetchall()}
