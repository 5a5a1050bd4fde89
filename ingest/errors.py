"""Errors ingest raises; messages name source, file and reason, never row contents."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ingest.reports import SourceLoadReport

_VALUE = re.compile(r"""(string|value|Value|String)\s*('[^']*'|"[^"]*")""")


def safe_reason(error: BaseException, limit: int = 300) -> str:
    """First line of an error, with quoted data values redacted (DuckDB conversion errors
    quote the offending value, which may be personal data; the reason goes to logs)."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return _VALUE.sub(r"\1 <redacted>", line)[:limit]


class IngestError(RuntimeError):
    """One source could not be loaded (unreadable file, missing mapped column, ...).

    ``report``: what was committed for the source before it failed, when ingest knows it.
    """

    def __init__(self, message: str, *, source: str | None = None, file: str | None = None,
                 report: SourceLoadReport | None = None):
        super().__init__(message)
        self.source = source
        self.file = file
        self.report = report

    @property
    def final(self) -> bool:
        """True when the error is a verdict (:class:`IngestVerdict`): trying again fails the
        same way, so a task fails at once instead of retrying."""
        return False


class IngestVerdict(IngestError):
    """A verdict on the bytes of a file or on the configuration: the file is not in its
    registered format or lacks a mapped column, a source or delivery named does not exist.
    Trying again with the same files and configuration fails the same way; a passing failure
    (a file still being written, an operating-system error, a busy lock) stays an
    :class:`IngestError`."""

    @property
    def final(self) -> bool:
        return True


class IngestRunError(IngestError):
    """Some sources of a ``load_all`` run failed; the others were loaded and are reported."""

    def __init__(self, reports: Sequence[SourceLoadReport]):
        self.reports = list(reports)
        self.failed = [r for r in self.reports if r.error is not None]
        lines = [f"{len(self.failed)} source(s) failed to load:"]
        lines += [f"  - {r.source}: {r.error}" for r in self.failed]
        super().__init__("\n".join(lines))

    @property
    def final(self) -> bool:
        """Every failed source failed for a verdict only."""
        return bool(self.failed) and all(r.final for r in self.failed)

    def __reduce__(self):
        """Pickle by reports (Airflow/multiprocessing may ship exceptions across processes)."""
        return (type(self), (self.reports,))
