"""Identity resolution: link source records of one person into a profile.

Public API::

    from identity import resolve, train, evaluate, IdentityConfig, load_config
    result = resolve(records_df, load_config())      # -> IdentityResult
    result.clusters  # source, record_id, profile_id
"""

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
