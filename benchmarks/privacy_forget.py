"""Time to forget one person and 100 people, next to the pipeline run on the same data (not a
test).

Usage::

    .venv/bin/python benchmarks/privacy_forget.py [--people 72000] [--dir /tmp/cdp-bench-privacy]

Generates the demo (72,000 people is about 1,000,000 source records), runs the pipeline once
(on a copy of config/ whose ``max_cluster_size`` gate is raised from 250 to 1,000: at this size
the demo resolves one profile of 331 records, which the gate rightly refuses - a finding for
the identity work, not for this benchmark)
(the baseline: ``cdp run``, which an erasure's rebuild repeats without ingest and export), then
in copies of that data directory forgets one person, and 100 people in one request (a CSV),
each through the ``cdp privacy forget`` command in a subprocess. Prints wall seconds, peak
memory and the erasure's own step times (from its report) next to the run's.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDP = Path(sys.executable).parent / "cdp"


#: Runs a command and prints its peak RSS (KiB) last: each measured step gets its own parent,
#: so one step's peak is not another's.
PEAK_OF = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
           "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
           "file=sys.stderr); sys.exit(code)")


def _timed(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of the command, and its output."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_OF, *args], capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{done.stdout}\n{done.stderr}")
    peak = next((int(line.split()[1]) for line in done.stderr.splitlines()[::-1]
                 if line.startswith("PEAK ")), 0) / 1024
    return seconds, peak, done.stdout + done.stderr


def _records(home: Path) -> int:
    import duckdb

    with duckdb.connect(str(home / "warehouse" / "build.duckdb"), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM main.fct_identity_graph").fetchone()
    return int(row[0]) if row else 0


def _emails(home: Path, count: int) -> list[str]:
    import duckdb

    with duckdb.connect(str(home / "warehouse" / "build.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT email FROM main.fct_identity_graph WHERE source = 'crm_customers' "
            "AND email IS NOT NULL GROUP BY email ORDER BY hash(email) LIMIT ?", [count]
        ).fetchall()
    return [str(r[0]) for r in rows]


def _report(home: Path) -> dict[str, object]:
    reports = sorted((home / "reports" / "privacy").glob("erasure-*.json"))
    return json.loads(reports[-1].read_text()) if reports else {}


def _config(folder: Path) -> Path:
    """config/ with the largest-profile gate raised (see the module docstring)."""
    import yaml

    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ROOT / "config", folder)
    quality = yaml.safe_load((folder / "quality.yml").read_text())
    quality["max_cluster_size"] = 1000
    (folder / "quality.yml").write_text(yaml.safe_dump(quality, sort_keys=False))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=72_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cdp-bench-privacy"))
    args = parser.parse_args()
    base = args.dir / "base"
    os.environ["CDP_CONFIG"] = str(_config(args.dir / "config"))
    if not (base / "warehouse" / "published.duckdb").exists():
        shutil.rmtree(base, ignore_errors=True)
        run_s, run_mb, _ = _timed([str(CDP), "run", "--home", str(base), "--people",
                                   str(args.people)])
    else:
        run_s, run_mb = float("nan"), float("nan")
    # The baseline in this sitting: the pipeline again on the same data (nothing new to
    # ingest, so it is what an erasure's rebuild costs plus ingest's checks and the export).
    again_s, again_mb, _ = _timed([str(CDP), "run", "--home", str(base)])
    records = _records(base)
    print(f"{records:,} source records; first run {run_s:.0f} s ({run_mb:.0f} MiB), "
          f"run again on the same data {again_s:.0f} s ({again_mb:.0f} MiB)")
    emails = _emails(base, 100)
    for label, identifiers in (("1 person", emails[:1]), ("100 people", emails)):
        home = args.dir / label.replace(" ", "_")
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(base, home, ignore=shutil.ignore_patterns("airflow"))
        request = args.dir / f"{label.replace(' ', '_')}.csv"
        with request.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["kind", "value"])
            writer.writerows(["email", e] for e in identifiers)
        seconds, peak, _ = _timed([str(CDP), "privacy", "forget", "--from-csv", str(request),
                                   "--home", str(home)])
        request.unlink()
        report = _report(home)
        records_gone = sum(dict(report.get("records", {})).values())  # type: ignore[arg-type]
        print(f"forget {label}: {seconds:.0f} s ({peak:.0f} MiB peak), {records_gone} records; "
              f"{seconds / again_s:.2f}x the run on the same data")
        for stage in ("train_identity", "build", "quality_gate", "publish"):
            path = home / "reports" / "runs" / f"{report['request_id']}__rebuild" / f"{stage}.json"
            if path.exists():
                print(f"    rebuild {stage}: {json.loads(path.read_text()).get('seconds')} s")


if __name__ == "__main__":
    main()
