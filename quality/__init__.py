"""Quality gate: Great Expectations suites per layer; nothing is published unless they pass.

Public API lives in :mod:`quality.gate` (``run_gate``, ``GateResult``, ``QualityGateFailed``),
:mod:`quality.exports` (``validate_export``, for exporters) and :mod:`quality.thresholds`
(``load_thresholds``, ``Thresholds``). This module stays
import-light so the CLI and DAG parsing do not pay for importing Great Expectations.
"""

import os

# The machines running the gate have no network; GX must never try to phone home.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
