"""A first run on someone else's data publishes with the shipped defaults (issue 16).

One real pipeline run (``run_pipeline``, what ``cdp run`` calls: the DAG in-process) on a
configuration with every demo source removed and one user source added: 200 member records,
90 % of them people seen once, 10 % of the birth dates impossible. It must publish with the
shipped quality.yml. The drift checks are then shown able to fail, by the real gate on that
run's real build and publication: a second build whose singleton share jumps, two
authoritative customer numbers in one profile.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from small_builds import configuration_with_only

from cdp.run import RunSummary, run_pipeline
from cdp.settings import data_paths
from core.paths import DataPaths
from ingest.registry import load_registry
from quality.gate import QualityGateFailed, run_gate
from quality.thresholds import Thresholds, load_thresholds

pytestmark = pytest.mark.integration

SOURCE = "members"
MEMBERS = f"""sources:
  {SOURCE}:
    kind: offline
    format: csv
    delivery: snapshot
    path: "*.csv"
    record_key: member_id
    identity:
      first_name: given
      last_name: family
      email: mail
      birth_date: born
      city: town
      customer_number: member_no
"""
PEOPLE, TWICE = 180, 20  # 180 people, 20 of them with a second record: 200 records


def _user_configuration(folder: Path) -> Path:
    """The shipped configuration, its sources.yml holding only the user's source."""
    return configuration_with_only(folder, MEMBERS)


def _land_members(paths: DataPaths) -> None:
    """200 records: every person once, 20 of them twice (same e-mail, other member no)."""
    rows = []
    for person in range(PEOPLE):
        born = f"19{50 + person % 45}-{1 + person % 12:02d}-{1 + person % 28:02d}"
        row = {"member_id": f"M{person}", "given": f"Given{person % 23}",
               "family": f"Family{person}", "mail": f"member{person}@example.org",
               "born": "1970-13-45" if person % 10 == 0 else born, "town": "Berlin",
               "member_no": f"N{person}"}
        rows.append(row)
        if person < TWICE:
            rows.append({**row, "member_id": f"M{person}b", "member_no": f"N{person}b"})
    landing = paths.landing / SOURCE
    landing.mkdir(parents=True)
    with open(landing / "members.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_users_first_run_publishes_and_its_drift_checks_can_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pipeline run (the slow part) serves every check, so xdist never runs it twice."""
    config = _user_configuration(tmp_path / "config")
    paths = data_paths(tmp_path / "home").ensure()
    _land_members(paths)
    monkeypatch.setenv("CDP_CONFIG", str(config))
    assert [spec.name for spec in load_registry(config / "sources.yml")] == [SOURCE]
    assert load_thresholds(config / "quality.yml") == Thresholds()  # the shipped defaults

    summary = run_pipeline(paths)

    _published_on_the_first_run(paths, summary)
    _singleton_jump_fails(paths, config, tmp_path / "jump")
    _only_authoritative_customer_numbers_count(paths, config, tmp_path / "numbers")


def _published_on_the_first_run(paths: DataPaths, summary: RunSummary) -> None:
    """(a) a mostly-singleton source, (b) no demo source: published with the defaults."""
    assert summary.succeeded, (summary.failed_tasks, summary.errors)
    assert summary.published == paths.published_db
    assert summary.records_per_source == {SOURCE: PEOPLE + TWICE}
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        row = con.execute(
            "SELECT avg(CAST(n = 1 AS DOUBLE)) FROM (SELECT count(*) AS n "
            "FROM main.fct_identity_graph GROUP BY profile_id)").fetchone()
    assert row is not None
    share = row[0]
    assert share == pytest.approx((PEOPLE - TWICE) / PEOPLE)  # 0.89: far above the old 0.6
    quality = summary.quality or {}
    notes = " ".join(quality.get("notes", []))
    # the first publication records what it saw, naming the setting the next run is held to
    assert f"singleton share {share:.4f} recorded as the calibration" in notes
    assert "singleton_share_max_change" in notes
    suites = {s["suite"]: s for s in quality["suites"]}
    # e-mail and birth date (10 % impossible) pass the first load's floor; the checks ran
    formats = suites[f"raw.{SOURCE}.formats"]
    assert (formats["passed"], formats["failed"]) == (2, 0)
    assert suites["identity.fct_identity_graph.shared_links"]["passed"] == 1


def _second_build(paths: DataPaths, folder: Path, *statements: str) -> Path:
    """A copy of the run's build file as a second build would have left it."""
    folder.mkdir()
    target = folder / "build.duckdb"
    shutil.copy(paths.build_db, target)
    with duckdb.connect(str(target)) as con:
        for statement in statements:
            con.execute(statement)
    return target


def _gate(paths: DataPaths, config: Path, build: Path, **kwargs: Any) -> None:
    """The real gate on ``build``, against the first run's publication."""
    run_gate(build, ["identity"], build.parent / "reports",
             load_thresholds(config / "quality.yml"), "second",
             sources_config=config / "sources.yml", previous_db=paths.published_db, **kwargs)


def _singleton_jump_fails(paths: DataPaths, config: Path, folder: Path) -> None:
    """(c) a second build whose singleton share jumps fails, naming value and setting."""
    # it linked far more: every record joins its neighbours (M0, M1, M0b, M1b, ...)
    merged = _second_build(
        paths, folder,
        "UPDATE main.fct_identity_graph SET profile_id = 'merged-' || "
        "CAST(CAST(regexp_extract(record_id, '[0-9]+') AS INTEGER) // 2 AS VARCHAR)",
    )
    with pytest.raises(QualityGateFailed) as failed:
        _gate(paths, config, merged)
    [failure] = [f for f in failed.value.result.failures
                 if f.setting == "quality.yml singleton_share_max_change"]
    message = failure.describe()
    assert "observed 0.8889 (allowed 0..0.2)" in message
    assert "singleton share 0.00 vs 0.89 at the previous publication" in message
    assert "(setting: quality.yml singleton_share_max_change)" in message
    assert "example.org" not in message and "Family" not in message  # no personal data


def _only_authoritative_customer_numbers_count(
    paths: DataPaths, config: Path, folder: Path
) -> None:
    """The 20 twice-seen members hold two member numbers each: not authoritative by
    default (identity.yml: crm_customers), so the gate passes; declared authoritative,
    it fails naming the profiles, never the numbers."""
    build = _second_build(paths, folder)
    _gate(paths, config, build, strong_identifiers={"customer_number": ["crm_customers"]})

    with pytest.raises(QualityGateFailed) as failed:
        _gate(paths, config, build, strong_identifiers={"customer_number": [SOURCE]})
    [failure] = failed.value.result.failures
    assert failure.column == "customer_numbers"
    assert failure.setting == "identity.yml strong_identifiers.customer_number"
    assert len(failure.examples) == 5 and "N0" not in failure.describe()
