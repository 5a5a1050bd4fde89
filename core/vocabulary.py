"""One owner for the words every stage uses: identity fields, load metadata, channels, run ids.

A new channel or canonical field is one edit here; dbt receives the same lists as ``--vars``
(:func:`dbt_vars`), so SQL and its tests never spell them out themselves.
"""

from __future__ import annotations

import hashlib
import re

#: Canonical identity fields a source may map its columns onto (``identity:`` in sources.yml).
CANONICAL_FIELDS: tuple[str, ...] = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    # a birth date's parts, where a source keeps them in columns of their own; otherwise
    # derived from birth_date (an impossible or very old date keeps the parts it states)
    "birth_year",
    "birth_month",
    "birth_day",
    "street",
    "house_number",
    "postcode",
    "city",
    "country",
    "customer_number",
    # a government-issued number (national id card, tax id, passport, social security
    # number): sensitive; normalised as a code, never logged, hashed in the published marts
    "national_id",
    "user_id",
    "anonymous_id",
    "loyalty_card",
)

#: Canonical fields the published marts hold only as a hash (``identifier_hash``: SHA-256 of
#: ``kind:value`` of the normalised value), in a column named by :func:`published_column`:
#: a lookup by the hash still finds the profile, and the number is not in clear text.  The
#: hash is unkeyed and national ids are few enough to try them all: it is pseudonymised
#: personal data, not anonymous (a keyed hash is the planned fix).
HASHED_FIELDS: tuple[str, ...] = ("national_id",)


def published_column(field: str) -> str:
    """The identity graph's column for a canonical field (``national_id_sha256`` for a
    hashed one)."""
    return f"{field}_sha256" if field in HASHED_FIELDS else field


#: Columns every identity record carries besides the canonical fields.
RECORD_COLUMNS: tuple[str, ...] = ("source", "record_id", "record_ts")

#: Load metadata ingest adds to raw tables; sources may not use these names.
LOAD_COLUMNS: tuple[str, ...] = (
    "_source_file",
    "_file_sha256",
    "_row_number",
    "_loaded_at",
    "_run_id",
    "_content_hash",
)
#: Further columns of the quarantine (``raw.<source>__rejected``) tables.
QUARANTINE_COLUMNS: tuple[str, ...] = ("_line_number", "_reason", "_raw_line")
#: The raw (and quarantine) column holding a record key composed of several columns
#: (``record_key: [a, b]`` in sources.yml), built once at ingest; see ``ingest.registry``.
COMPOSED_KEY = "_record_key"
#: Every name ingest reserves in raw and quarantine tables.
METADATA_COLUMNS: tuple[str, ...] = (*LOAD_COLUMNS, *QUARANTINE_COLUMNS, COMPOSED_KEY)

#: Contact channels consent, suppression and segments are decided for.
CHANNELS: tuple[str, ...] = ("email", "sms", "phone", "post", "online_ads")
#: Channels whose opt-outs enter the suppression list (hashed identifiers never contacted
#: again); online-ads and postal opt-outs are consent only (an ads opt-out must not cost a
#: person the newsletter they asked for).
SUPPRESSION_CHANNELS: tuple[str, ...] = ("email", "sms", "phone")
#: The contact point a consent statement about a channel binds, first available wins:
#: a profile record's normalised ``email`` / ``phone``, or ``postal`` (its address as such).
CHANNEL_CONTACT_POINTS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "sms": ("phone",),
    "phone": ("phone",),
    "post": ("postal",),
    "online_ads": ("email", "phone"),
}

#: Longest run id kept in file and folder names.
MAX_RUN_ID_LENGTH = 120
_UNSAFE_IN_NAMES = re.compile(r"[^A-Za-z0-9_.-]")


def safe_run_id(run_id: str) -> str:
    """A run id usable as a file or folder name (Airflow run ids hold ``:`` and ``+``)."""
    return _UNSAFE_IN_NAMES.sub("_", run_id)[:MAX_RUN_ID_LENGTH]


def quote_identifier(identifier: str) -> str:
    """A SQL identifier in double quotes, embedded quotes doubled (DuckDB, Spark SQL ANSI)."""
    return '"' + identifier.replace('"', '""') + '"'


def dbt_vars() -> dict[str, object]:
    """The vocabulary as dbt vars: models and yml tests read ``var('channels')``."""
    return {"channels": list(CHANNELS), "canonical_fields": list(CANONICAL_FIELDS),
            "hashed_fields": list(HASHED_FIELDS),
            "suppression_channels": list(SUPPRESSION_CHANNELS),
            "channel_contact_points": {channel: list(points)
                                       for channel, points in CHANNEL_CONTACT_POINTS.items()}}


def identifier_hash(kind: str, value: str) -> str:
    """SHA-256 hex of a normalised identifier, as an erasure keeps it: the bare value for
    e-mail and phone (the suppression list's hash), ``kind:value`` for the others (a customer
    number may look like a loyalty card)."""
    text = value if kind in ("email", "phone") else f"{kind}:{value}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
