"""What a trained model fixes: the match prior it implies, and term frequencies stored with it
so that a pair's score depends on the pair and the model only (records arriving later never
move it), without the model file naming any rare value."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from identity import IdentityConfig, resolve, train
from identity.normalise import normalise_records
from identity.splink_model import PRIOR_RULES, TF_MIN_PEOPLE, prior_rules_recall


def test_prior_rules_recall_is_the_share_of_simulated_true_pairs_the_rules_admit() -> None:
    """Inclusion-exclusion over the rules equals counting: columns agree independently with
    probability filled² × m(exact); a pair is admitted when every column of one rule agrees."""
    m_exact = {"email": 0.8, "first_name": 0.85, "phone": 0.6, "last_name": 0.9,
               "birth_date": 0.7}
    filled = {"email": 0.5, "first_name": 1.0, "phone": 0.3, "last_name": 0.95,
              "birth_date_text": 0.6}
    columns = sorted({column for rule in PRIOR_RULES for column in rule})
    rng = np.random.default_rng(3)
    agree = {c: rng.random(400_000) < filled[c] ** 2 * m_exact.get(c, m_exact["birth_date"])
             for c in columns}
    admitted = np.zeros(400_000, dtype=bool)
    for rule in PRIOR_RULES:
        admitted |= np.logical_and.reduce([agree[c] for c in rule])
    assert prior_rules_recall(m_exact, filled) == pytest.approx(admitted.mean(), abs=0.003)
    assert prior_rules_recall({k: 1.0 for k in m_exact}, {k: 1.0 for k in filled}) == \
        pytest.approx(1.0)


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_trained_prior_is_near_the_true_share_of_matching_pairs(fake_1000) -> None:
    """fake_1000: 1,000 records of 251 people, so 0.41 % of all pairs match.  A prior from
    a guessed rule recall of 0.8 said 0.077 % and true pairs with two typos fell below the
    threshold (F1 0.928)."""
    records, truth = fake_1000
    sizes = truth["person_id"].value_counts()
    true_share = float((sizes * (sizes - 1) / 2).sum() / (len(truth) * (len(truth) - 1) / 2))
    prior = train(records, None)["splink"]["probability_two_random_records_match"]
    assert true_share / 1.5 <= prior <= true_share * 1.5


def _splink_edges(result) -> pd.Series:
    edges = result.edges[result.edges["edge_type"] == "splink"]
    keys = [tuple(sorted(pair)) for pair in zip(edges["record_id_l"], edges["record_id_r"],
                                                 strict=True)]
    return pd.Series(edges["match_weight"].to_numpy(), index=pd.MultiIndex.from_tuples(keys)
                     ).sort_index()


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_unrelated_arrivals_do_not_move_the_scores_of_existing_pairs(fake_1000,
                                                                     tmp_path: Path) -> None:
    """Records arriving with an existing pair's first name make that name common in the data
    at hand; with frequencies counted per run the pair's weight fell (and a pair near the
    threshold lost its merge).  With the model's frequencies it keeps its score."""
    records, _ = fake_1000
    existing = records.iloc[:600]
    path = tmp_path / "model.json"
    train(existing, path)
    before = _splink_edges(resolve(existing, IdentityConfig(), model_path=path))
    common = existing["first_name"].value_counts().index[0]
    arrivals = records.iloc[600:].assign(first_name=common,
                                         record_id=lambda f: "new-" + f["record_id"])
    after = _splink_edges(resolve(pd.concat([existing, arrivals]), IdentityConfig(),
                                  model_path=path))
    old_pairs = after[[not (a.startswith("new-") or b.startswith("new-"))
                       for a, b in after.index]]
    assert len(before) > 100
    pd.testing.assert_series_equal(old_pairs, before, check_exact=False, rtol=1e-9)


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_model_file_holds_hashed_frequencies_of_values_many_people_share(fake_1000) -> None:
    """One person with a rare surname and many records (a node per cookie) must not put the
    surname into the model file, hashed or not; names many people share are stored."""
    records, _ = fake_1000
    one_person = pd.DataFrame({
        "source": "shop", "record_id": [f"z{i}" for i in range(15)], "first_name": "Quirin",
        "last_name": "Zwanziger", "email": "q.zwanziger@example.org",
        "anonymous_id": [f"cookie-{i}" for i in range(15)]})
    document = train(pd.concat([records, one_person], ignore_index=True), None)
    stored = document["term_frequencies"]
    assert stored["min_people"] == TF_MIN_PEOPLE
    assert set(stored["columns"]) == {"first_name", "last_name", "birth_date_text", "city"}
    text = json.dumps(document)
    assert "zwanziger" not in text.lower()
    assert _hash("zwanziger") not in stored["columns"]["last_name"]["values"]
    assert not any(email in text for email in records["email"].dropna().str.lower())
    # every stored first-name hash belongs to a name held with TF_MIN_PEOPLE+ surnames
    config = IdentityConfig()
    con = duckdb.connect()
    con.register("names", normalise_records(records, config.default_region,
                                            config.min_birth_date)[["first_name", "last_name"]])
    counts = con.sql("SELECT left(sha256(first_name), 16) AS h, count(DISTINCT last_name) "
                     "AS people FROM names WHERE first_name IS NOT NULL GROUP BY 1").df()
    people = dict(zip(counts["h"], counts["people"], strict=True))
    values = stored["columns"]["first_name"]["values"]
    assert values and all(people.get(h, 0) >= TF_MIN_PEOPLE for h in values)
    rare = stored["columns"]["first_name"]["rare"]
    assert 0 < rare < min(values.values())
    assert all(0 < tf < 1 for tf in itertools.chain(values.values(), [rare]))


def _hash(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()[:16]


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_model_auto_retrains_when_the_newest_model_is_from_another_code_version(
        fake_1000, tmp_path: Path) -> None:
    """After an upgrade the saved model has an older version: ``model: auto`` trains a new
    one instead of failing every run until someone retrains by hand."""
    from cdp.settings import REPO_ROOT
    from identity.model_store import save_versioned
    from identity.training import NORMALISED_TABLE, ensure_model

    records, _ = fake_1000
    config = IdentityConfig()
    build = tmp_path / "build.duckdb"
    con = duckdb.connect(str(build))
    con.register("norm", normalise_records(records, config.default_region,
                                           config.min_birth_date))
    con.execute("CREATE SCHEMA intermediate")
    con.execute(f"CREATE TABLE {NORMALISED_TABLE} AS SELECT * FROM norm")
    con.close()
    old = train(records, None)
    old["model_version"] -= 1
    stale = save_versioned(old, tmp_path / "models")
    choice = ensure_model(build, config, tmp_path / "models", REPO_ROOT)
    assert choice.path is not None and choice.path != stale
    assert choice.action.startswith(f"trained (newest model {stale.name} does not fit: "
                                    "unusable (identity model")
    pinned = IdentityConfig(model=str(stale))
    with pytest.raises(ValueError, match="has version"):
        ensure_model(build, pinned, tmp_path / "models", REPO_ROOT)
