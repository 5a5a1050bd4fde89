"""What route handlers receive through ``Depends``: the app's settings, segments and warehouse,
the API-key check, and the translations of library errors into HTTP statuses."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

import duckdb
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from profiles.activation.config import ActivationConfig
from profiles.activation.discovery import available_segments
from profiles.activation.hashing import sha256_hex
from profiles.activation.offers import Offer
from profiles.activation.segment import Segment
from profiles.activation.syntax import SegmentError
from profiles.api import queries
from profiles.api.events import EventLog
from profiles.api.limits import RateLimiter
from profiles.api.settings import ApiSettings
from profiles.api.warehouse import Warehouse
from profiles.publishing.published import MissingTableError
from profiles.serving.offers import Catalogue


@dataclass(frozen=True)
class ApiState:
    """Everything a request may use, built once by ``create_app`` (``app.state.api``)."""

    settings: ApiSettings
    config: ActivationConfig
    warehouse: Warehouse
    events: EventLog
    offers: dict[str, Offer]
    limiter: RateLimiter

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue(self.offers, self.config)


# The dependencies are coroutines (they never block): FastAPI runs a plain function in its
# thread pool, a hop that costs every request more than the store's lookup itself.
async def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(api_state)]

_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ReadKey",
                           description="A read key from CDP_API_KEYS or config/api.yml.")
_WRITE_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="WriteKey",
    description="A write key from CDP_API_WRITE_KEYS or write_key_sha256 in config/api.yml.")


def _refuse() -> HTTPException:
    return HTTPException(401, "missing or invalid X-API-Key",
                         headers={"WWW-Authenticate": "APIKey"})


def _within_rate(state: ApiState, key: str) -> None:
    wait = state.limiter.wait_seconds(sha256_hex(key))
    if wait > 0:
        raise HTTPException(429, "too many requests for this API key",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})


async def authorised(state: State, key: Annotated[str | None, Security(_KEY_HEADER)]) -> None:
    """Read endpoints: a read key, within its request rate."""
    if not key or not state.settings.accepts(key):
        raise _refuse()
    _within_rate(state, key)


async def write_authorised(state: State,
                           key: Annotated[str | None, Security(_WRITE_KEY_HEADER)]) -> None:
    """``POST /events``: a write key (a read key is refused), within its request rate."""
    if not key or not state.settings.accepts_write(key):
        raise _refuse()
    _within_rate(state, key)


@contextmanager
def unavailable_as_503(*errors: type[Exception]) -> Iterator[None]:
    """A mart missing from the publication is the server's state, not the client's error."""
    caught: tuple[type[Exception], ...] = (MissingTableError, *errors)
    try:
        yield
    except caught as error:
        raise HTTPException(503, str(error)) from None


def segment_of(state: ApiState, name: str) -> Segment:
    """A known segment (configured or published dbt table); 404 otherwise."""
    with state.warehouse.cursor() as cur:
        segments = available_segments(state.config, cur)
    if name not in segments:
        raise HTTPException(404, f"unknown segment {name!r}")
    return segments[name]


def members_build(state: ApiState,
                  segment: Segment) -> tuple[str, Callable[[duckdb.DuckDBPyConnection], None]]:
    """The in-memory table of a segment's members and how to build it (once per publication:
    the suppression chain runs on the first request, not on every page)."""

    def build(con: duckdb.DuckDBPyConnection) -> None:
        with unavailable_as_503(SegmentError):
            queries.build_members(con, segment, state.config)

    return queries.members_table(segment), build
