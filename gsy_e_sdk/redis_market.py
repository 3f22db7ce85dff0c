"""``RedisMarketClient``: a market area of the local exchange (SDK_API.md 4.3)."""

from __future__ import annotations

from gsy_e_sdk.clients.area_client import MarketClient
from gsy_e_sdk.redis_client_base import RedisClientBase
from gsy_e_sdk.wire.slug import slugify


class RedisMarketClient(RedisClientBase, MarketClient):
    """Markets are addressed by the slug of their name (``House 2`` -> ``house-2``).

    Note the parameter order of the original: ``redis_url`` comes before ``autoregister``.
    ``grid_fees`` and ``last_market_dso_stats`` work directly (``MarketClient``, as with
    ``RestMarketClient``), for a registered market no aggregator controls.
    """

    def __init__(self, area_id: str, redis_url: str | None = None, autoregister: bool = True) -> None:
        self.market_name = area_id
        super().__init__(slugify(area_id), autoregister=autoregister, redis_url=redis_url)
