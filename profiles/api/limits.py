"""What keeps one client from exhausting the server: a request-body size limit and a request
rate per API key (a token bucket per key digest, in process memory)."""

from __future__ import annotations

import math
import threading
import time

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimitMiddleware:
    """413 for a body over ``max_bytes``, by its Content-Length or, for a chunked body, once
    more than that has arrived: the body is read (at most ``max_bytes``) before the app runs,
    then handed to it whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = JSONResponse({"detail": f"request body larger than {self.max_bytes} bytes"},
                               status_code=413)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await refusal(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await refusal(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class RateLimiter:
    """At most ``per_second`` requests per key on average, ``burst`` at once."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key digest: (tokens, when)

    def wait_seconds(self, key_digest: str) -> float:
        """0 when the request may go ahead (a token is taken), else seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key_digest, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.per_second)
            if tokens >= 1:
                self._buckets[key_digest] = (tokens - 1, now)
                return 0.0
            self._buckets[key_digest] = (tokens, now)
            return (1 - tokens) / self.per_second if self.per_second > 0 else math.inf
