"""The segment language's allow-list and syntax tree, and the error every segment problem raises.

A rule may name only the columns in ``FIELDS`` (profile attributes and traits), compare them
with the operators in ``COMPARISONS`` and literals of the field's kind: identifiers in the SQL
come only from here, values are only ever bound as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from core.config import ConfigError


class SegmentError(ConfigError):
    """A segment definition is invalid, or a segment is unknown or cannot be selected; raised
    before any export is written.

    Problems in ``segments.yml`` name the file and key; a segment asked for by name (command
    line, API) has no file, and its message is the problem alone.
    """

    def __init__(self, problem: str | Iterable[tuple[str, str]], file: str | Path = "",
                 key: str = "") -> None:
        super().__init__(file, [(key, problem)] if isinstance(problem, str) else problem)

    def lines(self) -> list[str]:
        if self.file:
            return super().lines()
        return [f"{key}: {problem}" if key else problem for key, problem in self.problems]


FieldKind = Literal["text", "number", "date"]
PROFILES = "main.dim_profiles"
TRAITS = "main.dim_profile_traits"


@dataclass(frozen=True)
class Field:
    table: str
    kind: FieldKind


FIELDS: dict[str, Field] = {
    **{
        name: Field(PROFILES, "text")
        for name in ("first_name", "last_name", "email", "phone", "street", "house_number",
                     "postcode", "city", "country", "customer_number")
    },
    "birth_date": Field(PROFILES, "date"),
    **{
        name: Field(TRAITS, "number")
        for name in ("recency_days", "frequency", "monetary", "lifetime_value", "churn_score")
    },
    "churn_risk": Field(TRAITS, "text"),
    "moved_at": Field(TRAITS, "date"),
    "new_baby_at": Field(TRAITS, "date"),
}
"""The only columns a rule may name: profile attributes and traits, never free SQL."""

NAME_PATTERN = "[a-z][a-z0-9_]{0,62}"
"""Segment and dbt model names, matched whole (``fullmatch``: ``$`` would let "x\\n" pass)."""

COMPARISONS = {"=": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
"""Comparison operators a rule may use, and their SQL."""

Value = str | int | float | date


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: Value


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class Between:
    field: str
    low: Value
    high: Value
    negated: bool


@dataclass(frozen=True)
class IsNull:
    field: str
    negated: bool


@dataclass(frozen=True)
class BoolOp:
    op: Literal["AND", "OR"]
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | InList | Between | IsNull | BoolOp | Not
