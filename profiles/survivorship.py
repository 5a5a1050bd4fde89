"""``survivorship.yml``: which source record's value each golden-record attribute takes.

The rules are validated here and handed to dbt as the ``survivorship`` var, which the
``survive`` macro turns into SQL; an attribute the file leaves out takes the newest record
holding a value (``most_recent``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictStr

from core.config import ConfigError, read_yaml, validate


class SurvivorshipError(ConfigError):
    """``survivorship.yml`` is unreadable or holds an invalid rule."""


class Rule(BaseModel):
    """One attribute's rule; ``sources`` orders (most_trusted) or restricts the candidates."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["most_trusted", "most_recent", "most_frequent"]
    sources: list[StrictStr] | None = None


class Attributes(BaseModel):
    """The golden record's attributes (``golden_attributes`` in the macro); ``address`` is one
    unit, so a profile never mixes the street of one address with the city of another."""

    model_config = ConfigDict(extra="forbid")

    first_name: Rule | None = None
    last_name: Rule | None = None
    birth_date: Rule | None = None
    email: Rule | None = None
    phone: Rule | None = None
    address: Rule | None = None
    customer_number: Rule | None = None


class SurvivorshipFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attributes: Attributes | None = None


def load_survivorship(path: Path) -> dict[str, Any]:
    """The ``attributes`` mapping as written (what dbt receives); ``{}`` without a file."""
    try:
        raw = read_yaml(path, required=False)
        spec = validate(SurvivorshipFile, raw or {}, path)
    except ConfigError as error:
        raise SurvivorshipError(error.file, error.problems) from None
    if spec.attributes is None:
        return {}
    return spec.attributes.model_dump(exclude_unset=True)
