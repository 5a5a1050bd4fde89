"""A source added through YAML alone (no code change) flows through to profiles."""

from __future__ import annotations

import csv
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
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    with open(config / "sources.yml", "a") as registry:
        registry.write(NEW_SOURCE)
    monkeypatch.setenv("CDP_CONFIG", str(config))

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
