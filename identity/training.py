"""The build's training step: a Splink model file for the links model, decided and written
here, between ``int_identity__normalised`` and ``int_identity__links`` (never inside dbt).

``model: auto`` with no version in the model folder trains on the build's normalised records
and saves the first version; every other setting only names the file to use (or none, for
``model: train``, which re-estimates in memory inside the links model and saves nothing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from identity.config import IdentityConfig
from identity.model_store import misfit, plan_model, save_versioned
from identity.normalise import as_normalised
from identity.resolve import data_fingerprint, train_normalised
from identity.rules import NAME_COLUMNS
from identity.splink_model import TooFewRecords, load_model

log = logging.getLogger(__name__)

NORMALISED_TABLE = "intermediate.int_identity__normalised"


@dataclass(frozen=True)
class ModelChoice:
    """The model file the links model loads (None: estimated in memory, or Splink skipped)
    and what this step did about it: ``reused`` an existing file or ``trained``."""

    path: Path | None
    action: str


def read_normalised(build_db: Path, named_only: bool = False) -> pd.DataFrame:
    """The build's normalised identity records, in the dtypes resolution expects.

    ``named_only``: only those holding a name.  A model is trained on, and its fit judged by,
    the named nodes only, and only named records make them (a name is part of a node's
    identity values), so training and the fit check need not read the rest - most of a
    CDP's records are events (1M demo records: 1/6 of the rows, the fit check of every run
    7.5 s -> 1.5 s)."""
    where = " where " + " or ".join(f"{column} is not null" for column in NAME_COLUMNS) \
        if named_only else ""
    con = duckdb.connect(str(build_db), read_only=True)
    try:
        return as_normalised(con.sql(f"select * from {NORMALISED_TABLE}{where}").to_arrow_table())
    finally:
        con.close()


def ensure_model(build_db: Path, config: IdentityConfig, model_dir: Path, base: Path,
                 overrides: pd.DataFrame | None = None) -> ModelChoice:
    """Choose the model per ``config.model`` (``base``: where relative model paths start)
    and check that it fits the normalised records of ``build_db``: ``auto`` trains and saves
    a new version when there is none or the newest was trained on other data (``overrides``
    keep the nodes they name apart, as linking will); a pinned file that does not fit is
    refused.  Too few named records, or Splink switched off: nothing is trained."""
    plan = plan_model(config, model_dir, base)
    if plan.path is None and plan.save_trained_to is None or not config.use_splink:
        return ModelChoice(plan.path, plan.action)
    norm = read_normalised(build_db, named_only=True)
    why = "no model yet"
    if plan.path is not None:
        try:
            reason = misfit(load_model(plan.path), data_fingerprint(norm, overrides))
        except ValueError as unusable:  # another code version's file, say
            if config.model != "auto":
                raise
            reason = f"unusable ({unusable})"
        if reason is None:
            return ModelChoice(plan.path, "reused")
        if config.model != "auto":
            raise ValueError(f"identity model {plan.path} (identity.yml model) does not fit "
                             f"this data: {reason}; retrain with `cdp identity train` or set "
                             "model: auto")
        why = f"newest model {plan.path.name} does not fit: {reason}"
    try:
        document = train_normalised(norm, config, overrides=overrides)
    except TooFewRecords as too_few:
        log.info("identity training skipped: %s", too_few)
        return ModelChoice(None, "trained")
    log.info("identity training: %s; trained a new version", why)
    return ModelChoice(save_versioned(document, model_dir), f"trained ({why})")
