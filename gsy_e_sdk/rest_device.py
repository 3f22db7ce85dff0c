"""Deprecated name of ``RestAssetClient``, kept so old scripts still import."""

from __future__ import annotations

import logging

from gsy_e_sdk.clients.rest_asset_client import RestAssetClient

logging.getLogger(__name__).warning(
    "The RestDeviceClient class name will be deprecated. Please use RestAssetClient instead."
)


class RestDeviceClient(RestAssetClient):
    """``RestAssetClient`` with ``asset_uuid=area_id``; never registers at construction."""

    def __init__(
        self,
        area_id: str,
        simulation_id: str | None = None,
        domain_name: str | None = None,
        websockets_domain_name: str | None = None,
        autoregister: bool = False,
        start_websocket: bool = True,
        sim_api_domain_name: str | None = None,
    ) -> None:
        super().__init__(
            area_id,
            simulation_id,
            domain_name,
            websockets_domain_name,
            autoregister=False,
            start_websocket=True,
            sim_api_domain_name=sim_api_domain_name,
        )
