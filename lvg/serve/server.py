"""Run the app with uvicorn, draining gracefully on SIGTERM / Ctrl-C.

On the first signal the app starts draining (new requests get 503), uvicorn stops accepting connections,
waits for the requests in flight (at most ``request_timeout_s`` + 5 s), runs the app's shutdown, and the
process exits 0. A request whose body is still arriving is answered 503 at once (it has not started), so a
stalled client never delays the exit.

Slow clients: a connection whose request headers are not complete ``header_timeout_s`` after it opened (or after
its previous response) gets 408 and is closed (:class:`HeaderTimeoutH11`, uvicorn's h11 protocol with a timer); the
body's own deadline, ``body_timeout_s``, is kept by the middleware.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import threading
from types import FrameType

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from lvg.serve.app import ServeSettings, ServeState, create_app

logger = logging.getLogger("lvg.serve")


class DrainingServer(uvicorn.Server):
    """A uvicorn server that tells the app to drain as soon as a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config, state: ServeState) -> None:
        super().__init__(config)
        self.lvg_state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.lvg_state.begin_drain()
        super().handle_exit(sig, frame)


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing (with 408) a connection whose request headers take longer than
    ``header_timeout_s`` to arrive; uvicorn itself waits for them forever."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()  # the next request's headers get the same time

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_overdue)

    def _headers_overdue(self) -> None:
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():  # no complete request line+headers
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()


def build_server(settings: ServeSettings, app: FastAPI | None = None) -> DrainingServer:
    """The uvicorn server ``serve`` runs for ``settings`` (``app``: default ``create_app(settings)``)."""
    app = app if app is not None else create_app(settings)
    protocol = type("LvgH11", (HeaderTimeoutH11,), {"header_timeout_s": settings.header_timeout_s})
    config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=int(settings.request_timeout_s) + 5, http=protocol,
                            log_level="info")  # fmt: skip
    return DrainingServer(config, app.state.lvg)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(settings: ServeSettings) -> None:
    """Serve until SIGTERM or Ctrl-C; returns after a graceful shutdown."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    import torch

    torch.set_num_threads(settings.threads)  # the process's intra-op threads (ServeSettings.threads says why 1)
    logger.info("torch threads: %d", settings.threads)
    server = build_server(settings)
    if server.lvg_state.keys is None and not _is_loopback(settings.host):
        logger.warning("serving on %s without API keys: anyone who can reach it can use it", settings.host)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises the signal it caught once it has shut down; absorb SIGTERM so the exit status is 0.
        previous = signal.signal(signal.SIGTERM, lambda sig, frame: None)
    try:
        server.run()
    except SystemExit as e:  # uvicorn exits 1 when it cannot bind
        if e.code:
            raise OSError(f"cannot serve on {settings.host}:{settings.port} (see the log above)") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
