"""Protocol clients made of plain redis-py, requests and websockets calls, so exchange and
facade tests depend on no SDK code: ``RawClient`` for REDIS.md, ``RawRest``/``RawSocket`` for REST.md."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
import requests
from websockets.sync.client import connect as ws_connect


class RawClient:
    """Records every message on every channel and lets tests wait for the ones they expect."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.history: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(**{"*": self._record})
        self._thread = self._pubsub.run_in_thread(sleep_time=0.01, daemon=True)
        time.sleep(0.05)

    def _record(self, message: dict) -> None:
        try:
            data = json.loads(message["data"])
        except (TypeError, ValueError):
            data = message["data"]
        with self._lock:
            self.history.append((message["channel"], data))

    def close(self) -> None:
        self._thread.stop()
        self._thread.join(timeout=2)
        self._pubsub.close()
        self.redis.close()

    def publish(self, channel: str, payload: dict | str) -> None:
        self.redis.publish(channel, payload if isinstance(payload, str) else json.dumps(payload))

    def seen(self, predicate: Callable[[str, Any], bool]) -> list[tuple[str, Any]]:
        with self._lock:
            return [(channel, data) for channel, data in self.history if predicate(channel, data)]

    def wait_for(self, predicate: Callable[[str, Any], bool], timeout: float = 15.0, after: int = 0) -> tuple[str, Any]:
        """First message at index >= ``after`` for which ``predicate(channel, data)`` holds."""
        deadline = time.monotonic() + timeout
        index = after
        while True:
            with self._lock:
                fresh = self.history[index:]
                index += len(fresh)
            for channel, data in fresh:
                if predicate(channel, data):
                    return channel, data
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching message within {timeout} s")
            time.sleep(0.01)

    def mark(self) -> int:
        with self._lock:
            return len(self.history)

    def request(self, channel: str, payload: dict, response_channel: str, timeout: float = 10.0) -> Any:
        """Publish with a fresh transaction id and wait for the reply carrying it."""
        transaction_id = payload.setdefault("transaction_id", str(uuid.uuid4()))
        after = self.mark()
        self.publish(channel, payload)
        return self.wait_for(
            lambda ch, data: (
                ch == response_channel and isinstance(data, dict) and data.get("transaction_id") == transaction_id
            ),
            timeout,
            after,
        )[1]


# --- The REST + websocket wire (REST.md) by hand: requests and websockets, no SDK code ---------

SIM = "84d221fa-46e1-49e0-823b-26cfb3425a5a"
USER, PASSWORD = "operator@example.com", "correct horse battery staple"
OTHER, OTHER_PASSWORD = "other", "other-password"
SECRET = "test-signing-secret-0123456789abcdef-long-enough"
# Areas of gsy_local_exchange/scenarios/external_devices.json
PV = "b37fa597-9a6d-4c5e-a724-312c98687c3b"
LOAD = "a8360191-b0c2-40a5-bc0f-3f9ede459e15"
FORECAST_LOAD = "2daa372a-b964-414b-aa57-e163e5dfdad2"  # forecast-measurement-load
HOUSE_2 = "533b09da-abb3-47ee-b8e0-706599b14f3a"
NOT_CONTROLLABLE = "06b29ce5-43ca-4e54-8b95-d8458a079b0f"  # H1 General Load


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RawRest:
    """REST.md by hand: JSON bodies (on GET too), ``Authorization: JWT <token>``."""

    def __init__(self, port: int, user: str = USER, password: str = PASSWORD) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}/external-ws"
        self.user, self.password = user, password
        self.token = self.login()

    def login(self) -> str:
        response = requests.post(
            f"{self.base}/api-token-auth/", json={"username": self.user, "password": self.password}, timeout=5
        )
        assert response.status_code == 200, response.text
        return response.json()["access"]

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"JWT {token or self.token}"}
        payload = {"transaction_id": str(uuid.uuid4()), **(body or {})}
        return requests.request(method, self.base + path, data=json.dumps(payload), headers=headers, timeout=15)

    def asset_api(self, area: str, name: str, body: dict | None = None, method: str = "POST") -> requests.Response:
        return self.call(method, f"/external-connection/api/{SIM}/{area}/{name}", body)

    def aggregator_api(self, name: str, body: dict | None = None, method: str = "POST") -> requests.Response:
        return self.call(method, f"/external-connection/aggregator-api/{SIM}/{name}/", body)

    def graphql(self, query: str) -> requests.Response:
        return requests.post(
            f"{self.base}/graphql/", json={"query": query}, headers={"Authorization": f"JWT {self.token}"}, timeout=30
        )

    def socket(self, path: str) -> RawSocket:
        return RawSocket(
            ws_connect(
                f"{self.ws_base}/{SIM}/{path}/", legacy=True, additional_headers={"Authorization": f"JWT {self.token}"}
            )
        )


class RawSocket:
    """Collects a websocket's frames on a thread; frames must be binary JSON (REST.md 4.2)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: queue.Queue[Any] = queue.Queue()
        self.kinds: list[type] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for frame in self.ws:
                self.kinds.append(type(frame))
                self.frames.put(json.loads(frame))
        except Exception:  # noqa: BLE001 - the socket closed
            pass
        self.frames.put(None)

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "no matching websocket frame in time"
            try:
                frame = self.frames.get(timeout=left)
            except queue.Empty:
                continue
            assert frame is not None, "websocket closed"
            if predicate(frame):
                return frame

    def close(self) -> None:
        self.ws.close()


@pytest.fixture()
def facade_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users and signing secret reach the exchange subprocess through its environment only."""
    monkeypatch.setenv("GSY_EXCHANGE_USERS", json.dumps({USER: PASSWORD, OTHER: OTHER_PASSWORD}))
    monkeypatch.setenv("GSY_EXCHANGE_JWT_SECRET", SECRET)


@pytest.fixture()
def http_exchange(start_exchange, facade_env) -> Callable[..., tuple[Any, RawRest]]:
    """Factory: an ``exchange run`` of external_devices.json with the facade -> (process, client)."""

    def _start(*args: str) -> tuple[Any, RawRest]:
        port = free_port()
        process = start_exchange(
            "external_devices.json",
            "--http-port",
            str(port),
            "--simulation-id",
            SIM,
            "--start-date",
            "2026-06-01T11:00",
            *args,
        )
        return process, RawRest(port)

    return _start
