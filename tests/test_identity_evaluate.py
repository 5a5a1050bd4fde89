"""``cdp identity evaluate``: why true pairs were missed, blocking recall, false-merge edges and
figures per truth pattern, on hand-made cases with hand-counted answers, and once through the
CLI on the shared demo run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cdp.cli import app
from identity.diagnostics import diagnose, pattern_metrics
from identity.normalise import normalise_records

#: Splink's rendering of ``block_on("first_name", "last_name")``
SAME_NAME = '(l."first_name" = r."first_name") AND (l."last_name" = r."last_name")'

#: (record, person, profile, first name, last name, e-mail)
CASE = [
    ("a1", "A", "P1", "anna", "berg", "anna@example.org"),  # identical twins of one node
    ("a2", "A", "P1", "anna", "berg", "anna@example.org"),
    ("b1", "B", "P2", "bert", "kurz", "bert@example.org"),  # same name: blocked, not merged
    ("b2", "B", "P3", "bert", "kurz", "kurz@example.net"),
    ("c1", "C", "P4", "carl", "moser", "cm@example.org"),  # shared e-mail edge refused
    ("c2", "C", "P5", "karl", "mosel", "cm@example.org"),
    ("d1", "D", "P6", "dora", "lind", None),  # nothing in common: never compared
    ("d2", "D", "P7", "theodora", "linde", None),
    ("e1", "E", "P8", "emil", "roth", None),  # two people merged by a Splink edge
    ("f1", "F", "P8", "emilia", "roth", None),
]


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    truth = pd.DataFrame({"source": "crm", "record_id": [r[0] for r in CASE],
                          "person_id": [r[1] for r in CASE]})
    clusters = pd.DataFrame({"source": "crm", "record_id": [r[0] for r in CASE],
                             "profile_id": [r[2] for r in CASE]})
    norm = normalise_records(pd.DataFrame({
        "source": "crm", "record_id": [r[0] for r in CASE], "first_name": [r[3] for r in CASE],
        "last_name": [r[4] for r in CASE], "email": [r[5] for r in CASE]}))
    edges = pd.DataFrame([
        ("a1", "a2", "rule", "identical_identifiers", "merged"),
        ("c1", "c2", "rule", "same_email", "refused:first_name"),
        ("e1", "f1", "splink", None, "merged"),
    ], columns=["record_id_l", "record_id_r", "edge_type", "rule", "status"]).assign(
        source_l="crm", source_r="crm")
    return truth, clusters, norm, edges


def test_each_missed_pair_has_its_cause() -> None:
    truth, clusters, norm, edges = _frames()
    misses = diagnose(truth, clusters, norm, edges, [SAME_NAME])
    assert (misses.true_pairs, misses.missed_pairs) == (4, 3)
    assert misses.never_compared == 1  # d1-d2
    assert misses.below_threshold == 1  # b1-b2
    assert misses.refused == {"first_name": 1}  # c1-c2
    assert misses.compared_pairs == 3  # a (one node), b (blocking), c (rule edge)
    assert misses.admitted_pairs == 3
    assert misses.blocking_recall == pytest.approx(0.75)
    assert misses.false_merge_edges == {"splink": 1}
    assert (misses.skipped_persons, misses.skipped_true_pairs) == (0, 0)


def test_without_the_blocking_rule_the_same_name_pair_was_never_compared() -> None:
    truth, clusters, norm, edges = _frames()
    misses = diagnose(truth, clusters, norm, edges, [])
    assert (misses.never_compared, misses.below_threshold) == (2, 0)
    assert misses.blocking_recall == pytest.approx(0.5)


def test_a_pair_joined_through_a_chain_of_comparisons_was_admitted() -> None:
    # g1-g2 and g2-g3 share a name and are compared; g1-g3 never is, but a chain joins it
    rows = [("g1", "greta", "hahn"), ("g2", "greta", "hahn"), ("g3", "greta", "hahn")]
    truth = pd.DataFrame({"source": "crm", "record_id": [r[0] for r in rows],
                          "person_id": "G"})
    clusters = pd.DataFrame({"source": "crm", "record_id": [r[0] for r in rows],
                             "profile_id": ["P1", "P1", "P2"]})
    norm = normalise_records(pd.DataFrame({
        "source": "crm", "record_id": [r[0] for r in rows], "first_name": [r[1] for r in rows],
        "last_name": [r[2] for r in rows],
        "email": ["g1@example.org", "g2@example.org", "g3@example.org"]}))
    no_edges = pd.DataFrame(columns=["source_l", "record_id_l", "source_r", "record_id_r",
                                     "edge_type", "rule", "status"])
    chain = '(l."email" = \'g2@example.org\' OR r."email" = \'g2@example.org\')'
    misses = diagnose(truth, clusters, norm, no_edges, [chain])
    assert (misses.true_pairs, misses.compared_pairs, misses.admitted_pairs) == (3, 2, 3)
    assert (misses.missed_pairs, misses.never_compared, misses.below_threshold) == (2, 0, 2)
    assert diagnose(truth, clusters, norm, no_edges, []).never_compared == 2


def test_large_persons_are_counted_not_enumerated() -> None:
    truth, clusters, norm, edges = _frames()
    misses = diagnose(truth, clusters, norm, edges, [SAME_NAME], max_person_records=1)
    assert (misses.true_pairs, misses.skipped_persons, misses.skipped_true_pairs) == (0, 4, 4)
    assert misses.blocking_recall == 1.0


def test_figures_per_pattern_cover_pairs_with_both_records_labelled() -> None:
    # twins x and y in one profile with x's duplicate: 3 predicted pairs, 1 of them true;
    # an initial's duplicate left apart: no predicted pair, its true pair missed
    rows = [("t1", "X", "P1", "twin"), ("t2", "Y", "P1", "twin"), ("t3", "X", "P1", "twin"),
            ("u1", "Y", "P1", None), ("i1", "Z", "P2", "initial"), ("i2", "Z", "P3", "initial")]
    truth = pd.DataFrame({"source": "crm", "record_id": [r[0] for r in rows],
                          "person_id": [r[1] for r in rows], "pattern": [r[3] for r in rows]})
    clusters = pd.DataFrame({"source": "crm", "record_id": [r[0] for r in rows],
                             "profile_id": [r[2] for r in rows]})
    figures = pattern_metrics(clusters, truth)
    assert sorted(figures) == ["initial", "twin"]
    twin = figures["twin"]
    assert (twin.records, twin.predicted_pairs, twin.true_pairs) == (3, 3, 1)
    assert twin.precision == pytest.approx(1 / 3)
    assert twin.recall == 1.0
    initial = figures["initial"]
    assert (initial.predicted_pairs, initial.true_pairs, initial.recall) == (0, 1, 0.0)
    assert pattern_metrics(clusters, truth.drop(columns="pattern")) == {}


def test_cli_breaks_down_the_demo_runs_misses(demo_run, tmp_path) -> None:
    paths, _ = demo_run
    out = tmp_path / "figures.json"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [
        "identity", "evaluate", "--truth", str(paths.truth / "demo_truth.csv"),
        "--home", str(paths.home), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Missed true pairs" in result.output
    figures = json.loads(out.read_text())
    misses = figures["misses"]
    assert misses["skipped_true_pairs"] == 0  # demo persons hold a handful of records
    assert misses["true_pairs"] == figures["true_pairs"]
    assert misses["missed_pairs"] == figures["true_pairs"] - figures["true_positive_pairs"]
    assert misses["missed_pairs"] == (misses["never_compared"] + misses["below_threshold"]
                                      + sum(misses["refused"].values()))
    assert 0.9 < misses["blocking_recall"] <= 1.0
