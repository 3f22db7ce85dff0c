"""Deprecated name of ``RedisAssetClient``, kept so old scripts still import."""

import logging

from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient

logging.getLogger(__name__).warning(
    "The RedisDeviceClient class name will be deprecated. Please use RedisAssetClient instead."
)


class RedisDeviceClient(RedisAssetClient):
    pass
