"""Raw-layer suites: one per registered source's append-only table, its loads and deliveries.

The raw layer has one table per registered source, so its suites follow the source registry
ingest recorded in ``raw._source_registry`` rather than a hand-maintained file.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from core.vocabulary import LOAD_COLUMNS
from core.vocabulary import quote_identifier as q
from ingest.ledger import ERASED_REASON
from ingest.registry import RegistryError, load_registry
from quality.gx import Expectation, gx
from quality.suites.catalog import (
    REGISTRY_TABLE,
    Catalog,
    count_rows,
    label_sql,
    labelled_frame,
    select_list,
    sql_literal,
    table_columns,
)
from quality.suites.checks import CheckSpec, LayerPlan, schema_check, setting
from quality.suites.deliveries import delivery_check
from quality.thresholds import Thresholds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawSource:
    """What the gate needs to know about one registered source's raw table."""

    key: str | None
    timestamp: str | None = None
    birth_date_format: str | None = None
    #: canonical field (email, phone, birth_date) -> raw column
    formats: Mapping[str, str] = field(default_factory=dict)
    #: declared delivery kind (snapshot | incremental); None: inferred per delivery
    delivery: str | None = None


#: Canonical identity fields whose raw values get a format check.
FORMAT_FIELDS = ("email", "phone", "birth_date")


def plan_raw(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    thresholds: Thresholds,
    sources_config: Path,
    passed_until: dt.datetime | None = None,
) -> LayerPlan:
    """Per registered source: its table and columns present, its rows, latest load and
    deliveries; sources come from the registry table ingest wrote with the raw tables.

    ``passed_until``: when the previous publication was made.  Raw is append-only and rows
    loaded before then passed that publication's gate, so the row checks read only the rows
    loaded since (a daily run checks its day, not the warehouse's history); None: every row.
    """
    plan = LayerPlan("raw")
    required: list[tuple[str, bool]] = []
    registry_cols = table_columns(catalog, "raw", REGISTRY_TABLE)
    registry_ok = registry_cols is not None and {"source", "record_key"} <= set(registry_cols)
    required.append((f"raw.{REGISTRY_TABLE}", registry_ok))
    if not registry_ok:
        plan.notes.append(
            f"raw.{REGISTRY_TABLE} missing or without columns source, record_key: "
            "no raw table could be checked"
        )
        plan.checks.append(schema_check("raw", required))
        return plan

    registry = con.execute(f"SELECT * FROM raw.{q(REGISTRY_TABLE)} ORDER BY source").df()
    for name, source in _registered_sources(registry, sources_config).items():
        table = f"raw.{name}"
        columns = table_columns(catalog, "raw", name)
        required.append((table, columns is not None))
        if columns is None:
            continue
        key_ok = source.key is not None and source.key in columns
        required.append((f"{table}.{source.key or '<record_key>'}", key_ok))
        for column in [source.timestamp, *source.formats.values()]:
            if column is not None:
                required.append((f"{table}.{column}", column in columns))
        unmapped = [f for f in FORMAT_FIELDS if f not in source.formats]
        if unmapped:
            plan.notes.append(
                f"{table}: no {', '.join(unmapped)} column mapped; format not checked"
            )
        if source.key is None or not key_ok:
            continue
        plan.checks.extend(_raw_table_checks(con, catalog, name, source.key, source, thresholds,
                                             passed_until))
        plan.checks.append(_load_check(con, catalog, name, source.key, thresholds, plan.notes))
        deliveries = delivery_check(con, catalog, name, source.delivery, thresholds, plan.notes)
        if deliveries is not None:
            plan.checks.append(deliveries)
    plan.checks.insert(0, schema_check("raw", required))
    return plan


def _raw_table_checks(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    name: str,
    key: str,
    source: RawSource,
    thresholds: Thresholds,
    passed_until: dt.datetime | None = None,
) -> list[CheckSpec]:
    """Record keys present and unique per file version (every row of the files with a row
    loaded after ``passed_until``, see :func:`plan_raw`); well-formed contact data, dates and
    timestamps (the latest load, against the source's earlier loads).

    Raw is append-only: a later file may legitimately carry the same key again (an update),
    so uniqueness is per file (``_file_sha256``, else ``_source_file``). Inside one file a
    key may repeat only as an identical re-sent row (the email tool re-sends events);
    ``key_versions_in_file`` counts the *different* rows a key has in its file.
    """
    table = f"raw.{name}"
    columns = table_columns(catalog, "raw", name) or []
    version = next((c for c in ("_file_sha256", "_source_file") if c in columns), None)
    content = [c for c in columns if c not in LOAD_COLUMNS]
    partition = ", ".join(q(c) for c in [version, key] if c is not None)
    present = [c for c in source.formats.values() if c in columns]
    derived = [f"count(DISTINCT hash(row({select_list(content)}))) OVER (PARTITION BY {partition}) "
               "AS key_versions_in_file",
               f"{'CAST(_run_id AS VARCHAR)' if '_run_id' in columns else 'NULL'} AS {LOAD}"]
    expectations: list[Expectation] = [
        gx.expectations.ExpectColumnValuesToNotBeNull(
            column=key, notes="Every raw record needs its record key to be traced and deduplicated."
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="key_versions_in_file",
            min_value=1,
            max_value=1,
            notes="A record key names one record per file: repeating it inside a file is "
            "allowed only as an identical re-sent row. A later file may repeat it (an update).",
        ),
    ]
    computed: list[str] = []  # format columns computed in SQL (the birth-date parse flag)
    #: column -> (how a value is judged well-formed, what the expectation says)
    formats: dict[str, tuple[str, str]] = {}
    for field_name in ("email", "phone"):
        column = source.formats.get(field_name)
        if column in present:
            formats[column] = (getattr(thresholds, f"{field_name}_regex"),
                               f"A mapped {field_name} column that mostly holds something else "
                               "is a mapping or parsing error upstream.")
    birth = source.formats.get("birth_date")
    if birth in present:
        parsed = (
            f"try_strptime(CAST({q(birth)} AS VARCHAR), {sql_literal(source.birth_date_format)})"
            if source.birth_date_format
            else f"TRY_CAST({q(birth)} AS DATE)"
        )
        blank = f"nullif(trim(CAST({q(birth)} AS VARCHAR)), '') IS NULL"
        computed.append(f"CASE WHEN {blank} THEN NULL ELSE {parsed} IS NOT NULL END "
                        f"AS {q(birth + '__parses')}")
        formats[f"{birth}__parses"] = (PARSES, "Non-empty birth dates must parse with the "
                                       "source's birth_date_format (blank ones are ignored).")
    if source.timestamp in columns:
        present.append(source.timestamp)
        formats[source.timestamp] = (PRESENT, "The registered event / change time: ingest "
                                     "quarantines values that do not parse, so a null here "
                                     "means the value was missing.")
    wanted = list(dict.fromkeys([key, *present]))
    label = label_sql(catalog, "raw", name, [key])
    unchecked, params = f"raw.{q(name)}", []
    if passed_until is not None and "_loaded_at" in columns:
        new_rows = f"SELECT * FROM raw.{q(name)} WHERE _loaded_at > ?"
        if version is not None:  # every row of a file with a new row: files are judged whole
            new_rows = (f"SELECT * FROM raw.{q(name)} WHERE {q(version)} IN "
                        f"(SELECT {q(version)} FROM raw.{q(name)} WHERE _loaded_at > ?)")
        unchecked, params = f"({new_rows})", [passed_until]
    frame = labelled_frame(
        con,
        f"SELECT {label} AS _example, {select_list(wanted)}, {', '.join(derived + computed)} "
        f"FROM {unchecked}", params)
    checks = [CheckSpec("raw", table, table, frame, expectations)]
    if formats:
        checks.append(_format_check(con, columns, name, frame, formats, thresholds,
                                    computed))
    return checks


#: Rows of a source's earlier loads its format baseline is estimated from.
BASELINE_SAMPLE = 200_000
#: The frame column holding a row's load (ingest's ``_run_id``).
LOAD = "__load"
#: Format rules that are no regex: a parse flag that must be true, a value that must be there.
PARSES, PRESENT = "<parses>", "<present>"


def _format_check(
    con: duckdb.DuckDBPyConnection,
    columns: list[str],
    name: str,
    frame: pd.DataFrame,
    formats: Mapping[str, tuple[str, str]],
    thresholds: Thresholds,
    computed: Sequence[str] = (),
) -> CheckSpec:
    """Well-formed shares of the source's latest load: drift against its earlier loads, and a
    floor every load must reach.

    ``frame`` holds the rows not checked before (at least the latest load, unless that was
    checked already: then there is nothing new to judge); the earlier loads' share is read
    from the table, over a fixed-size sample of their rows (:data:`BASELINE_SAMPLE`: a share
    to within a few tenths of a point, whatever the history's length). ``computed``: the
    frame's format columns computed in SQL, as SQL.

    A source's own history is the yardstick: a load may fall at most ``format_max_drop``
    below the share of the loads before it. The first load has no history, so only the
    floor ``format_mostly`` applies (loose: it catches a shifted column or a wrong date
    format, not a source that is simply messier than the demo). Without ingest's ``_run_id``
    every row counts as one load.
    """
    table = f"raw.{name}"
    loads: list[str] = []
    if "_run_id" in columns:
        order = "min(_loaded_at), 1" if "_loaded_at" in columns else "1"
        loads = [str(r) for (r,) in con.execute(
            f"SELECT CAST(_run_id AS VARCHAR) FROM raw.{q(name)} WHERE _run_id IS NOT NULL "
            f"GROUP BY 1 ORDER BY {order}").fetchall()]
    latest = frame[frame[LOAD] == loads[-1]] if loads else frame
    earlier = frame.iloc[:0]
    if len(loads) > 1:
        plain = [c for c in formats if c in columns]
        earlier = con.execute(  # sampled after the filter, not before
            f"SELECT * FROM (SELECT {', '.join([*(q(c) for c in plain), *computed]) or '1'} "
            f"FROM raw.{q(name)} WHERE CAST(_run_id AS VARCHAR) <> ?) "
            f"USING SAMPLE reservoir({BASELINE_SAMPLE} ROWS) REPEATABLE (7)",
            [loads[-1]]).df()
    expectations: list[Expectation] = []
    for column, (rule, notes) in formats.items():
        now, before = _well_formed(latest, column, rule), _well_formed(earlier, column, rule)
        floor = thresholds.format_mostly
        key, context = "format_mostly", f"floor of every load of {name}" + (
            "" if before is not None else " (its first load with values here)")
        if now is not None and before is not None:
            context = f"{now:.2f} well-formed vs {before:.2f} in the earlier loads of {name}"
            if before - thresholds.format_max_drop > floor:
                floor, key = before - thresholds.format_max_drop, "format_max_drop"
        kwargs: dict[str, Any] = {"column": column, "mostly": floor, "notes": notes,
                                  "meta": setting(key, context)}
        expectations.append(
            gx.expectations.ExpectColumnValuesToNotBeNull(**kwargs) if rule == PRESENT
            else gx.expectations.ExpectColumnValuesToBeInSet(value_set=[True], **kwargs)
            if rule == PARSES
            else gx.expectations.ExpectColumnValuesToMatchRegex(regex=rule, **kwargs)
        )
    return CheckSpec("raw", f"{table}.formats", table, latest[list(formats)], expectations)


def _well_formed(rows: pd.DataFrame, column: str, rule: str) -> float | None:
    """Share of ``rows``' values in ``column`` that are well-formed, as GX judges them (nulls
    ignored, except for a timestamp that must be present); None without values."""
    if rule == PRESENT:
        return float(rows[column].notna().mean()) if len(rows) else None
    values = rows[column].dropna()
    if values.empty:
        return None
    ok = values == True if rule == PARSES else values.astype(str).str.contains(rule)  # noqa: E712
    return float(ok.mean())


def _load_check(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    source: str,
    key: str,
    thresholds: Thresholds,
    notes: list[str],
) -> CheckSpec:
    """Quarantine share of the source's latest load.

    Raw tables are append-only, so the cumulative share would dilute a bad file in a long
    history: where raw and quarantine rows carry ingest's ``_run_id`` / ``_loaded_at`` the
    latest load (by time) is judged. Without those columns the share is over all rows. Rows
    quarantined because they carry an erased person's identifier (reason ``erased``: a replay
    of an old export) say nothing about the file's quality and count on neither side.
    """
    table = f"raw.{source}"
    rejected = f"{source}__rejected"
    raw_cols = set(table_columns(catalog, "raw", source) or [])
    rejected_cols = table_columns(catalog, "raw", rejected)
    if rejected_cols is None:
        notes.append(f"raw.{rejected} not found: quarantine share of {table} taken as 0")
    load_cols = {"_run_id", "_loaded_at"}
    per_load = load_cols <= raw_cols and (rejected_cols is None or load_cols <= set(rejected_cols))

    parts = [f"SELECT _run_id, _loaded_at, 0 AS q FROM raw.{q(source)}"]
    erased = (f"_reason = {sql_literal(ERASED_REASON)}"
              if rejected_cols is not None and "_reason" in rejected_cols else "false")
    if rejected_cols is not None:
        parts.append(f"SELECT _run_id, _loaded_at, CASE WHEN {erased} THEN 2 ELSE 1 END AS q "
                     f"FROM raw.{q(rejected)}")
    if per_load:
        loads = con.execute(
            f"""
            SELECT CAST(_run_id AS VARCHAR), count(*) FILTER (WHERE q = 0),
                   count(*) FILTER (WHERE q = 1)
            FROM ({" UNION ALL ".join(parts)})
            GROUP BY 1
            ORDER BY min(_loaded_at), 1
            """
        ).fetchall()
    else:
        loaded = count_rows(con, f"raw.{q(source)}")
        quarantined = 0 if rejected_cols is None else count_rows(
            con, f"raw.{q(rejected)} WHERE ({erased}) IS NOT TRUE")
        loads = [(None, loaded, quarantined)]
        notes.append(f"{table}: no _run_id/_loaded_at columns; quarantine share over all rows")

    run_id, loaded, quarantined = loads[-1] if loads else (None, 0, 0)
    total = loaded + quarantined
    columns: dict[str, list[Any]] = {
        "loaded_rows": [loaded],
        "rejected_rows": [quarantined],
        "rejected_share": [quarantined / total if total else 0.0],
    }
    expectations: list[Expectation] = [
        gx.expectations.ExpectColumnMaxToBeBetween(
            column="rejected_share",
            min_value=0.0,
            max_value=thresholds.max_rejected_share,
            notes=f"Share of the latest load of {source} put into quarantine (raw.{rejected}); "
            "a high share means a broken file or a changed format.",
            meta=setting("max_rejected_share"),
        )
    ]
    examples: tuple[str, ...] = ()
    if rejected_cols is not None and key in rejected_cols:
        where = f"{q(key)} IS NOT NULL"
        params: list[Any] = []
        if per_load and run_id is not None:
            where += " AND CAST(_run_id AS VARCHAR) = ?"
            params.append(run_id)
        examples = tuple(
            str(value)
            for (value,) in con.execute(
                f"SELECT CAST({q(key)} AS VARCHAR) FROM raw.{q(rejected)} WHERE {where} LIMIT 5",
                params,
            ).fetchall()
        )
    frame = pd.DataFrame(
        columns, index=pd.Index([table if run_id is None else f"{table}@{run_id}"])
    )
    return CheckSpec(
        "raw", f"{table}.load", table, frame, expectations, {"rejected_share": examples}
    )




def _registered_sources(registry: pd.DataFrame, sources_config: Path) -> dict[str, RawSource]:
    """source -> key, timestamp and format-checked columns, from ingest's registry table.

    ``raw._source_registry`` holds one row per source and mapped identity ``field`` with its
    ``column_name`` (plus ``record_key``, ``timestamp_column``, ``birth_date_format`` and
    ``delivery``), as ingest recorded it at load time. Format-checked fields the table does
    not name come from ``sources_config``, read by ingest's own registry parser.
    """
    found: dict[str, RawSource] = {}
    for row in registry.to_dict("records"):
        name = str(row["source"])
        known = found.get(name, RawSource(key=None))
        mapped, column = row.get("field"), _text(row.get("column_name"))
        found[name] = RawSource(
            key=_text(row.get("record_key")) or known.key,
            timestamp=_text(row.get("timestamp_column")) or known.timestamp,
            birth_date_format=_text(row.get("birth_date_format")) or known.birth_date_format,
            formats={**known.formats,
                     **({mapped: column} if mapped in FORMAT_FIELDS and column else {})},
            delivery=_text(row.get("delivery")) or known.delivery,
        )
    if any(set(FORMAT_FIELDS) - set(s.formats) for s in found.values()):
        from_sources = _identity_from_sources(sources_config)
        found = {
            name: replace(s, formats={**from_sources.get(name, {}), **s.formats})
            for name, s in found.items()
        }
    return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _identity_from_sources(path: Path) -> dict[str, dict[str, str]]:
    """source -> {field: column} of the format-checked fields ``sources.yml`` maps."""
    if not path.exists():
        return {}
    try:
        registry = load_registry(path)
    except RegistryError:  # its message may quote values: name the file only
        log.warning("could not read %s; identity columns only from the registry table", path)
        return {}
    return {
        spec.name: {f: spec.identity[f] for f in FORMAT_FIELDS if f in spec.identity}
        for spec in registry
    }
