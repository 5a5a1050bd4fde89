"""Identity-layer suites on the identity graph: one profile per source record, sane cluster
sizes, at most one authoritative value of each strong identifier (customer number, national
id, ...) per profile, and against the last publication a
singleton share that did not jump and stable profile ids.

The singleton share is a property of the data (a mostly-singleton source is normal), so it is
judged as drift against the previous publication; the first publication only records it. What
holds on any data is the shape check: of the identifier values several records share, linking
must have joined more than a degenerate few (``min_shared_identifier_linked_share``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import pandas as pd

from core.vocabulary import published_column
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
from quality.suites.checks import CheckSpec, LayerPlan, max_check, schema_check, setting
from quality.thresholds import Thresholds


def plan_identity(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    thresholds: Thresholds,
    previous_db: Path | None,
    strong_identifiers: Mapping[str, Sequence[str] | str] | None = None,
) -> LayerPlan:
    """Checks of ``fct_identity_graph``; those past the schema need its key columns.

    ``strong_identifiers``: per strong identifier the sources with authority over it (the
    identity configuration's ``strong_identifiers``, so the gate agrees with the merge
    guard; ``all`` or ``()``: every source); None: customer numbers of every source.
    """
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
        plan.notes.append(f"{table} is empty: cluster and strong-identifier checks skipped")
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
                    meta=setting("max_cluster_size"),
                ),
                gx.expectations.ExpectColumnMeanToBeBetween(
                    column="is_singleton",
                    min_value=thresholds.singleton_share_min,
                    max_value=thresholds.singleton_share_max,
                    notes="Share of one-record profiles in the deployment's own absolute "
                    "band (open unless configured).",
                    meta=setting("singleton_share"),
                ),
            ],
        )
    )
    plan.checks.extend(
        _singleton_drift(float(clusters["is_singleton"].mean()), previous_db, thresholds,
                         plan.notes)
    )
    plan.checks.extend(_shared_identifiers_linked(con, columns, thresholds, plan.notes))
    strong = {"customer_number": "all"} if strong_identifiers is None else strong_identifiers
    for field, sources in strong.items():
        plan.checks.extend(_strong_identifier(con, columns, field,
                                              () if sources == "all" else tuple(sources),
                                              plan.notes))
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
                    meta=setting("max_profile_id_change_share"),
                )
            ],
            {"profile_id_changed": examples},
        )
    ]




#: Exact identifiers whose sharing is evidence two records are one person (anonymous ids
#: are left out: shared devices and cookies are common and say little).
SHARED_IDENTIFIERS = ("email", "phone", "customer_number", "user_id", "loyalty_card")


def _singleton_drift(
    share: float, previous_db: Path | None, thresholds: Thresholds, notes: list[str]
) -> list[CheckSpec]:
    """The singleton share against the previous publication's; the first one calibrates."""
    table = f"main.{IDENTITY_GRAPH}"
    previous = read_previous(
        previous_db, IDENTITY_GRAPH, ["profile_id"],
        f"SELECT avg(CAST(n = 1 AS DOUBLE)) AS share FROM (SELECT count(*) AS n "
        f"FROM main.{q(IDENTITY_GRAPH)} WHERE profile_id IS NOT NULL GROUP BY profile_id)",
        notes,
    )
    key = "singleton_share_max_change"
    if previous is None or pd.isna(previous["share"].iloc[0]):
        notes.append(
            f"{table}: first publication: singleton share {share:.4f} recorded as the "
            f"calibration (later publications may move it by {getattr(thresholds, key)}: "
            f"quality.yml {key})"
        )
        return []
    before = float(previous["share"].iloc[0])
    frame = pd.DataFrame(
        {"singleton_share": [share], "previous_singleton_share": [before],
         "singleton_share_change": [abs(share - before)]},
        index=pd.Index([table]),
    )
    return [
        max_check(
            "identity", f"identity.{IDENTITY_GRAPH}.singleton_drift", table, frame,
            column="singleton_share_change", max_value=getattr(thresholds, key),
            notes="Change of the share of one-record profiles against the previous "
            "publication: a jump means linking broke (up) or over-merges (down).",
            meta=setting(key, f"singleton share {share:.2f} vs {before:.2f} at the previous "
                         "publication"),
        )
    ]


def _shared_identifiers_linked(
    con: duckdb.DuckDBPyConnection, columns: list[str], thresholds: Thresholds,
    notes: list[str],
) -> list[CheckSpec]:
    """Of the identifier values several records carry, the share joined in one profile.

    Households and generic addresses are kept apart on purpose, so this is no recall
    measure: it fails only when linking joined (almost) nothing the data plainly shares.
    Counts only, never a value.
    """
    table = f"main.{IDENTITY_GRAPH}"
    present = [c for c in SHARED_IDENTIFIERS if c in columns]
    if not present:
        notes.append(f"{table}: no identifier columns: shared-identifier linking not checked")
        return []
    values = " UNION ALL ".join(
        f"SELECT '{c}' AS kind, CAST({q(c)} AS VARCHAR) AS value, profile_id "
        f"FROM main.{q(IDENTITY_GRAPH)} "
        f"WHERE profile_id IS NOT NULL AND nullif(trim(CAST({q(c)} AS VARCHAR)), '') IS NOT NULL"
        for c in present
    )
    row = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE profiles < records)
            FROM (SELECT count(*) AS records, count(DISTINCT profile_id) AS profiles
                  FROM ({values}) GROUP BY kind, value)
            WHERE records > 1"""
    ).fetchone()
    shared, linked = (int(row[0]), int(row[1])) if row else (0, 0)
    if not shared:
        notes.append(f"{table}: no identifier value on several records: shared-identifier "
                     "linking not checked")
        return []
    key = "min_shared_identifier_linked_share"
    frame = pd.DataFrame(
        {"shared_values": [shared], "linked_values": [linked],
         "linked_share": [linked / shared]},
        index=pd.Index([table]),
    )
    return [
        CheckSpec("identity", f"identity.{IDENTITY_GRAPH}.shared_links", table, frame, [
            gx.expectations.ExpectColumnMinToBeBetween(
                column="linked_share", min_value=getattr(thresholds, key), max_value=1.0,
                notes="Identifier values (email, phone, customer number, user id, loyalty "
                "card) carried by several records, joined in one profile: near 0 means "
                "linking did nothing.",
                meta=setting(key, f"{linked} of {shared} identifier values shared by several "
                             "records are joined in a profile"),
            )
        ])
    ]


def _strong_identifier(
    con: duckdb.DuckDBPyConnection, columns: list[str], field: str, sources: Sequence[str],
    notes: list[str],
) -> list[CheckSpec]:
    """At most one authoritative value of the strong identifier ``field`` per profile.

    Only the values of ``sources`` count (empty: every source), as for the merge guard:
    a number a shop form or a till receipt carries may be mistyped, and two of those in one
    profile say nothing about two known customers merged. Counts distinct values (a hashed
    field's hashes) per profile; examples are profile ids, never a value.
    """
    table = f"main.{IDENTITY_GRAPH}"
    column = published_column(field)
    words = field.replace("_", " ")
    key = f"strong_identifiers.{field}"
    if column not in columns:
        notes.append(f"{table} has no {column} column: 'one {words} per profile' not checked")
        return []
    graph = f"main.{q(IDENTITY_GRAPH)}"
    where, params = "profile_id IS NOT NULL", []
    if sources:
        where += " AND source IN (SELECT unnest(?))"
        params.append(list(sources))
        found = con.execute(f"SELECT count(*) FROM {graph} WHERE {where}", params).fetchone()
        if not found or not found[0]:
            notes.append(f"{table}: no record of the sources with authority over {field} "
                         f"({', '.join(sources)}; identity.yml {key}): 'one {words} per "
                         "profile' not checked")
            return []
    counted_column = f"{field}s"
    numbers = labelled_frame(
        con,
        f"""
        SELECT CAST(profile_id AS VARCHAR) AS _example,
               count(DISTINCT nullif(trim(CAST({q(column)} AS VARCHAR)), ''))
                   AS {q(counted_column)}
        FROM {graph}
        WHERE {where}
        GROUP BY profile_id
        """,
        params,
    )
    counted = ", ".join(sources) if sources else "every source"
    return [
        max_check(
            "identity", f"identity.{IDENTITY_GRAPH}.{counted_column}", table, numbers,
            column=counted_column, max_value=1,
            notes=f"Two authoritative {words}s in one profile means two known people "
            "were merged.",
            meta=setting(key, f"{words}s of {counted}", file="identity.yml"),
        )
    ]
