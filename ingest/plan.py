"""How staged values become typed rows: per column a cast, and every way a row can fail.

Type casts run in SQL (TRY_CAST / TRY_STRPTIME); a value that does not parse sends its row to
quarantine with the column named in ``_reason``, and so does a registered timestamp later than
the run allows (reason ``future_dated``). The loader uses one plan for both the append of good
rows and the quarantine of bad ones, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.vocabulary import quote_identifier as q
from ingest.ledger import DUCK_TYPES
from ingest.readers.common import StagedFile
from ingest.registry import SourceSpec, composed_key_sql


def typed_value(
    ref: str, staged_type: str, target: str, fmt: str | None, param: str
) -> tuple[str, str | None, dict[str, object]]:
    """SQL for (typed value, "a value was present" condition, parameters) of one column.

    A row fails its type when a value was present but the typed value is NULL. DuckDB's
    casts tolerate surrounding blanks, so only blank-only strings need ``trim`` (and that is
    evaluated after the cheap checks).
    """
    duck = DUCK_TYPES[target]
    if staged_type.upper() == duck:
        return ref, None, {}
    if staged_type.upper() != "VARCHAR":
        return f"TRY_CAST({ref} AS {duck})", f"{ref} IS NOT NULL", {}
    if target == "varchar":
        return ref, None, {}
    present = f"{ref} IS NOT NULL AND trim({ref}) <> ''"
    if target in ("timestamp", "date") and fmt:
        parsed = f"TRY_STRPTIME(trim({ref}), ${param})"
        return f"CAST({parsed} AS {duck})", present, {param: fmt}
    if target == "timestamp":
        # Strings with a UTC offset or zone ("Z", "+02:00", "Europe/Berlin") go through
        # TIMESTAMPTZ so it is honoured (session time zone is UTC); plain ones are UTC.
        tail = f"substr({ref}, 12)"
        return (
            f"CASE WHEN suffix({ref}, 'Z') OR contains({tail}, '+') OR contains({tail}, '-') "
            f"OR contains({tail}, '/') "
            f"THEN CAST(TRY_CAST({ref} AS TIMESTAMPTZ) AS TIMESTAMP) "
            f"ELSE TRY_CAST({ref} AS TIMESTAMP) END",
            present,
            {},
        )
    if target == "boolean":
        return f"TRY_CAST(trim({ref}) AS BOOLEAN)", present, {}
    return f"TRY_CAST({ref} AS {duck})", present, {}


@dataclass
class CastPlan:
    """SQL fragments shared by the insert of good rows and the quarantine of bad ones."""

    values: dict[str, str]  # column -> typed value expression over alias s
    failures: list[tuple[str, str]]  # (failure condition over alias s, reason parameter)
    params: dict[str, object]
    key: str = "NULL"  # the record key as VARCHAR over alias s (kept with a quarantined row)

    @property
    def bad(self) -> str:
        return " OR ".join(cond for cond, _ in self.failures) or "false"

    def reason(self) -> str:
        cases = ", ".join(f"CASE WHEN {cond} THEN ${param} END" for cond, param in self.failures)
        return f"concat_ws('; ', {cases})" if cases else "NULL"


#: How a quarantined row's ``_reason`` starts when its registered timestamp is too late.
FUTURE_DATED = "future_dated"


def plan_casts(
    spec: SourceSpec, staged: StagedFile, not_after: datetime | None = None
) -> CastPlan:
    """Typed value per column, plus every way a row can fail (no key, unparsable value, a
    registered timestamp after ``not_after``, a naive UTC time)."""
    types = spec.column_types
    birth_column = spec.identity.get("birth_date")
    values: dict[str, str] = {}
    failures: list[tuple[str, str]] = []
    params: dict[str, object] = {}
    # a composed key (record_key: [a, b]) is built from each part's text as delivered; a
    # row missing any part is quarantined naming that part
    key_refs = []
    for index, part in enumerate(spec.key_columns):
        key_ref = f"s.{q(part)}"
        if staged.columns.get(part, "VARCHAR").upper() != "VARCHAR":
            key_ref = f"CAST({key_ref} AS VARCHAR)"
        key_refs.append(key_ref)
        name = "reason_key" if index == 0 else f"reason_key_{index}"
        failures.append((f"({key_ref} IS NULL OR trim({key_ref}) = '')", name))
        params[name] = f"missing record key {part!r}"
    key = composed_key_sql(key_refs) if spec.composite_key else key_refs[0]
    for index, (column, staged_type) in enumerate(staged.columns.items()):
        target = types.get(column, "varchar")
        fmt = None
        if target == "timestamp":
            fmt = spec.timestamp_format
        elif target == "date" and column == birth_column:
            fmt = spec.birth_date_format
        value, present, extra = typed_value(
            f"s.{q(column)}", staged_type, target, fmt, f"fmt_{index}"
        )
        values[column] = value
        params.update(extra)
        if present is not None:
            check = value
            if value.startswith("CASE WHEN suffix("):
                # Same verdict as the offset-aware cast (TIMESTAMP accepts offsets), cheaper.
                check = f"TRY_CAST(s.{q(column)} AS TIMESTAMP)"
            failures.append((f"(({check}) IS NULL AND {present})", f"reason_{index}"))
            detail = f" (format {fmt!r})" if fmt else ""
            params[f"reason_{index}"] = f"column {column!r} is not a valid {target}{detail}"
        if column == spec.timestamp and not_after is not None and target in ("timestamp", "date"):
            failures.append(
                (f"coalesce(CAST({value} AS TIMESTAMP) > $not_after, false)", "reason_future"))
            params["not_after"] = not_after
            params["reason_future"] = (
                f"{FUTURE_DATED}: column {column!r} is after {not_after.isoformat(sep=' ')} "
                "(the run's as-of time plus tolerance)"
            )
    if spec.composite_key:
        values[spec.record_key] = key
    return CastPlan(values=values, failures=failures, params=params, key=key)
