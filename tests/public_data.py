"""Public labelled benchmark data (``../shared/benchmarks``, see its README), read as the
identity tests use it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cdp.settings import REPO_ROOT

BENCHMARKS = REPO_ROOT.parent / "shared" / "benchmarks"
FAKE_1000 = BENCHMARKS / "splink_datasets" / "fake_1000.csv"
HISTORICAL_50K = BENCHMARKS / "splink_datasets" / "historical_figures_with_errors_50k.parquet"


def benchmark_file(path: Path) -> Path:
    """``path``, skipping the test only when the benchmark folder is absent altogether (a
    missing file inside it is an error)."""
    if not BENCHMARKS.is_dir():
        pytest.skip(f"public benchmark data not found at {BENCHMARKS}")
    return path


def fake_1000_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """fake_1000 as identity records of one source, and its truth (``person_id``)."""
    raw = pd.read_csv(benchmark_file(FAKE_1000), dtype=str)
    records = pd.DataFrame({
        "source": "fake_1000", "record_id": raw["unique_id"], "first_name": raw["first_name"],
        "last_name": raw["surname"], "birth_date": raw["dob"], "city": raw["city"],
        "email": raw["email"],
    })
    truth = pd.DataFrame({"source": "fake_1000", "record_id": raw["unique_id"],
                          "person_id": raw["cluster"]})
    return records, truth
