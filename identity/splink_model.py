"""Probabilistic edges between person nodes with Splink 5 on a private DuckDB connection.

Only nodes carrying a name go in: records holding just an e-mail, phone, card or cookie have
nothing for a Fellegi-Sunter model to weigh and are attached by the rules instead.  Splink
always gets its *own* in-memory DuckDB connection: inside dbt-duckdb the session handle is a
cursor wrapper Splink cannot drive, and a private connection keeps Splink's scratch tables out
of the warehouse.

Model files are JSON: ``{"format", "model_version", "fingerprint", "trained_at", "splink",
"blocking", "term_frequencies"}`` where ``splink`` is Splink's own settings dict,
``fingerprint`` identifies the node data the model was trained on (row count + content hash),
for lineage, and ``blocking`` and ``term_frequencies`` are fixed at training, so scoring a pair
depends on the pair and the model only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.exceptions import EMTrainingException
from splink.internals.splink_dataframe import SplinkDataFrame

from identity.config import IdentityConfig
from identity.normalise.birth_date import BIRTH_DATE_PARTS, PART_DTYPE

log = logging.getLogger(__name__)

MODEL_FORMAT = "cdp-identity-splink"
MODEL_VERSION = 6  # bump when the comparisons / node columns below change
SPLINK_COLUMNS: tuple[str, ...] = (
    "first_name", "last_name", "birth_date", *BIRTH_DATE_PARTS, "email", "phone", "street",
    "house_number", "postcode", "city",
)
COMPARISON_NAMES: tuple[str, ...] = (
    "first_name", "last_name", "birth_date", "email", "phone", "address",
)
MIN_SPLINK_NODES = 30  # below this there is nothing to learn from; rules only


def _address_comparison() -> cl.CustomComparison:
    """One comparison for the whole address: its parts are far from independent."""
    return cl.CustomComparison(
        output_column_name="address",
        comparison_description="street, house number, postcode, city",
        comparison_levels=[
            cll.CustomLevel('("postcode_l" IS NULL AND "city_l" IS NULL) OR '
                            '("postcode_r" IS NULL AND "city_r" IS NULL)',
                            "address missing").configure(is_null_level=True),
            cll.And(cll.ExactMatchLevel("postcode"), cll.ExactMatchLevel("street"),
                    cll.ExactMatchLevel("house_number")).configure(
                label_for_charts="same full address"),
            cll.And(cll.ExactMatchLevel("postcode"), cll.JaroWinklerLevel("street", 0.88)
                    ).configure(label_for_charts="same postcode, similar street"),
            cll.ExactMatchLevel("postcode").configure(label_for_charts="same postcode"),
            cll.ExactMatchLevel("city", term_frequency_adjustments=True).configure(
                label_for_charts="same city"),
            cll.JaroWinklerLevel("city", 0.92).configure(label_for_charts="similar city"),
            cll.JaroWinklerLevel("city", 0.8).configure(label_for_charts="city alike"),
            cll.ElseLevel().configure(label_for_charts="different address"),
        ],
    )


def _in_other_field(column: str, other: str) -> str:
    """One side's ``column`` is the other side's ``other`` name, and the remaining two names
    do not contradict a swap (one is missing or they are alike: a swap with a typo).
    ``Isaac James`` / ``James Dixon`` are two people, ``Anna Berg`` / ``Berg Ana`` one."""
    def crossed(a: str, b: str) -> str:
        return (f'"{column}_{a}" = "{other}_{b}" AND coalesce(jaro_winkler_similarity('
                f'"{other}_{a}", "{column}_{b}") >= 0.8, true)')
    return f"({crossed('l', 'r')}) OR ({crossed('r', 'l')})"


def _name_comparison(column: str, other: str, crossed: bool) -> cl.CustomComparison:
    """Splink's name levels (exact with term frequencies, Jaro-Winkler bands) plus both names
    entered the wrong way round, one name holding the other (an initial, a second given name
    or a double-barrelled surname: ``a`` / ``anna``, ``anna maria`` / ``maria``) and one name
    found in the other field.  A swap is one fact for both comparisons: only the one with
    ``crossed`` weighs it (the other treats it as unknown), else Splink counts it twice."""
    left, right = f'"{column}_l"', f'"{column}_r"'
    # an initial ("a" / "anna"), or a shared token ("anna maria" / "maria"); a longer prefix
    # is no evidence ("neu" / "neumann" are two families)
    holds = (f"(length({right}) = 1 AND starts_with({left}, {right})) OR "
             f"(length({left}) = 1 AND starts_with({right}, {left})) OR "
             f"(contains({left}, ' ') OR contains({right}, ' ')) AND "
             f"list_has_any(string_split({left}, ' '), string_split({right}, ' '))")
    return cl.CustomComparison(
        output_column_name=column,
        comparison_description=f"{column} (names folded, nicknames mapped)",
        comparison_levels=[
            cll.NullLevel(column),
            cll.ExactMatchLevel(column, term_frequency_adjustments=True).configure(
                label_for_charts=f"same {column}"),
            # one fact, weighed once: in the last-name comparison the swap is no evidence
            cll.ColumnsReversedLevel(column, other, symmetrical=True).configure(
                label_for_charts="first and last name swapped", is_null_level=not crossed),
            cll.JaroWinklerLevel(column, 0.92),
            cll.JaroWinklerLevel(column, 0.88),
            *([cll.CustomLevel(_in_other_field(column, other),
                               "a name given in the other name field")]
              if crossed else []),
            cll.CustomLevel(holds, f"one {column} holds the other"),
            cll.JaroWinklerLevel(column, 0.7),
            cll.ElseLevel(),
        ],
    )


def _birth_date_comparison() -> cl.CustomComparison:
    """Splink's date-of-birth levels on what the dates state: ``birth_date_text`` spells a
    date with ``?`` for parts that are not known (``1949-??-13``), so an impossible or very
    old date still matches exactly or by one typo; the date-difference levels need real,
    believed dates (``birth_date``); a partial date that agrees where both state a part, or
    only the same year, is weaker evidence."""
    agree = ('"birth_year_l" = "birth_year_r" '
             'AND coalesce("birth_month_l" = "birth_month_r", true) '
             'AND coalesce("birth_day_l" = "birth_day_r", true)')
    return cl.CustomComparison(
        output_column_name="birth_date",
        comparison_description="birth date (partial dates kept)",
        comparison_levels=[
            cll.NullLevel("birth_date_text"),
            cll.ExactMatchLevel("birth_date_text", term_frequency_adjustments=True).configure(
                label_for_charts="same birth date"),
            cll.DamerauLevenshteinLevel("birth_date_text", 1).configure(
                label_for_charts="one typo in birth date"),
            cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False,
                                            threshold=1, metric="month"),
            cll.CustomLevel(agree, "agree where both are stated"),
            cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False,
                                            threshold=1, metric="year"),
            cll.ExactMatchLevel("birth_year").configure(label_for_charts="same year"),
            cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False,
                                            threshold=10, metric="year"),
            cll.ElseLevel(),
        ],
    )


# Two edits turn any short local part into any other (``f.j`` / ``h.k``): a typo is only
# evidence in a local part at least this long.
MIN_TYPO_LOCAL_PART = 6


def _email_comparison() -> cl.CustomComparison:
    """Exact address, same local part at another provider, or a typo at the same provider.

    No general fuzzy level: local parts are built from names, so "similar e-mail" mostly
    re-counts the name evidence and made namesakes look like one person.  A difference only
    in digits (``anna.berg`` / ``anna.berg2``) is a provider-level name clash - two people -
    so the typo level requires the letters to differ, and a local part long enough for two
    edits to be a typo rather than another address.
    """
    return cl.CustomComparison(
        output_column_name="email",
        comparison_description="e-mail address",
        comparison_levels=[
            cll.NullLevel("email"),
            # no term frequencies: a frequent address is one person's many records or a
            # shared one (max_identifier_people), and the model file would name addresses
            cll.ExactMatchLevel("email").configure(
                label_for_charts="same email"),
            cll.ExactMatchLevel("email_local").configure(label_for_charts="same local part"),
            cll.And(cll.ExactMatchLevel("email_domain"),
                    cll.DamerauLevenshteinLevel("email_local", 2),
                    cll.Not(cll.ExactMatchLevel("email_letters")),
                    cll.CustomLevel(f'least(length("email_local_l"), length("email_local_r"))'
                                    f' >= {MIN_TYPO_LOCAL_PART}')).configure(
                label_for_charts="typo in local part, same provider"),
            cll.ElseLevel(),
        ],
    )


# Blocking: which pairs predict() scores.  The core rules always run; the further rules
# widen recall (an address shared despite different names, a first name given as an initial
# or nickname, a year where the full date is wrong, names in the wrong fields) and run,
# cheapest first, while all of them together create no more than ``identity.yml
# blocking_comparisons_per_record`` comparisons per scored record (a rule that does not fit
# the rest of the budget is left out; small data gets at least MIN_EXTRA_COMPARISONS): recall
# grows where the data makes it cheap, cost stays bounded.  Rules are column expressions
# over :func:`splink_input`'s frame.
CORE_BLOCKING: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name"),
    ("birth_date_text",),
    ("email",),
    ("phone",),
    ("last_name", "postcode"),
    ("first_name", "postcode"),
    ("last_name", "city"),
    ("first_name", "city"),
    ("substr(first_name, 1, 2)", "substr(last_name, 1, 2)", "birth_year"),
    ("email_local",),
)
SWAPPED_NAMES_RULE = ('l."first_name" = r."last_name" AND l."last_name" = r."first_name"')
EXTRA_BLOCKING: tuple[tuple[str, ...], ...] = (
    ("street", "house_number"),
    ("postcode_area", "first_name"),
    ("postcode_area", "last_name"),
    ("first_name", "birth_year"),
    ("last_name", "birth_year"),
    ("postcode_area", "birth_year"),
    ("city", "birth_year"),
    ("postcode",),
    ("last_name", "substr(first_name, 1, 1)"),
    ("first_name",),
    ("last_name",),
)
# Small data affords wide blocking: this many extra comparisons score in well under a second.
MIN_EXTRA_COMPARISONS = 250_000
# Names entered the wrong way round (one field each): equi-joins across the two columns.
CROSSED_NAMES: tuple[tuple[str, str], ...] = (("first_name", "last_name"),
                                              ("last_name", "first_name"))


def _rule_sql(columns: tuple[str, ...]) -> str:
    return str(block_on(*columns).get_blocking_rule("duckdb").blocking_rule_sql)


@dataclass(frozen=True)
class Blocking:
    """The rules predict() runs (Splink SQL, for the run's report) and the further rules
    left out for creating too many comparisons (with their count)."""

    rules: tuple[str, ...]
    dropped: dict[str, int]


def choose_blocking(con: duckdb.DuckDBPyConnection, table: str, records: int,
                    per_record: float) -> Blocking:
    """Core rules plus the further rules that fit the comparison budget on this data."""
    left = max(per_record * records, MIN_EXTRA_COMPARISONS)
    rules = [_rule_sql(columns) for columns in CORE_BLOCKING] + [SWAPPED_NAMES_RULE]
    dropped: dict[str, int] = {}
    candidates = [(_rule_sql(columns),
                   f"SELECT count(*) * (count(*) - 1) / 2 AS n FROM {table} WHERE "
                   + " AND ".join(f"({c}) IS NOT NULL" for c in columns)
                   + f" GROUP BY {', '.join(columns)}") for columns in EXTRA_BLOCKING]
    candidates += [(f'l."{a}" = r."{b}"',
                    f"SELECT x.n * y.n AS n FROM (SELECT {a} AS k, count(*) AS n FROM {table} "
                    f"GROUP BY 1) x JOIN (SELECT {b} AS k, count(*) AS n FROM {table} "
                    f"GROUP BY 1) y USING (k)") for a, b in CROSSED_NAMES]
    counted = [(int(con.sql(f"SELECT coalesce(sum(n), 0) FROM ({count_sql})").fetchall()[0][0]),
                rule) for rule, count_sql in candidates]
    for comparisons, rule in sorted(counted, key=lambda item: item[0]):  # cheapest first
        if comparisons <= left:
            rules.append(rule)
            left -= comparisons
        else:
            dropped[rule] = comparisons
    return Blocking(tuple(rules), dropped)


def blocking_for(nodes: pd.DataFrame, config: IdentityConfig) -> Blocking:
    """The blocking rules a model trained on these nodes would hold (for diagnostics such as
    ``cdp identity evaluate`` when no model file is at hand: :func:`model_blocking` of the
    model that scored is what :func:`predict_edges` ran)."""
    frame = splink_input(nodes)
    con = duckdb.connect(":memory:")
    try:
        con.register("identity_nodes", frame)
        return choose_blocking(con, "identity_nodes", len(frame),
                               config.blocking_comparisons_per_record)
    finally:
        con.close()


def settings_creator() -> SettingsCreator:
    """The (untrained) model: comparisons; predict()'s blocking rules are chosen on the
    training data and stored with the model (:func:`choose_blocking`), the core rules stand
    in until then."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            _name_comparison("first_name", "last_name", crossed=True),
            _name_comparison("last_name", "first_name", crossed=False),
            _birth_date_comparison(),
            _email_comparison(),
            cl.LevenshteinAtThresholds("phone", [2]),
            _address_comparison(),
        ],
        blocking_rules_to_generate_predictions=[block_on(*c) for c in CORE_BLOCKING],
        retain_matching_columns=True,  # Splink 5 only keeps gamma_* columns with this on
        retain_intermediate_calculation_columns=False,
        probability_two_random_records_match=1e-4,
    )


def splink_input(nodes: pd.DataFrame) -> pd.DataFrame:
    """Named nodes in the shape the model expects (``unique_id`` = node id), with the keys
    comparisons and blocking rules derive from the node columns."""
    named = nodes.loc[nodes["has_name"]].sort_values("node_id", kind="stable")
    frame = pd.DataFrame({"unique_id": named["node_id"].to_numpy(dtype=np.int64)})
    for column in SPLINK_COLUMNS:
        values = named[column]
        if column in BIRTH_DATE_PARTS:
            frame[column] = values.astype(PART_DTYPE).array
        elif column == "birth_date":
            frame[column] = values.array
        else:
            frame[column] = values.astype("string").to_numpy()
    text = frame[list(SPLINK_COLUMNS)].astype({c: "string" for c in SPLINK_COLUMNS})
    year, month, day = (text[c] for c in BIRTH_DATE_PARTS)
    stated = frame[list(BIRTH_DATE_PARTS)].notna().any(axis=1).to_numpy()
    spelled = (year.str.zfill(4).fillna("????") + "-" + month.str.zfill(2).fillna("??")
               + "-" + day.str.zfill(2).fillna("??"))
    frame["birth_date_text"] = spelled.where(stated, pd.NA).to_numpy()
    email = text["email"]
    frame["email_local"] = email.str.split("@", n=1).str[0].to_numpy()
    frame["email_domain"] = email.str.split("@", n=1).str[1].to_numpy()
    frame["email_letters"] = email.str.split("@", n=1).str[0].str.replace(
        "[0-9]", "", regex=True).to_numpy()
    postcode = text["postcode"]
    frame["postcode_area"] = postcode.str.slice(0, 3).where(postcode.str.len() >= 5,
                                                            pd.NA).to_numpy()
    return frame.reset_index(drop=True)


def fingerprint(frame: pd.DataFrame, sources: list[str]) -> dict[str, Any]:
    """What the model was trained on: row count, content hash (order-independent), the
    sources of its records and the share of rows holding each compared field.  The fit check
    (:func:`identity.model_store.model_fits`) compares the last three with the data at hand."""
    body = frame.drop(columns=["unique_id"], errors="ignore").astype("string")
    hashes = np.sort(pd.util.hash_pandas_object(body, index=False).to_numpy())
    digest = hashlib.sha256(hashes.tobytes()).hexdigest()
    return {"rows": int(len(frame)), "sha256": digest, "sources": sorted(sources),
            "fields": field_shares(frame)}


def field_shares(frame: pd.DataFrame) -> dict[str, float]:
    """Share of rows holding each field the comparisons read (rounded: a fit check, not a
    hash)."""
    rows = max(len(frame), 1)
    return {column: round(float(frame[column].notna().sum()) / rows, 3)
            for column in SPLINK_COLUMNS if column not in BIRTH_DATE_PARTS}


def node_sources(nodes: pd.DataFrame) -> list[str]:
    """The sources of the named nodes' records (``sources`` holds comma-joined names)."""
    named = nodes.loc[nodes["has_name"], "sources"].dropna().unique()
    return sorted({name for joined in named for name in str(joined).split(",") if name})


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink narrates every training step at INFO; keep the caller's log to our counts."""
    splink_logger = logging.getLogger("splink")
    previous = splink_logger.level
    if previous < logging.ERROR:
        splink_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        splink_logger.setLevel(previous)


def _register(frame: pd.DataFrame, con: duckdb.DuckDBPyConnection) -> SplinkDataFrame:
    return DuckDBAPI(connection=con).register(frame, table_name="identity_nodes")


# Deterministic rules for the match prior: pairs they admit are (almost) certainly one person.
# Each rule is exact agreement on these columns; a column is compared by the comparison of the
# same name (``birth_date_text`` by ``birth_date``), whose first level after "missing" is
# exact agreement.
PRIOR_RULES: tuple[tuple[str, ...], ...] = (
    ("email", "first_name"),
    ("phone", "first_name"),
    ("first_name", "last_name", "birth_date_text"),
)
PRIOR_RULE_COMPARISON = {"birth_date_text": "birth_date"}
# Before EM, the share of true pairs the rules admit is guessed; afterwards it follows from
# the trained model, within these bounds (below the lower one the rules say little).
PRIOR_RULES_RECALL = 0.8
PRIOR_RECALL_BOUNDS = (0.01, 1.0)
# Fewer pairs than this admitted by PRIOR_RULES is no evidence for a prior (a source without
# e-mails, phones or birth dates admits none): fall back to ``config.default_match_prior``.
MIN_PRIOR_PAIRS = 10
# EM sessions in order.  The fallback sessions only run when the main ones left a name
# comparison untrained (no birth dates and no e-mails to block on), so data that trains
# the main sessions gets exactly the same model as before.
EM_SESSIONS: tuple[tuple[str, ...], ...] = (("first_name", "last_name"),
                                            ("birth_date_text",), ("email",))
EM_FALLBACK_SESSIONS: tuple[tuple[str, ...], ...] = (("postcode",), ("city",))


def _prior_rule_sql(columns: tuple[str, ...]) -> str:
    return " AND ".join(f'l."{column}" = r."{column}"' for column in columns)


def prior_rules_recall(m_exact: dict[str, float], filled: dict[str, float]) -> float:
    """The share of true pairs :data:`PRIOR_RULES` admit, as the model sees it: a column
    agrees exactly in a true pair with probability ``filled² × m(exact)`` (both sides filled,
    then the trained m of exact agreement), columns independently (the model's own
    assumption); the rules' union by inclusion-exclusion."""
    def agree(column: str) -> float:
        return filled[column] ** 2 * m_exact[PRIOR_RULE_COMPARISON.get(column, column)]
    recall = 0.0
    for size in range(1, len(PRIOR_RULES) + 1):
        for rules in itertools.combinations(PRIOR_RULES, size):
            columns = set().union(*rules)
            recall += (-1) ** (size + 1) * math.prod(agree(column) for column in columns)
    return recall


def _reestimate_prior(linker: Linker, frame: pd.DataFrame, guessed: float) -> float | None:
    """The prior with the rules' recall implied by the trained model instead of the guess
    :data:`PRIOR_RULES_RECALL` (None: the model gives no usable recall).  A guess that is
    too high made a source with few e-mails and no phones look like it held few duplicates,
    and true pairs with a typo or two stayed below the threshold."""
    m_exact = {}
    for comparison in linker._settings_obj.comparisons:
        exact = comparison._comparison_levels_excluding_null[0]
        if not exact._trained_m_probabilities:
            continue
        m_exact[comparison.output_column_name] = float(exact.m_probability)
    columns = {column for rule in PRIOR_RULES for column in rule}
    rows = max(len(frame), 1)
    filled = {column: float(frame[column].notna().sum()) / rows for column in columns}
    for column in columns:  # a column nobody filled admits no pair, whatever its m
        compared_by = PRIOR_RULE_COMPARISON.get(column, column)
        if compared_by not in m_exact:
            if filled[column] > 0:
                return None
            m_exact[compared_by] = 0.0
    recall = prior_rules_recall(m_exact, filled)
    low, high = PRIOR_RECALL_BOUNDS
    if not low <= recall <= high:
        return None
    prior = guessed * PRIOR_RULES_RECALL / recall
    return prior if _valid_prior(prior) else None


# Term frequencies are part of the model, so a pair's score depends on the pair and the model
# only (records arriving later never move the weights of existing pairs).  Stored per value
# hash, and only for values held by records of at least this many different people (counted
# as distinct values of the other name: one person's many records never make a value
# common), so the model file names no one; every other value gets the column's "rare"
# frequency.
TF_MIN_PEOPLE = 5
TF_HASH_CHARS = 16  # hex digits of sha256 kept: 64 bits, no collisions at model sizes
# Which other column tells the holders of a value apart.
TF_PEOPLE_BY = {"first_name": "last_name"}
TF_PEOPLE_DEFAULT = "first_name"


def _tf_columns(linker: Linker) -> list[str]:
    return sorted(column.unquote().name for column in
                  linker._settings_obj._term_frequency_columns)


def _value_hash_sql(column: str) -> str:
    return f'left(sha256(CAST("{column}" AS VARCHAR)), {TF_HASH_CHARS})'


def term_frequency_tables(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]
                          ) -> dict[str, Any]:
    """Per column: the frequency of each value held by records of :data:`TF_MIN_PEOPLE` or
    more people (keyed by value hash) and ``rare``, the frequency a record with any other
    value has on average."""
    tables: dict[str, Any] = {}
    for column in columns:
        other = TF_PEOPLE_BY.get(column, TF_PEOPLE_DEFAULT)
        counts = con.sql(f'SELECT {_value_hash_sql(column)} AS h, count(*) AS n, '
                         f'count(DISTINCT "{other}") AS people FROM {table} '
                         f'WHERE "{column}" IS NOT NULL GROUP BY 1').df()
        total = max(int(counts["n"].sum()), 1)
        shared = counts["people"] >= TF_MIN_PEOPLE
        common = counts[shared].sort_values("h")
        rare = counts.loc[~shared, "n"]
        rare_tf = float((rare ** 2).sum() / rare.sum() / total) if len(rare) else 1.0 / total
        tables[column] = {"rare": rare_tf, "values": {
            str(h): float(n) / total for h, n in zip(common["h"], common["n"], strict=True)}}
    return {"min_people": TF_MIN_PEOPLE, "hash": f"sha256[:{TF_HASH_CHARS}]",
            "columns": tables}


def _register_term_frequencies(linker: Linker, con: duckdb.DuckDBPyConnection, table: str,
                               stored: dict[str, Any]) -> None:
    """Give Splink the model's frequencies for the values in ``table`` instead of letting it
    count them in the data at hand."""
    db_api = DuckDBAPI(connection=con)
    for column in _tf_columns(linker):
        entry = stored["columns"][column]
        known = pd.DataFrame({"h": pd.Series(list(entry["values"]), dtype="string"),
                              "tf": pd.Series(list(entry["values"].values()), dtype=float)})
        con.register("__cdp_tf_known", known)
        lookup = f"__cdp_tf_{column}"
        con.execute(f'CREATE OR REPLACE TABLE {lookup} AS SELECT v."{column}", '
                    f'coalesce(k.tf, {float(entry["rare"])!r}) AS "tf_{column}" FROM '
                    f'(SELECT DISTINCT "{column}", {_value_hash_sql(column)} AS h FROM {table} '
                    f'WHERE "{column}" IS NOT NULL) v LEFT JOIN __cdp_tf_known k USING (h)')
        con.unregister("__cdp_tf_known")
        linker.table_management.register_term_frequency_lookup(
            db_api.register(lookup, table_name=f"tf_lookup_{column}"), column)


def _valid_prior(value: Any) -> bool:
    try:
        prior = float(value)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(prior)) and 0.0 < prior < 1.0


def _estimate_prior(linker: Linker, frame: pd.DataFrame, config: IdentityConfig) -> str:
    """Set ``probability_two_random_records_match``; return how (for the log).

    Splink divides the pairs the deterministic rules admit by all pairs.  With none admitted
    the estimate is 0 (and with a duplicate-heavy input it can reach 1); both make every match
    weight ``log2(0)`` and crash EM and predict, so such an estimate is replaced by the
    configured default.
    """
    settings = linker._settings_obj
    pairs = len(frame) * (len(frame) - 1) / 2
    try:
        linker.training.estimate_probability_two_random_records_match(
            [_prior_rule_sql(rule) for rule in PRIOR_RULES], recall=PRIOR_RULES_RECALL)
    except ValueError:  # tiny or duplicate-heavy inputs: rules admit more than recall allows
        settings._probability_two_random_records_match = config.default_match_prior
        return "default (rules admit too many pairs)"
    prior = settings._probability_two_random_records_match
    observed = float(prior) * PRIOR_RULES_RECALL * pairs if _valid_prior(prior) else 0.0
    if not _valid_prior(prior) or observed < MIN_PRIOR_PAIRS - 0.5:
        settings._probability_two_random_records_match = config.default_match_prior
        return f"default (deterministic rules admit {observed:.0f} pairs)"
    return "estimated"


def _has_pairs(frame: pd.DataFrame, columns: tuple[str, ...]) -> bool:
    return bool(frame[list(columns)].dropna().duplicated().any())


def _run_em_session(linker: Linker, columns: tuple[str, ...]) -> bool:
    """One EM session blocked on ``columns``; False (model left as it was) if it failed.

    Splink's session rewrites the linker's settings in place (drops the blocked comparisons,
    swaps in a blocking-adjusted prior) and only restores them when it succeeds, so on
    failure the settings are put back from a copy."""
    settings = linker._settings_obj
    saved = settings.core_model_settings.copy()
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(*columns), estimate_without_term_frequencies=True)
    except (ValueError, ZeroDivisionError, OverflowError, EMTrainingException) as exc:
        settings.core_model_settings = saved
        log.warning(
            "identity splink: EM session blocked on %s could not estimate (%s: records "
            "sharing %s rarely differ elsewhere, or too few share it); the comparisons it "
            "would train keep the other sessions' estimates. Nothing to fix unless `cdp "
            "identity evaluate` shows low recall: then train on more overlapping data "
            "(cdp identity train) or pin a reviewed model (identity.yml model: <file>)",
            "+".join(columns), type(exc).__name__, "+".join(columns))
        return False
    return True


def _untrained_name_comparisons(linker: Linker, frame: pd.DataFrame) -> list[str]:
    """Name comparisons holding data whose m probabilities no EM session has estimated."""
    untrained = []
    for comparison in linker._settings_obj.comparisons:
        name = comparison.output_column_name
        if name not in ("first_name", "last_name") or frame[name].notna().sum() < 2:
            continue
        levels = comparison._comparison_levels_excluding_null
        if not any(level._trained_m_probabilities for level in levels):
            untrained.append(name)
    return untrained


def _train_linker(linker: Linker, frame: pd.DataFrame, config: IdentityConfig) -> None:
    how = _estimate_prior(linker, frame, config)
    linker.training.estimate_u_using_random_sampling(max_pairs=config.u_max_pairs,
                                                     seed=config.seed)
    trained = skipped = 0
    for columns in EM_SESSIONS:
        # A session whose blocking rule finds no pairs (a source without emails, say) has
        # nothing to learn from and makes Splink's EM divide by zero: skip it.
        if not _has_pairs(frame, columns):
            log.info("identity splink: no %s pairs, EM session skipped", "+".join(columns))
            skipped += 1
            continue
        ok = _run_em_session(linker, columns)
        trained, skipped = trained + ok, skipped + (not ok)
    if _untrained_name_comparisons(linker, frame):
        for columns in EM_FALLBACK_SESSIONS:
            if _has_pairs(frame, columns) and _run_em_session(linker, columns):
                trained += 1
                log.info("identity splink: names trained by fallback EM session on %s",
                         "+".join(columns))
                break
    log.info("identity splink: %d EM sessions trained, %d skipped", trained, skipped)
    settings = linker._settings_obj
    if how == "estimated":
        prior = _reestimate_prior(linker, frame, settings._probability_two_random_records_match)
        if prior is not None:
            settings._probability_two_random_records_match = prior
            how = "estimated (rules' recall from the trained model)"
    log.info("identity splink: match prior %s", how)


def _model_document(linker: Linker, frame: pd.DataFrame, sources: list[str]
                    ) -> dict[str, Any]:
    return {
        "format": MODEL_FORMAT,
        "model_version": MODEL_VERSION,
        "fingerprint": fingerprint(frame, sources),
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "splink": linker.misc.save_model_to_json(),
    }


def load_model(path: str | Path) -> dict[str, Any]:
    """Read and check a model file written by :func:`train_model`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"identity model file not found: {path}")
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("format") != MODEL_FORMAT or "splink" not in document:
        raise ValueError(f"{path} is not an identity model file ({MODEL_FORMAT})")
    if document.get("model_version") != MODEL_VERSION:
        raise ValueError(
            f"identity model {path} has version {document.get('model_version')}, this code "
            f"expects {MODEL_VERSION}; retrain with identity.train()")
    if not _valid_prior(document["splink"].get("probability_two_random_records_match")):
        raise ValueError(f"identity model {path} has no usable match prior "
                         "(probability_two_random_records_match must be in (0, 1)); retrain "
                         "with identity.train()")
    if not isinstance(document.get("blocking"), dict) or not document["blocking"].get("rules"):
        raise ValueError(f"identity model {path} holds no blocking rules; retrain with "
                         "identity.train()")
    if not isinstance(document.get("term_frequencies"), dict):
        raise ValueError(f"identity model {path} holds no term frequencies; retrain with "
                         "identity.train()")
    names = [c.get("output_column_name") for c in document["splink"].get("comparisons", [])]
    if tuple(names) != COMPARISON_NAMES:
        raise ValueError(f"identity model {path} has comparisons {names}, expected "
                         f"{list(COMPARISON_NAMES)}; retrain with identity.train()")
    return document


class TooFewRecords(ValueError):
    """Fewer named nodes than :data:`MIN_SPLINK_NODES`: nothing to learn a model from."""


def train_model(nodes: pd.DataFrame, config: IdentityConfig,
                path: str | Path | None = None) -> dict[str, Any]:
    """Train on the named nodes; write the model document to ``path`` if given."""
    frame = splink_input(nodes)
    if len(frame) < MIN_SPLINK_NODES:
        raise TooFewRecords(f"need at least {MIN_SPLINK_NODES} named records to train, "
                         f"got {len(frame)}")
    con = duckdb.connect(":memory:")
    try:
        with _quiet_splink():
            document = _trained(_register(frame, con), frame, config, node_sources(nodes),
                                con)
    finally:
        con.close()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, sort_keys=False), encoding="utf-8")
        log.info("identity splink: model written (%d training nodes)", len(frame))
    return document


def _trained(sdf: SplinkDataFrame, frame: pd.DataFrame, config: IdentityConfig,
             sources: list[str], con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Train, and choose the blocking rules on the training data: they are part of the model,
    so records arriving later never change which pairs the existing ones are compared in."""
    linker = Linker(sdf, settings_creator(), log_level=None)
    _train_linker(linker, frame, config)
    document = _model_document(linker, frame, sources)
    document["term_frequencies"] = term_frequency_tables(con, sdf.physical_name,
                                                         _tf_columns(linker))
    blocking = choose_blocking(con, sdf.physical_name, len(frame),
                               config.blocking_comparisons_per_record)
    document["blocking"] = {"rules": list(blocking.rules), "dropped": blocking.dropped}
    return document


def model_blocking(document: dict[str, Any]) -> Blocking | None:
    """The blocking rules a model was trained with (None: an older document without them)."""
    stored = document.get("blocking")
    if not stored:
        return None
    return Blocking(tuple(stored["rules"]), dict(stored.get("dropped", {})))


def empty_splink_edges() -> pd.DataFrame:
    return pd.DataFrame({"node_l": pd.Series(dtype=np.int64),
                         "node_r": pd.Series(dtype=np.int64),
                         "match_probability": pd.Series(dtype=float),
                         "match_weight": pd.Series(dtype=float),
                         "gamma": pd.Series(dtype=object),
                         "shared_contact": pd.Series(dtype=bool)})


@dataclass
class Prediction:
    """Splink's edges above the threshold (``node_l, node_r, match_probability,
    match_weight, gamma, shared_contact``), the model document used (None: Splink did not
    run) and the blocking rules predict() ran."""

    edges: pd.DataFrame
    model: dict[str, Any] | None
    blocking: Blocking | None


# A shared e-mail, phone or address: household members share these, and Splink, which
# counts them as independent evidence, then over-rates a pair of different people.  One
# address is one postcode and the same street give or take a typo with no different house
# number, or one house number with the same postcode or street (one side's other part is
# often left empty).
SHARED_CONTACT_SQL = (
    'coalesce("email_l" = "email_r", false) OR coalesce("phone_l" = "phone_r", false) OR '
    'coalesce("postcode_l" = "postcode_r" AND jaro_winkler_similarity("street_l", "street_r")'
    ' >= 0.88 AND coalesce("house_number_l" = "house_number_r", true), false) OR '
    'coalesce("house_number_l" = "house_number_r" AND ("postcode_l" = "postcode_r" OR '
    'jaro_winkler_similarity("street_l", "street_r") >= 0.88), false)')


FRESH_COLUMN = "_fresh"


def _only_fresh(rule: str) -> str:
    """A blocking rule narrowed to pairs with at least one fresh node."""
    return f'({rule}) AND (l."{FRESH_COLUMN}" OR r."{FRESH_COLUMN}")'


def predict_edges(nodes: pd.DataFrame, config: IdentityConfig,
                  model: dict[str, Any] | None = None,
                  fresh: np.ndarray | None = None) -> Prediction:
    """Score candidate pairs of named nodes; return edges above the threshold.

    Trains in memory when ``model`` (a loaded model document) is None.  The blocking rules
    are the model's (chosen on its training data, :func:`choose_blocking`).  ``fresh`` (a
    mask by node id) scores only the pairs with at least one fresh node: the same pairs, with
    the same scores, that a run over all nodes finds for them (:mod:`identity.state`).
    """
    frame = splink_input(nodes)
    if fresh is not None:
        if model is None:
            raise ValueError("scoring only fresh nodes needs a model file (a model trained "
                             "on this data would score every pair differently)")
        frame[FRESH_COLUMN] = fresh[frame["unique_id"].to_numpy()]
        if not frame[FRESH_COLUMN].any():
            return Prediction(empty_splink_edges(), model, model_blocking(model))
        if frame[FRESH_COLUMN].all():
            frame = frame.drop(columns=FRESH_COLUMN)
    if len(frame) < MIN_SPLINK_NODES and model is None:
        log.info("identity splink: skipped, only %d named nodes", len(frame))
        return Prediction(empty_splink_edges(), None, None)
    if len(frame) < 2:
        return Prediction(empty_splink_edges(), model, None)
    con = duckdb.connect(":memory:")
    try:
        with _quiet_splink():
            sdf = _register(frame, con)
            document = model if model is not None else \
                _trained(sdf, frame, config, node_sources(nodes), con)
            blocking = model_blocking(document)
            if blocking is None:
                raise ValueError("identity model document holds no blocking rules")
            rules = [_only_fresh(rule) for rule in blocking.rules] \
                if FRESH_COLUMN in frame.columns else list(blocking.rules)
            settings = {**document["splink"], "blocking_rules_to_generate_predictions": [
                {"blocking_rule": rule, "sql_dialect": "duckdb"} for rule in rules]}
            linker = Linker(sdf, settings, log_level=None)
            _register_term_frequencies(linker, con, sdf.physical_name,
                                       document["term_frequencies"])
            predictions = linker.inference.predict(
                threshold_match_probability=config.match_threshold, warning_mode="never")
            gamma_cols = [f"gamma_{name}" for name in COMPARISON_NAMES]
            select = ", ".join(["unique_id_l", "unique_id_r", "match_probability",
                                "match_weight", *gamma_cols,
                                f"({SHARED_CONTACT_SQL}) AS shared_contact"])
            result = con.sql(f"SELECT {select} FROM {predictions.physical_name}").df()
    finally:
        con.close()
    if blocking.dropped:
        log.info("identity splink: blocking rules left out for creating more than %s "
                 "comparisons per record: %s", config.blocking_comparisons_per_record,
                 "; ".join(blocking.dropped))
    if result.empty:
        return Prediction(empty_splink_edges(), document, blocking)
    # few distinct level combinations: encode each once
    combos, combo_of_row = np.unique(result[gamma_cols].astype(int).to_numpy(), axis=0,
                                     return_inverse=True)
    encoded = np.array([json.dumps(dict(zip(COMPARISON_NAMES, map(int, row), strict=True)))
                        for row in combos], dtype=object)
    gamma_json = encoded[combo_of_row.reshape(-1)]
    left = result["unique_id_l"].to_numpy(dtype=np.int64)
    right = result["unique_id_r"].to_numpy(dtype=np.int64)
    edges = pd.DataFrame({
        "node_l": np.minimum(left, right), "node_r": np.maximum(left, right),
        "match_probability": result["match_probability"].astype(float).round(10),
        "match_weight": result["match_weight"].astype(float).round(8),
        "gamma": gamma_json,
        "shared_contact": result["shared_contact"].fillna(False).to_numpy(dtype=bool),
    })
    log.info("identity splink: %d scored nodes, %d edges above %.3f", len(frame), len(edges),
             config.match_threshold)
    return Prediction(edges, document, blocking)
