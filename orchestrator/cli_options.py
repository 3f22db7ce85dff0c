"""What every fleet command does with its options: load the fleet file, pick its Redis, or exit 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from gsy_e_sdk.wire.redis_url import RedisUnavailable, redis_url_option, require_redis
from orchestrator.config import FleetConfig, FleetConfigError, load_fleet_config

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

redis_option = redis_url_option(
    "The exchange's Redis, holding the fleet's state [env REDIS_URL]; default: the fleet file's "
    "exchange.redis_url, else 127.0.0.1:6379."
)


def exit_with(lines: str) -> NoReturn:
    """Each line of ``lines`` as ``Error: ...`` on stderr, then exit code 2 (no traceback)."""
    for line in lines.splitlines():
        click.echo(f"Error: {line}", err=True)
    sys.exit(2)


def load_or_exit(path: Path) -> FleetConfig:
    """The fleet file, or its mistakes (one line each, naming the field) and exit code 2."""
    try:
        config = load_fleet_config(path)
    except FleetConfigError as exc:
        exit_with(str(exc))
    # The broker's settings from the environment, checked before anything starts.
    from orchestrator.celery_app import BrokerSettingError, check_broker_env  # noqa: PLC0415 - Celery: the fleet extra

    try:
        check_broker_env()
    except BrokerSettingError as exc:
        exit_with(str(exc))
    return config


def fleet_redis_url(config: FleetConfig, explicit: str | None, *, broker: bool = True) -> str:
    """The fleet's Redis (flag > env REDIS_URL > the file's), once it and the broker answer; else exit 2.

    Checked with a short timeout before anything else, so a wrong URL fails in seconds with the
    URL named (password hidden) instead of after redis-py's retries in a traceback.
    """
    url = config.exchange_redis_url(explicit)
    require_or_exit(url)
    if broker and config.broker_url and config.broker_url != url:
        require_or_exit(config.broker_url, what="the Celery broker")
    return url


def require_or_exit(url: str, *, wait: float = 0.0, what: str = "") -> None:
    """Exit 2 with one line unless a Redis answers at ``url`` (within ``wait`` s); other schemes
    (an AMQP broker) are Celery's to check."""
    if not url.startswith(REDIS_SCHEMES):
        return
    try:
        require_redis(url, wait=wait, what=what)
    except RedisUnavailable as exc:
        exit_with(str(exc))
