"""The trained Splink model as a versioned artefact.

Training is its own job (``cdp identity train``): it writes
``model-<yyyymmddHHMMSS>-<fingerprint8>.json`` into the model folder, never overwriting an
earlier version, so a run can always say which model produced its edges and a bad model can be
rolled back by deleting one file.  Daily runs pick the model per ``model`` in
``config/identity.yml``:

* ``auto`` (default): the newest model in the folder, if it fits this run's data
  (:func:`misfit`: the same sources, the same fields filled, a similar size); when there is
  none, or it was trained on other data, the pipeline's training step
  (:func:`identity.training.ensure_model`, before the links model runs) trains on this run's
  data and saves a new version (the run's report says ``trained`` and why).
* ``train``: re-estimate in memory on every run and save nothing (experiments).
* a file path (relative to the repository root), e.g. the shipped
  ``identity/models/demo_default.json``: always that model; a run whose data it does not fit
  is refused, naming the model and the difference.

The shipped demo model is *not* the default: it was estimated on synthetic data, and m/u
probabilities learned there would silently mis-weight a real customer base.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from identity.config import IdentityConfig

MODEL_GLOB = "model-*.json"


def model_file_name(document: dict[str, Any], now: dt.datetime | None = None) -> str:
    """``model-<UTC yyyymmddHHMMSS>-<first 8 hex of the training data fingerprint>.json``."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M%S")
    return f"model-{stamp}-{document['fingerprint']['sha256'][:8]}.json"


def save_versioned(document: dict[str, Any], directory: Path) -> Path:
    """Write ``document`` as a new version in ``directory`` (never overwrites)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / model_file_name(document)
    if path.exists():  # same second, same data: the existing file is this model
        return path
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def newest_model(directory: Path) -> Path | None:
    """Latest version by name (names start with a sortable UTC timestamp)."""
    versions = sorted(directory.glob(MODEL_GLOB)) if directory.is_dir() else []
    return versions[-1] if versions else None


@dataclass(frozen=True)
class ModelPlan:
    """What a run does about the model: load ``path``, or train (and maybe save)."""

    path: Path | None
    save_trained_to: Path | None

    @property
    def action(self) -> str:
        return "reused" if self.path is not None else "trained"


def plan_model(config: IdentityConfig, directory: Path, base: Path) -> ModelPlan:
    """Resolve ``config.model`` into a :class:`ModelPlan`: ``directory`` holds the versions,
    a relative model file path is taken from ``base`` (the repository root)."""
    if config.model == "train":
        return ModelPlan(None, None)
    if config.model == "auto":
        newest = newest_model(directory)
        return ModelPlan(newest, None if newest else directory)
    path = Path(config.model)
    path = path if path.is_absolute() else base / path
    if not path.exists():
        raise FileNotFoundError(f"identity model {path} (config key 'model') does not exist")
    return ModelPlan(path, None)


#: A reused model fits data with between a third and three times its training rows.
MAX_SIZE_RATIO = 3.0
#: A field counts as filled in data where at least this share of scored records holds it;
#: a model trained where it was empty (below the lower share) knows nothing about it.
FILLED_SHARE, EMPTY_SHARE = 0.05, 0.01


def misfit(document: dict[str, Any], current: dict[str, Any]) -> str | None:
    """Why a model trained on ``document['fingerprint']`` does not fit data with fingerprint
    ``current`` (None: it fits).  Names sources and fields, never values."""
    trained = document.get("fingerprint", {})
    if set(trained.get("sources", [])) != set(current["sources"]):
        return (f"trained on sources {sorted(trained.get('sources', []))}, this data comes "
                f"from {sorted(current['sources'])}")
    shares = trained.get("fields", {})
    for field, share in current["fields"].items():
        before = shares.get(field, 0.0)
        if (share >= FILLED_SHARE and before < EMPTY_SHARE) or \
                (before >= FILLED_SHARE and share < EMPTY_SHARE):
            return (f"field {field} is filled in {share:.0%} of the records to score but was "
                    f"in {before:.0%} of the training records")
    rows, now = max(int(trained.get("rows", 0)), 1), max(int(current["rows"]), 1)
    if not 1 / MAX_SIZE_RATIO <= now / rows <= MAX_SIZE_RATIO:
        return f"trained on {rows:,} scored records, this data has {now:,}"
    return None
