"""The open orders of the running slot.

Orders are kept once, with their asset; every market on the asset's path indexes them, so each
market holds the open orders of its subtree (EXCHANGE.md 4.2). A partial match leaves a residual
with a new id; the matched order's id points to it until the tick ends, so later matches of the
same tick still find the rest.
"""

from __future__ import annotations

import itertools

from gsy_local_exchange.assets import Asset
from gsy_local_exchange.matching import ENERGY_EPSILON
from gsy_local_exchange.orders import OFFER, Order


class OrderBook:
    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self._sequence = itertools.count()  # arrival order, the tie-break of matching
        self._aliases: dict[str, str] = {}  # matched order id -> id of its residual, this tick

    def next_sequence(self) -> int:
        return next(self._sequence)

    def add(self, order: Order) -> None:
        self.orders[order.id] = order
        book = order.asset.offers if order.side == OFFER else order.asset.bids
        book[order.id] = order
        for market in order.asset.path:
            (market.offers if order.side == OFFER else market.bids)[order.id] = order
            market.dirty = True

    def remove(self, order: Order) -> None:
        self.orders.pop(order.id, None)
        book = order.asset.offers if order.side == OFFER else order.asset.bids
        book.pop(order.id, None)
        for market in order.asset.path:
            (market.offers if order.side == OFFER else market.bids).pop(order.id, None)

    def remove_all(self, asset: Asset, side: str) -> list[str]:
        """Remove the asset's open orders of one side; returns their ids."""
        book = asset.offers if side == OFFER else asset.bids
        removed = list(book)
        for order in list(book.values()):
            self.remove(order)
        return removed

    def current(self, order_id: str) -> Order:
        """The open order an id of this tick stands for: itself, or the residual of its partial match."""
        while order_id in self._aliases:
            order_id = self._aliases[order_id]
        return self.orders[order_id]

    def consume(self, order: Order, energy: float) -> Order | None:
        """Remove the matched part; a remainder becomes a new order with a new id."""
        self.remove(order)
        if order.energy - energy <= ENERGY_EPSILON:
            return None
        residual = order.split(energy, self.next_sequence())
        order.energy = energy
        self.add(residual)
        self._aliases[order.id] = residual.id
        return residual

    def end_tick(self) -> None:
        """Forget the residual aliases of this tick's matching."""
        self._aliases.clear()

    def clear(self) -> None:
        """Drop every order (a slot ends); the assets and markets clear their own indexes."""
        self.orders.clear()
