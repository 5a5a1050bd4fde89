"""``api.yml``: accepted API keys (as SHA-256 digests) and page sizes, validated at start-up.

Read keys (every GET, the lookup) and write keys (``POST /events``) are separate sets: a
marketing tool that pulls audiences cannot post opt-outs, an app that posts events cannot read
profiles. Keys in clear text never sit in the file: the caller passes them in (``cdp serve``
reads ``$CDP_API_KEYS`` and ``$CDP_API_WRITE_KEYS``) and they are hashed at once.
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
API_WRITE_KEYS_ENV = "CDP_API_WRITE_KEYS"
"""Where ``cdp serve`` finds clear-text write keys (comma-separated)."""


class ApiConfigError(ConfigError):
    """The API cannot start safely (no keys, unreadable or invalid configuration)."""


class PageSize(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: Annotated[int, Field(ge=1)] = 100
    max: Annotated[int, Field(ge=1)] = 10_000


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: Annotated[float, Field(gt=0)] = 200.0
    burst: Annotated[int, Field(ge=1)] = 1000


class ApiFile(BaseModel):
    """The file's content; an absent or empty file means all defaults (and no stored keys)."""

    model_config = ConfigDict(extra="forbid")

    key_sha256: list[StrictStr] | None = None
    write_key_sha256: list[StrictStr] | None = None
    page_size: PageSize | None = None
    members_max_age_seconds: Annotated[float, Field(ge=0)] = 900.0
    max_request_bytes: Annotated[int, Field(ge=1)] = 1_048_576
    rate_limit: RateLimit | None = None


def read_api_file(path: Path) -> ApiFile:
    """``api.yml`` validated (``cdp check`` reads it without needing keys at hand)."""
    try:
        return validate(ApiFile, read_yaml(path, required=False) or {}, path)
    except ConfigError as error:
        raise ApiConfigError(error.file, error.problems) from None


def _digests(listed: list[str] | None, clear: Iterable[str]) -> set[str]:
    return {h.lower() for h in listed or []} | {sha256_hex(k.strip()) for k in clear
                                                  if k.strip()}


def _known(digest: str, hashes: frozenset[str]) -> bool:
    return any(hmac.compare_digest(digest, known) for known in hashes)


@dataclass(frozen=True)
class ApiSettings:
    key_hashes: frozenset[str]
    write_key_hashes: frozenset[str] = frozenset()
    default_page: int = PageSize().default
    max_page: int = PageSize().max
    members_max_age: float = ApiFile().members_max_age_seconds
    max_request_bytes: int = ApiFile().max_request_bytes
    rate_limit: RateLimit = RateLimit()

    @classmethod
    def load(cls, path: Path, api_keys: Iterable[str] = (),
             write_keys: Iterable[str] = ()) -> ApiSettings:
        """Digests listed in ``api.yml`` plus ``api_keys`` / ``write_keys`` (clear text, hashed
        at once). Without a write key the server reads only (``POST /events`` answers 401)."""
        spec = read_api_file(path)
        hashes = _digests(spec.key_sha256, api_keys)
        writers = _digests(spec.write_key_sha256, write_keys)
        if not hashes:
            raise ApiConfigError(path, [("key_sha256", f"no API keys configured: set "
                                         f"{API_KEYS_ENV} or list key digests here")])
        if hashes & writers:
            raise ApiConfigError(path, [("write_key_sha256", "a write key must not also be a "
                                         "read key")])
        pages = spec.page_size or PageSize()
        return cls(frozenset(hashes), frozenset(writers), pages.default, pages.max,
                   spec.members_max_age_seconds, spec.max_request_bytes,
                   spec.rate_limit or RateLimit())

    def accepts(self, key: str) -> bool:
        """A read key."""
        return _known(sha256_hex(key), self.key_hashes)

    def accepts_write(self, key: str) -> bool:
        return _known(sha256_hex(key), self.write_key_hashes)
