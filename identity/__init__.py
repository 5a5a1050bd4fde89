"""Identity resolution: link source records of one person into a profile.

Public API::

    from identity import resolve, train, evaluate, IdentityConfig, load_config
    result = resolve(records_df, load_config(path))  # -> IdentityResult
    result.clusters  # source, record_id, profile_id
    result.edges     # record-level evidence (materialised as int_identity__links)

Inside the build, records are normalised once (``int_identity__normalised``), linked by
:func:`identity.resolve.link` (``int_identity__links``, with the model file the training
step chose: :func:`identity.training.ensure_model`), and profiles derived from the merged
edges (:func:`identity.clustering.components_from_edges`) with persistent ids
(:func:`identity.stable_ids.assign_persistent_ids`); manual corrections come from
:func:`identity.overrides.load_overrides`.
"""

from identity.config import IdentityConfig, IdentityConfigError, load_config
from identity.evaluate import Metrics, evaluate
from identity.normalise import normalise_records
from identity.resolve import IdentityResult, Linkage, link, profile_id_for, resolve, train

__all__ = [
    "IdentityConfig",
    "IdentityConfigError",
    "IdentityResult",
    "Linkage",
    "Metrics",
    "evaluate",
    "link",
    "load_config",
    "normalise_records",
    "profile_id_for",
    "resolve",
    "train",
]
