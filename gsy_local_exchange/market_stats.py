"""What each market records of a trade, and what it reports of its last slot (EXCHANGE.md 8)."""

from __future__ import annotations

from gsy_local_exchange import fees as fee_model
from gsy_local_exchange.grid import MarketArea


def book_trade(path: list[MarketArea], meeting: MarketArea, settlement: fee_model.Settlement, energy: float) -> None:
    """Record a trade in the stats of every market on its ``path`` and the KPIs above ``meeting``.

    Markets on the seller's side of ``meeting`` export the energy, those on the buyer's side
    import it; ``meeting`` and every market above it see it produced and consumed inside.
    """
    seller_side = True
    for market, fee, rate in zip(path, settlement.market_fees, settlement.market_rates, strict=True):
        stats = market.stats
        stats.add_trade(rate, energy)
        stats.fee_revenue += fee * energy
        amount = (rate - fee) * energy
        if market is meeting:
            stats.accumulated.sold += energy
            stats.accumulated.earned += amount
            stats.accumulated.bought += energy
            stats.accumulated.spent += amount
            market.kpi.demand += energy
            market.kpi.demand_from_inside += energy
            market.kpi.production += energy
            market.kpi.production_used_inside += energy
            seller_side = False
        elif seller_side:
            stats.accumulated.sold += energy
            stats.accumulated.earned += amount
            stats.external.bought += energy
            stats.external.spent += amount
            stats.exported += energy
            market.kpi.production += energy
        else:
            stats.accumulated.bought += energy
            stats.accumulated.spent += amount
            stats.external.sold += energy
            stats.external.earned += amount
            stats.imported += energy
            market.kpi.demand += energy
    ancestor = meeting.parent
    while ancestor is not None:
        ancestor.kpi.demand += energy
        ancestor.kpi.demand_from_inside += energy
        ancestor.kpi.production += energy
        ancestor.kpi.production_used_inside += energy
        ancestor = ancestor.parent


def dso_market_stats(market: MarketArea) -> dict:
    """``market_stats`` of the last finished slot (``{}`` during the first slot)."""
    last = market.last_stats
    if last is None:
        return {}
    summary = last.summary()
    summary.update(
        {
            "market_bill": {"Accumulated Trades": last.accumulated.to_wire()},
            "market_fee_revenue": round(last.fee_revenue, 8),
            "area_throughput": {"import": round(last.imported, 8), "export": round(last.exported, 8)},
            "self_sufficiency": market.kpi.self_sufficiency,
            "self_consumption": market.kpi.self_consumption,
            "market_energy_deviance": None,
        }
    )
    return summary
