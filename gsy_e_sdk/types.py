"""Client classes picked by env ``API_CLIENT_RUN_ON_REDIS`` (set by ``gsy-e-sdk run``).

``"true"`` selects the Redis classes. The REST classes arrive in a later release; until then
asking for a type in REST mode raises ``ImportError`` with an explanation.
"""

import os
from typing import Any

__all__ = ["aggregator_client_type", "device_client_type", "market_client_type"]


def _redis_types() -> dict[str, Any]:
    from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient  # noqa: PLC0415
    from gsy_e_sdk.redis_aggregator import RedisAggregator  # noqa: PLC0415
    from gsy_e_sdk.redis_market import RedisMarketClient  # noqa: PLC0415

    return {"device_client_type": RedisAssetClient, "aggregator_client_type": RedisAggregator,
            "market_client_type": RedisMarketClient}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'gsy_e_sdk.types' has no attribute {name!r}")
    if os.environ.get("API_CLIENT_RUN_ON_REDIS") == "true":
        return _redis_types()[name]
    raise ImportError(f"gsy_e_sdk.types.{name}: the REST clients are not available in this "
                      "release; run with --run-on-redis (env API_CLIENT_RUN_ON_REDIS=true)")
