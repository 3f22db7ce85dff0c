"""Execution of one aggregator command on one area, with REDIS.md 6.5 responses.

Every failure returns the error response of the protocol for that command and changes nothing;
it never raises, so one bad command cannot stop a batch or the exchange.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from gsy_e_sdk.wire import command_params as p
from gsy_e_sdk.wire.command_params import MAX_CONSTANT_FEE, MAX_FEE_PERCENT
from gsy_e_sdk.wire.times import parse_slot
from gsy_local_exchange import fees as fee_model
from gsy_local_exchange import market_stats
from gsy_local_exchange.assets import ENERGY_TOLERANCE, PV, Asset, Load
from gsy_local_exchange.engine import GridEngine
from gsy_local_exchange.grid import MarketArea
from gsy_local_exchange.orders import BID, OFFER
from gsy_local_exchange.rejections import rejection_reason

MARKET_TYPE = "Spot Market"
KIND_ONLY_ORDER_KEYS = ("attributes", "requirements")  # tolerated for storage and smart meter only
TOLERATING_KINDS = ("Storage", "SmartMeter")
Params = TypeVar("Params", bound=p.CommandParams)

_UNSUPPORTED_TEXT = {
    "offer": "Offer command not supported on device {uuid}",
    "bid": "Bid command not supported on device {uuid}",
    "delete_offer": "Delete offer command not supported on device {uuid}",
    "delete_bid": "Delete bid command not supported on device {uuid}",
    "list_offers": "List offers command not supported on device {uuid}",
    "list_bids": "List bids command not supported on device {uuid}",
}


def _error(command: str, area_uuid: str, transaction_id: str | None, **fields: Any) -> dict:
    response = {"command": command, "status": "error", "area_uuid": area_uuid, **fields}
    if transaction_id is not None:
        response["transaction_id"] = transaction_id
    return response


def not_supported(command_type: Any, area_uuid: str, transaction_id: str | None) -> dict:
    if not isinstance(command_type, str) or not command_type:
        response = {"status": "error", "area_uuid": area_uuid, "message": "Invalid command type"}
        if transaction_id is not None:
            response["transaction_id"] = transaction_id
        return response
    return _error(command_type, area_uuid, transaction_id, message=f"Command type not supported for device {area_uuid}")


def _args_repr(command: dict) -> str:
    """Arguments as the reference prints them: a Python dict repr without ``replace_existing``."""
    return repr({key: value for key, value in command.items() if key != "replace_existing"})


def _arguments(command: dict) -> dict:
    return {key: value for key, value in command.items() if key not in ("type", "transaction_id")}


def parse(model: type[Params], command: dict) -> Params | str:
    """The command's arguments as ``model`` (the protocol's one model of them), or why not."""
    try:
        return model.model_validate(_arguments(command))
    except ValidationError as exc:
        return p.describe(exc)


def _with_reason(text: str, reason: str) -> str:
    """``text`` (ending in ".") with ``reason`` appended the way gsy-e appends its reasons."""
    return f"{text[:-1]}:{reason}" if reason else text


class CommandExecutor:
    """Runs commands against the engine at the end of a tick (REDIS.md 6.3).

    ``strict_reference``: refuse orders whose ``time_slot`` string names the current spot slot.
    The reference exchange accepts them and then dies when such a PV offer trades (REDIS.md
    11.1), so a client tested here in strict mode cannot crash it. Either way they are counted.
    """

    def __init__(self, engine: GridEngine, strict_reference: bool = False) -> None:
        self.engine = engine
        self.strict_reference = strict_reference
        self.spot_time_slot_orders = 0  # orders naming the current slot instead of "time_slot": null
        self.rejections: Counter[str] = Counter()  # commands answered with an error, by reason
        self._asset_handlers: dict[str, Callable[[Asset, dict, str | None], dict]] = {
            "offer": self._offer,
            "bid": self._bid,
            "delete_offer": self._delete_offer,
            "delete_bid": self._delete_bid,
            "list_offers": self._list_offers,
            "list_bids": self._list_bids,
            "device_info": self._device_info,
            "set_energy_forecast": self._forecast,
            "set_energy_measurement": self._measurement,
        }
        self._market_handlers: dict[str, Callable[[MarketArea, dict, str | None], dict]] = {
            "grid_fees": self._grid_fees,
            "dso_market_stats": self._dso_market_stats,
        }

    def execute(self, area: Asset | MarketArea, command: Any, transaction_id: str | None) -> dict:
        """The command's answer; an error answer is counted by its reason."""
        response = self._execute(area, command, transaction_id)
        if response.get("status") == "error":
            self.rejections[rejection_reason(response)] += 1
        return response

    def _execute(self, area: Asset | MarketArea, command: Any, transaction_id: str | None) -> dict:
        if not isinstance(command, dict):
            return not_supported(None, area.uuid, transaction_id)
        command = dict(command)
        if transaction_id is not None:
            command["transaction_id"] = transaction_id
        command_type = command.get("type")
        if isinstance(command_type, str):
            if isinstance(area, MarketArea):
                if (market_handler := self._market_handlers.get(command_type)) is not None:
                    return market_handler(area, command, transaction_id)
            elif (asset_handler := self._asset_handlers.get(command_type)) is not None:
                return asset_handler(area, command, transaction_id)
        return not_supported(command_type, area.uuid, transaction_id)

    # ------------------------------------------------------------------ orders
    def _offer(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._place(asset, command, transaction_id, OFFER)

    def _bid(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._place(asset, command, transaction_id, BID)

    def _place(self, asset: Asset, command: dict, transaction_id: str | None, side: str) -> dict:
        engine = self.engine
        label = "offer" if side == OFFER else "bid"
        # gsy-e labels a PV bid error "offer" (REDIS.md 6.5).
        error_command = "offer" if side == BID and isinstance(asset, PV) else label

        def failure(reason: str = "") -> dict:
            text = f"Error when handling {label} create on area {asset.name} with arguments {_args_repr(command)}."
            return _error(
                error_command,
                asset.uuid,
                transaction_id,
                market_type=MARKET_TYPE,
                error_message=_with_reason(text, reason),
            )

        if side == OFFER and not asset.can_offer:
            if isinstance(asset, Load):
                return failure("Offer not supported for Loads on spot markets.")
            return _error(
                "offer", asset.uuid, transaction_id, message=_UNSUPPORTED_TEXT["offer"].format(uuid=asset.uuid)
            )
        if side == BID and not asset.can_bid:
            if isinstance(asset, PV):
                return failure("Bid not supported for PV on spot markets.")
            return _error("bid", asset.uuid, transaction_id, message=_UNSUPPORTED_TEXT["bid"].format(uuid=asset.uuid))
        refused = [key for key in KIND_ONLY_ORDER_KEYS if key in command] if asset.kind not in TOLERATING_KINDS else []
        if refused:
            available = "price, energy, replace_existing, time_slot"
            return failure(f"Unknown arguments {refused} for a {asset.kind}; available: {available}.")
        order = parse(p.Offer, command) if side == OFFER else parse(p.Bid, command)
        if isinstance(order, str):
            return failure(order)
        slot_error = self._check_time_slot(order.time_slot)
        if slot_error:
            return failure(slot_error)
        if order.time_slot is not None and self.strict_reference:
            self.spot_time_slot_orders += 1
            return failure(
                f"time_slot {order.time_slot!r} names the current spot slot: the reference exchange crashes when "
                'such an order trades (KeyError on the slot string, REDIS.md 11.1); send "time_slot": null '
                "for the spot market."
            )
        energy, price = order.energy, order.price
        if energy < ENERGY_TOLERANCE or (side == BID and energy <= ENERGY_TOLERANCE):
            return failure()
        own = asset.offers if side == OFFER else asset.bids
        open_energy = sum(existing.energy for existing in own.values())
        limit = asset.sellable() if side == OFFER else asset.buyable()
        needed = energy + (0.0 if order.replace_existing else open_energy)
        tolerance = ENERGY_TOLERANCE if side == OFFER else 1e-9
        if needed > limit + tolerance:
            return failure()
        if order.replace_existing:
            engine.remove_orders(asset, side)
        placed = engine.place_order(asset, side, float(energy), price / energy, engine.market_time(engine.tick + 1))
        if order.time_slot is not None:
            self.spot_time_slot_orders += 1  # accepted here, a crash waiting to happen on the reference
        return {
            "command": label,
            "status": "ready",
            label: placed.to_wire_json(original_price=price),
            "transaction_id": transaction_id,
            "area_uuid": asset.uuid,
            "market_type": MARKET_TYPE,
            "message": "",
        }

    def _check_time_slot(self, time_slot: str | None) -> str:
        """Why a (parsable) ``time_slot`` cannot be served: only the spot market is open here."""
        if time_slot is None or parse_slot(time_slot) == self.engine.slot_start:
            return ""
        return f"Timeslot {time_slot} is not currently in the spot, future or settlement markets."

    def _delete(self, asset: Asset, command: dict, transaction_id: str | None, side: str) -> dict:
        name = "offer" if side == OFFER else "bid"
        response_command = f"{name}_delete"
        if not (asset.can_offer if side == OFFER else asset.can_bid):
            return _error(
                f"delete_{name}",
                asset.uuid,
                transaction_id,
                message=_UNSUPPORTED_TEXT[f"delete_{name}"].format(uuid=asset.uuid),
            )
        request = parse(p.DeleteOffer, command) if side == OFFER else parse(p.DeleteBid, command)
        book = asset.offers if side == OFFER else asset.bids

        def refused(reason: str) -> dict:
            text = f"Error when handling {name} delete on area {asset.name} with arguments {_args_repr(command)}."
            return _error(response_command, asset.uuid, transaction_id, error_message=f"{text} {reason}")

        if isinstance(request, str):
            return refused(request)
        if slot_error := self._check_time_slot(request.time_slot):
            return refused(slot_error)
        if request.order_id is not None and request.order_id not in book:
            return refused("Bid does not exist on the current market." if side == BID else "Offer does not exist.")
        if request.order_id is None:
            deleted = self.engine.remove_orders(asset, side)
        else:
            self.engine.remove_order(book[request.order_id])
            deleted = [request.order_id]
        return {
            "command": response_command,
            "status": "ready",
            "area_uuid": asset.uuid,
            f"deleted_{name}s": deleted,
            "transaction_id": transaction_id,
        }

    def _delete_offer(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._delete(asset, command, transaction_id, OFFER)

    def _delete_bid(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._delete(asset, command, transaction_id, BID)

    def _list(self, asset: Asset, command: dict, transaction_id: str | None, side: str) -> dict:
        name = "offer" if side == OFFER else "bid"
        if not (asset.can_offer if side == OFFER else asset.can_bid):
            return _error(
                f"list_{name}s",
                asset.uuid,
                transaction_id,
                message=_UNSUPPORTED_TEXT[f"list_{name}s"].format(uuid=asset.uuid),
            )
        request = parse(p.ListOffers, command) if side == OFFER else parse(p.ListBids, command)
        reason = request if isinstance(request, str) else self._check_time_slot(request.time_slot)
        if reason:
            return _error(
                f"list_{name}s",
                asset.uuid,
                transaction_id,
                error_message=_with_reason(f"Error when listing {name}s on area {asset.name}.", reason),
            )
        book = asset.offers if side == OFFER else asset.bids
        return {
            "command": f"list_{name}s",
            "status": "ready",
            f"{name}_list": [order.listing() for order in book.values()],
            "area_uuid": asset.uuid,
            "transaction_id": transaction_id,
        }

    def _list_offers(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._list(asset, command, transaction_id, OFFER)

    def _list_bids(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._list(asset, command, transaction_id, BID)

    def _device_info(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        request = parse(p.DeviceInfo, command)
        if isinstance(request, str):
            return _error(
                "device_info",
                asset.uuid,
                transaction_id,
                error_message=_with_reason(f"Error when handling device info on area {asset.name}.", request),
            )
        return {
            "command": "device_info",
            "status": "ready",
            "device_info": asset.info(),
            "transaction_id": transaction_id,
            "area_uuid": asset.uuid,
        }

    # ------------------------------------------------------------------ forecasts
    def _energy_series(
        self,
        asset: Asset,
        command: dict,
        transaction_id: str | None,
        model: type[p.SetEnergyForecast] | type[p.SetEnergyMeasurement],
    ) -> dict:
        name = model.command
        if not isinstance(asset, (PV, Load)) or not asset.forecast_capable:  # only they take forecasts
            return not_supported(name, asset.uuid, transaction_id)
        request = parse(model, command)
        if isinstance(request, str):
            text = f"Error when handling {name} on area {asset.name} with arguments {_args_repr(command)}."
            return _error(name, asset.uuid, transaction_id, error_message=_with_reason(text, request))
        if isinstance(request, p.SetEnergyForecast):
            asset.buffer_forecast(_by_slot(request.energy_forecast))
        else:
            asset.buffer_measurement(_by_slot(request.energy_measurement))
        return {
            "command": name,
            "status": "ready",
            name: command,
            "area_uuid": asset.uuid,
            "transaction_id": transaction_id,
        }

    def _forecast(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._energy_series(asset, command, transaction_id, p.SetEnergyForecast)

    def _measurement(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._energy_series(asset, command, transaction_id, p.SetEnergyMeasurement)

    # ------------------------------------------------------------------ markets
    def _dso_market_stats(self, market: MarketArea, command: dict, transaction_id: str | None) -> dict:
        request = parse(p.DsoMarketStats, command)
        if isinstance(request, str):
            return _error(
                "dso_market_stats",
                market.uuid,
                transaction_id,
                error_message=f"Error when handling dso_market_stats on area {market.name}:{request}",
            )
        return {
            "status": "ready",
            "name": market.name,
            "area_uuid": market.uuid,
            "command": "dso_market_stats",
            "market_stats": market_stats.dso_market_stats(market),
        }

    def _grid_fees(self, market: MarketArea, command: dict, transaction_id: str | None) -> dict:
        def refused(message: str) -> dict:
            return {"area_uuid": market.uuid, "command": "grid_fees", "status": "error", "error_message": message}

        try:
            request = p.GridFees.model_validate(_arguments(command))
        except ValidationError as exc:
            # A fee out of range in the words of gsy-e's validation (REDIS.md 6.5).
            bad = exc.errors()[0]["loc"]
            if bad == ("fee_const",):
                return refused(f"grid_fee_constant should be in between 0 & {MAX_CONSTANT_FEE}.")
            if bad == ("fee_percent",):
                return refused(f"grid_fee_percentage should be in between 0 & {MAX_FEE_PERCENT}.")
            return refused(f"grid_fees: {p.describe(exc)}")
        if (request.fee_const is not None) != (self.engine.fee_type == fee_model.CONSTANT):
            return refused("GridFee parameter conflicting with GlobalConfigFeeType")
        value = request.fee_const if request.fee_const is not None else request.fee_percent
        market.fee_configured = value
        return {
            "area_uuid": market.uuid,
            "command": "grid_fees",
            "status": "ready",
            "market_fee_const": str(request.fee_const),
            "market_fee_percent": str(request.fee_percent),
        }


def _by_slot(series: dict[str, float]) -> dict[datetime, float]:
    """A validated ``{slot: kWh}`` keyed by slot start, as the assets buffer it."""
    return {parse_slot(slot): float(energy) for slot, energy in series.items()}
