"""Identity resolution: normalisation, rules, overrides, guards, determinism, evaluation.

Runs real Splink on real (in-memory) DuckDB; data sets are small so the module stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cdp.settings import REPO_ROOT
from identity import IdentityConfig, IdentityConfigError, evaluate, resolve, train
from identity.clustering import birth_dates_conflict, cluster_nodes
from identity.normalise import (
    normalise_birth_date,
    normalise_email,
    normalise_first_name,
    normalise_last_name,
    normalise_phone,
    normalise_postcode,
    normalise_records,
    normalise_street,
    phone_national_digits,
)
from identity.normalise.birth_date import BIRTH_DATE_PARTS
from identity.rules import PRIORITY_SPLINK, build_nodes, rule_edges
from identity.similarity import email_contradicts_name
from identity.splink_model import load_model
from tests.public_data import HISTORICAL_50K, benchmark_file

RULES_ONLY = IdentityConfig(use_splink=False)


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Input frame from partial rows (missing identity columns are null)."""
    return pd.DataFrame(rows)


def profile_of(result, source: str, record_id: str) -> str:
    clusters = result.clusters
    hit = clusters[(clusters["source"] == source) & (clusters["record_id"] == record_id)]
    assert len(hit) == 1
    return str(hit["profile_id"].iloc[0])


# ------------------------------------------------------------------------------ normalise


def test_email_normalisation() -> None:
    out = normalise_email(pd.Series([" Foo+shop@Example.COM ", "foo@example.com", "not-an-email",
                                     None, "", "a@b"]))
    assert out.tolist()[:2] == ["foo@example.com", "foo@example.com"]
    assert out.iloc[2:].isna().all()


@pytest.mark.parametrize("raw", ["0151 23456789", "+49 151 23456789", "0049-151-23456789",
                                 "(0151) 234 567 89"])
def test_phone_variants_become_e164(raw: str) -> None:
    assert normalise_phone(pd.Series([raw]), "DE").iloc[0] == "+4915123456789"


def test_phone_invalid_is_null_and_region_is_configurable() -> None:
    out = normalise_phone(pd.Series(["12", "abc", None, "07911 123456"]), "GB")
    assert out.iloc[:3].isna().all()
    assert out.iloc[3] == "+447911123456"
    # North American numbers written nationally are not read as German numbers
    assert normalise_phone(pd.Series(["(404) 727-1863"]), "DE").iloc[0] == "+14047271863"


def test_phone_uses_record_country_before_default() -> None:
    out = normalise_phone(pd.Series(["0664 1234567"]), "DE", regions=pd.Series(["AT"]))
    assert out.iloc[0] == "+436641234567"


def test_name_normalisation() -> None:
    last = normalise_last_name(pd.Series(["Müller", "Mueller", "MULLER ", "Straße"]))
    assert last.tolist() == ["muller", "muller", "muller", "strasse"]
    first = normalise_first_name(pd.Series(["Bob", "Robert", "Hans", "Sepp", "Dr. Jürgen",
                                            "Anna-Lena", "Chris"]))
    assert first.tolist() == ["robert", "robert", "johannes", "josef", "jurgen", "anna lena",
                              "chris"]  # ambiguous short forms stay as typed


def test_street_postcode_and_birth_date() -> None:
    street, house = normalise_street(pd.Series(["Hauptstraße", "Hauptstrasse 5a", "Hauptstr.",
                                                "haupt str. 12"]))
    assert street.tolist() == ["hauptstr"] * 4
    assert house.tolist()[1:] == ["5a", None, "12"] or house.iloc[1] == "5a"
    codes = normalise_postcode(pd.Series(["1067", " 10115 ", "D-80331", "1217"]),
                               pd.Series(["DE", None, "DE", "AT"]))
    assert codes.tolist() == ["01067", "10115", "80331", "1217"]
    born = normalise_birth_date(pd.Series(["1980-01-31", "31.01.1980", "1900-01-01", "junk",
                                           None, "2999-01-01"]))
    assert born.iloc[0] == dt.date(1980, 1, 31) and born.iloc[1] == dt.date(1980, 1, 31)
    assert born.iloc[2:].isna().all()


def test_normalise_records_accepts_arrow_and_rejects_duplicates() -> None:
    table = pa.table({"source": ["a"], "record_id": ["1"], "email": ["X@Y.DE"]})
    out = normalise_records(table)
    assert out["email"].iloc[0] == "x@y.de"
    with pytest.raises(ValueError, match="duplicate"):
        normalise_records(frame([{"source": "a", "record_id": "1"},
                                 {"source": "a", "record_id": "1"}]))


def test_email_contradicts_name() -> None:
    assert email_contradicts_name("emanuel.pointner@x.de", "dorothea", "pointner")
    assert not email_contradicts_name("dorothea.pointner@x.de", "dorothea", "pointner")
    assert not email_contradicts_name("d.pointner@x.de", "dorothea", "pointner")
    assert not email_contradicts_name("hans.mueller@x.de", "johannes", "muller")


# ---------------------------------------------------------------------------------- rules


def online_offline_person() -> pd.DataFrame:
    """One person seen by every source, linked only through issued/shared identifiers."""
    return frame([
        {"source": "web_events", "record_id": "w1", "anonymous_id": "cookie-1"},
        {"source": "web_events", "record_id": "w2", "anonymous_id": "cookie-1"},
        {"source": "web_events", "record_id": "w3", "anonymous_id": "cookie-1", "user_id": "U1"},
        {"source": "shop_accounts", "record_id": "U1", "user_id": "U1",
         "email": "Anna.Schmidt+shop@example.de", "first_name": "Anna", "last_name": "Schmidt",
         "birth_date": "1985-04-12", "phone": "0151 23456789"},
        {"source": "email_events", "record_id": "e1", "email": "anna.schmidt@example.de"},
        {"source": "email_events", "record_id": "e2", "email": " ANNA.SCHMIDT@example.de"},
        {"source": "crm_customers", "record_id": "c1", "customer_number": "1001",
         "first_name": "Anna", "last_name": "Schmidt", "birth_date": dt.date(1985, 4, 12),
         "phone": "+49 151 23456789", "loyalty_card": "2900 1234"},
        {"source": "pos_orders", "record_id": "o1", "loyalty_card": "29001234"},
        {"source": "pos_orders", "record_id": "o2", "loyalty_card": "29001234"},
        {"source": "support_tickets", "record_id": "t1", "customer_number": "1001",
         "first_name": "Anna"},
        {"source": "consent_log", "record_id": "k1", "phone": "0049-151-23456789"},
        {"source": "web_events", "record_id": "w9", "anonymous_id": "cookie-9"},  # stranger
    ])


def test_rule_edges_link_all_identifiers() -> None:
    result = resolve(online_offline_person(), RULES_ONLY)
    clusters = result.clusters
    assert len(clusters) == 12 and clusters[["source", "record_id"]].duplicated().sum() == 0
    anna = profile_of(result, "shop_accounts", "U1")
    assert (clusters["profile_id"] == anna).sum() == 11
    assert profile_of(result, "web_events", "w9") != anna
    used = set(result.edges.loc[result.edges["status"] == "merged", "rule"])
    assert {"same_user_id", "same_anonymous_id", "same_customer_number", "same_loyalty_card",
            "same_phone", "same_email", "identical_identifiers"} <= used


def test_identical_event_rows_collapse_to_one_node() -> None:
    rows = [{"source": "email_events", "record_id": f"e{i}", "email": "x@y.de"}
            for i in range(500)]
    norm = normalise_records(frame(rows))
    nodes, node_of_record = build_nodes(norm)
    assert len(nodes) == 1 and (node_of_record == 0).all()
    assert int(nodes["n_records"].iloc[0]) == 500


def test_records_holding_names_only_never_collapse_unseen() -> None:
    """Two tickets signed "Anna Berg" (nothing else) are namesakes as often as one person:
    each stays a node of its own for Splink to weigh; with one identifier more (a city is
    none) identical records are one node."""
    signed = [{"source": "support_tickets", "record_id": f"t{i}", "first_name": "Anna",
               "last_name": "Berg", "city": "Köln"} for i in range(3)]
    nodes, node_of_record = build_nodes(normalise_records(frame(signed)))
    assert len(nodes) == 3 and sorted(node_of_record) == [0, 1, 2]
    with_mail = [dict(row, email="anna.berg@example.org") for row in signed]
    nodes, node_of_record = build_nodes(normalise_records(frame(with_mail)))
    assert len(nodes) == 1 and (node_of_record == 0).all()


@pytest.mark.integration  # property test over resolve, ~8 s
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a@x.de", "b@x.de", None]),
                          st.sampled_from(["Anna", "Ben", None]),
                          st.sampled_from(["1984-05-12", None])), min_size=1, max_size=40),
       st.randoms(use_true_random=False))
def test_nodes_numbered_by_identity_values_not_record_order(rows, rng) -> None:
    """One node per distinct identity tuple, numbered in the tuples' sort order: shuffling
    the records renumbers nothing (profile ids and the explain output depend on it)."""
    records = frame([{"source": "s", "record_id": f"r{i}", "email": e, "first_name": f,
                      "birth_date": b} for i, (e, f, b) in enumerate(rows)])
    shuffled = records.sample(frac=1.0, random_state=rng.randint(0, 2**31)).reset_index(
        drop=True)
    per_record = []
    for data in (records, shuffled):
        norm = normalise_records(data)
        nodes, node_of_record = build_nodes(norm)
        values = norm[["email", "first_name", "birth_date"]]
        # nothing but a name (or nothing at all): a node each
        alone = values[["email", "birth_date"]].isna().all(axis=1)
        assert len(nodes) == len(values[~alone].drop_duplicates()) + int(alone.sum())
        per_record.append(dict(zip(norm["record_id"], node_of_record.tolist(), strict=True)))
        tuples = [tuple("" if pd.isna(v) else str(v) for v in row)
                  for row in nodes[["email", "phone", "first_name", "last_name",
                                    "birth_date"]].itertuples(index=False)]
        assert tuples == sorted(tuples)  # missing sorts first, like ""
    assert per_record[0] == per_record[1]


@pytest.mark.parametrize("raw", ["+44 7911 123456", "+39 06 6988 1234", "+1 404 727 1863",
                                 "030 1234567", "+420 601 123 456", "+971 50 123 4567"])
def test_national_digits_match_libphonenumber(raw: str) -> None:
    e164 = normalise_phone(pd.Series([raw]))
    assert e164.notna().all()
    expected = str(phonenumbers.parse(e164.iloc[0], None).national_number)
    assert phone_national_digits(e164).iloc[0] == expected
    assert phone_national_digits(pd.Series([None, "not a phone"], dtype="string")).isna().all()


def test_household_email_does_not_merge_two_people() -> None:
    """Partners sharing one address: different first names and birth dates stay apart; the
    e-mail-only events go to the address owner (the name the address spells)."""
    records = frame([
        {"source": "shop_accounts", "record_id": "U1", "email": "peter.lang@example.de",
         "first_name": "Peter", "last_name": "Lang", "birth_date": "1970-02-03"},
        {"source": "crm_customers", "record_id": "c2", "email": "peter.lang@example.de",
         "first_name": "Maria", "last_name": "Lang", "birth_date": "1974-09-30",
         "customer_number": "77"},
        {"source": "email_events", "record_id": "e1", "email": "peter.lang@example.de"},
    ])
    result = resolve(records, RULES_ONLY)
    peter, maria = profile_of(result, "shop_accounts", "U1"), profile_of(result,
                                                                         "crm_customers", "c2")
    assert peter != maria
    assert profile_of(result, "email_events", "e1") == peter
    refused = result.edges[result.edges["status"].str.startswith("refused")]
    assert (refused["rule"] == "same_email").any()


# ------------------------------------------------------------------------------ overrides


def test_must_link_joins_records_with_nothing_in_common() -> None:
    records = frame([
        {"source": "shop_accounts", "record_id": "U1", "email": "a@x.de", "first_name": "Ann"},
        {"source": "pos_orders", "record_id": "o1", "loyalty_card": "999"},
    ])
    assert len(set(resolve(records, RULES_ONLY).clusters["profile_id"])) == 2
    overrides = pd.DataFrame([{"source_l": "shop_accounts", "record_id_l": "U1",
                               "source_r": "pos_orders", "record_id_r": "o1",
                               "kind": "must_link"}])
    result = resolve(records, RULES_ONLY, overrides=overrides)
    assert result.clusters["profile_id"].nunique() == 1
    assert "must_link" in set(result.edges["rule"].dropna())


def test_cannot_link_splits_records() -> None:
    records = frame([
        {"source": "email_events", "record_id": "e1", "email": "shared@x.de"},
        {"source": "email_events", "record_id": "e2", "email": "shared@x.de"},
        {"source": "consent_log", "record_id": "k1", "email": "shared@x.de"},
    ])
    assert resolve(records, RULES_ONLY).clusters["profile_id"].nunique() == 1
    overrides = pd.DataFrame([{"source_l": "email_events", "record_id_l": "e1",
                               "source_r": "email_events", "record_id_r": "e2",
                               "kind": "cannot_link"}])
    result = resolve(records, RULES_ONLY, overrides=overrides)
    assert profile_of(result, "email_events", "e1") != profile_of(result, "email_events", "e2")
    assert len(result.clusters) == 3


def test_overrides_are_validated() -> None:
    bad = pd.DataFrame([{"source_l": "a", "record_id_l": "1", "source_r": "b",
                         "record_id_r": "2", "kind": "maybe"}])
    with pytest.raises(ValueError, match="kind"):
        resolve(frame([{"source": "a", "record_id": "1"}]), RULES_ONLY, overrides=bad)


# ------------------------------------------------------------------------------- guards


def _chain_nodes() -> pd.DataFrame:
    return pd.DataFrame({
        "node_id": [0, 1, 2],
        "first_name": ["anna", "anna", "anna"],
        "last_name": ["berg", "berg", "berg"],
        **{part: pd.Series([None, None, None], dtype="Int16") for part in BIRTH_DATE_PARTS},
        "customer_number": ["C1", None, "C2"],
        "sources": ["crm_customers", "shop_accounts", "crm_customers"],
    })


def _splink_edges(probabilities: list[tuple[int, int, float]]) -> pd.DataFrame:
    edges = pd.DataFrame(probabilities, columns=["node_l", "node_r", "score"])
    return edges.assign(edge_type="splink", rule=None, priority=PRIORITY_SPLINK,
                        check_person=True, attach=False
                        ).sort_values("score", ascending=False).reset_index(drop=True)


@pytest.mark.parametrize(("weak", "expected"), [((1, 2), [0, 0, 2]), ((0, 1), [0, 1, 1])])
def test_over_merge_guard_cuts_weakest_splink_edge(weak: tuple[int, int],
                                                   expected: list[int]) -> None:
    """A chain C1 - x - C2 joining two CRM customer numbers is cut at its weakest edge."""
    strong = (0, 1) if weak == (1, 2) else (1, 2)
    edges = _splink_edges([(*strong, 0.999), (*weak, 0.97)])
    outcome = cluster_nodes(_chain_nodes(), edges, [], max_cluster_size=100,
                            first_name_similarity=0.8,
                            strong_identifiers={"customer_number": ("crm_customers",)})
    assert outcome.component.tolist() == expected
    assert outcome.refused == {"customer_number_conflict": 1}


def test_birth_date_conflicts() -> None:
    assert not birth_dates_conflict((1980, 3, 4), (1980, 4, 3))  # swap
    assert not birth_dates_conflict((1980, 3, 4), (1990, 3, 4))  # year slip
    assert not birth_dates_conflict((1980, 3, 4), (1980, 3, 14))  # day typo
    assert birth_dates_conflict((1980, 3, 4), (1976, 11, 20))
    # a partial date (1949-00-13: no month) conflicts only where two stated parts differ
    assert not birth_dates_conflict((1949, None, 13), (1949, 7, 13))
    assert not birth_dates_conflict((1949, None, 13), (1950, 7, 13))
    assert birth_dates_conflict((1949, None, 13), (1962, None, 2))


# ------------------------------------------------------------------------------- evaluate


def test_evaluate_known_example() -> None:
    clusters = pd.DataFrame({"source": "s", "record_id": list("abcdef"),
                             "profile_id": ["P1", "P1", "P1", "P2", "P2", "P3"]})
    truth = pd.DataFrame({"source": "s", "record_id": list("abcdeg"),
                          "person_id": ["X", "X", "Y", "Y", "Y", "Z"]})
    metrics = evaluate(clusters, truth)  # f and g are in only one frame: ignored
    assert metrics.records == 5
    assert (metrics.predicted_pairs, metrics.true_pairs, metrics.true_positive_pairs) == (4, 4, 2)
    assert metrics.precision == pytest.approx(0.5)
    assert metrics.recall == pytest.approx(0.5)
    assert metrics.f1 == pytest.approx(0.5)
    assert metrics.over_merged_clusters == 1 and metrics.split_persons == 1


def test_evaluate_perfect() -> None:
    clusters = pd.DataFrame({"source": "s", "record_id": ["a", "b", "c"],
                             "profile_id": ["P1", "P1", "P2"]})
    truth = clusters.rename(columns={"profile_id": "person_id"})
    metrics = evaluate(clusters, truth)
    assert (metrics.precision, metrics.recall, metrics.f1) == (1.0, 1.0, 1.0)


# -------------------------------------------------------------------------------- config


def test_config_yaml(tmp_path: Path) -> None:
    path = tmp_path / "identity.yml"
    path.write_text("identity:\n  match_threshold: 0.9\n  default_region: at\n"
                    "  birth_date_guard: false\n", encoding="utf-8")
    config = IdentityConfig.from_yaml(path)
    assert config.match_threshold == 0.9 and config.default_region == "AT"
    assert config.birth_date_guard is False
    repo_config = Path(__file__).resolve().parent.parent / "config" / "identity.yml"
    assert IdentityConfig.from_yaml(repo_config) == IdentityConfig()


@pytest.mark.parametrize(("text", "message"), [
    ("identity:\n  treshold: 0.9\n", r"identity\.treshold: Extra inputs are not permitted"),
    ("identity:\n  match_threshold: 2\n", r"identity\.match_threshold: Input should be less"),
    ("identity:\n  max_cluster_size: many\n", r"identity\.max_cluster_size: Input should be a"),
    ("identity:\n  birth_date_guard: sometimes\n", r"identity\.birth_date_guard\.literal"),
    ("identity:\n  default_match_prior: 0\n", r"identity\.default_match_prior: Input should be"),
    ("identity:\n  match_threshold: true\n", r"identity\.match_threshold: Value error, "
                                               "expected a number"),
    ("- just\n- a list\n", r"identity\.yml: must be a mapping"),
])
def test_config_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "identity.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IdentityConfigError, match=message) as raised:
        IdentityConfig.from_yaml(path)
    assert raised.value.file == str(path)


# ---------------------------------------------------------------- Splink on fake_1000


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_resolve_fake_1000_quality_and_shape(fake_1000) -> None:
    records, truth = fake_1000
    result = resolve(records, IdentityConfig())
    assert len(result.clusters) == len(records)
    assert result.clusters[["source", "record_id"]].duplicated().sum() == 0
    assert result.clusters["profile_id"].str.fullmatch(r"P[0-9a-f]{16}").all()
    metrics = evaluate(result.clusters, truth)
    # measured: P=1.000 R=0.919 F1=0.958 at the default threshold (noisy benchmark data)
    assert metrics.precision >= 0.99
    assert metrics.f1 >= 0.95
    splink = result.edges[result.edges["edge_type"] == "splink"]
    assert len(splink) > 0 and splink["match_probability"].between(0, 1).all()
    gamma = json.loads(splink["gamma"].iloc[0])
    assert set(gamma) == {"first_name", "last_name", "birth_date", "email", "phone", "address"}


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_profile_ids_are_deterministic(fake_1000) -> None:
    records, _ = fake_1000
    subset = records.iloc[:400]
    first = resolve(subset).clusters
    again = resolve(subset.copy()).clusters
    pd.testing.assert_frame_equal(first, again)
    shuffled = resolve(subset.sample(frac=1.0, random_state=7)).clusters
    merged = first.merge(shuffled, on=["source", "record_id"], suffixes=("", "_shuffled"))
    assert (merged["profile_id"] == merged["profile_id_shuffled"]).all()
    # profile id = 'P' + sha256 of the smallest source:record_id of the cluster
    smallest = (first["source"] + ":" + first["record_id"]).groupby(first["profile_id"]).min()
    import hashlib
    for profile, key in smallest.items():
        assert profile == "P" + hashlib.sha256(key.encode()).hexdigest()[:16]


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_train_writes_model_and_resolve_reuses_it(fake_1000, tmp_path: Path) -> None:
    records, truth = fake_1000
    path = tmp_path / "model.json"
    document = train(records, path)
    assert path.exists() and document["fingerprint"]["rows"] > 0
    assert load_model(path)["fingerprint"] == document["fingerprint"]
    result = resolve(records, IdentityConfig(), model_path=path)
    assert result.model is not None and result.model["fingerprint"] == document["fingerprint"]
    assert evaluate(result.clusters, truth).f1 >= 0.82
    with pytest.raises(FileNotFoundError):
        resolve(records, model_path=tmp_path / "missing.json")


@pytest.mark.integration  # Splink on 2,000 historical records, ~6 s
def test_source_without_emails_phones_or_usable_birth_dates_resolves(caplog) -> None:
    """Regression: historical_50k (names, pre-1900 birth dates, places; no e-mail/phone)
    gave the deterministic prior rules no pairs, the prior became 0 and Splink crashed with
    'math domain error' in EM and again in predict.  Rules on e-mail and phone admit nothing
    here; the prior rests on the names and the stated date parts."""
    raw = pd.read_parquet(benchmark_file(HISTORICAL_50K)).sample(2000, random_state=42)
    records = pd.DataFrame({
        "source": "historical", "record_id": raw["unique_id"], "first_name": raw["first_name"],
        "last_name": raw["surname"], "birth_date": raw["dob"], "city": raw["birth_place"],
        "postcode": raw["postcode_fake"]})
    truth = pd.DataFrame({"source": "historical", "record_id": raw["unique_id"],
                          "person_id": raw["cluster"]})
    with caplog.at_level("INFO", logger="identity.splink_model"):
        result = resolve(records, IdentityConfig())
    assert len(result.clusters) == len(records)
    assert result.model is not None
    # the rules admit pairs on the stated parts of the old dates; the prior follows the
    # share of true pairs among all pairs (about 0.024 %)
    sizes = truth["person_id"].value_counts()
    true_share = float((sizes * (sizes - 1) / 2).sum() / (len(raw) * (len(raw) - 1) / 2))
    prior = result.model["splink"]["probability_two_random_records_match"]
    assert true_share / 2 <= prior <= true_share * 2
    assert "match prior estimated (rules' recall from the trained model)" in caplog.text
    assert result.stats["splink_edges"] > 0
    assert evaluate(result.clusters, truth).precision >= 0.9


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_model_with_degenerate_prior_is_rejected(fake_1000, tmp_path: Path) -> None:
    records, _ = fake_1000
    path = tmp_path / "model.json"
    document = train(records.iloc[:300], path)
    document["splink"]["probability_two_random_records_match"] = 0.0
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match="match prior"):
        load_model(path)


def test_small_input_skips_splink_gracefully() -> None:
    records = frame([{"source": "a", "record_id": str(i), "first_name": "Ann",
                      "last_name": "Lee"} for i in range(3)])
    result = resolve(records)
    assert result.model is None and len(result.clusters) == 3


def test_rule_edges_bound_pairs_for_big_groups() -> None:
    """A hub identifier shared by many person records yields a star, not n^2 edges."""
    rows = [{"source": "shop_accounts", "record_id": str(i), "email": "hub@x.de",
             "first_name": "Kim", "last_name": "L" + "abcdefghij"[i // 10] + "abcdefghij"[i % 10]}
            for i in range(60)]
    nodes, _ = build_nodes(normalise_records(frame(rows)))
    edges = rule_edges(nodes, pairwise_group_limit=30, max_identifier_people=100)
    assert len(edges) == 59
    assert np.all(edges["node_l"].to_numpy() == 0)


# ------------------------------------------------------------------ landing files / demo


def test_landing_reader_maps_registry_columns(tmp_path: Path) -> None:
    from identity.landing import records_from_landing

    registry = tmp_path / "sources.yml"
    registry.write_text(
        "sources:\n"
        "  crm_customers:\n    kind: offline\n    format: csv\n    csv: {delimiter: ';'}\n"
        "    path: '*.csv'\n"
        "    record_key: crm_row_id\n    timestamp: updated_at\n"
        "    timestamp_format: '%d.%m.%Y %H:%M'\n    birth_date_format: '%d.%m.%Y'\n"
        "    identity: {customer_number: customer_number, first_name: vorname,"
        " birth_date: geburtsdatum}\n"
        "  web_events:\n    kind: online\n    format: jsonl\n    path: '*.jsonl'\n"
        "    record_key: event_id\n"
        "    timestamp: event_ts\n    identity: {anonymous_id: anonymous_id, user_id: user_id}\n",
        encoding="utf-8")
    (tmp_path / "landing" / "crm_customers").mkdir(parents=True)
    (tmp_path / "landing" / "web_events").mkdir(parents=True)
    (tmp_path / "landing" / "crm_customers" / "crm.csv").write_text(
        "crm_row_id;customer_number;vorname;geburtsdatum;updated_at\n"
        "C1;42;Jürgen;03.02.1970;01.05.2024 10:00\n", encoding="utf-8")
    (tmp_path / "landing" / "web_events" / "e.jsonl").write_text(
        '{"event_id": "w1", "event_ts": "2025-01-01T00:00:00", "anonymous_id": "a",'
        ' "user_id": null}\n'
        '{"event_id": "w1", "event_ts": "2025-01-02T00:00:00", "anonymous_id": "a",'
        ' "user_id": "U1"}\n', encoding="utf-8")
    records = records_from_landing(tmp_path / "landing", registry)
    assert len(records) == 2  # the re-delivered event keeps its latest version
    crm = records[records["source"] == "crm_customers"].iloc[0]
    assert crm["birth_date"] == dt.date(1970, 2, 3) and crm["customer_number"] == "42"
    web = records[records["source"] == "web_events"].iloc[0]
    assert web["user_id"] == "U1"


@pytest.mark.integration  # Splink on 500 generated people, ~5 s
def test_resolve_small_demo_population(tmp_path: Path) -> None:
    """End to end on the demo generator (500 people, all seven sources, default noise)."""
    generator = pytest.importorskip("cdp.demo.generator")
    from cdp.settings import data_paths
    from identity.landing import records_from_landing

    home = data_paths(tmp_path)
    generator.generate(home, people=500, seed=1, noise="default")
    records = records_from_landing(home.landing, REPO_ROOT / "config" / "sources.yml")
    truth = pd.read_csv(home.truth / "demo_truth.csv", dtype=str)
    metrics = evaluate(resolve(records).clusters, truth)
    # measured: P=1.000 R=0.973 F1=0.986 (10k people: P=0.997 R=0.985 F1=0.991)
    assert metrics.precision >= 0.99
    assert metrics.f1 >= 0.96


# ------------------------------------------------------------ edges, model store, explain


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_clusters_derived_from_merged_edges_equal_resolve(fake_1000) -> None:
    from identity.clustering import components_from_edges

    records, _ = fake_1000
    result = resolve(records)
    merged = result.edges[result.edges["status"] == "merged"]
    derived = components_from_edges(records, merged)
    pairs = pd.DataFrame({"cluster": derived.to_numpy(),
                          "profile": result.clusters["profile_id"].to_numpy()})
    assert pairs.groupby("cluster")["profile"].nunique().max() == 1
    assert pairs.groupby("profile")["cluster"].nunique().max() == 1


def test_model_plan_versions_and_explicit_paths(tmp_path: Path) -> None:
    from identity.model_store import newest_model, plan_model, save_versioned

    models = tmp_path / "models"
    plan = plan_model(IdentityConfig(), models, REPO_ROOT)
    assert plan.path is None and plan.save_trained_to == models and plan.action == "trained"
    document = {"fingerprint": {"sha256": "ab" * 32}}
    first = save_versioned(document, models)
    assert first.name.startswith("model-") and first.name.endswith("-abababab.json")
    assert newest_model(models) == first
    assert plan_model(IdentityConfig(), models, REPO_ROOT).path == first
    assert plan_model(IdentityConfig(model="train"), models, REPO_ROOT).path is None
    assert plan_model(IdentityConfig(model="train"), models, REPO_ROOT).save_trained_to is None
    shipped = plan_model(IdentityConfig(model="identity/models/demo_default.json"), models,
                         REPO_ROOT)
    assert shipped.path is not None and shipped.path.exists()
    with pytest.raises(FileNotFoundError, match="config key 'model'"):
        plan_model(IdentityConfig(model="identity/models/nope.json"), models, REPO_ROOT)
    with pytest.raises(ValidationError, match="model must be 'auto', 'train' or a model file"):
        IdentityConfig(model="")  # in code: pydantic's error; from a file: IdentityConfigError


def test_comparison_weights_and_masking() -> None:
    from identity.explain import comparison_weights, mask

    model = load_model(Path(__file__).parent.parent / "identity/models/demo_default.json")
    gamma = json.dumps({"first_name": 7, "last_name": 5, "birth_date": -1, "email": 0,
                        "phone": -1, "address": 4})
    weights = json.loads(comparison_weights([gamma, None], model)[0])
    assert weights["first_name"]["level"] == "same first_name"
    assert weights["first_name"]["weight"] > 5
    assert weights["birth_date"]["weight"] == 0.0 and weights["email"]["weight"] < 0
    assert comparison_weights([None], model) == [None]
    assert mask("max.mustermann@gmail.com", "email") == "m***@g***.com"
    assert mask("+4915112345678", "phone") == "***78"
    assert mask("C0001") == "C***" and mask(None) == ""


@pytest.mark.parametrize(("env", "expected"), [(None, "jemalloc"), ("system", "system")])
def test_identity_prefers_jemalloc_unless_the_user_chose_a_pool(env, expected) -> None:
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if env:
        environ["ARROW_DEFAULT_MEMORY_POOL"] = env
    if not hasattr(pa, "jemalloc_memory_pool") or sys.platform == "win32":
        pytest.skip("pyarrow build without jemalloc")
    script = (
        "import pandas as pd, pyarrow as pa, identity; "
        "imported = pa.default_memory_pool().backend_name; "
        "rows = identity.normalise_records(pd.DataFrame({'source': ['s'], 'record_id': ['1']})); "
        "identity.link(rows, identity.IdentityConfig(use_splink=False)); "
        "print(imported, pa.default_memory_pool().backend_name)")
    out = subprocess.run([sys.executable, "-c", script], env=environ, capture_output=True,
                         text=True, check=True)
    plain = subprocess.run(
        [sys.executable, "-c", "import pyarrow as pa; "
         "print(pa.default_memory_pool().backend_name)"],
        env=environ, capture_output=True, text=True, check=True)
    imported, linking = out.stdout.split()
    assert imported == plain.stdout.strip()  # importing identity changes nothing
    assert linking == expected  # resolution starting does


def test_overrides_address_records_exactly_even_with_colons_in_keys() -> None:
    """("a:b", "c") and ("a", "b:c") read alike as "source:record_id"; an override naming one
    must neither crash nor touch the other."""
    records = frame([
        {"source": "a:b", "record_id": "c", "email": "x@example.de", "first_name": "Ann"},
        {"source": "a", "record_id": "b:c", "email": "x@example.de", "first_name": "Ann"},
        {"source": "shop", "record_id": "z", "first_name": "Zoe", "last_name": "Quist"},
    ])
    overrides = pd.DataFrame([{"source_l": "a:b", "record_id_l": "c", "source_r": "shop",
                               "record_id_r": "z", "kind": "must_link"}])
    result = resolve(records, RULES_ONLY, overrides=overrides)
    assert profile_of(result, "a:b", "c") == profile_of(result, "shop", "z")
    assert profile_of(result, "a", "b:c") == profile_of(result, "a:b", "c")  # same e-mail
    pinned = result.edges[result.edges["rule"] == "must_link"]
    assert pinned[["source_l", "record_id_l", "source_r", "record_id_r"]].values.tolist() in (
        [["a:b", "c", "shop", "z"]], [["shop", "z", "a:b", "c"]])


@pytest.mark.integration  # Splink on fake_1000 data, > 2 s
def test_a_build_links_what_it_normalised_once_exactly_as_resolve_does(fake_1000,
                                                                       tmp_path: Path) -> None:
    """The build normalises once (int_identity__normalised), stores the result in DuckDB and
    links what it reads back; that round trip must not change a single edge or profile."""
    import duckdb

    from identity.clustering import components_from_edges
    from identity.normalise import as_normalised
    from identity.resolve import link
    from identity.stable_ids import assign_persistent_ids

    records, _ = fake_1000
    path = tmp_path / "model.json"
    train(records, path)
    expected = resolve(records, IdentityConfig(), model_path=path)
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    con.register("normalised_frame", normalise_records(records))
    con.execute("create table normalised as select * from normalised_frame")
    stored = as_normalised(con.sql("select * from normalised").to_arrow_table())
    con.close()
    linkage = link(stored, IdentityConfig(), model_path=path)
    pd.testing.assert_frame_equal(linkage.edges, expected.edges)
    keys = stored[["source", "record_id"]]
    merged = linkage.edges[linkage.edges["status"] == "merged"]
    clusters = assign_persistent_ids(keys.assign(cluster=components_from_edges(keys, merged)))
    pd.testing.assert_frame_equal(
        clusters[["source", "record_id", "profile_id"]].reset_index(drop=True),
        expected.clusters.reset_index(drop=True))


@pytest.mark.parametrize(("typed", "code"), [
    ("DE", "DE"), ("de", "DE"), ("D", "DE"), ("Deutschland", "DE"), ("Germany", "DE"),
    ("DEU", "DE"), (" Österreich ", "AT"), ("OESTERREICH", "AT"), ("A", "AT"),
    ("Großbritannien", "GB"), ("Vereinigtes Königreich", "GB"), ("UK", "GB"),
    ("United States", "US"), ("Suisse", "CH"), ("Polska", "PL"), ("België", "BE"),
    ("Niederlande", "NL"), ("xx", None), ("Atlantis", None), ("", None),
])
def test_countries_fold_to_iso_alpha_2(typed: str, code: str | None) -> None:
    from identity.normalise import normalise_country_value

    assert normalise_country_value(typed) == code


def _two_people(first: tuple[str, str], born: tuple[tuple[int, int, int], ...]) -> pd.DataFrame:
    parts = {name: pd.Series([b[i] for b in born], dtype="Int16")
             for i, name in enumerate(BIRTH_DATE_PARTS)}
    return pd.DataFrame({"node_id": [0, 1], "first_name": list(first),
                         "last_name": ["berg", "berg"], **parts,
                         "customer_number": [None, None], "sources": ["a", "b"]})


@pytest.mark.parametrize(("first", "born", "shared_contact", "status"), [
    # twins at one address (a shared contact point): the first-name clash vetoes
    (("lena", "paul"), ((1990, 5, 1), (1990, 5, 1)), True, "refused:first_name_conflict"),
    # parent and child of one name at one address: all birth dates clash
    (("anna", "anna"), ((1960, 5, 1), (1990, 8, 12)), True, "refused:birth_date_conflict"),
    # no shared contact: one disagreement is the model's to weigh (a second given name,
    # a nickname no table knows) ...
    (("frank", "frederick"), ((1990, 5, 1), (1990, 5, 1)), False, "merged"),
    (("anna", "anna"), ((1960, 5, 1), (1990, 8, 12)), False, "merged"),
    # ... two independent ones are a different person
    (("lena", "paul"), ((1960, 5, 1), (1990, 8, 12)), False, "refused:person_conflict"),
    # a date known only in part fits a full one that agrees where both state a part
    (("anna", "anna"), ((1949, 0, 13), (1949, 7, 13)), True, "merged"),
])
def test_person_guards_weigh_evidence(first, born, shared_contact, status) -> None:
    born = tuple(tuple(None if p == 0 else p for p in b) for b in born)
    edges = _splink_edges([(0, 1, 0.99)]).assign(check_person=shared_contact)
    outcome = cluster_nodes(_two_people(first, born), edges, [], max_cluster_size=100,
                            first_name_similarity=0.8, strong_identifiers={})
    assert outcome.status == [status]


def test_partial_birth_dates_keep_their_parts() -> None:
    records = pd.DataFrame({"source": "s", "record_id": ["1", "2", "3", "4", "5"],
                            "birth_date": ["1949-00-13", "2001-12-64", "1490-05-01",
                                           "1900-01-01", "1985-03-04"]})
    norm = normalise_records(records)
    parts = norm[list(BIRTH_DATE_PARTS)].astype(object).where(norm[list(BIRTH_DATE_PARTS)]
                                                              .notna(), None)
    assert parts.values.tolist() == [[1949, None, 13], [2001, 12, None], [1490, 5, 1],
                                     [None, None, None], [1985, 3, 4]]
    # only the real date after the floor is believed as a full date
    assert norm["birth_date"].isna().tolist() == [True, True, True, True, False]


def test_model_trained_on_other_data_does_not_fit(fake_1000, tmp_path: Path) -> None:
    from identity.model_store import misfit
    from identity.resolve import data_fingerprint

    records, _ = fake_1000
    norm = normalise_records(records)
    document = {"fingerprint": data_fingerprint(norm)}
    assert misfit(document, data_fingerprint(norm)) is None
    other = norm.assign(source="another_source")
    assert "sources" in misfit(document, data_fingerprint(other))
    no_email = norm.assign(email=pd.NA)
    assert "field email" in misfit(document, data_fingerprint(no_email))
    assert "scored records" in misfit(document, data_fingerprint(norm.iloc[:200]))


def test_training_and_fit_check_need_only_named_records(fake_1000, tmp_path: Path) -> None:
    """Nameless records (events) form no named node, so the fingerprint of the named records
    alone is the fingerprint of all, and the training step reads only those from the build."""
    from identity.resolve import data_fingerprint
    from identity.training import NORMALISED_TABLE, read_normalised

    records, _ = fake_1000
    norm = normalise_records(records)
    def blanked(frame: pd.DataFrame, prefix: str, columns: list[str]) -> pd.DataFrame:
        frame = frame.copy()
        for column in columns:  # nulls of the column's own dtype
            frame[column] = frame[column].where(pd.Series(False, index=frame.index))
        return frame.assign(record_id=prefix + frame["record_id"].astype(str))

    events = blanked(norm.iloc[:300], "ev-", ["first_name", "last_name"])
    name_only = blanked(norm.iloc[300:310], "nm-", [
        "email", "phone", "street", "house_number", "postcode", "birth_date", "birth_year",
        "birth_month", "birth_day"])
    every = pd.concat([norm, events, name_only], ignore_index=True)
    named = every[every["first_name"].notna() | every["last_name"].notna()]
    assert len(named) < len(every) - len(events)  # fake_1000 holds nameless records, too
    assert named["record_id"].astype(str).str.startswith("nm-").sum() == len(name_only)
    assert data_fingerprint(named) == data_fingerprint(every)

    build = tmp_path / "build.duckdb"
    schema, table = NORMALISED_TABLE.split(".")
    with duckdb.connect(str(build)) as con:
        con.execute(f"create schema {schema}")
        con.register("every_frame", every)
        con.execute(f"create table {NORMALISED_TABLE} as select * from every_frame")
    read = read_normalised(build, named_only=True)
    assert sorted(read["record_id"]) == sorted(named["record_id"])
    assert len(read_normalised(build)) == len(every)
