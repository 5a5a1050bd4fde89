"""A source added through YAML alone (no code change) flows through to profiles."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from cdp.run import run_pipeline
from core.paths import DataPaths

REPO = Path(__file__).resolve().parent.parent

NEW_SOURCE = """
  newsletter_signups:
    kind: online
    format: csv
    csv: {delimiter: "|"}
    path: "*.csv"
    record_key: signup_id
    timestamp: signed_up_at
    identity:
      email: mail
      first_name: vorname
      last_name: nachname
"""


def _register(config: Path, entry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's configuration plus ``entry`` in sources.yml, used by the next run."""
    shutil.copytree(REPO / "config", config)
    with open(config / "sources.yml", "a") as registry:
        registry.write(entry)
    monkeypatch.setenv("CDP_CONFIG", str(config))


def _a_crm_customer(paths: DataPaths) -> dict[str, str]:
    with open(paths.landing / "crm_customers" / "crm_export.csv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            if row["email"].strip() and row["vorname"].strip():
                return row
    raise AssertionError("demo CRM export has no customer with an email")


def test_yaml_only_source_links_into_existing_profiles(
    demo_home_copy: DataPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = demo_home_copy
    _register(tmp_path / "config", NEW_SOURCE, monkeypatch)

    customer = _a_crm_customer(paths)
    landing = paths.landing / "newsletter_signups"
    landing.mkdir()
    (landing / "signups.csv").write_text(
        "signup_id|signed_up_at|mail|vorname|nachname|campaign\n"
        f"S-1|2026-10-30 12:00:00|  {customer['email'].strip().upper()} |"
        f"{customer['vorname']}|{customer['nachname']}|autumn\n"
        "S-2|2026-10-30 12:05:00|nobody.known@example.org|Zed|Unknown|autumn\n"
    )

    summary = run_pipeline(paths)

    assert summary.succeeded, (summary.failed_tasks, summary.errors)
    assert summary.records_per_source["newsletter_signups"] == 2
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        profile_of = dict(
            con.execute(
                "SELECT source || ':' || record_id, profile_id FROM main.fct_identity_graph "
                "WHERE source IN ('newsletter_signups', 'crm_customers')"
            ).fetchall()
        )
    crm_profile = profile_of[f"crm_customers:{customer['crm_row_id']}"]
    assert profile_of["newsletter_signups:S-1"] == crm_profile
    assert profile_of["newsletter_signups:S-2"] not in {
        pid for key, pid in profile_of.items() if key.startswith("crm_customers:")
    }


SIGNUPS_WITH_CONSENT = """
  newsletter_signups:
    kind: online
    format: csv
    path: "*.csv"
    record_key: signup_id
    timestamp: signed_up_at
    identity: {email: mail, first_name: vorname, last_name: nachname}
    consent:
      - {channel: email, column: newsletter, opted_in: ["Y"], opted_out: ["N"],
         reason: newsletter tool}
"""


def _an_email_member(paths: DataPaths) -> tuple[str, str, str, str]:
    """(profile id, contact point, first name, last name) of someone the newsletter reaches,
    whose e-mail consent was decided before the sign-ups below."""
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        row = con.execute(
            "SELECT c.profile_id, c.contact_point, p.first_name, p.last_name "
            "FROM main.dim_profile_consent c JOIN main.dim_profiles p USING (profile_id) "
            "WHERE c.channel = 'email' AND c.is_contactable AND c.decided_at < '2026-10-01' "
            "AND p.first_name IS NOT NULL AND p.last_name IS NOT NULL "
            "AND c.profile_id IN (SELECT profile_id FROM segments.seg_email_newsletter) "
            "ORDER BY c.profile_id LIMIT 1").fetchone()
    assert row is not None, "the demo has no newsletter member to opt out"
    return row


def _exported_profiles(summary: object, segment: str) -> set[str]:
    (export,) = [e for e in summary.exports if e["segment"] == segment]  # type: ignore[attr-defined]
    with open(export["path"], newline="", encoding="utf-8") as handle:
        return {row["profile_id"] for row in csv.DictReader(handle)}


def test_a_users_signup_file_with_an_opt_in_column_becomes_email_consent(
    demo_home_copy: DataPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configuration only: the newsletter tool's own Y/N column opts a new person in (they
    appear in the newsletter export) and opts a known member out (they leave it)."""
    paths = demo_home_copy
    _register(tmp_path / "config", SIGNUPS_WITH_CONSENT, monkeypatch)
    member, address, first, last = _an_email_member(paths)
    landing = paths.landing / "newsletter_signups"
    landing.mkdir()
    (landing / "signups.csv").write_text(
        "signup_id,signed_up_at,mail,vorname,nachname,newsletter\n"
        f"S-1,2026-10-31 20:00:00,{address},{first},{last},N\n"
        "S-2,2026-10-31 20:05:00,new.reader@example.org,Nora,Neu,Y\n"
        "S-3,2026-10-31 20:10:00,undecided@example.org,Ulf,Unsure,maybe\n")

    summary = run_pipeline(paths)

    assert summary.succeeded, (summary.failed_tasks, summary.errors)
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        profile = dict(con.execute(
            "SELECT record_id, profile_id FROM main.fct_identity_graph "
            "WHERE source = 'newsletter_signups'").fetchall())
        consent = dict(con.execute(
            "SELECT contact_point, status || '/' || coalesce(decided_by_source, '') "
            "FROM main.dim_profile_consent WHERE channel = 'email' "
            "AND contact_point IN (?, 'new.reader@example.org', 'undecided@example.org')",
            [address]).fetchall())
        suppressed = con.execute(
            "SELECT source FROM main.dim_suppression_list WHERE identifier_hash = ?",
            [hashlib.sha256(address.encode()).hexdigest()]).fetchall()
    assert profile["S-1"] == member
    assert suppressed == [("newsletter_signups",)]  # the opt-out is a request: never again
    assert consent[address] == "opted_out/newsletter_signups"
    assert consent["new.reader@example.org"] == "opted_in/newsletter_signups"
    assert consent["undecided@example.org"].startswith("unknown/")
    exported = _exported_profiles(summary, "email_newsletter")
    assert profile["S-2"] in exported
    assert member not in exported and profile["S-3"] not in exported


SHOP_ORDERS = """
  webshop_orders:
    kind: online
    format: csv
    csv: {delimiter: ";"}
    record_key: bestellnummer
    timestamp: bestellt_am
    columns: {bestellt_am: timestamp, summe: double}
    identity: {email: kunde_mail, first_name: vorname, last_name: nachname}
    orders: {amount: summe, product_group: sortiment, channel: shop}
"""


def test_a_users_own_order_export_feeds_rfm_through_the_orders_role(
    demo_home_copy: DataPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configuration only: a web shop's order export, in its own column names, adds to the
    orders, spend and product groups of the profile it links to."""
    paths = demo_home_copy
    _register(tmp_path / "config", SHOP_ORDERS, monkeypatch)
    member, address, first, last = _an_email_member(paths)
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        ((orders_before, spend_before),) = con.execute(
            "SELECT frequency, monetary FROM main.dim_profile_traits WHERE profile_id = ?",
            [member]).fetchall()
    landing = paths.landing / "webshop_orders"
    landing.mkdir()
    (landing / "orders.csv").write_text(
        "bestellnummer;bestellt_am;kunde_mail;vorname;nachname;summe;sortiment\n"
        f"W-1;2026-10-20 10:00:00;{address};{first};{last};49.90;baby\n"
        f"W-2;2026-10-25 11:00:00;{address};{first};{last};10.10;home\n")

    summary = run_pipeline(paths)

    assert summary.succeeded, (summary.failed_tasks, summary.errors)
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        ((orders, spend, baby, last_order),) = con.execute(
            "SELECT frequency, monetary, new_baby_at, last_order_at "
            "FROM main.dim_profile_traits WHERE profile_id = ?", [member]).fetchall()
    assert orders == (orders_before or 0) + 2
    assert spend == pytest.approx((spend_before or 0) + 60.0)
    assert baby is not None and last_order is not None
    assert str(last_order) >= "2026-10-25 11:00"
