"""Landing files: discovery, fingerprint (SHA-256 and line statistics) and CSV header.

Why one streaming pass: the ledger needs the SHA-256 of the exact bytes, and the CSV loader
needs the number of physical lines to prove that DuckDB's parser neither dropped nor merged
lines (a stray quote can swallow thousands of lines silently). Both come from the same read.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError
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


@dataclass(frozen=True)
class Fingerprint:
    """Identity of one delivered file: its bytes' SHA-256, size, mtime and line statistics."""

    path: Path
    name: str  # path relative to the source's landing folder, POSIX style
    sha256: str
    size: int
    mtime_ns: int
    lines: LineStats | None  # None for binary formats

    def unchanged(self) -> bool:
        """True if the file still has the size and mtime it had when hashed."""
        try:
            stat = self.path.stat()
        except OSError:
            return False
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


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
    """Hash the file (and count its lines if it is text) in one streaming pass."""
    stat = path.stat()
    digest = hashlib.sha256()
    counter = _LineCounter() if text and not is_gzip(path) else None
    # hashlib releases the GIL on large updates: hash chunk n in a helper thread while this
    # thread counts the lines of chunk n (about halves the wall time on two cores).
    with path.open("rb") as handle, ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[None] | None = None
        while chunk := handle.read(CHUNK):
            if pending is not None:
                pending.result()
            pending = pool.submit(digest.update, chunk)
            if counter is not None:
                counter.feed(chunk)
        if pending is not None:
            pending.result()
    lines = counter.result() if counter is not None else None
    if text and is_gzip(path):
        counter = _LineCounter()
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                counter.feed(chunk)
        lines = counter.result()
    return Fingerprint(
        path=path,
        name=path.relative_to(landing_dir).as_posix(),
        sha256=digest.hexdigest(),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        lines=lines,
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
        with opener(path, "rb") as raw:  # type: ignore[operator]
            reader = codecs.getreader(encoding)(raw, errors="strict")
            first = next(
                csv.reader(io.StringIO(_first_record(reader)), delimiter=options.delimiter), None
            )
    except UnicodeDecodeError as error:
        raise IngestError(
            f"source {spec.name}: file {file_name}: header is not valid {options.encoding} "
            f"({error.reason} at byte {error.start})",
            source=spec.name,
            file=file_name,
        ) from error
    except (OSError, EOFError, csv.Error) as error:
        raise IngestError(
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
