"""Orders resting in a market and their wire form (REDIS.md 6.5)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from gsy_e_sdk.wire.times import format_order_time

if TYPE_CHECKING:
    from gsy_local_exchange.assets import Asset

OFFER = "offer"
BID = "bid"


@dataclass(slots=True)
class Order:
    id: str
    side: str  # OFFER or BID
    asset: Asset
    energy: float
    original_rate: float  # ct/kWh as the asset entered it
    own_market_fee: float  # fee of the asset's market when placed (ct/kWh, or a fraction)
    fee_type: int
    creation_time: datetime
    time_slot: datetime
    creation_tick: int
    sequence: int

    @property
    def original_price(self) -> float:
        return self.original_rate * self.energy

    @property
    def price(self) -> float:
        """Total price in the asset's own market: offers include that market's fee."""
        if self.side == BID:
            return self.original_price
        if self.fee_type == 2:
            return self.original_price * (1 + self.own_market_fee)
        return self.original_price + self.own_market_fee * self.energy

    def split(self, energy: float, new_sequence: int) -> Order:
        """The unmatched rest of a partial match: a new order with a new id, same rate and owner."""
        return Order(
            str(uuid.uuid4()),
            self.side,
            self.asset,
            self.energy - energy,
            self.original_rate,
            self.own_market_fee,
            self.fee_type,
            self.creation_time,
            self.time_slot,
            self.creation_tick,
            new_sequence,
        )

    def to_wire(self, original_price: float | None = None) -> dict:
        """The serialized order as it appears (JSON-encoded) inside offer/bid responses."""
        price = round(self.price, 8)
        trader = {
            "name": self.asset.name,
            "origin": self.asset.name,
            "origin_uuid": self.asset.uuid,
            "uuid": self.asset.uuid,
        }
        return {
            "type": "Offer" if self.side == OFFER else "Bid",
            "id": self.id,
            "energy": self.energy,
            "energy_rate": round(price / self.energy, 8) if self.energy else 0.0,
            "price": price,
            "original_price": self.original_price if original_price is None else original_price,
            "creation_time": format_order_time(self.creation_time),
            "time_slot": format_order_time(self.time_slot),
            "seller" if self.side == OFFER else "buyer": trader,
        }

    def to_wire_json(self, original_price: float | None = None) -> str:
        return json.dumps(self.to_wire(original_price))

    def listing(self) -> dict:
        """The short form used by ``list_offers`` / ``list_bids``."""
        return {"id": self.id, "price": round(self.price, 8), "energy": self.energy}
