"""The ASGI gate in front of every route: draining, auth, rate limit, body size, metrics and the request log."""

from __future__ import annotations

import asyncio
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
LOG_KEY = "lvg.log"  # scope key: a dict the handlers fill with what the request log may show (model, n, prompt)
ROUTES = frozenset({"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/images/generations", "/v1/captions",
                    "/v1/models"})  # fmt: skip
PUBLIC = frozenset({"/", "/healthz", "/readyz"})  # no key needed (plus /static/*)
UNDRAINED = frozenset({"/healthz", "/readyz", "/metrics"})  # still answered while draining
UPLOAD_OVERHEAD = 64 * 1024  # multipart framing and form fields around an upload


BODY_POLL_S = 0.25  # how often a request waiting for its body checks whether the server is draining


class BodyError(HTTPException):
    """The streamed body cannot be taken: too large, too slow, or the server is shutting down (the connection is
    closed after the answer)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers={"Connection": "close", **(headers or {})})


class BodyTooLarge(BodyError):
    """The streamed body passed its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def route_label(path: str) -> str:
    """A bounded metrics label for a path."""
    if path in ROUTES:
        return path
    if path.startswith("/v1/models/"):
        return "/v1/models/{model}"
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
        except BodyError as e:  # raised by the body reader outside a route's exception handling
            if status[1]:
                raise
            await error_response(e.status_code, str(e.detail), headers=dict(e.headers or {}))(
                scope, receive, send_wrapper
            )
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
        """``receive`` that raises :class:`BodyError` once the streamed body passes the path's limit, when it has
        not arrived within ``body_timeout_s`` (408), or when the server starts draining while it waits (503). Once
        the body is complete, it is plain ``receive`` (waiting for a disconnect has no deadline)."""
        limit = self._body_limit(scope["path"])
        timeout = self.state.settings.body_timeout_s
        deadline = time.monotonic() + timeout
        seen, done = 0, False

        async def limited() -> Message:
            nonlocal seen, done
            if done:
                return await receive()
            while True:  # wait in short slices: a stalled body must not hold up a shutdown
                if self.state.draining:
                    raise BodyError(503, "the server is shutting down", {"Retry-After": "5"})
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BodyError(408, f"the request body did not arrive within {timeout:g} s")
                try:
                    message = await asyncio.wait_for(receive(), min(left, BODY_POLL_S))
                    break
                except TimeoutError:
                    continue
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        return limited

    def _log(self, scope: Scope, status: int, seconds: float, info: dict[str, Any]) -> None:
        extra = f" model={info['model']}" if "model" in info else ""
        extra += f" n={info['n']}" if "n" in info else ""
        if self.state.settings.log_prompts and "prompt" in info:
            extra += f" prompt={info['prompt']!r}"
        logger.info("%s %s %d %.1fms%s", scope["method"], scope["path"], status, seconds * 1000, extra)
