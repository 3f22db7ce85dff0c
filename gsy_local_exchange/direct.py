"""Legacy direct per-asset mode (REDIS.md 9): commands on ``<asset>/<command>`` channels.

Served for registered clients of assets no aggregator controls. Requests are validated at once
(malformed ones are answered immediately), queued, and executed FIFO at the next tick by the
same executor as batch commands; the response goes to ``<asset>/response/<command>`` (forecast
channels answer on the request channel itself, as the reference does).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.events import (
    NONE_TEXT,
    DeviceFinishEvent,
    DeviceMarketEvent,
    DeviceTickEvent,
    DeviceTradeEvent,
    encode_event,
)
from gsy_e_sdk.wire.times import format_completion, format_slot, format_trade_time
from gsy_local_exchange.assets import Asset
from gsy_local_exchange.commands import CommandExecutor
from gsy_local_exchange.engine import GridEngine
from gsy_local_exchange.grid import MarketArea
from gsy_local_exchange.outgoing import Outgoing
from gsy_local_exchange.participants import NOT_REGISTERED
from gsy_local_exchange.trading import TradeRecord

_ORDER_PARAMETERS = "{'price', 'energy'}"
_ORDER_OPTIONAL = "{'replace_existing', 'time_slot'}"
MAX_QUEUED_REQUESTS = 10_000  # waiting for the next tick, over all assets


@dataclass
class _Request:
    prefix: str
    area: Asset | MarketArea
    command: str
    payload: dict


class DirectMode:
    def __init__(self, engine: GridEngine, executor: CommandExecutor, prefixes: dict[str, Any]) -> None:
        self.engine = engine
        self.executor = executor
        self.prefixes = prefixes
        self._queue: deque[_Request] = deque()

    def channels(self) -> list[str]:
        names: list[str] = []
        for prefix, area in self.prefixes.items():
            commands = (
                channels.MARKET_DIRECT_COMMANDS
                if isinstance(area, MarketArea)
                else channels.ASSET_DIRECT_COMMANDS + channels.SELF_ANSWERED_COMMANDS
            )
            names.extend(channels.area_command(prefix, command) for command in commands)
        return names

    def receive(self, prefix: str, area, command: str, payload: dict, registered: bool) -> list[Outgoing]:
        """Validate a request; returns an immediate answer, or queues it for the next tick."""
        if command in channels.SELF_ANSWERED_COMMANDS and "command" in payload:
            return []  # our own response on the shared channel
        response_channel = channels.area_command_response(prefix, command)
        transaction_id = payload.get("transaction_id")
        if command not in channels.SELF_ANSWERED_COMMANDS and not registered:
            # The reference omits the transaction id here; echoing it lets clients correlate the error.
            not_registered = {"status": "error", "error_message": NOT_REGISTERED, "transaction_id": transaction_id}
            return [(response_channel, json.dumps(not_registered))]
        problem = self._immediate_error(area, command, payload)
        if problem is None and len(self._queue) >= MAX_QUEUED_REQUESTS:
            problem = {
                "command": command,
                "status": "error",
                "error_message": f"Exchange busy: {MAX_QUEUED_REQUESTS} requests already wait for the next "
                "tick; send it again",
            }
        if problem is not None:
            return [(response_channel, json.dumps({**problem, "transaction_id": transaction_id}))]
        self._queue.append(_Request(prefix, area, command, payload))
        return []

    def _immediate_error(self, area, command: str, payload: dict) -> dict | None:
        if command in ("offer", "bid"):
            extra = set(payload) - {
                "energy",
                "price",
                "replace_existing",
                "time_slot",
                "transaction_id",
                "attributes",
                "requirements",
            }
            if {"energy", "price"} - set(payload) or extra:
                if isinstance(area, Asset) and area.kind in ("Storage", "SmartMeter"):
                    text = (
                        f"Incorrect {command} request. Available parameters: ('price', 'energy', 'replace_existing')."
                    )
                    return {"command": command, "error": text}
                return {
                    "command": command,
                    "error": [
                        f"Incorrect {command} request. ",
                        f"Required parameters: {_ORDER_PARAMETERS}Available parameters: {_ORDER_OPTIONAL}.",
                    ],
                }
        if command in ("delete_offer", "delete_bid") and isinstance(area, Asset):
            side = command.split("_")[1]
            order_id = payload.get(side, payload.get(f"{side}_id"))
            book = area.offers if side == "offer" else area.bids
            if order_id is not None and (not isinstance(order_id, str) or order_id not in book):
                if side == "offer":
                    return {
                        "command": "offer_delete",
                        "error": "Incorrect delete offer request. Available parameters: (offer).",
                    }
                return {
                    "command": "bid_delete",
                    "error": "Incorrect delete bid request. Available parameters: "
                    f"(bid).Exception: bid {order_id} does not exist",
                }
        if command in channels.SELF_ANSWERED_COMMANDS:
            key = command.replace("set_", "")
            if set(payload) - {key, "transaction_id"} or key not in payload:
                return {"command": command, "error": f"Incorrect {command} request. Available parameters: ({key})."}
        return None

    def execute_queued(self, placed: list[tuple[str, str, str]]) -> list[Outgoing]:
        """Run every queued request in arrival order (called during the tick); orders placed go to ``placed``."""
        outgoing = []
        while self._queue:
            request = self._queue.popleft()
            command = dict(request.payload)
            command["type"] = request.command
            transaction_id = command.pop("transaction_id", None)
            response = self.executor.execute(request.area, command, transaction_id)
            response.setdefault("transaction_id", transaction_id)
            if response.get("status") == "ready" and request.command in ("offer", "bid"):
                placed.append(
                    (request.area.name, request.command, transaction_id if isinstance(transaction_id, str) else "")
                )
            outgoing.append((channels.area_command_response(request.prefix, request.command), json.dumps(response)))
        return outgoing

    # ------------------------------------------------------------------ events
    def events(
        self,
        tick: int,
        slot_started: bool,
        event_tick: bool,
        trades: list[TradeRecord],
        finishing: bool,
        direct_assets: list[Asset],
        direct_markets: list[MarketArea],
    ) -> list[Outgoing]:
        """The events of tick ``tick`` for the assets and markets in direct mode (REDIS.md 9)."""
        engine = self.engine
        clock = engine.clock
        slot = format_slot(engine.slot_start)
        outgoing: list[Outgoing] = []
        for asset in direct_assets:
            prefix = asset.name
            if slot_started:
                last_stats = asset.market.last_stats
                market = DeviceMarketEvent(
                    name=asset.market.name,
                    id=asset.market.uuid,
                    start_time=slot,
                    duration_min=int(clock.slot_length.total_seconds() // 60),
                    time_slots=[slot],
                    type_name="Spot Market",
                    device_info=asset.info(),
                    area_uuid=asset.uuid,
                    device_bill=asset.bill_info(),
                    last_market_maker_rate=engine.market_maker_rate,
                    last_market_stats=last_stats.summary() if last_stats else {},
                )
                outgoing.append((channels.area_event(prefix, "market"), encode_event(market)))
            if event_tick:
                tick_event = DeviceTickEvent(
                    slot_completion=format_completion(clock.completion_percent(tick)),
                    market_slot=slot,
                    area_uuid=asset.uuid,
                    device_info=asset.info(),
                )
                outgoing.append((channels.area_event(prefix, "tick"), encode_event(tick_event)))
        direct = {asset.uuid for asset in direct_assets}
        for trade in trades:
            for asset, selling in ((trade.seller, True), (trade.buyer, False)):
                if asset.uuid in direct:
                    outgoing.append(
                        (channels.area_event(asset.name, "trade"), encode_event(_trade(trade, asset, selling)))
                    )
        if finishing:
            outgoing.extend(
                (channels.area_event(asset.name, "finish"), encode_event(DeviceFinishEvent(area_uuid=asset.uuid)))
                for asset in direct_assets
            )
            outgoing.extend(
                (channels.area_event(market.slug, "finish"), encode_event(DeviceFinishEvent()))
                for market in direct_markets
            )
        return outgoing


def _trade(trade: TradeRecord, asset: Asset, selling: bool) -> DeviceTradeEvent:
    """``asset``'s side of ``trade``: it names only its own order and the residual of it."""
    fee = trade.seller_fee if selling else trade.buyer_fee
    rate = trade.settlement.seller_revenue_rate + fee if selling else trade.settlement.buyer_rate
    residual = trade.residual_offer_id if selling else trade.residual_bid_id
    order = {"offer_id": trade.offer_id} if selling else {"bid_id": trade.bid_id}
    return DeviceTradeEvent(
        device_info=asset.info(),
        trade_id=trade.trade_id,
        time=format_trade_time(trade.time),
        trade_price=round(rate * trade.energy, 8),
        traded_energy=trade.energy,
        fee_price=round(fee * trade.energy, 8),
        area_uuid=asset.uuid,
        seller=trade.seller.name if selling else "anonymous",
        buyer=trade.buyer.name if not selling else "anonymous",
        residual_id=residual or NONE_TEXT,
        event_type="sell" if selling else "buy",
        **order,
    )
