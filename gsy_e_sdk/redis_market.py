"""``RedisMarketClient``: a market area of the local exchange (SDK_API.md 4.3)."""

from __future__ import annotations

from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.redis_client_base import RedisClientBase
from gsy_e_sdk.wire.slug import slugify


class RedisMarketClient(RedisClientBase):
    """Markets are addressed by the slug of their name (``House 2`` -> ``house-2``).

    Note the parameter order of the original: ``redis_url`` comes before ``autoregister``.
    ``grid_fees`` and ``last_market_dso_stats`` work directly, as with ``RestMarketClient`` (same
    methods and arguments), for a registered market no aggregator controls.
    """

    def __init__(self, area_id: str, redis_url: str | None = None, autoregister: bool = True) -> None:
        self.market_name = area_id
        super().__init__(slugify(area_id), autoregister=autoregister, redis_url=redis_url)

    def grid_fees(self, fee_cents_per_kWh: float) -> dict[str, Any] | None:
        """Set the market's constant fee (ct/kWh) from the next slot on; the ``grid_fees`` answer."""
        fee = validation.non_negative(fee_cents_per_kWh, "fee_cents_per_kWh")
        return self._direct_command("grid_fees", {"fee_const": fee}, wait=True)

    def last_market_dso_stats(self) -> dict[str, Any] | None:
        """The market's statistics of the last finished slot (``dso_market_stats`` answer)."""
        return self._direct_command("dso_market_stats", {}, wait=True)
