"""``RedisAssetClient``: an asset (PV, load, storage ...) of the local exchange (SDK_API.md 4.2)."""

from __future__ import annotations

from gsy_e_sdk.clients.area_client import AssetClient
from gsy_e_sdk.redis_client_base import RedisAPIException, RedisClientBase

__all__ = ["RedisAPIException", "RedisAssetClient"]


class RedisAssetClient(RedisClientBase, AssetClient):
    """Registers an asset by its exact name; trading goes through an aggregator's batches.

    Forecasts and measurements can also be sent directly (``AssetClient``, as with
    ``RestAssetClient``), for an asset no aggregator controls.
    """
