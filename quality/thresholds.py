"""Quality-gate thresholds: one YAML file, documented defaults, strict validation.

The thresholds decide whether a build may be published, so a typo in the file must not
silently fall back to a default: unknown keys, wrong types and out-of-range values are
errors that name the file, the key and the problem (never the value).

Two kinds of limit, so that a first run on someone else's data can publish:

* **Drift** is judged against the data's own history, never against figures tuned on the
  demo: the singleton share against the previous publication
  (``singleton_share_max_change``), a source's well-formed shares against its earlier loads
  (``format_max_drop``), profile and row counts against the previous publication / delivery.
  The first run has no history; what it observes is the calibration the next run is judged
  against (the previous publication holds it: nothing is stored beside it).
* **Shape** limits hold on any data and are only the degenerate extremes: a format floor
  every load must reach (``format_mostly``: a shifted column, a wrong date format), a giant
  profile (``max_cluster_size``), linking that joined (almost) none of the records sharing
  an exact identifier (``min_shared_identifier_linked_share``). ``singleton_share`` is an
  absolute band for deployments that know their shape; open by default.

Every failure names the observed value and the ``quality.yml`` key that decides it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from core.config import ConfigError, read_yaml, validate
from core.vocabulary import CHANNELS

#: Loose on purpose: one "@", no whitespace, a dot in the domain. Stricter checks belong in
#: staging (normalisation), the gate only catches columns that are clearly not emails.
DEFAULT_EMAIL_REGEX = r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"
#: Loose too: an optional "+", digits and the usual separators (space ( ) / . -), at least six
#: characters. Letters ("n/a", "unknown") or a name in the phone column fail it.
DEFAULT_PHONE_REGEX = r"^\s*\+?[0-9(][0-9 ()/.\-]{4,}[0-9]\s*$"

# Strict scalars: YAML's ``yes`` or ``"0.5"`` for a share is a mistake, not a value; whole
# numbers are accepted where a number is expected.
Share = Annotated[StrictFloat, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[StrictFloat, Field(ge=0.0)]
Regex = Annotated[StrictStr, Field(min_length=1)]
Name = Annotated[StrictStr, Field(min_length=1)]


class ThresholdsError(ConfigError):
    """The thresholds file is missing, unreadable or holds an invalid value."""


class Thresholds(BaseModel):
    """Limits the gate checks against; defaults match ``config/quality.yml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # raw
    #: quarantined rows / (loaded + quarantined rows) of a source's latest load.
    max_rejected_share: Share = 0.05
    #: share of rows the latest load of a source may have fewer than the load before it.
    max_load_drop_share: Share = 0.5
    #: share of a load's non-empty email / phone / date values (and present timestamps)
    #: that must be well-formed on every load, the first one included: the shape floor.
    format_mostly: Share = 0.5
    #: how far a load's well-formed share may fall below the source's earlier loads (drift).
    format_max_drop: Share = 0.05
    #: the loose email pattern.
    email_regex: Regex = DEFAULT_EMAIL_REGEX
    #: the loose phone pattern.
    phone_regex: Regex = DEFAULT_PHONE_REGEX
    #: hours a record's registered timestamp may lie after the run's as-of time before ingest
    #: quarantines it (reason ``future_dated``).
    future_dated_tolerance_hours: NonNegative = 24.0
    # identity
    #: records in the largest profile (cluster); bigger means over-merging.
    max_cluster_size: Annotated[StrictInt, Field(ge=1)] = 250
    #: share of profiles with exactly one record, as an absolute [min, max] band (opt-in:
    #: open by default, because that share is a property of the data, not of its quality).
    singleton_share: tuple[Share, Share] = (0.0, 1.0)
    #: how far the singleton share may move against the previous publication (drift).
    singleton_share_max_change: Share = 0.2
    #: of the identifier values several records carry, the share that linking joined at
    #: least two of into one profile (shape: near 0 means linking did nothing).
    min_shared_identifier_linked_share: Share = 0.05
    #: share of source records (present before and now) whose profile id changed.
    max_profile_id_change_share: Share = 0.1
    # profiles
    #: share of dim_profiles rows lost against the previous publication.
    max_profile_drop_share: Share = 0.5
    #: channels every profile needs a row for in dim_profile_consent.
    consent_channels: Annotated[tuple[Name, ...], Field(min_length=1)] = CHANNELS
    # exports
    #: relative change of a segment export's size against the previous export.
    max_segment_size_change: NonNegative = 0.5
    #: moves of fewer members than this never count as a size change (small segments).
    min_segment_size_change_members: Annotated[StrictInt, Field(ge=0)] = 25
    #: what a larger change does: ``fail`` (the export is refused) or ``warn`` (recorded,
    #: export proceeds).
    segment_size_change_action: Literal["warn", "fail"] = "fail"

    @field_validator("email_regex", "phone_regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression ({error.msg})") from None
        return value

    @field_validator("singleton_share")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise ValueError("min is greater than max")
        return value

    @property
    def singleton_share_min(self) -> float:
        return self.singleton_share[0]

    @property
    def singleton_share_max(self) -> float:
        return self.singleton_share[1]


def load_thresholds(path: str | Path) -> Thresholds:
    """Read and validate the thresholds file; an empty file means all defaults.

    The caller resolves the path (``config/quality.yml`` of its configuration folder); a
    file that does not exist is an error, because the caller asked for it.
    """
    try:
        data = read_yaml(path)
        return validate(Thresholds, {} if data is None else data, path)
    except ConfigError as error:
        raise ThresholdsError(error.file, error.problems) from None
