"""Probabilistic edges between person nodes with Splink 5 on a private DuckDB connection.

Only nodes carrying a name go in: records holding just an e-mail, phone, card or cookie have
nothing for a Fellegi-Sunter model to weigh and are attached by the rules instead.  Splink
always gets its *own* in-memory DuckDB connection: inside dbt-duckdb the session handle is a
cursor wrapper Splink cannot drive, and a private connection keeps Splink's scratch tables out
of the warehouse.

Model files are JSON: ``{"format", "model_version", "fingerprint", "trained_at", "splink"}``
where ``splink`` is Splink's own settings dict and ``fingerprint`` identifies the node data
the model was trained on (row count + content hash), for lineage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.exceptions import EMTrainingException

from identity.config import IdentityConfig

if TYPE_CHECKING:
    from splink.internals.comparison_level_creator import ComparisonLevelCreator

log = logging.getLogger(__name__)

MODEL_FORMAT = "cdp-identity-splink"
MODEL_VERSION = 2  # bump when the comparisons / node columns below change
SPLINK_COLUMNS: tuple[str, ...] = (
    "first_name", "last_name", "birth_date", "email", "phone", "street", "house_number",
    "postcode", "city",
)
COMPARISON_NAMES: tuple[str, ...] = (
    "first_name", "last_name", "birth_date", "email", "phone", "address",
)
MIN_SPLINK_NODES = 30  # below this there is nothing to learn from; rules only


def _address_comparison() -> cl.CustomComparison:
    """One comparison for the whole address: its parts are far from independent."""
    def level(sql: str, label: str, **extra: Any) -> dict[str, Any]:
        return {"sql_condition": sql, "label_for_charts": label, **extra}

    return cl.CustomComparison(
        output_column_name="address",
        comparison_description="street, house number, postcode, city",
        comparison_levels=[
            level('("postcode_l" IS NULL AND "city_l" IS NULL) OR '
                  '("postcode_r" IS NULL AND "city_r" IS NULL)', "address missing",
                  is_null_level=True),
            level('"postcode_l" = "postcode_r" AND "street_l" = "street_r" '
                  'AND "house_number_l" = "house_number_r"', "same full address"),
            level('"postcode_l" = "postcode_r" AND '
                  'jaro_winkler_similarity("street_l", "street_r") >= 0.88',
                  "same postcode, similar street"),
            level('"postcode_l" = "postcode_r"', "same postcode"),
            level('jaro_winkler_similarity("city_l", "city_r") >= 0.92', "same city"),
            level("ELSE", "different address"),
        ],
    )


def _name_comparison(column: str, other: str) -> cl.CustomComparison:
    """Splink's name comparison (exact with term frequencies, Jaro-Winkler bands) plus a
    level for first and last name entered the wrong way round."""
    left, right = f'"{column}_l"', f'"{column}_r"'
    levels: list[ComparisonLevelCreator | dict[str, Any]] = [
        {"sql_condition": f"{left} IS NULL OR {right} IS NULL",
         "label_for_charts": f"{column} missing", "is_null_level": True},
        {"sql_condition": f"{left} = {right}", "label_for_charts": f"same {column}",
         "tf_adjustment_column": column, "tf_adjustment_weight": 1.0},
        {"sql_condition": f'{left} = "{other}_r" AND "{other}_l" = {right}',
         "label_for_charts": "first and last name swapped"},
    ]
    for threshold in (0.92, 0.88, 0.7):
        levels.append({
            "sql_condition": f"jaro_winkler_similarity({left}, {right}) >= {threshold}",
            "label_for_charts": f"{column} Jaro-Winkler >= {threshold}"})
    levels.append({"sql_condition": "ELSE", "label_for_charts": f"different {column}"})
    return cl.CustomComparison(output_column_name=column, comparison_levels=levels,
                               comparison_description=f"{column} (names folded, nicknames "
                                                      "mapped)")


def _email_comparison() -> cl.CustomComparison:
    """Exact address, same local part at another provider, or a typo at the same provider.

    No general fuzzy level: local parts are built from names, so "similar e-mail" mostly
    re-counts the name evidence and made namesakes look like one person.  A difference only
    in digits (``anna.berg`` / ``anna.berg2``) is a provider-level name clash - two people -
    so the typo level requires the letters to differ.
    """
    local_l, local_r = "split_part(\"email_l\", '@', 1)", "split_part(\"email_r\", '@', 1)"
    domain_l, domain_r = "split_part(\"email_l\", '@', 2)", "split_part(\"email_r\", '@', 2)"
    letters_l = f"regexp_replace({local_l}, '[0-9]', '', 'g')"
    letters_r = f"regexp_replace({local_r}, '[0-9]', '', 'g')"
    return cl.CustomComparison(
        output_column_name="email",
        comparison_description="e-mail address",
        comparison_levels=[
            {"sql_condition": '"email_l" IS NULL OR "email_r" IS NULL',
             "label_for_charts": "email missing", "is_null_level": True},
            {"sql_condition": '"email_l" = "email_r"', "label_for_charts": "same email",
             "tf_adjustment_column": "email", "tf_adjustment_weight": 1.0},
            {"sql_condition": f"{local_l} = {local_r}", "label_for_charts": "same local part"},
            {"sql_condition": f"{domain_l} = {domain_r} AND damerau_levenshtein({local_l}, "
                              f"{local_r}) <= 2 AND {letters_l} <> {letters_r}",
             "label_for_charts": "typo in local part, same provider"},
            {"sql_condition": "ELSE", "label_for_charts": "different email"},
        ],
    )


def settings_creator() -> SettingsCreator:
    """The (untrained) model: comparisons and the blocking rules bounding predict()."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            _name_comparison("first_name", "last_name"),
            _name_comparison("last_name", "first_name"),
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
            _email_comparison(),
            cl.LevenshteinAtThresholds("phone", [2]),
            _address_comparison(),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "last_name"),
            block_on("birth_date"),
            block_on("email"),
            block_on("phone"),
            block_on("last_name", "postcode"),
            block_on("first_name", "postcode"),
            block_on("last_name", "city"),
            block_on("first_name", "city"),
            block_on("substr(first_name, 1, 2)", "substr(last_name, 1, 2)",
                     "year(birth_date)"),
            block_on("regexp_extract(email, '^[^@]+')"),
        ],
        retain_matching_columns=True,  # Splink 5 only keeps gamma_* columns with this on
        retain_intermediate_calculation_columns=False,
        probability_two_random_records_match=1e-4,
    )


def splink_input(nodes: pd.DataFrame) -> pd.DataFrame:
    """Named nodes in the shape the model expects (``unique_id`` = node id)."""
    named = nodes.loc[nodes["has_name"]]
    frame = pd.DataFrame({"unique_id": named["node_id"].to_numpy(dtype=np.int64)})
    for column in SPLINK_COLUMNS:
        values = named[column]
        if column != "birth_date":
            values = values.astype("string")
        frame[column] = values.to_numpy() if column != "birth_date" else values.array
    return frame.sort_values("unique_id", kind="stable").reset_index(drop=True)


def fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    """Row count + content hash of the training frame (order-independent)."""
    body = frame.drop(columns=["unique_id"], errors="ignore").astype("string")
    hashes = np.sort(pd.util.hash_pandas_object(body, index=False).to_numpy())
    digest = hashlib.sha256(hashes.tobytes()).hexdigest()
    return {"rows": int(len(frame)), "sha256": digest}


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


def _linker(frame: pd.DataFrame, settings: SettingsCreator | dict[str, Any],
            con: duckdb.DuckDBPyConnection) -> Linker:
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(frame, table_name="identity_nodes")
    return Linker(sdf, settings, log_level=None)


# Deterministic rules for the match prior: pairs they admit are (almost) certainly one person.
PRIOR_RULES: tuple[str, ...] = (
    "l.email = r.email AND l.first_name = r.first_name",
    "l.phone = r.phone AND l.first_name = r.first_name",
    "l.first_name = r.first_name AND l.last_name = r.last_name "
    "AND l.birth_date = r.birth_date",
)
PRIOR_RULES_RECALL = 0.8
# Fewer pairs than this admitted by PRIOR_RULES is no evidence for a prior (a source without
# e-mails, phones or birth dates admits none): fall back to ``config.default_match_prior``.
MIN_PRIOR_PAIRS = 10
# EM sessions in order.  The fallback sessions only run when the main ones left a name
# comparison untrained (no birth dates and no e-mails to block on), so data that trains
# the main sessions gets exactly the same model as before.
EM_SESSIONS: tuple[tuple[str, ...], ...] = (("first_name", "last_name"), ("birth_date",),
                                            ("email",))
EM_FALLBACK_SESSIONS: tuple[tuple[str, ...], ...] = (("postcode",), ("city",))


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
            list(PRIOR_RULES), recall=PRIOR_RULES_RECALL)
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
        log.warning("identity splink: EM session on %s failed (%s), skipped",
                    "+".join(columns), type(exc).__name__)
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
    log.info("identity splink: match prior %s", how)
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


def _model_document(linker: Linker, frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "format": MODEL_FORMAT,
        "model_version": MODEL_VERSION,
        "fingerprint": fingerprint(frame),
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
            linker = _linker(frame, settings_creator(), con)
            _train_linker(linker, frame, config)
            document = _model_document(linker, frame)
    finally:
        con.close()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, sort_keys=False), encoding="utf-8")
        log.info("identity splink: model written (%d training nodes)", len(frame))
    return document


def empty_splink_edges() -> pd.DataFrame:
    return pd.DataFrame({"node_l": pd.Series(dtype=np.int64),
                         "node_r": pd.Series(dtype=np.int64),
                         "match_probability": pd.Series(dtype=float),
                         "match_weight": pd.Series(dtype=float),
                         "gamma": pd.Series(dtype=object)})


def predict_edges(nodes: pd.DataFrame, config: IdentityConfig,
                  model: dict[str, Any] | None = None
                  ) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """Score candidate pairs of named nodes; return edges above the threshold.

    Trains in memory when ``model`` (a loaded model document) is None.  Returns the edges
    (``node_l, node_r, match_probability, match_weight, gamma``) and the model document used.
    """
    frame = splink_input(nodes)
    empty = empty_splink_edges()
    if len(frame) < MIN_SPLINK_NODES and model is None:
        log.info("identity splink: skipped, only %d named nodes", len(frame))
        return empty, None
    if len(frame) < 2:
        return empty, model
    con = duckdb.connect(":memory:")
    try:
        with _quiet_splink():
            if model is None:
                linker = _linker(frame, settings_creator(), con)
                _train_linker(linker, frame, config)
                document = _model_document(linker, frame)
            else:
                linker = _linker(frame, dict(model["splink"]), con)
                document = model
            predictions = linker.inference.predict(
                threshold_match_probability=config.match_threshold, warning_mode="never")
            gamma_cols = [f"gamma_{name}" for name in COMPARISON_NAMES]
            select = ", ".join(
                ["unique_id_l", "unique_id_r", "match_probability", "match_weight", *gamma_cols])
            result = con.sql(f"SELECT {select} FROM {predictions.physical_name}").df()
    finally:
        con.close()
    if result.empty:
        return empty, document
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
    })
    log.info("identity splink: %d scored nodes, %d edges above %.3f", len(frame), len(edges),
             config.match_threshold)
    return edges, document
