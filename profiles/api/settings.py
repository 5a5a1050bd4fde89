"""``api.yml``: accepted API keys (as SHA-256 digests) and page sizes, validated at start-up.

Keys in clear text never sit in the file: the caller passes them in (``cdp serve`` reads
``$CDP_API_KEYS``) and they are hashed at once.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from core.config import ConfigError, read_yaml, validate
from profiles.activation.hashing import sha256_hex

API_KEYS_ENV = "CDP_API_KEYS"
"""Where ``cdp serve`` finds clear-text keys (comma-separated); named in the error below."""


class ApiConfigError(ConfigError):
    """The API cannot start safely (no keys, unreadable or invalid configuration)."""


class PageSize(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: Annotated[int, Field(ge=1)] = 100
    max: Annotated[int, Field(ge=1)] = 10_000


class ApiFile(BaseModel):
    """The file's content; an absent or empty file means all defaults (and no stored keys)."""

    model_config = ConfigDict(extra="forbid")

    key_sha256: list[StrictStr] | None = None
    page_size: PageSize | None = None
    members_max_age_seconds: Annotated[float, Field(ge=0)] = 900.0


def read_api_file(path: Path) -> ApiFile:
    """``api.yml`` validated (``cdp check`` reads it without needing keys at hand)."""
    try:
        return validate(ApiFile, read_yaml(path, required=False) or {}, path)
    except ConfigError as error:
        raise ApiConfigError(error.file, error.problems) from None


@dataclass(frozen=True)
class ApiSettings:
    key_hashes: frozenset[str]
    default_page: int = PageSize().default
    max_page: int = PageSize().max
    members_max_age: float = ApiFile().members_max_age_seconds

    @classmethod
    def load(cls, path: Path, api_keys: Iterable[str] = ()) -> ApiSettings:
        """Digests listed in ``api.yml`` plus ``api_keys`` (clear text, hashed at once)."""
        spec = read_api_file(path)
        hashes = {h.lower() for h in spec.key_sha256 or []}
        hashes |= {sha256_hex(k.strip()) for k in api_keys if k.strip()}
        if not hashes:
            raise ApiConfigError(path, [("key_sha256", f"no API keys configured: set "
                                         f"{API_KEYS_ENV} or list key digests here")])
        pages = spec.page_size or PageSize()
        return cls(frozenset(hashes), pages.default, pages.max, spec.members_max_age_seconds)

    def accepts(self, key: str) -> bool:
        digest = sha256_hex(key)
        return any(hmac.compare_digest(digest, known) for known in self.key_hashes)
