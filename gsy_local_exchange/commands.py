"""Execution of one aggregator command on one area, with REDIS.md 6.5 responses.

Every failure returns the error response of the protocol for that command and changes nothing;
it never raises, so one bad command cannot stop a batch or the exchange.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gsy_e_sdk.wire.times import parse_slot
from gsy_local_exchange import fees as fee_model
from gsy_local_exchange.assets import ENERGY_TOLERANCE, PV, Asset, Load, parse_energy_series
from gsy_local_exchange.engine import GridEngine, MarketArea
from gsy_local_exchange.orders import BID, OFFER

MARKET_TYPE = "Spot Market"
MAX_CONSTANT_FEE = 10_000
ORDER_KEYS = {"type", "energy", "price", "replace_existing", "time_slot", "transaction_id"}
TOLERATED_ORDER_KEYS = {"attributes", "requirements"}  # storage and smart meter only

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


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the float range
        return False


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
            if reason:
                text = text[:-1] + ":" + reason
            return _error(error_command, asset.uuid, transaction_id, market_type=MARKET_TYPE, error_message=text)

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
        allowed = ORDER_KEYS | (TOLERATED_ORDER_KEYS if asset.kind in ("Storage", "SmartMeter") else set())
        unknown = sorted(set(command) - allowed)
        if unknown:
            return failure(f"Unknown arguments {unknown}; available: price, energy, replace_existing, time_slot.")
        missing = [key for key in ("energy", "price") if key not in command]
        if missing:
            return failure(f"Missing required arguments {missing}.")
        energy, price = command["energy"], command["price"]
        replace = command.get("replace_existing", True)
        if not _is_number(energy) or not _is_number(price) or not isinstance(replace, bool):
            return failure("energy and price must be numbers, replace_existing a boolean.")
        time_slot = command.get("time_slot")
        slot_error = self._check_time_slot(time_slot)
        if slot_error:
            return failure(slot_error)
        if time_slot is not None and self.strict_reference:
            self.spot_time_slot_orders += 1
            return failure(
                f"time_slot {time_slot!r} names the current spot slot: the reference exchange crashes when "
                'such an order trades (KeyError on the slot string, REDIS.md 11.1); send "time_slot": null '
                "for the spot market."
            )
        if price < 0 or energy < ENERGY_TOLERANCE or (side == BID and energy <= ENERGY_TOLERANCE):
            return failure()
        if not math.isfinite(price / energy):
            return failure("price / energy is not a finite energy rate.")
        own = asset.offers if side == OFFER else asset.bids
        open_energy = sum(order.energy for order in own.values())
        limit = asset.sellable() if side == OFFER else asset.buyable()
        needed = energy + (0.0 if replace else open_energy)
        tolerance = ENERGY_TOLERANCE if side == OFFER else 1e-9
        if needed > limit + tolerance:
            return failure()
        if replace:
            engine.remove_orders(asset, side)
        order = engine.place_order(asset, side, float(energy), price / energy, engine.market_time(engine.tick + 1))
        if time_slot is not None:
            self.spot_time_slot_orders += 1  # accepted here, a crash waiting to happen on the reference
        return {
            "command": label,
            "status": "ready",
            label: order.to_wire_json(original_price=price),
            "transaction_id": transaction_id,
            "area_uuid": asset.uuid,
            "market_type": MARKET_TYPE,
            "message": "",
        }

    def _check_time_slot(self, time_slot: Any) -> str:
        if time_slot is None:
            return ""
        try:
            moment = parse_slot(time_slot)
        except ValueError:
            return f"Timeslot {time_slot} is not currently in the spot, future or settlement markets."
        if moment != self.engine.slot_start:
            return f"Timeslot {time_slot} is not currently in the spot, future or settlement markets."
        return ""

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
        order_id = command.get(name)
        if order_id is None:
            order_id = command.get(f"{name}_id")
        slot_error = self._check_time_slot(command.get("time_slot"))
        book = asset.offers if side == OFFER else asset.bids
        if slot_error or (order_id is not None and (not isinstance(order_id, str) or order_id not in book)):
            text = f"Error when handling {name} delete on area {asset.name} with arguments {_args_repr(command)}."
            if side == BID:
                text += " Bid does not exist on the current market."
            return _error(response_command, asset.uuid, transaction_id, error_message=text)
        if order_id is None:
            deleted = self.engine.remove_orders(asset, side)
        else:
            self.engine.remove_order(book[order_id])
            deleted = [order_id]
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
        if self._check_time_slot(command.get("time_slot")):
            return _error(
                f"list_{name}s",
                asset.uuid,
                transaction_id,
                error_message=f"Error when listing {name}s on area {asset.name}.",
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
        return {
            "command": "device_info",
            "status": "ready",
            "device_info": asset.info(),
            "transaction_id": transaction_id,
            "area_uuid": asset.uuid,
        }

    # ------------------------------------------------------------------ forecasts
    def _energy_series(self, asset: Asset, command: dict, transaction_id: str | None, kind: str) -> dict:
        name = f"set_energy_{kind}"
        if not isinstance(asset, (PV, Load)) or not asset.forecast_capable:  # only they take forecasts
            return not_supported(name, asset.uuid, transaction_id)
        key = f"energy_{kind}"
        extra = set(command) - {"type", key, "transaction_id"}
        try:
            if extra:
                raise ValueError(f"unknown arguments {sorted(extra)}")
            values = parse_energy_series(command.get(key))
        except (ValueError, OverflowError) as exc:  # OverflowError: an integer beyond the float range
            return _error(
                name,
                asset.uuid,
                transaction_id,
                error_message=(
                    f"Error when handling {name} on area {asset.name} with arguments {_args_repr(command)}.:{exc}"
                ),
            )
        if kind == "forecast":
            asset.buffer_forecast(values)
        else:
            asset.buffer_measurement(values)
        return {
            "command": name,
            "status": "ready",
            name: command,
            "area_uuid": asset.uuid,
            "transaction_id": transaction_id,
        }

    def _forecast(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._energy_series(asset, command, transaction_id, "forecast")

    def _measurement(self, asset: Asset, command: dict, transaction_id: str | None) -> dict:
        return self._energy_series(asset, command, transaction_id, "measurement")

    # ------------------------------------------------------------------ markets
    def _dso_market_stats(self, market: MarketArea, command: dict, transaction_id: str | None) -> dict:
        return {
            "status": "ready",
            "name": market.name,
            "area_uuid": market.uuid,
            "command": "dso_market_stats",
            "market_stats": self.engine.dso_market_stats(market),
        }

    def _grid_fees(self, market: MarketArea, command: dict, transaction_id: str | None) -> dict:
        data = command.get("data")
        if not isinstance(data, dict):
            data = {key: command[key] for key in ("fee_const", "fee_percent") if key in command}
        fee_type = self.engine.fee_type
        key = "fee_const" if "fee_const" in data else "fee_percent" if "fee_percent" in data else None
        if key is None:
            return {
                "area_uuid": market.uuid,
                "command": "grid_fees",
                "status": "error",
                "error_message": "grid_fees needs data.fee_const or data.fee_percent",
            }
        if (key == "fee_const") != (fee_type == fee_model.CONSTANT):
            return {
                "area_uuid": market.uuid,
                "command": "grid_fees",
                "status": "error",
                "error_message": "GridFee parameter conflicting with GlobalConfigFeeType",
            }
        value = data[key]
        upper = MAX_CONSTANT_FEE if key == "fee_const" else 100
        field_name = "grid_fee_constant" if key == "fee_const" else "grid_fee_percentage"
        if not _is_number(value) or not 0 <= value <= upper:
            return {
                "area_uuid": market.uuid,
                "command": "grid_fees",
                "status": "error",
                "error_message": f"{field_name} should be in between 0 & {upper}.",
            }
        market.fee_configured = value
        constant = str(value) if key == "fee_const" else "None"
        percent = str(value) if key == "fee_percent" else "None"
        return {
            "area_uuid": market.uuid,
            "command": "grid_fees",
            "status": "ready",
            "market_fee_const": constant,
            "market_fee_percent": percent,
        }
