"""Fixtures of the SDK's REST tests: a started exchange with its HTTP facade, the SDK's environment.

Registered in ``tests/conftest.py`` (``pytest_plugins``), so every test package uses them by name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from gsy_e_sdk import jwt_auth
from gsy_e_sdk.wire.per_process import PerProcessMap
from tests.integration.raw_client import SIM, free_port

USER, PASSWORD = "rest-user@example.com", "pw-Vq8#not-in-any-log"
SECOND_USER, SECOND_PASSWORD = "second-user", "pw-second-Zk2#also-secret"


class Facade:
    """Where a started exchange's REST facade listens."""

    def __init__(self, process: Any, port: int) -> None:
        self.process = process
        self.domain = f"http://127.0.0.1:{port}"
        self.websocket_domain = f"ws://127.0.0.1:{port}/external-ws"

    def wait_healthy(self, timeout: float = 20.0) -> Facade:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.domain}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the HTTP facade did not become healthy:\n{self.process.output()}")


@pytest.fixture()
def rest_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's credentials and settings, as ``gsy-e-sdk run`` would export them."""
    monkeypatch.setenv("API_CLIENT_USERNAME", USER)
    monkeypatch.setenv("API_CLIENT_PASSWORD", PASSWORD)
    monkeypatch.setenv("API_CLIENT_SIMULATION_ID", SIM)
    monkeypatch.setenv("API_CLIENT_RUN_ON_REDIS", "false")
    # Each test talks to a new server on a new port: start without cached tokens.
    monkeypatch.setattr(jwt_auth, "_providers", PerProcessMap(jwt_auth._new_provider))


@pytest.fixture()
def facade(start_exchange, rest_env, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Facade]:
    def _start(*args: str) -> Facade:
        port = free_port()
        users = json.dumps({USER: PASSWORD, SECOND_USER: SECOND_PASSWORD})
        process = start_exchange(
            "external_devices.json",
            "--http-port",
            str(port),
            "--simulation-id",
            SIM,
            "--start-date",
            "2026-06-01T10:00",
            *args,
            env={"GSY_EXCHANGE_USERS": users},
        )
        started = Facade(process, port).wait_healthy()
        monkeypatch.setenv("API_CLIENT_DOMAIN_NAME", started.domain)
        monkeypatch.setenv("API_CLIENT_WEBSOCKET_DOMAIN_NAME", started.websocket_domain)
        return started

    return _start


@pytest.fixture()
def closing() -> Iterator[Callable[[Any], Any]]:
    """Registers REST clients whose websockets are closed after the test."""
    clients: list[Any] = []

    def _register(client: Any) -> Any:
        clients.append(client)
        return client

    yield _register
    for client in clients:
        client.close()
