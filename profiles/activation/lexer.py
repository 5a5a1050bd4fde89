"""Tokens of a segment rule: quoted strings, numbers, words, operators and punctuation.

Anything else becomes a ``bad`` token, reported by the parser when it reaches it, so errors
come in reading order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEYWORDS = {"and", "or", "not", "in", "between", "is", "null"}
_TOKEN_RE = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)(?![A-Za-z_])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),]))"
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


def tokenise(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None or match.lastgroup is None:
            rest = text[position:].lstrip()
            if rest:  # reported when the parser gets there, so errors come in reading order
                tokens.append(Token("bad", rest[0], len(text) - len(rest)))
            break
        tokens.append(Token(match.lastgroup, match.group(match.lastgroup), match.start(
            match.lastgroup)))
        position = match.end()
    return tokens
