"""Profile marts on hand-made landing files: consent, suppression, survivorship, traits, offers.

Two real builds (ingest + dbt build, Splink inside) share one module fixture. Phase 1 loads a
small cast of people, each built for one rule. Phase 2 continues on a copy of that warehouse:
it erases Anna's unsubscribe from raw (as an erasure would), re-imports an old CRM row with
her opt-in, and corrects a CRM row whose wrong email had merged two people (a split).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from small_builds import ingest_and_build, read_build, write_landing_csv

from cdp.context import RunContext
from cdp.dbt import run_dbt
from cdp.demo.sources import COLUMNS  # the landing files' column contract
from cdp.settings import data_paths
from core.paths import DataPaths

pytestmark = pytest.mark.integration  # two ingest + dbt builds in the module fixtures

AS_OF = datetime(2026, 11, 1)  # the newest record of the data set (a web page view)



def _crm(row_id: str, number: str, first: str, last: str, email: str, updated: str, *,
         phone: str = "", street: str = "Lindenweg", house: str = "1", postcode: str = "10115",
         city: str = "Berlin", card: str = "", email_opt: str = "", phone_opt: str = "",
         born: str = "") -> tuple[str, ...]:
    return (row_id, number, "", first, last, born, email, phone, street, house, postcode, city,
            "DE", card, email_opt, "", phone_opt, updated)


CRM = [
    # Anna: CRM opt-in, later unsubscribed at the ESP (same address, other spelling).
    _crm("C-A1", "K100", "Anna", "Schmidt", "anna.schmidt@example.com", "01.03.2026 10:00",
         email_opt="ja"),
    # Erik's row carries Emil's address by mistake: it merges the two until corrected.
    _crm("C-E1", "K500", "Emil", "Braun", "emil.braun@example.com", "01.02.2026 09:00",
         phone="0170 5550001", street="Birkenweg", house="7", email_opt="nein", phone_opt="ja"),
    # Felix: the CRM is the trusted source of his name; the shop knows his new address.
    _crm("C-F1", "K600", "Felix", "Neumann", "felix.neumann@example.com", "01.01.2026 08:00",
         street="Hauptstraße", house="1", postcode="10115", born="01.02.1980"),
    # Greta, Hans, Ida, Jonas: loyalty-card customers for RFM and churn risk.
    _crm("C-G1", "K700", "Greta", "Vogel", "greta.vogel@example.com", "01.01.2026 08:00",
         card="L700", street="Ahornweg", house="3"),
    _crm("C-H1", "K800", "Hans", "Fischer", "hans.fischer@example.com", "01.01.2026 08:00",
         card="L800", street="Eichenweg", house="4", email_opt="ja", phone="030 5550008",
         phone_opt="ja"),
    _crm("C-I1", "K900", "Ida", "Wolf", "ida.wolf@example.com", "01.01.2026 08:00",
         card="L900", street="Buchenweg", house="5"),
    _crm("C-J1", "K1000", "Jonas", "Koch", "jonas.koch@example.com", "01.01.2026 08:00",
         card="L1000", street="Erlenweg", house="6"),
]
SHOP = [
    ("S-B", "2026-02-01T10:00:00", "2026-02-01T10:00:00", "ben.weber@example.com", "Ben",
     "Weber", "", "", "", "", "", "", "DE", "true"),
    ("S-C", "2026-02-01T10:00:00", "2026-02-01T10:00:00", "clara.roth@example.com", "Clara",
     "Roth", "", "", "", "", "", "", "DE", "true"),
    ("S-D", "2026-01-10T10:00:00", "2026-01-10T10:00:00", "dora.lang@example.com", "Dora",
     "Lang", "", "", "", "", "", "", "DE", "true"),
    ("S-E", "2026-01-05T10:00:00", "2026-01-05T10:00:00", "emil.braun@example.com", "Emil",
     "Braun", "", "", "", "", "", "", "DE", "true"),
    # Newer than the CRM row, but the shop is less trusted for names: only the address wins.
    ("S-F", "2026-06-01T10:00:00", "2026-06-01T10:00:00", "felix.neumann@example.com", "Felix",
     "Neumannn", "1980-02-01", "+49 171 5550002", "Gartenweg", "5", "20095", "Hamburg", "DE",
     "false"),
]
EMAIL = [
    ("E-A1", "2026-05-01T12:00:00", "Anna.Schmidt@Example.com", "unsubscribe", "CMP-1", "OF-001",
     "fashion"),
    ("E-B1", "2026-03-01T12:00:00", "ben.weber@example.com", "unsubscribe", "CMP-1", "OF-001",
     "fashion"),
    ("E-C1", "2026-03-01T12:00:00", "clara.roth@example.com", "unsubscribe", "CMP-1", "OF-001",
     "fashion"),
    ("E-D1", "2026-02-01T12:00:00", "dora.lang@example.com", "complaint", "CMP-1", "OF-001",
     "fashion"),
    ("E-G1", "2026-09-01T08:00:00", "greta.vogel@example.com", "sent", "CMP-2", "OF-002", "home"),
    ("E-G2", "2026-09-01T08:01:00", "greta.vogel@example.com", "delivered", "CMP-2", "OF-002",
     "home"),
    ("E-G3", "2026-09-01T09:00:00", "greta.vogel@example.com", "open", "CMP-2", "OF-002", "home"),
    ("E-G4", "2026-09-01T09:01:00", "greta.vogel@example.com", "click", "CMP-2", "OF-002",
     "home"),
    # Declined on the phone on 1 October, mailed again the next day.
    ("E-G5", "2026-10-02T08:00:00", "greta.vogel@example.com", "sent", "CMP-3", "OF-002", "home"),
    ("E-J1", "2026-10-05T08:00:00", "jonas.koch@example.com", "complaint", "CMP-3", "OF-002",
     "home"),
]
POS = [
    ("O-G1", "2026-06-01T10:00:00", "S001", "L700", "10.00", "fashion", ""),
    ("O-G2", "2026-09-01T10:00:00", "S001", "L700", "20.00", "fashion", ""),
    ("O-G3", "2026-10-22T10:00:00", "S001", "L700", "30.00", "baby", "OF-007"),
    ("O-H1", "2026-03-01T10:00:00", "S002", "L800", "50.00", "home", ""),
    ("O-I1", "2026-08-01T10:00:00", "S003", "L900", "40.00", "garden", ""),
    ("O-J1", "2026-10-22T10:00:00", "S004", "L1000", "30.00", "sports", ""),
]
TICKETS = [
    ("T-G1", "2026-10-01T11:00:00", "phone", "K700", "Greta", "Vogel", "", "", "Anfrage",
     "Anruf: Wie lange ist der Gutschein noch gültig? Angebot OF-002 angeboten, kein Interesse.",
     "OF-002", "declined", "false"),
    ("T-H1", "2026-04-01T11:00:00", "email", "K800", "Hans", "Fischer",
     "hans.fischer@example.com", "", "Beschwerde",
     "Das Paket kam beschädigt an und die Hälfte fehlte. Bitte rufen Sie mich nicht mehr an.",
     "", "", "true"),
    ("T-J1", "2026-10-10T11:00:00", "email", "K1000", "Jonas", "Koch", "", "", "Complaint",
     "I was charged twice for the same order, please refund it immediately.", "", "", "false"),
]
CONSENT = [
    ("CH-B1", "2026-06-01T12:00:00", "", "ben.weber@example.com", "", "email", "opt_in",
     "preference_centre", "1", "month", "baby|garden"),
    ("CH-C1", "2026-04-01T12:00:00", "", "clara.roth@example.com", "", "email", "opt_in",
     "web_form", "", "", ""),
]
WEB = [
    {"event_id": "W-F1", "event_ts": "2026-07-01T10:00:00", "anonymous_id": "cookie-f",
     "user_id": "S-F", "event_type": "login", "email": None, "product_group": None,
     "offer_id": None, "page": "/login"},
    {"event_id": "W-F2", "event_ts": "2026-07-01T10:01:00", "anonymous_id": "cookie-f",
     "user_id": None, "event_type": "offer_view", "email": None, "product_group": "sports",
     "offer_id": "OF-003", "page": "/offers/OF-003"},
    {"event_id": "W-F3", "event_ts": "2026-07-01T10:02:00", "anonymous_id": "cookie-f",
     "user_id": None, "event_type": "offer_dismiss", "email": None, "product_group": "sports",
     "offer_id": "OF-003", "page": "/offers/OF-003"},
    {"event_id": "W-Z1", "event_ts": AS_OF.isoformat(), "anonymous_id": "cookie-z",
     "user_id": None, "event_type": "page_view", "email": None, "product_group": None,
     "offer_id": None, "page": "/"},
]
LATE_CRM = [
    # An old CRM export re-imported after Anna unsubscribed (and her ESP data was erased).
    _crm("C-A2", "K100", "Anna", "Schmidt", "anna.schmidt@example.com", "15.04.2026 10:00",
         email_opt="ja"),
    # Erik's row corrected: his own name and address; the wrong merge with Emil splits.
    _crm("C-E1", "K500", "Erik", "Braun", "erik.braun@example.com", "01.02.2026 09:00",
         phone="0170 5550001", street="Birkenweg", house="7", email_opt="nein", phone_opt="ja"),
]


def _write_landing(paths: DataPaths) -> None:
    land = paths.source_landing
    write_landing_csv(land("crm_customers") / "crm_1.csv", COLUMNS["crm_customers"], CRM, ";")
    for source, rows in (("shop_accounts", SHOP), ("email_events", EMAIL), ("pos_orders", POS),
                         ("support_tickets", TICKETS), ("consent_log", CONSENT)):
        write_landing_csv(land(source) / f"{source}_1.csv", COLUMNS[source], rows)
    web = land("web_events") / "events_1.jsonl"
    web.parent.mkdir(parents=True, exist_ok=True)
    web.write_text("".join(json.dumps(event) + "\n" for event in WEB), encoding="utf-8")


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, DataPaths]:
    """(phase 1, phase 2) data directories, each with a built warehouse."""
    first = data_paths(tmp_path_factory.mktemp("profiles-1")).ensure()
    _write_landing(first)
    ingest_and_build(first, "phase-1", AS_OF)
    second = data_paths(tmp_path_factory.mktemp("profiles-2") / "home")
    shutil.copytree(first.home, second.home)
    with duckdb.connect(str(second.build_db)) as con:  # erasure of Anna's ESP data
        con.execute("DELETE FROM raw.email_events WHERE event_id = 'E-A1'")
    write_landing_csv(second.source_landing("crm_customers") / "crm_2.csv",
                      COLUMNS["crm_customers"], LATE_CRM, ";")
    ingest_and_build(second, "phase-2", AS_OF)
    return first, second


@pytest.fixture(scope="module")
def phase1(builds: tuple[DataPaths, DataPaths]) -> Iterator[duckdb.DuckDBPyConnection]:
    yield from read_build(builds[0])


@pytest.fixture(scope="module")
def phase2(builds: tuple[DataPaths, DataPaths]) -> Iterator[duckdb.DuckDBPyConnection]:
    yield from read_build(builds[1])


def profile_of(con: duckdb.DuckDBPyConnection, source: str, record_id: str) -> str:
    row = con.execute("SELECT profile_id FROM main.fct_identity_graph "
                      "WHERE source = ? AND record_id = ?", [source, record_id]).fetchone()
    assert row is not None, f"{source}:{record_id} not in the identity graph"
    return str(row[0])


def consent(con: duckdb.DuckDBPyConnection, source: str, record_id: str, channel: str
            ) -> dict[str, tuple[str, bool, str | None]]:
    """contact point -> (status, is_contactable, decided_by_source) of one record's profile."""
    rows = con.execute(
        "SELECT contact_point, status, is_contactable, decided_by_source "
        "FROM main.dim_profile_consent WHERE profile_id = ? AND channel = ?",
        [profile_of(con, source, record_id), channel]).fetchall()
    return {point: (status, contactable, by) for point, status, contactable, by in rows}


def suppressed(con: duckdb.DuckDBPyConnection, identifier: str) -> list[tuple[str, str]]:
    """(reason, source) of an identifier's active suppression, looked up by its hash."""
    return con.execute("SELECT reason, source FROM main.dim_suppression_list "
                       "WHERE identifier_hash = sha256(?)", [identifier]).fetchall()


def row(con: duckdb.DuckDBPyConnection, table: str, source: str, record_id: str
        ) -> dict[str, object]:
    cursor = con.execute(f"SELECT * FROM main.{table} WHERE profile_id = ?",
                         [profile_of(con, source, record_id)])
    names = [d[0] for d in cursor.description]
    found = cursor.fetchall()
    assert len(found) == 1
    return dict(zip(names, found[0], strict=True))


# ---------------------------------------------------------------------------------- consent


def test_merged_records_unsubscribe_wins_over_older_opt_in(phase1) -> None:
    assert profile_of(phase1, "crm_customers", "C-A1") == profile_of(
        phase1, "email_events", "E-A1")
    assert consent(phase1, "crm_customers", "C-A1", "email") == {
        "anna.schmidt@example.com": ("opted_out", False, "email_events")}


def test_erased_unsubscribe_and_reimported_old_opt_in_stay_suppressed(phase2) -> None:
    points = consent(phase2, "crm_customers", "C-A2", "email")
    status, contactable, _ = points["anna.schmidt@example.com"]
    assert status == "opted_in"  # the unsubscribe record is gone from the sources ...
    assert contactable is False  # ... but its hashed suppression outlives it
    assert suppressed(phase2, "anna.schmidt@example.com") == [("unsubscribe", "email_events")]
    log = phase2.execute("SELECT record_id FROM intermediate.int_consent__suppression_log "
                         "WHERE identifier_hash = sha256('anna.schmidt@example.com')").fetchall()
    assert log == [("E-A1",)]


def test_newer_preference_centre_opt_in_lifts_suppression(phase1) -> None:
    assert consent(phase1, "shop_accounts", "S-B", "email") == {
        "ben.weber@example.com": ("opted_in", True, "consent_log")}
    assert suppressed(phase1, "ben.weber@example.com") == []


def test_newer_opt_in_outside_preference_centre_does_not_lift(phase1) -> None:
    assert consent(phase1, "shop_accounts", "S-C", "email") == {
        "clara.roth@example.com": ("opted_in", False, "consent_log")}
    assert suppressed(phase1, "clara.roth@example.com") == [("unsubscribe", "email_events")]


def test_spam_complaint_is_an_opt_out(phase1) -> None:
    assert consent(phase1, "shop_accounts", "S-D", "email") == {
        "dora.lang@example.com": ("opted_out", False, "email_events")}
    assert suppressed(phase1, "dora.lang@example.com") == [("complaint", "email_events")]


def test_no_recorded_opt_in_is_not_contactable(phase1) -> None:
    assert consent(phase1, "crm_customers", "C-I1", "email") == {
        "ida.wolf@example.com": ("unknown", False, None)}


def test_do_not_contact_opts_out_every_channel(phase1) -> None:
    for channel in ("email", "phone", "sms"):
        points = consent(phase1, "crm_customers", "C-H1", channel)
        assert points and all(not contactable and status == "opted_out"
                              for status, contactable, _ in points.values()), channel


def test_split_hands_each_part_only_its_own_consent(phase1, phase2) -> None:
    assert profile_of(phase1, "shop_accounts", "S-E") == profile_of(
        phase1, "crm_customers", "C-E1")
    merged = consent(phase1, "shop_accounts", "S-E", "email")
    assert merged["emil.braun@example.com"][0] == "opted_out"  # the CRM row's 'nein' was newer

    assert profile_of(phase2, "shop_accounts", "S-E") != profile_of(
        phase2, "crm_customers", "C-E1")
    assert consent(phase2, "shop_accounts", "S-E", "email") == {
        "emil.braun@example.com": ("opted_in", True, "shop_accounts")}
    assert consent(phase2, "shop_accounts", "S-E", "phone") == {"none": ("unknown", False, None)}
    assert consent(phase2, "crm_customers", "C-E1", "email") == {
        "erik.braun@example.com": ("opted_out", False, "crm_customers")}
    assert consent(phase2, "crm_customers", "C-E1", "phone") == {
        "+491705550001": ("opted_in", True, "crm_customers")}


def test_preferences_latest_preference_centre_save(phase1) -> None:
    prefs = row(phase1, "dim_profile_preferences", "shop_accounts", "S-B")
    assert (prefs["max_contacts"], prefs["contact_period"]) == (1, "month")
    assert prefs["excluded_product_groups"] == ["baby", "garden"]
    assert phase1.execute("SELECT count(*) FROM main.dim_profile_preferences").fetchone() == (1,)


# ------------------------------------------------------------------------------ golden record


def test_trusted_source_beats_newer_untrusted_source(phase1) -> None:
    felix = row(phase1, "dim_profiles", "crm_customers", "C-F1")
    assert (felix["last_name"], felix["last_name_source"]) == ("Neumann", "crm_customers")
    assert felix["last_name_at"] == datetime(2026, 1, 1, 8, 0)
    # the address rule is most_recent: the shop's newer address is current
    assert (felix["street"], felix["city"], felix["address_source"]) == (
        "Gartenweg", "Hamburg", "shop_accounts")
    assert (felix["phone"], felix["phone_source"]) == ("+491715550002", "shop_accounts")


def test_survivorship_rules_come_from_configuration(
    builds: tuple[DataPaths, DataPaths], tmp_path: Path
) -> None:
    paths = data_paths(tmp_path / "home")
    shutil.copytree(builds[0].home, paths.home)
    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parent.parent / "config", config)
    (config / "survivorship.yml").write_text(
        "attributes:\n  last_name: {strategy: most_recent}\n", encoding="utf-8")

    run_dbt(RunContext.at_edge(paths.home, config), ["run", "-s", "dim_profiles"])

    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        felix = row(con, "dim_profiles", "crm_customers", "C-F1")
    assert (felix["last_name"], felix["last_name_source"]) == ("Neumannn", "shop_accounts")


def test_address_history_and_identifiers(phase1) -> None:
    profile = profile_of(phase1, "crm_customers", "C-F1")
    addresses = phase1.execute(
        "SELECT street, is_current, valid_from FROM main.dim_profile_addresses "
        "WHERE profile_id = ? ORDER BY valid_from", [profile]).fetchall()
    assert addresses == [("Hauptstraße", False, datetime(2026, 1, 1, 8, 0)),
                         ("Gartenweg", True, datetime(2026, 6, 1, 10, 0))]
    identifiers = dict(phase1.execute(
        "SELECT identifier_type, identifier_value FROM main.fct_profile_identifiers "
        "WHERE profile_id = ?", [profile]).fetchall())
    assert identifiers == {"email": "felix.neumann@example.com", "phone": "+491715550002",
                           "customer_number": "K600", "user_id": "S-F",
                           "anonymous_id": "cookie-f"}


# ------------------------------------------------------------------------------------ traits


def test_rfm_and_lifetime_value(phase1) -> None:
    greta = row(phase1, "dim_profile_traits", "crm_customers", "C-G1")
    assert greta["as_of"] == AS_OF
    assert (greta["recency_days"], greta["frequency"], greta["monetary"]) == (10, 3, 60.0)
    assert greta["avg_order_value"] == 20.0
    expected = 20.0 * 3 * 365 / 153 * 3 * (1 - greta["churn_score"])
    assert greta["lifetime_value"] == pytest.approx(expected, abs=0.01)


def test_moved_and_new_baby(phase1) -> None:
    felix = row(phase1, "dim_profile_traits", "crm_customers", "C-F1")
    assert felix["moved_at"] == datetime(2026, 6, 1, 10, 0)
    greta = row(phase1, "dim_profile_traits", "crm_customers", "C-G1")
    assert greta["moved_at"] is None
    assert greta["new_baby_at"] == datetime(2026, 10, 22, 10, 0)


def test_churn_risk_orders_recency_and_bad_experiences(phase1) -> None:
    def risk(record_id: str) -> tuple[float, str]:
        traits = row(phase1, "dim_profile_traits", "crm_customers", record_id)
        return traits["churn_score"], traits["churn_risk"]

    greta, jonas, ida, hans = risk("C-G1"), risk("C-J1"), risk("C-I1"), risk("C-H1")
    assert greta[0] < jonas[0] < ida[0] < hans[0]  # same recency, but a complaint and spam
    assert (greta[1], ida[1], hans[1]) == ("low", "medium", "high")
    jonas_traits = row(phase1, "dim_profile_traits", "crm_customers", "C-J1")
    assert (jonas_traits["complaint_tickets"], jonas_traits["spam_complaints"]) == (1, 1)


# ------------------------------------------------------------------------------------ offers


def test_offer_responses_across_channels(phase1) -> None:
    responses = dict(
        ((source, record_id), (channel, response, offer, group))
        for source, record_id, channel, response, offer, group in phase1.execute(
            "SELECT source, record_id, channel, response, offer_id, product_group "
            "FROM main.fct_offer_responses").fetchall()
    )
    assert responses == {
        ("email_events", "E-A1"): ("email", "unsubscribed", "OF-001", "fashion"),
        ("email_events", "E-B1"): ("email", "unsubscribed", "OF-001", "fashion"),
        ("email_events", "E-C1"): ("email", "unsubscribed", "OF-001", "fashion"),
        ("email_events", "E-G2"): ("email", "delivered", "OF-002", "home"),  # E-G1: sent only
        ("email_events", "E-G3"): ("email", "opened", "OF-002", "home"),
        ("email_events", "E-G4"): ("email", "clicked", "OF-002", "home"),
        ("email_events", "E-G5"): ("email", "delivered", "OF-002", "home"),
        ("pos_orders", "O-G3"): ("pos", "accepted", "OF-007", "baby"),
        ("support_tickets", "T-G1"): ("phone", "rejected", "OF-002", "home"),
        ("web_events", "W-F2"): ("web", "delivered", "OF-003", "sports"),
        ("web_events", "W-F3"): ("web", "rejected", "OF-003", "sports"),
    }
    greta = {profile_of(phase1, "crm_customers", "C-G1")}
    owners = {profile_of(phase1, s, r) for s, r in (("support_tickets", "T-G1"),
                                                    ("email_events", "E-G5"))}
    assert owners == greta
