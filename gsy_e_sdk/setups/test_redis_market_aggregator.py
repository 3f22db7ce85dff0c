"""A grid operator for scenario ``external_market_stats`` (markets House 1 and House 2).

Every slot it reads each market's DSO stats of the last slot and raises its constant grid fee
by 1 ct/kWh.
"""

import logging
import time
from typing import Any

from gsy_e_sdk.redis_aggregator import RedisAggregator
from gsy_e_sdk.redis_market import RedisMarketClient
from gsy_e_sdk.utils import log_grid_fees_information

logger = logging.getLogger(__name__)


class GridOperatorAggregator(RedisAggregator):
    def on_market_slot(self, market_info: dict[str, Any]) -> None:
        names, current, upcoming = [], {}, {}
        for uuid in self.device_uuid_list:
            market = self.latest_grid_tree_flat.get(uuid)
            if not market:
                continue
            name = market.get("area_name", uuid)
            fee = (market.get("current_market_fee") or 0) + 1
            names.append(name)
            current[name], upcoming[name] = market.get("current_market_fee"), fee
            self.add_to_batch_commands.last_market_dso_stats(uuid).grid_fees(uuid, fee)
        response = self.execute_batch_commands()
        if response:
            for answers in response.get("responses", {}).values():
                for answer in answers:
                    if answer.get("command") == "dso_market_stats":
                        logger.info("DSO stats of %s: %s", answer.get("name"), answer.get("market_stats"))
            log_grid_fees_information(names, current, upcoming)


aggregator = GridOperatorAggregator("grid_operator")
for market_name in ("house-1", "house-2"):
    RedisMarketClient(market_name).select_aggregator(aggregator.aggregator_uuid)

while not aggregator.is_finished:
    time.sleep(0.5)
aggregator.wait_for_hooks(timeout=10)
