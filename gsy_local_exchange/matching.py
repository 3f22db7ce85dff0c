"""Two-sided matching of one market's book (EXCHANGE.md 4.3, 4.4). Pure functions.

Orders arrive as :class:`Candidate` with their rate *in this market* (fees applied) and a
``trader``: the branch of the market they come from. Two orders of the same branch never match
here (they already met in a lower market), exactly as gsy-e's market agents skip pairs of the
same trader.
"""

from __future__ import annotations

from dataclasses import dataclass

RATE_TOLERANCE = 0.00002
ENERGY_EPSILON = 1e-9


@dataclass(slots=True)
class Candidate:
    order_id: str
    trader: str
    rate: float
    energy: float
    sequence: int = 0  # arrival order, breaks rate ties (earlier first)


@dataclass(frozen=True, slots=True)
class Match:
    bid_id: str
    offer_id: str
    energy: float
    rate: float  # trade rate in this market


def _sorted_books(bids: list[Candidate], offers: list[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
    bids = sorted(bids, key=lambda c: (-c.rate, c.sequence))
    offers = sorted(offers, key=lambda c: (c.rate, c.sequence))
    return bids, offers


def _allocate(bids: list[Candidate], offers: list[Candidate], limit_rate, energy_cap: float | None) -> list[Match]:
    """Greedy merit-order allocation: highest bids with cheapest offers while they cross.

    ``limit_rate(bid, offer)`` returns the trade rate of a crossing pair or None when the pair
    does not cross. Energies are consumed on copies so the callers' candidates stay intact.
    """
    remaining_offer = [offer.energy for offer in offers]
    matches: list[Match] = []
    first_open = 0
    budget = energy_cap
    for bid in bids:
        bid_left = bid.energy
        index = first_open
        while bid_left > ENERGY_EPSILON and index < len(offers):
            if budget is not None and budget <= ENERGY_EPSILON:
                return matches
            offer = offers[index]
            if remaining_offer[index] <= ENERGY_EPSILON:
                if index == first_open:
                    first_open += 1
                index += 1
                continue
            rate = limit_rate(bid, offer)
            if rate is None:
                if offer.rate > bid.rate + RATE_TOLERANCE:
                    break  # offers are sorted: no cheaper one follows
                index += 1  # same trader: try the next offer
                continue
            energy = min(bid_left, remaining_offer[index])
            if budget is not None:
                energy = min(energy, budget)
                budget -= energy
            matches.append(Match(bid.order_id, offer.order_id, energy, rate))
            bid_left -= energy
            remaining_offer[index] -= energy
    return matches


def pay_as_bid(bids: list[Candidate], offers: list[Candidate]) -> list[Match]:
    """Every crossing pair trades at the bid's rate in this market (the buyer pays its bid)."""
    bids, offers = _sorted_books(bids, offers)

    def crossing(bid: Candidate, offer: Candidate) -> float | None:
        if bid.trader == offer.trader or offer.rate > bid.rate + RATE_TOLERANCE:
            return None
        return bid.rate

    return _allocate(bids, offers, crossing, None)


def clearing_point(bids: list[Candidate], offers: list[Candidate]) -> tuple[float, float] | None:
    """(clearing rate, clearing energy) of the demand and supply curves, or None if they never cross.

    The clearing rate is the lowest bid rate at which the offers priced at or below it cover
    the bids priced at or above it; when supply never covers demand, the highest bid rate with
    any supply below it clears all the supply available there.
    """
    bids, offers = _sorted_books(bids, offers)
    if not bids or not offers or offers[0].rate > bids[0].rate + RATE_TOLERANCE:
        return None
    best: tuple[float, float] | None = None
    demand = 0.0
    supply = 0.0
    offer_index = 0
    # Walk bid rates from high to low; supply at a rate is all offers priced at or below it.
    supply_at: list[tuple[float, float, float]] = []
    for position, bid in enumerate(bids):
        demand += bid.energy
        if position + 1 < len(bids) and bids[position + 1].rate == bid.rate:
            continue
        supply_at.append((bid.rate, demand, 0.0))
    # Supply for each distinct bid rate, walking rates from low to high.
    totals: list[tuple[float, float, float]] = []
    for rate, cumulative_demand, _ in reversed(supply_at):
        while offer_index < len(offers) and offers[offer_index].rate <= rate + RATE_TOLERANCE:
            supply += offers[offer_index].energy
            offer_index += 1
        totals.append((rate, cumulative_demand, supply))
    for rate, cumulative_demand, cumulative_supply in totals:  # lowest rate first
        if cumulative_supply <= ENERGY_EPSILON:
            continue
        if cumulative_supply + ENERGY_EPSILON >= cumulative_demand:
            return rate, cumulative_demand
        best = (rate, cumulative_supply)
    return best


def pay_as_clear(bids: list[Candidate], offers: list[Candidate]) -> list[Match]:
    """All pairs up to the clearing energy trade at the single clearing rate."""
    point = clearing_point(bids, offers)
    if point is None:
        return []
    clearing_rate, clearing_energy = point
    bids, offers = _sorted_books(bids, offers)
    eligible_bids = [bid for bid in bids if bid.rate + RATE_TOLERANCE >= clearing_rate]
    eligible_offers = [offer for offer in offers if offer.rate <= clearing_rate + RATE_TOLERANCE]

    def crossing(bid: Candidate, offer: Candidate) -> float | None:
        if bid.trader == offer.trader or offer.rate > bid.rate + RATE_TOLERANCE:
            return None
        return clearing_rate

    return _allocate(eligible_bids, eligible_offers, crossing, clearing_energy)
