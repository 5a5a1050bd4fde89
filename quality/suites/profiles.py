"""Profiles-layer suites: unique profile ids, no mass loss against the last publication, a
consent row per profile and channel, and no suppressed contact point left contactable."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from core.vocabulary import quote_identifier as q
from quality.gx import Expectation, gx
from quality.suites.catalog import (
    CONSENT_TABLE,
    PROFILES_TABLE,
    SUPPRESSION_TABLE,
    Catalog,
    label_sql,
    labelled_frame,
    read_previous,
    table_columns,
)
from quality.suites.checks import (
    CheckSpec,
    LayerPlan,
    flag_check,
    max_check,
    schema_check,
    setting,
)
from quality.thresholds import Thresholds

CONSENT_COLUMNS = ("profile_id", "channel", "contact_point", "is_contactable")


def plan_profiles(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    thresholds: Thresholds,
    previous_db: Path | None,
) -> LayerPlan:
    """Checks of ``dim_profiles`` and ``dim_profile_consent``, each once its columns exist."""
    plan = LayerPlan("profiles")
    table = f"main.{PROFILES_TABLE}"
    columns = table_columns(catalog, "main", PROFILES_TABLE)
    consent_cols = table_columns(catalog, "main", CONSENT_TABLE)
    required = [(table, columns is not None)]
    required.append((f"{table}.profile_id", columns is not None and "profile_id" in columns))
    required.append((f"main.{CONSENT_TABLE}", consent_cols is not None))
    required += [
        (f"main.{CONSENT_TABLE}.{c}", consent_cols is not None and c in consent_cols)
        for c in CONSENT_COLUMNS
    ]
    plan.checks.append(schema_check("profiles", required))
    if columns is None or "profile_id" not in columns:
        return plan

    label = label_sql(catalog, "main", PROFILES_TABLE, ["profile_id"])
    frame = labelled_frame(
        con, f"SELECT {label} AS _example, profile_id FROM main.{q(PROFILES_TABLE)}"
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
    previous = read_previous(
        previous_db, PROFILES_TABLE, ["profile_id"],
        f"SELECT count(*) AS n FROM main.{q(PROFILES_TABLE)}", plan.notes,
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
                meta=setting("max_profile_drop_share",
                             f"{len(frame)} profiles vs {prev_rows} at the previous publication"),
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
    label = label_sql(catalog, "main", PROFILES_TABLE, ["profile_id"])
    frame = labelled_frame(
        con,
        f"""
        SELECT {label} AS _example,
               (SELECT count(DISTINCT c.channel) FROM main.{q(CONSENT_TABLE)} c
                WHERE c.profile_id = p.profile_id AND c.channel IN (SELECT unnest(?)))
                   AS consent_channels
        FROM main.{q(PROFILES_TABLE)} p
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
                meta=setting("consent_channels"),
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
    columns = table_columns(catalog, "main", SUPPRESSION_TABLE)
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
                   SELECT identifier_hash FROM main.{q(SUPPRESSION_TABLE)}
               ) AS is_suppressed
        FROM main.{q(CONSENT_TABLE)} c
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
