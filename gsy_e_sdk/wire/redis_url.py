"""Which Redis a process talks to, and whether anything answers there before it starts.

Why one module: the SDK, the exchange, the fleet and their CLIs each read ``REDIS_URL`` their
own way, and a command pointed at a Redis that is not there waited ~35 s in redis-py's retries
before ending in a traceback. Here the URL is resolved once (a flag > env ``REDIS_URL`` > a
config file's > a default), every CLI takes ``--redis-url`` from ``redis_url_option``, and
``require_redis`` checks at start-up, with a short connect timeout, that a server answers: a
wrong URL fails in seconds with ``no Redis answers at <url>`` (password hidden), while a Redis
lost later is retried by the normal policy (``gsy_e_sdk.wire.retry``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gsy_e_sdk.wire.redact import redact_url
from gsy_e_sdk.wire.retry import PROBE_TIMEOUT_S, probe_retry

REDIS_URL_ENV = "REDIS_URL"  # as gsy-e reads it (REDIS.md 1)
LOCAL_REDIS_URL = "redis://localhost:6379"  # where gsy-e listens by default (REDIS.md 1)

F = TypeVar("F", bound=Callable[..., Any])


class RedisUnavailable(RuntimeError):
    """No Redis answers at the URL (the message shows it with the password hidden)."""


def chosen_redis_url(explicit: str | None = None) -> str | None:
    """The URL someone chose: ``explicit`` (a ``--redis-url`` flag), else env ``REDIS_URL``; else None."""
    return explicit or os.environ.get(REDIS_URL_ENV) or None


def resolve_redis_url(
    explicit: str | None = None, *, configured: str | None = None, default: str = LOCAL_REDIS_URL
) -> str:
    """``explicit`` > env ``REDIS_URL`` > ``configured`` (a config file's) > ``default``."""
    return chosen_redis_url(explicit) or configured or default


def require_redis(url: str, *, wait: float = 0.0, what: str = "") -> str:
    """``url``, once a Redis there answers PING; else ``RedisUnavailable`` naming it.

    One attempt with a ``PROBE_TIMEOUT_S`` connect timeout, or attempts until ``wait`` seconds
    have passed (a worker waiting for its broker). A refused password is not retried.
    """
    shown = redact_url(url)
    where = f"{shown} ({what})" if what else shown
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=PROBE_TIMEOUT_S,
            socket_timeout=PROBE_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # the probe's own retry, below, decides
        )
    except ValueError as exc:
        raise RedisUnavailable(f"invalid Redis URL {shown}: {exc}") from None
    deadline = time.monotonic() + wait

    def retryable(error: Exception) -> bool:
        return not isinstance(error, redis.AuthenticationError) and time.monotonic() < deadline

    try:
        probe_retry(wait).call_with_retry(client.ping, lambda _error: None, is_retryable=retryable)
    except redis.AuthenticationError as exc:
        raise RedisUnavailable(f"Redis at {where} refused the login: {exc}") from None
    except (redis.RedisError, OSError) as exc:
        within = f" within {wait:g} s" if wait else ""
        raise RedisUnavailable(f"no Redis answers at {where}{within}: {_reason(exc)}") from None
    finally:
        client.close()
    return url


def redis_answers(url: str) -> bool:
    """True when a Redis at ``url`` answers PING now (one attempt)."""
    try:
        require_redis(url)
    except RedisUnavailable:
        return False
    return True


def _reason(exc: BaseException) -> str:
    """redis-py's text without its "Error 111 connecting to host:port." preamble."""
    text = str(exc).strip() or type(exc).__name__
    return text.rsplit(". ", 1)[-1].rstrip(".").lower() if text.startswith("Error ") else text


def redis_url_option(help: str, name: str = "redis_url") -> Callable[[F], F]:
    """``--redis-url`` (env ``REDIS_URL``): the one definition every CLI uses."""
    import click  # noqa: PLC0415 - only CLIs need click; SDK clients import this module too

    return click.option("--redis-url", name, envvar=REDIS_URL_ENV, default=None, help=help)
