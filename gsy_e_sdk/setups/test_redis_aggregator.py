"""The README flow against scenario ``external_devices`` (House 2 with ``load``, ``pv``).

An ``AutoAggregator`` controls assets ``load`` and ``pv`` and market ``House 2``: every slot it
offers half of the PV's energy at 1 ct total, bids for half of the load's energy at 30 ct total,
reads House 2's DSO stats and sets its grid fee to 5 ct/kWh.
"""

import logging
import time

from gsy_e_sdk.auto_aggregator import AutoAggregator
from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
from gsy_e_sdk.redis_market import RedisMarketClient

logger = logging.getLogger(__name__)

aggregator = AutoAggregator("test_aggr", grid_fee_cents_kwh=5)
clients: list[RedisAssetClient | RedisMarketClient] = [
    RedisAssetClient(name, autoregister=True, pubsub_thread=aggregator.pubsub) for name in ("load", "pv")
]
clients.append(RedisMarketClient("house-2"))
for client in clients:
    client.select_aggregator(aggregator.aggregator_uuid)

while not aggregator.is_finished:
    time.sleep(0.5)
aggregator.wait_for_hooks(timeout=10)
logger.info("test_redis_aggregator finished with %d trades", len(aggregator.trades))
