"""The profile document ``GET /profiles/{id}`` returns, as one SQL statement over the publication.

Golden record (its e-mail and phone as the customer gave them, the deliverable values), consent
rows (channel, contact point, status, contactable, decided at) and traits, rendered to JSON by
DuckDB: the serving store runs the statement over every
profile at publish time, the API over one profile when a publication has no store. One
definition, so both answer with the same bytes.
"""

from __future__ import annotations

import duckdb

from core.vocabulary import quote_identifier
from profiles.activation import hot_events
from profiles.activation.purposes import contact_values, deliverable_sql
from profiles.publishing.published import PUBLISHED, published_tables, require_tables

PROFILES = "main.dim_profiles"
CONSENT = "main.dim_profile_consent"
TRAITS = "main.dim_profile_traits"


def iso_sql(expression: str) -> str:
    """A TIMESTAMP as ISO 8601 text the way Python's ``isoformat`` writes it (``T`` between
    date and time, microseconds only when there are any): the API's format for every time."""
    return (f"CASE WHEN microsecond({expression}) % 1000000 = 0 "
            f"THEN strftime({expression}, '%Y-%m-%dT%H:%M:%S') "
            f"ELSE strftime({expression}, '%Y-%m-%dT%H:%M:%S.%f') END")


def _fields(con: duckdb.DuckDBPyConnection, table: str, alias: str,
            replace: dict[str, str] | None = None) -> str:
    """``name := value`` for every column of a published table, in table order, times as ISO
    text and ``replace``'s columns by its expressions."""
    schema, name = table.split(".")
    columns = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [PUBLISHED, schema, name]).fetchall()
    fields = []
    for column, data_type in columns:
        value = f"{alias}.{quote_identifier(column)}"
        if replace and column in replace:
            value = replace[column]
        elif data_type == "TIMESTAMP":
            value = iso_sql(value)
        fields.append(f"{quote_identifier(column)} := {value}")
    return ", ".join(fields)


def documents_sql(con: duckdb.DuckDBPyConnection, one: bool = False) -> str:
    """SELECT (profile_id, document) over the publication attached to ``con``, in profile-id
    order; ``one``: only the profile bound to the named parameter ``$profile_id``. A consent
    row an opt-out of the hot list withdraws (whatever ``con`` loaded; none at publish time)
    reads opted out and not contactable, as the chain treats it."""
    require_tables(con, {PROFILES, CONSENT}, "the profile document")
    hot_events.ensure_hot_events(con)
    values = contact_values(con)
    record = _fields(con, PROFILES, "p", {
        "email": deliverable_sql("p.email", "p.profile_id", values),
        "phone": deliverable_sql("p.phone", "p.profile_id", values)})
    hot = hot_events.opted_out_since_sql("c")
    consent = ", ".join(f"{c} := {value}" for c, value in {
        "channel": "c.channel", "contact_point": "c.contact_point",
        "status": f"CASE WHEN {hot} THEN 'opted_out' ELSE c.status END",
        "is_contactable": f"c.is_contactable AND NOT {hot}",
        "decided_at": iso_sql("c.decided_at")}.items())
    has_traits = TRAITS in published_tables(con)
    traits = (f"CASE WHEN t.profile_id IS NULL THEN NULL "
              f"ELSE struct_pack({_fields(con, TRAITS, 't')}) END" if has_traits else "NULL")
    traits_join = (f"LEFT JOIN {PUBLISHED}.{TRAITS} AS t ON t.profile_id = p.profile_id"
                   if has_traits else "")
    return f"""
        WITH consent AS (
            SELECT c.profile_id,
                   list(struct_pack({consent}) ORDER BY c.channel, c.contact_point) AS rows
            FROM {PUBLISHED}.{CONSENT} AS c
            {'WHERE c.profile_id = $profile_id' if one else ''}
            GROUP BY c.profile_id)
        SELECT p.profile_id,
               to_json(struct_pack({record},
                                   consent := coalesce(consent.rows, []),
                                   traits := {traits}))::VARCHAR AS document
        FROM {PUBLISHED}.{PROFILES} AS p
        LEFT JOIN consent ON consent.profile_id = p.profile_id
        {traits_join}
        {'WHERE p.profile_id = $profile_id' if one else ''}
        ORDER BY p.profile_id"""
