"""Identity-layer suites on the identity graph: one profile per source record, sane cluster
sizes, one CRM customer per profile, and stable profile ids against the last publication."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from core.vocabulary import quote_identifier as q
from quality.gx import gx
from quality.suites.catalog import (
    IDENTITY_GRAPH,
    Catalog,
    label_sql,
    labelled_frame,
    read_previous,
    select_list,
    table_columns,
)
from quality.suites.checks import CheckSpec, LayerPlan, max_check, schema_check
from quality.thresholds import Thresholds


def plan_identity(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    thresholds: Thresholds,
    previous_db: Path | None,
) -> LayerPlan:
    """Checks of ``fct_identity_graph``; those past the schema need its key columns."""
    plan = LayerPlan("identity")
    table = f"main.{IDENTITY_GRAPH}"
    columns = table_columns(catalog, "main", IDENTITY_GRAPH)
    needed = ["profile_id", "source", "record_id"]
    required = [(table, columns is not None)]
    required += [(f"{table}.{c}", columns is not None and c in columns) for c in needed]
    plan.checks.append(schema_check("identity", required))
    if columns is None or not set(needed) <= set(columns):
        return plan

    graph = f"main.{q(IDENTITY_GRAPH)}"
    label = label_sql(catalog, "main", IDENTITY_GRAPH, ["source", "record_id"])
    frame = labelled_frame(con, f"SELECT {label} AS _example, {select_list(needed)} FROM {graph}")
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
    previous = read_previous(
        previous_db,
        IDENTITY_GRAPH,
        ["source", "record_id", "profile_id"],
        f"SELECT CAST(source AS VARCHAR) AS source, CAST(record_id AS VARCHAR) AS record_id, "
        f"CAST(profile_id AS VARCHAR) AS previous_profile_id FROM main.{q(IDENTITY_GRAPH)}",
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


