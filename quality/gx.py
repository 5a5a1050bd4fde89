"""Great Expectations, imported in this one place, with its analytics switched off first.

The machines running the gate have no network, so GX must never try to phone home; it reads
``GX_ANALYTICS_ENABLED`` when it is imported. Every gate module takes GX from here, and only
when it runs checks, so importing :mod:`quality` stays cheap for the CLI and DAG parsing.
GX announces every class it registers (some 200 INFO lines per import): its own logger is
kept at WARNING, so a task log shows the gate's result, not GX's bookkeeping.
"""

import logging
import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
logging.getLogger("great_expectations").setLevel(logging.WARNING)

import great_expectations as gx  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
)
from great_expectations.expectations import Expectation  # noqa: E402
from great_expectations.expectations.metadata_types import FailureSeverity  # noqa: E402

__all__ = [
    "DataContextConfig",
    "Expectation",
    "ExpectationSuiteIdentifier",
    "FailureSeverity",
    "InMemoryStoreBackendDefaults",
    "ProgressBarsConfig",
    "RunIdentifier",
    "gx",
]
