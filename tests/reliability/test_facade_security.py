"""The HTTP facade against a hostile second user and hostile anonymous clients (issue 14).

A real ``gsy-e-sdk exchange run --http-port`` in a subprocess, spoken to over raw HTTP and
websockets; CPU and memory figures are read from the exchange process's /proc entries.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests
import uvicorn
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from gsy_e_sdk.wire.redis_connection import RedisConnection
from gsy_local_exchange.http import state as facade_state
from gsy_local_exchange.http.app import create_app
from gsy_local_exchange.http.hub import WebsocketHub
from gsy_local_exchange.http.rate_limit import RateLimiter
from gsy_local_exchange.http.relay import ExchangeRelay
from gsy_local_exchange.http.server import serve_in_thread, stop
from gsy_local_exchange.http.state import FacadeState
from gsy_local_exchange.http.tokens import TokenIssuer
from gsy_local_exchange.http.users import Users
from tests.integration.raw_client import (
    FORECAST_LOAD,
    HOUSE_2,
    LOAD,
    OTHER,
    OTHER_PASSWORD,
    PASSWORD,
    PV,
    SIM,
    USER,
    RawRest,
    free_port,
)

pytestmark = pytest.mark.integration

SLOT = "2026-06-01T11:15"
ASSET_CALLS = [  # every per-asset endpoint, each with a body it would accept from the area's owner
    ("POST", "register/", {}),
    ("POST", "unregister/", {}),
    ("POST", "set-energy-forecast/", {"energy_forecast": {SLOT: 1}}),
    ("POST", "set_energy_forecast/", {"energy_Wh": 100}),
    ("POST", "set-energy-measurement/", {"energy_measurement": {SLOT: 1}}),
    ("POST", "set_energy_measurement/", {"energy_measurement": {SLOT: 1}}),
    ("POST", "set-live-generation/", {"live_data": {}}),
    ("POST", "set-scm-timeseries-and-member-data/", {}),
    ("POST", "offer/", {"energy": 0.1, "price": 1}),
    ("POST", "bid/", {"energy": 0.1, "price": 30}),
    ("POST", "update_offer/", {"energy": 0.1, "price": 1}),
    ("POST", "update_bid/", {"energy": 0.1, "price": 30}),
    ("POST", "delete-offer/", {"offer": None}),
    ("POST", "delete-bid/", {"bid": None}),
    ("GET", "list-offers", {}),
    ("GET", "list-bids", {}),
    ("GET", "device-stats", {}),
]
MARKET_CALLS = [("POST", "grid-fee/", {"fee_const": 1}), ("GET", "dso-market-stats", {})]


def _proc_status(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds used so far) of a process."""
    rss = (
        next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        / 1024
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return rss, ticks / 100  # USER_HZ is 100 on Linux


def _graphql_devices(rest: RawRest) -> list[dict]:
    return rest.graphql("{ aggregatorsList { name devicesList { deviceUuid } } }").json()["data"]["aggregatorsList"]


def test_another_user_can_neither_use_nor_take_an_asset_of_an_aggregator(http_exchange) -> None:
    _, alice = http_exchange("--pace", "3", "--duration", "1h")
    bob = RawRest(alice.port, OTHER, OTHER_PASSWORD)
    aggregator = alice.aggregator_api("create-aggregator", {"name": "alice-agg"}).json()["uuid"]
    events = alice.socket(f"aggregator/{aggregator}")
    for device in (LOAD, HOUSE_2):
        assert alice.aggregator_api("select-aggregator", {"aggregator_uuid": aggregator, "device_uuid": device}).ok

    for method, path, body in ASSET_CALLS:
        response = bob.asset_api(LOAD, path, body, method)
        assert response.status_code == 404, (path, response.text)
        assert response.json() == {"error": f"Area {LOAD} not found in this simulation."}
    for method, path, body in MARKET_CALLS:
        assert bob.asset_api(HOUSE_2, path, body, method).status_code == 404, path
    for path in (LOAD, f"aggregator/{aggregator}"):
        with pytest.raises(InvalidStatus) as refused:
            bob.socket(path)
        assert refused.value.response.status_code == 404
    bob_aggregator = bob.aggregator_api("create-aggregator", {"name": "bob-agg"}).json()["uuid"]
    bob_events = bob.socket(f"aggregator/{bob_aggregator}")
    assert (
        bob.aggregator_api("select-aggregator", {"aggregator_uuid": bob_aggregator, "device_uuid": LOAD}).status_code
        == 404
    )
    for name in ("select-aggregator", "unselect-aggregator"):
        assert bob.aggregator_api(name, {"aggregator_uuid": aggregator, "device_uuid": LOAD}).status_code == 404
    assert bob.aggregator_api("delete-aggregator", {"aggregator_uuid": aggregator}).status_code == 404
    assert (
        bob.aggregator_api(
            "batch-commands",
            {"aggregator_uuid": aggregator, "batch_commands": {LOAD: [{"type": "bid", "energy": 0.01, "price": 30}]}},
        ).status_code
        == 404
    )
    ack = bob.aggregator_api(
        "batch-commands",
        {
            "aggregator_uuid": bob_aggregator,
            "transaction_id": "bob-batch",
            "batch_commands": {LOAD: [{"type": "bid", "energy": 0.01, "price": 30}]},
        },
    )
    assert ack.status_code == 200  # the exchange judges each command: none may act on Alice's load
    answer = bob_events.wait_for(lambda f: f.get("transaction_id") == "bob-batch")
    assert [entry["status"] for entry in answer["responses"][LOAD]] == ["error"]
    assert _graphql_devices(bob) == [{"name": "bob-agg", "devicesList": []}]
    registry = json.dumps(bob.call("GET", f"/external-connection/configurations/{SIM}/registry").json())
    assert "alice-agg" not in registry

    # Alice still holds everything: her view, her socket, her orders through her aggregator.
    assert _graphql_devices(alice) == [
        {"name": "alice-agg", "devicesList": [{"deviceUuid": HOUSE_2}, {"deviceUuid": LOAD}]}
    ]
    direct = alice.asset_api(LOAD, "bid/", {"energy": 0.1, "price": 30})
    assert direct.status_code == 409 and aggregator in direct.json()["error"]  # direct mode is for free areas
    events.wait_for(lambda f: f.get("event") == "market")
    alice.aggregator_api(
        "batch-commands",
        {
            "aggregator_uuid": aggregator,
            "transaction_id": "alice-batch",
            "batch_commands": {LOAD: [{"type": "bid", "energy": 0.01, "price": 30, "replace_existing": True}]},
        },
    )
    answer = events.wait_for(lambda f: f.get("transaction_id") == "alice-batch")
    assert [entry["status"] for entry in answer["responses"][LOAD]] == ["ready"]

    # An area registered directly belongs to its registrant until it unregisters.
    assert bob.asset_api(FORECAST_LOAD, "register/").status_code == 200
    assert alice.asset_api(FORECAST_LOAD, "device-stats", method="GET").status_code == 404
    assert (
        alice.aggregator_api(
            "select-aggregator", {"aggregator_uuid": aggregator, "device_uuid": FORECAST_LOAD}
        ).status_code
        == 404
    )
    assert bob.asset_api(FORECAST_LOAD, "unregister/").status_code == 200
    assert (
        alice.aggregator_api(
            "select-aggregator", {"aggregator_uuid": aggregator, "device_uuid": FORECAST_LOAD}
        ).status_code
        == 200
    )
    events.close()
    bob_events.close()


def test_transaction_ids_are_scoped_to_their_user(http_exchange) -> None:
    _, alice = http_exchange("--paused")
    bob = RawRest(alice.port, OTHER, OTHER_PASSWORD)
    hers = alice.aggregator_api("create-aggregator", {"name": "hers", "transaction_id": "shared-id"}).json()
    his = bob.aggregator_api("create-aggregator", {"name": "his", "transaction_id": "shared-id"}).json()
    assert his["uuid"] != hers["uuid"] and his["name"] == "his"
    assert bob.aggregator_api("list-aggregators", method="GET").json() == [{"name": "his", "uuid": his["uuid"]}]
    again = alice.aggregator_api("create-aggregator", {"name": "hers", "transaction_id": "shared-id"}).json()
    assert again["uuid"] == hers["uuid"]  # a retry is still answered as before


def test_retry_answers_are_bounded_in_count_and_bytes(redis_client: redis.Redis, monkeypatch) -> None:
    monkeypatch.setattr(facade_state, "ANSWERS_KEPT", 5)
    monkeypatch.setattr(facade_state, "ANSWER_BYTES_KEPT", 2_000)
    state = FacadeState(redis_client, f"bounds-{uuid.uuid4()}")
    for index in range(20):
        state.remember("alice", f"tx-{index}", 200, {"index": index, "padding": "x" * 300})
    kept = [index for index in range(20) if state.answered("alice", f"tx-{index}") is not None]
    assert kept == list(range(15, 20))  # the newest, within the count bound
    stored = redis_client.hgetall(state.prefix + "answers")
    assert sum(len(value) for value in stored.values()) <= 2_000
    assert int(redis_client.get(state.prefix + "answer-bytes")) == sum(len(v) for v in stored.values())
    state.remember("alice", "huge", 200, {"padding": "x" * (facade_state.LARGEST_ANSWER_KEPT + 1)})
    assert state.answered("alice", "huge") is None
    assert state.answered("bob", "tx-19") is None  # scoped to the user


def test_batches_above_the_command_cap_are_refused_before_the_exchange(http_exchange) -> None:
    _, rest = http_exchange("--paused", "--http-max-batch-commands", "5")
    aggregator = rest.aggregator_api("create-aggregator", {"name": "capped"}).json()["uuid"]
    refused = rest.aggregator_api(
        "batch-commands",
        {"aggregator_uuid": aggregator, "batch_commands": {PV: [{"type": "offer", "energy": 0.1, "price": 1}] * 6}},
    )
    assert refused.status_code == 400
    assert "6 commands, at most 5" in refused.json()["error"] and refused.json()["limit"] == 5
    assert (
        rest.aggregator_api(
            "batch-commands",
            {"aggregator_uuid": aggregator, "batch_commands": {PV: [{"type": "offer", "energy": 0.1, "price": 1}] * 5}},
        ).status_code
        == 200
    )


def _send_big_body(port: int, chunked: bool, size: int = 50 * 1024 * 1024) -> tuple[int, int]:
    """POST ``size`` bytes to the unauthenticated login, as a client that stops sending once an
    answer comes; returns (HTTP status or 0 when the connection was reset first, bytes sent)."""
    head = (
        "POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n")
        + "\r\n"
    )
    chunk = b"x" * (1024 * 1024)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            # A server that answers from the headers alone has answered within this wait.
            while sent < size and not select.select([sock], [], [], 1.0 if sent == 0 else 0)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
            status_line = sock.recv(200).split(b"\r\n", 1)[0]
        except OSError:
            return 0, sent  # the facade closed the connection: what it should do
    return (int(status_line.split()[1]) if status_line.startswith(b"HTTP/1.1") else 0), sent


def test_large_bodies_are_refused_unread_even_on_the_login(http_exchange) -> None:
    process, rest = http_exchange("--paused")
    rss_before, _ = _proc_status(process.pid)
    results: list[tuple[bool, int, int]] = []
    senders = [
        threading.Thread(target=lambda c=chunked: results.append((c, *_send_big_body(rest.port, c))))
        for chunked in (False, True, False, True)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(120)
    rss_after, _ = _proc_status(process.pid)
    print(f"facade RSS around 4 x 50 MB login bodies: {rss_before:.0f} MB -> {rss_after:.0f} MB; {results}")
    assert rss_after - rss_before < 25, (rss_before, rss_after)
    assert len(results) == 4
    for chunked, status, sent in results:
        if chunked:  # refused after the limit: the connection closes long before 50 MB
            assert status in (413, 0) and sent <= 16 * 1024 * 1024, (status, sent)
        else:  # refused from Content-Length alone, before a byte of the body
            assert (status, sent) == (413, 0)
    big = requests.post(
        f"{rest.base}/external-connection/aggregator-api/{SIM}/create-aggregator/",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Authorization": f"JWT {rest.token}"},
        timeout=10,
    )
    assert big.status_code == 413 and big.json()["limit_bytes"] == 1024 * 1024


def test_deep_json_is_a_400_and_clients_leaving_mid_body_cost_one_line(http_exchange) -> None:
    process, rest = http_exchange("--paused")
    path = f"/external-connection/aggregator-api/{SIM}/create-aggregator/"
    for body in ("[" * 100_000 + "]" * 100_000, '{"name": ' + "[" * 40 + "]" * 40 + "}"):
        response = requests.post(
            rest.base + path, data=body, headers={"Authorization": f"JWT {rest.token}"}, timeout=10
        )
        assert response.status_code == 400 and "nested deeper than 32 levels" in response.json()["error"]
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", rest.port), timeout=5) as sock:
            sock.sendall(b'POST /api-token-auth/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"user')
    assert (
        requests.post(
            f"{rest.base}/api-token-auth/", json={"username": USER, "password": PASSWORD}, timeout=5
        ).status_code
        == 200
    )
    time.sleep(0.5)
    log = process.output()
    assert "Traceback" not in log, log[-3000:]
    assert 1 <= log.count("left in the middle of its request body") <= 5


def test_failed_logins_are_throttled_per_user_and_per_peer_and_forwarded_for_is_not_believed(http_exchange) -> None:
    process, rest = http_exchange("--paused")
    login = f"{rest.base}/api-token-auth/"
    for _ in range(3):  # a user mistyping a few times never notices
        assert requests.post(login, json={"username": USER, "password": "typo"}, timeout=5).status_code == 401
    assert requests.post(login, json={"username": USER, "password": PASSWORD}, timeout=5).status_code == 200
    # A guesser rotating X-Forwarded-For over unknown user names: the peer is still 127.0.0.1.
    statuses = [
        requests.post(
            login,
            json={"username": f"guess-{i}", "password": "x"},
            headers={"X-Forwarded-For": f"10.0.{i}.1"},
            timeout=5,
        )
        for i in range(40)
    ]
    throttled = [r for r in statuses if r.status_code == 429]
    assert len(throttled) >= 15 and int(throttled[0].headers["Retry-After"]) >= 1
    refused = requests.post(login, json={"username": USER, "password": PASSWORD}, timeout=5)
    assert refused.status_code == 429  # no password oracle while throttled
    log = process.output()
    assert "from 127.0.0.1" in log and "10.0." not in log


def test_behind_a_trusted_proxy_the_forwarded_peer_counts_and_each_user_is_throttled(http_exchange) -> None:
    process, rest = http_exchange("--paused", "--trusted-proxy", "127.0.0.1")
    login = f"{rest.base}/api-token-auth/"
    statuses = [
        requests.post(
            login,
            json={"username": USER, "password": f"guess-{i}"},
            headers={"X-Forwarded-For": f"10.1.{i}.1"},
            timeout=5,
        ).status_code
        for i in range(15)
    ]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}  # per user, whatever the peer
    assert "from 10.1.0.1" in process.output()


def test_graphql_alias_amplification_is_refused_cheaply(http_exchange) -> None:
    process, rest = http_exchange("--paused")
    aliases = " ".join(
        f'a{i}: readConfiguration(uuid: "{SIM}") {{ scenarioData {{ latest {{ serialized }} }} }}' for i in range(8_000)
    )
    query = "query { " + aliases + " }"
    assert 700_000 < len(query) < 1000 * 1000  # under the body limit: GraphQL's own bounds must hold
    _, cpu_before = _proc_status(process.pid)
    response = rest.graphql(query)
    _, cpu_after = _proc_status(process.pid)
    print(
        f"facade CPU for a {len(query) // 1000} kB query of 8,000 aliases: {cpu_after - cpu_before:.2f} s, "
        f"response {len(response.content)} bytes"
    )
    assert response.json()["data"] is None and response.json()["errors"]
    assert cpu_after - cpu_before < 1.0 and len(response.content) < 10_000
    five = "query { " + " ".join(f"a{i}: aggregatorsList {{ name }}" for i in range(5)) + " }"
    assert "root fields" in rest.graphql(five).json()["errors"][0]["message"]
    introspection = rest.graphql("{ __schema { queryType { name } } }").json()
    assert introspection["data"] is None and "introspection" in introspection["errors"][0]["message"]


def test_graphql_introspection_can_be_enabled(http_exchange) -> None:
    _, rest = http_exchange("--paused", "--graphql-introspection")
    assert rest.graphql("{ __schema { queryType { name } } }").json()["data"] == {
        "__schema": {"queryType": {"name": "Query"}}
    }


def test_a_websocket_closes_when_its_token_expires(http_exchange) -> None:
    _, rest = http_exchange("--paused", "--token-lifetime", "3s")
    rest.token = rest.login()
    aggregator = rest.aggregator_api("create-aggregator", {"name": "short-lived"}).json()["uuid"]
    opened = time.monotonic()
    ws = connect(
        f"{rest.ws_base}/{SIM}/aggregator/{aggregator}/",
        legacy=True,
        additional_headers={"Authorization": f"JWT {rest.token}"},
    )
    ws.socket.settimeout(10)
    with pytest.raises(Exception) as closed:
        while True:
            ws.recv(timeout=10)
    assert "token expired" in str(closed.value) and time.monotonic() - opened < 6


def test_healthz_fails_when_the_readers_thread_has_stopped(start_exchange, redis_url: str) -> None:
    start_exchange("external_devices.json", "--paused", "--simulation-id", SIM)
    connection = RedisConnection(redis_url)  # the facade's own, not the process-wide one
    app = create_app(
        ExchangeRelay(connection, WebsocketHub()),
        Users.model_validate({USER: PASSWORD}),
        TokenIssuer("healthz-test-secret-that-is-long-enough"),
        RateLimiter(0),
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, lifespan="off", log_level="warning"))
    thread = serve_in_thread(server)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        connection.close()  # the reader thread ends, as when a message used to kill it
        unhealthy = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert unhealthy.status_code == 503 and "reader has stopped" in unhealthy.json()["error"]
    finally:
        stop(server, thread)
