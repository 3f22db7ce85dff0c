"""The local exchange over real Redis, driven by a raw redis-py client and checked against captures."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.fixtures import CAPTURES
from tests.integration.raw_client import RawClient

AGG_EVENTS = "external-aggregator//{}/events/all"
AGG_BATCH_RESPONSE = "external-aggregator//{}/response/batch_commands"

pytestmark = pytest.mark.integration


def _capture(name: str) -> list[tuple[str, dict]]:
    path = CAPTURES / name
    return [(row["channel"], row["data"]) for row in map(json.loads, path.read_text().splitlines())]


@pytest.fixture(scope="module")
def reference() -> dict:
    """One reference message of each kind from the external_devices capture."""
    rows = _capture("external_devices__test_redis_aggregator.jsonl")
    pick = {}
    for channel, data in rows:
        if channel.endswith("/events/all"):
            kind = data.get("event")
            pick.setdefault(f"event:{kind}", data)
        elif channel.endswith("/response/register_participant"):
            pick.setdefault("register", data)
        elif channel.endswith("/response/batch_commands"):
            pick.setdefault("batch_response", data)
            for entries in data["responses"].values():
                for entry in entries:
                    pick.setdefault(f"command:{entry['command']}", entry)
        elif channel == "aggregator-response":
            pick.setdefault(f"aggregator:{data['status']}", data)
    errors = json.loads((CAPTURES / "examples_one_per_kind.json").read_text())
    for key, example in errors.items():
        if "bid:error" in key:
            pick["command:bid:error"] = example["payload"]["responses"].popitem()[1][0]
    return pick


@pytest.fixture()
def client(redis_url: str) -> RawClient:
    raw = RawClient(redis_url)
    yield raw
    raw.close()


def _setup_aggregator(client: RawClient, names: list[str]) -> tuple[str, dict[str, str]]:
    aggregator = str(uuid.uuid4())
    created = client.request(
        "aggregator-commands", {"name": "raw", "type": "CREATE", "transaction_id": aggregator}, "aggregator-response"
    )
    assert created == {"status": "ready", "name": "raw", "transaction_id": aggregator}
    devices = {}
    for name in names:
        registered = client.request(
            f"{name}/register_participant", {"name": name}, f"{name}/response/register_participant"
        )
        devices[name] = registered["device_uuid"]
        selected = client.request(
            "aggregator-commands",
            {"aggregator_uuid": aggregator, "type": "SELECT", "device_uuid": registered["device_uuid"]},
            "aggregator-response",
        )
        assert selected["status"] == "SELECTED"
    return aggregator, devices


def _batch(client: RawClient, aggregator: str, commands: dict, transaction_id: str | None = None) -> dict:
    payload = {
        "type": "BATCHED",
        "aggregator_uuid": aggregator,
        "batch_commands": commands,
        "transaction_id": transaction_id or str(uuid.uuid4()),
    }
    return client.request("external-aggregator//batch_commands", payload, AGG_BATCH_RESPONSE.format(aggregator))


def _flat(tree: dict) -> dict:
    nodes = {}
    for key, node in tree.items():
        nodes[key] = node
        nodes.update(_flat(node.get("children", {})))
    return nodes


def test_full_aggregator_flow_matches_captures(start_exchange, client, reference):
    exchange = start_exchange(
        "external_devices.json",
        "--duration",
        "1h",
        "--tick-length",
        "90s",
        "--pace",
        "2",
        "--start-when-selected",
        "3",
        "--start-date",
        "2025-06-01",
    )
    aggregator, devices = _setup_aggregator(client, ["load", "pv", "house-2"])
    register = client.seen(lambda ch, d: ch == "load/response/register_participant")[0][1]
    assert set(register) == set(reference["register"])

    events = AGG_EVENTS.format(aggregator)
    _, market = client.wait_for(lambda ch, d: ch == events and d.get("event") == "market")
    assert set(market) == set(reference["event:market"])
    assert market["market_slot"] == "2025-06-01T00:00" and market["slot_completion"] == "0%"
    nodes = _flat(market["grid_tree"])
    assert set(nodes[devices["load"]]) == {"asset_info", "last_slot_asset_info", "asset_bill", "area_name"}
    assert set(nodes[devices["load"]]["asset_info"]) == {
        "energy_requirement_kWh",
        "energy_active_in_bids",
        "energy_traded",
        "total_cost",
    }
    assert set(nodes[devices["pv"]]["asset_info"]) == {
        "available_energy_kWh",
        "energy_active_in_offers",
        "energy_traded",
        "total_cost",
    }
    required = nodes[devices["load"]]["asset_info"]["energy_requirement_kWh"]
    assert required == pytest.approx(0.05)

    # One batch: a good bid, an impossible offer, a command the PV does not support, an unknown type.
    response = _batch(
        client,
        aggregator,
        {
            devices["load"]: [
                {"type": "bid", "energy": required / 2, "price": 30, "replace_existing": True, "time_slot": None},
                {"type": "list_bids", "time_slot": None},
            ],
            devices["pv"]: [
                {"type": "offer", "energy": 9.0, "price": 1, "replace_existing": True, "time_slot": None},
                {"type": "list_bids"},
                {"type": "teleport"},
            ],
        },
    )
    assert set(response) == set(reference["batch_response"])
    bid, listing = response["responses"][devices["load"]]
    assert set(bid) == set(reference["command:bid"]) and bid["status"] == "ready"
    assert json.loads(bid["bid"])["buyer"]["name"] == "load"
    assert listing["bid_list"][0]["energy"] == pytest.approx(required / 2)
    offer_error, unsupported, unknown = response["responses"][devices["pv"]]
    assert set(offer_error) == set(reference["command:bid:error"])
    assert offer_error["error_message"].startswith("Error when handling offer create on area pv with arguments {")
    assert unsupported["message"] == f"List bids command not supported on device {devices['pv']}"
    assert unknown["message"] == f"Command type not supported for device {devices['pv']}"

    # The bid trades against House 1's storage (pay-as-clear) and the trade reaches the aggregator.
    _, trade = client.wait_for(lambda ch, d: ch == events and d.get("event") == "trade")
    assert set(trade) == set(reference["event:trade"])
    entry = trade["trade_list"][0]
    assert set(entry) == set(reference["event:trade"]["trade_list"][0])
    assert entry["buyer"] == "load" and entry["seller"] == "anonymous" and entry["asset_id"] == devices["load"]

    _, tick = client.wait_for(lambda ch, d: ch == events and d.get("event") == "tick" and d["slot_completion"] == "10%")
    assert set(tick) == set(reference["event:tick"])

    # Market operator commands on House 2.
    stats = _batch(
        client,
        aggregator,
        {
            devices["house-2"]: [
                {"type": "dso_market_stats", "data": {}},
                {"type": "grid_fees", "data": {"fee_const": 5}},
            ]
        },
    )
    dso, fees = stats["responses"][devices["house-2"]]
    assert set(fees) == set(reference["command:grid_fees"])
    assert fees["market_fee_const"] == "5" and fees["market_fee_percent"] == "None"
    assert dso["command"] == "dso_market_stats" and dso["status"] == "ready"

    _, finish = client.wait_for(lambda ch, d: ch == events and d.get("event") == "finish", timeout=30)
    assert finish == reference["event:finish"]
    assert exchange.wait(30) == 0
    # The fee set during the run applied from the next slot on.
    later = [d for ch, d in client.seen(lambda ch, d: ch == events and d.get("event") == "market")]
    house = _flat(later[-1]["grid_tree"])[devices["house-2"]]
    assert house["current_market_fee"] == 5 and house["last_market_fee"] == 5.0


def test_resent_batch_is_applied_once(start_exchange, client):
    start_exchange(
        "external_devices.json",
        "--duration",
        "30m",
        "--tick-length",
        "90s",
        "--pace",
        "3",
        "--start-when-selected",
        "1",
    )
    aggregator, devices = _setup_aggregator(client, ["load"])
    client.wait_for(lambda ch, d: ch == AGG_EVENTS.format(aggregator) and d.get("event") == "market")
    command = {devices["load"]: [{"type": "bid", "energy": 0.01, "price": 0.1, "replace_existing": False}]}
    transaction_id = str(uuid.uuid4())
    first = _batch(client, aggregator, command, transaction_id)
    again = _batch(client, aggregator, command, transaction_id)
    assert again == first
    listing = _batch(client, aggregator, {devices["load"]: [{"type": "list_bids"}]})
    assert len(listing["responses"][devices["load"]][0]["bid_list"]) == 1


def test_transaction_ids_are_scoped_per_aggregator(start_exchange, client):
    """Two aggregators using one transaction id: both batches applied, each answer to its own sender."""
    start_exchange(
        "external_devices.json",
        "--duration",
        "30m",
        "--tick-length",
        "90s",
        "--pace",
        "3",
        "--start-when-selected",
        "2",
        "--start-date",
        "2025-06-01T12:00",
    )
    alice, alice_devices = _setup_aggregator(client, ["load"])
    bob, bob_devices = _setup_aggregator(client, ["pv"])
    client.wait_for(lambda ch, d: ch == AGG_EVENTS.format(bob) and d.get("event") == "market")
    shared = str(uuid.uuid4())
    commands = {
        alice: {alice_devices["load"]: [{"type": "bid", "energy": 0.001, "price": 0.0001}]},
        bob: {bob_devices["pv"]: [{"type": "offer", "energy": 0.01, "price": 1.0}]},
    }
    after = client.mark()
    for aggregator in (alice, bob):  # back to back, so both land in the same tick
        client.publish(
            "external-aggregator//batch_commands",
            {
                "type": "BATCHED",
                "aggregator_uuid": aggregator,
                "batch_commands": commands[aggregator],
                "transaction_id": shared,
            },
        )
    answers = {
        aggregator: client.wait_for(
            lambda ch, d: (
                ch == AGG_BATCH_RESPONSE.format(aggregator)  # noqa: B023 - called at once
                and d.get("transaction_id") == shared
            ),
            after=after,
        )[1]
        for aggregator in (alice, bob)
    }
    for aggregator, devices, command in ((alice, alice_devices, "bid"), (bob, bob_devices, "offer")):
        answer = answers[aggregator]
        assert answer["aggregator_uuid"] == aggregator and set(answer["responses"]) == set(devices.values())
        [entry] = next(iter(answer["responses"].values()))
        assert entry["command"] == command and entry["status"] == "ready"
        # A re-send is answered with the sender's own answer, and not applied again.
        assert _batch(client, aggregator, commands[aggregator], shared) == answer
    bids = _batch(client, alice, {alice_devices["load"]: [{"type": "list_bids"}]})
    offers = _batch(client, bob, {bob_devices["pv"]: [{"type": "list_offers"}]})
    assert len(bids["responses"][alice_devices["load"]][0]["bid_list"]) == 1
    assert len(offers["responses"][bob_devices["pv"]][0]["offer_list"]) == 1


def test_registration_lifecycle_and_control_channels(start_exchange, client):
    exchange = start_exchange("external_devices.json", "--duration", "30m", "--paused", "--pace", "100")
    not_registered = client.request("pv/unregister_participant", {"name": "pv"}, "pv/response/unregister_participant")
    assert not_registered["status"] == "error"
    assert not_registered["error_message"] == "Client should be registered in order to access this area."
    first = client.request("pv/register_participant", {"name": "pv"}, "pv/response/register_participant")
    again = client.request("pv/register_participant", {"name": "pv"}, "pv/response/register_participant")
    assert again["device_uuid"] == first["device_uuid"] and again["registered"] is True
    gone = client.request("pv/unregister_participant", {"name": "pv"}, "pv/response/unregister_participant")
    assert gone["status"] == "ready" and gone["response"] == "success" and gone["unregistered"] is True

    aggregator = str(uuid.uuid4())
    client.request(
        "aggregator-commands", {"name": "a", "type": "CREATE", "transaction_id": aggregator}, "aggregator-response"
    )
    twice = client.request(
        "aggregator-commands", {"name": "a", "type": "CREATE", "transaction_id": aggregator}, "aggregator-response"
    )
    assert twice["status"] == "error" and twice["aggregator_uuid"] == aggregator
    unknown = client.request(
        "aggregator-commands",
        {"aggregator_uuid": str(uuid.uuid4()), "type": "SELECT", "device_uuid": first["device_uuid"]},
        "aggregator-response",
    )
    assert unknown["status"] == "error" and "does not exist" in unknown["msg"]
    selected = client.request(
        "aggregator-commands",
        {"aggregator_uuid": aggregator, "type": "SELECT", "device_uuid": first["device_uuid"]},
        "aggregator-response",
    )
    assert selected["status"] == "SELECTED"
    double = client.request(
        "aggregator-commands",
        {"aggregator_uuid": aggregator, "type": "SELECT", "device_uuid": first["device_uuid"]},
        "aggregator-response",
    )
    assert double["msg"] == f"Device already have selected {aggregator}"
    unselected = client.request(
        "aggregator-commands",
        {"aggregator_uuid": aggregator, "type": "UNSELECT", "device_uuid": first["device_uuid"]},
        "aggregator-response",
    )
    assert unselected["status"] == "UNSELECTED"
    # The original SDK publishes DELETE on "aggregator": accept it there too.
    deleted = client.request(
        "aggregator", {"aggregator_uuid": aggregator, "type": "DELETE", "name": "a"}, "aggregator-response"
    )
    assert deleted == {"status": "deleted", "aggregator_uuid": aggregator, "transaction_id": deleted["transaction_id"]}

    resumed = client.request("/resume", {}, "/response/resume")
    assert resumed["status"] == "success" and resumed["command"] == "resume" and resumed["simulation_id"] == ""
    stopped = client.request("/stop", {}, "/response/stop")
    assert stopped["status"] == "success"
    assert exchange.wait(15) == 0


def test_legacy_direct_mode(start_exchange, client):
    """REDIS.md 9: a registered client trades through ``<asset>/<command>`` channels."""
    start_exchange(
        "external_devices.json", "--duration", "1h", "--tick-length", "90s", "--pace", "3", "--start-date", "2025-06-01"
    )
    refused = client.request("load/bid", {"energy": 0.01, "price": 1}, "load/response/bid")
    assert refused["status"] == "error" and refused["error_message"].startswith("Client should be registered")
    client.request("load/register_participant", {"name": "load"}, "load/response/register_participant")
    malformed = client.request("load/bid", {"energy": 0.01}, "load/response/bid")
    assert malformed["command"] == "bid" and isinstance(malformed["error"], list)
    # Connected from the next slot start: the direct market event arrives, then the bid trades.
    _, market = client.wait_for(lambda ch, d: ch == "load/events/market", timeout=20)
    assert market["event"] == "market" and market["type_name"] == "Spot Market"
    required = market["device_info"]["energy_requirement_kWh"]
    placed = client.request("load/bid", {"energy": required, "price": 35 * required}, "load/response/bid")
    assert placed["status"] == "ready" and json.loads(placed["bid"])["energy"] == pytest.approx(required)
    _, trade = client.wait_for(lambda ch, d: ch == "load/events/trade", timeout=20)
    assert trade["event_type"] == "buy" and trade["buyer"] == "load" and trade["bid_id"]
    # Forecasts answer on the request channel itself and need no registration.
    transaction_id = str(uuid.uuid4())
    after = client.mark()
    client.publish(
        "forecast-measurement-load/set_energy_forecast",
        {"energy_forecast": {"2025-06-01T02:00": 0.3}, "transaction_id": transaction_id},
    )
    _, answer = client.wait_for(
        lambda ch, d: (
            ch == "forecast-measurement-load/set_energy_forecast" and d.get("command") == "set_energy_forecast"
        ),
        after=after,
    )
    assert answer["status"] == "ready" and answer["transaction_id"] == transaction_id
