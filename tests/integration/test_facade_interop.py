"""What the original SDK's REST scripts and the README's raw REST calls need from the facade (issue 13 §2).

A real ``gsy-e-sdk exchange run --http-port`` in a subprocess, driven by the raw REST client of
``raw_client.py`` (written from REST.md only): the original SDK's habits are replayed on the wire.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta

import pytest

from tests.integration.raw_client import FORECAST_LOAD, HOUSE_2, LOAD, PV, SIM, RawSocket

pytestmark = pytest.mark.integration

START = datetime(2026, 6, 1, 11, 0)


def _slot(index: int) -> str:
    return (START + index * timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M")


def test_an_answer_waits_for_the_socket_opened_after_the_request(http_exchange) -> None:
    """The original SDK POSTs register/ and opens its websocket ~8 ms later (REST.md behaviour 1)."""
    _, rest = http_exchange("--paused")
    rng = random.Random(13)
    for attempt, asset in enumerate([PV, LOAD, FORECAST_LOAD, PV, LOAD]):
        transaction_id = f"register-before-socket-{attempt}"
        ack = rest.asset_api(asset, "register/", {"transaction_id": transaction_id})
        assert ack.json() == {"status": "accepted", "transaction_id": transaction_id}
        time.sleep(rng.uniform(0.05, 0.2))
        socket = rest.socket(asset)
        answer = socket.wait_for(lambda f: f.get("command") == "register", timeout=10)
        assert answer["transaction_id"] == transaction_id and answer["registered"] is True
        assert answer["device_uuid"] == asset
        socket.close()


def test_selection_answers_reach_the_socket_before_the_events_they_start(http_exchange) -> None:
    """With --start-when-selected, the last selection starts the run: its selected_by_device must
    come before the run's first market event, or the SDK refuses its first batch (behaviour 2)."""
    devices = [PV, LOAD, HOUSE_2]
    for _ in range(3):
        process, rest = http_exchange("--start-when-selected", str(len(devices)), "--duration", "1h")
        aggregator = rest.aggregator_api("create-aggregator", {"name": "starter"}).json()["uuid"]
        socket = rest.socket(f"aggregator/{aggregator}")
        for device in devices:
            selected = rest.aggregator_api("select-aggregator", {"aggregator_uuid": aggregator, "device_uuid": device})
            assert selected.status_code == 200, selected.text
        seen: list[dict] = []
        socket.wait_for(lambda f: seen.append(f) or f.get("event") == "market")  # noqa: B023 - called at once
        before_market = [f["device_uuid"] for f in seen if f.get("event") == "selected_by_device"]
        assert sorted(before_market) == sorted(devices), [f.get("event") or f.get("command") for f in seen]
        socket.close()
        process.stop()


def test_forecasts_and_measurements_in_wh_name_the_slot_as_the_readme_says(http_exchange) -> None:
    """README: ``{"energy_Wh": 400}`` on set_energy_forecast/ forecasts the asset's next slot."""
    _, rest = http_exchange("--start-when-selected", "1", "--pace", "10", "--duration", "1h")
    asset = rest.socket(FORECAST_LOAD)
    # Before the run: the first tick already runs inside slot 0, so the next slot is slot 1.
    early = rest.asset_api(FORECAST_LOAD, "set_energy_forecast/", {"energy_Wh": 400, "transaction_id": "wh-early"})
    assert early.status_code == 200, early.text
    nothing_to_measure = rest.asset_api(FORECAST_LOAD, "set-energy-measurement/", {"energy_Wh": 100})
    assert nothing_to_measure.status_code == 409 and "No slot has started" in nothing_to_measure.json()["error"]
    both = rest.asset_api(FORECAST_LOAD, "set-energy-forecast/", {"energy_Wh": 1, "energy_forecast": {}})
    assert both.status_code == 400 and "exactly one" in both.json()["error"]

    aggregator = rest.aggregator_api("create-aggregator", {"name": "clock"}).json()["uuid"]
    events = rest.socket(f"aggregator/{aggregator}")
    assert rest.aggregator_api("select-aggregator", {"aggregator_uuid": aggregator, "device_uuid": PV}).ok
    answer = asset.wait_for(lambda f: f.get("transaction_id") == "wh-early")
    assert answer["status"] == "ready" and answer["set_energy_forecast"]["energy_forecast"] == {_slot(1): 0.4}

    market = events.wait_for(lambda f: f.get("event") == "market")
    running = next(index for index in range(4) if _slot(index) == market["market_slot"])
    for path, body, field, expected in (
        ("set-energy-forecast/", {"energy_Wh": 250}, "energy_forecast", {_slot(running + 1): 0.25}),
        ("set_energy_measurement/", {"energy_Wh": 100}, "energy_measurement", {_slot(running): 0.1}),
        (
            "set-energy-measurement/",
            {"energy_measurement": {_slot(running): 0.2}},
            "energy_measurement",
            {_slot(running): 0.2},
        ),
    ):
        transaction_id = str(uuid.uuid4())
        assert rest.asset_api(FORECAST_LOAD, path, {**body, "transaction_id": transaction_id}).status_code == 200
        answer = asset.wait_for(lambda f, t=transaction_id: f.get("transaction_id") == t)
        assert answer["status"] == "ready", answer
        assert answer[answer["command"]][field] == expected
    asset.close()
    events.close()


def test_live_generation_and_scm_endpoints_are_acknowledged(http_exchange) -> None:
    _, rest = http_exchange("--paused")
    live = rest.asset_api(PV, "set-live-generation/", {"live_data": {"energy_kWh": 0.3}, "transaction_id": "live-1"})
    assert live.status_code == 200 and live.json()["transaction_id"] == "live-1"
    socket: RawSocket = rest.socket(PV)  # opened after the request: the answer waited for it
    answer = socket.wait_for(lambda f: f.get("command") == "set-live-generation")
    assert answer["status"] == "ready" and answer["transaction_id"] == "live-1"
    socket.close()
    no_data = rest.asset_api(PV, "set-live-generation/", {})
    assert no_data.status_code == 400 and "live_data" in no_data.json()["error"]
    member = rest.asset_api(LOAD, "set-scm-timeseries-and-member-data/", {"member": {"name": "Jane"}})
    assert member.status_code == 200 and member.json()["status"].startswith("accepted")
    community = rest.call("POST", f"/external-connection/api/{SIM}/set-scm-global-data/", {"grid_fee": 1})
    assert community.status_code == 200 and community.json()["status"].startswith("accepted")
    unknown = rest.call("POST", f"/external-connection/api/{uuid.uuid4()}/set-scm-global-data/", {})
    assert unknown.status_code == 404
