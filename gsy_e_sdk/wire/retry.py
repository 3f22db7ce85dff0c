"""How every connection of the process retries: the numbers, and the libraries' own retry objects.

Why one module: the SDK's Redis clients, the fleet, the local exchange, the REST session and the
websockets each used to pick their own backoff; here each policy is named once, with its reason,
and turned into what the library at hand expects:

* Redis: redis-py's ``Retry`` with ``ExponentialBackoff`` (``redis_retry``), on every connection;
* HTTP: urllib3's ``Retry`` (``http_retry``), mounted on the REST session;
* websockets: the delays between reconnects (``reconnect_delays``), redis-py's ``EqualJitterBackoff``;
* start-up: a probe with a short connect timeout tells "nothing listens" apart from "lost for a
  while" (``gsy_e_sdk.wire.redis_url.require_redis``), so a command with a wrong URL fails in
  seconds while a running one rides out an outage with the policies above.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from redis.backoff import ConstantBackoff, EqualJitterBackoff, ExponentialBackoff
from redis.retry import Retry as RedisRetry
from urllib3.util import Retry as HttpRetry


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: the n-th wait (from 0) is ``min(cap, base * 2**n)`` seconds."""

    base: float
    cap: float
    retries: int = -1  # attempts after the first; -1: forever (redis-py's convention)


# Each Redis command: 0.05 s doubling to 2 s, 20 times (about 35 s); then a publish fails and a
# reader starts another round.
REDIS = Backoff(base=0.05, cap=2.0, retries=20)
# The local exchange is the server: it rides out a Redis restart of about two minutes.
EXCHANGE_REDIS = Backoff(base=0.05, cap=2.0, retries=60)
# HTTP: urllib3 waits backoff_factor * 2**(n-1) s (0.5 s doubling to 30 s, plus jitter) between
# 6 attempts (2 for read errors: the request may have been applied), honouring Retry-After up to
# a cap. Every method is retried, POST included: bodies carry a transaction id the exchange dedupes.
HTTP = Backoff(base=0.5, cap=30.0, retries=6)
HTTP_READ_RETRIES = 2
HTTP_BACKOFF_JITTER_SECS = 0.5
HTTP_RETRY_AFTER_MAX_SECS = 120.0
HTTP_RETRY_STATUSES = (429, 500, 502, 503, 504)
# Websockets reconnect forever: 0.5 s doubling to 30 s, each wait drawn in [d/2, d]; a connection
# that lived longer than 30 s counts as healthy and starts the backoff over.
WEBSOCKET = Backoff(base=0.5, cap=30.0)
WEBSOCKET_HEALTHY_AFTER_SECS = 30.0
# The fleet's watch of worker events (orchestrator.failover) reconnects forever, quickly: a long
# wait after a broker restart would leave a lost worker's shards unconsumed for that long.
BROKER_EVENTS = Backoff(base=0.25, cap=5.0)
# Start-up probes: how long one attempt may take to connect and answer, and how often a command
# that waits for its server (a worker for its broker) asks again.
PROBE_TIMEOUT_S = 2.0
PROBE_INTERVAL_S = 0.5
BROKER_WAIT_S = 10.0


def redis_retry(policy: Backoff = REDIS) -> RedisRetry:
    """redis-py's retry for a connection pool (give it ``retry_on_error`` for connection errors)."""
    return RedisRetry(ExponentialBackoff(cap=policy.cap, base=policy.base), policy.retries)


def probe_retry(wait: float) -> RedisRetry:
    """Ask again every ``PROBE_INTERVAL_S`` (no wait: one attempt only); the caller ends it at its
    deadline (``is_retryable``), so a server that drops packets costs at most one more timeout."""
    return RedisRetry(ConstantBackoff(PROBE_INTERVAL_S), -1 if wait > 0 else 0)


class CappedRetry(HttpRetry):
    """urllib3's ``Retry`` that never sleeps longer than ``HTTP_RETRY_AFTER_MAX_SECS`` for a Retry-After."""

    def get_retry_after(self, response: Any) -> float | None:
        retry_after = super().get_retry_after(response)
        if retry_after is None:
            return None
        return min(retry_after, HTTP_RETRY_AFTER_MAX_SECS)


def http_retry() -> CappedRetry:
    """The REST session's retry: connection and read errors, and statuses 429/500/502/503/504."""
    return CappedRetry(
        total=HTTP.retries,
        connect=HTTP.retries,
        read=HTTP_READ_RETRIES,
        status=HTTP.retries,
        other=0,
        allowed_methods=None,  # POST too: transaction ids make repeats safe
        status_forcelist=HTTP_RETRY_STATUSES,
        backoff_factor=HTTP.base,
        backoff_max=HTTP.cap,
        backoff_jitter=HTTP_BACKOFF_JITTER_SECS,
        respect_retry_after_header=True,
        raise_on_status=False,  # hand back the last answer; the caller logs it
        raise_on_redirect=False,
    )


def reconnect_delays(policy: Backoff = WEBSOCKET) -> Iterator[float]:
    """Endless waits between reconnects: the n-th drawn in [d/2, d], d = min(cap, base * 2**n)."""
    backoff = EqualJitterBackoff(cap=policy.cap, base=policy.base)
    return (backoff.compute(failures) for failures in itertools.count())
