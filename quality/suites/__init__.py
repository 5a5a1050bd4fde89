"""Expectation suites per layer, built in code from the thresholds and the warehouse catalog.

One module per layer (:mod:`.raw` with :mod:`.deliveries`, :mod:`.identity`, :mod:`.profiles`)
over one catalog (:mod:`.catalog`: what the warehouse holds, how a row is labelled) and one
kind of check (:mod:`.checks`). Why in code: the raw layer has one table per registered
source, so its suites follow the source registry rather than a hand-maintained JSON file,
and every limit comes from ``config/quality.yml``.

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

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

from quality.suites.catalog import published_at, read_catalog
from quality.suites.checks import LayerPlan
from quality.suites.identity import plan_identity
from quality.suites.profiles import plan_profiles
from quality.suites.raw import plan_raw
from quality.thresholds import Thresholds

LAYERS: tuple[str, ...] = ("raw", "identity", "profiles")


def plan_layers(
    con: duckdb.DuckDBPyConnection,
    layers: Sequence[str],
    thresholds: Thresholds,
    *,
    sources_config: Path,
    previous_db: Path | None = None,
    strong_identifiers: Mapping[str, Sequence[str] | str] | None = None,
    recheck_raw: bool = False,
) -> list[LayerPlan]:
    """Read everything the requested layers need from ``con`` (read-only) into check specs.

    All reading happens here so the database can be closed before GX runs.
    ``sources_config`` is the ``sources.yml`` for format-checked columns the warehouse's
    registry table does not name; ``previous_db`` the last publication, if any;
    ``strong_identifiers`` per strong identifier the sources with authority over it
    (identity.yml; None: customer numbers of every source).  Raw rows loaded before the
    previous publication passed its gate and are not read again unless ``recheck_raw``.
    """
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        raise ValueError(f"unknown quality layer(s) {unknown}; known layers: {list(LAYERS)}")
    catalog = read_catalog(con)
    plans: list[LayerPlan] = []
    for layer in layers:
        if layer == "raw":
            notes: list[str] = []
            passed = None if recheck_raw else published_at(previous_db, notes)
            plan = plan_raw(con, catalog, thresholds, sources_config, passed)
            plan.notes.extend(notes)
            plans.append(plan)
        elif layer == "identity":
            plans.append(plan_identity(con, catalog, thresholds, previous_db,
                                       strong_identifiers))
        else:
            plans.append(plan_profiles(con, catalog, thresholds, previous_db))
    return plans
