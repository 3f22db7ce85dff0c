"""The batch command builder behind ``aggregator.add_to_batch_commands`` (SDK_API.md 6).

Commands are appended to a flat list and grouped by area uuid only when the batch is sent, so
building n commands costs O(n). Every builder method validates its input through the command's
model of the protocol (``gsy_e_sdk/wire/command_params.py``, which the exchange and its REST
facade validate with too) and returns the buffer so calls can be chained.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from gsy_e_sdk import validation
from gsy_e_sdk.wire import command_params as p

logger = logging.getLogger(__name__)

Command = dict[str, Any]
Params = TypeVar("Params", bound=p.CommandParams)


def _group_by_uuid(commands: list[tuple[str, Command]]) -> dict[str, list[Command]]:
    batch: dict[str, list[Command]] = {}
    for uuid, command in commands:
        batch.setdefault(uuid, []).append(command)
    return batch


def checked(model: type[Params], names: Mapping[str, str] | None = None, **arguments: Any) -> Params:
    """``model`` of ``arguments``; ``ValueError`` names the bad argument (as ``names`` calls it) and its value."""
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        raise ValueError(p.describe(exc, names, echo=True)) from None


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

    def _add(self, uuid: Any, command: p.CommandParams) -> ClientCommandBuffer:
        """Append a command already validated (a model of ``gsy_e_sdk.wire.command_params``)."""
        self._commands.append((validation.area_uuid(uuid), command.wire()))
        return self

    # Orders -----------------------------------------------------------------------------------

    def _order(
        self,
        model: type[p.Order],
        asset_uuid: Any,
        energy: Any,
        price: Any,
        replace_existing: Any,
        time_slot: Any,
        attributes: Any,
        requirements: Any,
    ) -> ClientCommandBuffer:
        # attributes and requirements are only sent when given: the exchange refuses them for PV and load.
        order = checked(
            model,
            energy=energy,
            price=price,
            replace_existing=replace_existing,
            time_slot=time_slot,
            attributes=attributes,
            requirements=requirements,
        )
        return self._add(asset_uuid, order)

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
        return self._order(p.Offer, asset_uuid, energy, price, replace_existing, time_slot, attributes, requirements)

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
        price = _total_price(energy, rate)
        return self._order(p.Offer, asset_uuid, energy, price, replace_existing, time_slot, attributes, requirements)

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
        return self._order(p.Bid, asset_uuid, energy, price, replace_existing, time_slot, attributes, requirements)

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
        price = _total_price(energy, rate)
        return self._order(p.Bid, asset_uuid, energy, price, replace_existing, time_slot, attributes, requirements)

    def delete_offer(
        self, asset_uuid: str, offer_id: str | None = None, time_slot: str | None = None
    ) -> ClientCommandBuffer:
        """Delete one offer, or all of the asset's open offers when ``offer_id`` is None.

        The id goes under ``offer`` (what the exchange reads) and ``offer_id`` (what the original
        SDK sent), see the MISMATCH in REDIS.md 6.2.
        """
        names = {"offer": "offer_id"}
        command = checked(p.DeleteOffer, names, offer=offer_id, offer_id=offer_id, time_slot=time_slot)
        return self._add(asset_uuid, command)

    def delete_bid(
        self, asset_uuid: str, bid_id: str | None = None, time_slot: str | None = None
    ) -> ClientCommandBuffer:
        """Delete one bid, or all of the asset's open bids when ``bid_id`` is None."""
        command = checked(p.DeleteBid, {"bid": "bid_id"}, bid=bid_id, bid_id=bid_id, time_slot=time_slot)
        return self._add(asset_uuid, command)

    def list_offers(self, area_uuid: str, time_slot: str | None = None) -> ClientCommandBuffer:
        return self._add(area_uuid, checked(p.ListOffers, time_slot=time_slot))

    def list_bids(self, area_uuid: str, time_slot: str | None = None) -> ClientCommandBuffer:
        return self._add(area_uuid, checked(p.ListBids, time_slot=time_slot))

    # Information and markets ------------------------------------------------------------------

    def asset_info(self, asset_uuid: str) -> ClientCommandBuffer:
        return self._add(asset_uuid, p.DeviceInfo())

    def device_info(self, area_uuid: str) -> ClientCommandBuffer:
        logger.warning("device_info is deprecated, please use asset_info instead.")
        return self.asset_info(area_uuid)

    def last_market_dso_stats(self, area_uuid: str) -> ClientCommandBuffer:
        return self._add(area_uuid, p.DsoMarketStats())

    def grid_fees(self, area_uuid: str, fee_cents_kwh: float) -> ClientCommandBuffer:
        """Constant grid fee in ct/kWh for markets created from the next slot on."""
        return self._add(area_uuid, checked(p.GridFees, {"fee_const": "fee_cents_kwh"}, fee_const=fee_cents_kwh))

    def change_grid_fees_percent(self, area_uuid: str, fee_percent: float) -> ClientCommandBuffer:
        return self._add(area_uuid, checked(p.GridFees, fee_percent=fee_percent))

    # Forecasts --------------------------------------------------------------------------------

    def set_energy_forecast(self, asset_uuid: str, energy_forecast_kWh: dict[str, float]) -> ClientCommandBuffer:
        """Forecast ``{time slot: kWh}``; applied to slots >= the next spot slot."""
        names = {"energy_forecast": "energy_forecast_kWh"}
        return self._add(asset_uuid, checked(p.SetEnergyForecast, names, energy_forecast=energy_forecast_kWh))

    def set_energy_measurement(self, asset_uuid: str, energy_measurement_kWh: dict[str, float]) -> ClientCommandBuffer:
        names = {"energy_measurement": "energy_measurement_kWh"}
        return self._add(asset_uuid, checked(p.SetEnergyMeasurement, names, energy_measurement=energy_measurement_kWh))

    # Removed commands -------------------------------------------------------------------------

    def update_offer(self, *args: Any, **kwargs: Any) -> None:
        logger.warning("update_offer is deprecated and does nothing: use offer_energy with replace_existing=True.")

    def update_bid(self, *args: Any, **kwargs: Any) -> None:
        logger.warning("update_bid is deprecated and does nothing: use bid_energy with replace_existing=True.")


def _total_price(energy: Any, rate: Any) -> float:
    """``rate * energy``, once both are numbers (the order's own checks follow)."""
    return validation.non_negative(rate, "rate") * validation.positive_energy(energy)
