"""The REST version of ``test_redis_aggregator`` (SDK_API.md 10), for scenario ``external_devices``.

``gsy-e-sdk run -u <user> -d <domain> -w <websocket domain> -s <simulation id> --setup
test_create_aggregator`` (the password is prompted, or taken from env API_CLIENT_PASSWORD).

An aggregator named ``test_aggr`` controls assets ``load`` and ``pv`` and market ``House 2``,
whose uuids are looked up by name in the configuration's scenario (GraphQL). Every slot it
logs the grid fee from each controlled area to ``House 2``, offers half of each asset's
available energy for 1 ct in total, bids for half of its required energy for 30 ct in total,
reads House 2's DSO stats and sets its grid fee to 5 ct/kWh. It returns when the simulation
finishes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gsy_e_sdk.aggregator import Aggregator
from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
from gsy_e_sdk.rest_market import RestMarketClient
from gsy_e_sdk.utils import get_area_uuid_from_area_name_and_collaboration_id, get_sim_id_and_domain_names

logger = logging.getLogger(__name__)

ASSET_NAMES = ("load", "pv")
MARKET_NAME = "House 2"
OFFER_PRICE_CENTS = 1
BID_PRICE_CENTS = 30
GRID_FEE_CENTS_KWH = 5


class TestAggregator(Aggregator):
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, *args: Any, market_uuid: str, **kwargs: Any) -> None:
        self.market_uuid = market_uuid
        self.trades: list[dict[str, Any]] = []
        super().__init__(*args, **kwargs)

    def on_market_slot(self, market_info: dict[str, Any]) -> None:
        batch = self.add_to_batch_commands
        for uuid, node in self.latest_grid_tree_flat.items():
            if uuid not in self.device_uuid_list:
                continue
            fee = self.calculate_grid_fee(uuid, self.market_uuid)
            logger.info("Grid fee from %s to %s: %s ct/kWh", node.get("area_name"), MARKET_NAME, fee)
            if uuid == self.market_uuid:
                batch.last_market_dso_stats(uuid).grid_fees(uuid, GRID_FEE_CENTS_KWH)
                continue
            asset_info = node.get("asset_info") or {}
            if (asset_info.get("available_energy_kWh") or 0) > 0:
                batch.offer_energy(uuid, asset_info["available_energy_kWh"] / 2, OFFER_PRICE_CENTS)
            if (asset_info.get("energy_requirement_kWh") or 0) > 0:
                batch.bid_energy(uuid, asset_info["energy_requirement_kWh"] / 2, BID_PRICE_CENTS)
        response = self.execute_batch_commands()
        if response:
            for answers in response.get("responses", {}).values():
                for answer in answers:
                    if answer.get("command") == "dso_market_stats":
                        logger.info("DSO stats of %s: %s", MARKET_NAME, answer.get("market_stats"))

    def on_trade(self, trade_info: dict[str, Any]) -> None:
        self.trades.extend(trade_info.get("trade_list") or [])

    def on_finish(self, finish_info: dict[str, Any]) -> None:
        logger.info("%s: simulation finished after %d trades", self.aggregator_name, len(self.trades))


simulation_id, domain_name, _ = get_sim_id_and_domain_names()
uuids = {
    name: get_area_uuid_from_area_name_and_collaboration_id(simulation_id, name, domain_name)
    for name in (*ASSET_NAMES, MARKET_NAME)
}

aggregator = TestAggregator("test_aggr", market_uuid=uuids[MARKET_NAME])
clients: list[RestAssetClient | RestMarketClient] = [RestAssetClient(uuids[name]) for name in ASSET_NAMES]
clients.append(RestMarketClient(uuids[MARKET_NAME]))
for client in clients:
    client.select_aggregator(aggregator.aggregator_uuid)

while not aggregator.is_finished:
    time.sleep(0.5)
aggregator.wait_for_hooks(timeout=10)
logger.info("test_create_aggregator finished with %d trades", len(aggregator.trades))
