"""``RedisAssetClient``: an asset (PV, load, storage ...) of the local exchange (SDK_API.md 4.2)."""

from gsy_e_sdk.redis_client_base import RedisAPIException, RedisClientBase

__all__ = ["RedisAPIException", "RedisAssetClient"]


class RedisAssetClient(RedisClientBase):
    """Registers an asset by its exact name; trading goes through an aggregator's batches."""
