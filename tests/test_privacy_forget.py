"""Forget a person on a real pipeline run (1,000 generated people), end to end.

The person forgotten is the bridge between two other customers who share her first name: she
called the service desk quoting A's customer number (a relative calling on A's behalf), and
logged in to the shop with B's account, each time giving her own e-mail. Customer number and
shop login are identifiers the company issued (hard links); her e-mail ties her two records
together (B's account holds no birth date, so nothing contradicts it). The build merges A,
her and B into one profile. ``cdp privacy forget email:…`` (the CLI, in a subprocess) must then:

* leave no byte of her e-mail, phone or full name in any file of the data directory
  (landing, warehouse files and archives, exports, reports, Airflow files);
* keep her hashed e-mail on the suppression list;
* split A and B apart again, the split in the profile-id history, other profiles untouched;
* make the next export list the merged profile's blanked row as left;
* and not come back when her delivery is replayed: the same bytes are skipped, a re-export
  holding her row is loaded with her row quarantined as ``erased``, and that run publishes
  normally.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cdp.settings import data_paths
from core.paths import DataPaths

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PHONE = "0171 5550123"
PHONE_E164 = "+491715550123"
LAST = "Brückner"
TICKETS = "support_tickets/service_desk_calls.csv"
WEB_EVENTS = "web_events/events_202610.jsonl"
TICKET_HEADER = ["ticket_id", "created_at", "channel", "customer_number", "first_name",
                 "last_name", "email", "phone", "subject", "text", "offer_id", "offer_outcome",
                 "do_not_contact"]


def _query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _bridged_customers(paths: DataPaths) -> dict[str, str]:
    """A: a newsletter member known only to the CRM; B: one known only to the shop, with no
    birth date and A's first name."""
    rows = _query(paths.build_db, """
        WITH profiles AS (
            SELECT profile_id,
                   count(*) FILTER (WHERE source = 'crm_customers') AS crm,
                   count(*) FILTER (WHERE source = 'shop_accounts') AS shop,
                   count(customer_number) AS numbers
            FROM main.fct_identity_graph GROUP BY 1),
        candidates AS (
            SELECT g.source, g.record_id, g.customer_number, g.user_id, n.first_name,
                   n.birth_date
            FROM main.fct_identity_graph g JOIN profiles p USING (profile_id)
            JOIN segments.seg_email_newsletter USING (profile_id)
            JOIN intermediate.int_identity__normalised n USING (source, record_id)
            WHERE n.first_name IS NOT NULL AND (
                (g.source = 'crm_customers' AND p.crm = 1 AND p.shop = 0)
                OR (g.source = 'shop_accounts' AND p.shop = 1 AND p.numbers = 0
                    AND n.birth_date IS NULL)))
        SELECT a.customer_number, a.record_id, b.user_id, b.record_id, a.first_name
        FROM candidates a JOIN candidates b USING (first_name)
        WHERE a.source = 'crm_customers' AND b.source = 'shop_accounts'
        ORDER BY a.record_id, b.record_id LIMIT 1""")
    assert rows, "the demo holds no such pair"
    number, a_record, user_id, b_record, first = (str(v) for v in rows[0])
    first = first.title()
    return {"number": number, "a_record": a_record, "user_id": user_id, "b_record": b_record,
            "first": first, "email": f"{first}.Brueckner@Example.org"}


def _tickets(person: dict[str, str], extra: list[list[str]] | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TICKET_HEADER)
    writer.writerow(["TCK-BRIDGE-1", "2026-10-21T10:00:00", "phone", person["number"],
                     person["first"], LAST, person["email"], PHONE, "Rückruf",
                     f"Bitte rufen Sie {person['first']} {LAST} zurück.", "", "", "false"])
    writer.writerows(extra or [])
    return buffer.getvalue()


def _login(person: dict[str, str]) -> str:
    return json.dumps({"event_id": "BRIDGE-WEB-1", "event_ts": "2026-10-25T10:00:00",
                       "anonymous_id": "0b1d6e0e-5a3c-4d55-9d7e-000000b1d6e0",
                       "user_id": person["user_id"], "event_type": "login",
                       "email": person["email"].lower(), "product_group": None,
                       "offer_id": None, "page": "/account/login"}) + "\n"


def _profile_of(db: Path, source: str, record_id: str) -> str:
    rows = _query(db, "SELECT profile_id FROM main.fct_identity_graph "
                      "WHERE source = ? AND record_id = ?", [source, record_id])
    assert rows, (source, record_id)
    return str(rows[0][0])


def _needles(person: dict[str, str]) -> list[bytes]:
    email = person["email"]
    texts = {email, email.lower(), PHONE, PHONE_E164, f"{person['first']} {LAST}"}
    found = set()
    for text in texts:
        for form in (text, json.dumps(text)[1:-1]):
            found.add(form.encode("utf-8"))
    return sorted(found)


def _files_holding(home: Path, person: dict[str, str]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in sorted(home.rglob("*")):
        if path.is_file():
            content = path.read_bytes()
            found = [n.decode() for n in _needles(person) if n in content]
            if found:
                hits[str(path.relative_to(home))] = found
    return hits


@pytest.fixture(scope="module")
def scenario(demo_run, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo run copied, her two records landed (a ticket; her login appended to the
    month's web-event export, re-delivered) and built, then she is forgotten."""
    from cdp.run import run_pipeline

    source_paths, _ = demo_run
    home = tmp_path_factory.mktemp("privacy") / "home"
    shutil.copytree(source_paths.home, home, ignore=shutil.ignore_patterns("airflow"))
    paths = data_paths(home)
    person = _bridged_customers(paths)
    (paths.landing / TICKETS).write_text(_tickets(person), encoding="utf-8")
    with (paths.landing / WEB_EVENTS).open("a", encoding="utf-8") as events:
        events.write(_login(person))
    bridged = run_pipeline(paths)
    assert bridged.succeeded, bridged.state
    db = paths.published_db
    merged = _profile_of(db, "crm_customers", person["a_record"])
    before = {
        "merged": merged,
        "bridged_together": {merged} == {
            _profile_of(db, "shop_accounts", person["b_record"]),
            _profile_of(db, "support_tickets", "TCK-BRIDGE-1"),
            _profile_of(db, "web_events", "BRIDGE-WEB-1")},
        "graph": dict(_query(db, "SELECT source || '/' || record_id, profile_id "
                                 "FROM main.fct_identity_graph")),
        "files_holding": _files_holding(home, person),
        "exports_with_merged": [
            p.parent.name for p in paths.exports.glob("email_newsletter/*/members.parquet")
            if _query(db, f"SELECT count(*) FROM read_parquet('{p}') WHERE profile_id = ?",
                      [merged])[0][0]],
    }
    replay = (paths.landing / TICKETS).read_bytes()
    cdp = Path(sys.executable).parent / "cdp"
    result = subprocess.run(
        [str(cdp), "privacy", "forget", f"email:{person['email'].upper()}", "--home",
         str(home)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_COLOR": "1"})
    return {"paths": paths, "person": person, "before": before, "result": result,
            "replay": replay}


def test_the_bridge_was_one_profile_before(scenario: dict[str, Any]) -> None:
    before = scenario["before"]
    assert before["bridged_together"], "A, Pia and B should have been one profile"
    holding = before["files_holding"]
    assert any(name.startswith("landing/") for name in holding), holding
    assert any(name.startswith("warehouse/") for name in holding), holding


def test_forget_names_what_it_did_and_no_value(scenario: dict[str, Any]) -> None:
    result = scenario["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "2 records in 1 profile(s) forgotten" in output, output
    assert "email_newsletter" in output
    for needle in _needles(scenario["person"]):
        assert needle.decode() not in output


def test_no_byte_of_them_is_left_in_any_file(scenario: dict[str, Any]) -> None:
    paths: DataPaths = scenario["paths"]
    person = scenario["person"]
    assert _files_holding(paths.home, person) == {}
    # the Airflow home of these in-process runs (metadata DB with XComs, task logs) is the
    # test session's, outside the data directory: it holds nothing of them either
    assert _files_holding(Path(os.environ["AIRFLOW_HOME"]), person) == {}
    assert not (paths.home / "privacy" / "pending").exists() or not any(
        (paths.home / "privacy" / "pending").iterdir())
    # and by SQL (DuckDB compresses strings, so bytes alone prove little)
    for db in [paths.build_db, paths.published_db]:
        for schema, table in _query(db, "SELECT schema_name, table_name FROM duckdb_tables()"):
            columns = [c for (c,) in _query(db, "SELECT column_name FROM duckdb_columns() "
                                                "WHERE schema_name = ? AND table_name = ? "
                                                "AND data_type = 'VARCHAR'", [schema, table])]
            for column in columns:
                hits = _query(db, f'SELECT count(*) FROM "{schema}"."{table}" WHERE '
                                  f'lower("{column}") IN (?, ?) OR "{column}" IN (?, ?)',
                              [person["email"].lower(), f"{person['first']} {LAST}".lower(),
                               PHONE, PHONE_E164])
                assert hits[0][0] == 0, (db.name, schema, table, column)


def test_their_hashed_email_stays_suppressed(scenario: dict[str, Any]) -> None:
    paths: DataPaths = scenario["paths"]
    email = scenario["person"]["email"].lower()
    digest = hashlib.sha256(email.encode()).hexdigest()
    listed = _query(paths.published_db, "SELECT reason FROM main.dim_suppression_list "
                                        "WHERE identifier_hash = ?", [digest])
    assert listed == [("erased",)]
    kept = _query(paths.build_db, "SELECT identifier_type FROM raw._erased_identifiers "
                                  "WHERE identifier_hash = ?", [digest])
    assert kept == [("email",)]
    log = _query(paths.build_db, "SELECT status, removed FROM raw._erasure_requests")
    assert log and log[0][0] == "completed"
    assert email not in str(log)


def test_the_bridged_profile_splits_and_others_keep_their_ids(
        scenario: dict[str, Any]) -> None:
    paths: DataPaths = scenario["paths"]
    db = paths.published_db
    before = scenario["before"]
    person = scenario["person"]
    a_profile = _profile_of(db, "crm_customers", person["a_record"])
    b_profile = _profile_of(db, "shop_accounts", person["b_record"])
    assert a_profile != b_profile
    assert before["merged"] in {a_profile, b_profile}  # one side keeps the merged id
    splits = _query(db, "SELECT new_id FROM main.fct_profile_id_history "
                        "WHERE change = 'split' AND old_id = ?", [before["merged"]])
    assert {a_profile, b_profile} - {before["merged"]} <= {str(s) for (s,) in splits}, splits
    after = dict(_query(db, "SELECT source || '/' || record_id, profile_id "
                            "FROM main.fct_identity_graph"))
    assert not [k for k in after if "BRIDGE" in k]
    moved = [k for k, p in after.items()
             if before["graph"].get(k) not in (None, p) and before["graph"][k] != before["merged"]]
    assert moved == []  # nobody outside the bridged profile changed id


def test_the_next_export_lists_the_erased_row_as_left(scenario: dict[str, Any]) -> None:
    from profiles.activation.export import export_all

    paths: DataPaths = scenario["paths"]
    before = scenario["before"]
    assert before["exports_with_merged"], "the merged profile was in the newsletter export"
    from cdp.context import RunContext

    ctx = RunContext.at_edge(paths.home, None, run_id="after_erasure")
    from cdp.pipeline import publication_clock

    exports, _ = export_all(paths.published_db, paths.exports, "after_erasure",
                            ctx.activation, thresholds=ctx.thresholds,
                            as_of=publication_clock(paths))
    newsletter = next(e for e in exports if e.manifest.segment == "email_newsletter")
    with (newsletter.directory / "left.csv").open(newline="", encoding="utf-8") as handle:
        left = {row["profile_id"]: row for row in csv.DictReader(handle)}
    assert before["merged"] in left
    assert not left[before["merged"]]["email"]  # nothing but the id is left to send


def test_a_replayed_delivery_does_not_bring_them_back(scenario: dict[str, Any]) -> None:
    from cdp.run import run_pipeline

    paths: DataPaths = scenario["paths"]
    person = scenario["person"]
    folder = paths.landing / "support_tickets"
    (folder / "service_desk_calls_again.csv").write_bytes(scenario["replay"])  # same bytes
    other = ["TCK-LATER-1", "2026-10-28T09:00:00", "chat", "", "Otto", "Normal",
             "otto.normal@example.org", "", "Frage", "Wann kommt meine Bestellung?", "", "",
             "false"]
    (folder / "service_desk_calls_reexport.csv").write_text(_tickets(person, [other]),
                                                           encoding="utf-8")
    summary = run_pipeline(paths)
    assert summary.succeeded, summary.state
    ledger = dict(_query(paths.build_db, "SELECT file_name, status FROM raw._load_ledger "
                                         "WHERE source = 'support_tickets'"))
    assert "service_desk_calls_again.csv" not in ledger  # the old bytes: seen, not loaded
    assert ledger["service_desk_calls_reexport.csv"] == "loaded"
    quarantined = _query(paths.build_db, "SELECT _raw_line, ticket_id FROM "
                                         "raw.support_tickets__rejected WHERE _reason = 'erased'")
    assert quarantined == [(None, None)]
    db = paths.published_db
    assert _profile_of(db, "support_tickets", "TCK-LATER-1")
    assert _profile_of(db, "crm_customers", person["a_record"]) != _profile_of(
        db, "shop_accounts", person["b_record"])
    assert not _query(db, "SELECT * FROM main.fct_identity_graph "
                          "WHERE record_id LIKE '%BRIDGE%'")
