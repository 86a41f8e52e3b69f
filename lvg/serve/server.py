"""Run the app with uvicorn, draining gracefully on SIGTERM / Ctrl-C.

On the first signal the app starts draining (new requests get 503), uvicorn stops accepting connections,
waits for the requests in flight (at most ``request_timeout_s`` + 5 s), runs the app's shutdown, and the
process exits 0.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
from types import FrameType

import uvicorn

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
    app = create_app(settings)
    state: ServeState = app.state.lvg
    if state.keys is None and not _is_loopback(settings.host):
        logger.warning("serving on %s without API keys: anyone who can reach it can use it", settings.host)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=int(settings.request_timeout_s) + 5,
                            log_level="info")  # fmt: skip
    server = DrainingServer(config, state)
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
