"""Where the product reads its configuration and writes its data.

Everything the product writes lives under one data directory (``./data`` unless ``CDP_HOME``
says otherwise), so a run can be moved, inspected or wiped as a unit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def config_dir() -> Path:
    """Folder with sources.yml, quality.yml and the other YAML configuration."""
    return Path(os.environ.get("CDP_CONFIG", REPO_ROOT / "config")).resolve()


@dataclass(frozen=True)
class DataPaths:
    """The layout of one data directory."""

    home: Path

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def build_db(self) -> Path:
        return self.warehouse / "build.duckdb"

    @property
    def published_db(self) -> Path:
        return self.warehouse / "published.duckdb"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def truth(self) -> Path:
        return self.home / "truth"

    def source_landing(self, source: str) -> Path:
        return self.landing / source

    def ensure(self) -> DataPaths:
        for folder in (self.landing, self.warehouse, self.exports, self.reports):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def data_paths(home: str | Path | None = None) -> DataPaths:
    """Resolve the data directory: explicit argument, then ``CDP_HOME``, then ``./data``."""
    chosen = home if home is not None else os.environ.get("CDP_HOME", "data")
    return DataPaths(Path(chosen).resolve())
