"""``RedisAssetClient``: an asset (PV, load, storage ...) of the local exchange (SDK_API.md 4.2)."""

from __future__ import annotations

from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.redis_client_base import RedisAPIException, RedisClientBase

__all__ = ["RedisAPIException", "RedisAssetClient"]


class RedisAssetClient(RedisClientBase):
    """Registers an asset by its exact name; trading goes through an aggregator's batches.

    Forecasts and measurements can also be sent directly, as with ``RestAssetClient`` (same
    methods and arguments), for an asset no aggregator controls.
    """

    def set_energy_forecast(
        self, energy_forecast_kWh: dict[str, float], do_not_wait: bool = False
    ) -> dict[str, Any] | None:
        """Forecast ``{time slot: kWh}``; the exchange's answer unless ``do_not_wait``."""
        forecast = validation.energy_per_slot(energy_forecast_kWh, "energy_forecast_kWh")
        return self._direct_command("set_energy_forecast", {"energy_forecast": forecast}, wait=not do_not_wait)

    def set_energy_measurement(
        self, energy_measurement_kWh: dict[str, float], do_not_wait: bool = False
    ) -> dict[str, Any] | None:
        measurement = validation.energy_per_slot(energy_measurement_kWh, "energy_measurement_kWh")
        return self._direct_command("set_energy_measurement", {"energy_measurement": measurement}, wait=not do_not_wait)
