"""Export validation: the last gate before a segment export is handed to a marketing tool.

The exporters call :func:`validate_export` after building a segment's members and before
finalising the export (renaming it into place). It checks the members against the
*published* warehouse, opened read-only, with the same GX machinery, reports and Data Docs
as the warehouse gate (:mod:`quality.gate`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from quality.gate import GateResult, validate_plans
from quality.thresholds import Thresholds, load_thresholds

if TYPE_CHECKING:
    from quality.suites import CheckSpec

#: Stands in for an exported identifier that does not normalise (never a contact point).
UNUSABLE = "<unusable identifier>"

#: Which exported identifiers address a channel (post has none: the address is the profile's).
CHANNEL_CONTACTS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "sms": ("phone",),
    "phone": ("phone",),
    "online_ads": ("email", "phone"),
    "post": (),
}


def validate_export(
    published_db: Path,
    members: pd.DataFrame,
    channel: str,
    previous_count: int | None,
    reports_dir: Path,
    thresholds: Thresholds | str | Path | None = None,
    *,
    segment: str = "export",
    run_id: str = "export",
) -> GateResult:
    """Validate one segment export; raise ``QualityGateFailed`` if it must not be finalised.

    Stable contract (issue 7's exporters depend on it):

    * ``published_db``: the published warehouse; opened read-only, never the build file.
    * ``members``: one row per exported member. Needs ``profile_id``; an optional
      ``channel`` column overrides ``channel`` per row; optional clear-text ``email`` and /
      or ``phone`` columns are the identifiers handed out (normalised here the way identity
      resolution does, so formatting differences do not matter).
    * ``channel``: email, sms, phone, post or online_ads.
    * ``previous_count``: member count of the previous export of this segment (None: first).
    * ``reports_dir``: validation results and Data Docs go to ``reports_dir/data_docs``.
    * ``thresholds``: Thresholds, a YAML path, or None for ``config/quality.yml``.

    Checks: every row is opted in for its channel (a contactable ``dim_profile_consent`` row
    for the profile and channel, and for the exported email / phone when given); no exported
    email or phone is on ``main.dim_suppression_list`` (skipped with a note while that table
    does not exist); the size change against ``previous_count`` is at most
    ``max_segment_size_change`` - a warning in ``GateResult.warnings`` by default, a failure
    when ``segment_size_change_action: fail``. Failures name profile ids, never identifiers.
    """
    started = time.perf_counter()
    if not isinstance(thresholds, Thresholds):
        thresholds = load_thresholds(thresholds)
    if "profile_id" not in members.columns:
        raise ValueError("members need a profile_id column")
    frame = _member_identifiers(members, channel)

    from quality.suites import LayerPlan

    plan = LayerPlan("exports")
    with duckdb.connect(str(published_db), read_only=True) as con:
        con.register("export_members_frame", frame)
        # All-missing identifier columns would arrive untyped; the checks compare strings.
        con.execute(
            "CREATE TEMP VIEW export_members AS SELECT "
            + ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in frame.columns)
            + " FROM export_members_frame"
        )
        plan.checks.append(_consent_check(con, segment))
        suppression = _suppression_check(con, segment)
    if suppression is None:
        plan.notes.append(
            "main.dim_suppression_list not found in the published warehouse: "
            "suppressed identifiers not checked"
        )
    else:
        plan.checks.append(suppression)
    plan.checks.append(_size_check(len(members), previous_count, segment, thresholds))
    return validate_plans([plan], Path(reports_dir), run_id, started)


def _member_identifiers(members: pd.DataFrame, channel: str) -> pd.DataFrame:
    """Per member: label, profile id, channel, normalised identifiers (all and per channel).

    An identifier that does not normalise becomes ``UNUSABLE``: it matches no consented
    contact point, so exporting a garbled address fails instead of passing on the strength
    of the profile's other addresses.
    """
    from identity.normalise import normalise_email_value, normalise_phone_value

    channels = (
        members["channel"].astype(str) if "channel" in members.columns
        else pd.Series(channel, index=members.index)
    )
    profile_ids = members["profile_id"].astype(str)
    frame = pd.DataFrame({"profile_id": profile_ids, "channel": channels})
    frame["label"] = profile_ids + ":" + channels
    normalisers = {"email": normalise_email_value, "phone": normalise_phone_value}
    for kind, normalise in normalisers.items():
        values = members[kind] if kind in members.columns else pd.Series(None, index=members.index)
        frame[kind] = [(normalise(v) or UNUSABLE) if isinstance(v, str) and v.strip() else None
                       for v in values]
        # The identifier counts for the opt-in check only where it addresses the channel.
        addresses = channels.map(lambda c, kind=kind: kind in CHANNEL_CONTACTS.get(c, ()))
        frame[f"{kind}_contact"] = frame[kind].where(addresses, None)
    return frame.reset_index(drop=True)


def _consent_check(con: duckdb.DuckDBPyConnection, segment: str) -> CheckSpec:
    import great_expectations as gx

    from quality.suites import CONSENT_TABLE, CheckSpec

    checked = con.execute(
        f"""
        SELECT m.label,
               EXISTS (
                   SELECT 1 FROM main.{CONSENT_TABLE} c
                   WHERE c.profile_id = m.profile_id AND c.channel = m.channel
                     AND c.is_contactable
                     AND ((m.email_contact IS NULL AND m.phone_contact IS NULL)
                          OR c.contact_point IN (m.email_contact, m.phone_contact))
               ) AS opted_in
        FROM export_members m
        ORDER BY m.label
        """
    ).df()
    return CheckSpec(
        "exports",
        f"exports.{segment}.consent",
        f"main.{CONSENT_TABLE}",
        _labelled(checked),
        [
            gx.expectations.ExpectColumnValuesToBeInSet(
                column="opted_in",
                value_set=[True],
                notes="Every exported member needs a contactable consent row for its channel "
                "(and for the exported address); examples are profile_id:channel.",
            )
        ],
    )


def _suppression_check(con: duckdb.DuckDBPyConnection, segment: str) -> CheckSpec | None:
    import great_expectations as gx

    from quality.suites import SUPPRESSION_TABLE, CheckSpec

    exists = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = ? AND column_name = 'identifier_hash'",
        [SUPPRESSION_TABLE],
    ).fetchone()
    if not exists or not exists[0]:
        return None
    checked = con.execute(
        f"""
        SELECT m.label,
               coalesce(sha256(m.email) IN (SELECT identifier_hash FROM main.{SUPPRESSION_TABLE})
                        OR sha256(m.phone) IN (SELECT identifier_hash
                                               FROM main.{SUPPRESSION_TABLE}), false)
                   AS is_suppressed
        FROM export_members m
        ORDER BY m.label
        """
    ).df()
    return CheckSpec(
        "exports",
        f"exports.{segment}.suppression",
        f"main.{SUPPRESSION_TABLE}",
        _labelled(checked),
        [
            gx.expectations.ExpectColumnValuesToBeInSet(
                column="is_suppressed",
                value_set=[False],
                notes="No exported email or phone may be on the suppression list; examples "
                "are profile_id:channel.",
            )
        ],
    )


def _size_check(
    count: int, previous_count: int | None, segment: str, thresholds: Thresholds
) -> CheckSpec:
    import great_expectations as gx

    from quality.suites import CheckSpec

    change = 0.0 if previous_count is None else abs(count - previous_count) / max(previous_count, 1)
    frame = pd.DataFrame(
        {"previous_count": [previous_count], "count": [count], "size_change": [change]},
        index=pd.Index([f"segment {segment}"]),
    )
    severity = "warning" if thresholds.segment_size_change_action == "warn" else "critical"
    return CheckSpec(
        "exports",
        f"exports.{segment}.size",
        f"segments.{segment}",
        frame,
        [
            gx.expectations.ExpectColumnMaxToBeBetween(
                column="size_change",
                min_value=0.0,
                max_value=thresholds.max_segment_size_change,
                severity=severity,
                notes="Relative change of the export's size against the previous export; "
                "a jump usually means a broken segment definition or upstream data.",
            )
        ],
    )


def _labelled(checked: pd.DataFrame) -> pd.DataFrame:
    checked.index = pd.Index(checked.pop("label").astype(str).to_numpy())
    return checked
