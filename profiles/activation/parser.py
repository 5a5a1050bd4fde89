"""Recursive-descent parser from a rule's text to the allow-listed syntax tree.

Every node is checked while it is built - field in ``FIELDS``, operator in the grammar,
literal of the field's kind - so a function call, a subquery, ``;`` or an unknown column is
rejected, with an error naming the segment and the offending item, before any SQL exists.
"""

from __future__ import annotations

from datetime import date
from typing import NoReturn

from profiles.activation.lexer import KEYWORDS, Token, tokenise
from profiles.activation.syntax import (
    COMPARISONS,
    FIELDS,
    Between,
    BoolOp,
    Compare,
    InList,
    IsNull,
    Node,
    Not,
    SegmentError,
    Value,
)

_MAX_DEPTH = 32


class _Parser:
    """Recursive descent over the token list; every error names the segment and the token."""

    def __init__(self, segment: str, text: str) -> None:
        self.segment = segment
        self.tokens = tokenise(text)
        self.index = 0

    def fail(self, message: str) -> NoReturn:
        raise SegmentError(f"segment {self.segment!r}: {message}")

    def peek(self, offset: int = 0) -> Token | None:
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
    def where(token: Token | None) -> str:
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
        if token is None or token.kind != "word" or token.text.lower() in KEYWORDS:
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

