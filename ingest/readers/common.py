"""What every reader shares: the staged-file contract, column naming, line scans, numbering.

Every reader produces the same two things (no per-row Python anywhere):

* a *relation* with ``_row_number`` plus the file's columns, names already mapped onto the
  registry's spelling; text values stay VARCHAR (the loader casts with TRY_CAST/STRPTIME);
* the temp table ``_ingest_rejects(_line_number, _reason, _raw_line)`` with the lines the
  parser could not turn into a record (broken quoting, wrong field count, bad encoding,
  invalid JSON).

``_row_number`` is the line number of the record in the file (header = line 1) for CSV and
JSONL, so raw rows and quarantined lines share one number space; for Parquet it is the
1-based row position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from core.vocabulary import METADATA_COLUMNS
from core.vocabulary import quote_identifier as q
from ingest.errors import IngestError, IngestVerdict, safe_reason
from ingest.files import Fingerprint, unique_names
from ingest.registry import SourceSpec
from ingest.temp_tables import (
    CSV_ERRORS,
    CSV_SCANS,
    GAPS,
    LINES,
    NUMBERED,
    REJECTS,
    ROWNUM,
    STAGE,
    count_temp,
)

#: Separator for the line-by-line scan: JSON cannot contain it raw, and the registry forbids
#: it as CSV delimiter, so every physical line arrives as one value.
LINE_SCAN_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class FileColumns:
    """Columns of one file: (name in the file, name in the warehouse, staged DuckDB type)."""

    columns: tuple[tuple[str, str, str], ...]
    empty: bool = False  # no content at all: a valid empty delivery

    @property
    def names(self) -> list[str]:
        return [name for _, name, _ in self.columns]


@dataclass
class StagedFile:
    """What the loader needs to commit one staged file."""

    mode: str  # csv | csv_stream | csv_lines | jsonl | parquet
    relation: str  # SQL FROM item yielding _row_number + columns (alias it as s)
    columns: dict[str, str]  # warehouse column -> staged DuckDB type
    raw_line_sql: str  # expression over alias s re-creating the source line of a record
    raw_line_params: dict[str, object] = field(default_factory=dict)
    records: int = 0  # rows in relation
    parser_rejects: int = 0  # rows in _ingest_rejects
    expected_total: int | None = None  # physical data lines, when the mode can prove it
    params: dict[str, object] = field(default_factory=dict)  # used by relation
    direct: bool = False  # relation reads the file itself (no temp stage, see stage_csv)
    rescan_relation: str = ""  # direct only: same records again, without collecting rejects
    expected_later: Callable[[], int | None] | None = None  # direct: physical lines, lazily
    header_lines: int = 0


def reader_error(
    spec: SourceSpec, fp: Fingerprint, what: str, error: duckdb.Error
) -> IngestError:
    """A file that cannot be read at all (the loader sets it aside): a verdict on its bytes
    when DuckDB rejects them as input (not the format, invalid encoding); any other error
    (the file is gone, out of memory) may pass."""
    failure = IngestVerdict if isinstance(error, duckdb.InvalidInputException) else IngestError
    return failure(
        f"source {spec.name}: file {fp.name} (sha256 {fp.sha256[:12]}): "
        f"{what}: {safe_reason(error)}",
        source=spec.name,
        file=fp.name,
    )


def canonical_names(spec: SourceSpec, names: Sequence[str]) -> list[str]:
    """Rename file columns that match a registry column up to letter case to its spelling."""
    wanted = {column.lower(): column for column in spec.required_columns}
    reserved = (*METADATA_COLUMNS, "ordinality", "_key")
    return unique_names([wanted.get(name.lower(), name) for name in names], reserved)


def text_columns(spec: SourceSpec, names: Sequence[str]) -> FileColumns:
    """A text format's columns (CSV header, JSON keys): all staged as VARCHAR."""
    mapped = canonical_names(spec, names)
    return FileColumns(tuple((n, m, "VARCHAR") for n, m in zip(names, mapped, strict=True)))


def missing_columns(spec: SourceSpec, present: Mapping[str, object] | Sequence[str]) -> list[str]:
    """Registry columns (key, timestamp, identity, typed) the file does not carry.

    JSON omits absent values, so a JSONL file only has to carry record key column(s) and
    timestamp; its other mapped keys may be missing from every line (they load as NULL).
    """
    have = {str(name) for name in present}
    required = (
        [*spec.key_columns, spec.timestamp] if spec.format == "jsonl"
        else spec.required_columns
    )
    return [column for column in dict.fromkeys(required) if column and column not in have]


def has_content(fp: Fingerprint) -> bool:
    """Anything but blank lines in the file (unknown counts as yes)."""
    stats = fp.line_stats()
    return stats is None or stats.has_content


def line_scan_sql(encoding_param: bool = True) -> str:
    """``read_csv`` that yields every physical line as one value ``l`` (no quoting)."""
    encoding = ", encoding=$encoding" if encoding_param else ""
    return (
        "read_csv($path, columns={'l': 'VARCHAR'}, header=false, delim=$sep, quote='', "
        f"escape='', auto_detect=false{encoding}"
    )


def numbered_relation(
    con: duckdb.DuckDBPyConnection,
    table: str,
    offset: int,
    reject_ordinals_sql: str | None,
    *,
    wide: bool = False,
) -> str:
    """``table`` with ``_row_number`` = record ordinal in the file + ``offset``.

    The staged rows are in file order (``rowid``), but lines the parser rejected are missing
    from them. With the rejected ordinals q_1 < q_2 < ..., the k-th staged row sits at ordinal
    k + #{i : q_i - i < k}; an ASOF join on g_i = q_i - i finds that count. For wide tables
    the ASOF join would sort every column, so the ordinals are mapped on a narrow table first
    and joined back by position (hash join, parallel).
    """
    row = con.execute(
        f"SELECT coalesce(min(rowid), 0), count(*) FROM temp.main.{q(table)}"
    ).fetchone()
    base, count = (int(row[0]), int(row[1])) if row else (0, 0)
    position = f"(s.rowid - {base} + 1)"
    if reject_ordinals_sql is None:
        return (
            f"(SELECT {position} + {int(offset)} AS _row_number, s.* "
            f"FROM temp.main.{q(table)} s)"
        )
    create_gaps(con, reject_ordinals_sql)
    gaps = f"temp.main.{q(GAPS)}"
    if not wide:
        return (
            f"(SELECT {position} + coalesce(g.i, 0) + {int(offset)} AS _row_number, s.* "
            f"FROM temp.main.{q(table)} s ASOF LEFT JOIN {gaps} g ON {position} > g.g)"
        )
    con.execute(
        f"""CREATE TEMP TABLE {q(ROWNUM)} AS
            SELECT p.k, p.k + coalesce(g.i, 0) + {int(offset)} AS n
            FROM range(1, {count + 1}) p(k) ASOF LEFT JOIN {gaps} g ON p.k > g.g"""
    )
    return (
        f"(SELECT m.n AS _row_number, s.* FROM temp.main.{q(table)} s "
        f"JOIN temp.main.{q(ROWNUM)} m ON m.k = {position})"
    )


def create_gaps(con: duckdb.DuckDBPyConnection, reject_ordinals_sql: str) -> None:
    """GAPS(g, i): for rejected ordinals q_1 < q_2 < ..., g_i = q_i - i (see above)."""
    con.execute(
        f"""CREATE TEMP TABLE {q(GAPS)} AS
            SELECT g, max(i) AS i FROM (
                SELECT ordinal - row_number() OVER (ORDER BY ordinal) AS g,
                       row_number() OVER (ORDER BY ordinal) AS i
                FROM ({reject_ordinals_sql}))
            GROUP BY g"""
    )


def create_csv_rejects(
    con: duckdb.DuckDBPyConnection, reason: str = "malformed CSV line", first_line: int = 0
) -> None:
    """REJECTS from DuckDB's CSV rejects table, one row per rejected line from ``first_line``."""
    con.execute(
        f"""CREATE TEMP TABLE {q(REJECTS)} AS
            SELECT line::BIGINT AS _line_number,
                   $reason || ': ' || string_agg(DISTINCT error_type::VARCHAR || ' ('
                       || error_message || ')', '; ') AS _reason,
                   trim(min(csv_line), $crlf) AS _raw_line
            FROM temp.main.{q(CSV_ERRORS)}
            WHERE line >= $first GROUP BY line""",
        {"crlf": "\r\n", "reason": reason, "first": first_line},
    )



def scan_lines(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, encoding: str,
    first_data_line: int,
) -> int:
    """Every physical line of the file into NUMBERED(_line, l); unreadable lines to REJECTS.

    Returns the number of non-empty data lines (loaded + rejected must add up to it).
    """
    try:
        con.execute(
            f"""CREATE TEMP TABLE {q(LINES)} AS SELECT l FROM {line_scan_sql()},
                    store_rejects=true, rejects_table='{CSV_ERRORS}',
                    rejects_scan='{CSV_SCANS}', rejects_limit=0)""",
            {"path": str(fp.path), "sep": LINE_SCAN_SEPARATOR, "encoding": encoding},
        )
    except duckdb.Error as error:
        raise reader_error(spec, fp, "cannot read file", error) from error
    create_csv_rejects(con, "unreadable line", first_data_line)
    row = con.execute(f"SELECT count(DISTINCT line) FROM temp.main.{q(CSV_ERRORS)}").fetchone()
    has_errors = bool(row and row[0])
    ordinals = (
        f"SELECT DISTINCT line::BIGINT AS ordinal FROM temp.main.{q(CSV_ERRORS)}"
        if has_errors
        else None
    )
    relation = numbered_relation(con, LINES, 0, ordinals)
    blank = "l IS NULL" if spec.format == "csv" else "l IS NULL OR trim(l) = ''"
    con.execute(
        f"""CREATE TEMP TABLE {q(NUMBERED)} AS
            SELECT _row_number AS _line, l FROM {relation} s
            WHERE _row_number >= $first AND NOT ({blank})""",
        {"first": first_data_line},
    )
    return count_temp(con, NUMBERED) + count_temp(con, REJECTS)


def stage_lines(
    con: duckdb.DuckDBPyConnection,
    mode: str,
    names: list[str],
    expected: int,
    fields: Sequence[str],
    parsed: str,
    params: dict[str, object],
) -> StagedFile:
    """STAGE from parsed lines (``_line``, ``l``): ``fields`` are the select items of the
    columns; each record keeps its line as ``_raw_line`` for quarantine."""
    con.execute(
        f"""CREATE TEMP TABLE {q(STAGE)} AS
            SELECT _line AS _row_number, l AS _raw_line{''.join(', ' + f for f in fields)}
            FROM {parsed}""",
        params,
    )
    return StagedFile(
        mode=mode,
        relation=f"temp.main.{q(STAGE)}",
        columns={name: "VARCHAR" for name in names},
        raw_line_sql="s._raw_line",
        records=count_temp(con, STAGE),
        parser_rejects=count_temp(con, REJECTS),
        expected_total=expected,
    )
