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
from identity.model_store import plan_model, save_versioned
from identity.normalise import as_normalised
from identity.resolve import train_normalised
from identity.splink_model import TooFewRecords

log = logging.getLogger(__name__)

NORMALISED_TABLE = "intermediate.int_identity__normalised"


@dataclass(frozen=True)
class ModelChoice:
    """The model file the links model loads (None: estimated in memory, or Splink skipped)
    and what this step did about it: ``reused`` an existing file or ``trained``."""

    path: Path | None
    action: str


def read_normalised(build_db: Path) -> pd.DataFrame:
    """The build's normalised identity records, in the dtypes resolution expects."""
    con = duckdb.connect(str(build_db), read_only=True)
    try:
        return as_normalised(con.sql(f"select * from {NORMALISED_TABLE}").to_arrow_table())
    finally:
        con.close()


def ensure_model(build_db: Path, config: IdentityConfig, model_dir: Path, base: Path,
                 overrides: pd.DataFrame | None = None) -> ModelChoice:
    """Choose the model per ``config.model`` (``base``: where relative model paths start)
    and, when ``auto`` finds no version in ``model_dir``, train one on the normalised records
    of ``build_db`` (``overrides`` keep the nodes they name apart, as linking will) and save
    it.  Too few named records, or Splink switched off: nothing is trained."""
    plan = plan_model(config, model_dir, base)
    if plan.save_trained_to is None or not config.use_splink:
        return ModelChoice(plan.path, plan.action)
    try:
        document = train_normalised(read_normalised(build_db), config, overrides=overrides)
    except TooFewRecords as reason:
        log.info("identity training skipped: %s", reason)
        return ModelChoice(None, plan.action)
    return ModelChoice(save_versioned(document, plan.save_trained_to), "trained")
