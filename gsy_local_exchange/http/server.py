"""Serving the facade with uvicorn, in the exchange process (a thread) or on its own."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from gsy_e_sdk.wire.redis_connection import get_connection
from gsy_local_exchange.http.app import create_app
from gsy_local_exchange.http.hub import WebsocketHub
from gsy_local_exchange.http.limits import FacadeLimits
from gsy_local_exchange.http.rate_limit import RateLimiter
from gsy_local_exchange.http.relay import ExchangeRelay
from gsy_local_exchange.http.tokens import DEFAULT_LIFETIME_S, TokenIssuer
from gsy_local_exchange.http.users import load_users

logger = logging.getLogger(__name__)

WS_MAX_FRAME_BYTES = 64 * 1024


@dataclass(frozen=True)
class HttpOptions:
    port: int
    host: str = "127.0.0.1"
    users_file: Path | None = None
    token_lifetime_s: float = DEFAULT_LIFETIME_S
    rate_limit: float = 0.0  # requests per second per user; 0 = unlimited
    limits: FacadeLimits = FacadeLimits()


def build_server(options: HttpOptions, redis_url: str) -> uvicorn.Server:
    """Raises ``UsersError`` before anything listens when no valid user list is configured."""
    users = load_users(options.users_file)
    relay = ExchangeRelay(get_connection(redis_url), WebsocketHub())
    limits = options.limits
    app = create_app(
        relay, users, TokenIssuer.from_env(options.token_lifetime_s), RateLimiter(options.rate_limit), limits
    )
    # Forwarded headers only from configured proxies: uvicorn would otherwise believe any
    # X-Forwarded-For from loopback, letting a local client pick the address it is throttled
    # and logged under. Clients never send on a websocket, so a small frame limit suffices.
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        ws="websockets-sansio",
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        ws_max_size=WS_MAX_FRAME_BYTES,
        proxy_headers=bool(limits.trusted_proxies),
        forwarded_allow_ips=list(limits.trusted_proxies) or None,
    )
    logger.info("http: %d user(s) may log in", len(users.names))
    return uvicorn.Server(config)


def serve_in_thread(server: uvicorn.Server, timeout: float = 15.0) -> threading.Thread:
    """Start ``server`` beside the exchange's main loop; returns once it accepts connections."""
    thread = threading.Thread(target=server.run, name="exchange-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the HTTP facade could not listen on {server.config.host}:{server.config.port}")
        time.sleep(0.02)
    return thread


def stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=5)
