"""Assets at run time: energy per slot, what is left to trade, and their reported info.

Energy models follow EXCHANGE.md section 3. All energies are kWh per slot, money in cents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from gsy_local_exchange import scenario as sc
from gsy_local_exchange.profiles import ProfileSeries, average_over, load_profile

if TYPE_CHECKING:
    from gsy_local_exchange.orders import Order

INFINITE_ENERGY = 10_000_000.0
ENERGY_TOLERANCE = 0.00002
# Relative output of the PredefinedPV cloud-coverage curves against the clear-sky curve.
CLOUD_COVERAGE_FACTOR = {0: 1.0, 1: 0.55, 2: 0.2}


def gaussian_pv_energy(minute_of_day: int, capacity_kw: float, slot_hours: float) -> float:
    """Clear-sky PV output of one panel for the slot starting at ``minute_of_day`` (EXCHANGE.md 3.3)."""
    if minute_of_day < 480 or minute_of_day > 990:
        return 0.0
    shape = math.exp(-(((round(minute_of_day / 5) - 147.2) / 38.6) ** 2))
    return round(capacity_kw * shape * slot_hours, 4)


@dataclass
class SlotLedger:
    """What an asset did in one slot."""

    bought: float = 0.0
    sold: float = 0.0
    spent: float = 0.0  # cents paid
    earned: float = 0.0  # cents received
    fees: float = 0.0  # cents of grid fee in its own market

    @property
    def energy_traded(self) -> float:
        return self.bought + self.sold

    @property
    def total_cost(self) -> float:
        return self.spent + self.earned


@dataclass
class Asset:
    """Common bookkeeping; subclasses say how much energy a slot offers or needs."""

    node: sc.AssetNode
    uuid: str
    path: list  # market areas from the root down to the parent market
    can_offer: bool = False
    can_bid: bool = False
    offers: dict[str, Order] = field(default_factory=dict)
    bids: dict[str, Order] = field(default_factory=dict)
    ledger: SlotLedger = field(default_factory=SlotLedger)
    last_ledger: SlotLedger = field(default_factory=SlotLedger)
    bill: SlotLedger = field(default_factory=SlotLedger)
    kind: str = "Asset"
    fee_cum: list[float] = field(default_factory=list)  # running fees entered from each depth up

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def market(self):
        return self.path[-1]

    @property
    def externally_controllable(self) -> bool:
        return bool(getattr(self.node, "allow_external_connection", False))

    @property
    def forecast_capable(self) -> bool:
        return False

    @property
    def infinite(self) -> bool:
        return False

    def start_slot(self, slot_start: datetime, slot_length: timedelta) -> None:
        self.last_ledger = self.ledger
        self.ledger = SlotLedger()
        self.offers.clear()
        self.bids.clear()

    # How much may still be offered / bid, ignoring the asset's own open orders.
    def sellable(self) -> float:
        return 0.0

    def buyable(self) -> float:
        return 0.0

    def open_energy(self, orders: dict[str, Order]) -> float:
        return sum(order.energy for order in orders.values())

    def record_trade(self, bought: float, sold: float, spent: float, earned: float, fee: float) -> None:
        for ledger in (self.ledger, self.bill):
            ledger.bought += bought
            ledger.sold += sold
            ledger.spent += spent
            ledger.earned += earned
            ledger.fees += fee

    def info(self) -> dict:
        """``asset_info`` of REDIS.md 7.3 for the current slot."""
        raise NotImplementedError

    def last_slot_info(self) -> dict:
        return {
            "energy_traded": round(self.last_ledger.energy_traded, 8),
            "total_cost": round(self.last_ledger.total_cost, 8),
        }

    def bill_info(self) -> dict:
        bill = self.bill
        return {
            "bought": round(bill.bought, 8),
            "sold": round(bill.sold, 8),
            "spent": round(bill.spent / 100, 8),
            "earned": round(bill.earned / 100, 8),
            "total_energy": round(bill.bought - bill.sold, 8),
            "total_cost": round((bill.spent - bill.earned) / 100, 8),
            "market_fee": round(bill.fees / 100, 8),
            "type": self.kind,
        }


@dataclass
class _ForecastMixin:
    """Forecast-driven energy: only ``set_energy_forecast`` sets it (EXCHANGE.md 3.7)."""

    if TYPE_CHECKING:  # provided by Asset; declared here only for the type checker
        node: sc.AssetNode
    forecasts: dict[datetime, float] = field(default_factory=dict)
    pending_forecasts: dict[datetime, float] = field(default_factory=dict)
    measurements: dict[datetime, float] = field(default_factory=dict)
    pending_measurements: dict[datetime, float] = field(default_factory=dict)

    def buffer_forecast(self, values: dict[datetime, float]) -> None:
        self.pending_forecasts.update(values)

    def buffer_measurement(self, values: dict[datetime, float]) -> None:
        self.pending_measurements.update(values)

    def apply_buffers(self, slot_start: datetime) -> None:
        self.forecasts.update({k: v for k, v in self.pending_forecasts.items() if k >= slot_start})
        self.measurements.update({k: v for k, v in self.pending_measurements.items() if k < slot_start})
        self.pending_forecasts.clear()
        self.pending_measurements.clear()

    @property
    def forecast_capable(self) -> bool:
        """A node with a forecast stream takes its energy from forecasts, not from its profile."""
        return bool(getattr(self.node, "forecast_stream_enabled", False))

    def forecast_energy(self, slot_start: datetime) -> float:
        self.apply_buffers(slot_start)
        return self.forecasts.get(slot_start, 0.0)


@dataclass
class PV(_ForecastMixin, Asset):
    node: sc.PVNode | sc.PredefinedPVNode | sc.PVProfileNode
    available: float = 0.0
    profile: ProfileSeries | None = None
    kind: str = "PV"

    def __post_init__(self) -> None:
        self.can_offer = True

    def start_slot(self, slot_start: datetime, slot_length: timedelta) -> None:
        super().start_slot(slot_start, slot_length)
        self.available = self.energy_for(slot_start, slot_length)

    def energy_for(self, slot_start: datetime, slot_length: timedelta) -> float:
        node = self.node
        slot_hours = slot_length.total_seconds() / 3600
        if self.forecast_capable:
            return self.forecast_energy(slot_start)
        if isinstance(node, sc.PVProfileNode):
            assert self.profile is not None  # build_asset loads it for every profile node
            watts = average_over(self.profile, slot_start, slot_length)
            return round(watts * slot_hours / 1000 * node.panel_count, 8)
        minute = slot_start.hour * 60 + slot_start.minute
        energy = gaussian_pv_energy(minute, node.capacity_kW, slot_hours) * node.panel_count
        if isinstance(node, sc.PredefinedPVNode):
            energy *= CLOUD_COVERAGE_FACTOR[node.cloud_coverage]
        return round(energy, 8)

    def sellable(self) -> float:
        return max(self.available - self.ledger.sold, 0.0)

    def info(self) -> dict:
        return {
            "available_energy_kWh": round(self.sellable(), 8),
            "energy_active_in_offers": round(self.open_energy(self.offers), 8),
            "energy_traded": round(self.ledger.energy_traded, 8),
            "total_cost": round(self.ledger.total_cost, 8),
        }


@dataclass
class Load(_ForecastMixin, Asset):
    node: sc.LoadHoursNode | sc.LoadProfileNode
    required: float = 0.0
    profile: ProfileSeries | None = None
    kind: str = "Load"

    def __post_init__(self) -> None:
        self.can_bid = True

    def start_slot(self, slot_start: datetime, slot_length: timedelta) -> None:
        super().start_slot(slot_start, slot_length)
        self.required = self.energy_for(slot_start, slot_length)

    def energy_for(self, slot_start: datetime, slot_length: timedelta) -> float:
        node = self.node
        slot_hours = slot_length.total_seconds() / 3600
        if self.forecast_capable:
            return self.forecast_energy(slot_start)
        if isinstance(node, sc.LoadProfileNode):
            assert self.profile is not None  # build_asset loads it for every profile node
            return round(average_over(self.profile, slot_start, slot_length) * slot_hours / 1000, 8)
        if slot_start.hour not in node.hrs_of_day:
            return 0.0
        return round(node.avg_power_W * slot_hours / 1000, 8)

    def buyable(self) -> float:
        return max(self.required - self.ledger.bought, 0.0)

    def info(self) -> dict:
        return {
            "energy_requirement_kWh": round(self.buyable(), 8),
            "energy_active_in_bids": round(self.open_energy(self.bids), 8),
            "energy_traded": round(self.ledger.energy_traded, 8),
            "total_cost": round(self.ledger.total_cost, 8),
        }


@dataclass
class Storage(Asset):
    node: sc.StorageNode
    used_storage: float = 0.0
    max_slot_energy: float = 0.0
    kind: str = "Storage"

    def __post_init__(self) -> None:
        self.can_offer = self.can_bid = True
        self.used_storage = self.node.battery_capacity_kWh * self.node.initial_soc / 100

    @property
    def capacity(self) -> float:
        return self.node.battery_capacity_kWh

    def start_slot(self, slot_start: datetime, slot_length: timedelta) -> None:
        super().start_slot(slot_start, slot_length)
        self.max_slot_energy = self.node.max_abs_battery_power_kW * slot_length.total_seconds() / 3600

    def sellable(self) -> float:
        floor = self.node.min_allowed_soc / 100 * self.capacity
        return max(min(self.used_storage - floor, self.max_slot_energy - self.ledger.sold), 0.0)

    def buyable(self) -> float:
        return max(min(self.capacity - self.used_storage, self.max_slot_energy - self.ledger.bought), 0.0)

    def record_trade(self, bought: float, sold: float, spent: float, earned: float, fee: float) -> None:
        super().record_trade(bought, sold, spent, earned, fee)
        self.used_storage += bought - sold

    def info(self) -> dict:
        in_offers = self.open_energy(self.offers)
        in_bids = self.open_energy(self.bids)
        return {
            "energy_to_sell": round(max(self.sellable() - in_offers, 0.0), 8),
            "energy_active_in_bids": round(in_bids, 8),
            "energy_to_buy": round(max(self.buyable() - in_bids, 0.0), 8),
            "energy_active_in_offers": round(in_offers, 8),
            "free_storage": round(self.capacity - self.used_storage, 8),
            "used_storage": round(self.used_storage, 8),
            "energy_traded": round(self.ledger.energy_traded, 8),
            "total_cost": round(self.ledger.total_cost, 8),
        }


@dataclass
class SmartMeter(Asset):
    node: sc.SmartMeterNode
    required: float = 0.0
    available: float = 0.0
    profile: ProfileSeries | None = None
    kind: str = "SmartMeter"

    def __post_init__(self) -> None:
        self.can_offer = self.can_bid = True

    def start_slot(self, slot_start: datetime, slot_length: timedelta) -> None:
        super().start_slot(slot_start, slot_length)
        assert self.profile is not None  # the smart meter profile is required
        net = self.profile.value_at(slot_start)
        self.required = max(net, 0.0)
        self.available = max(-net, 0.0)

    def sellable(self) -> float:
        return max(self.available - self.ledger.sold, 0.0)

    def buyable(self) -> float:
        return max(self.required - self.ledger.bought, 0.0)

    def info(self) -> dict:
        return {"energy_requirement_kWh": round(self.buyable(), 8), "available_energy_kWh": round(self.sellable(), 8)}


@dataclass
class InfiniteSource(Asset):
    """Infinite bus, market maker or commercial producer: unlimited energy at fixed rates."""

    sell_rate: float | None = None
    buy_rate: float | None = None
    sell_profile: ProfileSeries | None = None
    buy_profile: ProfileSeries | None = None
    kind: str = "InfiniteBus"

    def __post_init__(self) -> None:
        self.can_offer = self.sell_rate is not None
        self.can_bid = self.buy_rate is not None

    @property
    def infinite(self) -> bool:
        return True

    def rates_at(self, slot_start: datetime) -> tuple[float | None, float | None]:
        sell = self.sell_profile.value_at(slot_start) if self.sell_profile else self.sell_rate
        buy = self.buy_profile.value_at(slot_start) if self.buy_profile else self.buy_rate
        return sell, buy

    def sellable(self) -> float:
        return INFINITE_ENERGY if self.can_offer else 0.0

    def buyable(self) -> float:
        return INFINITE_ENERGY if self.can_bid else 0.0

    def info(self) -> dict:
        return {}


# Assets that price their orders along the template ramp; an InfiniteSource posts fixed rates.
TradingAsset = PV | Load | Storage | SmartMeter


def build_asset(
    node: sc.AssetNode,
    uuid: str,
    path: list,
    base_dir: Path,
    slot_length: timedelta,
    market_maker_rate: float,
    feed_in_tariff: float,
) -> TradingAsset | InfiniteSource:
    """Create the run-time asset for a validated scenario node."""

    def profile(spec):
        return load_profile(spec, base_dir, slot_length) if spec is not None else None

    if isinstance(node, (sc.PVNode, sc.PredefinedPVNode)):
        return PV(node=node, uuid=uuid, path=path)
    if isinstance(node, sc.PVProfileNode):
        return PV(node=node, uuid=uuid, path=path, profile=profile(node.power_profile))
    if isinstance(node, sc.LoadHoursNode):
        return Load(node=node, uuid=uuid, path=path)
    if isinstance(node, sc.LoadProfileNode):
        return Load(node=node, uuid=uuid, path=path, profile=profile(node.daily_load_profile))
    if isinstance(node, sc.StorageNode):
        return Storage(node=node, uuid=uuid, path=path)
    if isinstance(node, sc.SmartMeterNode):
        return SmartMeter(node=node, uuid=uuid, path=path, profile=profile(node.smart_meter_profile))
    if isinstance(node, sc.InfiniteBusNode):
        return InfiniteSource(
            node=node,
            uuid=uuid,
            path=path,
            kind="InfiniteBus",
            sell_rate=node.energy_sell_rate if node.energy_sell_rate is not None else market_maker_rate,
            buy_rate=node.energy_buy_rate if node.energy_buy_rate is not None else feed_in_tariff,
            sell_profile=profile(node.energy_rate_profile),
            buy_profile=profile(node.buying_rate_profile),
        )
    if isinstance(node, sc.MarketMakerNode):
        rate = node.energy_rate if node.energy_rate is not None else market_maker_rate
        return InfiniteSource(
            node=node, uuid=uuid, path=path, kind="MarketMaker", sell_rate=rate if node.grid_connected else None
        )
    if isinstance(node, sc.CommercialProducerNode):
        rate = node.energy_rate if node.energy_rate is not None else market_maker_rate
        return InfiniteSource(node=node, uuid=uuid, path=path, kind="CommercialProducer", sell_rate=rate)
    raise TypeError(f"unsupported asset node {type(node).__name__}")
