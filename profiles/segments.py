"""Segment definitions: YAML rules compiled to parameterised SQL, plus dbt-built segments.

A rule segment's ``where`` is a small expression language (``churn_risk = 'high' and
lifetime_value > 500 and city in ('Berlin', 'Hamburg')``). It is parsed into a syntax tree
whose every node is checked against an allow-list - fields, operators, literal types - before
any SQL exists: identifiers in the SQL come only from ``FIELDS``, values are only ever bound
as parameters, and anything else (a function call, a subquery, ``;``, an unknown column) is
rejected with an error naming the segment and the offending item. Analysts can instead write a
dbt model tagged ``segment`` (schema ``segments``); both kinds go through the same suppression
chain and exporters.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, NoReturn

import duckdb
import yaml

from profiles.published import PUBLISHED, published_tables
from profiles.suppression import SuppressionPolicy

CHANNELS = ("email", "sms", "phone", "post", "online_ads")
FieldKind = Literal["text", "number", "date"]


@dataclass(frozen=True)
class Field:
    table: str
    kind: FieldKind


_PROFILES = "main.dim_profiles"
_TRAITS = "main.dim_profile_traits"

FIELDS: dict[str, Field] = {
    **{
        name: Field(_PROFILES, "text")
        for name in ("first_name", "last_name", "email", "phone", "street", "house_number",
                     "postcode", "city", "country", "customer_number")
    },
    "birth_date": Field(_PROFILES, "date"),
    **{
        name: Field(_TRAITS, "number")
        for name in ("recency_days", "frequency", "monetary", "lifetime_value", "churn_score")
    },
    "churn_risk": Field(_TRAITS, "text"),
    "moved_at": Field(_TRAITS, "date"),
    "new_baby_at": Field(_TRAITS, "date"),
}
"""The only columns a rule may name: profile attributes and traits, never free SQL."""

_ALIAS = {_PROFILES: "p", _TRAITS: "t"}
NAME_PATTERN = "[a-z][a-z0-9_]{0,62}"
"""Segment and dbt model names, matched whole (``fullmatch``: ``$`` would let "x\\n" pass)."""
_NAME_RE = re.compile(NAME_PATTERN)
_MAX_DEPTH = 32


class SegmentError(ValueError):
    """A segment definition is invalid; raised before any SQL runs."""


# ----------------------------------------------------------------------------- syntax tree

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

COMPARISONS = {"=": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_KEYWORDS = {"and", "or", "not", "in", "between", "is", "null"}
_TOKEN_RE = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)(?![A-Za-z_])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),]))"
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokenise(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None or match.lastgroup is None:
            rest = text[position:].lstrip()
            if rest:  # reported when the parser gets there, so errors come in reading order
                tokens.append(_Token("bad", rest[0], len(text) - len(rest)))
            break
        tokens.append(_Token(match.lastgroup, match.group(match.lastgroup), match.start(
            match.lastgroup)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the token list; every error names the segment and the token."""

    def __init__(self, segment: str, text: str) -> None:
        self.segment = segment
        self.tokens = _tokenise(text)
        self.index = 0

    def fail(self, message: str) -> NoReturn:
        raise SegmentError(f"segment {self.segment!r}: {message}")

    def peek(self, offset: int = 0) -> _Token | None:
        at = self.index + offset
        token = self.tokens[at] if at < len(self.tokens) else None
        if token is not None and token.kind == "bad":
            self.fail(f"unexpected character {token.text!r} at position {token.position}")
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token.kind == "word" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        token = self.peek()
        if token is None or token.text.lower() != text:
            self.fail(f"expected {text!r} {self.where(token)}")
        self.index += 1

    @staticmethod
    def where(token: _Token | None) -> str:
        return "at the end" if token is None else f"at {token.text!r} (position {token.position})"

    def parse(self) -> Node:
        if not self.tokens:
            self.fail("empty condition")
        node = self.disjunction(0)
        if (token := self.peek()) is not None:
            self.fail(f"unexpected {token.text!r} at position {token.position}")
        return node

    def disjunction(self, depth: int) -> Node:
        items = [self.conjunction(depth)]
        while self.keyword("or"):
            items.append(self.conjunction(depth))
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def conjunction(self, depth: int) -> Node:
        items = [self.negation(depth)]
        while self.keyword("and"):
            items.append(self.negation(depth))
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def negation(self, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            self.fail(f"condition nested deeper than {_MAX_DEPTH} levels")
        if self.keyword("not"):
            return Not(self.negation(depth + 1))
        token = self.peek()
        if token is not None and token.text == "(":
            self.index += 1
            node = self.disjunction(depth + 1)
            self.expect(")")
            return node
        return self.predicate()

    def predicate(self) -> Node:
        token = self.peek()
        if token is None or token.kind != "word" or token.text.lower() in _KEYWORDS:
            self.fail(f"expected a field name {self.where(token)}")
        following = self.peek(1)
        if following is not None and following.text == "(":
            self.fail(f"function calls are not allowed: {token.text!r}")
        name = token.text.lower()
        if name not in FIELDS:
            self.fail(f"unknown field {token.text!r} (allowed: {', '.join(sorted(FIELDS))})")
        self.index += 1
        if self.keyword("is"):
            negated = self.keyword("not")
            self.expect("null")
            return IsNull(name, negated)
        negated = self.keyword("not")
        if self.keyword("in"):
            self.expect("(")
            values = [self.literal(name)]
            while (comma := self.peek()) is not None and comma.text == ",":
                self.index += 1
                values.append(self.literal(name))
            self.expect(")")
            return InList(name, tuple(values), negated)
        if self.keyword("between"):
            low = self.literal(name)
            self.expect("and")
            return Between(name, low, self.literal(name), negated)
        if negated:
            self.fail(f"expected 'in' or 'between' after 'not' {self.where(self.peek())}")
        operator = self.peek()
        if operator is None or operator.kind != "op":
            self.fail(f"unknown or missing operator after {name!r} {self.where(operator)} "
                      f"(allowed: {', '.join(COMPARISONS)}, in, not in, between, is null)")
        self.index += 1
        return Compare(name, COMPARISONS[operator.text], self.literal(name))

    def literal(self, name: str) -> Value:
        """A quoted string or a number, checked against the field's kind."""
        token = self.peek()
        if token is None or token.kind not in ("string", "number"):
            self.fail(f"expected a quoted string or a number for {name!r} {self.where(token)}")
        self.index += 1
        kind = FIELDS[name].kind
        if kind == "number":
            if token.kind != "number":
                self.fail(f"{name!r} is numeric, got {token.text}")
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind != "string":
            self.fail(f"{name!r} takes a quoted string, got {token.text}")
        text = token.text[1:-1].replace("''", "'")
        if kind == "date":
            try:
                return date.fromisoformat(text)
            except ValueError:
                self.fail(f"{name!r} takes a date 'YYYY-MM-DD', got {token.text}")
        return text


def parse_condition(segment: str, text: str) -> Node:
    """Parse a rule into the allow-listed syntax tree, or raise ``SegmentError``."""
    return _Parser(segment, text).parse()


def _column(name: str) -> str:
    spec = FIELDS[name]
    return f'{_ALIAS[spec.table]}."{name}"'


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


def _fields(node: Node) -> set[str]:
    if isinstance(node, BoolOp):
        return set().union(*(_fields(item) for item in node.items))
    if isinstance(node, Not):
        return _fields(node.item)
    return {node.field}


# ------------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class Segment:
    """One exportable audience: a rule over profiles and traits, or a dbt segment table."""

    name: str
    channel: str
    description: str = ""
    offer_id: str | None = None
    product_group: str | None = None
    where: str | None = None
    model: str | None = None
    condition: Node | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "dbt" if self.model else "rule"

    @property
    def definition_hash(self) -> str:
        """SHA-256 of the semantic definition, so a manifest says which rule produced it."""
        spec = {k: getattr(self, k) for k in
                ("name", "channel", "offer_id", "product_group", "where", "model")}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    def required_tables(self) -> set[str]:
        if self.model:
            return {f"segments.{self.model}"}
        assert self.condition is not None
        return {_PROFILES} | {FIELDS[name].table for name in _fields(self.condition)}

    def candidates_sql(self) -> tuple[str, list[Value]]:
        """``SELECT profile_id`` of everyone the definition selects, before suppression."""
        if self.model:
            return f'SELECT DISTINCT profile_id FROM {PUBLISHED}.segments."{self.model}"', []
        assert self.condition is not None
        params: list[Value] = []
        where = compile_condition(self.condition, params)
        join = (f" LEFT JOIN {PUBLISHED}.{_TRAITS} AS t USING (profile_id)"
                if _TRAITS in self.required_tables() else "")
        return (f"SELECT p.profile_id FROM {PUBLISHED}.{_PROFILES} AS p{join} WHERE {where}",
                params)


_SEGMENT_KEYS = {"name", "description", "channel", "offer_id", "product_group", "where", "model"}


def build_segment(entry: dict[str, Any]) -> Segment:
    """Validate one YAML entry (keys, name, channel, rule or model) into a ``Segment``."""
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise SegmentError(f"segment name {name!r} must match {NAME_PATTERN} (a lowercase "
                           "letter, then lowercase letters, digits or _)")

    def fail(message: str) -> SegmentError:
        return SegmentError(f"segment {name!r}: {message}")

    if unknown := sorted(set(entry) - _SEGMENT_KEYS):
        raise fail(f"unknown keys {unknown} (allowed: {sorted(_SEGMENT_KEYS)})")
    if entry.get("channel") not in CHANNELS:
        raise fail(f"channel {entry.get('channel')!r} is not one of {', '.join(CHANNELS)}")
    for key in ("description", "offer_id", "product_group", "where", "model"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise fail(f"{key} must be a string")
    where, model = entry.get("where"), entry.get("model")
    if (where is None) == (model is None):
        raise fail("give exactly one of 'where' (a rule) or 'model' (a dbt segment table)")
    if model is not None and not _NAME_RE.fullmatch(model):
        raise fail(f"model {model!r} must match {NAME_PATTERN}")
    return Segment(
        name=name, channel=entry["channel"], description=entry.get("description") or "",
        offer_id=entry.get("offer_id"), product_group=entry.get("product_group"),
        where=where, model=model,
        condition=parse_condition(name, where) if where is not None else None,
    )


@dataclass(frozen=True)
class ActivationConfig:
    segments: dict[str, Segment]
    policy: SuppressionPolicy


def load_config(path: Path) -> ActivationConfig:
    """Read ``segments.yml``; every rule is parsed and checked here, before anything runs."""
    raw = yaml.safe_load(path.read_text()) or {}
    segments: dict[str, Segment] = {}
    for entry in raw.get("segments") or []:
        if not isinstance(entry, dict):
            raise SegmentError(f"{path}: every segment must be a mapping")
        segment = build_segment(entry)
        if segment.name in segments:
            raise SegmentError(f"segment {segment.name!r} is defined twice in {path}")
        segments[segment.name] = segment
    return ActivationConfig(segments, SuppressionPolicy.from_config(raw.get("suppression") or {}))


def available_segments(
    config: ActivationConfig, con: duckdb.DuckDBPyConnection
) -> dict[str, Segment]:
    """Configured segments plus every published dbt segment table no entry refers to.

    A bare dbt segment is an email audience named after its table: the channel a dbt model
    selects for is not visible in the published file, and email is what the models select.
    """
    segments = dict(config.segments)
    claimed = {s.model for s in segments.values() if s.model}
    for table in sorted(published_tables(con)):
        schema, name = table.split(".", 1)
        if schema == "segments" and name not in claimed and _NAME_RE.fullmatch(name):
            segments.setdefault(name, Segment(name=name, channel="email", model=name,
                                              description=f"dbt model {name}"))
    return segments


def find_segment(
    config: ActivationConfig, con: duckdb.DuckDBPyConnection, name: str
) -> Segment:
    segments = available_segments(config, con)
    if name not in segments:
        raise SegmentError(
            f"unknown segment {name!r} (known: {', '.join(sorted(segments)) or 'none'})")
    return segments[name]
