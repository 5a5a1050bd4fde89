"""The composition root: one run's paths, configuration files, run id and validated settings.

Built once at the edge (a CLI command, a DAG task, the dbt invocation) and handed down; the
library packages receive plain arguments taken from it and never look anything up themselves.
Settings load on first use and are validated by their owners' pydantic models;
:func:`check_settings` loads all of them and collects every problem (``cdp check``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class RunContext:
    """Everything one invocation needs to know, resolved once."""

    paths: DataPaths
    config: ConfigFiles
    run_id: str = "manual"

    @classmethod
    def at_edge(cls, home: str | Path | None = None, config: str | Path | None = None,
                run_id: str = "manual") -> RunContext:
        """Resolve the data directory (argument, ``CDP_HOME``, ``./data``) and the
        configuration folder (argument, ``CDP_CONFIG``, the repository's ``config/``)."""
        return cls(data_paths(home).ensure(), ConfigFiles(config_dir(config)), run_id)

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
        """Segments and the suppression policy (``segments.yml``)."""
        from profiles.activation.config import load_config

        return load_config(self.config.segments)


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
