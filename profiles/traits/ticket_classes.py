"""Ticket classes kept between runs: a daily run classifies the tickets that are new or
changed, and takes every other ticket's class from its previous table.

Each row carries the version it was classified from (``_classified_version``: a hash of the
ticket's subject and text and of the classifier's code), so a previous row is reused only
for exactly that input under exactly that classifier; a changed rule re-classifies every
ticket.  Tickets no longer staged (erased, withdrawn) are not carried over.  Only ids, labels
and the version leave this module, never the free text.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import duckdb
import pandas as pd

from profiles.traits.ticket_classifier import classify, language

VERSION_COLUMN = "_classified_version"
OUTPUT_COLUMNS = ("source", "record_id", "created_at", "ticket_class", "language",
                  VERSION_COLUMN)


def classifier_fingerprint() -> str:
    """The classifier's code: a new rule is a new version of every ticket's class."""
    code = resources.files("profiles.traits").joinpath("ticket_classifier.py").read_bytes()
    return hashlib.sha256(code).hexdigest()[:16]


def classify_tickets(con: duckdb.DuckDBPyConnection, tickets: str,
                     previous: str | None) -> pd.DataFrame:
    """Every ticket of the relation ``tickets`` (``source, record_id, created_at, subject,
    text``) with its class and language; rows of ``previous`` (this model's last table, or
    None) whose version matches are reused, the rest classified here (only their text is
    read)."""
    version = (f"md5(coalesce(subject, '') || chr(31) || coalesce(text, '') || chr(31) || "
               f"'{classifier_fingerprint()}')")
    reuse, kept = "", "NULL"
    if previous is not None:
        reuse = (f"LEFT JOIN {previous} AS p ON p.source = t.source "
                 f"AND p.record_id = t.record_id AND p.{VERSION_COLUMN} = t.{VERSION_COLUMN}")
        kept = "p.ticket_class"
    rows = con.sql(
        f"SELECT t.source, t.record_id, t.created_at, {kept} AS ticket_class, "
        f"{'p.language' if previous is not None else 'NULL'} AS language, t.{VERSION_COLUMN}, "
        f"CASE WHEN {kept} IS NULL THEN t.subject END AS subject, "
        f"CASE WHEN {kept} IS NULL THEN t.text END AS text "
        f"FROM (SELECT *, {version} AS {VERSION_COLUMN} FROM {tickets}) AS t {reuse}").df()
    fresh = rows["ticket_class"].isna().to_numpy()
    classified = _classified(rows[fresh])
    return pd.concat([rows.loc[~fresh, list(OUTPUT_COLUMNS)], classified],
                     ignore_index=True)[list(OUTPUT_COLUMNS)]


def _classified(tickets: pd.DataFrame) -> pd.DataFrame:
    subjects, texts = tickets["subject"].fillna(""), tickets["text"].fillna("")  # NaN if empty
    return pd.DataFrame({
        "source": tickets["source"].astype(str).to_numpy(),
        "record_id": tickets["record_id"].astype(str).to_numpy(),
        "created_at": tickets["created_at"].to_numpy(),
        "ticket_class": [classify(s, t) for s, t in zip(subjects, texts, strict=True)],
        "language": [language(t) for t in texts],
        VERSION_COLUMN: tickets[VERSION_COLUMN].astype(str).to_numpy(),
    })
