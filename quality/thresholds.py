"""Quality-gate thresholds: one YAML file, documented defaults, strict validation.

The thresholds decide whether a build may be published, so a typo in the file must not
silently fall back to a default: unknown keys, wrong types and out-of-range values are
errors that name the file, the key and the problem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

#: Loose on purpose: one "@", no whitespace, a dot in the domain. Stricter checks belong in
#: staging (normalisation), the gate only catches columns that are clearly not emails.
DEFAULT_EMAIL_REGEX = r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"
#: Loose too: an optional "+", digits and the usual separators (space ( ) / . -), at least six
#: characters. Letters ("n/a", "unknown") or a name in the phone column fail it.
DEFAULT_PHONE_REGEX = r"^\s*\+?[0-9(][0-9 ()/.\-]{4,}[0-9]\s*$"
DEFAULT_CONSENT_CHANNELS = ("email", "sms", "phone", "post", "online_ads")
SIZE_CHANGE_ACTIONS = ("warn", "fail")


class ThresholdsError(ValueError):
    """The thresholds file is missing, unreadable or holds an invalid value."""


@dataclass(frozen=True)
class Thresholds:
    """Limits the gate checks against; defaults match ``config/quality.yml``."""

    # raw
    #: quarantined rows / (loaded + quarantined rows) of a source's latest load.
    max_rejected_share: float = 0.05
    #: share of rows the latest load of a source may have fewer than the load before it.
    max_load_drop_share: float = 0.5
    #: share of non-empty email / phone / date values that must be well-formed.
    format_mostly: float = 0.95
    #: the loose email pattern.
    email_regex: str = DEFAULT_EMAIL_REGEX
    #: the loose phone pattern.
    phone_regex: str = DEFAULT_PHONE_REGEX
    # identity
    #: records in the largest profile (cluster); bigger means over-merging.
    max_cluster_size: int = 250
    #: share of profiles with exactly one record, as [min, max].
    singleton_share: tuple[float, float] = (0.01, 0.6)
    #: share of source records (present before and now) whose profile id changed.
    max_profile_id_change_share: float = 0.1
    # profiles
    #: share of dim_profiles rows lost against the previous publication.
    max_profile_drop_share: float = 0.5
    #: channels every profile needs a row for in dim_profile_consent.
    consent_channels: tuple[str, ...] = DEFAULT_CONSENT_CHANNELS
    # exports
    #: relative change of a segment export's size against the previous export.
    max_segment_size_change: float = 0.5
    #: what a larger change does: ``warn`` (recorded, export proceeds) or ``fail``.
    segment_size_change_action: str = "warn"

    @property
    def singleton_share_min(self) -> float:
        return self.singleton_share[0]

    @property
    def singleton_share_max(self) -> float:
        return self.singleton_share[1]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, source: str = "<mapping>") -> Thresholds:
        """Validate a parsed mapping; ``source`` names the file in error messages."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ThresholdsError(
                f"{source}: the file must hold a mapping of threshold keys, "
                f"got {type(data).__name__}"
            )
        known = [f.name for f in fields(cls)]
        values: dict[str, Any] = {}
        for key, raw in data.items():
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise ThresholdsError(
                    f"{source}: key '{key}': unknown threshold{suggestion}; "
                    f"known keys: {', '.join(known)}"
                )
            values[key] = _VALIDATORS[key](raw, f"{source}: key '{key}'")
        return cls(**values)


def default_thresholds_path() -> Path:
    """``quality.yml`` in the configuration folder (``CDP_CONFIG`` or ``<repo>/config``)."""
    from cdp.settings import config_dir

    return config_dir() / "quality.yml"


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Read and validate the thresholds file.

    With no ``path`` the default file is used and its absence means "all defaults"; an
    explicit ``path`` that does not exist is an error, because the caller asked for it.
    """
    explicit = path is not None
    file = Path(path) if path is not None else default_thresholds_path()
    if not file.exists():
        if explicit:
            raise ThresholdsError(f"{file}: thresholds file not found")
        return Thresholds()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ThresholdsError(f"{file}: not valid YAML{where}: {problem}") from None
    except OSError as exc:
        raise ThresholdsError(f"{file}: cannot read: {exc.strerror}") from None
    return Thresholds.from_mapping(data, source=str(file))


def _number(raw: Any, where: str) -> float:
    # bool is an int subclass; "true" for a share is a mistake, not 1.0.
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ThresholdsError(f"{where}: expected a number, got {raw!r}")
    return float(raw)


def _share(raw: Any, where: str) -> float:
    value = _number(raw, where)
    if not 0.0 <= value <= 1.0:
        raise ThresholdsError(f"{where}: must be a share between 0 and 1, got {raw!r}")
    return value


def _non_negative(raw: Any, where: str) -> float:
    value = _number(raw, where)
    if value < 0:
        raise ThresholdsError(f"{where}: must not be negative, got {raw!r}")
    return value


def _positive_int(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ThresholdsError(f"{where}: expected a whole number, got {raw!r}")
    if raw < 1:
        raise ThresholdsError(f"{where}: must be at least 1, got {raw!r}")
    return raw


def _band(raw: Any, where: str) -> tuple[float, float]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise ThresholdsError(f"{where}: expected a two-item list [min, max], got {raw!r}")
    low, high = (_share(item, where) for item in raw)
    if low > high:
        raise ThresholdsError(f"{where}: min {low} is greater than max {high}")
    return (low, high)


def _regex(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise ThresholdsError(f"{where}: expected a non-empty regular expression string")
    try:
        re.compile(raw)
    except re.error as exc:
        raise ThresholdsError(f"{where}: not a valid regular expression: {exc}") from None
    return raw


def _names(raw: Any, where: str) -> tuple[str, ...]:
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(item, str) and item for item in raw)
    ):
        raise ThresholdsError(f"{where}: expected a non-empty list of names, got {raw!r}")
    return tuple(raw)


def _action(raw: Any, where: str) -> str:
    if raw not in SIZE_CHANGE_ACTIONS:
        choices = ", ".join(SIZE_CHANGE_ACTIONS)
        raise ThresholdsError(f"{where}: expected one of {choices}, got {raw!r}")
    return str(raw)


_VALIDATORS = {
    "max_rejected_share": _share,
    "max_load_drop_share": _share,
    "format_mostly": _share,
    "email_regex": _regex,
    "phone_regex": _regex,
    "max_cluster_size": _positive_int,
    "singleton_share": _band,
    "max_profile_id_change_share": _share,
    "max_profile_drop_share": _share,
    "consent_channels": _names,
    "max_segment_size_change": _non_negative,
    "segment_size_change_action": _action,
}
