"""Redis clients against a real Redis, with a scripted exchange that answers like the captures.

The stub only answers the lifecycle requests (register, CREATE, SELECT, ...) with the payload
shapes of ``tests/fixtures/captures``, and replays captured events; the real exchange is
exercised by ``tests/integration/test_sdk_*.py``.
"""

import json
import logging
import threading
import time
from typing import ClassVar

import pytest
import redis

import gsy_e_sdk.redis_aggregator as redis_aggregator_module
import gsy_e_sdk.redis_client_base as redis_client_base_module
from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
from gsy_e_sdk.redis_aggregator import RedisAggregator, RedisAggregatorAPIException
from gsy_e_sdk.redis_client_base import RedisAPIException
from gsy_e_sdk.redis_market import RedisMarketClient
from gsy_e_sdk.wire.redis_connection import READER_THREAD_NAME, get_connection
from tests.fixtures import CAPTURES

CAPTURE = CAPTURES / "external_devices__test_redis_aggregator.jsonl"
CAPTURED_AGGREGATOR = "b33e6a7f-3c34-4e11-8c80-b6e5b900f0cb"
CAPTURED_UUIDS = {
    "load": "4367b055-c8bf-4e65-a23a-0aa4b23e143b",
    "pv": "4452f9e9-5637-4589-83f5-dd944466ffba",
    "house-2": "1a3a0986-fe7c-46f7-8b6d-2abba6a984de",
}


class StubExchange:
    """Answers lifecycle requests on a real Redis the way the reference exchange does."""

    def __init__(self, redis_url: str) -> None:
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.silent_areas: set[str] = set()
        self.answer_batches = True
        self.batches: list[dict] = []
        self.commands: list[tuple[str, dict]] = []
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe("*/register_participant", "*/unregister_participant")
        self._pubsub.subscribe("aggregator-commands", "aggregator", "external-aggregator//batch_commands")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def uuid_of(self, area: str) -> str:
        return CAPTURED_UUIDS.get(area, f"uuid-of-{area}")

    def _serve(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message and message["type"] in ("message", "pmessage"):
                self._answer(message["channel"], json.loads(message["data"]))

    def _answer(self, channel: str, request: dict) -> None:
        if "/response/" in channel:
            return
        self.commands.append((channel, request))
        transaction_id = request.get("transaction_id")
        area = channel.rsplit("/", 1)[0]
        if channel.endswith("/register_participant") and area not in self.silent_areas:
            self.publish(
                f"{area}/response/register_participant",
                {
                    "command": "register",
                    "status": "ready",
                    "registered": True,
                    "transaction_id": transaction_id,
                    "device_uuid": self.uuid_of(area),
                },
            )
        elif channel.endswith("/unregister_participant"):
            # gsy-e's shape: no "response": "success" (REDIS.md 3.3)
            self.publish(
                f"{area}/response/unregister_participant",
                {"command": "unregister", "status": "ready", "unregistered": True, "transaction_id": transaction_id},
            )
        elif channel == "external-aggregator//batch_commands":
            self.batches.append(request)
            if self.answer_batches:
                self._answer_batch(request)
        elif request.get("type") == "CREATE":
            self.publish(
                "aggregator-response", {"status": "ready", "name": request["name"], "transaction_id": transaction_id}
            )
        elif request.get("type") in ("SELECT", "UNSELECT"):
            status = "SELECTED" if request["type"] == "SELECT" else "UNSELECTED"
            for _ in range(1 if status == "SELECTED" else 2):  # gsy-e sends UNSELECTED twice
                self.publish(
                    "aggregator-response",
                    {
                        "status": status,
                        "aggregator_uuid": request["aggregator_uuid"],
                        "device_uuid": request["device_uuid"],
                        "transaction_id": transaction_id,
                    },
                )
        elif request.get("type") == "DELETE" and channel == "aggregator-commands":
            self.publish(
                "aggregator-response",
                {"status": "deleted", "aggregator_uuid": request["aggregator_uuid"], "transaction_id": transaction_id},
            )

    def _answer_batch(self, batch: dict) -> None:
        responses = {}
        for uuid, commands in batch["batch_commands"].items():
            responses[uuid] = [
                {
                    "command": c["type"],
                    "status": "error",
                    "area_uuid": uuid,
                    "error_message": f"Error when handling {c['type']} create on area x.",
                    "transaction_id": batch["transaction_id"],
                }
                if c.get("energy", 0) > 100
                else {
                    "command": c["type"],
                    "status": "ready",
                    "area_uuid": uuid,
                    "transaction_id": batch["transaction_id"],
                }
                for c in commands
            ]
        self.publish(
            f"external-aggregator//{batch['aggregator_uuid']}/response/batch_commands",
            {
                "command": "batch_commands",
                "transaction_id": batch["transaction_id"],
                "aggregator_uuid": batch["aggregator_uuid"],
                "responses": responses,
            },
        )

    def publish(self, channel: str, payload: dict) -> None:
        self.redis.publish(channel, json.dumps(payload))

    def replay_capture(self, aggregator_uuid: str, uuids: dict[str, str]) -> int:
        """Publish the captured events to ``aggregator_uuid``, with our device uuids swapped in."""
        count = 0
        for line in CAPTURE.read_text().splitlines():
            record = json.loads(line)
            if not record["channel"].endswith("/events/all"):
                continue
            text = json.dumps(record["data"])
            for name, uuid in CAPTURED_UUIDS.items():
                text = text.replace(uuid, uuids[name])
            self.redis.publish(f"external-aggregator//{aggregator_uuid}/events/all", text)
            count += 1
        return count

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._pubsub.close()
        self.redis.close()


@pytest.fixture()
def stub(redis_url):
    exchange = StubExchange(redis_url)
    yield exchange
    exchange.close()


class RecordingAggregator(RedisAggregator):
    drop_stale_ticks = False  # the replay is faster than any hook: count every event

    def __init__(self, *args, **kwargs):
        self.calls: list[tuple[str, dict]] = []
        super().__init__(*args, **kwargs)

    def on_market_cycle(self, market_info):  # the deprecated name, reached via on_market_slot
        self.calls.append(("market", market_info))

    def on_tick(self, tick_info):
        self.calls.append(("tick", tick_info))

    def on_trade(self, trade_info):
        self.calls.append(("trade", trade_info))

    def on_finish(self, finish_info):
        self.calls.append(("finish", finish_info))

    def on_finished(self, finish_info):  # the README's spelling
        self.calls.append(("finished", finish_info))

    def on_event_or_response(self, message):
        self.calls.append(("any", message))

    def kinds(self, kind):
        return [payload for name, payload in self.calls if name == kind]


def connect_readme_clients(redis_url, aggregator):
    clients = [
        RedisAssetClient(name, autoregister=True, redis_url=redis_url, pubsub_thread=aggregator.pubsub)
        for name in ("load", "pv")
    ]
    clients.append(RedisMarketClient("House 2", redis_url))
    for client in clients:
        assert client.select_aggregator(aggregator.aggregator_uuid)
    return clients


def test_readme_flow_with_captured_events(redis_url, stub):
    aggregator = RecordingAggregator("test_aggr", redis_url=redis_url)
    assert (
        "aggregator-commands",
        {"name": "test_aggr", "type": "CREATE", "transaction_id": aggregator.aggregator_uuid},
    ) in stub.commands
    load, _, market = connect_readme_clients(redis_url, aggregator)
    assert market.area_id == "house-2" and market.is_active
    assert load.area_uuid == CAPTURED_UUIDS["load"]
    assert sorted(aggregator.device_uuid_list) == sorted(CAPTURED_UUIDS.values())

    published = stub.replay_capture(aggregator.aggregator_uuid, CAPTURED_UUIDS)
    deadline = time.monotonic() + 10
    while not aggregator.is_finished and time.monotonic() < deadline:
        time.sleep(0.02)
    assert aggregator.is_finished and aggregator.wait_for_hooks(5)

    assert len(aggregator.kinds("any")) == published
    assert len(aggregator.kinds("market")) == 2
    completions = [t["slot_completion"] for t in aggregator.kinds("tick")]
    assert "0%" not in completions and completions.count("10%") == 3 and len(completions) == 27
    trades = [t for event in aggregator.kinds("trade") for t in event["trade_list"]]
    assert len(trades) == 2 and {t["buyer"] for t in trades} == {"load"}
    assert [name for name, _ in aggregator.calls[-3:]] == ["finish", "finished", "any"]
    # Bookkeeping done before the hooks: the tree, its flat view, names and fees.
    assert aggregator.get_uuid_from_area_name("load") == CAPTURED_UUIDS["load"]
    house_2 = aggregator.latest_grid_tree_flat[CAPTURED_UUIDS["house-2"]]
    assert house_2["area_name"] == "House 2"
    assert aggregator.calculate_grid_fee("load", "House 2", "last_market_fee") == aggregator.calculate_grid_fee(
        CAPTURED_UUIDS["load"], CAPTURED_UUIDS["house-2"], "last_market_fee"
    )


def test_chained_batch_returns_structured_responses_including_errors(redis_url, stub):
    aggregator = RedisAggregator("batcher", redis_url=redis_url)
    load, pv, market = connect_readme_clients(redis_url, aggregator)
    (
        aggregator.add_to_batch_commands.bid_energy(load.area_uuid, 0.025, 30)
        .offer_energy(pv.area_uuid, 500, 1)  # the stub refuses this one
        .asset_info(pv.area_uuid)
        .last_market_dso_stats(market.area_uuid)
        .grid_fees(market.area_uuid, 5)
    )
    assert aggregator.commands_buffer_length == 5
    response = aggregator.execute_batch_command()  # the README's spelling
    assert aggregator.commands_buffer_length == 0
    assert response["aggregator_uuid"] == aggregator.aggregator_uuid
    pv_answers = response["responses"][pv.area_uuid]
    assert [(a["command"], a["status"]) for a in pv_answers] == [("offer", "error"), ("device_info", "ready")]
    assert "Error when handling offer" in pv_answers[0]["error_message"]
    sent = stub.batches[-1]
    assert sent["type"] == "BATCHED" and sent["transaction_id"] == response["transaction_id"]
    assert sent["batch_commands"][market.area_uuid] == [
        {"type": "dso_market_stats", "data": {}},
        {"type": "grid_fees", "data": {"fee_const": 5}},
    ]
    assert aggregator.execute_batch_commands() is None  # empty buffer: nothing sent


def test_batch_for_an_unselected_uuid_fails_fast(redis_url, stub):
    aggregator = RedisAggregator("strict", redis_url=redis_url)
    aggregator.add_to_batch_commands.bid_energy("not-selected", 1, 1)
    started = time.monotonic()
    with pytest.raises(Exception, match="not-selected not in list of selected device uuids"):
        aggregator.execute_batch_commands()
    assert time.monotonic() - started < 0.5
    assert aggregator.commands_buffer_length == 0 and stub.batches == []


def test_unanswered_batch_times_out_naming_command_and_transaction(redis_url, stub, monkeypatch):
    monkeypatch.setattr(redis_aggregator_module, "BATCH_COMMAND_TIMEOUT", 0.3)
    aggregator = RedisAggregator("patient", redis_url=redis_url)
    load = RedisAssetClient("load", redis_url=redis_url)
    load.select_aggregator(aggregator.aggregator_uuid)
    stub.answer_batches = False
    aggregator.add_to_batch_commands.bid_energy(load.area_uuid, 0.02, 3)
    with pytest.raises(RedisAggregatorAPIException) as raised:
        aggregator.execute_batch_commands()
    text = str(raised.value)
    assert text.startswith("Sending batch commands timed out.")
    assert "batch_commands" in text and stub.batches[-1]["transaction_id"] in text


def test_finish_releases_a_blocked_batch(redis_url, stub):
    aggregator = RedisAggregator("finisher", redis_url=redis_url)
    load = RedisAssetClient("load", redis_url=redis_url)
    load.select_aggregator(aggregator.aggregator_uuid)
    stub.answer_batches = False
    aggregator.add_to_batch_commands.bid_energy(load.area_uuid, 0.02, 3)
    result = {}
    caller = threading.Thread(target=lambda: result.update(r=aggregator.execute_batch_commands()))
    caller.start()
    time.sleep(0.3)
    stub.publish(aggregator.channel_names.events, {"event": "finish", "simulation_id": None, "num_ticks": 10.0})
    caller.join(3)
    assert not caller.is_alive() and result == {"r": None} and aggregator.is_finished


def test_aggregator_tracks_only_devices_that_selected_it(redis_url, stub):
    chosen = RedisAggregator("chosen", redis_url=redis_url)
    other = RedisAggregator("other", redis_url=redis_url)
    pv = RedisAssetClient("pv", redis_url=redis_url)
    pv.select_aggregator(chosen.aggregator_uuid)
    assert chosen.device_uuid_list == [pv.area_uuid] and other.device_uuid_list == []
    assert pv.unselect_aggregator(chosen.aggregator_uuid)
    assert chosen.device_uuid_list == []
    unselect = [r for c, r in stub.commands if c == "aggregator-commands" and r["type"] == "UNSELECT"]
    assert unselect[-1]["device_uuid"] == pv.area_uuid


def test_delete_aggregator_goes_to_aggregator_commands(redis_url, stub):
    aggregator = RedisAggregator("short-lived", redis_url=redis_url)
    transaction_id = aggregator.delete_aggregator()
    channel, request = stub.commands[-1]
    assert channel == "aggregator-commands"
    assert request == {
        "name": "short-lived",
        "aggregator_uuid": aggregator.aggregator_uuid,
        "type": "DELETE",
        "transaction_id": transaction_id,
    }


def test_register_unregister_lifecycle(redis_url, stub):
    registrations, seen = [], []

    class Watched(RedisAssetClient):
        def on_register(self, registration_info):
            registrations.append(registration_info)

        def on_event_or_response(self, message):
            seen.append(message)

    client = Watched("H1 Storage1", autoregister=False, redis_url=redis_url)
    with pytest.raises(RedisAPIException, match="has not ben registered yet"):
        client.select_aggregator("some-aggregator")
    client.register()
    assert client.is_active and client.area_uuid == "uuid-of-H1 Storage1"
    with pytest.raises(RedisAPIException, match=r"API is already registered to the market\."):
        client.register()
    client.unregister()  # answered with status ready only
    assert not client.is_active
    with pytest.raises(RedisAPIException, match=r"API is already unregistered from the market\."):
        client.unregister()
    assert client.wait_for_hooks(5)
    assert [r["device_uuid"] for r in registrations] == ["uuid-of-H1 Storage1"]
    # on_event_or_response sees the area's own traffic (<area_id>/*), requests included.
    assert any(m.get("command") == "unregister" for m in seen)
    assert any(m.get("name") == "H1 Storage1" for m in seen)


def test_register_timeout_names_command_and_transaction(redis_url, stub, monkeypatch):
    monkeypatch.setattr(redis_client_base_module, "REGISTER_TIMEOUT", 0.3)
    stub.silent_areas.add("ghost")
    with pytest.raises(RedisAPIException) as raised:
        RedisAssetClient("ghost", redis_url=redis_url)
    text = str(raised.value)
    assert text.startswith("API registration process timed out.") and "register" in text
    sent = [r for c, r in stub.commands if c == "ghost/register_participant"][-1]
    assert sent["transaction_id"] in text


def test_invalid_aggregator_uuid_is_rejected_before_sending(redis_url, stub):
    pv = RedisAssetClient("pv", redis_url=redis_url)
    before = len(stub.commands)
    with pytest.raises(ValueError, match="aggregator_uuid must be a non-empty string"):
        pv.select_aggregator("")
    time.sleep(0.1)
    assert len(stub.commands) == before


def test_failing_hook_is_logged_and_later_hooks_still_run(redis_url, stub, caplog):
    class Fragile(RedisAggregator):
        ticks: ClassVar[list[str]] = []

        def on_tick(self, tick_info):
            if tick_info["slot_completion"] == "10%":
                raise RuntimeError("strategy bug")
            self.ticks.append(tick_info["slot_completion"])

    aggregator = Fragile("fragile", redis_url=redis_url)
    for completion in ("10%", "20%"):
        stub.publish(
            aggregator.channel_names.events,
            {
                "event": "tick",
                "slot_completion": completion,
                "market_slot": "2026-01-01T00:00",
                "grid_tree": {},
                "simulation_id": None,
                "num_ticks": 10.0,
            },
        )
    deadline = time.monotonic() + 5
    while not Fragile.ticks and time.monotonic() < deadline:
        time.sleep(0.02)
    assert Fragile.ticks == ["20%"]
    record = next(r for r in caplog.records if "on_tick raised exception: strategy bug." in r.getMessage())
    assert record.exc_info is not None
    assert get_connection(redis_url).reader_alive


def test_ten_thousand_asset_clients_share_one_reader(redis_url, stub):
    aggregator = RedisAggregator("crowd", redis_url=redis_url)
    threads_before = threading.active_count()
    started = time.monotonic()
    clients = [RedisAssetClient(f"crowd asset {i}", redis_url=redis_url) for i in range(10_000)]
    for client in clients:
        client.select_aggregator(aggregator.aggregator_uuid, is_blocking=False)
    deadline = time.monotonic() + 30
    while len(aggregator.device_uuid_list) < 10_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert all(client.is_active for client in clients)
    assert len(aggregator.device_uuid_list) == 10_000
    readers = [t for t in threading.enumerate() if t.name == READER_THREAD_NAME]
    assert readers == [get_connection(redis_url)._reader]
    # No thread per client: at most the hook executor's few workers appeared.
    assert threading.active_count() - threads_before <= 5
    # Building and sending one command per client: one 10,000-command batch.
    batch_started = time.perf_counter()
    for client in clients:
        aggregator.add_to_batch_commands.bid_energy(client.area_uuid, 0.1, 1)
    aggregator.execute_batch_commands(is_blocking=False)
    assert time.perf_counter() - batch_started < 1.0
    deadline = time.monotonic() + 10
    while not stub.batches and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum(map(len, stub.batches[-1]["batch_commands"].values())) == 10_000
    for client in clients[:3]:
        aggregator.add_to_batch_commands.bid_energy(client.area_uuid, 0.1, 1)
    assert aggregator.execute_batch_commands()["responses"].keys() == {client.area_uuid for client in clients[:3]}
    logging.getLogger(__name__).info("10,000 clients registered and selected in %.1f s", elapsed)
    for client in clients:
        client.close()


def test_a_command_sent_before_the_exchange_listens_is_delivered_once_it_does(redis_url, monkeypatch):
    """The README's recipe starts the exchange and the script together: CREATE may go out first."""
    monkeypatch.setattr(get_connection(redis_url), "listener_timeout", 10)
    late: dict[str, StubExchange] = {}
    starting = threading.Timer(0.5, lambda: late.update(stub=StubExchange(redis_url)))
    starting.start()
    try:
        started = time.monotonic()
        aggregator = RedisAggregator("early bird", redis_url=redis_url)  # returns once CREATE is answered
        assert 0.4 < time.monotonic() - started < 5
        creates = [request for _, request in late["stub"].commands if request.get("type") == "CREATE"]
        # Sent again with the same transaction id, and only until someone received it: one copy arrived.
        assert [request["transaction_id"] for request in creates] == [aggregator.aggregator_uuid]
    finally:
        starting.join()
        late["stub"].close()


def test_a_command_nobody_ever_listens_to_fails_naming_the_channel(redis_url, monkeypatch):
    monkeypatch.setattr(get_connection(redis_url), "listener_timeout", 0.3)
    with pytest.raises(RedisAggregatorAPIException) as raised:
        RedisAggregator("alone", redis_url=redis_url)
    text = str(raised.value)
    assert text.startswith("API registration process timed out.") and "nobody listened on aggregator-commands" in text
