"""``segments.yml``: the segments and the suppression policy, validated before anything runs.

Every rule is parsed and checked when the file is loaded; every problem in the file is
reported at once, each naming the file and key (``segments[2].channel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from core.config import ConfigError, key_path, read_yaml, validate
from profiles.activation.segment import Segment, build_segment
from profiles.activation.suppression import PERIODS, SuppressionPolicy
from profiles.activation.syntax import SegmentError

_DEFAULT = SuppressionPolicy()
NonNegative = Annotated[int, Field(ge=0)]


class FrequencyCap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_contacts: NonNegative = _DEFAULT.max_contacts
    period: StrictStr = _DEFAULT.period

    @field_validator("period")
    @classmethod
    def _known_period(cls, value: str) -> str:
        if value not in PERIODS:
            raise ValueError(f"must be one of {', '.join(PERIODS)}")
        return value


class SuppressionSettings(BaseModel):
    """``suppression:`` of ``segments.yml``; absent keys keep ``SuppressionPolicy``'s defaults."""

    model_config = ConfigDict(extra="forbid")

    frequency_cap: FrequencyCap | None = None
    cooldown_days: NonNegative = _DEFAULT.cooldown_days
    rejections: tuple[StrictStr, ...] = _DEFAULT.rejections

    def policy(self) -> SuppressionPolicy:
        cap = self.frequency_cap or FrequencyCap()
        return SuppressionPolicy(max_contacts=cap.max_contacts, period=cap.period,
                                 cooldown_days=self.cooldown_days, rejections=self.rejections)


class SegmentsFile(BaseModel):
    """The file's top level; entries are validated one by one (``build_segment``)."""

    model_config = ConfigDict(extra="forbid")

    suppression: SuppressionSettings | None = None
    segments: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ActivationConfig:
    segments: dict[str, Segment]
    policy: SuppressionPolicy
    events: Path | None = None
    """The API's events landing folder, whose hot list the chain consults (the edge sets it:
    ``RunContext.activation``, the API's app factory); ``None`` for a bare publication."""


def load_config(path: Path, events: Path | None = None) -> ActivationConfig:
    """Read ``segments.yml``; every rule is parsed and checked here, before anything runs.
    ``events``: see :attr:`ActivationConfig.events`."""
    try:
        raw = read_yaml(path)
        spec = validate(SegmentsFile, {} if raw is None else raw, path)
    except ConfigError as error:
        raise SegmentError(error.problems, error.file) from None
    segments: dict[str, Segment] = {}
    problems: list[tuple[str, str]] = []
    for index, entry in enumerate(spec.segments or []):
        try:
            segment = build_segment(entry, path, ("segments", index))
        except SegmentError as error:
            problems.extend(error.problems)
            continue
        if segment.name in segments:
            problems.append((key_path(("segments", index, "name")),
                             f"segment {segment.name!r} is defined twice"))
        segments[segment.name] = segment
    if problems:
        raise SegmentError(problems, path)
    return ActivationConfig(segments, (spec.suppression or SuppressionSettings()).policy(),
                            events)
