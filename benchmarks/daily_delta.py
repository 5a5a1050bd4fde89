"""A daily delta against a full run, on ~1,000,000 demo source records (not a test).

Usage::

    .venv/bin/python benchmarks/daily_delta.py [--people 72000] [--share 0.01]
                                               [--dir /tmp/cdp-bench-delta]

One invocation, each run a ``cdp run`` in its own process (wall time and that process's
peak RSS, from ``wait4``):

1. **full**: the first run on generated demo data (trains and saves the identity model; the
   generator's truth is moved out of the data directory, so no run scores itself against it
   and the time outside the stages is orchestration).
2. **delta**: the next day, ``--share`` of the records arrive as new deliveries: changed
   versions of CRM and shop records (new surname or e-mail), new people (new keys, other
   names) and new events, orders, consent changes and tickets (``cdp run --as-of`` the next
   day).  The identity state re-uses what did not change (``cdp run`` prints what it
   touched).
3. **full again**: ``cdp run --full-refresh`` over the same data: the identity state rebuilt
   from raw, for the equivalence check and as a second full-run figure.

Equivalence: pairwise agreement (Jaccard of the same-profile record pairs) of the delta's
identity graph and the full refresh's, and whether every profile whose records did not change
in the delta keeps its id in both.  Baseline, same invocation: bare Splink predict + cluster
with the trained model over the person nodes (``benchmarks/identity_stage.py --step
splink``) plus a bare DuckDB read of the same landing files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CDP = str(Path(sys.executable).with_name("cdp"))
DELTA_TAG = "delta"


def _timed(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``command``; its wall seconds and peak RSS (GiB)."""
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        process = subprocess.Popen(command, env=env, stdout=quiet, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {status})")
    return {"seconds": round(seconds, 1), "peak_gib": round(usage.ru_maxrss / 1024**2, 2)}


def _latest_run(home: Path) -> dict[str, Any]:
    """Stage seconds and the identity report of the newest pipeline run under ``home``."""
    runs = sorted((home / "reports" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    folder = next(p for p in reversed(runs) if (p / "check.json").exists())
    stages: dict[str, float] = {}
    for report in folder.glob("*.json"):
        body = json.loads(report.read_text())
        if report.stem == "identity":
            continue
        stage = report.stem.split("__", 1)[0]
        stages[stage] = round(stages.get(stage, 0.0) + float(body.get("seconds", 0.0)), 1)
    identity = json.loads((folder / "identity.json").read_text())
    return {"run_id": folder.name, "stages": stages, "touched": identity.get("touched", {}),
            "identity_seconds": {k: v for k, v in identity.items() if k.startswith("seconds")},
            "records": identity.get("records"), "profiles": identity.get("profiles")}


def _run(home: Path, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "CDP_HOME": str(home)}
    figures = _timed([CDP, "run", *extra], env)
    figures.update(_latest_run(home))
    figures["outside_stages"] = round(figures["seconds"] - sum(figures["stages"].values()), 1)
    return figures


def write_delta(home: Path, share: float, day: str, seed: int = 7) -> dict[str, int]:
    """One day's deliveries holding ``share`` of each source's records, dated on ``day``:
    for the sources whose records are people (CRM, shop) half changed versions of existing
    records (a new surname, every other one a new e-mail) and half new people (new keys,
    other first names, no contact data); for the others new records (new keys).  A snapshot
    source delivers its whole current set again, the changes applied."""
    import numpy as np
    import pandas as pd

    from cdp.context import RunContext

    registry = RunContext.at_edge(home).registry
    rng = np.random.default_rng(seed)
    written: dict[str, int] = {}
    for name, spec in registry.sources.items():
        folder = home / "landing" / name
        files = sorted(p for p in folder.glob("*") if p.is_file() and DELTA_TAG not in p.name)
        if not files:
            continue
        delimiter = spec.csv.delimiter
        frame = pd.concat([pd.read_csv(p, dtype=str, sep=delimiter, keep_default_na=False)
                           if spec.format == "csv" else pd.read_json(p, lines=True, dtype=False)
                           for p in files], ignore_index=True)
        count = max(1, int(len(frame) * share))
        key, identity = spec.key_columns[0], spec.identity
        picked = frame.iloc[rng.choice(len(frame), count, replace=False)]
        picked = picked.drop_duplicates(key).copy()  # one version per key in a file
        if name in {"crm_customers", "shop_accounts"}:
            half = len(picked) // 2
            changed, new = picked.iloc[:half].copy(), picked.iloc[half:].copy()
            if "last_name" in identity:
                changed[identity["last_name"]] = changed[identity["last_name"]] + "-Neu"
            if "email" in identity:
                email = identity["email"]
                given = changed.index[changed[email].astype(str).str.contains("@")][::2]
                changed.loc[given, email] = "neu." + changed.loc[given, email].astype(str)
            new[key] = new[key].astype(str) + "-N"
            if "first_name" in identity:
                first = identity["first_name"]
                new[first] = rng.permutation(frame[first].to_numpy())[: len(new)]
            for field in ("customer_number", "loyalty_card", "email", "phone"):
                if field in identity:
                    new[identity[field]] = ""
            picked = pd.concat([changed, new])
        else:
            picked[key] = picked[key].astype(str) + "-N"
        if spec.timestamp:
            hours = rng.integers(6, 22, len(picked))
            stamps = pd.Timestamp(day) + pd.to_timedelta(hours, unit="h")
            picked[spec.timestamp] = [t.strftime(spec.timestamp_format) if spec.timestamp_format
                                      else t.isoformat() for t in stamps]
        delivery = picked
        if spec.delivery == "snapshot":  # every file is the full current set
            delivery = pd.concat([frame[~frame[key].isin(picked[key])], picked])
        target = folder / f"{DELTA_TAG}_{name}.{'csv' if spec.format == 'csv' else 'jsonl'}"
        if spec.format == "csv":
            delivery.to_csv(target, index=False, sep=delimiter)
        else:
            delivery.to_json(target, orient="records", lines=True, force_ascii=False)
        written[name] = len(picked)
    return written


def _graph(home: Path) -> Any:
    import duckdb

    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"), read_only=True)
    try:
        return con.sql("SELECT source, record_id, profile_id FROM "
                       "intermediate.int_identity__clusters").df()
    finally:
        con.close()


def agreement(a: Any, b: Any) -> float:
    """Jaccard of the same-profile record pairs of two assignments (from group sizes)."""
    joined = a.merge(b, on=["source", "record_id"], suffixes=("_a", "_b"))

    def pairs(sizes: Any) -> int:
        return int((sizes * (sizes - 1) // 2).sum())

    both = pairs(joined.groupby(["profile_id_a", "profile_id_b"]).size())
    either = pairs(a.groupby("profile_id").size()) + pairs(b.groupby("profile_id").size()) - both
    return both / either if either else 1.0


def unchanged_profiles_keep_ids(before: Any, delta: Any, full: Any) -> tuple[int, int]:
    """Profiles of ``before`` whose record set is the same after the delta: how many, and how
    many of them carry the same id in the delta's graph and in the full refresh's."""
    def members(frame: Any) -> Any:
        keys = frame["source"] + "\x1f" + frame["record_id"]
        return keys.groupby(frame["profile_id"]).agg(lambda k: frozenset(k))

    old, new, refreshed = members(before), members(delta), members(full)
    by_set_new = {records: pid for pid, records in new.items()}
    by_set_full = {records: pid for pid, records in refreshed.items()}
    same = [(pid, records) for pid, records in old.items() if records in by_set_new]
    kept = sum(by_set_new[r] == pid and by_set_full.get(r) == pid for pid, r in same)
    return len(same), kept


def bare_baseline(home: Path) -> dict[str, Any]:
    """Bare Splink predict + cluster over the person nodes (identity_stage --step splink,
    with the model the full run trained) and a bare DuckDB read of the landing files."""
    import duckdb

    model = sorted((home / "models" / "identity").glob("model-*.json"))[-1]
    shutil.copy(model, home / "model.json")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "identity_stage.py"),
                          "--step", "splink", "--dir", str(home)],
                         check=True, capture_output=True, text=True)
    splink = json.loads(out.stdout.strip().splitlines()[-1])
    con = duckdb.connect(":memory:")
    started = time.perf_counter()
    rows = 0
    for folder in sorted((home / "landing").iterdir()):
        for path in sorted(folder.glob("*")):
            reader = "read_json_auto" if path.suffix == ".jsonl" else "read_csv_auto"
            rows += int(con.sql(f"SELECT count(*) FROM {reader}('{path}')").fetchall()[0][0])
    read_seconds = time.perf_counter() - started
    return {"splink_seconds": round(splink["seconds"], 1), "splink_peak_gib": splink["peak_gib"],
            "duckdb_read_seconds": round(read_seconds, 1), "landing_rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=72_000)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cdp-bench-delta"))
    args = parser.parse_args()
    from cdp.demo.generator import generate
    from cdp.demo.model import REFERENCE_DATE
    from cdp.settings import data_paths

    if args.dir.exists():
        shutil.rmtree(args.dir)
    home = args.dir / "home"
    started = time.perf_counter()
    generate(data_paths(home).ensure(), people=args.people, seed=42, noise="default")
    print(f"generated {args.people:,} people in {time.perf_counter() - started:.0f} s",
          flush=True)
    # without the generator's truth beside the data, `cdp run` scores nothing after the run
    # (a deployment has no truth): what is left outside the stages is orchestration
    shutil.move(home / "truth", args.dir / "truth")
    full = _run(home, "--as-of", REFERENCE_DATE.isoformat())
    print("full:", json.dumps(full), flush=True)
    before = _graph(home)
    # the next day's deliveries, run on the next day's clock
    day, clock = REFERENCE_DATE.strftime("%Y-%m-%d"), (REFERENCE_DATE + timedelta(days=1))
    written = write_delta(home, args.share, day)
    print("delta deliveries:", json.dumps(written), flush=True)
    delta = _run(home, "--as-of", clock.isoformat())
    print("delta:", json.dumps(delta), flush=True)
    after_delta = _graph(home)
    again = _run(home, "--as-of", clock.isoformat(), "--full-refresh")
    print("full again (--full-refresh):", json.dumps(again), flush=True)
    refreshed = _graph(home)
    same, kept = unchanged_profiles_keep_ids(before, after_delta, refreshed)
    baseline = bare_baseline(home)
    print("baseline:", json.dumps(baseline), flush=True)
    bare = baseline["splink_seconds"] + baseline["duckdb_read_seconds"]
    print()
    print(f"records: {delta['records']:,} after the delta ({sum(written.values()):,} delivered)")
    print("| run | wall s | peak GiB | outside stages s | stages s |")
    print("|---|---|---|---|---|")
    for label, run in (("full", full), ("delta", delta), ("full again", again)):
        stages = ", ".join(f"{k} {v}" for k, v in sorted(run["stages"].items()))
        print(f"| {label} | {run['seconds']} | {run['peak_gib']} | {run['outside_stages']} | "
              f"{stages} |")
    print(f"delta / full: wall {delta['seconds'] / full['seconds']:.2f}, peak memory "
          f"{delta['peak_gib'] / full['peak_gib']:.2f}")
    print(f"full / (bare Splink {baseline['splink_seconds']} s + bare DuckDB read "
          f"{baseline['duckdb_read_seconds']} s): {full['seconds'] / bare:.1f}x (full again: "
          f"{again['seconds'] / bare:.1f}x)")
    print(f"delta touched: {json.dumps(delta['touched'])}")
    print(f"equivalence: pairwise agreement delta vs --full-refresh "
          f"{agreement(after_delta, refreshed):.6f}; profiles unchanged by the delta: {same:,},"
          f" of which keep their id in both: {kept:,}")


if __name__ == "__main__":
    main()
