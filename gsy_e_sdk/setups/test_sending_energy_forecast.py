"""Forecasts and measurements for scenario ``external_devices_send_forecasts``.

Assets ``forecast-measurement-pv`` and ``forecast-measurement-load`` get, every slot, a forecast
for the next slot (a counter growing by 1 kWh per slot) and a measurement for the current one.
"""

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
from gsy_e_sdk.redis_aggregator import RedisAggregator
from gsy_e_sdk.wire.times import format_slot, parse_slot

logger = logging.getLogger(__name__)

ASSETS = ("forecast-measurement-pv", "forecast-measurement-load")


class ForecastAggregator(RedisAggregator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counter = 0
        self.slot_length = timedelta(minutes=15)
        self.previous_slot: datetime | None = None

    def on_market_slot(self, market_info: dict[str, Any]) -> None:
        slot = parse_slot(market_info["market_slot"])
        if self.previous_slot is not None and slot > self.previous_slot:
            self.slot_length = slot - self.previous_slot
        self.previous_slot = slot
        self.counter += 1
        next_slot = format_slot(slot + self.slot_length)
        for uuid in self.device_uuid_list:
            (
                self.add_to_batch_commands.set_energy_forecast(
                    uuid, {next_slot: float(self.counter)}
                ).set_energy_measurement(uuid, {market_info["market_slot"]: float(self.counter)})
            )
        self.execute_batch_commands(is_blocking=False)
        logger.info("Sent forecast %s kWh for %s", self.counter, next_slot)


aggregator = ForecastAggregator("forecast_aggr")
for asset_name in ASSETS:
    RedisAssetClient(asset_name).select_aggregator(aggregator.aggregator_uuid)

while not aggregator.is_finished:
    time.sleep(0.5)
aggregator.wait_for_hooks(timeout=10)
