"""Identity resolution: normalise → nodes → rule + Splink edges → guarded clustering.

:func:`link` is the build's step (``int_identity__links``, on records normalised once by
``int_identity__normalised``); :func:`resolve` is the whole path for library users (raw
records in, profiles out), built from the same functions as the build.  Neither touches the
caller's database connection: Splink runs on a private in-memory DuckDB connection.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from identity.arrow_memory import prefer_jemalloc
from identity.clustering import birth_dates_conflict, cluster_nodes, components_from_edges
from identity.config import IdentityConfig
from identity.keys import record_keys
from identity.normalise import IDENTITY_COLUMNS, normalise_records
from identity.rules import (
    PRIORITY_SPLINK,
    build_nodes,
    email_name_edges,
    override_edges,
    rule_edges,
    validate_overrides,
)
from identity.splink_model import (
    Prediction,
    empty_splink_edges,
    fingerprint,
    load_model,
    node_sources,
    predict_edges,
    splink_input,
    train_model,
)
from identity.stable_ids import assign_persistent_ids, profile_id_for
from identity.state import MemoScoring, ScoreMemo, model_key, score_with_memo

log = logging.getLogger(__name__)

__all__ = ["IdentityResult", "Linkage", "link", "profile_id_for", "resolve", "train",
           "train_normalised"]

EDGE_OUTPUT_COLUMNS = [
    "source_l", "record_id_l", "source_r", "record_id_r", "edge_type", "rule",
    "match_probability", "match_weight", "gamma", "status",
]


@dataclass
class IdentityResult:
    """Output of :func:`resolve`.

    Attributes:
        clusters: ``source, record_id, profile_id`` - exactly one row per input record.
        edges: record-level evidence: ``source_l, record_id_l, source_r, record_id_r,
            edge_type ('rule'|'splink'), rule, match_probability, match_weight, gamma (JSON of
            Splink comparison levels), status ('merged'|'redundant'|'refused:<reason>')``.
            Records collapsed into one identity node are linked to the node's representative
            record by rule ``identical_identifiers``.
        stats: counts and timings (no PII), handy for logging / run metadata.
        model: the Splink model document used (None when Splink did not run).
    """

    clusters: pd.DataFrame
    edges: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] | None = None


@dataclass
class Linkage:
    """Output of :func:`link`: ``edges`` as in :class:`IdentityResult`, counts and timings
    (``stats``, no PII) and the Splink model document used (None when Splink did not run)."""

    edges: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] | None = None
    memo: ScoreMemo | None = None  # the Splink scores to keep for the next run


def _nodes(norm: pd.DataFrame, overrides: pd.DataFrame | None
           ) -> tuple[pd.DataFrame, pa.Array | None, pd.DataFrame, np.ndarray]:
    """Checked overrides, exact record keys (when there are overrides), identity nodes and
    each record's node; records named by overrides stay their own node."""
    checked = validate_overrides(overrides)
    # overrides address records exactly (U+001F keys cannot collide); ":" keys only rank
    # records for representatives and profile ids
    exact = record_keys(norm["source"], norm["record_id"]) if len(checked) else None
    pinned = None
    if exact is not None:
        named = pa.concat_arrays([record_keys(checked["source_l"], checked["record_id_l"]),
                                  record_keys(checked["source_r"], checked["record_id_r"])])
        pinned = pc.is_in(exact, value_set=named).to_numpy(zero_copy_only=False)
    nodes, node_of_record = build_nodes(norm, pinned,
                                        record_keys(norm["source"], norm["record_id"], ":"))
    return checked, exact, nodes, node_of_record


def _normalise(records: pd.DataFrame | pa.Table, config: IdentityConfig) -> pd.DataFrame:
    return normalise_records(records, config.default_region, config.min_birth_date)


def train(records: pd.DataFrame | pa.Table, path: str | Path | None,
          config: IdentityConfig | None = None) -> dict[str, Any]:
    """Train the Splink model on ``records`` and write it (with a data fingerprint) to
    ``path`` (None: not written); returns the model document.  Use when the model should be
    reviewed or pinned rather than re-estimated on every run."""
    config = config or IdentityConfig()
    return train_normalised(_normalise(records, config), config, path=path)


def train_normalised(norm: pd.DataFrame, config: IdentityConfig, *,
                     overrides: pd.DataFrame | None = None,
                     path: str | Path | None = None) -> dict[str, Any]:
    """:func:`train` on records normalised already, over the nodes :func:`link` scores (the
    records ``overrides`` name kept apart), so the model fits exactly what it will score."""
    prefer_jemalloc()
    _, _, nodes, _ = _nodes(norm, overrides)
    return train_model(nodes, config, path)


def data_fingerprint(norm: pd.DataFrame, overrides: pd.DataFrame | None = None
                     ) -> dict[str, Any]:
    """The fingerprint a model trained on these normalised records would carry (rows,
    sources, filled fields of the nodes it scores), to check a stored model against."""
    _, _, nodes, _ = _nodes(norm, overrides)
    return fingerprint(splink_input(nodes), node_sources(nodes))


def resolve(records: pd.DataFrame | pa.Table, config: IdentityConfig | None = None, *,
            overrides: pd.DataFrame | None = None,
            model_path: str | Path | None = None) -> IdentityResult:
    """Resolve source records into profiles.

    Args:
        records: one row per source record with ``source, record_id, record_ts`` and the
            canonical identity columns (raw values; missing columns are treated as null).
        config: thresholds and options; defaults to ``IdentityConfig()``.
        overrides: optional manual decisions ``source_l, record_id_l, source_r,
            record_id_r, kind`` with kind ``must_link`` / ``cannot_link``.
        model_path: a model file from :func:`train`; when None the model is trained in
            memory on ``records``.

    Profiles are derived as in a build: components of the merged edges
    (:func:`~identity.clustering.components_from_edges`), ids from
    :func:`~identity.stable_ids.assign_persistent_ids` (no previous assignment).
    """
    config = config or IdentityConfig()
    started = time.perf_counter()
    norm = _normalise(records, config)
    normalised = time.perf_counter()
    linkage = link(norm, config, overrides=overrides, model_path=model_path)
    keys = norm[["source", "record_id"]]
    merged = linkage.edges[linkage.edges["status"] == "merged"]
    clusters = assign_persistent_ids(keys.assign(cluster=components_from_edges(keys, merged)))
    stats = {**linkage.stats, "seconds_normalise": round(normalised - started, 2),
             "seconds_total": round(time.perf_counter() - started, 2)}
    return IdentityResult(clusters=clusters[["source", "record_id", "profile_id"]],
                          edges=linkage.edges, stats=stats, model=linkage.model)


def link(norm: pd.DataFrame, config: IdentityConfig, *,
         overrides: pd.DataFrame | None = None,
         model_path: str | Path | None = None,
         memo: ScoreMemo | None = None) -> Linkage:
    """Edges between normalised records (``normalise_records`` output) and what clustering
    decided about each, without profiles: a build derives those once, from the merged edges
    (``int_identity__clusters``).  With a model file, ``memo`` (the previous run's Splink
    scores, :mod:`identity.state`) limits scoring to the pairs of new nodes; the result is
    the same, and :attr:`Linkage.memo` holds the scores for the next run."""
    prefer_jemalloc()
    with gc_paused():
        return _link(norm, config, overrides, model_path, memo)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: resolution allocates millions of short-lived
    containers and no reference cycles, and each collection re-scans every live object
    (measured: a third of the clustering time on a million records)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _link(norm: pd.DataFrame, config: IdentityConfig, overrides: pd.DataFrame | None,
          model_path: str | Path | None, memo: ScoreMemo | None) -> Linkage:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    checked, exact_keys, nodes, node_of_record = _nodes(norm, overrides)
    timings["nodes"], mark = time.perf_counter() - started, time.perf_counter()

    # Splink scores in DuckDB (which releases the GIL) while the rule edges are built here
    with ThreadPoolExecutor(max_workers=1) as pool:
        scoring = pool.submit(_splink_edges, nodes, config, model_path, memo) \
            if config.use_splink else None
        must_edges, cannot_pairs = override_edges(checked, exact_keys, node_of_record)
        rules = rule_edges(nodes, config.pairwise_group_limit, config.max_identifier_people,
                           config.strong_identifiers)
        email_names = email_name_edges(nodes)
        timings["rules"], mark = time.perf_counter() - mark, time.perf_counter()
        scored = scoring.result() if scoring is not None else None
        prediction = scored.prediction if scored is not None \
            else Prediction(empty_splink_edges(), None, None)
        splink_edges, model = prediction.edges, prediction.model
        timings["splink_wait"], mark = time.perf_counter() - mark, time.perf_counter()

    dob_guard = _birth_date_guard(config, nodes, splink_edges)
    # a first-name or birth-date clash vetoes a Splink match where the pair shares a contact
    # point (a household's e-mail, phone or address, which Splink over-counts); elsewhere
    # the model's weights already hold the clash (see identity.clustering)
    splink_frame = splink_edges.drop(columns="shared_contact").assign(
        edge_type="splink", rule=None, priority=PRIORITY_SPLINK,
        score=splink_edges["match_probability"],
        check_person=splink_edges["shared_contact"].to_numpy(dtype=bool), attach=False)
    candidates = pd.concat([must_edges, rules, splink_frame, email_names],
                           ignore_index=True)
    candidates = candidates.sort_values(
        ["priority", "score", "node_l", "node_r"], ascending=[True, False, True, True],
        kind="stable").reset_index(drop=True)
    outcome = cluster_nodes(
        nodes, candidates, cannot_pairs, max_cluster_size=config.max_cluster_size,
        first_name_similarity=config.first_name_similarity,
        birth_date_guard=dob_guard,
        strong_identifiers=config.strong_identifiers)
    candidates["status"] = outcome.status
    timings["clustering"], mark = time.perf_counter() - mark, time.perf_counter()
    edges = _record_edges(nodes, node_of_record, norm, candidates)
    timings["output"] = time.perf_counter() - mark

    stats: dict[str, Any] = {
        "records": int(len(norm)),
        "nodes": int(len(nodes)),
        "named_nodes": int(nodes["has_name"].sum()),
        "rule_candidate_edges": int(len(rules)),
        "splink_edges": int(len(splink_edges)),
        "must_links": int(len(must_edges)),
        "cannot_links": len(cannot_pairs),
        "merged_edges": int((candidates["status"] == "merged").sum()),
        "refused_edges": dict(sorted(outcome.refused.items())),
        "profiles": int(len(np.unique(outcome.component))),
        "birth_date_guard": dob_guard,
        "blocking_rules": list(prediction.blocking.rules) if prediction.blocking else [],
        "blocking_rules_dropped": dict(prediction.blocking.dropped)
        if prediction.blocking else {},
        **(scored.touched if scored is not None else {}),
        **{f"seconds_{phase}": round(seconds, 2) for phase, seconds in timings.items()},
        "seconds_total": round(time.perf_counter() - started, 2),
    }
    log.info("identity link: %d records, %d nodes, %d profiles in %.1fs",
             stats["records"], stats["nodes"], stats["profiles"], stats["seconds_total"])
    return Linkage(edges=edges, stats=stats, model=model,
                   memo=scored.memo if scored is not None else None)


def _splink_edges(nodes: pd.DataFrame, config: IdentityConfig, model_path: str | Path | None,
                  memo: ScoreMemo | None) -> MemoScoring:
    """Splink's edges over all nodes, scored afresh or (with a model file and a memo) only
    where the memo has no score; the memo to keep comes back with them (None without)."""
    document = load_model(model_path) if model_path is not None else None
    if document is None or memo is None:
        return MemoScoring(predict_edges(nodes, config, document), None, {})
    if memo.model != model_key(document):
        if memo.model:
            log.info("identity state: Splink scores were made with another model; scoring "
                     "every pair again")
        memo = ScoreMemo(model_key(document), memo.threshold)
    return score_with_memo(nodes, config, document, memo, list(IDENTITY_COLUMNS))


AUTO_GUARD_MIN_PROBABILITY = 0.99
AUTO_GUARD_MAX_CONFLICT_RATE = 0.05
AUTO_GUARD_MIN_PAIRS = 20


def _birth_date_guard(config: IdentityConfig, nodes: pd.DataFrame,
                      splink_edges: pd.DataFrame) -> bool:
    """Resolve ``birth_date_guard='auto'``.

    Looks at confident Splink matches whose first *and* last names agree exactly (so the
    household look-alikes the guard exists for are excluded): if those still disagree on
    birth date beyond a typo too often, birth dates in this data are too noisy to veto.
    """
    if isinstance(config.birth_date_guard, bool):
        return config.birth_date_guard
    confident = splink_edges[splink_edges["match_probability"] >= AUTO_GUARD_MIN_PROBABILITY]
    left = confident["node_l"].to_numpy(dtype=np.int64)
    right = confident["node_r"].to_numpy(dtype=np.int64)
    born = pa.array(nodes["birth_date"].array, pa.date32()).to_numpy(zero_copy_only=False)
    first = pd.factorize(nodes["first_name"].fillna(""))[0]
    last = pd.factorize(nodes["last_name"].fillna(""))[0]
    both = ~np.isnat(born[left]) & ~np.isnat(born[right]) & (first[left] == first[right]) \
        & (last[left] == last[right])
    pairs = int(both.sum())
    if pairs < AUTO_GUARD_MIN_PAIRS:
        return True
    differ = both & (born[left] != born[right])  # equal dates never conflict
    rate = sum(birth_dates_conflict((a.year, a.month, a.day), (b.year, b.month, b.day))
               for a, b in zip(born[left[differ]].astype("datetime64[D]").astype(object),
                               born[right[differ]].astype("datetime64[D]").astype(object),
                               strict=True)) / pairs
    keep = rate <= AUTO_GUARD_MAX_CONFLICT_RATE
    log.info("identity resolve: %.1f%% of %d confident same-name matches disagree on birth "
             "date; birth-date guard %s", 100 * rate, pairs, "on" if keep else "off")
    return keep


def _constant_strings(value: str | None, n: int) -> pd.api.extensions.ExtensionArray:
    """``n`` copies of ``value`` as a ``string`` array (built in Arrow)."""
    values = pa.nulls(n, pa.string()) if value is None else pa.repeat(value, n)
    return pd.array(pd.arrays.ArrowStringArray(values))


def _record_edges(nodes: pd.DataFrame, node_of_record: np.ndarray, norm: pd.DataFrame,
                  candidates: pd.DataFrame) -> pd.DataFrame:
    """Express node edges via each node's representative record, plus collapse edges."""
    rep_source = nodes["rep_source"].astype("string").array
    rep_record = nodes["rep_record_id"].astype("string").array

    # every record that is not its node's representative links to it
    src = norm["source"].astype("string").array
    rid = norm["record_id"].astype("string").array
    is_rep = np.zeros(len(norm), dtype=bool)
    is_rep[nodes["rep_row"].to_numpy(dtype=np.int64)] = True
    members = np.flatnonzero(~is_rep)
    member_nodes = node_of_record[members]
    collapse = pd.DataFrame({
        "source_l": rep_source.take(member_nodes),
        "record_id_l": rep_record.take(member_nodes),
        "source_r": src.take(members), "record_id_r": rid.take(members),
        "edge_type": _constant_strings("rule", len(members)),
        "rule": _constant_strings("identical_identifiers", len(members)),
        "match_probability": np.full(len(members), np.nan),
        "match_weight": np.full(len(members), np.nan),
        "gamma": _constant_strings(None, len(members)),
        "status": _constant_strings("merged", len(members)),
    })

    keep = (candidates["status"] != "redundant") | (candidates["edge_type"] == "splink")
    chosen = candidates[keep]
    left = chosen["node_l"].to_numpy(dtype=np.int64)
    right = chosen["node_r"].to_numpy(dtype=np.int64)
    linked = pd.DataFrame({
        "source_l": rep_source.take(left), "record_id_l": rep_record.take(left),
        "source_r": rep_source.take(right), "record_id_r": rep_record.take(right),
        "edge_type": pd.array(chosen["edge_type"].to_numpy(dtype=object), dtype="string"),
        "rule": pd.array(chosen["rule"].to_numpy(dtype=object), dtype="string"),
        "match_probability": chosen["match_probability"].to_numpy(dtype=float),
        "match_weight": chosen["match_weight"].to_numpy(dtype=float),
        "gamma": pd.array(chosen["gamma"].to_numpy(dtype=object), dtype="string"),
        "status": pd.array(chosen["status"].to_numpy(dtype=object), dtype="string"),
    })
    edges = pd.concat([linked, collapse], ignore_index=True)
    for column in ("source_l", "record_id_l", "source_r", "record_id_r", "edge_type", "rule",
                   "gamma", "status"):
        edges[column] = edges[column].astype("string")
    return edges[EDGE_OUTPUT_COLUMNS]
