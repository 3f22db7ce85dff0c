"""``RedisMarketClient``: a market area of the local exchange (SDK_API.md 4.3)."""

from gsy_e_sdk.redis_client_base import RedisClientBase
from gsy_e_sdk.wire.slug import slugify


class RedisMarketClient(RedisClientBase):
    """Markets are addressed by the slug of their name (``House 2`` -> ``house-2``).

    Note the parameter order of the original: ``redis_url`` comes before ``autoregister``.
    """

    def __init__(self, area_id: str, redis_url: str | None = None,
                 autoregister: bool = True) -> None:
        self.market_name = area_id
        super().__init__(slugify(area_id), autoregister=autoregister, redis_url=redis_url)
