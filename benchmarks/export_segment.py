"""Export and API throughput for a 1,000,000-member segment on a synthetic published warehouse.

Not a test. Run ``.venv/bin/python benchmarks/export_segment.py [--members N]``. Builds a
published file with the contracted marts (every profile an opted-in, high-value Berliner, a
few with suppressions, caps and rejections so every step has work), then measures:

* the full export (selection, suppression chain, members CSV + Parquet, hashed audiences,
  delta, manifest and the export quality gate), with the time of each phase;
* a second export, which writes a real delta against the first;
* paging through all members with the API served by ``cdp serve`` (uvicorn, real HTTP).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from profiles.activation.config import ActivationConfig  # noqa: E402
from profiles.activation.export import export_segment  # noqa: E402
from profiles.activation.segment import build_segment  # noqa: E402
from profiles.activation.suppression import SuppressionPolicy  # noqa: E402

SEGMENT = {"name": "bench", "channel": "email", "offer_id": "offer_1",
           "where": "churn_risk = 'high' and lifetime_value > 100 and city in ('Berlin')"}


def build_published(path: Path, members: int) -> None:
    """All marts via DuckDB ``range``: seconds, not minutes, for a million profiles."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA segments")
        con.execute(f"""
            CREATE TABLE dim_profiles AS SELECT
                printf('P%08d', i) AS profile_id, 'First' || i AS first_name,
                'Last' || i AS last_name, printf('person%d@example.org', i) AS email,
                printf('+49151%08d', i) AS phone, DATE '1980-01-01' + (i % 9000)::INT
                AS birth_date, 'Hauptstr.' AS street, (i % 200)::VARCHAR AS house_number,
                '10115' AS postcode, 'Berlin' AS city, 'DE' AS country,
                NULL::VARCHAR AS customer_number
            FROM range({members}) t(i)""")
        con.execute("""
            CREATE TABLE dim_profile_consent AS SELECT profile_id, 'email' AS channel,
                email AS contact_point, 'opted_in' AS status, true AS is_contactable,
                'consent_log' AS decided_by_source, TIMESTAMP '2026-01-01' AS decided_at
            FROM dim_profiles""")
        con.execute("""
            CREATE TABLE dim_profile_traits AS SELECT profile_id, 10 AS recency_days,
                3 AS frequency, 100.0 AS monetary, 500.0 AS lifetime_value, 0.9 AS churn_score,
                'high' AS churn_risk, NULL::TIMESTAMP AS moved_at,
                NULL::TIMESTAMP AS new_baby_at FROM dim_profiles""")
        con.execute("""
            CREATE TABLE fct_identity_graph AS SELECT profile_id, 'crm' AS source,
                profile_id AS record_id, TIMESTAMP '2026-01-01' AS record_ts, email, phone,
                NULL::VARCHAR AS customer_number FROM dim_profiles""")
        con.execute("""
            CREATE TABLE dim_suppression_list AS SELECT sha256(email) AS identifier_hash,
                'email' AS identifier_type, 'email' AS channel, 'erased' AS reason,
                TIMESTAMP '2026-01-01' AS suppressed_at, 'erasure' AS source
            FROM dim_profiles WHERE hash(profile_id) % 100 = 0""")
        con.execute("""
            CREATE TABLE dim_profile_preferences AS SELECT profile_id, 1 AS max_contacts,
                'month' AS contact_period, ['vouchers'] AS excluded_product_groups,
                TIMESTAMP '2026-01-01' AS decided_at
            FROM dim_profiles WHERE hash(profile_id) % 100 = 1""")
        con.execute("""
            CREATE TABLE fct_offer_responses AS SELECT profile_id, 'offer_1' AS offer_id,
                'vouchers' AS product_group, 'phone' AS channel, 'rejected' AS response,
                now()::TIMESTAMP - INTERVAL 2 DAY AS responded_at, 'call_centre' AS source,
                profile_id AS record_id
            FROM dim_profiles WHERE hash(profile_id) % 100 = 2""")
        con.execute("CREATE TABLE _publication AS SELECT 'bench' AS run_id, "
                    "now()::TIMESTAMP AS published_at")


def measure_export(home: Path, config: ActivationConfig, run_id: str) -> None:
    started = time.perf_counter()
    export = export_segment(home / "warehouse" / "published.duckdb", home / "exports",
                            "bench", run_id, config, reports_dir=home / "reports")
    seconds, rows = time.perf_counter() - started, export.manifest.rows
    phases = export.manifest.seconds
    own = phases["select_and_suppress"] + phases["files"]
    print(f"export {run_id}: {rows:,} members in {seconds:.2f} s = {rows / seconds:,.0f} rows/s"
          f" in all; selection + suppression {phases['select_and_suppress']:.2f} s, files "
          f"(CSV, Parquet, hashed, delta) {phases['files']:.2f} s = {rows / own:,.0f} rows/s; "
          f"export quality gate {phases['quality_gate']:.2f} s")


def measure_api(home: Path, page: int) -> tuple[float, float, int]:
    """(seconds for the first page, seconds for all pages, rows) over real HTTP."""
    key = secrets.token_urlsafe(24)
    config = home / "config"
    config.mkdir(exist_ok=True)
    (config / "segments.yml").write_text(json.dumps({"segments": [SEGMENT]}))
    (config / "api.yml").write_text(json.dumps({"page_size": {"default": 100, "max": page}}))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "CDP_API_KEYS": key, "CDP_CONFIG": str(config)}
    with open(home / "server.log", "w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "cdp"), "serve", "--home", str(home),
             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    httpx.get(f"{url}/openapi.json", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as client:
                started = time.perf_counter()
                body = client.get("/segments/bench/members", params={"limit": page}).json()
                first = time.perf_counter() - started
                rows = len(body["items"])
                while body["next_cursor"]:
                    body = client.get("/segments/bench/members",
                                      params={"limit": page, "cursor": body["next_cursor"]}
                                      ).json()
                    rows += len(body["items"])
                return first, time.perf_counter() - started, rows
        finally:
            server.terminate()
            server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=10_000, help="API page size")
    args = parser.parse_args()
    segment = build_segment(SEGMENT)
    config = ActivationConfig({segment.name: segment}, SuppressionPolicy())
    with tempfile.TemporaryDirectory(prefix="cdp-bench-export-") as tmp:
        home = Path(tmp)
        (home / "warehouse").mkdir()
        started = time.perf_counter()
        build_published(home / "warehouse" / "published.duckdb", args.members)
        print(f"synthetic publication: {args.members:,} profiles in "
              f"{time.perf_counter() - started:.1f} s ({os.cpu_count()} CPUs)")
        for run in ("bench-1", "bench-2"):  # the second one writes a real delta
            measure_export(home, config, run)
        first, total, paged = measure_api(home, args.page)
        print(f"API: first page {first:.2f} s (selection + suppression, once per "
              f"publication); {paged:,} members in {total:.2f} s = {paged / total:,.0f} rows/s "
              f"(pages of {args.page:,})")


if __name__ == "__main__":
    main()
