"""Ticket classes kept between runs (profiles.traits.ticket_classes): unchanged tickets keep
their class from the previous table, new or changed ones are classified, gone ones dropped,
and a changed classifier re-classifies everything."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from profiles.traits import ticket_classes
from profiles.traits.ticket_classes import VERSION_COLUMN, classify_tickets
from profiles.traits.ticket_classifier import classify

TICKETS = [
    ("shop", "T1", "Beschwerde", "Die Jacke kam kaputt an, ich will eine Rückerstattung."),
    ("shop", "T2", "Danke", "Super Beratung, vielen Dank!"),
    ("crm", "T3", "Frage", "Wann öffnet die Filiale am Samstag?"),
]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE tickets (source VARCHAR, record_id VARCHAR, created_at TIMESTAMP, "
                "subject VARCHAR, text VARCHAR)")
    con.executemany("INSERT INTO tickets VALUES (?, ?, TIMESTAMP '2026-11-01 10:00', ?, ?)",
                    TICKETS)
    return con


def _save(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    con.register("classified", frame)
    con.execute("CREATE OR REPLACE TABLE previous AS SELECT * FROM classified")
    con.unregister("classified")


def _classes(frame: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frame["record_id"], frame["ticket_class"], strict=True))


def test_first_run_classifies_every_ticket(con) -> None:
    first = classify_tickets(con, "tickets", None)
    assert _classes(first) == {r: classify(s, t) for _, r, s, t in TICKETS}
    assert _classes(first) == {"T1": "complaint", "T2": "praise", "T3": "request"}
    assert first[VERSION_COLUMN].notna().all()


def test_a_later_run_reuses_unchanged_tickets_only(con) -> None:
    _save(con, classify_tickets(con, "tickets", None))
    # a class only the previous table holds proves the row was taken over, not recomputed
    con.execute("UPDATE previous SET ticket_class = 'request' WHERE record_id IN ('T1', 'T2')")
    con.execute("UPDATE tickets SET text = 'Alles bestens, danke!' WHERE record_id = 'T2'")
    con.execute("DELETE FROM tickets WHERE record_id = 'T3'")
    con.execute("INSERT INTO tickets VALUES ('crm', 'T4', TIMESTAMP '2026-11-02 09:00', "
                "'Reklamation', 'Schon wieder falsch geliefert, sehr ärgerlich.')")
    later = classify_tickets(con, "tickets", "previous")
    assert _classes(later) == {"T1": "request",  # unchanged: kept as stored
                               "T2": "praise",  # changed text: classified again
                               "T4": "complaint"}  # new; T3 is gone
    assert sorted(later.columns) == sorted(ticket_classes.OUTPUT_COLUMNS)


def test_a_changed_classifier_classifies_every_ticket_again(con, monkeypatch) -> None:
    _save(con, classify_tickets(con, "tickets", None))
    con.execute("UPDATE previous SET ticket_class = 'request'")
    monkeypatch.setattr(ticket_classes, "classifier_fingerprint", lambda: "another-rule-set")
    again = classify_tickets(con, "tickets", "previous")
    assert _classes(again) == {"T1": "complaint", "T2": "praise", "T3": "request"}
