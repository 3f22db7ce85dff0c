"""Grid fees along a trade path (EXCHANGE.md 5.2, 5.3). Pure functions.

A fee value is ct/kWh for constant fees (type 1) and a fraction for percentage fees (type 2).
"""

from __future__ import annotations

from dataclasses import dataclass

CONSTANT = 1
PERCENTAGE = 2


def offer_rate_in_market(original_rate: float, fees_entered: float, fee_type: int) -> float:
    """Rate of an offer in a market, given the fees of every market it has entered so far."""
    if fee_type == PERCENTAGE:
        return original_rate * (1 + fees_entered)
    return original_rate + fees_entered


def bid_rate_in_market(original_rate: float, fees_left: float, fee_type: int) -> float:
    """Rate of a bid in a market, given the fees of every market it has left on the way."""
    if fee_type == PERCENTAGE:
        return original_rate * (1 - fees_left)
    return original_rate - fees_left


def buyer_rate(trade_rate: float, bid_original_rate: float, bid_rate_here: float, fee_type: int) -> float:
    """What the buyer pays per kWh when its bid trades at ``trade_rate`` in a higher market."""
    if fee_type == PERCENTAGE:
        return trade_rate * bid_original_rate / bid_rate_here if bid_rate_here else bid_original_rate
    return trade_rate + (bid_original_rate - bid_rate_here)


@dataclass(frozen=True, slots=True)
class Settlement:
    """Per-kWh split of a trade along its path (markets ordered from seller to buyer)."""

    buyer_rate: float
    seller_revenue_rate: float
    market_fees: tuple[float, ...]  # fee collected by each market on the path, ct/kWh
    market_rates: tuple[float, ...]  # trade rate recorded in each market on the path


def settle(buyer_rate_value: float, path_fees: list[float], fee_type: int) -> Settlement:
    """Split what the buyer pays between the seller and every market on the path.

    Each market adds its fee once; the rate recorded in a market is the seller's revenue plus
    the fees of the markets from the seller's side up to and including that one.
    """
    if fee_type == PERCENTAGE:
        revenue = buyer_rate_value / (1 + sum(path_fees))
        fees = [revenue * fraction for fraction in path_fees]
    else:
        fees = list(path_fees)
        revenue = buyer_rate_value - sum(fees)
    rates: list[float] = []
    running = revenue
    for fee in fees:
        running += fee
        rates.append(running)
    return Settlement(buyer_rate_value, revenue, tuple(fees), tuple(rates))
