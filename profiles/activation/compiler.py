"""SQL for a checked syntax tree: identifiers only from ``FIELDS``, values bound as ``?``."""

from __future__ import annotations

from core.vocabulary import quote_identifier
from profiles.activation.syntax import (
    FIELDS,
    PROFILES,
    TRAITS,
    Between,
    BoolOp,
    InList,
    IsNull,
    Node,
    Not,
    Value,
)

_ALIAS = {PROFILES: "p", TRAITS: "t"}
"""Table aliases the candidates query (``Segment.candidates_sql``) joins under."""


def _column(name: str) -> str:
    spec = FIELDS[name]
    return f"{_ALIAS[spec.table]}.{quote_identifier(name)}"


def compile_condition(node: Node, params: list[Value]) -> str:
    """SQL for a checked tree; values are appended to ``params`` and bound as ``?``."""
    if isinstance(node, BoolOp):
        return "(" + f" {node.op} ".join(compile_condition(i, params) for i in node.items) + ")"
    if isinstance(node, Not):
        return f"(NOT {compile_condition(node.item, params)})"
    column = _column(node.field)
    if isinstance(node, IsNull):
        return f"({column} IS {'NOT ' if node.negated else ''}NULL)"
    if isinstance(node, InList):
        params.extend(node.values)
        marks = ", ".join("?" for _ in node.values)
        return f"({column} {'NOT ' if node.negated else ''}IN ({marks}))"
    if isinstance(node, Between):
        params.extend((node.low, node.high))
        return f"({column} {'NOT ' if node.negated else ''}BETWEEN ? AND ?)"
    params.append(node.value)
    return f"({column} {node.op} ?)"


def fields_of(node: Node) -> set[str]:
    """Every field a tree names: the tables a rule needs follow from them."""
    if isinstance(node, BoolOp):
        return set().union(*(fields_of(item) for item in node.items))
    if isinstance(node, Not):
        return fields_of(node.item)
    return {node.field}
