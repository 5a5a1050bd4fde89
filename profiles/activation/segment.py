"""A segment: one exportable audience, defined by a rule or by a dbt segment table.

``build_segment`` validates one ``segments.yml`` entry (keys, name, channel, exactly one of
rule or model) and parses its rule, so a ``Segment`` always holds a checked syntax tree.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictStr,
    model_validator,
)

from core.config import ConfigError, key_path, validate
from core.vocabulary import CHANNELS, quote_identifier
from profiles.activation.compiler import compile_condition, fields_of
from profiles.activation.parser import parse_condition
from profiles.activation.syntax import (
    FIELDS,
    NAME_PATTERN,
    PROFILES,
    TRAITS,
    Node,
    SegmentError,
    Value,
)
from profiles.publishing.published import PUBLISHED

_NAME_RE = re.compile(NAME_PATTERN)


def is_name(text: str) -> bool:
    """A valid segment or dbt model name (matched whole)."""
    return _NAME_RE.fullmatch(text) is not None


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
    ad_audiences: bool = False
    """Whether exports write the hashed ad-platform audiences (their purpose: online_ads)."""
    condition: Node | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "dbt" if self.model else "rule"

    @property
    def definition_hash(self) -> str:
        """SHA-256 of the semantic definition, so a manifest says which rule produced it."""
        spec = {k: getattr(self, k) for k in
                ("name", "channel", "offer_id", "product_group", "where", "model",
                 "ad_audiences")}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    def required_tables(self) -> set[str]:
        if self.model:
            return {f"segments.{self.model}"}
        assert self.condition is not None
        return {PROFILES} | {FIELDS[name].table for name in fields_of(self.condition)}

    def candidates_sql(self) -> tuple[str, list[Value]]:
        """``SELECT profile_id`` of everyone the definition selects, before suppression."""
        if self.model:
            return (f"SELECT DISTINCT profile_id FROM {PUBLISHED}.segments."
                    f"{quote_identifier(self.model)}", [])
        assert self.condition is not None
        params: list[Value] = []
        where = compile_condition(self.condition, params)
        join = (f" LEFT JOIN {PUBLISHED}.{TRAITS} AS t USING (profile_id)"
                if TRAITS in self.required_tables() else "")
        return (f"SELECT p.profile_id FROM {PUBLISHED}.{PROFILES} AS p{join} WHERE {where}",
                params)


def _whole_name(text: str) -> str:
    if not is_name(text):
        raise ValueError(f"must match {NAME_PATTERN} (a lowercase letter, then lowercase "
                         "letters, digits or _)")
    return text


def _channel(text: str) -> str:
    if text not in CHANNELS:
        raise ValueError(f"must be one of {', '.join(CHANNELS)}")
    return text


Name = Annotated[StrictStr, AfterValidator(_whole_name)]


class SegmentEntry(BaseModel):
    """One entry of ``segments:`` in ``segments.yml``."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    channel: Annotated[StrictStr, AfterValidator(_channel)]
    description: StrictStr | None = None
    offer_id: StrictStr | None = None
    product_group: StrictStr | None = None
    where: StrictStr | None = None
    model: Name | None = None
    ad_audiences: StrictBool | None = None
    """Write the Google / Meta audiences; unset: only for an ``online_ads`` segment."""

    @model_validator(mode="after")
    def _rule_or_model(self) -> Self:
        if (self.where is None) == (self.model is None):
            raise ValueError("give exactly one of 'where' (a rule) or 'model' (a dbt segment "
                             "table)")
        return self


def build_segment(entry: Any, file: str | Path = "",
                  prefix: tuple[int | str, ...] = ()) -> Segment:
    """Validate one YAML entry into a ``Segment``; errors name ``file`` and the key under
    ``prefix`` (``segments[2].channel``)."""
    try:
        spec = validate(SegmentEntry, entry, file, prefix)
    except ConfigError as error:
        raise SegmentError(error.problems, file) from None
    try:
        condition = parse_condition(spec.name, spec.where) if spec.where is not None else None
    except SegmentError as error:
        raise SegmentError([(key_path((*prefix, "where")), problem)
                            for _, problem in error.problems], file) from None
    return Segment(
        name=spec.name, channel=spec.channel, description=spec.description or "",
        offer_id=spec.offer_id, product_group=spec.product_group,
        where=spec.where, model=spec.model, condition=condition,
        ad_audiences=(spec.channel == "online_ads" if spec.ad_audiences is None
                      else spec.ad_audiences),
    )
