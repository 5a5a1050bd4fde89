"""Persistent profile ids: a new clustering inherits the ids of the previous one.

Exports, suppression lists and marketing tools key on ``profile_id``, so re-running the
pipeline must not renumber people.  Each new cluster takes the previous id it shares most
records with; an old id goes to at most one new cluster (the others of a split get fresh
ids); fresh ids are derived from the cluster's smallest record key and re-drawn whenever they
would collide with an id in use or retired, so an id never comes back for someone else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from identity.keys import key_positions, record_keys, smallest_per_group

KEY = ["source", "record_id"]


def profile_id_for(record_key: str) -> str:
    """Stable profile id from the smallest ``source:record_id`` of the cluster."""
    return "P" + hashlib.sha256(record_key.encode("utf-8")).hexdigest()[:16]


def _fresh_id(record_key: str, taken: set[str]) -> str:
    """Deterministic id for a new cluster, skipping every id in ``taken``."""
    candidate, attempt = profile_id_for(record_key), 0
    while candidate in taken:
        attempt += 1
        candidate = profile_id_for(f"{record_key}#{attempt}")
    return candidate


def _previous_ids(source: pd.Series, record_id: pd.Series, previous: pd.DataFrame | None
                  ) -> pd.Series | None:
    """Each record's previous profile id (a left join on ``source, record_id``)."""
    if previous is None or not len(previous):
        return pd.Series(pd.NA, index=source.index, dtype="string")
    found = key_positions(record_keys(previous["source"], previous["record_id"]),
                          [record_keys(source, record_id)])
    if found is None:
        return None  # duplicate keys: the caller falls back to a plain merge
    old_ids = pd.array(previous["profile_id"], dtype="string")
    return pd.Series(old_ids.take(found[0], allow_fill=True), index=source.index)


def assign_persistent_ids(clusters: pd.DataFrame, previous: pd.DataFrame | None = None,
                          retired: Iterable[str] = ()) -> pd.DataFrame:
    """Give every cluster of ``clusters`` (``source, record_id, cluster``) a profile id.

    Args:
        clusters: one row per record; ``cluster`` is any label grouping the records.
        previous: the last published assignment ``source, record_id, profile_id`` (None or
            empty on the first run).
        retired: ids issued before that are no longer in use (merged away); never reissued.

    Returns ``source, record_id, profile_id, previous_profile_id`` (the latter null for
    records new to this run).
    """
    frame = clusters[KEY + ["cluster"]].copy()
    unlabelled = int(frame["cluster"].isna().sum())
    if unlabelled:
        raise ValueError(f"assign_persistent_ids: {unlabelled} record(s) without a cluster "
                         "label; every record must belong to a cluster")
    source = frame["source"].astype("string")
    record_id = frame["record_id"].astype("string")
    found = _previous_ids(source, record_id, previous)
    if found is None:
        assert previous is not None  # _previous_ids returns None only for a non-empty one
        old = previous[KEY + ["profile_id"]].rename(columns={"profile_id": "previous_profile_id"})
        old = old.astype({"source": "string", "record_id": "string"})
        frame = frame.astype({"source": "string", "record_id": "string"}).merge(
            old, on=KEY, how="left")
        source, record_id = frame["source"], frame["record_id"]
    else:
        frame["previous_profile_id"] = found
    frame["previous_profile_id"] = frame["previous_profile_id"].astype("string")

    codes, labels = pd.factorize(frame["cluster"])
    ids = np.full(len(labels), None, dtype=object)
    previous_ids = frame["previous_profile_id"]
    overlap = (pd.DataFrame({"cluster": codes, "old": previous_ids.array})
               .dropna(subset=["old"])
               .groupby(["cluster", "old"]).size().rename("shared").reset_index())
    overlap["label"] = labels.take(overlap["cluster"].to_numpy())  # ties: by cluster label
    overlap = overlap.sort_values(["shared", "old", "label"], ascending=[False, True, True],
                                  kind="stable")
    # greedy by overlap: the largest share wins; each old id and each cluster used once.  A
    # row that is the first of its cluster and of its old id always wins; only the others
    # need the sequential pass (nothing after such a row can take its cluster or old id)
    first = ~overlap["cluster"].duplicated() & ~overlap["old"].duplicated()
    sure = overlap[first]
    ids[sure["cluster"].to_numpy()] = sure["old"].to_numpy(dtype=object)
    used_old = set(sure["old"])
    for cluster, old_id in zip(overlap.loc[~first, "cluster"].tolist(),
                               overlap.loc[~first, "old"].tolist(), strict=True):
        if ids[cluster] is None and old_id not in used_old:
            ids[cluster] = old_id
            used_old.add(old_id)

    fresh = pd.isna(ids)
    if fresh.any():
        taken = set(pc.unique(pa.array(previous_ids.array, pa.string())).drop_null()
                    .to_pylist()) | set(map(str, retired))
        rows = np.flatnonzero(fresh[codes])
        clusters, smallest = smallest_per_group(
            record_keys(source.iloc[rows], record_id.iloc[rows], ":"), codes[rows])
        for key, cluster in sorted(zip(smallest, clusters.tolist(), strict=True)):
            ids[cluster] = _fresh_id(key, taken)
            taken.add(ids[cluster])
    per_cluster = pd.array(ids, dtype="string")
    return pd.DataFrame({
        "source": source.array,
        "record_id": record_id.array,
        "profile_id": per_cluster.take(codes),
        "previous_profile_id": frame["previous_profile_id"].array,
    })
