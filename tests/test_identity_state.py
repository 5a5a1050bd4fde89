"""The identity state a build keeps between runs (identity.state): a run that re-uses it
gives exactly what a run from scratch gives, while normalising and scoring only what
changed.  Each case compares the incremental result with a full recompute."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from identity import IdentityConfig, train
from identity.normalise import normalise_records
from identity.resolve import Linkage, link
from identity.state import (
    RUN_COLUMN,
    VERSION_COLUMN,
    ScoreMemo,
    clear_memo,
    load_memo,
    normalise_incrementally,
    save_memo,
)

CONFIG = IdentityConfig()


@pytest.fixture(scope="module")
def fake(fake_1000, tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    records, _ = fake_1000
    model = tmp_path_factory.mktemp("model") / "model.json"
    train(records, model)
    return records, model


def _norm(records: pd.DataFrame) -> pd.DataFrame:
    return normalise_records(records, CONFIG.default_region, CONFIG.min_birth_date)


def _edges(linkage: Linkage) -> pd.DataFrame:
    return linkage.edges.sort_values(["source_l", "record_id_l", "source_r", "record_id_r",
                                      "rule"], na_position="first").reset_index(drop=True)


def _after(records: pd.DataFrame, memo: ScoreMemo, model: Path) -> Linkage:
    return link(_norm(records), CONFIG, model_path=model, memo=memo)


def _empty_memo() -> ScoreMemo:
    return ScoreMemo("", CONFIG.match_threshold)


def _assert_same_as_full(incremental: Linkage, records: pd.DataFrame, model: Path) -> None:
    full = link(_norm(records), CONFIG, model_path=model)
    pd.testing.assert_frame_equal(_edges(incremental), _edges(full))


@pytest.mark.integration  # Splink on fake_1000 data, a few seconds
def test_add_only_delta_scores_only_new_nodes_and_equals_full(fake) -> None:
    records, model = fake
    first = _after(records.iloc[:900], _empty_memo(), model)
    assert first.memo is not None and first.stats["nodes_from_memo"] == 0
    second = _after(records, first.memo, model)
    assert 0 < second.stats["nodes_scored"] <= 100
    assert second.stats["nodes_from_memo"] >= 800
    _assert_same_as_full(second, records, model)


@pytest.mark.integration
def test_unchanged_redelivery_scores_nothing(fake) -> None:
    records, model = fake
    first = _after(records, _empty_memo(), model)
    again = _after(records, first.memo, model)
    assert again.stats["nodes_scored"] == 0 and again.stats["pairs_scored"] == 0
    assert again.stats["pairs_dropped"] == 0
    pd.testing.assert_frame_equal(_edges(again), _edges(first))


@pytest.mark.integration
def test_changed_and_removed_records_replace_their_scores(fake) -> None:
    """A record re-delivered with another name leaves its old node's pairs behind (a
    split), one given a duplicate's values joins it (a merge), one erased takes its pairs
    with it: each time the same edges as a run from scratch."""
    records, model = fake
    first = _after(records, _empty_memo(), model)
    changed = records.copy()
    changed.loc[changed.index[:20], "first_name"] = "Zebulon"          # split off
    identity = ["first_name", "last_name", "birth_date", "city", "email"]
    changed.loc[changed.index[20:30], identity] = \
        records.loc[records.index[30:40], identity].to_numpy()         # merge into others
    changed = changed.drop(changed.index[40:60])                        # erased
    after = _after(changed, first.memo, model)
    assert after.stats["pairs_dropped"] > 0 and after.stats["nodes_scored"] > 0
    assert after.stats["nodes"] < first.stats["nodes"] - 20 + 5  # 20 erased, 10 merged
    _assert_same_as_full(after, changed, model)


@pytest.mark.integration
def test_another_model_or_threshold_starts_the_memo_afresh(fake, tmp_path: Path) -> None:
    records, model = fake
    first = _after(records, _empty_memo(), model)
    assert first.memo is not None
    other = tmp_path / "other.json"
    train(records.iloc[:700], other)
    after = link(_norm(records), CONFIG, model_path=other, memo=first.memo)
    assert after.stats["nodes_from_memo"] == 0
    _assert_same_as_full(after, records, other)


@pytest.mark.integration
def test_the_memo_is_stored_per_threshold(fake, tmp_path: Path) -> None:
    records, model = fake
    first = _after(records.iloc[:300], _empty_memo(), model)
    assert first.memo is not None
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    save_memo(con, first.memo, "run-1")
    kept = load_memo(con, CONFIG.match_threshold)
    assert kept.model == first.memo.model and len(kept.scored) == len(first.memo.scored)
    assert set(kept.scored_by_run) == {"run-1"} and len(kept.pairs) == len(first.memo.pairs)
    assert len(load_memo(con, 0.95).scored) == 0  # another threshold: nothing kept
    clear_memo(con)
    assert len(load_memo(con, CONFIG.match_threshold).scored) == 0


def test_normalise_incrementally_reuses_unchanged_records_only() -> None:
    con = duckdb.connect()
    records = pd.DataFrame({
        "source": ["crm"] * 3, "record_id": ["1", "2", "3"],
        "record_ts": pd.to_datetime(["2026-01-01"] * 3),
        "email": ["Anna.Berg+news@Example.org", None, "x@y.de"],
        "first_name": ["Anna", "Bernd", None], "last_name": ["Berg", "Ott", None]})
    con.register("records_v1", records)
    first = normalise_incrementally(con, con.table("records_v1"), None, CONFIG, "run-1")
    assert (first.normalised, first.reused) == (3, 0)
    first.relation.create("previous")
    delta = records.copy()
    delta.loc[1, "first_name"] = "Berndt"                       # changed
    delta = pd.concat([delta.drop(index=2), pd.DataFrame({     # 3 removed, 4 new
        "source": ["crm"], "record_id": ["4"], "record_ts": pd.to_datetime(["2026-01-02"]),
        "email": ["neu@example.org"], "first_name": ["Neu"], "last_name": ["Mann"]})])
    con.register("records_v2", delta)
    second = normalise_incrementally(con, con.table("records_v2"), "previous", CONFIG,
                                     "run-2")
    assert (second.normalised, second.reused) == (2, 1)
    got = second.relation.df().sort_values("record_id").reset_index(drop=True)
    want = normalise_records(delta, CONFIG.default_region, CONFIG.min_birth_date)
    assert list(got["record_id"]) == ["1", "2", "4"]
    for column in want.columns:
        assert list(got[column].astype("string").fillna("<null>")) == \
            list(want.sort_values("record_id")[column].astype("string").fillna("<null>")), column
    assert got[VERSION_COLUMN].notna().all()
    assert list(got[RUN_COLUMN]) == ["run-1", "run-2", "run-2"]  # 1 kept, 2 changed, 4 new
    again = normalise_incrementally(con, con.table("records_v1"), "previous",
                                    CONFIG.model_copy(update={"default_region": "AT"}), "run-3")
    assert again.reused == 0  # other settings: everything normalised again
    assert np.array_equal(np.sort(con.table("previous").df()["record_id"]), ["1", "2", "3"])


# ------------------------------------------------------------------ in a real build (dbt)

def _build(home: Path, run_id: str, full_refresh: bool = False) -> dict[str, object]:
    """Ingest, identity training step and dbt build as a run does them (no gate, publish or
    export: the identity state lives in the build file); the run's identity report."""
    from datetime import UTC, datetime

    from cdp.context import RunContext
    from cdp.pipeline import (
        build,
        ingest_source,
        read_stage_reports,
        registered_sources,
        train_identity,
    )

    ctx = RunContext.at_edge(home, run_id=run_id, as_of=datetime(2026, 12, 1, tzinfo=UTC))
    for source in registered_sources(ctx):
        ingest_source(ctx, source)
    train_identity(ctx, full_refresh)
    build(ctx, full_refresh)
    return dict(read_stage_reports(ctx.paths, run_id)["identity"])


def _identity_tables(home: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from cdp.settings import data_paths

    con = duckdb.connect(str(data_paths(home).build_db), read_only=True)
    try:
        links = con.sql("SELECT * EXCLUDE (comparison_weights) FROM "
                        "intermediate.int_identity__links ORDER BY ALL").df()
        # previous_profile_id describes the step from the run before, not the state
        clusters = con.sql("SELECT source, record_id, profile_id FROM "
                           "intermediate.int_identity__clusters ORDER BY ALL").df()
    finally:
        con.close()
    return links, clusters


def _crm_delta(home: Path) -> None:
    """A later CRM export: five customers changed (a new surname or a new e-mail) and three
    new ones, as the CRM sends them (rows changed since its last export)."""
    import csv

    crm = home / "landing" / "crm_customers"
    with (crm / "crm_export.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    changed = [dict(row, updated_at="30.11.2026 10:00") for row in rows[:8]]
    for row in changed[:3]:
        row["nachname"] = "Zwanziger"
    for row in changed[3:5]:
        row["email"] = "neu." + row["email"] if row["email"] else "neu@example.org"
    for number, row in enumerate(changed[5:], start=1):
        row.update(crm_row_id=f"CRM-NEW-{number}", customer_number=f"9900000{number}",
                   vorname="Quirin", nachname=f"Neuland{number}", email="",
                   telefon="", kundenkarte="")
    with (crm / "crm_delta.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=";")
        writer.writeheader()
        writer.writerows(changed)


@pytest.mark.integration  # three small real builds, ~1 min
def test_delta_build_equals_a_full_refresh_and_an_unchanged_run_touches_nothing(
        tmp_path: Path) -> None:
    from cdp.demo.generator import generate
    from cdp.settings import data_paths

    home = tmp_path / "home"
    generate(data_paths(home).ensure(), people=120, seed=5)
    first = _build(home, "run-1")
    assert first["touched"]["records_normalised"] == first["records"]
    _crm_delta(home)
    delta = _build(home, "run-2")
    touched = delta["touched"]
    assert touched["records_normalised"] == 8  # 5 changed, 3 new
    assert 0 < touched["person_nodes_scored"] < touched["person_nodes"] / 4
    incremental = _identity_tables(home)
    full = _build(home, "run-3", full_refresh=True)
    assert full["touched"]["records_normalised"] == full["records"]
    assert full["touched"]["person_nodes_scored"] == full["touched"]["person_nodes"]
    refreshed = _identity_tables(home)
    pd.testing.assert_frame_equal(incremental[0], refreshed[0])
    pd.testing.assert_frame_equal(incremental[1], refreshed[1])
    again = _build(home, "run-4")
    assert again["touched"] == {**again["touched"], "records_normalised": 0,
                                "person_nodes_scored": 0, "splink_pairs_scored": 0}
    pd.testing.assert_frame_equal(_identity_tables(home)[1], refreshed[1])


def test_a_birth_date_not_believed_yet_is_normalised_again_every_run() -> None:
    """Whether a date is believed depends on the day (a future date is not): such a row's
    version cannot say when it would change, so it is never taken from the previous table."""
    con = duckdb.connect()
    records = pd.DataFrame({
        "source": ["crm"] * 2, "record_id": ["1", "2"],
        "record_ts": pd.to_datetime(["2026-01-01"] * 2), "first_name": ["Anna", "Bernd"],
        "birth_date": pd.to_datetime(["2999-01-01", "1980-05-06"]).date})
    con.register("records", records)
    normalise_incrementally(con, con.table("records"), None, CONFIG, "run-1").relation.create(
        "previous")
    again = normalise_incrementally(con, con.table("records"), "previous", CONFIG, "run-2")
    assert (again.normalised, again.reused) == (1, 1)
