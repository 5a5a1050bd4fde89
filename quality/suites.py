"""Expectation suites per layer, built in code from the thresholds and the warehouse catalog.

Why in code: the raw layer has one table per registered source, so its suites follow the
source registry rather than a hand-maintained JSON file, and every limit comes from
``config/quality.yml``.

Why pandas: GX 1.24's SQL datasource does not work against DuckDB through duckdb-engine and
SQLAlchemy 2.1 (schema-qualified tables lose their schema, bundled metrics come back empty),
so each check reads the few columns it needs with a read-only DuckDB connection into a
DataFrame and GX validates the DataFrame. Aggregates (cluster sizes, quarantine shares) are
validated on small derived frames.

Every frame's *index* holds the example label of its rows: the record key (raw), the
``source:record_id`` pair (identity graph) or the profile id. GX reports failing rows by
index (``partial_unexpected_index_list``), and ``exclude_unexpected_values`` keeps the
failing values themselves (emails, names) out of results, messages and Data Docs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
import pandas as pd
import yaml
from great_expectations.expectations import Expectation
from great_expectations.expectations.metadata_types import FailureSeverity

from quality.thresholds import Thresholds

log = logging.getLogger(__name__)

LAYERS: tuple[str, ...] = ("raw", "identity", "profiles")

REGISTRY_TABLE = "_source_registry"
IDENTITY_GRAPH = "fct_identity_graph"
PROFILES_TABLE = "dim_profiles"
CONSENT_TABLE = "dim_profile_consent"
CONSENT_COLUMNS = ("profile_id", "channel", "contact_point", "is_contactable")
#: Built by the suppression work (issue 7): identifier_hash = sha256 hex of the normalised
#: email / E.164 phone. The gate checks against it whenever it exists.
SUPPRESSION_TABLE = "dim_suppression_list"

#: Catalog: (schema, table) -> (table_type, [columns]) of the warehouse's own database.
Catalog = dict[tuple[str, str], tuple[str, list[str]]]


@dataclass
class CheckSpec:
    """One GX validation: a frame of one table or derived query and its expectations."""

    layer: str
    name: str  # GX suite / validation definition / checkpoint name, unique per run
    table: str  # the warehouse table the check speaks about
    frame: pd.DataFrame  # index = example label of each row (never PII)
    expectations: list[Expectation]
    #: examples for aggregate expectations, by column (e.g. rejected record keys)
    preset_examples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def build_suite(self) -> gx.ExpectationSuite:
        """A fresh suite; expectations are copied so a spec can be validated twice."""
        suite = gx.ExpectationSuite(name=self.name, meta={"layer": self.layer, "table": self.table})
        for expectation in self.expectations:
            suite.add_expectation(expectation.copy(deep=True))
        return suite


@dataclass
class LayerPlan:
    """All checks of one layer plus notes on checks that were skipped and why."""

    layer: str
    checks: list[CheckSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_layers(
    con: duckdb.DuckDBPyConnection,
    layers: Sequence[str],
    thresholds: Thresholds,
    *,
    previous_db: Path | None = None,
    sources_config: Path | None = None,
) -> list[LayerPlan]:
    """Read everything the requested layers need from ``con`` (read-only) into check specs.

    All reading happens here so the database can be closed before GX runs.
    """
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        raise ValueError(f"unknown quality layer(s) {unknown}; known layers: {list(LAYERS)}")
    catalog = read_catalog(con)
    plans: list[LayerPlan] = []
    for layer in layers:
        if layer == "raw":
            plans.append(_plan_raw(con, catalog, thresholds, sources_config))
        elif layer == "identity":
            plans.append(_plan_identity(con, catalog, thresholds, previous_db))
        else:
            plans.append(_plan_profiles(con, catalog, thresholds, previous_db))
    return plans


def read_catalog(con: duckdb.DuckDBPyConnection) -> Catalog:
    """Tables, views and their columns of the connected database (not of attached ones)."""
    rows = con.execute(
        """
        SELECT c.table_schema, c.table_name, t.table_type, c.column_name
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_catalog = c.table_catalog
         AND t.table_schema = c.table_schema
         AND t.table_name = c.table_name
        WHERE c.table_catalog = current_database()
        ORDER BY c.table_schema, c.table_name, c.ordinal_position
        """
    ).fetchall()
    catalog: Catalog = {}
    for schema, table, table_type, column in rows:
        catalog.setdefault((schema, table), (table_type, []))[1].append(column)
    return catalog


# --------------------------------------------------------------------------- raw


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
#: Columns ingest adds to every raw row; not part of a record's content.
INGEST_COLUMNS = (
    "_source_file", "_file_sha256", "_row_number", "_loaded_at", "_run_id", "_content_hash"
)


def _plan_raw(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    thresholds: Thresholds,
    sources_config: Path | None,
) -> LayerPlan:
    plan = LayerPlan("raw")
    required: list[tuple[str, bool]] = []
    registry_cols = _columns(catalog, "raw", REGISTRY_TABLE)
    registry_ok = registry_cols is not None and {"source", "record_key"} <= set(registry_cols)
    required.append((f"raw.{REGISTRY_TABLE}", registry_ok))
    if not registry_ok:
        plan.notes.append(
            f"raw.{REGISTRY_TABLE} missing or without columns source, record_key: "
            "no raw table could be checked"
        )
        plan.checks.append(_schema_check("raw", required))
        return plan

    registry = con.execute(f"SELECT * FROM raw.{_q(REGISTRY_TABLE)} ORDER BY source").df()
    for name, source in _registered_sources(registry, sources_config).items():
        table = f"raw.{name}"
        columns = _columns(catalog, "raw", name)
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
        plan.checks.append(_raw_table_check(con, catalog, name, source.key, source, thresholds))
        plan.checks.append(_load_check(con, catalog, name, source.key, thresholds, plan.notes))
        deliveries = _delivery_check(con, catalog, name, source.delivery, thresholds, plan.notes)
        if deliveries is not None:
            plan.checks.append(deliveries)
    plan.checks.insert(0, _schema_check("raw", required))
    return plan


def _raw_table_check(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    name: str,
    key: str,
    source: RawSource,
    thresholds: Thresholds,
) -> CheckSpec:
    """Record keys present and unique per file version, well-formed contact data and dates.

    Raw is append-only: a later file may legitimately carry the same key again (an update),
    so uniqueness is per file (``_file_sha256``, else ``_source_file``). Inside one file a
    key may repeat only as an identical re-sent row (the email tool re-sends events);
    ``key_versions_in_file`` counts the *different* rows a key has in its file.
    """
    table = f"raw.{name}"
    columns = _columns(catalog, "raw", name) or []
    version = next((c for c in ("_file_sha256", "_source_file") if c in columns), None)
    content = [c for c in columns if c not in INGEST_COLUMNS]
    partition = ", ".join(_q(c) for c in [version, key] if c is not None)
    present = [c for c in source.formats.values() if c in columns]
    derived = [f"count(DISTINCT hash(row({_select(content)}))) OVER (PARTITION BY {partition}) "
               "AS key_versions_in_file"]
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
    for field_name in ("email", "phone"):
        column = source.formats.get(field_name)
        if column in present:
            expectations.append(
                gx.expectations.ExpectColumnValuesToMatchRegex(
                    column=column,
                    regex=getattr(thresholds, f"{field_name}_regex"),
                    mostly=thresholds.format_mostly,
                    notes=f"A mapped {field_name} column that mostly holds something else is a "
                    "mapping or parsing error upstream.",
                )
            )
    birth = source.formats.get("birth_date")
    if birth in present:
        parsed = (
            f"try_strptime(CAST({_q(birth)} AS VARCHAR), {_literal(source.birth_date_format)})"
            if source.birth_date_format
            else f"TRY_CAST({_q(birth)} AS DATE)"
        )
        blank = f"nullif(trim(CAST({_q(birth)} AS VARCHAR)), '') IS NULL"
        derived.append(f"CASE WHEN {blank} THEN NULL ELSE {parsed} IS NOT NULL END "
                       f"AS {_q(birth + '__parses')}")
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeInSet(
                column=f"{birth}__parses",
                value_set=[True],
                mostly=thresholds.format_mostly,
                notes="Non-empty birth dates must parse with the source's birth_date_format "
                "(blank ones are ignored).",
            )
        )
    if source.timestamp in columns:
        present.append(source.timestamp)
        expectations.append(
            gx.expectations.ExpectColumnValuesToNotBeNull(
                column=source.timestamp,
                mostly=thresholds.format_mostly,
                notes="The registered event / change time: ingest quarantines values that do "
                "not parse, so a null here means the value was missing.",
            )
        )
    wanted = list(dict.fromkeys([key, *present]))
    label = _label_sql(catalog, "raw", name, [key])
    frame = labelled_frame(
        con,
        f"SELECT {label} AS _example, {_select(wanted)}, {', '.join(derived)} "
        f"FROM raw.{_q(name)}",
    )
    return CheckSpec("raw", table, table, frame, expectations)


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
    latest load (by time) is judged. Without those columns the share is over all rows.
    """
    table = f"raw.{source}"
    rejected = f"{source}__rejected"
    raw_cols = set(_columns(catalog, "raw", source) or [])
    rejected_cols = _columns(catalog, "raw", rejected)
    if rejected_cols is None:
        notes.append(f"raw.{rejected} not found: quarantine share of {table} taken as 0")
    load_cols = {"_run_id", "_loaded_at"}
    per_load = load_cols <= raw_cols and (rejected_cols is None or load_cols <= set(rejected_cols))

    parts = [f"SELECT _run_id, _loaded_at, 0 AS q FROM raw.{_q(source)}"]
    if rejected_cols is not None:
        parts.append(f"SELECT _run_id, _loaded_at, 1 AS q FROM raw.{_q(rejected)}")
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
        loaded = _count(con, f"raw.{_q(source)}")
        quarantined = 0 if rejected_cols is None else _count(con, f"raw.{_q(rejected)}")
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
        )
    ]
    examples: tuple[str, ...] = ()
    if rejected_cols is not None and key in rejected_cols:
        where = f"{_q(key)} IS NOT NULL"
        params: list[Any] = []
        if per_load and run_id is not None:
            where += " AND CAST(_run_id AS VARCHAR) = ?"
            params.append(run_id)
        examples = tuple(
            str(value)
            for (value,) in con.execute(
                f"SELECT CAST({_q(key)} AS VARCHAR) FROM raw.{_q(rejected)} WHERE {where} LIMIT 5",
                params,
            ).fetchall()
        )
    frame = pd.DataFrame(
        columns, index=pd.Index([table if run_id is None else f"{table}@{run_id}"])
    )
    return CheckSpec(
        "raw", f"{table}.load", table, frame, expectations, {"rejected_share": examples}
    )


LEDGER_TABLE = "_load_ledger"
LEDGER_NEEDS = ("source", "file_name", "rows_in_file", "run_id", "loaded_at", "status",
                "rows_known_key", "first_record_at", "last_record_at", "delivery")
#: A delivery counts as a snapshot (the full set again) when at least this share of its
#: rows carry keys an earlier delivery already had; used only where none is declared.
SNAPSHOT_KNOWN_SHARE = 0.5
#: An earlier incremental delivery spanning more than this multiple of a delivery's record
#: time is a backfill: the delivery is compared with its rows pro-rated to its own span.
BACKFILL_SPAN_FACTOR = 4.0


@dataclass(frozen=True)
class Delivery:
    """One loaded file as the ledger recorded it."""

    file_name: str
    run_id: str
    rows: int
    known_key: int
    span_days: float | None
    declared: str | None

    def kind(self) -> tuple[str, bool]:
        """(snapshot | incremental, inferred?)."""
        if self.declared:
            return self.declared, False
        known = self.known_key / self.rows if self.rows else 0.0
        return ("snapshot" if known >= SNAPSHOT_KNOWN_SHARE else "incremental"), True


def _delivery_check(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    source: str,
    declared: str | None,
    thresholds: Thresholds,
    notes: list[str],
) -> CheckSpec | None:
    """Each delivery of the latest load against the delivery it replaces (row drop).

    A snapshot replaces the previous delivery; an incremental file is compared with the
    latest earlier one of comparable record-time span, so a twelve-month backfill is never
    the yardstick for next month's file. The kind is the registry's ``delivery`` or, where
    none is declared, inferred (reported in the notes). A truncated file shows as a drop.
    """
    table = f"raw.{source}"
    ledger_cols = _columns(catalog, "raw", LEDGER_TABLE)
    if ledger_cols is None or not set(LEDGER_NEEDS) <= set(ledger_cols):
        notes.append(f"{table}: no load ledger with delivery statistics; row drop per "
                     "delivery not checked")
        return None
    rows = con.execute(
        f"""SELECT file_name, CAST(run_id AS VARCHAR), rows_in_file, coalesce(rows_known_key, 0),
                   date_diff('second', first_record_at, last_record_at) / 86400.0, delivery
            FROM raw.{_q(LEDGER_TABLE)}
            WHERE source = ? AND coalesce(status, 'loaded') = 'loaded'
            ORDER BY loaded_at, file_name""",
        [source],
    ).fetchall()
    deliveries = [
        Delivery(str(f), str(r), int(n), int(k), None if s is None else float(s),
                 declared or (str(d) if d else None))
        for f, r, n, k, s, d in rows
    ]
    if not deliveries:
        return None
    latest_run = deliveries[-1].run_id
    labels: list[str] = []
    columns: dict[str, list[Any]] = {"rows_in_file": [], "baseline_rows": [], "row_drop_share": []}
    for index, current in enumerate(deliveries):
        if current.run_id != latest_run:
            continue
        kind, inferred = current.kind()
        if inferred and index > 0:
            notes.append(
                f"{table}: delivery {current.file_name} taken as {kind} (inferred from the "
                f"share of known record keys); declare delivery: snapshot|incremental in "
                "sources.yml to fix it"
            )
        if index == 0:
            continue
        previous = deliveries[index - 1]
        expected, how = _expected_rows(previous, current, kind)
        labels.append(f"{table}@{current.file_name} ({kind}) vs {previous.file_name}{how}")
        columns["rows_in_file"].append(current.rows)
        columns["baseline_rows"].append(expected)
        columns["row_drop_share"].append(
            max(expected - current.rows, 0) / expected if expected else 0.0
        )
    if not labels:
        return None
    frame = pd.DataFrame(columns, index=pd.Index(labels))
    expectation = gx.expectations.ExpectColumnValuesToBeBetween(
        column="row_drop_share",
        min_value=0.0,
        max_value=thresholds.max_load_drop_share,
        notes=f"Rows of each new delivery of {source} against the delivery it replaces (the "
        "previous snapshot, or the latest incremental file of comparable time span): a sharp "
        "drop means a truncated or partial file.",
    )
    return CheckSpec("raw", f"{table}.deliveries", table, frame, [expectation])


def _expected_rows(previous: Delivery, current: Delivery, kind: str) -> tuple[float, str]:
    """Rows ``current`` should have, judged by the delivery before it, and how that was read.

    A snapshot should be about as big as the previous one. So should an incremental file,
    unless the previous one spans far more record time (a backfill): then its rows count
    pro-rated to the new file's span.
    """
    spans = (previous.span_days, current.span_days)
    if kind == "snapshot" or spans[0] is None or spans[1] is None:
        return float(previous.rows), ""
    own = max(spans[1], 1.0)
    if spans[0] <= BACKFILL_SPAN_FACTOR * own:
        return float(previous.rows), ""
    return previous.rows * own / spans[0], f" pro-rated to {own:.0f} of {spans[0]:.0f} days"


def _registered_sources(
    registry: pd.DataFrame, sources_config: Path | None
) -> dict[str, RawSource]:
    """source -> key, timestamp and format-checked columns, from the registry table.

    Accepts ingest's long form (one row per source and identity ``field`` with its
    ``column_name``, plus ``timestamp_column`` and ``birth_date_format``) as well as one row
    per source with ``<field>_column`` columns or a JSON / map ``identity`` column. Fields
    the registry does not name fall back to ``sources.yml``.
    """
    found: dict[str, RawSource] = {}
    for row in registry.to_dict("records"):
        name = str(row["source"])
        known = found.get(name, RawSource(key=None))
        found[name] = RawSource(
            key=_text(row.get("record_key")) or known.key,
            timestamp=_text(row.get("timestamp_column")) or known.timestamp,
            birth_date_format=_text(row.get("birth_date_format")) or known.birth_date_format,
            formats={**known.formats, **_identity_columns(row)},
            delivery=_text(row.get("delivery")) or known.delivery,
        )
    if any(set(FORMAT_FIELDS) - set(s.formats) for s in found.values()):
        from_yaml = _identity_from_sources_yml(sources_config)
        found = {
            name: replace(s, formats={**from_yaml.get(name, {}), **s.formats})
            for name, s in found.items()
        }
    return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _identity_columns(row: Mapping[str, Any]) -> dict[str, str]:
    """Format-checked field -> column that one registry row names, in any accepted shape."""
    columns: dict[str, str] = {}
    identity = row.get("identity")
    if isinstance(identity, str) and identity:
        try:
            identity = json.loads(identity)
        except ValueError:
            identity = None
    for field_name in FORMAT_FIELDS:
        column = (
            (_text(row.get("column_name")) if row.get("field") == field_name else None)
            or _text(row.get(f"{field_name}_column"))
            or (_text(identity.get(field_name)) if isinstance(identity, Mapping) else None)
        )
        if column is not None:
            columns[field_name] = column
    return columns


def _identity_from_sources_yml(path: Path | None) -> dict[str, dict[str, str]]:
    """source -> {field: column} of the format-checked fields, from ``sources.yml``."""
    if path is None:
        from cdp.settings import config_dir

        path = config_dir() / "sources.yml"
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        log.warning("could not read %s; identity columns only from the registry", path)
        return {}
    mapped: dict[str, dict[str, str]] = {}
    for name, spec in (data.get("sources") or {}).items():
        identity = (spec or {}).get("identity") or {}
        mapped[str(name)] = {
            f: identity[f] for f in FORMAT_FIELDS if isinstance(identity.get(f), str)
        }
    return mapped


# ---------------------------------------------------------------------- identity


def _plan_identity(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    thresholds: Thresholds,
    previous_db: Path | None,
) -> LayerPlan:
    plan = LayerPlan("identity")
    table = f"main.{IDENTITY_GRAPH}"
    columns = _columns(catalog, "main", IDENTITY_GRAPH)
    needed = ["profile_id", "source", "record_id"]
    required = [(table, columns is not None)]
    required += [(f"{table}.{c}", columns is not None and c in columns) for c in needed]
    plan.checks.append(_schema_check("identity", required))
    if columns is None or not set(needed) <= set(columns):
        return plan

    graph = f"main.{_q(IDENTITY_GRAPH)}"
    label = _label_sql(catalog, "main", IDENTITY_GRAPH, ["source", "record_id"])
    frame = labelled_frame(con, f"SELECT {label} AS _example, {_select(needed)} FROM {graph}")
    plan.checks.append(
        CheckSpec(
            "identity",
            f"identity.{IDENTITY_GRAPH}",
            table,
            frame,
            [
                gx.expectations.ExpectTableRowCountToBeBetween(
                    min_value=1, notes="An empty identity graph means the build did not run."
                ),
                gx.expectations.ExpectCompoundColumnsToBeUnique(
                    column_list=["source", "record_id"],
                    notes="One row per source record: a record in two profiles is ambiguous.",
                ),
                gx.expectations.ExpectColumnValuesToNotBeNull(
                    column="profile_id", notes="Every source record belongs to a profile."
                ),
            ],
        )
    )

    if frame.empty:
        plan.notes.append(f"{table} is empty: cluster and customer-number checks skipped")
        return plan

    clusters = labelled_frame(
        con,
        f"""
        SELECT CAST(profile_id AS VARCHAR) AS _example,
               count(*) AS cluster_size,
               CAST(count(*) = 1 AS INTEGER) AS is_singleton
        FROM {graph}
        WHERE profile_id IS NOT NULL
        GROUP BY profile_id
        """,
    )
    plan.checks.append(
        CheckSpec(
            "identity",
            f"identity.{IDENTITY_GRAPH}.clusters",
            table,
            clusters,
            [
                gx.expectations.ExpectColumnMaxToBeBetween(
                    column="cluster_size",
                    min_value=1,
                    max_value=thresholds.max_cluster_size,
                    notes="A giant profile almost always comes from a bad linking edge "
                    "(shared or placeholder contact data).",
                ),
                gx.expectations.ExpectColumnMeanToBeBetween(
                    column="is_singleton",
                    min_value=thresholds.singleton_share_min,
                    max_value=thresholds.singleton_share_max,
                    notes="Share of one-record profiles: near 1 means linking found nothing, "
                    "near 0 can mean over-merging.",
                ),
            ],
        )
    )

    if "customer_number" in columns:
        numbers = labelled_frame(
            con,
            f"""
            SELECT CAST(profile_id AS VARCHAR) AS _example,
                   count(DISTINCT nullif(trim(CAST(customer_number AS VARCHAR)), ''))
                       AS customer_numbers
            FROM {graph}
            WHERE profile_id IS NOT NULL
            GROUP BY profile_id
            """,
        )
        plan.checks.append(
            max_check(
                "identity", f"identity.{IDENTITY_GRAPH}.customer_numbers", table, numbers,
                column="customer_numbers", max_value=1,
                notes="Two CRM customer numbers in one profile means two known customers "
                "were merged.",
            )
        )
    else:
        plan.notes.append(
            f"{table} has no customer_number column: "
            "'one CRM customer number per profile' not checked"
        )
    plan.checks.extend(_profile_id_changes(frame, previous_db, thresholds, plan.notes))
    return plan


def _profile_id_changes(
    current: pd.DataFrame, previous_db: Path | None, thresholds: Thresholds, notes: list[str]
) -> list[CheckSpec]:
    """Share of source records whose profile id changed since the previous publication.

    Downstream tools key on profile ids, so ids must be stable: merges and splits move a
    few records, mass reassignment means unstable id assignment. Records new in this build
    or gone from it do not count.
    """
    table = f"main.{IDENTITY_GRAPH}"
    previous = _read_previous(
        previous_db,
        IDENTITY_GRAPH,
        ["source", "record_id", "profile_id"],
        f"SELECT CAST(source AS VARCHAR) AS source, CAST(record_id AS VARCHAR) AS record_id, "
        f"CAST(profile_id AS VARCHAR) AS previous_profile_id FROM main.{_q(IDENTITY_GRAPH)}",
        notes,
    )
    if previous is None:
        notes.append(f"{table}: not compared with a previous publication (profile id changes)")
        return []
    now = pd.DataFrame(
        {
            "source": current["source"].astype(str).to_numpy(),
            "record_id": current["record_id"].astype(str).to_numpy(),
            "profile_id": current["profile_id"].astype(str).to_numpy(),
        },
        index=current.index,
    )
    both = now.reset_index(names="_example").merge(previous, on=["source", "record_id"])
    changed = both["profile_id"] != both["previous_profile_id"]
    frame = pd.DataFrame(
        {"profile_id_changed": changed.astype(int).to_numpy()},
        index=pd.Index(both["_example"].astype(str).to_numpy()),
    )
    examples = tuple(frame.index[changed.to_numpy()][:5])
    return [
        CheckSpec(
            "identity",
            f"identity.{IDENTITY_GRAPH}.vs_previous",
            table,
            frame,
            [
                gx.expectations.ExpectColumnMeanToBeBetween(
                    column="profile_id_changed",
                    min_value=0.0,
                    max_value=thresholds.max_profile_id_change_share,
                    notes="Share of records (present in the previous publication and now) "
                    "whose profile id changed; exports and the API key on profile ids.",
                )
            ],
            {"profile_id_changed": examples},
        )
    ]


# ---------------------------------------------------------------------- profiles


def _plan_profiles(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    thresholds: Thresholds,
    previous_db: Path | None,
) -> LayerPlan:
    plan = LayerPlan("profiles")
    table = f"main.{PROFILES_TABLE}"
    columns = _columns(catalog, "main", PROFILES_TABLE)
    consent_cols = _columns(catalog, "main", CONSENT_TABLE)
    required = [(table, columns is not None)]
    required.append((f"{table}.profile_id", columns is not None and "profile_id" in columns))
    required.append((f"main.{CONSENT_TABLE}", consent_cols is not None))
    required += [
        (f"main.{CONSENT_TABLE}.{c}", consent_cols is not None and c in consent_cols)
        for c in CONSENT_COLUMNS
    ]
    plan.checks.append(_schema_check("profiles", required))
    if columns is None or "profile_id" not in columns:
        return plan

    label = _label_sql(catalog, "main", PROFILES_TABLE, ["profile_id"])
    frame = labelled_frame(
        con, f"SELECT {label} AS _example, profile_id FROM main.{_q(PROFILES_TABLE)}"
    )
    expectations: list[Expectation] = [
        gx.expectations.ExpectTableRowCountToBeBetween(
            min_value=1, notes="Never publish an empty profile table."
        ),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="profile_id"),
        gx.expectations.ExpectColumnValuesToBeUnique(
            column="profile_id", notes="Exports and the API key on profile_id."
        ),
    ]
    plan.checks.append(CheckSpec("profiles", f"profiles.{PROFILES_TABLE}", table, frame,
                                 expectations))
    previous = _read_previous(
        previous_db, PROFILES_TABLE, ["profile_id"],
        f"SELECT count(*) AS n FROM main.{_q(PROFILES_TABLE)}", plan.notes,
    )
    if previous is None:
        plan.notes.append(f"{table}: not compared with a previous publication (row drop)")
    else:
        prev_rows = int(previous["n"].iloc[0])
        lost = max(prev_rows - len(frame), 0)
        comparison = pd.DataFrame(
            {
                "previous_rows": [prev_rows],
                "current_rows": [len(frame)],
                "row_drop_share": [lost / prev_rows if prev_rows else 0.0],
            },
            index=pd.Index([table]),
        )
        plan.checks.append(
            max_check(
                "profiles", f"profiles.{PROFILES_TABLE}.vs_previous", table, comparison,
                column="row_drop_share", max_value=thresholds.max_profile_drop_share,
                notes="Share of the previous publication's profiles missing now: losing many "
                "at once means a source went missing.",
            )
        )
    if consent_cols is not None and set(CONSENT_COLUMNS) <= set(consent_cols):
        plan.checks.append(_consent_coverage(con, catalog, thresholds))
        plan.checks.extend(_suppression_check(con, catalog, plan.notes))
    return plan


def _consent_coverage(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, thresholds: Thresholds
) -> CheckSpec:
    """Every profile has a consent row for every channel: no row would hide "unknown"."""
    label = _label_sql(catalog, "main", PROFILES_TABLE, ["profile_id"])
    frame = labelled_frame(
        con,
        f"""
        SELECT {label} AS _example,
               (SELECT count(DISTINCT c.channel) FROM main.{_q(CONSENT_TABLE)} c
                WHERE c.profile_id = p.profile_id AND c.channel IN (SELECT unnest(?)))
                   AS consent_channels
        FROM main.{_q(PROFILES_TABLE)} p
        """,
        [list(thresholds.consent_channels)],
    )
    wanted = len(thresholds.consent_channels)
    table = f"main.{CONSENT_TABLE}"
    return CheckSpec(
        "profiles",
        f"profiles.{CONSENT_TABLE}",
        table,
        frame,
        [
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="consent_channels",
                min_value=wanted,
                max_value=wanted,
                notes=f"Each profile needs a consent row for each of "
                f"{', '.join(thresholds.consent_channels)}; failing examples are profile ids.",
            )
        ],
    )


def _suppression_check(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, notes: list[str]
) -> list[CheckSpec]:
    """No suppressed identifier is contactable (skipped with a note while the table is absent).

    ``dim_suppression_list.identifier_hash`` is the SHA-256 hex of the normalised email /
    E.164 phone, which is what ``dim_profile_consent.contact_point`` holds, so the check
    hashes contact points and never reads a clear-text suppressed identifier.
    """
    columns = _columns(catalog, "main", SUPPRESSION_TABLE)
    if columns is None or "identifier_hash" not in columns:
        notes.append(
            f"main.{SUPPRESSION_TABLE} not found: 'no suppressed identifier is contactable' "
            "not checked"
        )
        return []
    frame = labelled_frame(
        con,
        f"""
        SELECT CAST(c.profile_id AS VARCHAR) || ':' || c.channel AS _example,
               sha256(c.contact_point) IN (
                   SELECT identifier_hash FROM main.{_q(SUPPRESSION_TABLE)}
               ) AS is_suppressed
        FROM main.{_q(CONSENT_TABLE)} c
        WHERE c.is_contactable
        """,
    )
    return [
        flag_check(
            "profiles", f"profiles.{CONSENT_TABLE}.suppression", f"main.{CONSENT_TABLE}", frame,
            column="is_suppressed", expected=False,
            notes=f"A contact point on main.{SUPPRESSION_TABLE} must never be contactable; "
            "examples are profile_id:channel.",
        )
    ]


def _read_previous(
    path: Path | None, table: str, needed: list[str], sql: str, notes: list[str]
) -> pd.DataFrame | None:
    """``sql`` on the previous publication (read-only), or None when there is none to read."""
    if path is None or not Path(path).exists():
        return None
    with duckdb.connect(str(path), read_only=True) as prev:
        columns = _columns(read_catalog(prev), "main", table)
        if columns is None or not set(needed) <= set(columns):
            notes.append(f"previous publication has no main.{table} with {', '.join(needed)}")
            return None
        return prev.execute(sql).df()


# ----------------------------------------------------------------------- helpers


def _schema_check(layer: str, required: Iterable[tuple[str, bool]]) -> CheckSpec:
    """Tables and columns a layer needs, as a frame GX can validate (and Data Docs show)."""
    objects = list(required)
    frame = pd.DataFrame(
        {"present": [present for _, present in objects]},
        index=pd.Index([name for name, _ in objects]),
    )
    return flag_check(
        layer, f"{layer}.required_objects", "catalog", frame, column="present", expected=True,
        notes="Tables and columns this layer's checks need; failing examples name the "
        "missing ones.",
    )


def flag_check(
    layer: str, name: str, table: str, frame: pd.DataFrame, *, column: str, expected: bool,
    notes: str,
) -> CheckSpec:
    """Every row's boolean ``column`` must be ``expected``; failing rows are named by label."""
    return CheckSpec(layer, name, table, frame, [
        gx.expectations.ExpectColumnValuesToBeInSet(
            column=column, value_set=[expected], notes=notes
        )
    ])


def max_check(
    layer: str, name: str, table: str, frame: pd.DataFrame, *, column: str, max_value: float,
    notes: str, min_value: float = 0.0, severity: FailureSeverity = FailureSeverity.CRITICAL,
) -> CheckSpec:
    """The largest value of ``column`` must lie in ``min_value..max_value``."""
    return CheckSpec(layer, name, table, frame, [
        gx.expectations.ExpectColumnMaxToBeBetween(
            column=column, min_value=min_value, max_value=max_value, severity=severity,
            notes=notes,
        )
    ])


def _columns(catalog: Catalog, schema: str, table: str) -> list[str] | None:
    entry = catalog.get((schema, table))
    return None if entry is None else entry[1]


def _label_sql(catalog: Catalog, schema: str, table: str, key_columns: list[str]) -> str:
    """SQL for a row's example label: its key, or a row locator when the key is null.

    The locator is ingest's ``_source_file`` / ``_row_number`` where the table has them
    (raw tables), else DuckDB's rowid, else the row's position.
    """
    table_type, columns = catalog[(schema, table)]
    if "_row_number" in columns and "_source_file" in columns:
        locator = (
            r"regexp_extract(CAST(_source_file AS VARCHAR), '[^/\\]+$') || ' row ' "
            "|| CAST(_row_number AS VARCHAR)"
        )
    elif "_row_number" in columns:
        locator = "'row ' || CAST(_row_number AS VARCHAR)"
    elif table_type == "BASE TABLE":
        locator = "'rowid ' || CAST(rowid AS VARCHAR)"
    else:
        locator = "'row ' || CAST(row_number() OVER () AS VARCHAR)"
    key = " || ':' || ".join(f"CAST({_q(c)} AS VARCHAR)" for c in key_columns)
    null_note = " or ".join(key_columns)
    return f"coalesce({key}, {locator} || ' (null {null_note})')"


def labelled_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> pd.DataFrame:
    """``sql``'s rows, indexed by its ``_example`` column (the label GX reports)."""
    frame = con.execute(sql, list(params)).df()
    # An unnamed index: GX then lists failing rows by index label, truncated to five.
    frame.index = pd.Index(frame.pop("_example").astype(str).to_numpy())
    return frame


def _count(con: duckdb.DuckDBPyConnection, qualified: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {qualified}").fetchone()
    return int(row[0]) if row else 0


def _select(columns: Iterable[str]) -> str:
    return ", ".join(_q(c) for c in columns)


def _literal(text: str) -> str:
    """A SQL string literal (for registry values such as a date format)."""
    return "'" + text.replace("'", "''") + "'"


def _q(identifier: str) -> str:
    """Quote an identifier for DuckDB (names come from the registry, not from users)."""
    return '"' + identifier.replace('"', '""') + '"'
