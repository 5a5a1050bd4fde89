"""Who a request is about: e-mail, phone, customer number, national id, loyalty card or
profile id.

Values are normalised as the identity resolver normalises them, so ``Anna.Schmidt@Web.de`` and
``anna.schmidt@web.de`` are one person, and hashed as the suppression list hashes them
(SHA-256 hex of the normalised e-mail / E.164 phone), so what an erasure keeps is exactly what
suppression checks. Nothing here logs or raises with a value in the message.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from core.vocabulary import identifier_hash
from identity.normalise.email import normalise_email_value
from identity.normalise.identifiers import normalise_code_value
from identity.normalise.phone import normalise_phone_value

Kind = Literal["email", "phone", "customer_number", "national_id", "loyalty_card",
               "profile_id"]
KINDS: tuple[str, ...] = get_args(Kind)
#: Identity-graph columns a request kind is looked up in (profile ids: the profile; a national
#: id, which the published graph holds only hashed: the normalised records of the build file,
#: see ``privacy.locate``).
GRAPH_COLUMNS: dict[str, str] = {"email": "email", "phone": "phone",
                                 "customer_number": "customer_number",
                                 "national_id": "national_id",
                                 "loyalty_card": "loyalty_card", "profile_id": "profile_id"}
#: Kinds normalised as identifier codes (upper-case alphanumerics).
CODE_KINDS: tuple[str, ...] = ("customer_number", "national_id", "loyalty_card")


class InvalidRequest(ValueError):
    """A request that cannot be served: the message names the argument, line or kind, never
    the value."""


@dataclass(frozen=True, order=True)
class Identifier:
    """One normalised identifier of a request."""

    kind: str
    value: str

    @property
    def hash(self) -> str:
        return identifier_hash(self.kind, self.value)


def normalise(kind: str, raw: str, region: str = "DE") -> str | None:
    """The normalised value of ``raw`` as an identifier of ``kind`` (None: not one)."""
    text = raw.strip()
    if not text:
        return None
    if kind == "email":
        return normalise_email_value(text)
    if kind == "phone":
        return normalise_phone_value(text, region)
    if kind in CODE_KINDS:
        return normalise_code_value(text)
    if kind == "profile_id":
        return text
    raise InvalidRequest(f"unknown identifier kind {kind!r}; one of {', '.join(KINDS)}")


def parse(text: str, where: str = "argument", region: str = "DE") -> Identifier:
    """``kind:value`` (``email:anna@example.org``, ``phone:+49 171 …``, ``customer_number:…``,
    ``national_id:…``, ``loyalty_card:…``, ``profile_id:…``)."""
    kind, sep, raw = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise InvalidRequest(
            f"{where}: expected kind:value with kind one of {', '.join(KINDS)}")
    return _identifier(kind, raw, where, region)


def read_csv(path: Path, region: str = "DE") -> list[Identifier]:
    """A request file: a header ``kind,value`` and one identifier per row."""
    if not path.is_file():
        raise InvalidRequest(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or {"kind", "value"} - {f.strip() for f in reader.fieldnames}:
            raise InvalidRequest(f"{path}: needs the columns kind and value")
        found = []
        for number, row in enumerate(reader, start=2):
            kind = (row.get("kind") or "").strip().lower()
            if kind not in KINDS:
                raise InvalidRequest(
                    f"{path}: line {number}: kind must be one of {', '.join(KINDS)}")
            found.append(_identifier(kind, row.get("value") or "", f"{path}: line {number}",
                                     region))
    if not found:
        raise InvalidRequest(f"{path}: no identifiers")
    return found


def _identifier(kind: str, raw: str, where: str, region: str) -> Identifier:
    value = normalise(kind, raw, region)
    if value is None:
        raise InvalidRequest(f"{where}: not a valid {kind.replace('_', ' ')}")
    return Identifier(kind, value)
