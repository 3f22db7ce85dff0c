"""Client classes picked by env ``API_CLIENT_RUN_ON_REDIS`` (set by ``gsy-e-sdk run``).

``"true"`` selects the Redis classes, anything else the REST ones (SDK_API.md 7). Resolved on
each access, so a script sees the mode the CLI set before importing it.
"""

import os
from typing import TYPE_CHECKING, Any

__all__ = ["aggregator_client_type", "device_client_type", "market_client_type"]

if TYPE_CHECKING:  # resolved by __getattr__ below
    aggregator_client_type: type
    device_client_type: type
    market_client_type: type


def _redis_types() -> dict[str, Any]:
    from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient  # noqa: PLC0415 - only the selected mode's classes load
    from gsy_e_sdk.redis_aggregator import RedisAggregator  # noqa: PLC0415 - only the selected mode's classes load
    from gsy_e_sdk.redis_market import RedisMarketClient  # noqa: PLC0415 - only the selected mode's classes load

    return {
        "device_client_type": RedisAssetClient,
        "aggregator_client_type": RedisAggregator,
        "market_client_type": RedisMarketClient,
    }


def _rest_types() -> dict[str, Any]:
    from gsy_e_sdk.aggregator import Aggregator  # noqa: PLC0415 - only the selected mode's classes load
    from gsy_e_sdk.clients.rest_asset_client import RestAssetClient  # noqa: PLC0415 - only the selected mode's classes load
    from gsy_e_sdk.rest_market import RestMarketClient  # noqa: PLC0415 - only the selected mode's classes load

    return {
        "device_client_type": RestAssetClient,
        "aggregator_client_type": Aggregator,
        "market_client_type": RestMarketClient,
    }


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'gsy_e_sdk.types' has no attribute {name!r}")
    if os.environ.get("API_CLIENT_RUN_ON_REDIS") == "true":
        return _redis_types()[name]
    return _rest_types()[name]
