"""Manual identity corrections (``config/identity_overrides.yml``).

Data stewards fix what the matcher got wrong without touching code: a *must_link* joins two
records (e.g. a customer who changed name and e-mail), a *cannot_link* keeps two records apart
for good.  Every entry names its author and reason so a correction can be audited, and the
file is applied on every run, so a correction survives re-clustering.  File format::

    overrides:
      - kind: cannot_link
        left:  {source: crm_customers, record_id: "C000123"}
        right: {source: shop_accounts, record_id: "U000456"}
        reason: "twins sharing an e-mail address; confirmed by phone"
        author: a.steward
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from identity.rules import OVERRIDE_KINDS

DEFAULT_OVERRIDES_FILE = "identity_overrides.yml"
COLUMNS = ["source_l", "record_id_l", "source_r", "record_id_r", "kind", "reason", "author"]


class IdentityOverridesError(ValueError):
    """The overrides file is malformed; the message names the file, the entry and the problem."""


def _side(entry: dict[str, Any], name: str) -> tuple[str, str]:
    side = entry.get(name)
    if not isinstance(side, dict):
        raise ValueError(f"'{name}' must be a mapping with source and record_id")
    values = []
    for key in ("source", "record_id"):
        value = side.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"'{name}.{key}' is missing")
        if not isinstance(value, str | int):
            raise ValueError(f"'{name}.{key}' must be a string, got {value!r}")
        values.append(str(value).strip())
    return values[0], values[1]


def _entry(entry: object) -> dict[str, str]:
    if not isinstance(entry, dict):
        raise ValueError("must be a mapping with kind, left, right, reason, author")
    unknown = sorted(set(entry) - {"kind", "left", "right", "reason", "author"})
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}")
    kind = entry.get("kind")
    if kind not in OVERRIDE_KINDS:
        raise ValueError(f"'kind' must be one of {list(OVERRIDE_KINDS)}, got {kind!r}")
    for key in ("reason", "author"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ValueError(f"'{key}' is required (who decided this, and why)")
    left, right = _side(entry, "left"), _side(entry, "right")
    if left == right:
        raise ValueError("'left' and 'right' name the same record")
    return {"source_l": left[0], "record_id_l": left[1], "source_r": right[0],
            "record_id_r": right[1], "kind": kind, "reason": entry["reason"].strip(),
            "author": entry["author"].strip()}


def load_overrides(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate the overrides file (``$CDP_CONFIG/identity_overrides.yml`` by
    default); a missing file means no overrides.  Contradictions (the same pair both
    must- and cannot-linked) are rejected rather than silently resolved."""
    if path is None:
        from cdp.settings import config_dir

        path = config_dir() / DEFAULT_OVERRIDES_FILE
    path = Path(path)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="string") for c in COLUMNS})
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise IdentityOverridesError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("overrides") or [], list):
        raise IdentityOverridesError(f"{path}: expected a mapping with an 'overrides' list")
    rows = []
    for number, entry in enumerate(raw.get("overrides") or [], start=1):
        try:
            rows.append(_entry(entry))
        except ValueError as exc:
            raise IdentityOverridesError(f"{path}: entry {number}: {exc}") from None
    frame = pd.DataFrame(rows, columns=COLUMNS).astype("string")
    pair = frame.apply(lambda r: tuple(sorted([(r.source_l, r.record_id_l),
                                               (r.source_r, r.record_id_r)])), axis=1)
    kinds = frame.groupby(pair)["kind"].nunique() if len(frame) else pd.Series(dtype=int)
    clash = kinds[kinds > 1]
    if len(clash):
        first = clash.index[0]
        raise IdentityOverridesError(
            f"{path}: records {first[0][0]}:{first[0][1]} and {first[1][0]}:{first[1][1]} are "
            "both must-linked and cannot-linked")
    return frame
