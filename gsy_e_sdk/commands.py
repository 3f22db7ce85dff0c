"""The batch command builder behind ``aggregator.add_to_batch_commands`` (SDK_API.md 6).

Commands are appended to a flat list and grouped by area uuid only when the batch is sent, so
building n commands costs O(n). Every builder method validates its input and returns the buffer
so calls can be chained.
"""

from __future__ import annotations

import logging
from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.enums import Commands, command_enum_to_command_name

logger = logging.getLogger(__name__)

Command = dict[str, Any]


def _group_by_uuid(commands: list[tuple[str, Command]]) -> dict[str, list[Command]]:
    batch: dict[str, list[Command]] = {}
    for uuid, command in commands:
        batch.setdefault(uuid, []).append(command)
    return batch


class ClientCommandBuffer:
    def __init__(self) -> None:
        self._commands: list[tuple[str, Command]] = []

    @property
    def buffer_length(self) -> int:
        return len(self._commands)

    def clear(self) -> None:
        self._commands = []

    def execute_batch(self) -> dict[str, list[Command]]:
        """``{uuid: [command, ...]}`` in insertion order per uuid; the buffer is kept."""
        return _group_by_uuid(self._commands)

    def take_batch(self) -> dict[str, list[Command]]:
        """Group and empty the buffer in one step, safe against hooks adding concurrently."""
        commands, self._commands = self._commands, []
        return _group_by_uuid(commands)

    def _add(self, uuid: Any, command: Commands, **arguments: Any) -> ClientCommandBuffer:
        self._commands.append(
            (validation.area_uuid(uuid), {"type": command_enum_to_command_name(command), **arguments})
        )
        return self

    # Orders -----------------------------------------------------------------------------------

    def _order(
        self,
        command: Commands,
        asset_uuid: Any,
        energy: Any,
        price: Any,
        replace_existing: Any,
        time_slot: Any,
        attributes: Any,
        requirements: Any,
    ) -> ClientCommandBuffer:
        arguments: dict[str, Any] = {
            "energy": validation.positive_energy(energy),
            "price": validation.non_negative(price, "price"),
            "replace_existing": validation.boolean(replace_existing, "replace_existing"),
            "time_slot": validation.time_slot(time_slot),
        }
        # Only sent when given: the exchange rejects unknown keys for PV and load.
        if attributes is not None:
            if not isinstance(attributes, dict):
                raise ValueError(f"attributes must be a dict, got {attributes!r}")
            arguments["attributes"] = attributes
        if requirements is not None:
            if not isinstance(requirements, list):
                raise ValueError(f"requirements must be a list of dicts, got {requirements!r}")
            arguments["requirements"] = requirements
        return self._add(asset_uuid, command, **arguments)

    def offer_energy(
        self,
        asset_uuid: str,
        energy: float,
        price: float,
        replace_existing: bool = True,
        time_slot: str | None = None,
        attributes: dict | None = None,
        requirements: list[dict] | None = None,
    ) -> ClientCommandBuffer:
        """Offer ``energy`` kWh for a **total** price of ``price`` cents."""
        return self._order(
            Commands.OFFER, asset_uuid, energy, price, replace_existing, time_slot, attributes, requirements
        )

    def offer_energy_rate(
        self,
        asset_uuid: str,
        energy: float,
        rate: float,
        replace_existing: bool = True,
        time_slot: str | None = None,
        attributes: dict | None = None,
        requirements: list[dict] | None = None,
    ) -> ClientCommandBuffer:
        """Offer ``energy`` kWh at ``rate`` ct/kWh (sent as total price ``rate * energy``)."""
        validation.positive_energy(energy)
        price = validation.non_negative(rate, "rate") * energy
        return self._order(
            Commands.OFFER, asset_uuid, energy, price, replace_existing, time_slot, attributes, requirements
        )

    def bid_energy(
        self,
        asset_uuid: str,
        energy: float,
        price: float,
        replace_existing: bool = True,
        time_slot: str | None = None,
        attributes: dict | None = None,
        requirements: list[dict] | None = None,
    ) -> ClientCommandBuffer:
        """Bid for ``energy`` kWh at a **total** price of ``price`` cents."""
        return self._order(
            Commands.BID, asset_uuid, energy, price, replace_existing, time_slot, attributes, requirements
        )

    def bid_energy_rate(
        self,
        asset_uuid: str,
        energy: float,
        rate: float,
        replace_existing: bool = True,
        time_slot: str | None = None,
        attributes: dict | None = None,
        requirements: list[dict] | None = None,
    ) -> ClientCommandBuffer:
        """Bid for ``energy`` kWh at ``rate`` ct/kWh (sent as total price ``rate * energy``)."""
        validation.positive_energy(energy)
        price = validation.non_negative(rate, "rate") * energy
        return self._order(
            Commands.BID, asset_uuid, energy, price, replace_existing, time_slot, attributes, requirements
        )

    def delete_offer(
        self, asset_uuid: str, offer_id: str | None = None, time_slot: str | None = None
    ) -> ClientCommandBuffer:
        """Delete one offer, or all of the asset's open offers when ``offer_id`` is None.

        The id goes under ``offer`` (what the exchange reads) and ``offer_id`` (what the original
        SDK sent), see the MISMATCH in REDIS.md 6.2.
        """
        offer_id = validation.optional_id(offer_id, "offer_id")
        return self._add(
            asset_uuid,
            Commands.DELETE_OFFER,
            offer=offer_id,
            offer_id=offer_id,
            time_slot=validation.time_slot(time_slot),
        )

    def delete_bid(
        self, asset_uuid: str, bid_id: str | None = None, time_slot: str | None = None
    ) -> ClientCommandBuffer:
        """Delete one bid, or all of the asset's open bids when ``bid_id`` is None."""
        bid_id = validation.optional_id(bid_id, "bid_id")
        return self._add(
            asset_uuid, Commands.DELETE_BID, bid=bid_id, bid_id=bid_id, time_slot=validation.time_slot(time_slot)
        )

    def list_offers(self, area_uuid: str, time_slot: str | None = None) -> ClientCommandBuffer:
        return self._add(area_uuid, Commands.LIST_OFFERS, time_slot=validation.time_slot(time_slot))

    def list_bids(self, area_uuid: str, time_slot: str | None = None) -> ClientCommandBuffer:
        return self._add(area_uuid, Commands.LIST_BIDS, time_slot=validation.time_slot(time_slot))

    # Information and markets ------------------------------------------------------------------

    def asset_info(self, asset_uuid: str) -> ClientCommandBuffer:
        return self._add(asset_uuid, Commands.ASSET_INFO)

    def device_info(self, area_uuid: str) -> ClientCommandBuffer:
        logger.warning("device_info is deprecated, please use asset_info instead.")
        return self.asset_info(area_uuid)

    def last_market_dso_stats(self, area_uuid: str) -> ClientCommandBuffer:
        return self._add(area_uuid, Commands.DSO_MARKET_STATS, data={})

    def grid_fees(self, area_uuid: str, fee_cents_kwh: float) -> ClientCommandBuffer:
        """Constant grid fee in ct/kWh for markets created from the next slot on."""
        fee = validation.non_negative(fee_cents_kwh, "fee_cents_kwh")
        return self._add(area_uuid, Commands.GRID_FEES, data={"fee_const": fee})

    def change_grid_fees_percent(self, area_uuid: str, fee_percent: float) -> ClientCommandBuffer:
        fee = validation.non_negative(fee_percent, "fee_percent")
        return self._add(area_uuid, Commands.GRID_FEES, data={"fee_percent": fee})

    # Forecasts --------------------------------------------------------------------------------

    def set_energy_forecast(self, asset_uuid: str, energy_forecast_kWh: dict[str, float]) -> ClientCommandBuffer:
        """Forecast ``{time slot: kWh}``; applied to slots >= the next spot slot."""
        forecast = validation.energy_per_slot(energy_forecast_kWh, "energy_forecast_kWh")
        return self._add(asset_uuid, Commands.FORECAST, energy_forecast=forecast)

    def set_energy_measurement(self, asset_uuid: str, energy_measurement_kWh: dict[str, float]) -> ClientCommandBuffer:
        measurement = validation.energy_per_slot(energy_measurement_kWh, "energy_measurement_kWh")
        return self._add(asset_uuid, Commands.MEASUREMENT, energy_measurement=measurement)

    # Removed commands -------------------------------------------------------------------------

    def update_offer(self, *args: Any, **kwargs: Any) -> None:
        logger.warning("update_offer is deprecated and does nothing: use offer_energy with replace_existing=True.")

    def update_bid(self, *args: Any, **kwargs: Any) -> None:
        logger.warning("update_bid is deprecated and does nothing: use bid_energy with replace_existing=True.")
