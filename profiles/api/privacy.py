"""What keeps identifiers out of URLs, logs and error bodies.

Emails and phones arrive in a POST body - never in a URL that lands in access logs. A URL that
carries one anyway is refused, requests are logged by route template, never by URL, and
validation errors name the field without echoing its value.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("profiles.api.access")
"""Named after the package, which ``cdp serve`` routes to its log handler."""

URL_IDENTIFIER_HINT = (
    "e-mail addresses and phone numbers must not be sent in a URL, which ends up in logs: look "
    'a profile up with POST /profiles/lookup and a JSON body {"email": ...} or {"phone": ...}'
)
_PHONE_IN_URL = re.compile(r"(?<![A-Za-z0-9_])[0-9](?:[ ()]*[0-9]){6,}(?![A-Za-z0-9_])")
"""Seven or more digits standing alone (spaces and brackets between them, as in "+49 (30)
123456"). Profile ids (P + hex), run ids with a time ("manual-20260312T060000Z") and segment
names ("seg_2026") have a letter or "_" next to their digits; no legitimate value has a space."""
_OPAQUE_PARAMS = frozenset({"cursor", "limit"})
"""Query parameters not searched for phone numbers: a cursor is base64 this API issued (digit
runs happen), a limit is a bounded number; neither is ever echoed or logged."""
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DIGIT_RUN = re.compile(r"[0-9]{7}")


def identifier_in_url(scope: Scope) -> bool:
    """An e-mail address ('@' anywhere) or a phone number in the decoded path or query."""
    path = scope["path"]
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if "@" in path or any("@" in key or "@" in value for key, value in query):
        return True
    searched = [path, *(key for key, _ in query),
                *(value for key, value in query if key not in _OPAQUE_PARAMS)]
    return any(_PHONE_IN_URL.search(text) for text in searched)


class UrlPrivacyMiddleware:
    """Refuse identifiers in URLs and log every request by route template, never by URL.

    Replaces uvicorn's access log (``cdp serve`` turns it off), which writes path and query
    string verbatim.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before responding

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if identifier_in_url(scope):
                refusal = JSONResponse({"detail": URL_IDENTIFIER_HINT}, status_code=400)
                await refusal(scope, receive, send_noting_status)
            else:
                await self.app(scope, receive, send_noting_status)
        finally:
            access_log.info("%s %s %d %.1f ms", scope["method"], self.template(scope), status,
                            (time.perf_counter() - started) * 1000)

    def template(self, scope: Scope) -> str:
        """The route's path template ("/profiles/{profile_id}"); a refused request never reached
        the router, so it is matched here."""
        route = scope.get("route") or next(
            (r for r in self.routes if r.matches(scope)[0] is not Match.NONE), None)
        return getattr(route, "path", None) or "(no route)"


def _safe_loc(part: str | int) -> str | int:
    """A location part as is if it is an index or a field name; the key of an unknown body
    field is client data (it may be an e-mail address), so anything else is masked."""
    if isinstance(part, int) or (_FIELD_NAME.fullmatch(part) and not _DIGIT_RUN.search(part)):
        return part
    return "<redacted>"


async def validation_failed(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming location, message and type of each problem - without FastAPI's ``input``
    and ``ctx``, which echo the submitted value (an e-mail address, a phone number)."""
    detail = [{"loc": [_safe_loc(part) for part in e["loc"]], "msg": e["msg"], "type": e["type"]}
              for e in error.errors()]
    return JSONResponse({"detail": detail}, status_code=422)

