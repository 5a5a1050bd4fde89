"""Pairwise precision / recall / F1 of a clustering against ground truth.

Pair counts come from group sizes (a group of n records holds n*(n-1)/2 pairs), so evaluating
150k records costs a few group-bys instead of enumerating billions of pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class Metrics:
    """Pairwise quality plus cluster-level error counts."""

    records: int
    true_pairs: int
    predicted_pairs: int
    true_positive_pairs: int
    precision: float
    recall: float
    f1: float
    profiles: int
    persons: int
    over_merged_clusters: int  # profiles holding records of more than one person
    split_persons: int  # persons whose records ended up in more than one profile

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def __str__(self) -> str:
        return (f"P={self.precision:.4f} R={self.recall:.4f} F1={self.f1:.4f} "
                f"records={self.records} profiles={self.profiles} persons={self.persons} "
                f"over_merged={self.over_merged_clusters} split={self.split_persons}")


def _pairs(sizes: pd.Series) -> int:
    sizes = sizes.astype("int64")
    return int((sizes * (sizes - 1) // 2).sum())


def evaluate(clusters_df: pd.DataFrame, truth_df: pd.DataFrame) -> Metrics:
    """Compare ``clusters_df`` (source, record_id, profile_id) with ``truth_df``
    (source, record_id, person_id) over the records present in both."""
    for name, frame, column in (("clusters", clusters_df, "profile_id"),
                                ("truth", truth_df, "person_id")):
        missing = {"source", "record_id", column} - set(frame.columns)
        if missing:
            raise ValueError(f"{name} frame lacks column(s) {sorted(missing)}")
    left = clusters_df[["source", "record_id", "profile_id"]].astype("string")
    right = truth_df[["source", "record_id", "person_id"]].astype("string")
    both = left.merge(right, on=["source", "record_id"], how="inner")
    true_pairs = _pairs(both.groupby("person_id").size())
    predicted_pairs = _pairs(both.groupby("profile_id").size())
    cells = both.groupby(["profile_id", "person_id"]).size()
    tp = _pairs(cells)
    precision = tp / predicted_pairs if predicted_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_profile = cells.reset_index().groupby("profile_id")["person_id"].nunique()
    per_person = cells.reset_index().groupby("person_id")["profile_id"].nunique()
    return Metrics(
        records=len(both), true_pairs=true_pairs, predicted_pairs=predicted_pairs,
        true_positive_pairs=tp, precision=precision, recall=recall, f1=f1,
        profiles=int(both["profile_id"].nunique()), persons=int(both["person_id"].nunique()),
        over_merged_clusters=int((per_profile > 1).sum()),
        split_persons=int((per_person > 1).sum()),
    )
