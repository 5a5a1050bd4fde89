"""Where the product reads its configuration and writes its data: resolved here, at the edge.

Everything the product writes lives under one data directory (``./data`` unless ``CDP_HOME``
says otherwise); configuration is read from ``./config`` unless ``CDP_CONFIG`` says otherwise.
Library packages never call these: the CLI, the DAG tasks and the dbt invocation resolve
them once and pass paths down.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.paths import DataPaths

REPO_ROOT = Path(__file__).resolve().parent.parent


def config_dir(chosen: str | Path | None = None) -> Path:
    """Folder with sources.yml, quality.yml and the other YAML configuration: explicit
    argument, then ``CDP_CONFIG``, then the repository's ``config/``."""
    if chosen is None:
        chosen = os.environ.get("CDP_CONFIG", REPO_ROOT / "config")
    return Path(chosen).resolve()


def data_paths(home: str | Path | None = None) -> DataPaths:
    """Resolve the data directory: explicit argument, then ``CDP_HOME``, then ``./data``."""
    chosen = home if home is not None else os.environ.get("CDP_HOME", "data")
    return DataPaths(Path(chosen).resolve())
