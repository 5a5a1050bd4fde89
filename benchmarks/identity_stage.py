"""Identity stage vs bare Splink on ~1,000,000 demo source records (not a test).

Usage::

    .venv/bin/python benchmarks/identity_stage.py [--people 72000] [--dir /tmp/cdp-bench-identity]

Each measured step runs in its own subprocess so ``ru_maxrss`` is that step's peak memory:

* ``identity``: what a daily build does - normalise once (``int_identity__normalised``),
  ``link`` (rules, Splink predict with the trained model - in a worker thread while the rule
  edges are built -, guarded clustering, edge table; ``int_identity__links``), components of
  the merged edges and persistent ids against the previous assignment
  (``int_identity__clusters``).
* ``splink``: bare Splink with the same model - ``linker.inference.predict`` +
  ``linker.clustering.cluster_pairwise_predictions_at_threshold`` - over the person records
  Splink gets inside the identity stage (records carrying a name, identical ones collapsed).
* ``splink_records``: the same bare Splink over every normalised source record (no
  collapsing, no rules): what "just run Splink on the CDP's records" costs.

Loading the landing files is excluded from both timings; training is timed once, separately.
Both sides are scored against the generator's ground truth (not timed), so the output shows
what each buys.

The headline comparison is the identity stage against bare Splink on the *same input records*
(``splink_records``).  Bare Splink there starts from already normalised records, so the output
also shows the time to normalise them and the ratio against normalise + bare Splink; the
identity stage's own time is broken down per phase (``phases``).
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
CONFIG = ROOT / "config"


def _records(home: Path):
    from identity.landing import records_from_landing

    return records_from_landing(home / "landing", CONFIG / "sources.yml")


def _config():
    from identity.config import load_config

    return load_config(CONFIG / "identity.yml")


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def step_train(home: Path) -> dict[str, Any]:
    from identity.resolve import train

    records = _records(home)
    started = time.perf_counter()
    train(records, home / "model.json", _config())
    return {"records": len(records), "seconds": time.perf_counter() - started}


def step_identity(home: Path) -> dict[str, Any]:
    from identity.clustering import components_from_edges
    from identity.normalise import normalise_records
    from identity.resolve import link
    from identity.stable_ids import assign_persistent_ids

    records, config = _records(home), _config()
    started = time.perf_counter()
    norm = normalise_records(records, config.default_region, config.min_birth_date)
    normalised = time.perf_counter()
    count = len(records)
    del records  # as in a build: the links model holds the normalised records only
    result = link(norm, config, model_path=home / "model.json")
    linked = time.perf_counter()
    keys = norm[["source", "record_id"]]
    merged = result.edges[result.edges["status"] == "merged"]
    keyed = keys.assign(cluster=components_from_edges(keys, merged))
    components = time.perf_counter()
    first = assign_persistent_ids(keyed)  # untimed: the previous build's assignment
    again = time.perf_counter()
    assigned = assign_persistent_ids(keyed, first)
    finished = time.perf_counter()
    peak = _peak_gib()  # before the (untimed) scoring below
    quality = _quality(home, assigned)
    phases = {"normalise": round(normalised - started, 2)}
    phases |= {phase: result.stats.get(f"seconds_{phase}") for phase in PHASES[1:-2]}
    phases["components"] = round(components - linked, 2)
    phases["persistent_ids"] = round(finished - again, 2)
    seconds = (finished - started) - (again - components)
    return {"records": count, "seconds": seconds, "profiles":
            int(assigned["profile_id"].nunique()), "edges": len(result.edges),
            "phases": phases, "link_stats": result.stats, "quality": quality,
            "peak_gib": round(peak, 2)}


# identity stage phases: normalising once (int_identity__normalised), link's own timings
# (stats ``seconds_<phase>``, int_identity__links), then the clusters model's work
# (components of the merged edges, persistent ids)
PHASES = ("normalise", "nodes", "rules", "splink_wait", "clustering", "output", "components",
          "persistent_ids")


def _quality(home: Path, clusters) -> dict[str, float]:
    """Pairwise precision / recall / F1 of ``clusters`` (source, record_id, profile_id)
    against the generator's ground truth (not timed)."""
    import pandas as pd

    from identity.evaluate import evaluate

    metrics = evaluate(clusters, pd.read_csv(home / "truth" / "demo_truth.csv", dtype=str))
    return {"precision": round(metrics.precision, 4), "recall": round(metrics.recall, 4),
            "f1": round(metrics.f1, 4)}


def _bare_splink(frame, home: Path) -> dict[str, Any]:
    """Predict + cluster ``frame`` (``unique_id`` + Splink columns) with the trained model."""
    import duckdb
    from splink import DuckDBAPI, Linker

    from identity.splink_model import load_model

    threshold = _config().match_threshold
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
    labels = con.sql(f"select unique_id, cluster_id from {clusters.physical_name}").df()
    return {"splink_input_rows": len(frame), "seconds": seconds, "clusters": int(count[0][0]),
            "labels": labels}


def _normalised(home: Path):
    from identity.normalise import normalise_records

    config = _config()
    return normalise_records(_records(home), config.default_region, config.min_birth_date)


def step_splink(home: Path) -> dict[str, Any]:
    from identity.rules import build_nodes
    from identity.splink_model import splink_input

    nodes, _ = build_nodes(_normalised(home))
    result = _bare_splink(splink_input(nodes), home)
    del result["labels"]  # person nodes only: no record-level clustering to score
    return result


def step_splink_records(home: Path) -> dict[str, Any]:
    import numpy as np

    from identity.normalise import normalise_records
    from identity.splink_model import splink_input

    records = _records(home)
    config = _config()
    started = time.perf_counter()
    norm = normalise_records(records, config.default_region, config.min_birth_date)
    normalise_seconds = time.perf_counter() - started
    # every record as its own Splink row (the shape splink_input gives the model)
    frame = splink_input(norm.assign(node_id=np.arange(len(norm), dtype=np.int64),
                                     has_name=True))
    result = _bare_splink(frame, home)
    result["peak_gib"] = round(_peak_gib(), 2)  # before the (untimed) scoring below
    labels = result.pop("labels").set_index("unique_id")["cluster_id"]
    clusters = norm[["source", "record_id"]].assign(
        profile_id=labels.reindex(np.arange(len(norm))).astype("string").to_numpy())
    return {**result, "normalise_seconds": normalise_seconds,
            "quality": _quality(home, clusters)}


def _scores(quality: dict[str, float]) -> str:
    return (f"P {quality['precision']:.3f} R {quality['recall']:.3f} F1 {quality['f1']:.3f} "
            "against the generator's truth")


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
        print(json.dumps({"peak_gib": round(_peak_gib(), 2), **result}, default=str))
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
    print(f"identity stage: {identity['seconds']:.1f} s, peak {identity['peak_gib']} GiB, "
          f"{_scores(identity['quality'])}")
    print("  " + ", ".join(f"{phase} " + ("n/a" if seconds is None else f"{seconds:.1f} s")
                           for phase, seconds in identity["phases"].items()))
    print("  (rules = rule edges, built while Splink scores the person nodes in a worker "
          "thread; splink_wait = what is left of Splink after that; clustering and output = "
          "guarded clustering and the record-level edge table)")
    print(f"bare Splink predict + cluster: {splink['seconds']:.1f} s, peak "
          f"{splink['peak_gib']} GiB")
    print(f"bare Splink on all {raw['splink_input_rows']:,} records: {raw['seconds']:.1f} s, "
          f"peak {raw['peak_gib']} GiB, {raw['clusters']:,} clusters, "
          f"{_scores(raw['quality'])}; normalising those "
          f"records first (which Splink needs, not timed above): {raw['normalise_seconds']:.1f} s")
    with_norm = raw["seconds"] + raw["normalise_seconds"]
    print(f"ratio identity stage / bare Splink on the same {identity['records']:,} input "
          f"records: {identity['seconds'] / raw['seconds']:.2f}x (target <= 1.5x, peak < 8 GiB); "
          f"/ normalise + bare Splink ({with_norm:.1f} s): {identity['seconds'] / with_norm:.2f}x")
    print(f"ratio identity stage / bare Splink on the {splink['splink_input_rows']:,} person "
          f"nodes only: {identity['seconds'] / splink['seconds']:.2f}x (Splink alone does "
          "not normalise, collapse records, apply rules or produce the edge table)")


if __name__ == "__main__":
    main()
