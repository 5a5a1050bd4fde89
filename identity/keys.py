"""Record keys (``source`` + ``record_id``) as Arrow strings, and finding them again.

Records are addressed by the pair ``(source, record_id)``; joining a million of them as
Python strings dominates otherwise cheap steps, so keys are built and matched in Arrow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def record_keys(source: pd.Series, record_id: pd.Series, separator: str = "\x1f"
                ) -> pa.Array:
    """``source`` + separator + ``record_id`` per row as one Arrow string array (null if
    either is missing): a hashable record key built in Arrow instead of per-row Python
    strings.  U+001F cannot occur in either part; ``":"`` gives the readable key profile ids
    are derived from."""
    joined = pc.binary_join_element_wise(_arrow_strings(source), _arrow_strings(record_id),
                                         separator)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def key_positions(keys: pa.Array, probes: list[pa.Array]) -> list[np.ndarray] | None:
    """Position of each probe key in ``keys`` (-1 when absent or null), or None when
    ``keys`` holds duplicates or nulls.  One dictionary encoding over all keys: codes follow
    first appearance, so with unique ``keys`` a code below ``len(keys)`` is the position."""
    n = len(keys)
    encoded = pc.dictionary_encode(pa.concat_arrays([keys, *probes])).indices
    codes = encoded.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    if not np.array_equal(codes[:n], np.arange(n, dtype=np.int64)):
        return None
    out: list[np.ndarray] = []
    start = n
    for probe in probes:
        part = codes[start:start + len(probe)]
        out.append(np.where(part < n, part, -1))
        start += len(probe)
    return out


def smallest_per_group(keys: pa.Array, group: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Per group (labels ``0..n``) its smallest key in code-point order, ranked once in
    Arrow: ``(groups present, ascending; their smallest keys)``."""
    order = pc.sort_indices(keys).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    best = np.full(int(group.max()) + 1 if len(group) else 0, len(order), dtype=np.int64)
    np.minimum.at(best, group, rank)
    present = np.flatnonzero(best < len(order))
    return present, keys.take(pa.array(order[best[present]])).to_pylist()


def _arrow_strings(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    if not isinstance(series.dtype, pd.StringDtype):
        series = series.astype("string")
    return pa.array(series.array, type=pa.string())
