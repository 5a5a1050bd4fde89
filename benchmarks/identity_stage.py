"""Identity stage vs bare Splink on ~1,000,000 demo source records (not a test).

Usage::

    .venv/bin/python benchmarks/identity_stage.py [--people 72000] [--dir /tmp/cdp-bench-identity]

Each measured step runs in its own subprocess so ``ru_maxrss`` is that step's peak memory:

* ``identity``: what a daily build does - ``resolve`` (normalise, rules, Splink predict with
  the trained model, guarded clustering, edge table), components of the merged edges,
  persistent ids against the previous assignment.
* ``splink``: bare Splink with the same model - ``linker.inference.predict`` +
  ``linker.clustering.cluster_pairwise_predictions_at_threshold`` - over the person records
  Splink gets inside the identity stage (records carrying a name, identical ones collapsed).
* ``splink_records``: the same bare Splink over every normalised source record (no
  collapsing, no rules): what "just run Splink on the CDP's records" costs.

Loading the landing files is excluded from both timings; training is timed once, separately.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _records(home: Path):
    from identity.landing import records_from_landing

    return records_from_landing(home / "landing")


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def step_train(home: Path) -> dict[str, Any]:
    from identity.config import load_config
    from identity.resolve import train

    records = _records(home)
    started = time.perf_counter()
    train(records, home / "model.json", load_config())
    return {"records": len(records), "seconds": time.perf_counter() - started}


def step_identity(home: Path) -> dict[str, Any]:
    from identity.clustering import components_from_edges
    from identity.config import load_config
    from identity.resolve import resolve
    from identity.stable_ids import assign_persistent_ids

    records = _records(home)
    started = time.perf_counter()
    result = resolve(records, load_config(), model_path=home / "model.json")
    merged = result.edges[result.edges["status"] == "merged"]
    keyed = records[["source", "record_id"]].assign(
        cluster=components_from_edges(records, merged))
    assigned = assign_persistent_ids(keyed, result.clusters)
    seconds = time.perf_counter() - started
    return {"records": len(records), "seconds": seconds, "profiles":
            int(assigned["profile_id"].nunique()), "edges": len(result.edges),
            "resolve_stats": result.stats}


def _bare_splink(frame, home: Path) -> dict[str, Any]:
    """Predict + cluster ``frame`` (``unique_id`` + Splink columns) with the trained model."""
    import duckdb
    from splink import DuckDBAPI, Linker

    from identity.config import load_config
    from identity.splink_model import load_model

    threshold = load_config().match_threshold
    model = load_model(home / "model.json")
    con = duckdb.connect(":memory:")
    started = time.perf_counter()
    linker = Linker(DuckDBAPI(connection=con).register(frame, table_name="nodes"),
                    dict(model["splink"]), log_level=None)
    predictions = linker.inference.predict(threshold_match_probability=threshold,
                                           warning_mode="never")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold)
    count = con.sql(f"select count(distinct cluster_id) from {clusters.physical_name}").fetchall()
    seconds = time.perf_counter() - started
    return {"splink_input_rows": len(frame), "seconds": seconds, "clusters": int(count[0][0])}


def _normalised(home: Path):
    from identity.config import load_config
    from identity.normalise import normalise_records

    return normalise_records(_records(home), load_config().default_region)


def step_splink(home: Path) -> dict[str, Any]:
    from identity.rules import build_nodes
    from identity.splink_model import splink_input

    nodes, _ = build_nodes(_normalised(home))
    return _bare_splink(splink_input(nodes), home)


def step_splink_records(home: Path) -> dict[str, Any]:
    import numpy as np

    from identity.splink_model import SPLINK_COLUMNS

    norm = _normalised(home)
    frame = norm[list(SPLINK_COLUMNS)].copy()
    frame.insert(0, "unique_id", np.arange(len(frame), dtype=np.int64))
    return _bare_splink(frame, home)


STEPS = {"train": step_train, "identity": step_identity, "splink": step_splink,
         "splink_records": step_splink_records}


def _run_step(name: str, home: Path) -> dict[str, Any]:
    """Run one step in a fresh interpreter; its ru_maxrss is that step's peak."""
    out = subprocess.run([sys.executable, __file__, "--step", name, "--dir", str(home)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=72_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cdp-bench-identity"))
    parser.add_argument("--step", choices=sorted(STEPS))
    args = parser.parse_args()
    if args.step:
        result = STEPS[args.step](args.dir)
        print(json.dumps({**result, "peak_gib": round(_peak_gib(), 2)}, default=str))
        return
    from cdp.demo.generator import generate
    from cdp.settings import data_paths

    paths = data_paths(args.dir).ensure()
    marker = args.dir / f"generated-{args.people}"
    if not marker.exists():
        started = time.perf_counter()
        generate(paths, people=args.people, seed=42, noise="default")
        marker.write_text("ok")
        print(f"generated {args.people:,} people in {time.perf_counter() - started:.0f} s")
    figures = {name: _run_step(name, args.dir) for name in STEPS}
    identity, splink, raw = figures["identity"], figures["splink"], figures["splink_records"]
    print(json.dumps(figures, indent=2, default=str))
    print(f"records: {identity['records']:,}  Splink input rows: {splink['splink_input_rows']:,}")
    print(f"train (once): {figures['train']['seconds']:.1f} s, peak {figures['train']['peak_gib']}"
          " GiB")
    print(f"identity stage: {identity['seconds']:.1f} s, peak {identity['peak_gib']} GiB")
    print(f"bare Splink predict + cluster: {splink['seconds']:.1f} s, peak "
          f"{splink['peak_gib']} GiB")
    print(f"bare Splink on all {raw['splink_input_rows']:,} records: {raw['seconds']:.1f} s, "
          f"peak {raw['peak_gib']} GiB, {raw['clusters']:,} clusters")
    print(f"ratio identity / bare Splink (person nodes): "
          f"{identity['seconds'] / splink['seconds']:.2f}x, "
          f"(all records): {identity['seconds'] / raw['seconds']:.2f}x "
          "(target <= 1.5x, peak < 8 GiB)")


if __name__ == "__main__":
    main()
