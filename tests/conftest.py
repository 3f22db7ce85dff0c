"""Shared fixtures: a real Redis server and a real local exchange in a subprocess.

Tests use ``REDIS_URL`` when set, otherwise a private ``redis-server`` started for the session
(so they pass on machines with no Redis and never collide with anything on port 6379).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gsy_local_exchange.embedded_redis import PrivateRedis, answers
from orchestrator.processes import wait_for_exchange
from tests.processes import Proc

# Fixture modules that tests of several packages use by name (registered, not imported, so no
# test module shadows a fixture with an import).
pytest_plugins = [
    "tests.integration.raw_client",
    "tests.integration.sdk_rest_fixtures",
    "tests.reliability.fleet_harness",
]

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "gsy_local_exchange" / "scenarios"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[PrivateRedis | None]:
    """The session's private Redis (None when ``REDIS_URL`` points at an external one)."""
    if os.environ.get("REDIS_URL"):
        assert answers(os.environ["REDIS_URL"]), "REDIS_URL is set but nothing answers there"
        yield None
        return
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: PrivateRedis | None) -> str:
    return redis_server.url if redis_server else os.environ["REDIS_URL"]


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


class ExchangeProcess(Proc):
    """A ``gsy-e-sdk exchange run`` child process."""

    def __init__(self, args: list[str], redis_url: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        super().__init__(
            [
                sys.executable,
                "-m",
                "gsy_e_sdk",
                "--log-level",
                "INFO",
                "exchange",
                "run",
                "--redis-url",
                redis_url,
                *args,
            ],
            log_path,
            env,
        )
        self._redis = redis.Redis.from_url(redis_url)

    def wait_ready(self, timeout: float = 20.0) -> ExchangeProcess:
        try:
            wait_for_exchange(self._redis, self.process, timeout)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}:\n{self.output()}") from None
        return self

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"exchange still running after {timeout} s:\n{self.output()}") from None

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._redis.close()


@pytest.fixture()
def start_exchange(redis_url: str, tmp_path: Path) -> Iterator:
    """Factory: ``start_exchange("external_devices.json", "--duration", "2h")`` -> ready process.

    A bare scenario file name is looked up in ``gsy_local_exchange/scenarios``. ``env`` adds variables to
    the child's environment only (e.g. ``GSY_EXCHANGE_USERS`` for the HTTP facade).
    """
    started: list[ExchangeProcess] = []

    def _start(
        scenario: str | Path, *args: str, ready: bool = True, env: dict[str, str] | None = None
    ) -> ExchangeProcess:
        path = Path(scenario)
        if not path.is_absolute() and not path.exists():
            path = SCENARIOS / path
        process = ExchangeProcess(
            ["--scenario", str(path), *args], redis_url, tmp_path / f"exchange-{len(started)}.log", env
        )
        started.append(process)
        return process.wait_ready() if ready else process

    yield _start
    for process in started:
        process.stop()
