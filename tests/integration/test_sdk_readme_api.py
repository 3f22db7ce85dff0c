"""Every call the original SDK's README shows, with the arguments it shows, on BOTH transports.

The same script body (``run_readme_script``) drives the Redis classes against the local exchange
and the REST classes against its HTTP facade: constructors with ``autoregister``, ``register()``
/ ``unregister()`` without arguments, selection with and without ``is_blocking``, forecasts and
measurements, a market's grid fee and DSO stats, every batch builder with its documented keyword
arguments, ``execute_batch_commands()``, grid fees by name, ``delete_aggregator()`` and the
hooks, ``on_finished`` included. Signatures of the original (positional) keep working too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gsy_e_sdk.aggregator import Aggregator
from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
from gsy_e_sdk.redis_aggregator import RedisAggregator
from gsy_e_sdk.redis_market import RedisMarketClient
from gsy_e_sdk.rest_market import RestMarketClient
from gsy_e_sdk.wire.times import format_slot, parse_slot
from tests.integration.test_sdk_rest import HOUSE_2, LOAD, PV, wait_for

pytestmark = pytest.mark.integration

FORECAST_LOAD = "2daa372a-b964-414b-aa57-e163e5dfdad2"  # forecast-measurement-load: never selected
START = "2026-06-01T10:00"  # daylight: the PV has energy to offer
# 10 ticks per 15-minute slot, 1.5 s of wall time per slot: hooks and direct calls keep up.
PACED = (
    "--duration",
    "2h",
    "--slot-length",
    "15m",
    "--tick-length",
    "90s",
    "--pace",
    "1.5",
    "--start-when-selected",
    "2",
)
# The README's builder calls; every one must come back answered by the exchange, and all but the
# PV's forecast and measurement (which only forecast-driven assets take) succeed.
BATCH_COMMANDS = {
    "bid",
    "offer",
    "bid_delete",
    "offer_delete",
    "list_bids",
    "list_offers",
    "device_info",
    "dso_market_stats",
    "grid_fees",
    "set_energy_forecast",
    "set_energy_measurement",
}
NOT_FOR_A_PV = {"set_energy_forecast", "set_energy_measurement"}


class ReadmeCalls:
    """The README's aggregator: every builder call with its documented keyword arguments."""

    aggregator_uuid: str
    device_uuid_list: list[str]
    latest_grid_tree_flat: dict[str, dict]
    add_to_batch_commands: Any
    execute_batch_commands: Any
    calculate_grid_fee: Any

    def _start_recording(self) -> None:
        self.hooks: set[str] = set()
        self.answers: list[dict] = []  # every per-command answer of every batch
        self.fees: list[Any] = []

    def on_market_slot(self, market_info: dict) -> None:
        self.hooks.add("on_market_slot")
        slot = market_info["market_slot"]
        next_slot = format_slot(parse_slot(slot) + timedelta(minutes=15))
        batch = self.add_to_batch_commands
        for uuid in list(self.device_uuid_list):
            node = self.latest_grid_tree_flat.get(uuid) or {}
            info = node.get("asset_info") or {}
            if "children" in node:  # the market
                batch.last_market_dso_stats(area_uuid=uuid)
                batch.change_grid_fees_percent(area_uuid=uuid, fee_percent=0)
                batch.grid_fees(area_uuid=uuid, fee_cents_kwh=1)
            elif info.get("energy_requirement_kWh", 0) > 0:
                required = info["energy_requirement_kWh"]
                batch.delete_bid(asset_uuid=uuid, bid_id=None)
                batch.bid_energy(
                    asset_uuid=uuid, energy=required / 4, price=10 * required, replace_existing=True, time_slot=None
                )
                batch.bid_energy_rate(asset_uuid=uuid, energy=required / 4, rate=35, replace_existing=False)
                batch.list_bids(area_uuid=uuid)
                batch.asset_info(asset_uuid=uuid)
            elif info.get("available_energy_kWh", 0) > 0:
                available = info["available_energy_kWh"]
                batch.delete_offer(asset_uuid=uuid, offer_id=None)
                batch.offer_energy(
                    asset_uuid=uuid, energy=available / 4, price=available / 4, replace_existing=True, time_slot=None
                )
                batch.offer_energy_rate(asset_uuid=uuid, energy=available / 4, rate=1, replace_existing=False)
                batch.list_offers(area_uuid=uuid)
                batch.device_info(area_uuid=uuid)
                batch.set_energy_forecast(asset_uuid=uuid, energy_forecast_kWh={next_slot: available})
                batch.set_energy_measurement(asset_uuid=uuid, energy_measurement_kWh={slot: available})
        response = self.execute_batch_commands()
        if response:
            self.answers.extend(answer for answers in response["responses"].values() for answer in answers)
        load, pv = self.get_uuid_from_area_name(name="load"), self.get_uuid_from_area_name(name="pv")
        self.fees.append(
            self.calculate_grid_fee(
                start_market_or_device_name=load, target_market_or_device_name=pv, fee_type="current_market_fee"
            )
        )

    def on_tick(self, tick_info: dict) -> None:
        self.hooks.add("on_tick")

    def on_trade(self, trade_info: dict) -> None:
        self.hooks.add("on_trade")

    def on_finish(self, finish_info: dict) -> None:
        self.hooks.add("on_finish")

    def on_finished(self, finish_info: dict) -> None:
        self.hooks.add("on_finished")

    def on_event_or_response(self, message: dict) -> None:
        self.hooks.add("on_event_or_response")


class RedisReadme(ReadmeCalls, RedisAggregator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._start_recording()
        super().__init__(*args, **kwargs)


class RestReadme(ReadmeCalls, Aggregator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._start_recording()
        super().__init__(*args, **kwargs)


def run_readme_script(aggregator: Any, load: Any, pv: Any, market: Any, forecaster: Any, spare: Any) -> None:
    """The README's calls after construction; the same code for both transports."""
    pv.register(is_blocking=True)
    load.select_aggregator(aggregator.aggregator_uuid)
    pv.select_aggregator(aggregator.aggregator_uuid, is_blocking=True)  # the run starts
    # Direct calls of assets and markets that no aggregator controls.
    forecast = forecaster.set_energy_forecast(energy_forecast_kWh={"2026-06-01T10:30": 0.4}, do_not_wait=False)
    assert (forecast["command"], forecast["status"]) == ("set_energy_forecast", "ready"), forecast
    assert forecaster.set_energy_measurement(energy_measurement_kWh={START: 0.3}, do_not_wait=True) is None
    fees = market.grid_fees(fee_cents_per_kWh=3)
    assert (fees["command"], fees["status"]) == ("grid_fees", "ready"), fees
    stats = market.last_market_dso_stats()
    assert (stats["command"], stats["status"]) == ("dso_market_stats", "ready"), stats
    market.select_aggregator(aggregator.aggregator_uuid)
    wait_for(
        lambda: BATCH_COMMANDS <= {answer["command"] for answer in aggregator.answers},
        30,
        f"answers to every builder call: {aggregator.answers}",
    )
    forecaster.unregister()
    assert not is_registered(forecaster)
    assert spare.delete_aggregator(is_blocking=True) is not None
    pv.unselect_aggregator(aggregator.aggregator_uuid)
    wait_for(lambda: pv_uuid(pv) not in aggregator.device_uuid_list, 10, "the unselection")
    wait_for(lambda: aggregator.is_finished, 60, "the finish event")
    assert aggregator.wait_for_hooks(15)

    answered = {answer["command"]: answer for answer in aggregator.answers if answer["status"] == "ready"}
    assert BATCH_COMMANDS - NOT_FOR_A_PV <= set(answered), aggregator.answers
    refused = {answer["command"]: answer for answer in aggregator.answers if answer["status"] == "error"}
    assert all("not supported" in str(refused[command]) for command in NOT_FOR_A_PV), refused
    assert answered["bid"]["market_type"] and answered["list_bids"]["bid_list"] is not None
    assert {
        "on_market_slot",
        "on_tick",
        "on_trade",
        "on_finish",
        "on_finished",
        "on_event_or_response",
    } <= aggregator.hooks
    assert aggregator.fees and all(isinstance(fee, (int, float)) for fee in aggregator.fees)


def pv_uuid(client: Any) -> str:
    return client.area_uuid if isinstance(client, RedisAssetClient) else client.asset_uuid


def is_registered(client: Any) -> bool:
    return client.is_active if isinstance(client, RedisAssetClient) else client.registered


def test_readme_calls_on_redis(start_exchange, redis_url: str) -> None:
    start_exchange("external_devices.json", *PACED, "--start-date", START)
    aggregator = RedisReadme("readme_redis", accept_all_devices=True, redis_url=redis_url)
    load = RedisAssetClient("load", autoregister=True, redis_url=redis_url, pubsub_thread=aggregator.pubsub)
    pv = RedisAssetClient("pv", False, redis_url)  # the original's positional order
    market = RedisMarketClient("House 2", redis_url=redis_url, autoregister=True)
    forecaster = RedisAssetClient("forecast-measurement-load", redis_url=redis_url)
    spare = RedisAggregator("spare", True, redis_url)
    run_readme_script(aggregator, load, pv, market, forecaster, spare)
    assert aggregator.get_uuid_from_area_name(name="pv") == pv.area_uuid


def test_readme_calls_on_rest(facade, closing) -> None:
    exchange = facade(*PACED)  # the facade fixture starts at START too
    aggregator = closing(RestReadme("readme_rest", accept_all_devices=True))
    load = closing(RestAssetClient(LOAD, autoregister=True))
    pv = closing(RestAssetClient(PV, None, exchange.domain, exchange.websocket_domain))  # positional
    market = closing(RestMarketClient(HOUSE_2, autoregister=True))
    assert market.registered
    forecaster = closing(RestAssetClient(FORECAST_LOAD, autoregister=True))
    spare = closing(Aggregator("spare"))
    run_readme_script(aggregator, load, pv, market, forecaster, spare)
    assert aggregator.get_uuid_from_area_name(name="pv") == PV
