"""Support tickets classified as complaint, praise or request (profiles.traits.ticket_classifier).

A Python model because the classifier is Python (rules shared with the accuracy benchmark).
A run classifies only new or changed tickets and takes the rest from this model's previous
table (profiles.traits.ticket_classes); `cdp run --full-refresh` classifies every ticket.
Only ids and labels leave this model, never the free text.
"""

from identity.state import table_exists
from profiles.traits.ticket_classes import classify_tickets


def model(dbt, session):
    dbt.config(materialized="table")
    tickets = dbt.ref("stg_support__tickets")  # every source with the tickets role
    this = f"{dbt.this.schema}.{dbt.this.identifier}"
    previous = None
    if not dbt.config.get("full_refresh") and table_exists(session, this):
        previous = str(dbt.this)
    return classify_tickets(session, f"({tickets.sql_query()})", previous)
