"""One retry policy (``gsy_e_sdk.wire.retry``) for every connection, one Redis URL resolver
(``gsy_e_sdk.wire.redis_url``), and the start-up probe that fails fast. No server: the probe is
pointed at a port nothing listens on."""

from __future__ import annotations

import socket
import time

import pytest
from redis.backoff import ExponentialBackoff
from urllib3.exceptions import ConnectTimeoutError
from urllib3.response import HTTPResponse

from gsy_e_sdk import rest_session
from gsy_e_sdk.websocket_connection import WebsocketConnection
from gsy_e_sdk.wire import retry
from gsy_e_sdk.wire.redis_connection import RedisConnection
from gsy_e_sdk.wire.redis_url import (
    LOCAL_REDIS_URL,
    RedisUnavailable,
    require_redis,
    resolve_redis_url,
)
from gsy_local_exchange.redis_api import connect
from orchestrator.config import parse_fleet_config


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _total_wait(policy: retry.Backoff) -> float:
    backoff = ExponentialBackoff(cap=policy.cap, base=policy.base)
    return sum(backoff.compute(failures) for failures in range(1, policy.retries + 1))


def test_redis_connections_use_the_named_policies():
    # The SDK and the fleet give up on a command after about 35 s; the exchange rides out ~2 min.
    assert 30 < _total_wait(retry.REDIS) < 40 and _total_wait(retry.EXCHANGE_REDIS) > 100
    connection = RedisConnection("redis://127.0.0.1:1")  # nothing connects before first use
    try:
        assert connection.redis.get_retry() == retry.redis_retry(retry.REDIS)
    finally:
        connection.close()
    assert connect("redis://127.0.0.1:1").get_retry() == retry.redis_retry(retry.EXCHANGE_REDIS)


def test_the_rest_session_mounts_the_http_policy():
    mounted = rest_session.session().get_adapter("https://example.org/").max_retries
    assert isinstance(mounted, retry.CappedRetry)
    assert (mounted.total, mounted.read, mounted.backoff_max) == (retry.HTTP.retries, retry.HTTP_READ_RETRIES, 30.0)
    delays = []
    for _ in range(mounted.total):
        mounted = mounted.increment("POST", "/x", error=ConnectTimeoutError())
        delays.append(mounted.get_backoff_time())
    assert delays[3] > delays[1] > 0 and max(delays) <= retry.HTTP.cap + retry.HTTP_BACKOFF_JITTER_SECS
    huge = HTTPResponse(status=503, headers={"Retry-After": "86400"})
    assert mounted.get_retry_after(huge) == retry.HTTP_RETRY_AFTER_MAX_SECS


def test_websocket_reconnect_delays_grow_jittered_to_the_cap():
    delays = retry.reconnect_delays(retry.Backoff(base=0.5, cap=30.0))
    values = [next(delays) for _ in range(14)]
    ceilings = [min(30.0, 0.5 * 2**n) for n in range(14)]
    assert all(ceiling / 2 <= value <= ceiling for value, ceiling in zip(values, ceilings, strict=True))
    assert len(set(values)) == len(values)  # jittered, not a fixed ladder
    socket_ = WebsocketConnection("ws://127.0.0.1:1/", auth=None, on_message=lambda _m: None)  # type: ignore[arg-type]
    assert socket_._delays is retry.reconnect_delays  # the default of every socket


def test_the_probe_tries_once_or_until_its_caller_s_deadline():
    assert retry.probe_retry(0).get_retries() == 0
    assert retry.probe_retry(retry.BROKER_WAIT_S).get_retries() == -1  # require_redis ends it at the deadline


def test_the_redis_url_is_a_flag_then_env_then_config_then_default(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert resolve_redis_url() == LOCAL_REDIS_URL
    assert resolve_redis_url(configured="redis://file") == "redis://file"
    monkeypatch.setenv("REDIS_URL", "redis://env")
    assert resolve_redis_url(configured="redis://file") == "redis://env"
    assert resolve_redis_url("redis://flag", configured="redis://file") == "redis://flag"
    config = parse_fleet_config(
        {"aggregators": [{"name": "a", "assets": ["x"]}], "exchange": {"redis_url": "redis://file"}}
    )
    assert config.exchange_redis_url("redis://flag") == "redis://flag"
    assert config.exchange_redis_url() == "redis://env"
    monkeypatch.delenv("REDIS_URL")
    assert config.exchange_redis_url() == "redis://file"


def test_nothing_listening_fails_at_once_naming_the_url_without_its_password():
    url = f"redis://:hunter2@127.0.0.1:{_closed_port()}/0"
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as refused:
        require_redis(url)
    assert time.monotonic() - started < retry.PROBE_TIMEOUT_S
    assert str(refused.value).startswith(f"no Redis answers at redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]}")
    assert "hunter2" not in str(refused.value)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable, match="within 1 s"):
        require_redis(url, wait=1.0)
    assert 1.0 <= time.monotonic() - started < 1.0 + 2 * retry.PROBE_TIMEOUT_S
    with pytest.raises(RedisUnavailable, match="invalid Redis URL") as invalid:
        require_redis("http://:hunter2@example.org")
    assert "hunter2" not in str(invalid.value)
