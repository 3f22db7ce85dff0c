"""Every area command of the protocol, once: its arguments, what it targets, where it travels.

The SDK's builder and clients, the exchange's handler tables, the direct-mode channels and the
facade's routes are all checked against this table (``tests/unit/test_command_catalogue.py``),
so a command added in one place and forgotten in another fails a test instead of a user. Each
command's arguments are one model of ``command_params.py``, which the builder, the exchange and
the facade validate through.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gsy_e_sdk.wire import command_params as p


class Target(StrEnum):
    ASSET = "asset"
    MARKET = "market"


@dataclass(frozen=True)
class CommandSpec:
    params: type[p.CommandParams]  # its arguments; ``params.command`` is the wire name
    target: Target
    rest_path: str  # under ``/external-connection/api/{sim}/{area}/`` (REST.md 3.1, 3.2, 3.6)
    rest_method: str = "POST"
    self_answered: bool = False  # answers on its request channel itself, not ``<prefix>/response/...``

    @property
    def name(self) -> str:
        """In batches (``"type"``, REDIS.md 6.2) and on direct channels ``<prefix>/<name>`` (REDIS.md 9)."""
        return self.params.command


CATALOGUE: tuple[CommandSpec, ...] = (
    CommandSpec(p.Offer, Target.ASSET, "offer/"),
    CommandSpec(p.Bid, Target.ASSET, "bid/"),
    CommandSpec(p.DeleteOffer, Target.ASSET, "delete-offer/"),
    CommandSpec(p.DeleteBid, Target.ASSET, "delete-bid/"),
    CommandSpec(p.ListOffers, Target.ASSET, "list-offers", "GET"),
    CommandSpec(p.ListBids, Target.ASSET, "list-bids", "GET"),
    CommandSpec(p.DeviceInfo, Target.ASSET, "device-stats", "GET"),
    CommandSpec(p.SetEnergyForecast, Target.ASSET, "set-energy-forecast/", self_answered=True),
    CommandSpec(p.SetEnergyMeasurement, Target.ASSET, "set-energy-measurement/", self_answered=True),
    CommandSpec(p.GridFees, Target.MARKET, "grid-fee/"),
    CommandSpec(p.DsoMarketStats, Target.MARKET, "dso-market-stats", "GET"),
)
BY_NAME = {spec.name: spec for spec in CATALOGUE}


def names(target: Target, self_answered: bool | None = None) -> tuple[str, ...]:
    """Wire names of the commands for ``target``, in catalogue order (optionally by how they answer)."""
    return tuple(
        spec.name
        for spec in CATALOGUE
        if spec.target is target and (self_answered is None or spec.self_answered == self_answered)
    )
