"""The exchange's HTTP + websocket facade (REST.md), driven by a raw HTTP/websocket client.

A real ``gsy-e-sdk exchange run --http-port`` (and a standalone ``exchange http``) in
subprocesses; requests and websockets speak the wire exactly as REST.md writes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.integration.raw_client import (
    FORECAST_LOAD,
    HOUSE_2,
    LOAD,
    NOT_CONTROLLABLE,
    PV,
    SECRET,
    SIM,
    USER,
    RawRest,
    free_port,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_tokens_missing_forged_and_expired_are_refused(http_exchange) -> None:
    _, rest = http_exchange("--paused")
    path = f"/external-connection/aggregator-api/{SIM}/list-aggregators/"
    assert rest.call("GET", path).status_code == 200
    forged = jwt.encode(
        {"sub": USER, "exp": int(time.time()) + 600}, "another-secret-that-is-32-bytes-or-more", algorithm="HS256"
    )
    expired = jwt.encode({"sub": USER, "exp": int(time.time()) - 5}, SECRET, algorithm="HS256")
    for token, message in ((forged, "Error decoding signature."), (expired, "Signature has expired.")):
        response = rest.call("GET", path, token=token)
        assert response.status_code == 401
        assert response.json() == {"error": message}
    missing = requests.get(rest.base + path, data="{}", timeout=5)
    assert missing.status_code == 401 and "error" in missing.json()
    bearer = requests.get(rest.base + path, headers={"Authorization": f"Bearer {rest.token}"}, timeout=5)
    assert bearer.status_code == 401
    wrong = requests.post(f"{rest.base}/api-token-auth/", json={"username": USER, "password": "nope"}, timeout=5)
    assert wrong.status_code == 401 and "access" not in wrong.json()
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{rest.ws_base}/{SIM}/{PV}/", legacy=True, additional_headers={"Authorization": f"JWT {forged}"})
    assert refused.value.response.status_code == 401


def test_unknown_simulation_or_area_is_404_and_bad_bodies_name_the_field(http_exchange) -> None:
    _, rest = http_exchange("--paused")
    unknown_sim = rest.call("GET", f"/external-connection/aggregator-api/{uuid.uuid4()}/list-aggregators/")
    assert unknown_sim.status_code == 404
    unknown_area = rest.call("POST", f"/external-connection/api/{SIM}/{uuid.uuid4()}/register/")
    assert unknown_area.status_code == 404
    closed_area = rest.call("POST", f"/external-connection/api/{SIM}/{NOT_CONTROLLABLE}/register/")
    assert closed_area.status_code == 403
    bad = rest.call(
        "POST",
        f"/external-connection/api/{SIM}/{PV}/set-energy-forecast/",
        {"energy_forecast": {"2026-06-01T12:00": -1}},
    )
    assert bad.status_code == 400 and "energy_forecast" in bad.json()["error"]
    no_name = rest.aggregator_api("create-aggregator", {"name": ""})
    assert no_name.status_code == 400 and no_name.json()["fields"][0]["field"] == "name"
    not_json = requests.post(
        rest.base + f"/external-connection/aggregator-api/{SIM}/create-aggregator/",
        data="{nope",
        headers={"Authorization": f"JWT {rest.token}"},
        timeout=5,
    )
    assert not_json.status_code == 400
    batch = rest.aggregator_api("batch-commands", {"aggregator_uuid": str(uuid.uuid4()), "batch_commands": {}})
    assert batch.status_code == 404


def test_aggregators_belong_to_their_user_and_creation_is_idempotent(http_exchange) -> None:
    _, rest = http_exchange("--paused")
    created = rest.aggregator_api("create-aggregator", {"name": "mine", "transaction_id": "tx-create-1"})
    again = rest.aggregator_api("create-aggregator", {"name": "mine", "transaction_id": "tx-create-1"})
    assert created.status_code == 200 and again.json()["uuid"] == created.json()["uuid"]
    aggregator = created.json()["uuid"]
    listed = rest.aggregator_api("list-aggregators", method="GET").json()
    assert listed == [{"name": "mine", "uuid": aggregator}]
    other = RawRest(rest.port, "other", "other-password")
    assert other.aggregator_api("list-aggregators", method="GET").json() == []
    stolen = other.call(
        "POST",
        f"/external-connection/aggregator-api/{SIM}/select-aggregator/",
        {"aggregator_uuid": aggregator, "device_uuid": PV},
    )
    assert stolen.status_code == 404
    deleted = rest.aggregator_api("delete-aggregator", {"aggregator_uuid": aggregator})
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert rest.aggregator_api("list-aggregators", method="GET").json() == []


def test_registry_and_graphql_describe_the_grid(http_exchange) -> None:
    _, rest = http_exchange("--paused")
    aggregator = rest.aggregator_api("create-aggregator", {"name": "reg"}).json()["uuid"]
    assert rest.aggregator_api("select-aggregator", {"aggregator_uuid": aggregator, "device_uuid": PV}).ok
    registry = rest.call("GET", f"/external-connection/configurations/{SIM}/registry").json()
    flat = {}
    stack = [registry]
    while stack:
        node = stack.pop()
        flat[node["name"]] = node
        stack.extend(node.get("children", []))
    assert flat["pv"]["registered"] is True and flat["pv"]["aggregator_name"] == "reg"
    assert flat["pv"]["type"] == "PV" and flat["House 2"]["type"] == "Area"
    assert flat["H1 General Load"]["registered"] is None
    query = f'query {{ readConfiguration(uuid: "{SIM}") {{ scenarioData {{ latest {{ serialized }} }} }} }}'
    response = requests.post(
        f"{rest.base}/graphql/", json={"query": query}, headers={"Authorization": f"JWT {rest.token}"}, timeout=5
    ).json()
    tree = json.loads(response["data"]["readConfiguration"]["scenarioData"]["latest"]["serialized"])
    assert tree["name"] == "Grid" and tree["children"][1]["name"] == "House 2"
    listed = requests.post(
        f"{rest.base}/graphql/",
        json={"query": "{ aggregatorsList { configUuid name devicesList { deviceUuid } } }"},
        headers={"Authorization": f"JWT {rest.token}"},
        timeout=5,
    ).json()
    assert listed["data"]["aggregatorsList"] == [
        {"configUuid": SIM, "name": "reg", "devicesList": [{"deviceUuid": PV}]}
    ]


def test_full_aggregator_flow_over_rest_and_websockets(http_exchange) -> None:
    _, rest = http_exchange("--pace", "3", "--start-when-selected", "3", "--duration", "1h")
    aggregator = rest.aggregator_api("create-aggregator", {"name": "flow"}).json()["uuid"]
    events = rest.socket(f"aggregator/{aggregator}")
    for device in (PV, LOAD, HOUSE_2):
        selected = rest.aggregator_api("select-aggregator", {"aggregator_uuid": aggregator, "device_uuid": device})
        assert selected.status_code == 200 and selected.json()["status"] == "SELECTED"
        assert events.wait_for(lambda f, d=device: f.get("event") == "selected_by_device")["device_uuid"] == device
    market = events.wait_for(lambda f: f.get("event") == "market")
    assert market["simulation_id"] == SIM and PV in json.dumps(market["grid_tree"])
    batch = {
        PV: [{"type": "offer", "energy": 0.05, "price": 0.5, "replace_existing": True, "time_slot": None}],
        LOAD: [
            {"type": "bid", "energy": 0.05, "price": 2.0, "replace_existing": True, "time_slot": None},
            {"type": "bid", "energy": -3, "price": 1},
        ],
        HOUSE_2: [{"type": "grid_fees", "data": {"fee_const": 1}}],
    }
    ack = rest.aggregator_api(
        "batch-commands", {"aggregator_uuid": aggregator, "batch_commands": batch, "transaction_id": "batch-1"}
    )
    assert ack.status_code == 200 and ack.json() == {"status": "accepted", "transaction_id": "batch-1"}
    response = events.wait_for(lambda f: f.get("command") == "batch_commands")
    assert response["transaction_id"] == "batch-1"
    load_answers = [entry["status"] for entry in response["responses"][LOAD]]
    assert load_answers == ["ready", "error"]  # the bad bid fails alone
    assert response["responses"][PV][0]["status"] == "ready"
    assert response["responses"][HOUSE_2][0]["status"] == "ready"
    trade = events.wait_for(lambda f: f.get("event") == "trade")
    assert {t["asset_id"] for t in trade["trade_list"]} & {PV, LOAD}
    events.wait_for(lambda f: f.get("event") == "finish", timeout=60)
    assert events.kinds and set(events.kinds) == {bytes}
    events.close()


def test_register_and_direct_forecast_answer_on_the_asset_socket(http_exchange) -> None:
    _, rest = http_exchange("--pace", "3", "--duration", "1h")
    asset = rest.socket(FORECAST_LOAD)
    registered = rest.call(
        "POST", f"/external-connection/api/{SIM}/{FORECAST_LOAD}/register/", {"transaction_id": "reg-1"}
    )
    assert registered.json() == {"status": "accepted", "transaction_id": "reg-1"}
    answer = asset.wait_for(lambda f: f.get("command") == "register")
    assert answer["registered"] is True and answer["transaction_id"] == "reg-1"
    forecast = rest.call(
        "POST",
        f"/external-connection/api/{SIM}/{FORECAST_LOAD}/set_energy_forecast/",
        {"energy_forecast": {"2026-06-01T11:15": 1.5}, "transaction_id": "fc-1"},
    )
    assert forecast.status_code == 200
    done = asset.wait_for(lambda f: f.get("command") == "set_energy_forecast")
    assert done["status"] == "ready" and done["transaction_id"] == "fc-1"
    asset.close()


def test_rate_limit_answers_429_with_retry_after(http_exchange) -> None:
    _, rest = http_exchange("--paused", "--rate-limit", "2")
    statuses = [rest.aggregator_api("list-aggregators", method="GET") for _ in range(6)]
    throttled = [r for r in statuses if r.status_code == 429]
    assert throttled and int(throttled[0].headers["Retry-After"]) >= 1
    time.sleep(int(throttled[0].headers["Retry-After"]))
    assert rest.aggregator_api("list-aggregators", method="GET").status_code == 200


def test_standalone_facade_restart_keeps_aggregators_and_resumes_events(
    start_exchange, facade_env, redis_url: str, tmp_path: Path
) -> None:
    start_exchange(
        "external_devices.json", "--simulation-id", SIM, "--pace", "4", "--duration", "2h", "--start-when-selected", "1"
    )
    port = free_port()

    def facade() -> subprocess.Popen:
        log = open(tmp_path / f"http-{time.monotonic_ns()}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "gsy_e_sdk", "exchange", "http", "--redis-url", redis_url, "--http-port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            cwd=ROOT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return process
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError("standalone facade did not start")

    first = facade()
    try:
        rest = RawRest(port)
        aggregator = rest.aggregator_api("create-aggregator", {"name": "survivor"}).json()["uuid"]
        events = rest.socket(f"aggregator/{aggregator}")
        assert rest.aggregator_api("select-aggregator", {"aggregator_uuid": aggregator, "device_uuid": PV}).ok
        events.wait_for(lambda f: f.get("event") == "tick")
    finally:
        first.kill()
        first.wait()
    events.thread.join(timeout=10)
    assert not events.thread.is_alive(), "the websocket stayed open after the facade died"
    second = facade()
    try:
        token = rest.login()  # the signing secret is shared through the environment
        assert rest.aggregator_api("list-aggregators", method="GET").json()[0]["uuid"] == aggregator
        rest.token = token
        again = rest.socket(f"aggregator/{aggregator}")
        assert again.wait_for(lambda f: f.get("event") == "selected_by_device")["device_uuid"] == PV
        tick = again.wait_for(lambda f: f.get("event") in ("tick", "market"))
        assert tick["simulation_id"] == SIM
        again.close()
    finally:
        second.kill()
        second.wait()
