"""The strategies' commands as the protocol's typed commands (``gsy_e_sdk.wire.command_params``).

The SDK's builder makes its users' commands with the same models, so an order a strategy asks
for travels exactly as one a user builds. Strategies stay a leaf that names no protocol module;
this is where their decisions meet the wire.
"""

from __future__ import annotations

from typing import Any

from gsy_e_sdk.wire.command_params import Bid, DeleteBid, DeleteOffer, DsoMarketStats, GridFees, Offer, Order
from workers.strategies.base import OFFER, Command, PlaceOrder, RequestMarketStats, SetGridFee, WithdrawOrders

ORDERS: dict[str, type[Order]] = {Offer.command: Offer, Bid.command: Bid}  # by side


def wire_command(command: Command) -> dict[str, Any]:
    """The command object of a batch (REDIS.md 6.2): spot orders carry ``"time_slot": null``.

    The reference exchange passes a non-null time_slot through as a string into the order, and
    dies (KeyError) when a PV offer placed that way trades (REDIS.md 11.1).
    """
    if isinstance(command, PlaceOrder):
        # Built without validation: the strategies' order_command checked these numbers.
        return ORDERS[command.side].spot(command.energy, command.price).wire()
    if isinstance(command, WithdrawOrders):
        return (DeleteOffer() if command.side == OFFER else DeleteBid()).wire()
    if isinstance(command, SetGridFee):
        return GridFees(fee_const=command.fee).wire()
    if isinstance(command, RequestMarketStats):
        return DsoMarketStats().wire()
    raise TypeError(f"not a strategy command: {command!r}")
