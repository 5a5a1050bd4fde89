"""Landing files: discovery, fingerprint (SHA-256), line statistics and CSV header.

The ledger needs the SHA-256 of the exact bytes; the CSV loader needs the number of physical
lines to prove that DuckDB's parser neither dropped nor merged lines (a stray quote can
swallow thousands of lines silently). Lines are counted in a helper thread while DuckDB
loads the file, so the proof costs little wall time.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import IngestError, IngestVerdict
from ingest.registry import SourceSpec

CHUNK = 4 << 20
#: Files that are still being written by convention (write then rename) or are hidden.
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


@dataclass(frozen=True)
class LineStats:
    """Physical line statistics of a text file (as bytes, before decoding)."""

    newlines: int  # number of b"\n"
    trailing_newlines: int  # b"\n" after the last content byte
    has_content: bool  # any byte other than CR/LF
    first_blank_at: int | None  # offset of the first empty line (b"\n\n" or b"\n\r\n")
    content_end: int  # offset just after the last content byte
    starts_blank: bool  # the very first line is empty

    @property
    def has_inner_blank_lines(self) -> bool:
        """An empty line before the last content line (trailing empty lines are harmless)."""
        return self.starts_blank or (
            self.first_blank_at is not None and self.first_blank_at < self.content_end
        )

    def content_lines(self) -> int:
        """Physical lines up to and including the last line with content."""
        if not self.has_content:
            return 0
        return self.newlines - self.trailing_newlines + 1


@dataclass
class Fingerprint:
    """Identity of one delivered file: its bytes' SHA-256, size and mtime.

    Line statistics (text formats) are computed on demand, possibly in a helper thread while
    DuckDB is busy with the same file (``prefetch_line_stats``).
    """

    path: Path
    name: str  # path relative to the source's landing folder, POSIX style
    sha256: str
    size: int
    mtime_ns: int
    text: bool = True
    _lines: LineStats | None = field(default=None, repr=False)
    _job: threading.Thread | None = field(default=None, repr=False)

    def unchanged(self) -> bool:
        """True if the file still has the size and mtime it had when hashed."""
        try:
            stat = self.path.stat()
        except OSError:
            return False
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns

    def prefetch_line_stats(self) -> None:
        """Start counting lines in a thread (bytes.count & co. overlap DuckDB's work)."""
        if self.text and self._lines is None and self._job is None:
            self._job = threading.Thread(target=self._compute_lines, daemon=True)
            self._job.start()

    def line_stats(self) -> LineStats | None:
        """Physical line statistics of a text file (None for binary formats)."""
        if not self.text:
            return None
        if self._job is not None:
            self._job.join()
            self._job = None
        if self._lines is None:
            self._compute_lines()
        return self._lines

    def _compute_lines(self) -> None:
        counter = _LineCounter()
        opener = gzip.open if is_gzip(self.path) else open
        with opener(self.path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                counter.feed(chunk)
        self._lines = counter.result()


def discover(landing_dir: Path, pattern: str) -> list[Path]:
    """Files matching the source's glob, sorted by name; hidden and partial files skipped."""
    if not landing_dir.is_dir():
        return []
    found = []
    for path in landing_dir.glob(pattern):
        if not path.is_file():
            continue
        relative = path.relative_to(landing_dir)
        if any(part.startswith((".", "_")) for part in relative.parts):
            continue
        if path.name.lower().endswith(IGNORED_SUFFIXES):
            continue
        found.append(path)
    return sorted(found, key=lambda p: p.relative_to(landing_dir).as_posix())


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


class _LineCounter:
    """Incremental line statistics over a byte stream fed in chunks."""

    def __init__(self) -> None:
        self.offset = 0
        self.newlines = 0
        self.trailing = 0
        self.content_end = 0
        self.first_blank: int | None = None
        self.blank: bytes | None = None
        self.tail = b""
        self.head = b""

    def feed(self, chunk: bytes) -> None:
        if len(self.head) < 2:
            self.head = (self.head + chunk)[:2]
        self.newlines += chunk.count(b"\n")
        stripped = chunk.rstrip(b"\r\n")
        if stripped:
            self.content_end = self.offset + len(stripped)
            self.trailing = chunk.count(b"\n", len(stripped))
        else:
            self.trailing += chunk.count(b"\n")
        if self.first_blank is None:
            if self.blank is None:  # CRLF files have b"\n\r\n" blank lines, LF files b"\n\n"
                self.blank = b"\n\r\n" if b"\r\n" in chunk else b"\n\n"
            window = self.tail + chunk
            hit = window.find(self.blank)
            if hit >= 0:
                self.first_blank = self.offset - len(self.tail) + hit
        self.tail = (self.tail + chunk)[-2:]
        self.offset += len(chunk)

    def result(self) -> LineStats:
        return LineStats(
            newlines=self.newlines,
            trailing_newlines=self.trailing,
            has_content=self.content_end > 0,
            first_blank_at=self.first_blank,
            content_end=self.content_end,
            starts_blank=self.head.startswith((b"\n", b"\r\n")),
        )


def fingerprint(path: Path, landing_dir: Path, *, text: bool) -> Fingerprint:
    """SHA-256, size and mtime of one file (streamed; hashlib releases the GIL)."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return Fingerprint(
        path=path,
        name=path.relative_to(landing_dir).as_posix(),
        sha256=digest.hexdigest(),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        text=text,
    )


def read_csv_header(path: Path, spec: SourceSpec, file_name: str) -> list[str]:
    """Column names of a CSV file (first record), cleaned and made unique.

    Without a header the columns are ``column0 .. columnN`` (DuckDB's convention), counted
    from the first record.
    """
    options = spec.csv
    encoding = "utf-8-sig" if options.encoding == "utf-8" else options.encoding
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as raw:
            reader = codecs.getreader(encoding)(raw, "strict")
            first = next(
                csv.reader(io.StringIO(_first_record(reader)), delimiter=options.delimiter), None
            )
    except UnicodeDecodeError as error:
        raise IngestVerdict(
            f"source {spec.name}: file {file_name}: header is not valid {options.encoding} "
            f"({error.reason} at byte {error.start})",
            source=spec.name,
            file=file_name,
        ) from error
    except (OSError, EOFError, csv.Error) as error:
        # a truncated gzip stream (EOFError) may be a file still being written
        failure = IngestVerdict if isinstance(error, csv.Error) else IngestError
        raise failure(
            f"source {spec.name}: file {file_name}: cannot read CSV header: {error}",
            source=spec.name,
            file=file_name,
        ) from error
    if first is None:
        return []
    if not options.header:
        return [f"column{i}" for i in range(len(first))]
    return unique_names([name.strip() for name in first])


def _first_record(reader: codecs.StreamReader) -> str:
    """The first physical line (header names must not span lines)."""
    line = reader.readline(keepends=False)
    return line.rstrip("\r\n")


def unique_names(names: list[str], reserved: Iterable[str] = ()) -> list[str]:
    """Fill empty names (``column<i>``) and suffix case-insensitive duplicates (``_2``, ...).

    ``reserved`` names (load metadata) count as taken, so a file column ``_loaded_at``
    arrives as ``_loaded_at_2`` instead of clashing with ingest's own column.
    """
    seen: set[str] = {name.lower() for name in reserved}
    result = []
    for index, name in enumerate(names):
        candidate = name or f"column{index}"
        base, counter = candidate, 1
        while candidate.lower() in seen:
            counter += 1
            candidate = f"{base}_{counter}"
        seen.add(candidate.lower())
        result.append(candidate)
    return result
