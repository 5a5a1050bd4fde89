"""The hot list: opt-outs and offer contacts posted to the API that no publication holds yet.

``POST /events`` lands each batch as a new JSON-lines file under ``landing/api_events/``
(an ordinary registered source, ingested by the next run). Until a publication holds an
event - its id is a ``record_id`` of that source in ``fct_identity_graph`` - the suppression
chain reads it from these tables, which every caller of the chain (exports, previews, the API)
fills through :func:`load_hot_events`:

* ``OPT_OUTS`` (profile_id, channel, contact_point, decided_at): the contact point of the
  channel an opt-out binds, or ``*`` for the whole channel - the rule of the ``api_events``
  consent declaration in ``sources.yml``, so the batch later records what the list applied;
* ``SUPPRESSED`` (identifier_hash): SHA-256 of the e-mail / phone an opt-out of email, sms or
  phone binds, as the suppression log will list it (it then blocks every channel);
* ``RESPONSES`` (profile_id, offer_id, product_group, channel, response, responded_at):
  deliveries (frequency cap) and answers (cool-down), in ``fct_offer_responses``' vocabulary.

Opt-ins are not hot: consent is given by the batch, withdrawn at once. The person is matched
as ``/profiles/lookup`` matches: the profile id given, and every profile whose identity graph
holds the normalised e-mail or phone.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from core.vocabulary import CHANNEL_CONTACT_POINTS, CHANNELS, SUPPRESSION_CHANNELS
from identity.normalise import normalise_email_value, normalise_phone_value
from profiles.publishing.published import PUBLISHED

EVENTS_SOURCE = "api_events"
"""The registered source (``sources.yml``) whose landing folder ``POST /events`` writes."""
EVENT_TYPES = ("unsubscribe", "consent", "delivery", "response")
FIELDS = ("event_id", "event_type", "event_ts", "received_at", "channel", "consent",
          "consent_all_channels", "offer_id", "product_group", "outcome", "profile_id",
          "email", "phone")
"""Every key of a landed line, in this order (ingest requires the mapped columns in every file)."""
OPT_OUT, OPT_IN = "opt_out", "opt_in"

OPT_OUTS = "memory.main.hot_opt_outs"
SUPPRESSED = "memory.main.hot_suppressed_identifiers"
RESPONSES = "memory.main.hot_responses"
_LANDED = "memory.main.hot_events_landed"
_STATE = "memory.main.hot_events_state"
_LANDED_COLUMNS = ("event_id VARCHAR, event_type VARCHAR, event_at TIMESTAMP, channel VARCHAR, "
                   "opted_out BOOLEAN, offer_id VARCHAR, product_group VARCHAR, "
                   "response VARCHAR, profile_id VARCHAR, email VARCHAR, phone VARCHAR")


def landed_files(folder: Path) -> list[Path]:
    """The landed batches (``<UTC date>/<batch>.jsonl``), hidden temp files excluded."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob("*/*.jsonl")
                  if not any(part.startswith((".", "_"))
                             for part in path.relative_to(folder).parts))


def read_landed(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def signature(folder: Path | None) -> str:
    """Changes whenever a batch lands or a landed file is rewritten (an erasure): names,
    sizes and modification times of the landed files."""
    if folder is None:
        return ""
    digest = hashlib.sha256()
    for path in landed_files(folder):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                      .encode())
    return digest.hexdigest()


def opted_out_since_sql(consent: str) -> str:
    """SQL true where a hot opt-out withdraws the consent row aliased ``consent`` (profile,
    channel, contact point or the whole channel, newer than the published decision): the one
    rule the chain's consent step and the profile document both apply."""
    return f"""EXISTS (
        SELECT 1 FROM {OPT_OUTS} AS h
        WHERE h.profile_id = {consent}.profile_id AND h.channel = {consent}.channel
          AND h.contact_point IN ({consent}.contact_point, '*')
          AND ({consent}.decided_at IS NULL OR h.decided_at >= {consent}.decided_at))"""


SEQUENCE = ".sequence"
"""A counter beside the batches, raised (under the landing lock) after each batch is renamed
into place: what tells another process that the hot list changed."""


def raise_sequence(folder: Path) -> None:
    """Call with the landing lock held, after a batch is in place."""
    current = folder / SEQUENCE
    count = int(current.read_text() or 0) if current.exists() else 0
    partial = folder / f"{SEQUENCE}.tmp"
    partial.write_text(str(count + 1))
    os.replace(partial, current)


def quick_stamp(folder: Path | None) -> str:
    """Changes whenever a batch lands, for one small read: the counter :func:`raise_sequence`
    keeps (a directory's modification time would not do: two changes within one tick of a
    coarse file-system clock look like one). An old batch rewritten by an erasure does not
    raise it, which only keeps people named who no longer are - their answers then take the
    slower, exact way until the next publication."""
    try:
        return (folder / SEQUENCE).read_text() if folder is not None else ""
    except FileNotFoundError:
        return ""


def pending_profiles(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The profiles the loaded hot list names (an opt-out, a delivery, a response)."""
    rows = con.execute(f"SELECT profile_id FROM {OPT_OUTS} UNION "
                       f"SELECT profile_id FROM {RESPONSES}").fetchall()
    return frozenset(str(row[0]) for row in rows)


def load_hot_events(con: duckdb.DuckDBPyConnection, folder: Path | None) -> None:
    """Fill the hot-list tables from ``folder`` (``None``: no events, empty tables), skipping
    the work when nothing landed since the last call on this connection."""
    stamp = signature(folder)
    if _current_stamp(con) == stamp:
        return
    con.execute(f"CREATE OR REPLACE TABLE {_LANDED} ({_LANDED_COLUMNS})")
    rows = [row for path in (landed_files(folder) if folder else [])
            for event in read_landed(path) for row in _landed_rows(event)]
    if rows:
        marks = ", ".join("?" for _ in _LANDED_COLUMNS.split(","))
        con.executemany(f"INSERT INTO {_LANDED} VALUES ({marks})", rows)
    _derive(con)
    con.execute(f"CREATE OR REPLACE TABLE {_STATE} AS SELECT ? AS stamp", [stamp])


def ensure_hot_events(con: duckdb.DuckDBPyConnection) -> None:
    """Empty hot-list tables unless a caller loaded them (a chain run without an events
    folder: a hand-made publication, a test)."""
    if _current_stamp(con) is None:
        load_hot_events(con, None)


def _current_stamp(con: duckdb.DuckDBPyConnection) -> str | None:
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'memory' "
                         "AND table_name = 'hot_events_state'").fetchone()
    if not exists or not exists[0]:
        return None
    row = con.execute(f"SELECT stamp FROM {_STATE}").fetchone()
    return str(row[0]) if row else None


def _landed_rows(event: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """One row per channel the event speaks for (every channel for ``all``), identifiers
    normalised as the identity stage normalises them."""
    email = normalise_email_value(event["email"]) if event.get("email") else None
    phone = normalise_phone_value(event["phone"]) if event.get("phone") else None
    consent = event.get("consent") or event.get("consent_all_channels")
    channels = CHANNELS if event.get("consent_all_channels") else (event.get("channel"),)
    at = datetime.fromisoformat(event["event_ts"]).replace(tzinfo=None)
    for channel in channels:
        yield (event["event_id"], event["event_type"], at, channel,
               None if consent is None else consent == OPT_OUT, event.get("offer_id"),
               event.get("product_group"), event.get("outcome"), event.get("profile_id"),
               email, phone)


def _derive(con: duckdb.DuckDBPyConnection) -> None:
    """Hot events not yet in the publication, each attached to the profiles it names."""
    pub = f"{PUBLISHED}.main"
    points = " ".join(
        f"WHEN '{channel}' THEN coalesce("
        + ", ".join("'postal'" if point == "postal" else f"e.{point}" for point in points)
        + ", '*')"
        for channel, points in CHANNEL_CONTACT_POINTS.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE hot_events_people AS
        WITH pending AS (
            SELECT * FROM {_LANDED} AS e
            WHERE NOT EXISTS (SELECT 1 FROM {pub}.fct_identity_graph AS g
                              WHERE g.source = ? AND g.record_id = e.event_id)),
        people AS (
            SELECT e.event_id, p.profile_id AS person
            FROM pending AS e JOIN {pub}.dim_profiles AS p ON p.profile_id = e.profile_id
            UNION SELECT e.event_id, g.profile_id
            FROM pending AS e JOIN {pub}.fct_identity_graph AS g ON g.email = e.email
            UNION SELECT e.event_id, g.profile_id
            FROM pending AS e JOIN {pub}.fct_identity_graph AS g ON g.phone = e.phone)
        SELECT DISTINCT e.*, CASE e.channel {points} END AS contact_point, x.person
        FROM pending AS e JOIN people AS x USING (event_id)""", [EVENTS_SOURCE])
    con.execute(f"""
        CREATE OR REPLACE TABLE {OPT_OUTS} AS
        SELECT DISTINCT person AS profile_id, channel, contact_point, event_at AS decided_at
        FROM hot_events_people WHERE opted_out""")
    suppression_channels = ", ".join(f"'{c}'" for c in SUPPRESSION_CHANNELS)
    con.execute(f"""
        CREATE OR REPLACE TABLE {SUPPRESSED} AS
        SELECT DISTINCT sha256(contact_point) AS identifier_hash FROM hot_events_people
        WHERE opted_out AND channel IN ({suppression_channels})
          AND contact_point NOT IN ('*', 'postal')""")
    con.execute(f"""
        CREATE OR REPLACE TABLE {RESPONSES} AS
        SELECT DISTINCT person AS profile_id, offer_id, product_group, channel, response,
               event_at AS responded_at, event_id
        FROM hot_events_people WHERE response IS NOT NULL AND offer_id IS NOT NULL""")
    con.execute("DROP TABLE hot_events_people")

