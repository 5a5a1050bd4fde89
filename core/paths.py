"""The layout of one data directory: everything the product writes lives under it, so a run
can be moved, inspected or wiped as a unit. Where the directory is comes from the edge
(``cdp``'s command line or environment), never from here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.vocabulary import safe_run_id


@dataclass(frozen=True)
class DataPaths:
    """Folders and files of one data directory ``home``."""

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

    @property
    def models(self) -> Path:
        """Versioned identity models: they belong to the data they were fitted on."""
        return self.home / "models" / "identity"

    def source_landing(self, source: str) -> Path:
        return self.landing / source

    def run_reports(self, run_id: str) -> Path:
        """``reports/runs/<run id>/``: one small JSON per stage of that run."""
        return self.reports / "runs" / safe_run_id(run_id)

    def ensure(self) -> DataPaths:
        for folder in (self.landing, self.warehouse, self.exports, self.reports):
            folder.mkdir(parents=True, exist_ok=True)
        return self
