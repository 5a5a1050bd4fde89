"""Why true pairs were missed and false pairs merged, against a truth file.

A pairwise F1 says how much recall was lost, not where: a pair no blocking rule ever put in
front of the model needs another rule, a pair scored below the threshold needs other
comparisons, a pair a guard refused needs another guard.  This module sorts every missed true
pair into one of those, counts the true pairs blocking admitted at all, and names the edges
that merged two different people.  Everything is set-based in DuckDB: true pairs are
enumerated only for persons with at most ``max_person_records`` records (larger "persons" are
skipped and counted, their pairs would dominate the run time and say nothing per pair).

Truth records may carry a ``pattern`` label (twin, couple, initial, ...): figures per label
cover the pairs with both records carrying it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.paths import DataPaths
from identity.clustering import components_from_edges
from identity.config import IdentityConfig
from identity.evaluate import Metrics, evaluate
from identity.rules import build_nodes
from identity.splink_model import blocking_for, splink_input

MAX_PERSON_RECORDS = 300


@dataclass(frozen=True)
class MissBreakdown:
    """Missed true pairs by cause, blocking recall, and the merged edges that joined two
    different persons (by ``splink`` or ``rule:<name>``)."""

    true_pairs: int  # enumerated: persons with at most ``max_person_records`` records
    skipped_persons: int  # persons with more records, not enumerated
    skipped_true_pairs: int
    compared_pairs: int  # one node, admitted by a blocking rule, or joined by a rule edge
    admitted_pairs: int  # compared, or joined through a chain of the person's compared pairs
    blocking_recall: float
    missed_pairs: int  # true pairs in different profiles
    never_compared: int
    below_threshold: int  # compared (blocking or a rule edge) but not merged
    refused: dict[str, int]  # a guard refused the pair's own edge, by reason
    false_merge_edges: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _frames(con: duckdb.DuckDBPyConnection, **frames: pd.DataFrame) -> None:
    for name, frame in frames.items():
        con.register(name, frame)


def _node_map(norm: pd.DataFrame, blocking: Sequence[str] | IdentityConfig
              ) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """Each record's identity node, the nodes' Splink input (the columns blocking rules read),
    built exactly as linking builds them, and the blocking rules (chosen again from the
    settings when the run did not report them)."""
    nodes, node_of_record = build_nodes(norm)
    records = pd.DataFrame({"source": norm["source"].astype("string").array,
                            "record_id": norm["record_id"].astype("string").array,
                            "node_id": node_of_record.astype(np.int64)})
    rules = blocking_for(nodes, blocking).rules if isinstance(blocking, IdentityConfig) \
        else tuple(blocking)
    return records, splink_input(nodes), rules


def _admitted_sql(rules: Sequence[str]) -> str:
    """One boolean: does any blocking rule (Splink SQL over ``l.``/``r.`` columns) admit the
    node pair?"""
    return " OR ".join(f"coalesce(({rule}), false)" for rule in rules) if rules else "false"


def diagnose(truth: pd.DataFrame, clusters: pd.DataFrame, norm: pd.DataFrame,
             edges: pd.DataFrame, blocking: Sequence[str] | IdentityConfig,
             max_person_records: int = MAX_PERSON_RECORDS) -> MissBreakdown:
    """Sort the missed true pairs of ``clusters`` (source, record_id, profile_id) against
    ``truth`` (source, record_id, person_id) by cause.

    ``norm`` are the run's normalised records, ``edges`` its record-level edges (source_l,
    record_id_l, source_r, record_id_r, edge_type, rule, status) and ``blocking`` the Splink
    conditions its predict step ran (identity report key ``blocking_rules``) or, for a run
    that did not report them, the identity settings that choose them.
    """
    records, node_input, blocking_rules = _node_map(norm, blocking)
    con = duckdb.connect(":memory:")
    try:
        _frames(con, truth_in=truth[["source", "record_id", "person_id"]].astype("string"),
                clusters_in=clusters[["source", "record_id", "profile_id"]].astype("string"),
                record_nodes=records, node_input=node_input,
                edges_in=edges[["source_l", "record_id_l", "source_r", "record_id_r",
                                "edge_type", "rule", "status"]].astype("string"))
        con.execute(f"""
            create temp table rec as
            select row_number() over () as k, t.person_id, c.profile_id, n.node_id,
                   count(*) over (partition by t.person_id) as person_records
            from truth_in t join clusters_in c using (source, record_id)
            join record_nodes n using (source, record_id);
            create temp table node_edges as
            select least(a.node_id, b.node_id) as nl, greatest(a.node_id, b.node_id) as nr,
                   e.edge_type, e.status
            from edges_in e
            join record_nodes a on a.source = e.source_l and a.record_id = e.record_id_l
            join record_nodes b on b.source = e.source_r and b.record_id = e.record_id_r
            where a.node_id <> b.node_id;
            create temp table pairs as
            select a.person_id, least(a.node_id, b.node_id) as nl,
                   greatest(a.node_id, b.node_id) as nr, a.profile_id = b.profile_id as together
            from rec a join rec b on a.person_id = b.person_id and a.k < b.k
            where a.person_records <= {int(max_person_records)};
            create temp table node_pairs as
            with distinct_pairs as (select distinct nl, nr from pairs where nl <> nr)
            select p.nl, p.nr,
                   coalesce(({_admitted_sql(blocking_rules)}), false) as blocked_in
            from distinct_pairs p
            left join node_input l on l.unique_id = p.nl
            left join node_input r on r.unique_id = p.nr;
            create temp table edge_facts as
            select nl, nr, bool_or(edge_type <> 'splink') as rule_edge,
                   min(substr(status, 9)) filter (where status like 'refused:%') as refusal
            from node_edges group by nl, nr;
        """)
        classified = con.sql("""
            select p.person_id, p.nl, p.nr, p.together,
                   p.nl = p.nr or coalesce(np.blocked_in, false)
                       or coalesce(f.rule_edge, false) as compared,
                   f.refusal, count(*) as n
            from pairs p
            left join node_pairs np using (nl, nr)
            left join edge_facts f using (nl, nr)
            group by all
        """).df()
        skipped = con.execute(f"""
            select count(*) as persons, coalesce(sum(n * (n - 1) // 2), 0) as pairs
            from (select person_id, count(*) as n from rec group by 1)
            where n > {int(max_person_records)}
        """).fetchall()[0]
        false_edges = dict(con.sql("""
            select case when e.edge_type = 'splink' then 'splink'
                        else 'rule:' || coalesce(e.rule, '?') end as via, count(*)
            from edges_in e
            join truth_in a on a.source = e.source_l and a.record_id = e.record_id_l
            join truth_in b on b.source = e.source_r and b.record_id = e.record_id_r
            where e.status = 'merged' and a.person_id <> b.person_id
            group by 1 order by 1
        """).fetchall())
    finally:
        con.close()
    n = classified["n"].astype("int64")
    compared = classified["compared"].astype(bool)
    admitted = _reachable(classified, compared)
    missed = ~classified["together"].astype(bool)
    refused_rows = classified[missed & classified["refusal"].notna()]
    refused = {str(reason): int(count) for reason, count in
               refused_rows.groupby("refusal")["n"].sum().sort_index().items()}
    unrefused = missed & classified["refusal"].isna()
    true_pairs = int(n.sum())
    admitted_pairs = int(n[admitted].sum())
    return MissBreakdown(
        true_pairs=true_pairs,
        skipped_persons=int(skipped[0]),
        skipped_true_pairs=int(skipped[1]),
        compared_pairs=int(n[compared].sum()),
        admitted_pairs=admitted_pairs,
        blocking_recall=admitted_pairs / true_pairs if true_pairs else 1.0,
        missed_pairs=int(n[missed].sum()),
        never_compared=int(n[unrefused & ~admitted].sum()),
        below_threshold=int(n[unrefused & admitted].sum()),
        refused=refused,
        false_merge_edges={str(k): int(v) for k, v in false_edges.items()},
    )


def _reachable(pairs: pd.DataFrame, compared: pd.Series) -> pd.Series:
    """Per true pair: are its two records connected through the person's compared pairs?
    A person's fifth record need not be compared with the first when both were compared
    with the third; blocking lost a pair only when no chain of comparisons joins it."""
    ends = pd.concat([pairs[["person_id", "nl"]].set_axis(["source", "node"], axis=1),
                      pairs[["person_id", "nr"]].set_axis(["source", "node"], axis=1)])
    vertices = ends.drop_duplicates().reset_index(drop=True)
    vertices = vertices.assign(record_id=vertices["node"].astype("string"),
                               source=vertices["source"].astype("string"))
    links = pairs[compared.to_numpy()]
    component = components_from_edges(vertices, pd.DataFrame({
        "source_l": links["person_id"].astype("string").array,
        "record_id_l": links["nl"].astype("string").array,
        "source_r": links["person_id"].astype("string").array,
        "record_id_r": links["nr"].astype("string").array}))
    label = pd.Series(component.to_numpy(),
                      index=pd.MultiIndex.from_arrays([vertices["source"], vertices["node"]]))
    left = label.reindex(pd.MultiIndex.from_arrays([pairs["person_id"].astype("string"),
                                                    pairs["nl"]])).to_numpy()
    right = label.reindex(pd.MultiIndex.from_arrays([pairs["person_id"].astype("string"),
                                                     pairs["nr"]])).to_numpy()
    return pd.Series(left == right, index=pairs.index)


def pattern_metrics(clusters: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Metrics]:
    """Pairwise figures per ``pattern`` label of ``truth`` (empty when it has no such
    column): precision over predicted pairs with both records labelled, recall over true
    pairs with both records labelled."""
    if "pattern" not in truth.columns:
        return {}
    labels = truth["pattern"].astype("string").str.strip()
    return {str(label): evaluate(clusters, truth[labels == label])
            for label in sorted(labels.dropna().unique()) if label}


def diagnose_publication(paths: DataPaths, config: IdentityConfig, truth: pd.DataFrame
                         ) -> dict[str, Any]:
    """:func:`diagnose` of the published identity graph: its edges, the build file's
    normalised records and the blocking rules of the model the publication's run scored with
    (``config`` chooses them again when that model does not name them)."""
    from identity.splink_model import load_model, model_blocking
    from identity.training import read_normalised

    con = duckdb.connect(str(paths.published_db), read_only=True)
    try:
        clusters = con.sql("select source, record_id, profile_id "
                           "from main.fct_identity_graph").df()
        edges = con.sql("select source_l, record_id_l, source_r, record_id_r, edge_type, "
                        "rule, status from main.fct_identity_links").df()
        (run,) = con.execute("select max(run_id) from main._publication").fetchall()
    finally:
        con.close()
    norm = read_normalised(paths.build_db)
    report = paths.run_reports(str(run[0])) / "identity.json" if run[0] else None
    model_name = json.loads(report.read_text()).get("model") \
        if report is not None and report.exists() else None
    model_path = paths.models / model_name if model_name else None
    blocking = model_blocking(load_model(model_path)) \
        if model_path is not None and model_path.exists() else None
    figures = diagnose(truth, clusters, norm, edges,
                       blocking.rules if blocking is not None else config).as_dict()
    figures["blocking_rules_from"] = f"model {model_name}" if blocking is not None \
        else "identity settings"
    if len(norm) != len(clusters):
        figures["note"] = (f"{paths.build_db} holds {len(norm):,} records, the publication "
                           f"{len(clusters):,}: a later build did not publish, so the causes "
                           "mix two runs")
    return figures
