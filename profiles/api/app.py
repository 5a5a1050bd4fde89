"""The app factory: settings, segments and offers loaded and checked once, routers (read key,
write key, none for /health) and the privacy and size-limit middleware put together. Fails at
once on missing keys or invalid segment or offer definitions."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError

import profiles.api
from core.config import ConfigError
from core.paths import DataPaths
from profiles.activation.config import load_config
from profiles.activation.hot_events import EVENTS_SOURCE
from profiles.activation.offers import load_offers
from profiles.api.dependencies import ApiState, authorised, write_authorised
from profiles.api.events import EventLog
from profiles.api.limits import BodySizeLimitMiddleware, RateLimiter
from profiles.api.models import ERROR_RESPONSES
from profiles.api.privacy import UrlPrivacyMiddleware, validation_failed
from profiles.api.routes import (
    events_router,
    health_router,
    profile_router,
    report_router,
    segment_router,
)
from profiles.api.settings import ApiConfigError, ApiSettings
from profiles.api.warehouse import Warehouse


def create_app(paths: DataPaths, api_config: Path, segments_config: Path,
               api_keys: Iterable[str] = (), write_keys: Iterable[str] = (), *,
               offers_config: Path | None = None) -> FastAPI:
    """The FastAPI app over ``paths``' publication; ``api_keys`` / ``write_keys`` are
    clear-text read / write keys accepted besides the digests in ``api_config``;
    ``offers_config``: the offer catalogue (``None``: no offers)."""
    settings = ApiSettings.load(api_config, api_keys, write_keys)
    events = paths.source_landing(EVENTS_SOURCE)
    try:
        config = load_config(segments_config, events)
        offers = load_offers(offers_config) if offers_config else {}
    except ConfigError as error:
        raise ApiConfigError(error.file, error.problems) from error
    app = FastAPI(title="CDP activation API", version="1", description=profiles.api.__doc__,
                  responses=ERROR_RESPONSES)
    app.state.api = ApiState(settings, config,
                             Warehouse(paths.published_db, paths.exports,
                                       settings.members_max_age, events),
                             EventLog(events), offers,
                             RateLimiter(settings.rate_limit.per_second,
                                         settings.rate_limit.burst))
    read, write = [Depends(authorised)], [Depends(write_authorised)]
    app.include_router(segment_router(settings.default_page, settings.max_page),
                       dependencies=read, tags=["segments"])
    app.include_router(profile_router(), dependencies=read, tags=["profiles"])
    app.include_router(report_router(paths.reports), dependencies=read, tags=["report"])
    app.include_router(events_router(), dependencies=write, tags=["events"])
    app.include_router(health_router(), tags=["health"])
    # Starlette types every handler as taking a plain Exception (Callable parameters are
    # contravariant), so a handler for one exception class never matches; Kludex/starlette#2417.
    app.add_exception_handler(RequestValidationError, validation_failed)  # type: ignore[arg-type]
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(UrlPrivacyMiddleware, routes=app.router.routes)
    return app
