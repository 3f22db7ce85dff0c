"""``AutoAggregator``: the README's ready-made trading aggregator as a library class.

The original SDK only defines it inside its example scripts. On every market slot it offers a
share of each controlled asset's available energy and bids for a share of its required energy,
optionally sets a constant grid fee on each controlled market (and asks for its DSO stats), and
sends all of it as one batch.
"""

from __future__ import annotations

import logging
from typing import Any

from gsy_e_sdk.redis_aggregator import RedisAggregator

logger = logging.getLogger(__name__)


class AutoAggregator(RedisAggregator):
    def __init__(
        self,
        aggregator_name: str,
        accept_all_devices: bool = True,
        redis_url: str | None = None,
        *,
        offer_price: float = 1.0,
        bid_price: float = 30.0,
        energy_share: float = 0.5,
        grid_fee_cents_kwh: float | None = None,
        drop_stale_ticks: bool | None = None,
    ) -> None:
        """Prices are **total** cents per order, as in the README example."""
        self.offer_price = offer_price
        self.bid_price = bid_price
        self.energy_share = energy_share
        self.grid_fee_cents_kwh = grid_fee_cents_kwh
        self.trades: list[dict[str, Any]] = []
        self.last_batch_response: dict[str, Any] | None = None
        super().__init__(aggregator_name, accept_all_devices, redis_url, drop_stale_ticks=drop_stale_ticks)

    def on_market_slot(self, market_info: dict[str, Any]) -> None:
        batch = self.add_to_batch_commands
        for uuid, node in self.latest_grid_tree_flat.items():
            if uuid not in self.device_uuid_list:
                continue
            if "children" in node:
                if self.grid_fee_cents_kwh is not None:
                    batch.last_market_dso_stats(uuid).grid_fees(uuid, self.grid_fee_cents_kwh)
                continue
            asset_info = node.get("asset_info") or {}
            available = asset_info.get("available_energy_kWh") or 0
            required = asset_info.get("energy_requirement_kWh") or 0
            if available > 0:
                batch.offer_energy(uuid, available * self.energy_share, self.offer_price)
            if required > 0:
                batch.bid_energy(uuid, required * self.energy_share, self.bid_price)
        self.last_batch_response = self.execute_batch_commands()

    def on_trade(self, trade_info: dict[str, Any]) -> None:
        self.trades.extend(trade_info.get("trade_list") or [])

    def on_finish(self, finish_info: dict[str, Any]) -> None:
        logger.info("%s: simulation finished after %d trades", self.aggregator_name, len(self.trades))
