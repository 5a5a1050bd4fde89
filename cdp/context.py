"""The composition root: one run's paths, configuration files, run id, clock and validated
settings.

Built once at the edge (a CLI command, a DAG task, the dbt invocation) and handed down; the
library packages receive plain arguments taken from it and never look anything up themselves.
Settings load on first use and are validated by their owners' pydantic models;
:func:`check_settings` loads all of them and collects every problem (``cdp check``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.settings import config_dir, data_paths
from core.config import ConfigError
from core.paths import DataPaths

if TYPE_CHECKING:
    import pandas as pd

    from identity.config import IdentityConfig
    from ingest.registry import Registry
    from profiles.activation.config import ActivationConfig
    from profiles.activation.offers import Offer
    from quality.thresholds import Thresholds


@dataclass(frozen=True)
class ConfigFiles:
    """Where each configuration file of one configuration folder is."""

    folder: Path

    @property
    def sources(self) -> Path:
        return self.folder / "sources.yml"

    @property
    def identity(self) -> Path:
        return self.folder / "identity.yml"

    @property
    def identity_overrides(self) -> Path:
        return self.folder / "identity_overrides.yml"

    @property
    def quality(self) -> Path:
        return self.folder / "quality.yml"

    @property
    def segments(self) -> Path:
        return self.folder / "segments.yml"

    @property
    def survivorship(self) -> Path:
        return self.folder / "survivorship.yml"

    @property
    def api(self) -> Path:
        return self.folder / "api.yml"

    @property
    def offers(self) -> Path:
        return self.folder / "offers.yml"


def parse_as_of(text: str) -> datetime:
    """An as-of time as given on the command line or as a DAG param: ISO 8601 (``2026-11-01``,
    ``2026-11-01T00:00``, ``2026-11-01T00:00:00+01:00``); without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"as-of time {text!r}: expected ISO 8601 such as 2026-11-01T00:00"
                         ) from None
    return as_utc(moment)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC, time-zone aware (a naive time is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class RunContext:
    """Everything one invocation needs to know, resolved once.

    ``as_of`` is the run's one clock (UTC, aware): traits are computed as of it, suppression
    windows end at it, and ingest quarantines records dated after it. The DAG sets it from the
    run's ``as_of`` param or data interval end; ``cdp run`` from ``--as-of`` or the time the
    run starts; other commands use the time they start.
    """

    paths: DataPaths
    config: ConfigFiles
    run_id: str = "manual"
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def at_edge(cls, home: str | Path | None = None, config: str | Path | None = None,
                run_id: str = "manual", as_of: datetime | None = None) -> RunContext:
        """Resolve the data directory (argument, ``CDP_HOME``, ``./data``) and the
        configuration folder (argument, ``CDP_CONFIG``, the repository's ``config/``);
        ``as_of`` defaults to now."""
        return cls(data_paths(home).ensure(), ConfigFiles(config_dir(config)), run_id,
                   as_utc(as_of or datetime.now(UTC)))

    @property
    def as_of_naive(self) -> datetime:
        """``as_of`` as a naive UTC time, the way the warehouse stores timestamps."""
        return self.as_of.replace(tzinfo=None)

    @cached_property
    def registry(self) -> Registry:
        from ingest.registry import load_registry

        return load_registry(self.config.sources)

    @cached_property
    def identity(self) -> IdentityConfig:
        from identity.config import load_config

        return load_config(self.config.identity)

    @cached_property
    def identity_overrides(self) -> pd.DataFrame:
        from identity.overrides import load_overrides

        return load_overrides(self.config.identity_overrides)

    @cached_property
    def thresholds(self) -> Thresholds:
        from quality.thresholds import load_thresholds

        return load_thresholds(self.config.quality)

    @cached_property
    def activation(self) -> ActivationConfig:
        """Segments and the suppression policy (``segments.yml``), and where the API's events
        land (the chain's hot list)."""
        from profiles.activation.config import load_config
        from profiles.activation.hot_events import EVENTS_SOURCE

        return load_config(self.config.segments, self.paths.source_landing(EVENTS_SOURCE))

    @cached_property
    def offers(self) -> dict[str, Offer]:
        """The offer catalogue (``offers.yml``) the API's next best offer draws from."""
        from profiles.activation.offers import load_offers

        return load_offers(self.config.offers)

    @cached_property
    def survivorship(self) -> dict[str, Any]:
        """Golden-record rules per attribute, as dbt receives them (``survivorship.yml``)."""
        from profiles.survivorship import load_survivorship

        return load_survivorship(self.config.survivorship)


#: Each setting ``cdp check`` validates, by the file it comes from.
CHECKED: dict[str, Callable[[RunContext], object]] = {
    "sources": lambda ctx: ctx.registry,
    "identity": lambda ctx: ctx.identity,
    "identity_overrides": lambda ctx: ctx.identity_overrides,
    "quality": lambda ctx: ctx.thresholds,
    "segments": lambda ctx: ctx.activation,
    "offers": lambda ctx: ctx.offers,
    "survivorship": lambda ctx: ctx.survivorship,
    "api": lambda ctx: _read_api_file(ctx.config.api),
}


def _read_api_file(path: Path) -> object:
    """``api.yml`` without its keys: those are checked when the API starts (``cdp serve``)."""
    from profiles.api.settings import read_api_file

    return read_api_file(path)


class InvalidConfiguration(ValueError):
    """Some configuration files are invalid; the message has one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid configuration:\n" + "\n".join(problems))
        self.problems = problems


def check_settings(ctx: RunContext) -> list[str]:
    """Load every setting; one line per problem (file, key, problem), empty when all valid."""
    problems: list[str] = []
    for load in CHECKED.values():
        try:
            load(ctx)
        except ConfigError as error:
            problems.extend(error.lines())
    return problems
