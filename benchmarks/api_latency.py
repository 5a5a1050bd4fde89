"""Latency and throughput of ``cdp serve`` under concurrent load (not a test).

Usage::

    .venv/bin/python benchmarks/api_latency.py --source-home /tmp/cdp-bench-delta/home \\
        [--scale 12] [--seconds 30] [--connections 16] [--workers 2] [--dir /tmp/cdp-bench-api]

``--source-home``: a data directory whose pipeline has published (e.g. the one
``benchmarks/daily_delta.py`` leaves: ~1M source records, ~88k profiles); without it a
1,000-person demo is generated and run first. ``--scale K`` publishes the source's marts K
times over (every profile id suffixed ``_1`` .. ``_K-1``, the other columns as they are) through
the product's own ``publish``, which writes the serving store: 12 x 88k = ~1M profiles.

Then a real ``cdp serve --workers`` on 127.0.0.1 and ``wrk`` (Debian package ``wrk``) with
``--connections`` open connections for ``--seconds`` per endpoint, random keys each request:

* ``GET /profiles/{id}`` (the profile document),
* ``POST /profiles/lookup`` (an e-mail address, normalised and hashed by the API),
* ``GET /profiles/{id}/offers?channel=email`` (next best offer, when the API has it).

Baseline in the same run: the same endpoints served from the publication file alone (its
serving store moved aside: the path every answer took before the store), for a third of the
time, and bare point lookups in-process (SQLite on the store, DuckDB on the publication).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
KEY = "bench-read-key"
SAMPLE = 20_000

WRK_SCRIPT = """
local keys = {}
for line in io.lines(os.getenv("BENCH_KEYS")) do keys[#keys + 1] = line end
local method, template = os.getenv("BENCH_METHOD"), os.getenv("BENCH_TEMPLATE")
wrk.headers["X-API-Key"] = os.getenv("BENCH_API_KEY")
wrk.headers["Content-Type"] = "application/json"
init = function(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)) end
request = function()
  local key = keys[math.random(#keys)]
  if method == "POST" then
    return wrk.format("POST", template, nil, string.format('{"email": "%s"}', key))
  end
  return wrk.format("GET", (template:gsub("{key}", key)))
end
"""


def scaled_publication(source: Path, home: Path, scale: int, config: Path) -> Path:
    """Publish ``source``'s published tables ``scale`` times over into ``home`` through the
    product's publish (serving store with ``config``'s offers included); returns the file."""
    from profiles.activation.config import load_config
    from profiles.activation.offers import load_offers
    from profiles.publishing.publish import PUBLISHED_SCHEMAS, publish
    from profiles.serving.offers import Catalogue

    build = home / "warehouse" / "build.duckdb"
    build.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(build)) as con:
        con.execute("ATTACH ? AS src (READ_ONLY)", [str(source)])
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src' "
            "AND schema_name IN (SELECT unnest(?)) AND table_name <> '_publication'",
            [list(PUBLISHED_SCHEMAS)]).fetchall()
        for schema, table in tables:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            columns = {c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'src' AND "
                "schema_name = ? AND table_name = ?", [schema, table]).fetchall()}
            copies = scale if "profile_id" in columns else 1
            replace = ("REPLACE (CASE WHEN k = 0 THEN profile_id ELSE profile_id || '_' || k "
                       "END AS profile_id)") if copies > 1 else ""
            con.execute(f'CREATE TABLE "{schema}"."{table}" AS SELECT * EXCLUDE (k) {replace} '
                        f'FROM src."{schema}"."{table}", range({copies}) AS r(k)')
    published = home / "warehouse" / "published.duckdb"
    started = time.perf_counter()
    catalogue = Catalogue(load_offers(config / "offers.yml"),
                          load_config(config / "segments.yml", home / "landing" / "api_events"))
    publish(build, published, "bench-publication", catalogue=catalogue)
    print(f"published x{scale} with its serving store in {time.perf_counter() - started:.1f} s",
          flush=True)
    build.unlink()
    return published


def sample_keys(published: Path, folder: Path) -> dict[str, Path]:
    """Files of random profile ids and e-mail addresses (the lookups' keys)."""
    with duckdb.connect(str(published), read_only=True) as con:
        ids = [r[0] for r in con.execute(
            f"SELECT profile_id FROM main.dim_profiles USING SAMPLE {SAMPLE} ROWS").fetchall()]
        emails = [r[0] for r in con.execute(
            "SELECT DISTINCT email FROM main.fct_identity_graph WHERE email IS NOT NULL "
            f"USING SAMPLE {SAMPLE} ROWS").fetchall()]
    files = {"ids": folder / "ids.txt", "emails": folder / "emails.txt"}
    files["ids"].write_text("\n".join(ids) + "\n")
    files["emails"].write_text("\n".join(e for e in emails if '"' not in e) + "\n")
    return files


def wrk(url: str, method: str, template: str, keys: Path, seconds: int, connections: int,
        folder: Path) -> dict[str, Any]:
    """One wrk run; its latency percentiles (ms), requests per second and error count."""
    script = folder / "bench.lua"
    script.write_text(WRK_SCRIPT)
    env = {**os.environ, "BENCH_KEYS": str(keys), "BENCH_METHOD": method,
           "BENCH_TEMPLATE": template, "BENCH_API_KEY": KEY}
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "--timeout", "10s",
                          "-s", str(script), url], env=env, capture_output=True, text=True,
                         check=True).stdout
    figures: dict[str, Any] = {}
    for percentile in ("50", "90", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match:
            value, unit = float(match[1]), match[2]
            figures[f"p{percentile}_ms"] = round(value * {"us": 1e-3, "ms": 1, "s": 1e3}[unit], 2)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    figures["requests_per_s"] = round(float(rps[1])) if rps else 0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non_2xx"] = int(errors[1]) if errors else 0
    timeouts = re.search(r"timeout (\d+)", out)
    figures["timeouts"] = int(timeouts[1]) if timeouts else 0
    return figures


def serve(home: Path, config: Path, log: Path,
          workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``cdp serve`` on a random port, once it answers."""
    port = random.randint(20_000, 40_000)
    env = {**os.environ, "CDP_API_KEYS": KEY, "CDP_CONFIG": str(config)}
    process = subprocess.Popen([str(BIN / "cdp"), "serve", "--home", str(home), "--port",
                                str(port), "--workers", str(workers)], env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{url}/openapi.json", timeout=1)
            return process, url
        except httpx.TransportError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"cdp serve did not start: {log.read_text()[-2000:]}")


def endpoints(url: str, keys: dict[str, Path], has_offers: bool) -> list[tuple[str, str, str,
                                                                             Path]]:
    listed = [("profile lookup", "GET", "/profiles/{key}", keys["ids"]),
              ("hashed-identifier lookup", "POST", "/profiles/lookup", keys["emails"])]
    if has_offers:
        listed.append(("next best offer", "GET", "/profiles/{key}/offers?channel=email",
                       keys["ids"]))
    return listed


def bare_lookups(published: Path, store: Path, ids: list[str]) -> dict[str, float]:
    """Mean in-process point lookup (ms): SQLite on the store, DuckDB on the publication."""
    lite = sqlite3.connect(f"file:{store}?mode=ro&immutable=1", uri=True)
    started = time.perf_counter()
    for profile_id in ids:
        lite.execute("SELECT document FROM profiles WHERE profile_id = ?", (profile_id,)
                     ).fetchall()
    sqlite_ms = (time.perf_counter() - started) / len(ids) * 1000
    con = duckdb.connect(str(published), read_only=True)
    started = time.perf_counter()
    for profile_id in ids:
        con.execute("SELECT * FROM main.dim_profiles WHERE profile_id = ?", [profile_id]
                    ).fetchall()
    duckdb_ms = (time.perf_counter() - started) / len(ids) * 1000
    return {"sqlite_store_ms": round(sqlite_ms, 3), "duckdb_dim_profiles_ms": round(duckdb_ms, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-home", type=Path)
    parser.add_argument("--scale", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="cdp serve --workers")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cdp-bench-api"))
    parser.add_argument("--keep", action="store_true",
                        help="keep --dir (it holds the sampled e-mail addresses and a copy of "
                        "the publication): removed at the end by default")
    args = parser.parse_args()
    try:
        _measure(args)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)


def _measure(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    from profiles.serving.store import store_folder

    if args.dir.exists():
        shutil.rmtree(args.dir)
    args.dir.mkdir(parents=True)
    source_home = args.source_home or _demo(args.dir / "demo")
    home = args.dir / "home"
    config = args.dir / "config"
    shutil.copytree(ROOT / "config", config)
    (config / "api.yml").write_text(  # the benchmark's own key and no rate limit in the way
        "rate_limit: {per_second: 1000000, burst: 1000000}\n")
    published = scaled_publication(source_home / "warehouse" / "published.duckdb", home,
                                   args.scale, config)
    keys = sample_keys(published, args.dir)
    with duckdb.connect(str(published), read_only=True) as con:
        profiles = con.execute("SELECT count(*) FROM main.dim_profiles").fetchone()
    print(f"profiles: {profiles[0] if profiles else 0:,}", flush=True)
    stores = sorted(store_folder(published).glob("*.sqlite"))
    sample = keys["ids"].read_text().split()[:5_000]
    results: dict[str, dict[str, Any]] = {"bare": bare_lookups(published, stores[0], sample)}
    for label, aside in (("serving store", False), ("warehouse only (baseline)", True)):
        if aside:
            shutil.move(store_folder(published), args.dir / "serving-aside")
        process, url = serve(home, config, args.dir / f"serve-{int(aside)}.log", args.workers)
        try:
            first = keys["ids"].read_text().split()[0]
            started = time.perf_counter()  # opens the publication (and its store)
            httpx.get(f"{url}/profiles/{first}", headers={"X-API-Key": KEY}, timeout=120)
            results[f"{label}: first request"] = {
                "ms": round((time.perf_counter() - started) * 1000, 1)}
            print(f"{label}: first request after start "
                  f"{results[f'{label}: first request']['ms']} ms", flush=True)
            openapi = httpx.get(f"{url}/openapi.json").json()
            has_offers = "/profiles/{profile_id}/offers" in openapi.get("paths", {})
            seconds = max(5, args.seconds // 3) if aside else args.seconds
            for name, method, template, key_file in endpoints(url, keys, has_offers):
                figures = wrk(url, method, template, key_file, seconds, args.connections,
                              args.dir)
                results[f"{label}: {name}"] = figures
                print(f"{label}: {name}: {json.dumps(figures)}", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print()
    print(f"| {profiles[0] if profiles else 0:,} profiles, {args.connections} connections, "
          f"{args.workers} workers | "
          "p50 ms | p90 ms | p99 ms | requests/s | non-2xx | timeouts (10 s) |")
    print("|---|---|---|---|---|---|---|")
    for label, figures in results.items():
        if label == "bare" or "first request" in label:
            continue
        print(f"| {label} | {figures.get('p50_ms')} | {figures.get('p90_ms')} | "
              f"{figures.get('p99_ms')} | {figures['requests_per_s']:,} | {figures['non_2xx']} | "
              f"{figures['timeouts']} |")
    print(f"bare point lookups in-process: {json.dumps(results['bare'])}")
    print("first request after start (ms): " + ", ".join(
        f"{label.split(':')[0]} {figures['ms']}" for label, figures in results.items()
        if "first request" in label))


def _demo(folder: Path) -> Path:
    """A 1,000-person demo, run through the pipeline."""
    home = folder / "home"
    env = {**os.environ, "CDP_HOME": str(home)}
    subprocess.run([str(BIN / "cdp"), "demo", "generate", "--people", "1000"], env=env,
                   check=True, capture_output=True)
    subprocess.run([str(BIN / "cdp"), "run"], env=env, check=True, capture_output=True)
    return home


if __name__ == "__main__":
    main()
