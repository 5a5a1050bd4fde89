"""The identity state a build keeps between runs, so that a daily run pays for what changed.

Two memos, each a pure function of its key, so that a memo which is ahead of (or behind) the
last good build can never make a run wrong, only slower:

* **normalised records**: ``int_identity__normalised`` keeps, per record, the version of the
  input it was normalised from (``_identity_version``: a hash of every column of the record
  and of :func:`normaliser_fingerprint`); a run normalises only records whose version it has
  not seen and takes every other row from its previous table.
* **Splink scores** (``identity_state`` schema): the pairs above the threshold among the
  person nodes scored so far, keyed by node (:data:`NODE_KEY`, a hash of the node's identity
  values) under one model and threshold; a run scores only pairs with a new node (through
  the model's blocking rules, :func:`identity.splink_model.predict_edges` ``fresh``) and
  drops the pairs of nodes that are gone.  A different model file or threshold, or
  ``cdp run --full-refresh``, starts the memo afresh.

Rule edges, guarded clustering and persistent ids are recomputed over all nodes every run:
they are vectorised or linear and cost seconds at a million records (measured in
``benchmarks/daily_delta.py``), while their outputs depend on whole groups and components.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from importlib import metadata, resources
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from identity.config import IdentityConfig
from identity.normalise import INPUT_COLUMNS, normalise_records
from identity.splink_model import Prediction, predict_edges

log = logging.getLogger(__name__)

VERSION_COLUMN = "_identity_version"
RUN_COLUMN = "_normalised_by_run"  # the run that normalised the row
SCORED_RUN = "scored_by_run"  # the run that scored the node / pair
# Bump when a normaliser changes what it returns for the same input.
NORMALISER_VERSION = 1
STATE_SCHEMA = "identity_state"
NODE_KEY = "node_key"
SCORED_NODES = f"{STATE_SCHEMA}.splink_scored_nodes"
SCORED_PAIRS = f"{STATE_SCHEMA}.splink_pairs"
STATE_META = f"{STATE_SCHEMA}.splink_meta"
MEMO_FORMAT = "1"  # bump when the memo tables change shape


def normaliser_fingerprint(config: IdentityConfig) -> str:
    """What normalisation depends on besides a record's own values: the normalisers' code
    and output columns, the settings, the nickname table and the phone-number metadata."""
    package = resources.files("identity").joinpath("normalise")
    code = hashlib.sha256()
    for module in sorted(package.iterdir(), key=lambda entry: entry.name):
        if module.name.endswith(".py"):
            code.update(module.name.encode() + b"\0" + module.read_bytes())
    nicknames = resources.files("identity").joinpath("data", "nicknames.yml").read_bytes()
    parts = [str(NORMALISER_VERSION), code.hexdigest(), ",".join(INPUT_COLUMNS),
             config.default_region, str(config.min_birth_date),
             hashlib.sha256(nicknames).hexdigest(), metadata.version("phonenumbers")]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _version_sql(columns: list[str], fingerprint: str) -> str:
    """A record's version: md5 over the fingerprint and every column (nulls marked apart
    from any text)."""
    values = ", ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), chr(30))" for c in columns)
    return f"md5(concat_ws(chr(31), '{fingerprint}', {values}))"


# A row normalised while its birth date was not believed (in the future, say) is normalised
# again every run: the verdict depends on the day, which its version does not hold.
_DISBELIEVED_DATE = "p.birth_date IS NULL AND v.birth_date IS NOT NULL"


@dataclass(frozen=True)
class NormalisedRun:
    """The normalised records (a relation on the build connection) and how many records were
    normalised in this run or taken from the previous table."""

    relation: duckdb.DuckDBPyRelation
    normalised: int
    reused: int


def normalise_incrementally(con: duckdb.DuckDBPyConnection,
                            records: duckdb.DuckDBPyRelation, previous: str | None,
                            config: IdentityConfig, run_id: str) -> NormalisedRun:
    """``records`` (``int_identity__records``) normalised, re-using the rows of ``previous``
    (the model's previous table; None: normalise everything) whose version still fits."""
    columns = list(records.columns)
    versioned = (f"(SELECT *, {_version_sql(columns, normaliser_fingerprint(config))} AS "
                 f"{VERSION_COLUMN} FROM ({records.sql_query()}))")
    todo_sql = f"SELECT * FROM {versioned}"
    kept_sql = None
    if previous is not None and {VERSION_COLUMN, RUN_COLUMN} <= set(con.table(previous).columns):
        match = (f"p.source = v.source AND p.record_id = v.record_id "
                 f"AND p.{VERSION_COLUMN} = v.{VERSION_COLUMN}")
        believed = f"NOT ({_DISBELIEVED_DATE})" if "birth_date" in columns else "true"
        todo_sql += (f" v WHERE NOT EXISTS (SELECT 1 FROM {previous} p WHERE {match} "
                     f"AND {believed})")
        kept_sql = (f"SELECT p.* FROM {previous} p JOIN {versioned} v ON {match} "
                    f"WHERE {believed}")
    todo = con.sql(todo_sql).df()
    fresh = normalise_records(todo.drop(columns=[VERSION_COLUMN]), config.default_region,
                              config.min_birth_date)
    fresh[VERSION_COLUMN] = todo[VERSION_COLUMN].astype("string").to_numpy()
    fresh[RUN_COLUMN] = pd.array([run_id] * len(fresh), dtype="string")
    # the relation reads the frame lazily, when dbt materialises it: a name of its own
    fresh_view = f"__cdp_fresh_{uuid.uuid4().hex[:12]}"
    con.register(fresh_view, fresh)
    relation = con.sql(f"SELECT * FROM {fresh_view}" if kept_sql is None
                       else f"{kept_sql} UNION ALL BY NAME SELECT * FROM {fresh_view}")
    # every record is either normalised again or taken over: no second pass over the join
    reused = int(records.aggregate("count(*)").fetchall()[0][0]) - len(fresh)
    log.info("identity normalise: %d records normalised, %d taken from the previous build",
             len(fresh), reused)
    return NormalisedRun(relation, len(fresh), reused)


def node_keys(nodes: pd.DataFrame, identity_columns: list[str]) -> np.ndarray:
    """A stable key per node: a hash of its identity values and its representative record
    (two nodes may share identity values where an override or a blank record keeps records
    apart).  A node whose representative changes gets a new key and is scored afresh: the
    memo costs a few more pairs then, never a wrong one."""
    values = nodes[identity_columns].astype("string").assign(
        _rep=nodes["rep_source"].astype("string") + ":" + nodes["rep_record_id"])
    return pd.util.hash_pandas_object(values, index=False).to_numpy().view(np.int64)


@dataclass
class ScoreMemo:
    """Splink pairs above ``threshold`` among the nodes ``scored`` under ``model``:
    ``pairs`` holds ``key_l, key_r`` (node keys) and the edge columns of
    :func:`identity.splink_model.empty_splink_edges` without the node ids."""

    model: str
    threshold: float
    scored: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: per scored node, the run that scored it (None: this run, filled in when saved)
    scored_by_run: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))


def model_key(document: dict[str, Any]) -> str:
    """What identifies a model for the memo: a hash of the whole document (a file edited by
    hand, or retrained in the same second, is another model)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``schema.name`` exists on ``con`` (a dbt session or a plain connection)."""
    schema, name = table.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                            "table_schema = ? AND table_name = ?", [schema, name]
                            ).fetchall()[0][0])


def load_memo(con: duckdb.DuckDBPyConnection, threshold: float) -> ScoreMemo:
    """The stored memo if it was made at ``threshold`` (an empty one otherwise); a memo made
    under another model is set aside where it is used (:func:`identity.resolve.link`)."""
    empty = ScoreMemo("", threshold)
    if not all(table_exists(con, table) for table in (STATE_META, SCORED_NODES, SCORED_PAIRS)):
        return empty
    meta = dict(con.execute(f"SELECT key, value FROM {STATE_META}").fetchall())
    if meta.get("format") != MEMO_FORMAT:
        return empty
    if meta.get("threshold") != repr(float(threshold)):
        log.info("identity state: Splink scores were kept at another threshold; scoring "
                 "every pair again")
        return empty
    scored = con.sql(f"SELECT {NODE_KEY}, {SCORED_RUN} FROM {SCORED_NODES}").df()
    pairs = con.sql(f"SELECT * FROM {SCORED_PAIRS}").df()
    return ScoreMemo(str(meta.get("model", "")), threshold,
                     scored[NODE_KEY].to_numpy(dtype=np.int64), pairs,
                     scored[SCORED_RUN].to_numpy(dtype=object))


def save_memo(con: duckdb.DuckDBPyConnection, memo: ScoreMemo, run_id: str) -> None:
    """Replace the stored memo (one transaction: the nodes and their pairs go together);
    what this run scored is marked with ``run_id``."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    by_run = pd.Series(memo.scored_by_run, dtype=object)
    con.register("__cdp_memo_nodes", pd.DataFrame({
        NODE_KEY: memo.scored, SCORED_RUN: by_run.where(by_run.notna(), run_id).astype(str)}))
    pairs = memo.pairs.assign(**{SCORED_RUN: memo.pairs[SCORED_RUN].where(
        memo.pairs[SCORED_RUN].notna(), run_id).astype(str)})
    con.register("__cdp_memo_pairs", pairs)
    con.register("__cdp_memo_meta", pd.DataFrame({
        "key": ["format", "model", "threshold"],
        "value": [MEMO_FORMAT, memo.model, repr(float(memo.threshold))]}))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE OR REPLACE TABLE {SCORED_NODES} AS SELECT * FROM __cdp_memo_nodes")
        con.execute(f"CREATE OR REPLACE TABLE {SCORED_PAIRS} AS SELECT * FROM __cdp_memo_pairs")
        con.execute(f"CREATE OR REPLACE TABLE {STATE_META} AS SELECT * FROM __cdp_memo_meta")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in ("__cdp_memo_nodes", "__cdp_memo_pairs", "__cdp_memo_meta"):
            con.unregister(name)


def clear_memo(con: duckdb.DuckDBPyConnection) -> None:
    """Forget every stored score (``--full-refresh``)."""
    for table in (SCORED_PAIRS, SCORED_NODES, STATE_META):
        con.execute(f"DROP TABLE IF EXISTS {table}")


PAIR_COLUMNS = ["match_probability", "match_weight", "gamma", "shared_contact"]


@dataclass(frozen=True)
class MemoScoring:
    """Splink edges of all current nodes (node ids, as :func:`predict_edges` returns them),
    the memo to store for the next run, and what was touched."""

    prediction: Prediction
    memo: ScoreMemo | None
    touched: dict[str, int]


def score_with_memo(nodes: pd.DataFrame, config: IdentityConfig, document: dict[str, Any],
                    memo: ScoreMemo, identity_columns: list[str]) -> MemoScoring:
    """Score the pairs of nodes the memo has not seen (against every node, through the
    model's blocking rules) and take the rest from the memo: the same edges a run over all
    nodes finds, because a pair's score depends on the pair and the model only."""
    keys = node_keys(nodes, identity_columns)
    node_ids = nodes["node_id"].to_numpy(dtype=np.int64)
    key_of = pd.Series(keys, index=node_ids)
    named = nodes["has_name"].to_numpy(dtype=bool)
    if pd.Index(keys).has_duplicates:  # a 64-bit collision: trust no stored score
        memo = ScoreMemo(memo.model, memo.threshold)
    fresh = ~np.isin(keys, memo.scored) & named
    fresh_by_node = np.zeros(int(node_ids.max()) + 1 if len(node_ids) else 0, dtype=bool)
    fresh_by_node[node_ids] = fresh
    prediction = predict_edges(nodes, config, document, fresh=fresh_by_node)
    new_pairs = prediction.edges.assign(
        key_l=key_of.loc[prediction.edges["node_l"].to_numpy()].to_numpy(),
        key_r=key_of.loc[prediction.edges["node_r"].to_numpy()].to_numpy())
    kept = memo.pairs
    if len(kept):
        present = pd.Index(keys[named])
        kept = kept[present.get_indexer(kept["key_l"]) >= 0]
        kept = kept[present.get_indexer(kept["key_r"]) >= 0]
    node_of_key = pd.Series(node_ids, index=keys)
    if len(kept):
        left = node_of_key.loc[kept["key_l"].to_numpy()].to_numpy()
        right = node_of_key.loc[kept["key_r"].to_numpy()].to_numpy()
        old_edges = kept[PAIR_COLUMNS].assign(node_l=np.minimum(left, right),
                                               node_r=np.maximum(left, right))
    else:
        old_edges = prediction.edges.iloc[:0]
    edges = pd.concat([old_edges[prediction.edges.columns], prediction.edges],
                      ignore_index=True).sort_values(["node_l", "node_r"], kind="stable")
    edges = edges.reset_index(drop=True).astype(prediction.edges.dtypes.to_dict())
    memo_columns = ["key_l", "key_r", *PAIR_COLUMNS, SCORED_RUN]
    new_pairs[SCORED_RUN] = None
    stored = pd.concat([kept[memo_columns] if len(kept) else new_pairs[memo_columns].iloc[:0],
                        new_pairs[memo_columns]], ignore_index=True)
    by_run = pd.Series(memo.scored_by_run, index=memo.scored, dtype=object)
    by_run = by_run[~by_run.index.duplicated()]
    scored_by_run = by_run.reindex(keys[named]).to_numpy(dtype=object, copy=True)
    scored_by_run[fresh[named]] = None
    touched = {"nodes_scored": int(fresh.sum()), "nodes_from_memo": int((named & ~fresh).sum()),
               "pairs_scored": int(len(prediction.edges)),
               "pairs_dropped": int(len(memo.pairs) - len(kept)),
               "pairs_from_memo": int(len(kept))}
    log.info("identity state: %(nodes_scored)d person nodes scored, %(nodes_from_memo)d from "
             "the memo; %(pairs_scored)d new pairs above the threshold, %(pairs_from_memo)d "
             "kept, %(pairs_dropped)d dropped", touched)
    return MemoScoring(Prediction(edges, document, prediction.blocking),
                       ScoreMemo(memo.model, memo.threshold, keys[named], stored,
                                 scored_by_run), touched)
