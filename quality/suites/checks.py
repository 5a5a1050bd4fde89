"""The building blocks of every suite: a check (one frame, its expectations) and a layer plan.

Each check becomes one GX suite, validation definition and checkpoint in :mod:`quality.gate`;
the frame's index holds the example label of each row, never a column value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from quality.gx import Expectation, FailureSeverity, gx

#: Expectation ``meta`` keys a failure report reads: the quality.yml key deciding the limit,
#: and what the observed value was compared with (no personal data: figures and names only).
SETTING_META = "setting"
CONTEXT_META = "context"


def setting(key: str, context: str | None = None, file: str = "quality.yml") -> dict[str, str]:
    """``meta`` for an expectation whose limit ``key`` of ``file`` sets, so its failure names
    what to change; ``context`` says what the observed value was judged against."""
    return {SETTING_META: f"{file} {key}", **({CONTEXT_META: context} if context else {})}


@dataclass
class CheckSpec:
    """One GX validation: a frame of one table or derived query and its expectations."""

    layer: str
    name: str  # GX suite / validation definition / checkpoint name, unique per run
    table: str  # the warehouse table the check speaks about
    frame: pd.DataFrame  # index = example label of each row (never PII)
    expectations: list[Expectation]
    #: examples for aggregate expectations, by column (e.g. rejected record keys)
    preset_examples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def build_suite(self) -> gx.ExpectationSuite:
        """A fresh suite; expectations are copied so a spec can be validated twice."""
        suite = gx.ExpectationSuite(name=self.name, meta={"layer": self.layer, "table": self.table})
        for expectation in self.expectations:
            suite.add_expectation(expectation.copy(deep=True))
        return suite


@dataclass
class LayerPlan:
    """All checks of one layer plus notes on checks that were skipped and why."""

    layer: str
    checks: list[CheckSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def schema_check(layer: str, required: Iterable[tuple[str, bool]]) -> CheckSpec:
    """Tables and columns a layer needs, as a frame GX can validate (and Data Docs show)."""
    objects = list(required)
    frame = pd.DataFrame(
        {"present": [present for _, present in objects]},
        index=pd.Index([name for name, _ in objects]),
    )
    return flag_check(
        layer, f"{layer}.required_objects", "catalog", frame, column="present", expected=True,
        notes="Tables and columns this layer's checks need; failing examples name the "
        "missing ones.",
    )


def flag_check(
    layer: str, name: str, table: str, frame: pd.DataFrame, *, column: str, expected: bool,
    notes: str,
) -> CheckSpec:
    """Every row's boolean ``column`` must be ``expected``; failing rows are named by label."""
    return CheckSpec(layer, name, table, frame, [
        gx.expectations.ExpectColumnValuesToBeInSet(
            column=column, value_set=[expected], notes=notes
        )
    ])


def max_check(
    layer: str, name: str, table: str, frame: pd.DataFrame, *, column: str, max_value: float,
    notes: str, min_value: float = 0.0, severity: FailureSeverity = FailureSeverity.CRITICAL,
    meta: dict[str, str] | None = None,
) -> CheckSpec:
    """The largest value of ``column`` must lie in ``min_value..max_value``; ``meta`` from
    :func:`setting` names the quality.yml key behind ``max_value``."""
    return CheckSpec(layer, name, table, frame, [
        gx.expectations.ExpectColumnMaxToBeBetween(
            column=column, min_value=min_value, max_value=max_value, severity=severity,
            notes=notes, meta=meta,
        )
    ])


