"""Identity resolution on public labelled data nobody here wrote, through the product's own
"bring your own source" path: a registry entry, landing files, `cdp run`, `cdp identity evaluate`,
with the product's defaults (only the mapping is written), next to bare Splink with the settings
of Splink's own example for the data set, on the same fields, in the same invocation.

Datasets (../shared/benchmarks/splink_datasets, MIT): fake_1000 (1,000 records, 251 people) and
historical_figures_with_errors_50k (50,578 records, 5,156 people). Not a test: prints pairwise
precision / recall / F1 and the run times.

    .venv/bin/python benchmarks/public_linkage.py [--dataset fake_1000|historical_50k|all]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cdp.settings import REPO_ROOT
from identity.evaluate import Metrics, evaluate

DATA = REPO_ROOT.parent / "shared" / "benchmarks" / "splink_datasets"

DATASETS = {
    "fake_1000": {
        "file": DATA / "fake_1000.csv",
        "read": lambda path: pd.read_csv(path),
        "entry": """
  fake_1000:
    kind: offline
    format: csv
    path: "*.csv"
    record_key: unique_id
    identity:
      first_name: first_name
      last_name: surname
      birth_date: dob
      city: city
      email: email
""",
    },
    "historical_50k": {
        "file": DATA / "historical_figures_with_errors_50k.parquet",
        "read": lambda path: pd.read_parquet(path),
        "entry": """
  historical_50k:
    kind: offline
    format: parquet
    path: "*.parquet"
    record_key: unique_id
    identity:
      first_name: first_name
      last_name: surname
      birth_date: dob
      city: birth_place
      postcode: postcode_fake
""",
    },
}


def bare_splink_settings(name: str) -> tuple[Any, list[Any], list[Any]]:
    """Splink's documented example for the data set, restricted to the fields the product's
    mapping uses: settings, the prior's deterministic rules, the EM blocking rules."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    if name == "fake_1000":  # Splink's README quickstart, on fake_1000
        return SettingsCreator(
            link_type="dedupe_only",
            comparisons=[cl.NameComparison("first_name"), cl.JaroAtThresholds("surname"),
                         cl.DateOfBirthComparison("dob", input_is_string=True),
                         cl.ExactMatch("city").configure(term_frequency_adjustments=True),
                         cl.EmailComparison("email")],
            blocking_rules_to_generate_predictions=[block_on("first_name", "dob"),
                                                    block_on("surname")],
        ), [block_on("first_name", "surname")], [block_on("first_name", "surname"),
                                                 block_on("email")]
    # Splink's example "Linking a dataset of real historical persons"
    # (deduplicate_50k_synthetic), without occupation, which the product's mapping leaves out
    return SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("substr(first_name,1,3)", "substr(surname,1,4)"),
            block_on("surname", "dob"), block_on("first_name", "dob"),
            block_on("postcode_fake", "first_name"), block_on("postcode_fake", "surname"),
            block_on("dob", "birth_place"), block_on("substr(postcode_fake,1,3)", "dob"),
            block_on("substr(postcode_fake,1,3)", "first_name"),
            block_on("substr(postcode_fake,1,3)", "surname"),
            block_on("substr(first_name,1,2)", "substr(surname,1,2)", "substr(dob,1,4)")],
        comparisons=[
            cl.ForenameSurnameComparison(
                "first_name", "surname",
                forename_surname_concat_col_name="first_name_surname_concat"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode_fake"),
            cl.ExactMatch("birth_place").configure(term_frequency_adjustments=True)],
    ), [block_on("first_name", "surname", "dob"),
        block_on("substr(first_name,1,2)", "surname", "substr(postcode_fake,1,2)"),
        block_on("dob", "postcode_fake")], [block_on("first_name", "surname"),
                                            block_on("dob")]


def bare_splink(name: str) -> tuple[Metrics, float]:
    """Pairwise figures of bare Splink (documented settings, clusters at p >= 0.95) and its
    seconds from reading the file to the clusters."""
    from splink import DuckDBAPI, Linker

    started = time.perf_counter()
    frame = DATASETS[name]["read"](DATASETS[name]["file"])
    frame["first_name_surname_concat"] = frame["first_name"] + " " + frame["surname"]
    settings, prior_rules, em_rules = bare_splink_settings(name)
    linker = Linker(DuckDBAPI().register(frame), settings)
    linker.training.estimate_probability_two_random_records_match(
        prior_rules, recall=0.7 if name == "fake_1000" else 0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6 if name == "fake_1000"
                                                     else 5e6)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=name != "fake_1000")
    predictions = linker.inference.predict(threshold_match_weight=-5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, 0.95).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    metrics = evaluate(
        pd.DataFrame({"source": name, "record_id": clusters["unique_id"].astype(str),
                      "profile_id": clusters["cluster_id"].astype(str)}),
        pd.DataFrame({"source": name, "record_id": frame["unique_id"].astype(str),
                      "person_id": frame["cluster"].astype(str)}))
    return metrics, seconds


def run(name: str, workdir: Path) -> tuple[dict[str, Any], float]:
    """``cdp run`` with defaults on the data set as a registered source, then
    ``cdp identity evaluate``: the figures and the run's seconds."""
    spec = DATASETS[name]
    home, config = workdir / name / "home", workdir / name / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    with open(config / "sources.yml", "a") as registry:
        registry.write(spec["entry"])
    landing = home / "landing" / name
    landing.mkdir(parents=True)
    shutil.copy(spec["file"], landing / spec["file"].name)
    truth = workdir / name / "truth.csv"
    duckdb.sql(
        f"COPY (SELECT '{name}' AS source, CAST(unique_id AS VARCHAR) AS record_id, "
        f"CAST(\"cluster\" AS VARCHAR) AS person_id FROM '{spec['file']}') TO '{truth}' (HEADER)"
    )
    env = {**os.environ, "CDP_CONFIG": str(config), "CDP_HOME": str(home)}
    cdp = str(Path(sys.executable).parent / "cdp")
    started = time.perf_counter()
    # The demo sources stay registered but get no files: their raw tables are simply empty.
    done = subprocess.run([cdp, "run", "--home", str(home)], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"{name}: cdp run failed:\n{done.stdout[-4000:]}")
    seconds = time.perf_counter() - started
    print(f"\n{name}: cdp run {seconds:.1f} s")
    for stats in sorted(home.rglob("identity.json")):  # the run's identity stage report
        report = json.loads(stats.read_text())
        print(f"{name}: model {report.get('model_action')}; refused edges by reason "
              f"{report.get('refused_edges') or 'none'}")
    figures = workdir / name / "figures.json"
    subprocess.run([cdp, "identity", "evaluate", "--truth", str(truth), "--home", str(home),
                    "--json", str(figures)], env=env, check=True)
    return json.loads(figures.read_text()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cdp-public-") as tmp:
        for name in DATASETS if args.dataset == "all" else [args.dataset]:
            product, product_seconds = run(name, Path(tmp))
            bare, bare_seconds = bare_splink(name)
            rows.append((name, product, product_seconds, bare, bare_seconds))
    print("\n| data set | product P / R / F1 | `cdp run` s | bare Splink P / R / F1 | bare s |")
    print("|---|---|---|---|---|")
    for name, product, product_seconds, bare, bare_seconds in rows:
        print(f"| {name} | {product['precision']:.3f} / {product['recall']:.3f} / "
              f"{product['f1']:.3f} | {product_seconds:.0f} | {bare.precision:.3f} / "
              f"{bare.recall:.3f} / {bare.f1:.3f} | {bare_seconds:.0f} |")


if __name__ == "__main__":
    main()
