"""Why two records share a profile: per-comparison weights, masking, Splink waterfall charts.

The links table stores each Splink edge's comparison levels (``gamma``); with the model those
turn into per-comparison match weights (log2 of m/u), which is what a marketer needs to see
to trust - or dispute - a merge.  Identifiers shown in a terminal are masked by default.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

SplinkLevel = dict[str, Any]


def _levels_by_gamma(comparison: dict[str, Any]) -> dict[int, SplinkLevel]:
    """Splink numbers non-null levels from ``n-1`` down to 0 in order; the null level is -1."""
    levels = comparison["comparison_levels"]
    counter = sum(1 for level in levels if not level.get("is_null_level")) - 1
    out: dict[int, SplinkLevel] = {}
    for level in levels:
        if level.get("is_null_level"):
            out[-1] = level
        else:
            out[counter] = level
            counter -= 1
    return out


def _weight(level: SplinkLevel) -> float:
    m, u = level.get("m_probability"), level.get("u_probability")
    return 0.0 if not m or not u else math.log2(m / u)


def comparison_weights(gammas: Iterable[str | None], model: dict[str, Any]) -> list[str | None]:
    """Per edge, JSON ``{comparison: {"level": label, "weight": log2 m/u}}`` (weights before
    term-frequency adjustment) from its stored ``gamma``; None for rule edges."""
    levels = {c["output_column_name"]: _levels_by_gamma(c) for c in model["splink"]["comparisons"]}
    cache: dict[str, str] = {}  # few distinct comparison vectors, many edges
    out: list[str | None] = []
    for gamma in gammas:
        if gamma is None or pd.isna(gamma):
            out.append(None)
            continue
        if gamma not in cache:
            chosen = {name: levels[name][int(value)] for name, value in json.loads(gamma).items()}
            cache[gamma] = json.dumps({
                name: {"level": level.get("label_for_charts", ""),
                       "weight": round(_weight(level), 3)} for name, level in chosen.items()})
        out.append(cache[gamma])
    return out


def mask(value: object, kind: str = "text") -> str:
    """``m***@g***.com`` for e-mails, last two digits for phones, first character otherwise."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    text = str(value)
    if kind == "email" and "@" in text:
        local, _, domain = text.partition("@")
        host, dot, tld = domain.rpartition(".")
        return f"{local[:1]}***@{(host or tld)[:1]}***{dot}{tld if host else ''}"
    if kind == "phone":
        return "***" + text[-2:]
    return text[:1] + "***" if len(text) > 1 else "*"


def waterfall_html(edges: pd.DataFrame, model: dict[str, Any], path: str | Path) -> Path:
    """Write Splink's waterfall chart for ``edges`` (``gamma, match_weight``) to ``path``.

    Charts are built from the stored comparison levels, not by re-scoring records, so no
    identifier leaves the warehouse (``remove_sensitive_data``).  Splink's term-frequency
    adjustments are not stored per edge: the difference between the recorded match weight and
    prior + level weights is shown as the term-frequency row of the first exact-match
    comparison that has one.
    """
    import duckdb
    from splink import DuckDBAPI, Linker

    from identity.splink_model import SPLINK_COLUMNS

    settings = dict(model["splink"], retain_intermediate_calculation_columns=True,
                    retain_matching_columns=True)
    comparisons = settings["comparisons"]
    prior = settings["probability_two_random_records_match"]
    prior_weight = math.log2(prior / (1 - prior))
    records = []
    for gamma_json, match_weight in zip(edges["gamma"], edges["match_weight"], strict=True):
        gamma = json.loads(gamma_json)
        record: dict[str, Any] = {"match_weight": float(match_weight),
                                  "match_probability": 2 ** match_weight / (1 + 2 ** match_weight)}
        residual = float(match_weight) - prior_weight
        tf_target = None
        for comparison in comparisons:
            name = comparison["output_column_name"]
            level = _levels_by_gamma(comparison)[int(gamma[name])]
            record[f"gamma_{name}"] = int(gamma[name])
            record[f"bf_tf_adj_{name}"] = 1.0
            residual -= _weight(level)
            if tf_target is None and level.get("tf_adjustment_column"):
                tf_target = name
        for comparison in comparisons:
            name = comparison["output_column_name"]
            record[f"mw_tf_adj_{name}"] = round(residual, 6) if name == tf_target else 0.0
        records.append(record)
    con = duckdb.connect(":memory:")
    try:
        empty = pd.DataFrame({"unique_id": pd.Series(dtype="int64"),
                              **{c: pd.Series(dtype="string") for c in SPLINK_COLUMNS}})
        linker = Linker(DuckDBAPI(connection=con).register(empty, table_name="nodes"), settings,
                        log_level=None)
        chart = linker.visualisations.waterfall_chart(records, filter_nulls=False,
                                                      remove_sensitive_data=True)
        path = Path(path)
        chart.save(str(path))
    finally:
        con.close()
    return path
