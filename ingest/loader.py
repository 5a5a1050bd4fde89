"""Load landing files into the DuckDB warehouse: exactly once per file, nothing lost.

Per source: hash every matching file, skip bytes the ledger already holds, check every new
file's columns against the registry (a missing mapped column fails the source before anything
is written), then per file: stage it in temp tables (see ``ingest.readers``), and in ONE
transaction add drifted columns, append good rows to ``raw.<source>``, quarantine the rest in
``raw.<source>__rejected`` and write the ledger row. A crash at any point leaves either the
whole file or nothing; a rerun picks up where the ledger says. Rows whose registered timestamp
is after the run's ``not_after`` time are quarantined too (reason ``future_dated``), so a
record dated ahead never reaches the warehouse's traits. Rows carrying an identifier of an
erased person (``raw._erased_identifiers``, written by ``privacy``) are quarantined too (reason
``erased``), without their values: a replayed old export cannot bring a forgotten person back.

Which rows are good and how they are typed is planned in ``ingest.plan``; what a run did is
reported in ``ingest.reports``. Logs carry counts, file names, hashes and reasons, never row
contents.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from core.vocabulary import identifier_hash
from core.vocabulary import quote_identifier as q
from ingest.errors import IngestError, IngestRunError, IngestVerdict, safe_reason
from ingest.files import Fingerprint, discover, fingerprint
from ingest.ledger import (
    CONTENT_HASH,
    DUCK_TYPES,
    ERASED_IDENTIFIERS,
    ERASED_REASON,
    LEDGER,
    RAW,
    REDELIVERED,
    already_loaded,
    clear_file_failure,
    ensure_raw_schema,
    ensure_source_tables,
    has_history,
    hash_unhashed_rows,
    record_file_failure,
    refresh_latest_view,
    retry_conflicts,
    table_columns,
    write_source_registry,
)
from ingest.plan import FUTURE_DATED, CastPlan, plan_casts
from ingest.readers import inspect_columns, stage_file
from ingest.readers.common import (
    FileColumns,
    StagedFile,
    create_csv_rejects,
    create_gaps,
    missing_columns,
)
from ingest.readers.csv import csv_error_stats, stage_csv_staged
from ingest.registry import Registry, SourceSpec
from ingest.reports import FileLoadReport, SourceLoadReport
from ingest.sql import execute_count, qualified, used_params
from ingest.temp_tables import BAD, GAPS, REJECTS, count_temp, drop_temp_tables

log = logging.getLogger(__name__)

__all__ = ["connect", "load_all", "load_source"]


def connect(db_path: Path | str, lock_timeout: float = 600.0) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-write, waiting while another process holds DuckDB's file lock.

    A doubled task (e.g. a retry while a zombie attempt still runs) thus waits, then finds the
    files in the ledger and loads nothing.
    """
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise IngestError(
                    f"cannot open warehouse {path}: {safe_reason(error)}"
                ) from error
            time.sleep(0.2)


_SETTING_VALUE = re.compile(r"[A-Za-z0-9_/+\-:.]+")


@contextmanager
def _session(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """UTC session time zone (naive timestamps are UTC) and file-order preserving scans."""
    saved = {}
    for name, value in (("TimeZone", "UTC"), ("preserve_insertion_order", "true")):
        row = con.execute("SELECT current_setting($name)", {"name": name}).fetchone()
        saved[name] = str(row[0]) if row else None
        con.execute(f"SET {name} = '{value}'")
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is not None and _SETTING_VALUE.fullmatch(old):
                con.execute(f"SET {name} = '{old}'")


def _evolve_schema(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, staged: StagedFile
) -> list[str]:
    """Add the file's new columns to ``raw.<source>`` (older rows read NULL)."""
    existing = {name.lower(): kind for name, kind in table_columns(con, RAW, spec.table).items()}
    types = spec.column_types
    added = []
    for column in staged.columns:
        target = DUCK_TYPES[types.get(column, "varchar")]
        current = existing.get(column.lower())
        if current is None:
            con.execute(
                f"ALTER TABLE {qualified(RAW, spec.table)} ADD COLUMN {q(column)} {target}"
            )
            added.append(column)
        elif current.upper() != target:
            raise IngestVerdict(
                f"source {spec.name}: column {column!r} is {current} in raw.{spec.table} but "
                f"the registry makes it {target}; migrate the raw table first",
                source=spec.name,
            )
    return added


def _commit_file(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    fp: Fingerprint,
    staged: StagedFile | None,
    run_id: str,
    history: bool,
    not_after: datetime | None,
) -> FileLoadReport:
    """Append rows, quarantine, ledger: one transaction. Returns the file's report.

    ``history``: earlier deliveries of the source exist, so new columns are reported and rows
    identical to an already loaded version are set aside (``_settle_versions``).
    ``not_after``: rows with a later registered timestamp are quarantined (naive UTC).
    Rows carrying an erased person's identifier move from loaded to rejected
    (``_quarantine_erased``) before the version check, so they never reach ``raw._redelivered``.
    """
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    base = {
        "source": spec.name,
        "file": fp.name,
        "sha": fp.sha256,
        "run_id": run_id,
        "loaded_at": loaded_at,
    }
    con.execute("BEGIN TRANSACTION")
    try:
        if already_loaded(con, spec.name, fp.sha256):
            con.execute("ROLLBACK")
            return FileLoadReport(fp.name, fp.sha256, "skipped_duplicate")
        loaded = rejected = future = erased = 0
        added: list[str] = []
        versions = _Versions()
        if staged is not None:
            added = _evolve_schema(con, spec, staged)
            loaded, rejected, future = _insert_rows(con, spec, staged, base, not_after)
            if staged.expected_total is not None and loaded + rejected != staged.expected_total:
                raise IngestError(
                    f"source {spec.name}: file {fp.name}: accounting mismatch "
                    f"(loaded {loaded} + rejected {rejected} != {staged.expected_total} "
                    "records in the file); nothing loaded",
                    source=spec.name,
                    file=fp.name,
                )
            # before the version check: an erased row must not reach raw._redelivered
            erased = _quarantine_erased(con, spec, base)
            _erase_quarantined_lines(con, spec, base)
            loaded -= erased
            rejected += erased
            versions = _settle_versions(con, spec, fp.sha256, history)
            loaded -= versions.duplicate
        if not fp.unchanged():
            raise IngestError(
                f"source {spec.name}: file {fp.name} changed while it was being loaded; "
                "nothing loaded (deliver files by writing elsewhere and renaming)",
                source=spec.name,
                file=fp.name,
            )
        new_columns = added if history else []
        con.execute(
            f"""INSERT INTO {qualified(RAW, LEDGER)}
                (source, file_name, file_sha256, rows_in_file, rows_loaded, rows_rejected,
                 new_columns, run_id, loaded_at, status, rows_duplicate, rows_known_key,
                 first_record_at, last_record_at, delivery)
                VALUES ($source, $file, $sha, $rows_in_file, $loaded, $rejected, $new_columns,
                 $run_id, $loaded_at, 'loaded', $duplicate, $known, $first, $last, $delivery)""",
            {
                **base,
                "rows_in_file": loaded + rejected + versions.duplicate,
                "loaded": loaded,
                "rejected": rejected,
                "new_columns": new_columns,
                "duplicate": versions.duplicate,
                "known": versions.known_key,
                "first": versions.first_record_at,
                "last": versions.last_record_at,
                "delivery": spec.delivery,
            },
        )
        clear_file_failure(con, spec.name, fp.sha256)
        con.execute("COMMIT")
    except _Restage:
        _rollback(con)
        raise
    except (duckdb.ConstraintException, duckdb.TransactionException) as error:
        _rollback(con)
        if _wait_for_concurrent_load(con, spec.name, fp.sha256):
            log.info("source=%s file=%s sha256=%s: loaded concurrently by another task",
                     spec.name, fp.name, fp.sha256)
            return FileLoadReport(fp.name, fp.sha256, "skipped_duplicate")
        raise IngestError(
            f"source {spec.name}: file {fp.name}: write conflict with a concurrent load "
            f"({type(error).__name__}); nothing loaded, rerun to retry",
            source=spec.name,
            file=fp.name,
        ) from error
    except BaseException:
        _rollback(con)
        raise
    return FileLoadReport(
        file_name=fp.name,
        file_sha256=fp.sha256,
        status="loaded",
        mode=staged.mode if staged is not None else "empty",
        rows_in_file=loaded + rejected + versions.duplicate,
        rows_loaded=loaded,
        rows_rejected=rejected,
        rows_future_dated=future,
        rows_erased=erased,
        rows_duplicate=versions.duplicate,
        new_columns=new_columns,
    )


#: Canonical identity fields an erasure keeps the hash of (``privacy.identifiers``).
ERASABLE_FIELDS: tuple[str, ...] = ("email", "phone", "customer_number", "national_id",
                                     "loyalty_card")
#: Region phones without a country code are read in, as the identity resolver's default
#: (``identity.yml`` ``default_region``); a source mapping ``country`` reads each row's own.
DEFAULT_PHONE_REGION = "DE"
_UNIT = chr(31)  # joins a phone and its country into one match key


def _quarantine_erased(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, base: Mapping[str, object]
) -> int:
    """Move this file's rows that carry an erased identifier to quarantine; returns how many.

    Runs inside the file's transaction, after its rows were appended. The identity columns
    (e-mail, phone, customer number, national id, loyalty card) are normalised as the
    identity resolver normalises them and hashed as ``privacy.identifiers.identifier_hash``
    hashes them; a row whose hash is in ``raw._erased_identifiers`` leaves ``raw.<source>``
    and is kept in ``raw.<source>__rejected`` with reason ``erased`` and nothing of its values
    (no raw line, no record key): only where it came from. Cheap when nothing applies: one query
    when nothing of the source's identifier kinds was ever erased; otherwise only the distinct
    values of the columns of an erased kind are read (parsing phones is the costly part, about
    30 s per million distinct numbers, so phones are parsed only once a phone was erased).
    """
    fields = {f: c for f, c in spec.identity.items() if f in ERASABLE_FIELDS}
    if not fields:
        return 0
    erased: dict[str, set[str]] = {}
    for kind, digest in con.execute(
        f"SELECT identifier_type, identifier_hash FROM {qualified(RAW, ERASED_IDENTIFIERS)} "
        "WHERE list_contains($kinds, identifier_type)", {"kinds": list(fields)}
    ).fetchall():
        erased.setdefault(str(kind), set()).add(str(digest))
    if not erased:
        return 0
    table = qualified(RAW, spec.table)
    conditions: list[str] = []
    params: dict[str, object] = {"sha": base["sha"]}
    for field, column in fields.items():
        if field not in erased:  # e.g. no phone was ever erased: phones are not parsed
            continue
        expression, keys = _erased_keys(con, spec, field, column, erased[field], base["sha"])
        if keys:
            name = f"keys_{len(conditions)}"
            conditions.append(f"({expression}) IN (SELECT unnest(${name}))")
            params[name] = keys
    if not conditions:
        return 0
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _cdp_erased AS
            SELECT rowid AS id FROM {table}
            WHERE _file_sha256 = $sha AND ({" OR ".join(conditions)})""",
        params,
    )
    moved = execute_count(
        con,
        f"""INSERT INTO {qualified(RAW, spec.rejected_table)} BY NAME
            SELECT _source_file, _file_sha256, _row_number AS _line_number, $reason AS _reason,
                   _run_id, _loaded_at
            FROM {table} WHERE rowid IN (SELECT id FROM temp.main._cdp_erased)""",
        {"reason": ERASED_REASON},
    )
    if moved:
        con.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT id FROM temp.main._cdp_erased)")
        log.warning(
            "source=%s file=%s: %d row(s) carry an identifier of an erased person: quarantined "
            "in raw.%s without their values (reason %s)",
            spec.name, base["file"], moved, spec.rejected_table, ERASED_REASON,
        )
    con.execute("DROP TABLE temp.main._cdp_erased")
    return moved


#: Where a quarantined raw line is split into values to check against erased hashes.
_LINE_VALUES = re.compile(r'[,;\t|"{}\[\]]+|": *')


def _erase_quarantined_lines(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, base: Mapping[str, object]
) -> int:
    """This file's lines quarantined for another reason (a bad date, a broken line) that hold
    an erased identifier lose their line and key and take reason ``erased``; returns how many.

    Such a line has no typed columns, so each of its values (split at delimiters and JSON
    punctuation) is normalised as an e-mail, a phone and a code and hashed. Quarantined lines
    are few; nothing is read when nothing of the source's identifier kinds was erased.
    """
    kinds = [f for f in spec.identity if f in ERASABLE_FIELDS]
    erased = {str(h) for (h,) in con.execute(
        f"SELECT identifier_hash FROM {qualified(RAW, ERASED_IDENTIFIERS)} "
        "WHERE list_contains($kinds, identifier_type)", {"kinds": kinds}).fetchall()} if kinds \
        else set()
    if not erased:
        return 0
    from identity.normalise.email import normalise_email_value
    from identity.normalise.identifiers import normalise_code_value
    from identity.normalise.phone import normalise_phone_value

    rejected = qualified(RAW, spec.rejected_table)
    hits = []
    for rowid, line in con.execute(
            f"SELECT rowid, _raw_line FROM {rejected} WHERE _file_sha256 = $sha "
            "AND _raw_line IS NOT NULL", {"sha": base["sha"]}).fetchall():
        for value in {v.strip() for v in _LINE_VALUES.split(str(line)) if v.strip()}:
            found = {("email", normalise_email_value(value)) if "@" in value else ("", None),
                     ("phone", normalise_phone_value(value, DEFAULT_PHONE_REGION)),
                     *((kind, normalise_code_value(value))
                       for kind in ("customer_number", "national_id", "loyalty_card"))}
            if any(v and identifier_hash(k, v) in erased for k, v in found if k in kinds):
                hits.append(rowid)
                break
    if hits:
        con.execute(
            f"UPDATE {rejected} SET _raw_line = NULL, {q(spec.record_key)} = NULL, "
            "_reason = $reason WHERE rowid IN (SELECT unnest($ids))",
            {"reason": ERASED_REASON, "ids": hits})
        log.warning("source=%s file=%s: %d quarantined line(s) carry an identifier of an "
                    "erased person: their values dropped (reason %s)", spec.name, base["file"],
                    len(hits), ERASED_REASON)
    return len(hits)


def _erased_keys(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    field: str,
    column: str,
    erased_hashes: set[str],
    sha256: object,
) -> tuple[str, list[str]]:
    """(SQL match key of a row, the keys of this file that are erased) for one identity field.

    The key is the column's text; a phone's key adds the row's country when the source maps
    one, since the resolver reads a national number in the record's own country.
    """
    # the normalisers pull in pandas and libphonenumber: imported only when something is erased
    from identity.normalise.country import normalise_country_value
    from identity.normalise.email import normalise_email
    from identity.normalise.identifiers import normalise_code_value
    from identity.normalise.phone import normalise_phone
    from identity.normalise.text import map_distinct

    value = f"CAST({q(column)} AS VARCHAR)"
    country_column = spec.identity.get("country") if field == "phone" else None
    country = f"CAST({q(country_column)} AS VARCHAR)" if country_column else "NULL"
    frame = con.execute(
        f"""SELECT DISTINCT {value} AS value, {country} AS country
            FROM {qualified(RAW, spec.table)}
            WHERE _file_sha256 = $sha AND {q(column)} IS NOT NULL""",
        {"sha": sha256},
    ).df()
    if frame.empty:
        return value, []
    if field == "email":
        normalised = normalise_email(frame["value"])
    elif field == "phone":
        regions = (map_distinct(frame["country"], normalise_country_value) if country_column
                   else None)
        normalised = normalise_phone(frame["value"], DEFAULT_PHONE_REGION, regions=regions)
    else:
        normalised = map_distinct(frame["value"], normalise_code_value)
    hit = [isinstance(v, str) and identifier_hash(field, v) in erased_hashes
           for v in normalised.tolist()]  # missing values are pd.NA
    matched = frame[hit]
    if not country_column:
        return value, [str(v) for v in matched["value"]]
    expression = f"{value} || chr({ord(_UNIT)}) || coalesce({country}, '')"
    return expression, [f"{v}{_UNIT}{c if isinstance(c, str) else ''}"
                        for v, c in zip(matched["value"], matched["country"], strict=True)]


@dataclass
class _Versions:
    """What one delivery's rows are against earlier deliveries of the same source."""

    duplicate: int = 0  # identical to an already loaded version: set aside
    known_key: int = 0  # key already known (duplicates included)
    first_record_at: datetime | None = None  # span of the registered timestamp
    last_record_at: datetime | None = None


def _settle_versions(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, sha256: str, history: bool
) -> _Versions:
    """Set aside rows identical to an already loaded version of their record; measure the rest.

    Runs inside the file's transaction, after its rows were appended: a row whose record key
    and content hash an earlier delivery already holds moves to ``raw._redelivered`` (so a
    later withdrawal of that earlier delivery can hand it over), whatever the bytes of the
    file were (line ends, column order, encoding). Content hashes are computed only once
    there is something to compare with: a source's first (bulk) load stays as fast as a
    plain append, and its rows are hashed when the second delivery arrives.
    """
    table = qualified(RAW, spec.table)
    key = q(spec.record_key)
    params = {"sha": sha256}
    versions = _Versions()
    if history:
        hash_unhashed_rows(con, spec)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _cdp_known AS
                SELECT n.rowid AS id FROM {table} n
                SEMI JOIN (SELECT {key}, {q(CONTENT_HASH)} FROM {table}
                           WHERE _file_sha256 <> $sha) o
                  ON o.{key} = n.{key} AND o.{q(CONTENT_HASH)} = n.{q(CONTENT_HASH)}
                WHERE n._file_sha256 = $sha""",
            params,
        )
        versions.duplicate = execute_count(
            con,
            f"""INSERT INTO {qualified(RAW, REDELIVERED)}
                SELECT $source, CAST({key} AS VARCHAR), {q(CONTENT_HASH)}, _source_file,
                       _file_sha256, _row_number, _loaded_at, _run_id
                FROM {table} WHERE rowid IN (SELECT id FROM temp.main._cdp_known)""",
            {"source": spec.name},
        )
        if versions.duplicate:
            con.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT id FROM temp.main._cdp_known)")
        con.execute("DROP TABLE temp.main._cdp_known")
    known = (
        f"count(*) FILTER (WHERE {key} IN (SELECT {key} FROM {table} "
        "WHERE _file_sha256 <> $sha))" if history else "0"
    )
    span = (f"min({q(spec.timestamp)}), max({q(spec.timestamp)})" if spec.timestamp
            else "NULL, NULL")
    row = con.execute(
        f"SELECT {known}, {span} FROM {table} WHERE _file_sha256 = $sha", {"sha": sha256}
    ).fetchone()
    if row:
        versions.known_key = int(row[0] or 0) + versions.duplicate
        versions.first_record_at, versions.last_record_at = row[1], row[2]
    return versions


def _wait_for_concurrent_load(
    con: duckdb.DuckDBPyConnection, source: str, sha256: str, timeout: float = 60.0
) -> bool:
    """After a ledger conflict: wait for the other task's commit (True) or give up (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if already_loaded(con, source, sha256):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # no transaction active any more
        con.execute("ROLLBACK")


class _Restage(Exception):
    """The strict CSV fast path could not prove the file; redo it with the staged reader."""


def _insert_rows(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    staged: StagedFile,
    base: Mapping[str, object],
    not_after: datetime | None,
) -> tuple[int, int, int]:
    """Append good rows, quarantine rows failing key/type/date checks; returns (loaded,
    rejected, of those rejected the future-dated ones).

    One filtered pass appends the good rows; a second pass collects the failing ones only
    when the append came up short (of the staged records, or of the CSV's line count).
    """
    plan = plan_casts(spec, staged, not_after)
    params = {**base, **plan.params, **staged.raw_line_params, **staged.params}
    relation = staged.relation
    key = q(spec.record_key)

    def collect_bad(source: str) -> str:
        return f"""CREATE TEMP TABLE {q(BAD)} AS
            SELECT s._row_number AS _line_number, {plan.reason()} AS _reason,
                   {staged.raw_line_sql} AS _raw_line, {plan.key} AS _key
            FROM {source} s WHERE {plan.bad}"""

    values = "".join(f"{value} AS {q(column)}, " for column, value in plan.values.items())
    append = f"""INSERT INTO {qualified(RAW, spec.table)} BY NAME
        SELECT {values}$file AS _source_file, $sha AS _file_sha256,
               s._row_number AS _row_number, $loaded_at AS _loaded_at, $run_id AS _run_id
        FROM {relation} s"""
    if staged.direct:
        loaded = _append_direct(con, spec, staged, plan, params, append, collect_bad)
    else:
        loaded = execute_count(con, f"{append} WHERE NOT ({plan.bad})", params)
        if loaded < staged.records:
            execute_count(con, collect_bad(relation), params)
        else:
            _create_empty_bad(con)
    rejected = execute_count(
        con,
        f"""INSERT INTO {qualified(RAW, spec.rejected_table)} BY NAME
            SELECT $file AS _source_file, $sha AS _file_sha256, _line_number, _reason,
                   _raw_line, $run_id AS _run_id, $loaded_at AS _loaded_at, _key AS {key}
            FROM temp.main.{q(BAD)}
            UNION ALL BY NAME
            SELECT $file AS _source_file, $sha AS _file_sha256, _line_number, _reason,
                   _raw_line, $run_id AS _run_id, $loaded_at AS _loaded_at
            FROM temp.main.{q(REJECTS)}""",
        params,
    )
    future = execute_count(
        con, f"SELECT count(*) FROM temp.main.{q(BAD)} WHERE contains(_reason, $future)",
        {"future": f"{FUTURE_DATED}:"},
    ) if rejected and not_after is not None else 0
    return loaded, rejected, future


def _append_direct(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    staged: StagedFile,
    plan: CastPlan,
    params: Mapping[str, object],
    append: str,
    collect_bad: Callable[[str], str],
) -> int:
    """CSV fast path: one filtered append straight from read_csv, then prove the counts.

    Raises ``_Restage`` when DuckDB reports an error after which it may have lost lines, or
    when loaded + failing + rejected lines do not equal the file's physical data lines
    (values spanning lines, or lost lines): the staged reader then sorts it out.
    """
    try:
        loaded = execute_count(con, f"{append} WHERE NOT ({plan.bad})", params)
    except duckdb.InvalidInputException as error:  # a CSV error store_rejects did not absorb
        raise _Restage(type(error).__name__) from error
    rejected_lines, unsafe = csv_error_stats(con)
    if unsafe:
        raise _Restage(f"{unsafe} CSV error(s) after which lines may be lost")
    expected = staged.expected_later() if staged.expected_later else None
    if expected is None:
        raise _Restage("empty lines inside the file")
    staged.expected_total = expected
    if loaded + rejected_lines == expected:
        _create_empty_bad(con)
    else:
        execute_count(con, collect_bad(staged.rescan_relation), params)
    bad = count_temp(con, BAD)
    if loaded + bad + rejected_lines != expected:
        raise _Restage(
            f"loaded {loaded} + failing {bad} + rejected lines {rejected_lines} "
            f"!= {expected} physical lines"
        )
    create_csv_rejects(con)
    if rejected_lines:
        _renumber_after_rejects(con, spec, staged.header_lines, params)
    return loaded


def _renumber_after_rejects(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    header_lines: int,
    params: Mapping[str, object],
) -> None:
    """Shift the record numbers that follow rejected lines (ordinality skips them)."""
    header = int(header_lines)
    create_gaps(con, f"SELECT _line_number - {header} AS ordinal FROM temp.main.{q(REJECTS)}")
    gaps = f"temp.main.{q(GAPS)}"
    for table, column, extra in (
        (qualified(RAW, spec.table), "_row_number", "AND _file_sha256 = $sha"),
        (f"temp.main.{q(BAD)}", "_line_number", ""),
    ):
        sql = f"""UPDATE {table} AS t
            SET {column} = t.{column}
                + coalesce((SELECT max(i) FROM {gaps} WHERE g < t.{column} - {header}), 0)
            WHERE t.{column} - {header} > (SELECT min(g) FROM {gaps}) {extra}"""
        con.execute(sql, used_params(sql, params))


def _create_empty_bad(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE TEMP TABLE {q(BAD)} (_line_number BIGINT, _reason VARCHAR, "
        "_raw_line VARCHAR, _key VARCHAR)"
    )


def load_source(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing_dir: Path, run_id: str, *,
    not_after: datetime | None = None,
) -> SourceLoadReport:
    """Load the new files of one source from ``landing_dir`` (= ``landing/<source>/``).

    ``not_after``: rows whose registered timestamp is later are quarantined with reason
    ``future_dated`` (the run's as-of time plus tolerance; None: no such check).

    ``con`` must be in auto-commit mode (each file gets its own transaction). A file that
    cannot be read, lacks a mapped column or fails to load is set aside (recorded in
    ``raw._file_quarantine``, tried again next run) and the later files still load; then
    ``IngestError`` is raised, with ``.report`` holding what was committed and naming every
    failed file.
    """
    started = time.perf_counter()
    report = SourceLoadReport(source=spec.name, run_id=run_id)
    landing_dir = Path(landing_dir)
    with _session(con):
        ensure_raw_schema(con)
        ensure_source_tables(con, spec)
        history = has_history(con, spec.name)
        files = discover(landing_dir, spec.path)
        report.files_seen = len(files)
        if not landing_dir.is_dir():
            log.info("source=%s: no landing folder %s", spec.name, landing_dir)
        seen: set[str] = set()
        for path in files:
            item = _deliver(con, spec, landing_dir, path, run_id, history, seen,
                            _naive_utc(not_after))
            history = history or item.status == "loaded"
            report.add(item)
        if report.new_columns:
            retry_conflicts(lambda: refresh_latest_view(con, spec))
    report.error = report.failure_summary()
    report.seconds = round(time.perf_counter() - started, 3)
    if report.error is not None:
        failure = IngestVerdict if report.final else IngestError
        raise failure(report.error, source=spec.name, report=report)
    log.info(
        "source=%s run=%s files_seen=%d loaded=%d skipped=%d rows_loaded=%d rows_rejected=%d "
        "rows_future_dated=%d rows_erased=%d rows_duplicate=%d new_columns=%s seconds=%.2f",
        spec.name, run_id, report.files_seen, report.files_loaded, report.files_skipped,
        report.rows_loaded, report.rows_rejected, report.rows_future_dated,
        report.rows_erased, report.rows_duplicate, report.new_columns, report.seconds,
    )
    return report


def _naive_utc(moment: datetime | None) -> datetime | None:
    """Raw timestamps are naive UTC; an aware ``moment`` is converted to match them."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _deliver(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    landing_dir: Path,
    path: Path,
    run_id: str,
    history: bool,
    seen: set[str],
    not_after: datetime | None,
) -> FileLoadReport:
    """One landing file: skip known bytes, check its columns, load it; a failure sets it aside.

    A verdict on the file is final only if the file did not change meanwhile (one still being
    written may read as garbage or lack columns).
    """
    name = path.relative_to(landing_dir).as_posix()
    sha256 = ""
    fp: Fingerprint | None = None
    try:
        try:
            fp = fingerprint(path, landing_dir, text=spec.format != "parquet")
        except OSError as error:
            raise IngestError(
                f"source {spec.name}: file {name}: cannot read: {error.strerror or error}",
                source=spec.name,
                file=name,
            ) from error
        sha256 = fp.sha256
        if fp.sha256 in seen or already_loaded(con, spec.name, fp.sha256):
            log.info("source=%s file=%s sha256=%s: already loaded or withdrawn, skipped",
                     spec.name, fp.name, fp.sha256)
            return FileLoadReport(fp.name, fp.sha256, "skipped_duplicate")
        seen.add(fp.sha256)
        columns = inspect_columns(con, spec, fp)
        if not columns.empty:
            missing = missing_columns(spec, columns.names)
            if missing:
                raise IngestVerdict(
                    f"source {spec.name}: file {fp.name}: missing mapped column(s) "
                    f"{', '.join(repr(c) for c in missing)} (record key, timestamp, typed or "
                    "identity columns of the registry); nothing of this file was loaded",
                    source=spec.name,
                    file=fp.name,
                )
        return _load_file(con, spec, fp, columns, run_id, history, not_after)
    except IngestError as error:
        reason = str(error)
        log.error("source=%s file=%s: set aside: %s", spec.name, name, reason)
        if sha256:
            retry_conflicts(
                lambda: record_file_failure(con, spec.name, name, sha256, reason, run_id)
            )
        final = error.final and fp is not None and fp.unchanged()
        return FileLoadReport(name, sha256, "failed", error=reason, final=final)


def _load_file(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    fp: Fingerprint,
    columns: FileColumns,
    run_id: str,
    history: bool,
    not_after: datetime | None,
) -> FileLoadReport:
    started = time.perf_counter()
    try:
        staged = None if columns.empty else stage_file(con, spec, fp, columns)
        try:
            item = _commit_file(con, spec, fp, staged, run_id, history, not_after)
        except _Restage as why:
            log.info("source=%s file=%s: fast CSV path not provable (%s); staged re-read",
                     spec.name, fp.name, why)
            drop_temp_tables(con)
            staged = stage_csv_staged(con, spec, fp, columns)
            item = _commit_file(con, spec, fp, staged, run_id, history, not_after)
    except duckdb.Error as error:
        raise IngestError(
            f"source {spec.name}: file {fp.name}: load failed: {safe_reason(error)}",
            source=spec.name,
            file=fp.name,
        ) from error
    finally:
        drop_temp_tables(con)
    item.seconds = round(time.perf_counter() - started, 3)
    if item.status == "loaded":
        log.info(
            "source=%s file=%s sha256=%s mode=%s rows_in_file=%d loaded=%d rejected=%d "
            "new_columns=%s seconds=%.2f",
            spec.name, fp.name, fp.sha256, item.mode, item.rows_in_file, item.rows_loaded,
            item.rows_rejected, item.new_columns, item.seconds,
        )
        if item.rows_rejected:
            log.warning(
                "source=%s file=%s: %d row(s) quarantined in raw.%s (%d future-dated, "
                "%d erased)",
                spec.name, fp.name, item.rows_rejected, spec.rejected_table,
                item.rows_future_dated, item.rows_erased,
            )
    return item


RegistryLike = Registry | Mapping[str, SourceSpec] | Iterable[SourceSpec]


def _specs(registry: RegistryLike) -> list[SourceSpec]:
    if isinstance(registry, Registry):
        return list(registry)
    if isinstance(registry, Mapping):
        return list(registry.values())
    return list(registry)


def load_all(
    db_path: Path | str,
    registry: RegistryLike,
    landing_root: Path | str,
    run_id: str,
    sources: Sequence[str] | None = None,
    *,
    raise_on_error: bool = True,
    lock_timeout: float = 600.0,
    not_after: datetime | None = None,
) -> list[SourceLoadReport]:
    """Load every (or the named) registered source from ``landing_root/<source>/``.

    Also (re)writes ``raw._source_registry`` for all registered sources. A failing source does
    not stop the others; afterwards ``IngestRunError`` lists the failed ones (unless
    ``raise_on_error`` is false, then their reports carry ``error``). ``not_after``: see
    :func:`load_source`.
    """
    specs = _specs(registry)
    by_name = {spec.name: spec for spec in specs}
    if sources is not None:
        unknown = [name for name in sources if name not in by_name]
        if unknown:
            raise IngestVerdict(f"unknown source(s) {unknown}; registered: {sorted(by_name)}")
        selected = [by_name[name] for name in sources]
    else:
        selected = specs
    landing_root = Path(landing_root)
    reports: list[SourceLoadReport] = []
    con = connect(db_path, lock_timeout)
    try:
        with _session(con):
            ensure_raw_schema(con)
            for spec in specs:
                ensure_source_tables(con, spec)
            write_source_registry(con, specs)
        for spec in selected:
            try:
                reports.append(load_source(con, spec, landing_root / spec.name, run_id,
                                           not_after=not_after))
            except (IngestError, duckdb.Error, OSError) as error:
                report = (error.report if isinstance(error, IngestError) else None
                          ) or SourceLoadReport(spec.name, run_id)
                report.error = report.error or safe_reason(error)
                log.error("source=%s run=%s failed: %s", spec.name, run_id, report.error)
                reports.append(report)
    finally:
        con.close()
    if raise_on_error and any(not r.ok for r in reports):
        raise IngestRunError(reports)
    return reports
