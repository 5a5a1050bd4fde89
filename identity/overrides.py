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
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from core.config import ConfigError, read_yaml, validate

DEFAULT_OVERRIDES_FILE = "identity_overrides.yml"
COLUMNS = ["source_l", "record_id_l", "source_r", "record_id_r", "kind", "reason", "author"]


class IdentityOverridesError(ConfigError):
    """The overrides file is malformed; the message names the file, the entry and the problem."""


def _number_as_text(value: object) -> object:
    """Unquoted record ids (``record_id: 123``) are ids, not numbers."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Key = Annotated[Text, BeforeValidator(_number_as_text)]


class RecordRef(BaseModel):
    """One side of a correction: a record named by source and record id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Key
    record_id: Key


class Override(BaseModel):
    """One correction; ``reason`` and ``author`` say who decided it, and why."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["must_link", "cannot_link"]
    left: RecordRef
    right: RecordRef
    reason: Text
    author: Text

    def model_post_init(self, context: Any) -> None:
        if self.left == self.right:
            raise ValueError("'left' and 'right' name the same record")


class OverridesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overrides: Annotated[list[Override], BeforeValidator(lambda v: v or [])] = Field(
        default_factory=list)


def load_overrides(path: str | Path) -> pd.DataFrame:
    """Read and validate the overrides file; a missing file means no overrides.
    Contradictions (the same pair both must- and cannot-linked) are rejected rather than
    silently resolved."""
    path = Path(path)
    try:
        raw = read_yaml(path, required=False)
    except ConfigError as error:
        raise IdentityOverridesError(error.file, error.problems) from None
    if raw is not None and not isinstance(raw, dict):
        raise IdentityOverridesError(path, [("", "expected a mapping with an 'overrides' list")])
    try:
        entries = validate(OverridesFile, raw or {}, path).overrides
    except ConfigError as error:
        raise IdentityOverridesError(error.file, error.problems) from None
    frame = pd.DataFrame(
        [{"source_l": e.left.source, "record_id_l": e.left.record_id,
          "source_r": e.right.source, "record_id_r": e.right.record_id, "kind": e.kind,
          "reason": e.reason, "author": e.author} for e in entries],
        columns=COLUMNS).astype("string")
    seen: dict[frozenset[RecordRef], tuple[int, str]] = {}
    for number, entry in enumerate(entries):
        pair = frozenset((entry.left, entry.right))
        first = seen.setdefault(pair, (number, entry.kind))
        if first[1] != entry.kind:
            raise IdentityOverridesError(path, [(
                f"overrides[{number}]",
                f"the records of overrides[{first[0]}] again: both must-linked and "
                "cannot-linked")])
    return frame


def overrides_from_records(rows: list[dict[str, str]] | None) -> pd.DataFrame:
    """The frame :func:`load_overrides` returned, rebuilt from its records (dbt vars)."""
    return pd.DataFrame(rows or [], columns=COLUMNS).astype("string")


def overrides_to_records(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Plain rows of an overrides frame, for dbt vars (read back by
    :func:`overrides_from_records`)."""
    return [{column: str(value) for column, value in row.items()}
            for row in frame[COLUMNS].to_dict("records")]
