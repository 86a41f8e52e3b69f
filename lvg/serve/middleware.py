"""The ASGI gate in front of every route: draining, auth, rate limit, body size, metrics and the request log."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lvg.serve.auth import bearer_token, retry_after_header
from lvg.serve.errors import error_response

if TYPE_CHECKING:
    from lvg.serve.app import ServeState

logger = logging.getLogger("lvg.serve")
LOG_KEY = "lvg.log"  # scope key: a dict the handlers fill with what the request log may show (n, prompt)
ROUTES = frozenset({"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/images/generations", "/v1/captions"})
PUBLIC = frozenset({"/", "/healthz", "/readyz"})  # no key needed (plus /static/*)
UNDRAINED = frozenset({"/healthz", "/readyz", "/metrics"})  # still answered while draining
UPLOAD_OVERHEAD = 64 * 1024  # multipart framing and form fields around an upload


class BodyTooLarge(HTTPException):
    """The streamed body passed its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def route_label(path: str) -> str:
    """A bounded metrics label for a path."""
    if path in ROUTES:
        return path
    return "/static" if path.startswith("/static/") else "other"


class ServeMiddleware:
    """Pure ASGI middleware (never buffers bodies, so disconnects and streaming keep working)."""

    def __init__(self, app: ASGIApp, state: ServeState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        info: dict[str, Any] = scope.setdefault(LOG_KEY, {})
        status = [500, False]  # status sent (500 if the app raised before responding), response started

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[:] = [message["status"], True]
            await send(message)

        try:
            rejection = self._gate(scope)
            if rejection is not None:
                await rejection(scope, receive, send_wrapper)
            else:
                await self.app(scope, self._limited(scope, receive), send_wrapper)
        except BodyTooLarge as e:  # raised by the body reader outside a route's exception handling
            if status[1]:
                raise
            await error_response(413, str(e.detail))(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - start
            self.state.metrics.observe_request(route_label(scope["path"]), status[0], seconds)
            self._log(scope, status[0], seconds, info)

    def _gate(self, scope: Scope) -> Response | None:
        """An error response for a request refused before routing, or None to let it through."""
        path: str = scope["path"]
        state = self.state
        if state.draining and path not in UNDRAINED:
            return error_response(
                503, "the server is shutting down", headers={"Retry-After": "5", "Connection": "close"}
            )
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if state.keys is not None and path not in PUBLIC and not path.startswith("/static/"):
            token = bearer_token(headers.get("authorization"))
            key_id = state.keys.identify(token) if token is not None else None
            if key_id is None:
                challenge = 'Bearer realm="lvg"' if token is None else 'Bearer realm="lvg", error="invalid_token"'
                message = "missing API key" if token is None else "invalid API key"
                return error_response(401, f"{message}: send 'Authorization: Bearer KEY'",
                                      headers={"WWW-Authenticate": challenge})  # fmt: skip
            if path.startswith("/v1/"):
                wait = state.limiter.acquire(key_id)
                if wait > 0:
                    return error_response(429, "rate limit exceeded for this API key",
                                          headers={"Retry-After": retry_after_header(wait)})  # fmt: skip
        length = headers.get("content-length")
        if length is not None:
            try:
                too_large = int(length) > self._body_limit(path)
            except ValueError:
                return error_response(400, "invalid Content-Length header")
            if too_large:
                return error_response(413, f"the request body is larger than {self._body_limit(path)} bytes")
        return None

    def _body_limit(self, path: str) -> int:
        s = self.state.settings
        return s.max_upload_bytes + UPLOAD_OVERHEAD if path == "/v1/captions" else s.max_body_bytes

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """``receive`` that raises ``BodyTooLarge`` once the streamed body passes the path's limit."""
        limit = self._body_limit(scope["path"])
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return limited

    def _log(self, scope: Scope, status: int, seconds: float, info: dict[str, Any]) -> None:
        extra = f" n={info['n']}" if "n" in info else ""
        if self.state.settings.log_prompts and "prompt" in info:
            extra += f" prompt={info['prompt']!r}"
        logger.info("%s %s %d %.1fms%s", scope["method"], scope["path"], status, seconds * 1000, extra)
