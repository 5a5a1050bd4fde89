"""Support tickets classified as complaint, praise or request (profiles.traits.ticket_classifier).

A Python model because the classifier is Python (rules shared with the accuracy benchmark);
only ids and labels leave this model, never the free text.
"""

import pandas as pd

from profiles.traits.ticket_classifier import classify, language


def model(dbt, session):
    dbt.config(materialized="table")
    tickets = dbt.ref("stg_support__tickets").df()  # every source with the tickets role
    subjects, texts = tickets["subject"].fillna(""), tickets["text"].fillna("")  # NaN for empty
    return pd.DataFrame({
        "source": tickets["source"].astype(str),
        "record_id": tickets["record_id"].astype(str),
        "created_at": tickets["created_at"],
        "ticket_class": [classify(s, t) for s, t in zip(subjects, texts, strict=True)],
        "language": [language(t) for t in texts],
    })
