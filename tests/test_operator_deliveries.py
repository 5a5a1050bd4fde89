"""Deliveries as an operator sees them after day one, each through the real DAG (dag.test).

Every test starts from a published 1,000-person demo run (twelve months of orders, the full
CRM and shop exports) and plays a sequence of later deliveries: next months' files, a
truncated snapshot, a bad file withdrawn again, a replayed old CRM export. Each sequence ends
in a successful publication whose content is checked.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cdp.cli import app
from cdp.run import RunSummary, run_pipeline
from core.paths import DataPaths

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _rows(path: Path, delimiter: str = ",") -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]], delimiter: str = ",",
           line_end: str = "\n") -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header, delimiter=delimiter, lineterminator=line_end)
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return path


def _published(paths: DataPaths, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _raw(paths: DataPaths, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _failures(summary: RunSummary) -> list[dict]:
    return list((summary.quality or {}).get("failures", []))


def _month_of_orders(paths: DataPaths, month: str) -> Path:
    """Next month's till export: October's rows (same size) with new ids, dated in ``month``."""
    header, october = _rows(paths.landing / "pos_orders" / "orders_202610.csv")
    rows = [
        {**row, "order_id": f"ORD-{month}-{i:05d}",
         "order_ts": f"{month[:4]}-{month[4:]}-{min(int(row['order_ts'][8:10]), 28):02d}"
                     + row["order_ts"][10:]}
        for i, row in enumerate(october)
    ]
    return _write(paths.landing / "pos_orders" / f"orders_{month}.csv", header, rows)


def test_monthly_files_after_a_backfill_publish_and_a_truncated_snapshot_is_caught(
    demo_home_copy: DataPaths,
) -> None:
    paths = demo_home_copy
    # Next month's file: judged against October's, it publishes (the run dated after the
    # month it delivers: rows dated after a run's clock are quarantined as future-dated).
    november = _month_of_orders(paths, "202611")
    summary = run_pipeline(paths, as_of=datetime(2026, 12, 1, tzinfo=UTC))
    assert summary.succeeded, (summary.failed_tasks, _failures(summary))
    # Two more months in one run, and a shop export cut short (a fifth of the accounts): each
    # file is judged against the one it replaces, so only the cut snapshot fails.
    later = {month: _month_of_orders(paths, month) for month in ("202612", "202701")}
    header, accounts = _rows(paths.landing / "shop_accounts" / "accounts.csv")
    _write(paths.landing / "shop_accounts" / "accounts_202702.csv", header,
           accounts[: len(accounts) // 5])
    before = hashlib.sha256(paths.published_db.read_bytes()).hexdigest()
    february = datetime(2027, 2, 1, tzinfo=UTC)
    summary = run_pipeline(paths, as_of=february)
    assert not summary.succeeded
    [failure] = _failures(summary)
    assert failure["suite"] == "raw.shop_accounts.deliveries"
    assert failure["column"] == "row_drop_share"
    assert failure["examples"] == [
        "raw.shop_accounts@accounts_202702.csv (snapshot) vs accounts.csv"]
    assert hashlib.sha256(paths.published_db.read_bytes()).hexdigest() == before

    # The operator takes it back; the next run publishes, the cut file stays refused.
    result = CliRunner().invoke(
        app, ["ingest", "withdraw", "shop_accounts", "accounts_202702.csv",
              "--home", str(paths.home)])
    assert result.exit_code == 0, result.output
    summary = run_pipeline(paths, as_of=february)
    assert summary.succeeded, (summary.failed_tasks, _failures(summary))
    assert _raw(paths, "SELECT count(*) FROM raw.shop_accounts WHERE _source_file = "
                "'accounts_202702.csv'") == [(0,)]
    assert _raw(paths, "SELECT status FROM raw._load_ledger WHERE file_name = "
                "'accounts_202702.csv'") == [("withdrawn",)]
    # Every month's orders reach the published identity graph (those with a loyalty card).
    for month, path in {"202611": november, **later}.items():
        with_card = sum(1 for row in _rows(path)[1] if row["loyalty_card"])
        [(published,)] = _published(
            paths, "SELECT count(*) FROM main.fct_identity_graph WHERE source = 'pos_orders' "
            "AND record_id LIKE ?", [f"ORD-{month}-%"])
        assert published == with_card > 0, month


def test_withdrawn_bad_delivery_no_longer_blocks_publication(demo_home_copy: DataPaths) -> None:
    paths = demo_home_copy
    header, accounts = _rows(paths.landing / "shop_accounts" / "accounts.csv")
    bad = [
        {**row, "account_id": f"UBAD{i:04d}",
         "email": f"{row['first_name']} {row['last_name']}"}  # names in the email column
        for i, row in enumerate(accounts[:120])
    ]
    bad.append({**bad[0], "street": "Andere Strasse"})  # the same key with other content
    bad_file = _write(paths.landing / "shop_accounts" / "accounts_bad.csv", header, bad)
    profiles_before = _published(paths, "SELECT count(*) FROM main.dim_profiles")
    # What a publish killed mid-copy leaves: a full copy of the marts (personal data).
    leftover = paths.published_db.with_name(f"{paths.published_db.name}.killed-run.tmp")
    leftover.write_bytes(paths.published_db.read_bytes())

    summary = run_pipeline(paths)
    assert not leftover.exists()  # removed at the start of the run, though it never publishes
    assert not summary.succeeded
    failed = {(f["suite"], f["column"]) for f in _failures(summary)}
    assert ("raw.shop_accounts.formats", "email") in failed
    assert ("raw.shop_accounts", "key_versions_in_file") in failed

    # Removing the file is not enough (raw keeps what was loaded) ...
    bad_file.unlink()
    assert not run_pipeline(paths).succeeded
    # ... withdrawing it through the DAG's param is.
    summary = run_pipeline(paths, withdraw=["shop_accounts/accounts_bad.csv"])
    assert summary.succeeded, (summary.failed_tasks, _failures(summary), summary.errors)
    assert _raw(paths, "SELECT count(*) FROM raw.shop_accounts WHERE account_id LIKE 'UBAD%'"
                ) == [(0,)]
    assert _published(paths, "SELECT count(*) FROM main.fct_identity_graph "
                      "WHERE record_id LIKE 'UBAD%'") == [(0,)]
    assert _published(paths, "SELECT count(*) FROM main.dim_profiles") == profiles_before


def _members(paths: DataPaths) -> dict[str, str]:
    """Every member file of every segment's newest export: file -> its text (ad audiences
    only where the segment declares them)."""
    files: dict[str, str] = {}
    for segment in sorted(p for p in paths.exports.iterdir() if p.is_dir()):
        newest = max(segment.iterdir(), key=lambda p: p.stat().st_mtime)
        for name in ("members.csv", "google_customer_match.csv", "meta_custom_audience.csv",
                     "joined.csv"):
            if (newest / name).exists():
                files[f"{segment.name}/{name}"] = (newest / name).read_text(encoding="utf-8")
        with duckdb.connect() as con:
            files[f"{segment.name}/members.parquet"] = "\n".join(
                str(row) for row in con.execute(
                    "SELECT * FROM read_parquet(?)", [str(newest / "members.parquet")]).fetchall())
    return files


def test_replayed_old_crm_version_never_wins_and_consent_holds(demo_home_copy: DataPaths) -> None:
    paths = demo_home_copy
    crm_file = paths.landing / "crm_customers" / "crm_export.csv"
    header, crm = _rows(crm_file, ";")
    newsletter = {row["email"]: row["profile_id"] for row in csv.DictReader(io.StringIO(
        _members(paths)["email_newsletter/members.csv"]))}
    google = set(re.findall(r"[0-9a-f]{64}",
                            _members(paths)["email_newsletter/google_customer_match.csv"]))

    def profile_of(row: dict[str, str]) -> str | None:
        found = _published(paths, "SELECT profile_id FROM main.fct_identity_graph WHERE "
                           "source = 'crm_customers' AND record_id = ?", [row["crm_row_id"]])
        return found[0][0] if found else None

    def hashes_of(profile: str | None) -> set[str]:
        return {hashlib.sha256(e.strip().lower().encode()).hexdigest()
                for e, p in newsletter.items() if p == profile}

    # A CRM customer opted in by the CRM whose profile gets the newsletter today and is in
    # its ad audience (online_ads consent).
    original = next(row for row in crm if row["email_opt_in"] == "ja" and row["email"]
                    and hashes_of(profile_of(row)) & google)
    key = original["crm_row_id"]
    profile_id = profile_of(original)
    hashes = hashes_of(profile_id)

    # 1. The CRM's update: the customer moved and withdrew the e-mail opt-in.
    update = {**original, "strasse": "Neue Allee", "hausnummer": "7", "email_opt_in": "nein",
              "updated_at": "01.11.2026 09:00"}
    _write(paths.landing / "crm_customers" / "crm_update_202611.csv", header, [update], ";")
    assert run_pipeline(paths).succeeded
    # 2. A replay of the original January export line, in an export with one column more
    #    (so its bytes and content differ from what was loaded), delivered later.
    _write(paths.landing / "crm_customers" / "crm_replay.csv", [*header, "exportiert_am"],
           [{**original, "exportiert_am": "15.01.2026"}], ";")
    # 3. And the same update again, byte for byte other (CRLF): content identity drops it.
    _write(paths.landing / "crm_customers" / "crm_update_202611_crlf.csv", header, [update],
           ";", line_end="\r\n")
    summary = run_pipeline(paths)
    assert summary.succeeded, (summary.failed_tasks, _failures(summary))

    assert _raw(paths, "SELECT count(*) FROM raw.crm_customers WHERE crm_row_id = ?",
                [key]) == [(3,)]  # export, update, replay: history kept, the CRLF copy not
    [(record_ts,)] = _published(paths, "SELECT record_ts FROM main.fct_identity_graph WHERE "
                                "source = 'crm_customers' AND record_id = ?", [key])
    assert str(record_ts).startswith("2026-11-01 09:00")
    assert ("Neue Allee",) in _published(
        paths, "SELECT street FROM main.dim_profile_addresses WHERE profile_id = ? "
        "AND is_current", [profile_id])
    contactable = _published(
        paths, "SELECT bool_or(is_contactable) FROM main.dim_profile_consent WHERE "
        "profile_id = ? AND channel = 'email'", [profile_id])
    assert contactable == [(False,)]
    # Out of every e-mail segment's files (and their ad audiences); the withdrawal was of
    # e-mail consent only, so a letter to the new address may still go out (movers_post).
    files = _members(paths)
    assert any(name.startswith("movers_post/") for name in files)
    for name, text in files.items():
        if not name.startswith("movers_post/"):
            assert profile_id not in text, name
            assert not any(h in text for h in hashes), name
