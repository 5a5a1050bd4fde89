"""Incremental linkage: a daily run recomputes only the candidate components its delta touches.

Guarded clustering decides inside one connected component of the *candidate* graph (every
candidate edge, whatever its status) from that component alone, so a component none of
whose records changed, and whose candidate edges did not change, gets the same edges and
statuses as last time.  A run therefore

* builds the nodes and scores Splink over all records (blocking needs every person node;
  the score memo keeps that cheap) and decides the birth-date guard from all of them,
* finds the *affected* records (SQL over the build connection): the nodes holding a record
  whose version the last build did not link (new or changed), the nodes sharing an identity
  tuple or a value a rule joins on with one of those or with a record the last build linked
  and that is gone or changed since, their must-link, Splink and e-mail/name candidates
  (changed overrides change the fingerprint below: everything is linked), and every
  record of the previous candidate components any of them (or a departed record) was in,
* runs rules and clustering on the affected records only (node ids keep their relative
  order, the generic-value verdicts come from all nodes) and takes every other edge from
  the previous links table.

The state (``identity_state``) is what the last build linked: per record its version, its
candidate component and hashes of the values above (:data:`LINK_RECORDS`: no identifier in
clear beside the normalised records), and a fingerprint of what
linkage depends on besides the records, the birth-date guard and a digest of the links
table written (:data:`LINK_META`).  Anything unexpected (no state, another fingerprint or
guard, a links table the digest does not describe, a candidate edge leaving the affected
records) means a full recompute: the state makes a run slower or faster, never different.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from identity.clustering import components_from_edges
from identity.config import IdentityConfig
from identity.explain import comparison_weights
from identity.keys import record_keys, smallest_per_group
from identity.normalise import IDENTITY_COLUMNS
from identity.resolve import Linkage, _birth_date_guard, _nodes, _splink_edges, decide
from identity.rules import (
    NAME_ONLY_COLUMNS,
    RULES,
    email_name_edges,
    override_edges,
    rule_edges,
)
from identity.splink_model import Prediction, empty_splink_edges
from identity.stable_ids import assign_persistent_ids
from identity.state import STATE_SCHEMA, ScoreMemo, table_exists

log = logging.getLogger(__name__)

LINK_RECORDS = f"{STATE_SCHEMA}.link_records"
LINK_META = f"{STATE_SCHEMA}.link_meta"
CLUSTER_META = f"{STATE_SCHEMA}.cluster_meta"
LINK_FORMAT = "1"  # bump when the state tables change shape or meaning
LINKED_RUN = "linked_by_run"  # the run that last recomputed the record's component
COMPONENT = "component"  # smallest exact record key of the record's candidate component
TUPLE_KEY = "tuple_key"  # hash of the node's identity values (null: a record of its own)
#: the node values a rule joins on (phone_digits is derived from phone in build_nodes)
JOIN_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(rule.column for rule in RULES))
SOFT_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(r.column for r in RULES if not r.hard))

LINKS_DIGEST = ("SELECT count(*), coalesce(bit_xor(hash(source_l, record_id_l, source_r, "
                "record_id_r, rule, status)), 0) FROM {}")
CLUSTERS_DIGEST = ("SELECT count(*), coalesce(bit_xor(hash(source, record_id, profile_id)), "
                   "0) FROM {}")


def link_fingerprint(config: IdentityConfig, overrides: list[dict[str, str]] | None,
                     model_file: str | None) -> str:
    """What the links depend on besides the records: settings, overrides, the model file's
    content and the code of the state (a DuckDB hash keys the identity tuples)."""
    model = hashlib.sha256(Path(model_file).read_bytes()).hexdigest() if model_file else ""
    text = json.dumps([LINK_FORMAT, duckdb.__version__, config.to_vars(), overrides or [],
                       model], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def digest(con: duckdb.DuckDBPyConnection, query: str, relation: str) -> str:
    """Row count and order-free hash of a table's rows (the key columns of ``query``)."""
    count, value = con.execute(query.format(relation)).fetchall()[0]
    return f"{count}:{value}"


def _meta(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """A meta table's key/value rows (none when it does not exist)."""
    if not table_exists(con, table):
        return {}
    return dict(con.execute(f"SELECT key, value FROM {table}").fetchall())


@dataclass(frozen=True)
class PreviousLinks:
    """A usable state: the build it describes and its birth-date guard decision."""

    run: str
    birth_date_guard: bool


def load_link_state(con: duckdb.DuckDBPyConnection, fingerprint: str, links: str
                    ) -> PreviousLinks | None:
    """The state if it describes ``links`` (the model's previous table) under
    ``fingerprint``; None (recompute everything) otherwise."""
    meta = _meta(con, LINK_META)
    if meta.get("format") != LINK_FORMAT or not table_exists(con, LINK_RECORDS):
        return None
    if meta.get("fingerprint") != fingerprint:
        log.info("identity state: settings, overrides or model changed; linking everything")
        return None
    if meta.get("digest") != digest(con, LINKS_DIGEST, links):
        log.info("identity state: the links table is not the one the state describes; "
                 "linking everything")
        return None
    return PreviousLinks(meta["run"], meta["birth_date_guard"] == "true")


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, table: pa.Table | pd.DataFrame
               ) -> Iterator[str]:
    """``table`` under a fresh name on ``con`` for the duration."""
    name = _register(con, table)
    try:
        yield name
    finally:
        con.unregister(name)


def node_values(nodes: pd.DataFrame) -> pa.Table:
    """Per node what the affected set is found by: ``node``, the identity tuple's key (null
    for a node holding no identifying value: a record of its own), the values rules join on
    and the names the generic-value verdict counts."""
    identifying = [c for c in IDENTITY_COLUMNS if c not in NAME_ONLY_COLUMNS]
    columns = {"node": pa.array(nodes["node_id"].to_numpy(dtype=np.int64))}
    for column in dict.fromkeys([*IDENTITY_COLUMNS, *JOIN_COLUMNS, "first_name", "last_name"]):
        columns[column] = pa.array(nodes[column].array, from_pandas=True)
    columns["has_person"] = pa.array(nodes["has_person"].to_numpy(dtype=bool))
    table = pa.table(columns)
    con = duckdb.connect()
    try:
        con.register("nodes", table)
        blank = " AND ".join(f'"{c}" IS NULL' for c in identifying) or "false"
        values = ", ".join(f'"{c}"' for c in IDENTITY_COLUMNS)
        joins = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in JOIN_COLUMNS)
        return con.sql(
            f"SELECT node, CASE WHEN {blank} THEN NULL ELSE hash({values}) END AS {TUPLE_KEY}, "
            f"{joins}, first_name, last_name, has_person FROM nodes ORDER BY node").to_arrow_table()
    finally:
        con.close()


def generic_values(con: duckdb.DuckDBPyConnection, nodes: str, max_identifier_people: int
                   ) -> dict[str, set[str]]:
    """Per soft identifier, the values more than ``max_identifier_people`` distinct names
    share among all ``nodes`` (a registered :func:`node_values` table): the verdict
    :func:`identity.rules.rule_edges` would reach over all nodes."""
    out: dict[str, set[str]] = {}
    for column in SOFT_COLUMNS:
        rows = con.execute(
            f'SELECT "{column}" FROM {nodes} WHERE "{column}" IS NOT NULL AND has_person '
            f"GROUP BY 1 HAVING count(DISTINCT coalesce(first_name, '') || '|' || "
            f"coalesce(last_name, '')) > ?", [max_identifier_people]).fetchall()
        out[column] = {str(row[0]) for row in rows}
    return out


def _hashed(column: str) -> str:
    """SQL of a join value as the state keeps it: a hash (equal values, equal hashes; a
    collision only links a few more records again), null for null."""
    return f'CASE WHEN "{column}" IS NULL THEN NULL ELSE hash("{column}") END'


def _value_match(nodes: str, seeds: str, hashed: bool) -> str:
    """Nodes sharing the identity tuple or a join value with a row of ``seeds`` (whose join
    values are hashes if ``hashed``: rows of the state)."""
    parts = [f'SELECT node FROM {nodes} WHERE {TUPLE_KEY} IN (SELECT {TUPLE_KEY} FROM {seeds} '
             f"WHERE {TUPLE_KEY} IS NOT NULL)"]
    for column in JOIN_COLUMNS:
        value = _hashed(column) if hashed else f'"{column}"'
        parts.append(f'SELECT node FROM {nodes} WHERE {value} IN (SELECT "{column}" FROM '
                     f'{seeds} WHERE "{column}" IS NOT NULL)')
    return " UNION ".join(parts)


def affected_records(con: duckdb.DuckDBPyConnection, records: str, nodes: str,
                     candidate_pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Positions of the records to link again (see the module's docstring).

    ``records``: registered ``row, source, record_id, version, node, renormalised`` of
    every current record; ``nodes``: registered :func:`node_values`; ``candidate_pairs``:
    node pairs of the must-link, Splink and e-mail/name candidates over all nodes (one hop
    from a seed is enough: an edge between two unchanged nodes is one the last build had,
    inside one of its components)."""
    same = "s.source = c.source AND s.record_id = c.record_id AND s.version = c.version"
    fresh = (f"SELECT c.node FROM {records} c ANTI JOIN {LINK_RECORDS} s ON {same} "
             f"UNION SELECT node FROM {records} WHERE renormalised")
    departed = f"SELECT s.* FROM {LINK_RECORDS} s ANTI JOIN {records} c ON {same}"
    seeds = f"SELECT * FROM {nodes} WHERE node IN ({fresh})"
    seed_nodes = con.execute(
        f"WITH seeds AS ({seeds}), departed AS ({departed}) "
        f"{_value_match(nodes, 'seeds', False)} UNION {_value_match(nodes, 'departed', True)} "
        f"UNION {fresh}").fetchnumpy()["node"].astype(np.int64)
    touched = np.zeros(int(con.execute(f"SELECT count(*) FROM {nodes}").fetchall()[0][0]),
                       dtype=bool)
    touched[seed_nodes] = True
    partners = [touched]
    for left, right in candidate_pairs:
        hit = touched[left] | touched[right]
        partner = np.zeros_like(touched)
        partner[left[hit]] = partner[right[hit]] = True
        partners.append(partner)
    chosen = np.logical_or.reduce(partners)
    with registered(con, pa.table({"node": np.flatnonzero(chosen)})) as chosen_nodes:
        rows = con.execute(
            f"WITH departed AS ({departed}), hit AS ("
            f"SELECT s.{COMPONENT} FROM {records} c JOIN {LINK_RECORDS} s ON {same} "
            f"WHERE c.node IN (SELECT node FROM {chosen_nodes}) "
            f"UNION SELECT {COMPONENT} FROM departed) "
            f"SELECT c.row FROM {records} c LEFT JOIN {LINK_RECORDS} s ON {same} "
            f"WHERE c.node IN (SELECT node FROM {chosen_nodes}) "
            f"OR s.{COMPONENT} IN (SELECT {COMPONENT} FROM hit)").fetchnumpy()["row"]
    mask = np.zeros(int(con.execute(f"SELECT count(*) FROM {records}").fetchall()[0][0]),
                    dtype=bool)
    mask[rows.astype(np.int64)] = True
    return mask


def rules_stay_inside(con: duckdb.DuckDBPyConnection, nodes: str, affected_nodes: np.ndarray,
                      generic: dict[str, set[str]]) -> bool:
    """No value a rule joins on is held by an affected and an unaffected node, except a
    generic one (which joins nothing) and an e-mail whose people and person-less nodes fall
    on different sides (the address names someone else than its people: no edge between the
    two, see :func:`identity.rules.rule_edges`), so the rule edges of the affected records
    are theirs alone (a safety net under the reasoning of :func:`affected_records`)."""
    with registered(con, pa.table({"node": affected_nodes})) as inside:
        for column in JOIN_COLUMNS:
            apart = "bool_and(has_person = inside) OR bool_and(has_person <> inside)" \
                if column == "email" else "false"
            found = con.execute(
                f'SELECT "{column}" FROM (SELECT "{column}", has_person, node IN (SELECT node '
                f'FROM {inside}) AS inside FROM {nodes} WHERE "{column}" IS NOT NULL) GROUP BY 1 '
                f"HAVING bool_or(inside) AND NOT bool_and(inside) AND NOT ({apart})").fetchall()
            if any(str(row[0]) not in generic.get(column, ()) for row in found):
                return False
    return True


def component_keys(norm: pd.DataFrame, edges: pd.DataFrame) -> pa.Array:
    """Per record of ``norm`` its candidate component (over ``edges``, every status), named
    by the component's smallest exact record key."""
    labels = components_from_edges(norm[["source", "record_id"]], edges).to_numpy()
    keys = record_keys(norm["source"], norm["record_id"])
    groups, smallest = smallest_per_group(keys, labels)
    name = np.empty(int(labels.max()) + 1 if len(labels) else 0, dtype=object)
    name[groups] = smallest
    return pa.array(name[labels], pa.string())


def state_rows(norm: pd.DataFrame, versions: pa.Array | pa.ChunkedArray, node_of_record: np.ndarray,
               values: pa.Table, components: pa.Array, run_id: str) -> pa.Table:
    """The :data:`LINK_RECORDS` rows of the records linked in this run."""
    at = pa.array(node_of_record, pa.int64())
    columns: dict[str, Any] = {
        "source": pa.array(norm["source"].astype("string").array, pa.string()),
        "record_id": pa.array(norm["record_id"].astype("string").array, pa.string()),
        "version": versions, COMPONENT: components}
    for column in (TUPLE_KEY, *JOIN_COLUMNS):
        columns[column] = values.column(column).take(at)
    columns[LINKED_RUN] = pa.repeat(run_id, len(norm)) if len(norm) else pa.array([], pa.string())
    return pa.table(columns)


def save_link_state(con: duckdb.DuckDBPyConnection, linked: pa.Table, kept: str | None,
                    meta: dict[str, str]) -> None:
    """Replace the state (one transaction): ``linked`` rows plus, with ``kept`` (SQL of the
    previous rows still valid), those; then ``meta``."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    with registered(con, linked) as new, registered(con, pd.DataFrame(
            {"key": list(meta), "value": list(meta.values())})) as meta_rows:
        hashed = ", ".join(f'{_hashed(c)} AS "{c}"' for c in JOIN_COLUMNS)
        rows = f"SELECT * REPLACE ({hashed}) FROM {new}"
        if kept is not None:
            rows = f"{kept} UNION ALL BY NAME {rows}"
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE OR REPLACE TABLE {LINK_RECORDS}_next AS {rows}")
            con.execute(f"DROP TABLE IF EXISTS {LINK_RECORDS}")
            con.execute(f"ALTER TABLE {LINK_RECORDS}_next RENAME TO "
                        f"{LINK_RECORDS.split('.')[1]}")
            con.execute(f"CREATE OR REPLACE TABLE {LINK_META} AS SELECT * FROM {meta_rows}")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def clear_link_state(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the state (a run that could not keep it)."""
    for table in (LINK_META, LINK_RECORDS, CLUSTER_META):
        con.execute(f"DROP TABLE IF EXISTS {table}")


@dataclass
class LinksBuild:
    """The links table to publish (a relation on the build connection: the edges linked in
    this run plus the previous table's edges of every other record) and the linkage of the
    records linked in this run."""

    relation: duckdb.DuckDBPyRelation
    linkage: Linkage


def _same_order(to_sub: np.ndarray) -> bool:
    """The restricted nodes are the whole nodes of the full build, numbered in the same
    order (node ids rank identity tuples, so a union of whole nodes keeps their order)."""
    mapped = to_sub[to_sub >= 0]
    return bool(np.all(np.diff(mapped) == 1)) and (len(mapped) == 0 or mapped[0] == 0)


def _restrict(edges: pd.DataFrame, to_sub: np.ndarray) -> pd.DataFrame | None:
    """``edges`` among the restricted nodes, renumbered; None if one leaves them."""
    left = to_sub[edges["node_l"].to_numpy(dtype=np.int64)]
    right = to_sub[edges["node_r"].to_numpy(dtype=np.int64)]
    if np.any((left >= 0) != (right >= 0)):
        return None
    inside = left >= 0
    return edges[inside].assign(node_l=left[inside], node_r=right[inside]).reset_index(drop=True)


def _decide_restricted(norm: pd.DataFrame, affected: np.ndarray, nodes: pd.DataFrame,
                       node_of_record: np.ndarray, config: IdentityConfig,
                       overrides: pd.DataFrame, dob_guard: bool,
                       candidates: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
                       cannot_pairs: list[tuple[int, int]], generic: dict[str, set[str]]
                       ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Rules and clustering over the ``affected`` records only: their records and edges, or
    None when they are not whole nodes in the full build's order or one of the must-link,
    Splink or e-mail/name ``candidates`` of all nodes leaves them (then everything is
    linked)."""
    sub = norm[affected].reset_index(drop=True)
    _, _, sub_nodes, sub_of_record = _nodes(sub, overrides)
    to_sub = np.full(len(nodes), -1, dtype=np.int64)
    to_sub[node_of_record[affected]] = sub_of_record
    if not _same_order(to_sub) or np.any(to_sub[node_of_record[~affected]] >= 0):
        return None
    must_edges, splink_edges, email_names = (_restrict(edges, to_sub) for edges in candidates)
    if must_edges is None or splink_edges is None or email_names is None:
        return None
    # a cannot-link reaching outside never meets a merge: the two sides share no component
    cannot = [(int(to_sub[a]), int(to_sub[b])) for a, b in cannot_pairs
              if to_sub[a] >= 0 and to_sub[b] >= 0]
    rules = rule_edges(sub_nodes, config.pairwise_group_limit, config.max_identifier_people,
                       config.strong_identifiers, generic_values=generic)
    _, _, edges = decide(sub, sub_nodes, sub_of_record, config, dob_guard,
                         [must_edges, rules, splink_edges, email_names], cannot)
    return sub, edges


def edges_with_weights(edges: pd.DataFrame, model: dict[str, Any] | None,
                       model_path: str | None) -> pd.DataFrame:
    """The links table's rows: ``edges`` with each Splink edge's comparison weights and the
    model file's name."""
    edges = edges.assign(
        comparison_weights=comparison_weights(edges["gamma"], model)
        if model is not None else None,
        model=edges["edge_type"].map({"splink": Path(model_path).name if model_path else None}))
    return edges.astype({"comparison_weights": "string", "model": "string"})


def build_links(con: duckdb.DuckDBPyConnection, norm: pd.DataFrame,
                versions: pa.Array | pa.ChunkedArray,
                config: IdentityConfig, *, overrides: pd.DataFrame, fingerprint: str,
                model_path: str | None, memo: ScoreMemo | None, previous_table: str | None,
                run_id: str, renormalised: np.ndarray | None = None) -> LinksBuild:
    """Link ``norm`` (with each record's ``_identity_version``; ``renormalised``: the records
    normalised in this run, whose values may differ under the same version, such as a birth
    date believed from today on) re-using the previous build
    where the state allows (``previous_table`` None: link everything), save the state for
    the next run and return what to publish."""
    started = time.perf_counter()
    previous = load_link_state(con, fingerprint, previous_table) \
        if previous_table is not None else None
    checked, exact, nodes, node_of_record = _nodes(norm, overrides)
    scored = _splink_edges(nodes, config, model_path, memo) if config.use_splink else None
    prediction = scored.prediction if scored is not None \
        else Prediction(empty_splink_edges(), None, None)
    splink_edges = prediction.edges
    dob_guard = _birth_date_guard(config, nodes, splink_edges)
    email_names = email_name_edges(nodes)
    values = node_values(nodes)
    records = pa.table({
        "row": pa.array(np.arange(len(norm), dtype=np.int64)),
        "source": pa.array(norm["source"].astype("string").array, pa.string()),
        "record_id": pa.array(norm["record_id"].astype("string").array, pa.string()),
        "version": versions, "node": pa.array(node_of_record, pa.int64()),
        "renormalised": pa.array(np.zeros(len(norm), dtype=bool) if renormalised is None
                                 else renormalised)})
    must_edges, cannot_pairs = override_edges(checked, exact, node_of_record)
    affected = np.ones(len(norm), dtype=bool)
    decided = None
    with registered(con, values) as nodes_sql, registered(con, records) as records_sql:
        if previous is not None and previous.birth_date_guard != dob_guard:
            log.info("identity state: the birth-date guard changed; linking everything")
        elif previous is not None:
            affected = affected_records(con, records_sql, nodes_sql, [
                (edges["node_l"].to_numpy(dtype=np.int64),
                 edges["node_r"].to_numpy(dtype=np.int64))
                for edges in (must_edges, splink_edges, email_names)])
        if not affected.all():
            generic = generic_values(con, nodes_sql, config.max_identifier_people)
            if rules_stay_inside(con, nodes_sql, np.unique(node_of_record[affected]), generic):
                decided = _decide_restricted(
                    norm, affected, nodes, node_of_record, config, overrides, dob_guard,
                    (must_edges, splink_edges, email_names), cannot_pairs, generic)
            if decided is None:
                log.warning("identity state: a candidate edge leaves the affected records; "
                            "linking everything")
                affected[:] = True
    if decided is None:
        rules = rule_edges(nodes, config.pairwise_group_limit, config.max_identifier_people,
                           config.strong_identifiers)
        decided = norm, decide(norm, nodes, node_of_record, config, dob_guard,
                               [must_edges, rules, splink_edges, email_names], cannot_pairs)[2]
    linked, edges = decided
    components = component_keys(linked, edges)
    stats: dict[str, Any] = {
        "records": int(len(norm)), "nodes": int(len(nodes)),
        "records_linked": int(affected.sum()),
        "components_linked": int(len(pc.unique(components))),
        "birth_date_guard": dob_guard,
        **(scored.touched if scored is not None else {}),
        "seconds_total": round(time.perf_counter() - started, 2)}
    log.info("identity link: %(records_linked)d of %(records)d records linked again "
             "(%(components_linked)d candidate components) in %(seconds_total).1fs", stats)
    linkage = Linkage(edges=edges, stats=stats, model=prediction.model,
                      memo=scored.memo if scored is not None else None)
    # the published relation reads these lazily, when dbt materialises it: names of their own
    flagged = _register(con, records.append_column("affected", pa.array(affected)))
    fresh = _register(con, edges_with_weights(edges, linkage.model, model_path))
    relation = con.sql(f"SELECT * FROM {fresh}")
    kept = None
    if not affected.all():
        assert previous_table is not None  # something was kept, so there was a table
        relation = con.sql(
            f"SELECT p.* FROM {previous_table} p SEMI JOIN {flagged} c ON p.source_l = "
            f"c.source AND p.record_id_l = c.record_id AND NOT c.affected "
            f"UNION ALL BY NAME SELECT * FROM {fresh}")
        kept = (f"SELECT s.* FROM {LINK_RECORDS} s SEMI JOIN {flagged} c ON s.source = "
                "c.source AND s.record_id = c.record_id AND s.version = c.version AND NOT "
                "c.affected")
    save_link_state(con, state_rows(linked, versions.filter(pa.array(affected)),
                                    node_of_record[affected], values, components, run_id),
                    kept, {"format": LINK_FORMAT, "fingerprint": fingerprint, "run": run_id,
                           "previous_run": previous.run if previous else "",
                           "scope": "affected" if kept else "all",
                           "birth_date_guard": str(dob_guard).lower(),
                           "digest": digest(con, LINKS_DIGEST, f"({relation.sql_query()})")})
    return LinksBuild(relation, linkage)


def _register(con: duckdb.DuckDBPyConnection, table: pa.Table | pd.DataFrame) -> str:
    """``table`` under a fresh name for the rest of the session (read by a lazy relation)."""
    name = f"__cdp_{uuid.uuid4().hex[:12]}"
    con.register(name, table)
    return name


def _clusters_reusable(con: duckdb.DuckDBPyConnection, previous: str | None, run_id: str
                       ) -> bool:
    """Whether this run linked only some records on top of the build ``previous`` (the
    clusters model's previous table) was derived from."""
    links, clusters = _meta(con, LINK_META), _meta(con, CLUSTER_META)
    return previous is not None and links.get("run") == run_id \
        and links.get("scope") == "affected" and bool(links.get("previous_run")) \
        and clusters.get("links_run") == links.get("previous_run") \
        and clusters.get("digest") == digest(con, CLUSTERS_DIGEST, previous)


def build_clusters(con: duckdb.DuckDBPyConnection, records: duckdb.DuckDBPyRelation,
                   links: duckdb.DuckDBPyRelation, previous: str | None,
                   retired: list[str], run_id: str) -> duckdb.DuckDBPyRelation:
    """Profiles (components of the merged ``links``) with persistent ids inherited from
    ``previous`` (the last published profiles; None on a first build), ``retired`` ids never
    reissued.  Where this run linked only some records (:func:`build_links`), only their
    profiles are derived again: a profile lies inside one candidate component, so every
    other record keeps its profile, and the ids it holds are what no new profile may take."""
    keys = records.project("source, record_id").df()
    merged = links.filter("status = 'merged'")
    kept = None
    if _clusters_reusable(con, previous, run_id):
        linked = f"(SELECT source, record_id FROM {LINK_RECORDS} WHERE {LINKED_RUN} = ?)"
        linked_keys = con.execute(f"SELECT * FROM {linked}", [run_id]).df()
        keys = keys[pc.is_in(record_keys(keys["source"], keys["record_id"]), value_set=record_keys(
            linked_keys["source"], linked_keys["record_id"])).to_numpy(zero_copy_only=False)]
        others = f"(SELECT source, record_id FROM {LINK_RECORDS} WHERE {LINKED_RUN} <> " \
                 f"'{_quoted(run_id)}')"
        kept = (f"SELECT p.source, p.record_id, p.profile_id, p.profile_id AS "
                f"previous_profile_id FROM {previous} p SEMI JOIN {others} k "
                "ON p.source = k.source AND p.record_id = k.record_id")
        counts = con.execute(f"SELECT (SELECT count(*) FROM ({kept})), "
                             f"(SELECT count(*) FROM {others})").fetchall()[0]
        if counts[0] != counts[1]:
            log.warning("identity state: the previous profiles lack records; deriving all")
            kept, keys = None, records.project("source, record_id").df()
    if kept is not None:
        with registered(con, keys) as chosen:
            edges = con.sql(f"SELECT l.* FROM ({merged.sql_query()}) l SEMI JOIN {chosen} k "
                            "ON l.source_l = k.source AND l.record_id_l = k.record_id").df()
            old = con.execute(f"SELECT p.source, p.record_id, p.profile_id FROM {previous} p "
                              f"SEMI JOIN {chosen} k ON p.source = k.source AND "
                              "p.record_id = k.record_id").df()
        held = con.execute(f"SELECT DISTINCT profile_id FROM ({kept})").df()["profile_id"]
        retired = [*retired, *held.astype(str)]
    else:
        edges = merged.df()
        old = con.execute(f"SELECT source, record_id, profile_id FROM {previous}").df() \
            if previous is not None else None
    derived = _register(con, assign_persistent_ids(
        keys.assign(cluster=components_from_edges(keys, edges)), old, retired))
    relation = con.sql(f"SELECT * FROM {derived}" if kept is None
                       else f"{kept} UNION ALL BY NAME SELECT * FROM {derived}")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    with registered(con, pd.DataFrame({"key": ["links_run", "digest"], "value": [
            run_id, digest(con, CLUSTERS_DIGEST, f"({relation.sql_query()})")]})) as meta:
        con.execute(f"CREATE OR REPLACE TABLE {CLUSTER_META} AS SELECT * FROM {meta}")
    log.info("identity clusters: profiles of %d records derived again", len(keys))
    return relation


def _quoted(text: str) -> str:
    return text.replace("'", "''")
