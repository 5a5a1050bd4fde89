"""Ingest throughput: ``load_all`` on a generated 1,000,000-row CSV vs a bare DuckDB read_csv.

Not a test. Run ``.venv/bin/python benchmarks/ingest_throughput.py [--rows N] [--bad-rows N]``.
Each measurement runs in a fresh child process so that its peak RSS (``ru_maxrss``) is its
own. The ingest figure includes everything a real run does: SHA-256 of the file, line
reconciliation, typed casts, quarantine, ledger and the commit to a DuckDB file.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

REGISTRY_YAML = """\
sources:
  bench_orders:
    kind: offline
    format: csv
    path: "*.csv"
    record_key: order_id
    timestamp: order_ts
    columns: {order_ts: timestamp, amount: double, created_at: timestamp}
    identity:
      customer_number: customer_number
      email: email
      first_name: first_name
      last_name: last_name
      phone: phone
      city: city
      postcode: postcode
"""


def generate_csv(path: Path, rows: int, bad_rows: int) -> None:
    """Write a realistic customer/order CSV with DuckDB (fast), then append broken lines."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"""COPY (
            SELECT i AS order_id,
                   'C' || lpad(CAST(i % 50000 AS VARCHAR), 6, '0') AS customer_number,
                   'user' || (i % 70000) || '@example.com' AS email,
                   'First' || (i % 300) AS first_name,
                   'Last' || (i % 900) AS last_name,
                   '+4930' || lpad(CAST(i % 9999999 AS VARCHAR), 7, '0') AS phone,
                   'City ' || (i % 200) AS city,
                   lpad(CAST(i % 99999 AS VARCHAR), 5, '0') AS postcode,
                   TIMESTAMP '2024-01-01' + to_seconds(i * 7) AS order_ts,
                   TIMESTAMP '2023-01-01' + to_seconds(i) AS created_at,
                   round((i % 10000) / 100.0, 2) AS amount,
                   CASE WHEN i % 3 = 0 THEN 'web' WHEN i % 3 = 1 THEN 'store' ELSE 'phone' END
                       AS channel
            FROM range(1, {int(rows) + 1}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')"""
    )
    con.close()
    if bad_rows:
        rng = random.Random(7)
        with path.open("ab") as handle:
            for n in range(bad_rows):
                kind = rng.choice(["fields", "date", "utf8", "key"])
                if kind == "fields":
                    handle.write(b"x,too,few\n")
                elif kind == "date":
                    handle.write(
                        f"{rows + n + 1},C1,a@b.de,A,B,+49,X,12345,not-a-date,"
                        "2023-01-01 00:00:00,1.0,web\n".encode()
                    )
                elif kind == "utf8":
                    handle.write(
                        f"{rows + n + 1},C1,a\xff@b.de,A,B,+49,X,12345,2024-01-01 00:00:00,"
                        "2023-01-01 00:00:00,1.0,web\n".encode("latin-1")
                    )
                else:
                    handle.write(b",C1,a@b.de,A,B,+49,X,12345,2024-01-01 00:00:00,"
                                 b"2023-01-01 00:00:00,1.0,web\n")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_ingest(workdir: str, queue: mp.Queue, stream: bool = False) -> None:
    """Child: load_all into a fresh DuckDB file (``stream``: force the big-file path)."""
    sys.path.insert(0, str(REPO))
    import ingest.readers.csv
    from ingest.loader import load_all
    from ingest.registry import load_registry

    if stream:
        ingest.readers.csv.PARALLEL_STAGE_MAX_BYTES = 0

    root = Path(workdir)
    registry = load_registry(root / "sources.yml")
    (root / "ingest.duckdb").unlink(missing_ok=True)
    cpu = _cpu_seconds()
    started = time.perf_counter()
    reports = load_all(root / "ingest.duckdb", registry, root / "landing", "bench")
    seconds = time.perf_counter() - started
    report = reports[0]
    queue.put(
        {
            "seconds": seconds,
            "rows": report.rows_loaded + report.rows_rejected,
            "loaded": report.rows_loaded,
            "rejected": report.rows_rejected,
            "mode": report.files[0].mode if report.files else "",
            "cpu": _cpu_seconds() - cpu,
            "peak_mb": _peak_mb(),
        }
    )


def run_bare(workdir: str, queue: mp.Queue) -> None:
    """Child: plain ``CREATE TABLE AS SELECT * FROM read_csv(file)`` into a fresh DuckDB file."""
    import duckdb

    root = Path(workdir)
    csv_path = next((root / "landing" / "bench_orders").glob("*.csv"))
    (root / "bare.duckdb").unlink(missing_ok=True)
    con = duckdb.connect(str(root / "bare.duckdb"))
    cpu = _cpu_seconds()
    started = time.perf_counter()
    con.execute(
        "CREATE TABLE bare AS SELECT * FROM read_csv($path, ignore_errors=true)",
        {"path": str(csv_path)},
    )
    seconds = time.perf_counter() - started
    row = con.execute("SELECT count(*) FROM bare").fetchone()
    con.close()
    queue.put(
        {
            "seconds": seconds,
            "rows": int(row[0]) if row else 0,
            "cpu": _cpu_seconds() - cpu,
            "peak_mb": _peak_mb(),
        }
    )


def _in_child(target, workdir: str, *extra: object) -> dict:  # type: ignore[no-untyped-def]
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    process = ctx.Process(target=target, args=(workdir, queue, *extra))
    process.start()
    result = queue.get()
    process.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bad-rows", type=int, default=0, help="broken lines appended")
    parser.add_argument("--repeat", type=int, default=1, help="runs each; the fastest counts")
    parser.add_argument(
        "--stream", action="store_true",
        help="force the streaming CSV path used for files above PARALLEL_STAGE_MAX_BYTES",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cdp-ingest-bench-") as tmp:
        root = Path(tmp)
        landing = root / "landing" / "bench_orders"
        landing.mkdir(parents=True)
        (root / "sources.yml").write_text(REGISTRY_YAML)
        csv_path = landing / "orders.csv"
        started = time.perf_counter()
        generate_csv(csv_path, args.rows, args.bad_rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows (+{args.bad_rows} broken), {size_mb:.0f} MB "
              f"in {time.perf_counter() - started:.1f}s")

        ingests, bares = [], []
        for _ in range(max(args.repeat, 1)):  # interleaved, so both see the same machine load
            ingests.append(_in_child(run_ingest, tmp, args.stream))
            bares.append(_in_child(run_bare, tmp))
    ingest = min(ingests, key=lambda r: r["seconds"])
    bare = min(bares, key=lambda r: r["seconds"])

    print(
        f"ingest load_all : {ingest['rows']:>10,} rows in {ingest['seconds']:6.2f}s = "
        f"{ingest['rows'] / ingest['seconds']:>12,.0f} rows/s, cpu {ingest['cpu']:.2f}s, "
        f"peak {ingest['peak_mb']:.0f} MB (loaded {ingest['loaded']:,}, "
        f"rejected {ingest['rejected']:,}, mode {ingest['mode']})"
    )
    print(
        f"bare read_csv   : {bare['rows']:>10,} rows in {bare['seconds']:6.2f}s = "
        f"{bare['rows'] / bare['seconds']:>12,.0f} rows/s, cpu {bare['cpu']:.2f}s, "
        f"peak {bare['peak_mb']:.0f} MB"
    )
    print(
        f"ingest / bare time ratio: {ingest['seconds'] / bare['seconds']:.2f}x "
        f"(best of {max(args.repeat, 1)}; load average {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} cores)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
