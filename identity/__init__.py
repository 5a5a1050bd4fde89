"""Identity resolution: link source records of one person into a profile.

Public API::

    from identity import resolve, train, evaluate, IdentityConfig, load_config
    result = resolve(records_df, load_config())      # -> IdentityResult
    result.clusters  # source, record_id, profile_id
    result.edges     # record-level evidence (materialised as int_identity__links)

Inside the build, profiles are derived from the merged edges
(:func:`identity.clustering.components_from_edges`) and given persistent ids
(:func:`identity.stable_ids.assign_persistent_ids`); manual corrections come from
:func:`identity.overrides.load_overrides`, the model version from
:func:`identity.model_store.plan_model`.
"""

from identity.arrow_memory import prefer_jemalloc
from identity.config import IdentityConfig, IdentityConfigError, load_config
from identity.evaluate import Metrics, evaluate
from identity.normalise import normalise_records
from identity.resolve import IdentityResult, profile_id_for, resolve, train

__all__ = [
    "IdentityConfig",
    "IdentityConfigError",
    "IdentityResult",
    "Metrics",
    "evaluate",
    "load_config",
    "normalise_records",
    "profile_id_for",
    "resolve",
    "train",
]

prefer_jemalloc()
