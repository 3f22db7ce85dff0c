"""SDK clients against the local exchange in a subprocess (fast clocks, ``--pace fast``)."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gsy_e_sdk.auto_aggregator import AutoAggregator
from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
from gsy_e_sdk.redis_aggregator import RedisAggregator
from gsy_e_sdk.redis_market import RedisMarketClient
from gsy_e_sdk.wire import redis_connection
from gsy_e_sdk.wire.redis_connection import READER_THREAD_NAME, get_connection
from gsy_e_sdk.wire.times import format_slot, parse_slot
from tests.conftest import SCENARIOS, ExchangeProcess

pytestmark = pytest.mark.integration

# A slot of 10 ticks; the exchange waits at most 0.5 s for an aggregator's batch at a tick.
FAST = ("--slot-length", "15m", "--tick-length", "90s", "--pace", "fast", "--tick-deadline", "0.5s")


def wait_until_finished(aggregator: RedisAggregator, exchange, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not aggregator.is_finished and time.monotonic() < deadline:
        time.sleep(0.1)
    assert aggregator.is_finished, f"no finish event within {timeout} s:\n{exchange.output()[-3000:]}"
    assert aggregator.wait_for_hooks(15)


class ReadmeAggregator(RedisAggregator):
    """The README's strategy with a chained batch, recording everything it sees."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.responses: list[dict] = []
        self.trades: list[dict] = []
        self.ticks: list[str] = []
        self.finished: list[str] = []
        super().__init__(*args, **kwargs)

    def on_market_slot(self, market_info: dict) -> None:
        batch = self.add_to_batch_commands
        for uuid, node in self.latest_grid_tree_flat.items():
            info = node.get("asset_info")
            if uuid not in self.device_uuid_list or info is None:
                continue
            if info.get("energy_requirement_kWh", 0) > 0:
                batch.bid_energy(uuid, info["energy_requirement_kWh"] / 2, 30).asset_info(uuid)
            if "available_energy_kWh" in info:
                # At night a PV has nothing to sell: the exchange answers with an error.
                batch.offer_energy(uuid, max(info["available_energy_kWh"] / 2, 0.01), 1).asset_info(uuid)
        response = self.execute_batch_commands()
        if response:
            self.responses.append(response)

    def on_tick(self, tick_info: dict) -> None:
        self.ticks.append(tick_info["slot_completion"])

    def on_trade(self, trade_info: dict) -> None:
        self.trades.extend(trade_info["trade_list"])

    def on_finish(self, finish_info: dict) -> None:
        self.finished.append("on_finish")

    def on_finished(self, finish_info: dict) -> None:
        self.finished.append("on_finished")


def test_readme_flow(start_exchange, redis_url):
    exchange = start_exchange("external_devices.json", "--duration", "1h", *FAST, "--start-when-selected", "3")
    aggregator = ReadmeAggregator("test_aggr", redis_url=redis_url)
    load = RedisAssetClient("load", autoregister=True, redis_url=redis_url, pubsub_thread=aggregator.pubsub)
    pv = RedisAssetClient("pv", autoregister=True, redis_url=redis_url, pubsub_thread=aggregator.pubsub)
    market = RedisMarketClient("House 2", redis_url)
    for client in (load, pv, market):
        assert client.is_active and client.area_uuid
        client.select_aggregator(aggregator.aggregator_uuid)
    assert set(aggregator.device_uuid_list) == {load.area_uuid, pv.area_uuid, market.area_uuid}

    wait_until_finished(aggregator, exchange)
    assert aggregator.finished == ["on_finish", "on_finished"]
    assert aggregator.responses, "no batch response came back"
    for response in aggregator.responses:
        load_answers = response["responses"][load.area_uuid]
        assert [(a["command"], a["status"]) for a in load_answers] == [("bid", "ready"), ("device_info", "ready")]
        offer, info = response["responses"][pv.area_uuid]
        assert offer["command"] == "offer" and info["command"] == "device_info"
        assert offer["status"] == "ready" or "error_message" in offer
    bought = [t for t in aggregator.trades if t["buyer"] == "load"]
    assert bought and all(t["asset_id"] == load.area_uuid for t in bought)
    assert aggregator.ticks and all(int(c.rstrip("%")) >= 10 for c in aggregator.ticks)
    assert aggregator.calculate_grid_fee("load", "House 2") is not None
    assert aggregator.get_uuid_from_area_name("pv") == pv.area_uuid


class GridOperator(RedisAggregator):
    """Raises every market's constant fee by 1 ct/kWh per slot and reads its DSO stats."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.fees_set: dict[str, list[float]] = {}
        self.fees_seen: dict[str, list[Any]] = {}
        self.answers: list[dict] = []
        super().__init__(*args, **kwargs)

    def on_market_slot(self, market_info: dict) -> None:
        for uuid in self.device_uuid_list:
            node = self.latest_grid_tree_flat[uuid]
            self.fees_seen.setdefault(uuid, []).append(node.get("current_market_fee"))
            fee = len(self.fees_set.setdefault(uuid, [])) + 1
            self.fees_set[uuid].append(fee)
            self.add_to_batch_commands.last_market_dso_stats(uuid).grid_fees(uuid, fee)
        response = self.execute_batch_commands()
        for answers in (response or {}).get("responses", {}).values():
            self.answers.extend(answers)


def test_market_clients_change_grid_fees_and_read_dso_stats(start_exchange, redis_url):
    exchange = start_exchange("external_market_stats.json", "--duration", "1h", *FAST, "--start-when-selected", "2")
    operator = GridOperator("grid_operator", redis_url=redis_url)
    markets = [RedisMarketClient(name, redis_url) for name in ("House 1", "house-2")]
    assert [m.area_id for m in markets] == ["house-1", "house-2"]
    for market in markets:
        market.select_aggregator(operator.aggregator_uuid)
    wait_until_finished(operator, exchange)

    stats = [a for a in operator.answers if a["command"] == "dso_market_stats"]
    fees = [a for a in operator.answers if a["command"] == "grid_fees"]
    assert stats and all(a["status"] == "ready" and isinstance(a["market_stats"], dict) for a in stats)
    assert {a["name"] for a in stats} == {"House 1", "House 2"}
    assert fees and all(a["status"] == "ready" for a in fees)
    for market in markets:
        set_, seen = operator.fees_set[market.area_uuid], operator.fees_seen[market.area_uuid]
        assert len(seen) >= 3
        # The fee set during slot k is what the tree reports as current at slot k + 1.
        assert [float(f) for f in seen[1:]] == [float(f) for f in set_[:-1]]


class Forecaster(RedisAggregator):
    """Sends next slot's forecast each slot and records the energies the tree reports."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: dict[str, float] = {}
        self.reported: dict[str, dict[str, float]] = {}
        self.answers: list[dict] = []
        super().__init__(*args, **kwargs)

    def on_market_slot(self, market_info: dict) -> None:
        slot = market_info["market_slot"]
        for uuid in self.device_uuid_list:
            info = self.latest_grid_tree_flat[uuid]["asset_info"]
            energy = info.get("available_energy_kWh", info.get("energy_requirement_kWh"))
            self.reported.setdefault(uuid, {})[slot] = energy
        next_slot = format_slot(parse_slot(slot) + timedelta(minutes=15))
        value = round(0.1 * (len(self.sent) + 1), 3)
        self.sent[next_slot] = value
        for uuid in self.device_uuid_list:
            (
                self.add_to_batch_commands.set_energy_forecast(uuid, {next_slot: value}).set_energy_measurement(
                    uuid, {slot: value}
                )
            )
        response = self.execute_batch_commands()
        for answers in (response or {}).get("responses", {}).values():
            self.answers.extend(answers)


def test_energy_forecast_takes_effect(start_exchange, redis_url):
    exchange = start_exchange(
        # A generous tick deadline: the forecast for the next slot must be in before that slot
        # starts, also on a busy machine (the exchange goes on as soon as the batch arrives).
        "external_devices_send_forecasts.json",
        "--duration",
        "1h",
        *FAST,
        "--tick-deadline",
        "5s",
        "--start-when-selected",
        "2",
    )
    forecaster = Forecaster("forecaster", redis_url=redis_url)
    assets = [
        RedisAssetClient(name, redis_url=redis_url) for name in ("forecast-measurement-pv", "forecast-measurement-load")
    ]
    for asset in assets:
        asset.select_aggregator(forecaster.aggregator_uuid)
    wait_until_finished(forecaster, exchange)

    assert forecaster.answers and all(a["status"] == "ready" for a in forecaster.answers), forecaster.answers
    for asset in assets:
        reported = forecaster.reported[asset.area_uuid]
        checked = [slot for slot in reported if slot in forecaster.sent]
        assert len(checked) >= 2, (reported, forecaster.sent)
        for slot in checked:
            assert reported[slot] == pytest.approx(forecaster.sent[slot])


def test_client_survives_a_redis_restart(private_redis, tmp_path):
    # A Redis of its own: restarting the session's would cut every connection other tests cached.
    redis_server, redis_url = private_redis, private_redis.url
    # Paced (1.5 s per slot) so the restart lands mid-run.
    exchange = ExchangeProcess(
        [
            "--scenario",
            str(SCENARIOS / "external_devices.json"),
            "--duration",
            "75m",
            "--slot-length",
            "15m",
            "--tick-length",
            "90s",
            "--pace",
            "1.5",
            "--start-when-selected",
            "3",
        ],
        redis_url,
        tmp_path / "exchange.log",
    ).wait_ready()
    try:
        _survives_a_restart(exchange, redis_server, redis_url)
    finally:
        exchange.stop()
        # The SDK's shared connection to this Redis (and its reader thread) goes with it.
        closing = redis_connection._connections.pop(redis_url)
        if closing is not None:
            closing.close()


def _survives_a_restart(exchange, redis_server, redis_url: str) -> None:
    aggregator = AutoAggregator("restart_aggr", redis_url=redis_url, grid_fee_cents_kwh=1)
    for client in (
        RedisAssetClient("load", redis_url=redis_url),
        RedisAssetClient("pv", redis_url=redis_url),
        RedisMarketClient("House 2", redis_url),
    ):
        client.select_aggregator(aggregator.aggregator_uuid)
    connection = get_connection(redis_url)
    reconnections = connection.reconnections
    deadline = time.monotonic() + 30
    while not aggregator.trades and time.monotonic() < deadline:
        time.sleep(0.05)
    assert aggregator.trades, exchange.output()[-3000:]
    redis_server.restart()
    restarted_at = len(aggregator.trades)
    wait_until_finished(aggregator, exchange, timeout=60)
    assert connection.reconnections > reconnections
    assert len(aggregator.trades) > restarted_at, "no trade after the restart"


def write_crowd_scenario(path: Path, count: int) -> list[str]:
    names = [f"crowd load {i}" for i in range(count)]
    scenario = {
        "name": "Grid",
        "settings": {"min_offer_age": 0, "min_bid_age": 0},
        "children": [
            {
                "name": "Crowd",
                "allow_external_connection": True,
                "children": [
                    {
                        "name": name,
                        "type": "LoadHours",
                        "avg_power_W": 100,
                        "hrs_of_day": list(range(24)),
                        "final_buying_rate": 35,
                        "allow_external_connection": True,
                    }
                    for name in names
                ],
            },
            {"name": "Market Maker", "type": "InfiniteBus", "energy_sell_rate": 30, "energy_buy_rate": 0},
        ],
    }
    path.write_text(json.dumps(scenario))
    return names


def test_two_hundred_assets_use_one_reader_thread(start_exchange, redis_url, tmp_path):
    names = write_crowd_scenario(tmp_path / "crowd.json", 200)
    exchange = start_exchange(tmp_path / "crowd.json", "--duration", "30m", *FAST, "--start-when-selected", "200")
    threads_before = threading.active_count()
    aggregator = AutoAggregator("crowd_aggr", redis_url=redis_url)
    clients = [RedisAssetClient(name, redis_url=redis_url, pubsub_thread=aggregator.pubsub) for name in names]
    for client in clients:
        client.select_aggregator(aggregator.aggregator_uuid)
    readers = [t for t in threading.enumerate() if t.name == READER_THREAD_NAME]
    assert readers == [get_connection(redis_url)._reader]
    assert threading.active_count() - threads_before <= 5
    wait_until_finished(aggregator, exchange)
    buyers = {t["asset_id"] for t in aggregator.trades}
    assert buyers == {client.area_uuid for client in clients}
    for client in clients:
        client.close()


class BidDeleter(RedisAggregator):
    """Places one bid that cannot match, then deletes it by id and lists what is left."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.bid_id: str | None = None
        self.delete_answers: list[dict] = []
        super().__init__(*args, **kwargs)

    def on_market_slot(self, market_info: dict) -> None:
        if self.bid_id is not None:
            return
        for uuid, node in self.latest_grid_tree_flat.items():
            required = (node.get("asset_info") or {}).get("energy_requirement_kWh", 0)
            if uuid in self.device_uuid_list and required > 0:
                self.add_to_batch_commands.bid_energy(uuid, required / 2, 0)
                placed = self.execute_batch_commands()
                self.bid_id = json.loads(placed["responses"][uuid][0]["bid"])["id"]
                self.add_to_batch_commands.delete_bid(uuid, self.bid_id).list_bids(uuid)
                self.delete_answers = self.execute_batch_commands()["responses"][uuid]


def test_lifecycle_commands_against_the_exchange(start_exchange, redis_url):
    exchange = start_exchange("external_devices.json", "--duration", "30m", *FAST, "--start-when-selected", "2")
    chosen = BidDeleter("chosen", redis_url=redis_url)
    other = RedisAggregator("other", redis_url=redis_url)
    market = RedisMarketClient("House 2", redis_url)
    market.unregister()  # the exchange's answer carries status ready (and response success)
    assert not market.is_active
    market.register()
    assert market.is_active

    pv = RedisAssetClient("pv", redis_url=redis_url)
    pv.select_aggregator(other.aggregator_uuid)
    assert other.device_uuid_list == [pv.area_uuid] and chosen.device_uuid_list == []
    pv.unselect_aggregator(other.aggregator_uuid)
    assert other.device_uuid_list == []
    assert other.delete_aggregator()  # answered on aggregator-commands, no timeout

    load = RedisAssetClient("load", redis_url=redis_url)
    for client in (pv, load):
        client.select_aggregator(chosen.aggregator_uuid)
    wait_until_finished(chosen, exchange)
    delete, listing = chosen.delete_answers
    assert (delete["command"], delete["status"], delete["deleted_bids"]) == ("bid_delete", "ready", [chosen.bid_id])
    assert (listing["command"], listing["status"], listing["bid_list"]) == ("list_bids", "ready", [])


class SlowTicker(RedisAggregator):
    """The issue's script: bids at each slot, an ``on_tick`` far slower than the exchange's ticks."""

    TICK_SECONDS = 0.4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.seen: list[tuple] = []  # market, trade and finish events, as the hooks got them
        self.tick_spans: list[tuple[float, float]] = []
        self.ticks_run = 0  # tick events whose hooks ran
        self.finish_started: float | None = None
        super().__init__(*args, **kwargs)

    def on_market_slot(self, market_info: dict) -> None:
        self.seen.append(("market", market_info["market_slot"]))
        for uuid, node in self.latest_grid_tree_flat.items():
            required = (node.get("asset_info") or {}).get("energy_requirement_kWh", 0)
            if uuid in self.device_uuid_list and required > 0:
                self.add_to_batch_commands.bid_energy(uuid, required, 35)
        self.execute_batch_commands(is_blocking=False)

    def on_tick(self, tick_info: dict) -> None:
        started = time.monotonic()
        time.sleep(self.TICK_SECONDS)
        self.tick_spans.append((started, time.monotonic()))

    def on_trade(self, trade_info: dict) -> None:
        self.seen.append(("trade", tuple(t["trade_id"] for t in trade_info["trade_list"])))

    def on_finish(self, finish_info: dict) -> None:
        self.finish_started = time.monotonic()
        self.seen.append(("finish",))

    def on_event_or_response(self, message: dict) -> None:
        if message.get("event") == "tick":
            self.ticks_run += 1


def test_slow_hooks_skip_stale_ticks_keep_every_market_and_trade_and_finish_on_time(
    start_exchange, redis_url, redis_client, caplog
):
    exchange = start_exchange("external_devices.json", "--duration", "2h", *FAST, "--start-when-selected", "2")
    aggregator = SlowTicker("slow_ticker", redis_url=redis_url)
    arrivals: list[tuple[float, dict]] = []  # every event as published, when it arrived
    recorder = redis_client.pubsub(ignore_subscribe_messages=True)
    recorder.subscribe(
        **{aggregator.channel_names.events: lambda m: arrivals.append((time.monotonic(), json.loads(m["data"])))}
    )
    recording = recorder.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        with caplog.at_level(logging.INFO, logger="gsy_e_sdk"):
            for name in ("load", "pv"):
                RedisAssetClient(name, redis_url=redis_url).select_aggregator(aggregator.aggregator_uuid)
            wait_until_finished(aggregator, exchange, timeout=60)
            assert exchange.wait(30) == 0  # nothing more will be published (a trade may follow finish)
            time.sleep(0.2)  # for the recorder's thread
            assert aggregator.wait_for_hooks(5)
    finally:
        recording.stop()
        recording.join(2)
    published = [event for _, event in arrivals]
    finish_arrived = next(at for at, event in arrivals if event["event"] == "finish")
    ticks = [event for event in published if event["event"] == "tick"]
    # Every market, trade and finish event reached its hook, in the exchange's order.
    expected = [
        ("market", e["market_slot"])
        if e["event"] == "market"
        else ("trade", tuple(t["trade_id"] for t in e["trade_list"]))
        if e["event"] == "trade"
        else ("finish",)
        for e in published
        if e["event"] != "tick"
    ]
    assert aggregator.seen == expected and any(kind == "trade" for kind, *_ in expected), exchange.output()[-2000:]
    # Ticks: each one either ran its hooks or was counted as dropped; most were dropped.
    assert aggregator.ticks_run + aggregator.dropped_ticks == len(ticks)
    assert aggregator.dropped_ticks > len(ticks) / 2 and len(aggregator.tick_spans) >= 1
    # on_finish ran within 1 s of the finish event, once the hook running then had returned: the ticks
    # still queued (even a burst that queued before the first hook started) were skipped, not run first.
    running_until = max(
        (end for start, end in aggregator.tick_spans if start <= finish_arrived), default=finish_arrived
    )
    late_ticks = [span for span in aggregator.tick_spans if span[0] > finish_arrived]
    assert aggregator.finish_started - max(finish_arrived, running_until) < 1.0, (finish_arrived, late_ticks)
    logged = [r for r in caplog.records if "tick events superseded" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.INFO
    logging.getLogger(__name__).info(
        "slow hooks: %d tick events, %d dropped, %d on_tick calls; on_finish %.3f s after the finish event",
        len(ticks),
        aggregator.dropped_ticks,
        len(aggregator.tick_spans),
        aggregator.finish_started - finish_arrived,
    )
