"""What a load run reports: counts, names and reasons only, safe to log and store as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FileLoadReport:
    """Outcome for one landing file."""

    file_name: str
    file_sha256: str
    status: str  # loaded | skipped_duplicate | failed
    mode: str = ""  # csv | csv_stream | csv_lines | jsonl | parquet | empty
    rows_in_file: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    #: of the rejected rows, those quarantined because their timestamp is after the run's
    #: as-of time plus tolerance (reason ``future_dated``)
    rows_future_dated: int = 0
    #: of the rejected rows, those carrying an identifier of an erased person (reason
    #: ``erased``, kept without their values)
    rows_erased: int = 0
    #: rows identical to a version of the record an earlier delivery already loaded
    rows_duplicate: int = 0
    error: str | None = None
    #: a failed file's error is a verdict on its bytes or the registry (not in the registered
    #: format, a missing mapped column): loading it again fails the same way
    final: bool = False
    new_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class SourceLoadReport:
    """Outcome for one source in one run."""

    source: str
    run_id: str
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_future_dated: int = 0
    rows_erased: int = 0
    rows_duplicate: int = 0
    new_columns: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    files: list[FileLoadReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def final(self) -> bool:
        """The source failed, and only for verdicts on its files (see ``FileLoadReport.final``)."""
        failed = [f for f in self.files if f.status == "failed"]
        return self.error is not None and bool(failed) and all(f.final for f in failed)

    def add(self, item: FileLoadReport) -> None:
        self.files.append(item)
        if item.status == "loaded":
            self.files_loaded += 1
            self.rows_loaded += item.rows_loaded
            self.rows_rejected += item.rows_rejected
            self.rows_future_dated += item.rows_future_dated
            self.rows_erased += item.rows_erased
            self.rows_duplicate += item.rows_duplicate
            for column in item.new_columns:
                if column not in self.new_columns:
                    self.new_columns.append(column)
        elif item.status == "failed":
            self.files_failed += 1
        else:
            self.files_skipped += 1

    def failure_summary(self) -> str | None:
        """One line naming every file that failed this run and why (None when none did)."""
        failed = [f for f in self.files if f.status == "failed"]
        if not failed:
            return None
        listed = "; ".join(f"{f.file_name}: {f.error}" for f in failed)
        return (
            f"source {self.source}: {len(failed)} file(s) failed and were set aside, the "
            f"other files were loaded ({listed}); fix and redeliver the file, or withdraw it "
            f"with `cdp ingest withdraw {self.source} <file>`"
        )
