"""Quality gate: Great Expectations suites per layer; nothing is published unless they pass.

Public API lives in :mod:`quality.gate` (``run_gate``, ``GateResult``, ``QualityGateFailed``),
:mod:`quality.exports` (``validate_export``, for exporters) and :mod:`quality.thresholds`
(``load_thresholds``, ``Thresholds``). Great Expectations is imported only through
:mod:`quality.gx`, when checks run, so the CLI and DAG parsing do not pay for it.
"""
