"""The delivery suite: each file of a source's latest load against the delivery it replaces.

Apart from the raw table checks because it reads ingest's load ledger, not the raw table,
and decides per file whether it is a snapshot or an incremental delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from core.vocabulary import quote_identifier as q
from quality.gx import gx
from quality.suites.catalog import LEDGER_TABLE, Catalog, table_columns
from quality.suites.checks import CheckSpec, setting
from quality.thresholds import Thresholds

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


def delivery_check(
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
    ledger_cols = table_columns(catalog, "raw", LEDGER_TABLE)
    if ledger_cols is None or not set(LEDGER_NEEDS) <= set(ledger_cols):
        notes.append(f"{table}: no load ledger with delivery statistics; row drop per "
                     "delivery not checked")
        return None
    rows = con.execute(
        f"""SELECT file_name, CAST(run_id AS VARCHAR), rows_in_file, coalesce(rows_known_key, 0),
                   date_diff('second', first_record_at, last_record_at) / 86400.0, delivery
            FROM raw.{q(LEDGER_TABLE)}
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
        meta=setting("max_load_drop_share"),
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


