"""Events an exchange sends, typed once: one parser reads them, one encoder writes them.

Aggregator events (``market``, ``tick``, ``trade``, ``finish``; REDIS.md 7, REST.md 4.3) are read
by ``parse_event`` and written by ``encode_event``; the local exchange's direct-mode events
(REDIS.md 9) are written by the same encoder. Keys are written in the reference exchange's order.

Two costs shape both ends. The exchange serialises each aggregator's grid tree once per event
tick (a megabyte at 1,000 assets) and shares it between that tick's events, so the encoder takes
the tree already encoded. The fleet's dispatcher decodes those megabytes, so the parser checks
the header fields and the trade list and keeps ``grid_tree`` as the decoded dict, never walking
its nodes (``gsy_e_sdk.wire.grid_tree`` indexes it).
"""

from __future__ import annotations

import functools
import json
import math
import reprlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, StrictInt, StrictStr, StringConstraints, ValidationError


def _number(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise ValueError("must be a finite number")
    return value


# A number as the JSON carries it: an int stays an int (a rate of 30 is written back as 30).
Number = Annotated[float, PlainValidator(_number)]
Completion = Annotated[str, StringConstraints(strict=True, pattern=r"^\d{1,3}%$")]  # "40%"
SlotText = Annotated[str, StringConstraints(strict=True, pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d$")]


def _grid_tree(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not all(
        isinstance(uuid, str) and isinstance(node, dict) for uuid, node in value.items()
    ):
        raise ValueError("must be an object of area uuids to node objects")
    return value


# Area uuid -> node (REDIS.md 7.3): checked at the top and kept as it is, the very dict decoded.
GridTree = Annotated[dict[str, dict[str, Any]], PlainValidator(_grid_tree)]
NONE_TEXT = "None"  # what the reference writes for a missing id or fee, as a string


class WireMessage(BaseModel):
    """A message from an exchange. Unknown keys pass (an exchange may add some); inputs never
    appear in errors, since a garbage message may be huge or deeply nested."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)


class TradeEntry(WireMessage):
    """One element of a ``trade`` event's ``trade_list``: one asset's side of one trade (REDIS.md 7.4)."""

    event: Literal["trade"] = "trade"
    asset_id: StrictStr
    trade_id: StrictStr
    time: StrictStr
    trade_price: Number
    traded_energy: Number
    total_fee: Number
    local_market_fee: Number | Literal["None"]
    seller: StrictStr
    buyer: StrictStr
    seller_origin: StrictStr
    buyer_origin: StrictStr
    bid_id: StrictStr
    offer_id: StrictStr
    residual_bid_id: StrictStr
    residual_offer_id: StrictStr


# Aggregator events are assembled from these parts; pydantic orders fields from the last base
# to the first, so ``class X(_Tail, _Tree, _Head)`` puts _Head's fields first on the wire.
class _SlotHead(WireMessage):
    slot_completion: Completion
    market_slot: SlotText


class _TradeHead(WireMessage):
    trade_list: list[TradeEntry]


class _Tree(WireMessage):
    grid_tree: GridTree
    feed_in_tariff_rate: Number | None
    market_maker_rate: Number | None


class _Tail(WireMessage):
    event: StrictStr
    simulation_id: StrictStr | None  # null on the local exchange, the simulation's id when hosted
    num_ticks: Number  # tick events per slot: 10.0


class _SlotEvent(_Tail, _Tree, _SlotHead):
    @property
    def completion(self) -> int:
        """``slot_completion`` as whole percent."""
        return int(self.slot_completion[:-1])


class MarketEvent(_SlotEvent):
    """A slot starts (REDIS.md 7.1)."""

    event: Literal["market"] = "market"


class TickEvent(_SlotEvent):
    """Every 10 % of a slot (REDIS.md 7.2)."""

    event: Literal["tick"] = "tick"


class TradeEvent(_Tail, _Tree, _TradeHead):
    """The trades of the aggregator's assets in one tick (REDIS.md 7.4)."""

    event: Literal["trade"] = "trade"


class FinishEvent(_Tail):
    """The run is over (REDIS.md 7.5)."""

    event: Literal["finish"] = "finish"


ExchangeEvent = MarketEvent | TickEvent | TradeEvent | FinishEvent
_MODELS: dict[str, type[ExchangeEvent]] = {
    "market": MarketEvent,
    "tick": TickEvent,
    "trade": TradeEvent,
    "finish": FinishEvent,
}
EVENT_NAMES = tuple(_MODELS)


# Direct mode (REDIS.md 9): the events of an asset or market on its own channels.
class DeviceMarketEvent(WireMessage):
    name: StrictStr
    id: StrictStr
    start_time: SlotText
    duration_min: StrictInt
    time_slots: list[SlotText]
    type_name: StrictStr
    device_info: dict[str, Any]
    event: Literal["market"] = "market"
    area_uuid: StrictStr
    device_bill: dict[str, Any]
    last_market_maker_rate: Number | None
    last_market_stats: dict[str, Any]


class DeviceTickEvent(WireMessage):
    slot_completion: Completion
    market_slot: SlotText
    event: Literal["tick"] = "tick"
    area_uuid: StrictStr
    device_info: dict[str, Any]


class DeviceTradeEvent(WireMessage):
    """An asset's side of a trade; it names its own order only: ``offer_id`` or ``bid_id``."""

    device_info: dict[str, Any]
    event: Literal["trade"] = "trade"
    trade_id: StrictStr
    time: StrictStr
    trade_price: Number
    traded_energy: Number
    fee_price: Number
    area_uuid: StrictStr
    seller: StrictStr
    buyer: StrictStr
    residual_id: StrictStr
    event_type: Literal["buy", "sell"]
    offer_id: StrictStr | None = None
    bid_id: StrictStr | None = None


class DeviceFinishEvent(WireMessage):
    event: Literal["finish"] = "finish"
    area_uuid: StrictStr | None = None  # markets get no area_uuid


class EventError(ValueError):
    """Not a well-formed aggregator event; the message is a one-line reason, without the input."""


def describe_errors(exc: ValidationError, limit: int = 3) -> str:
    """The first ``limit`` problems of a validation, on one line: ``field.path: message; ...``."""
    return "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'message'}: {error['msg']}" for error in exc.errors()[:limit]
    )


def parse_event(raw: Any) -> ExchangeEvent:
    """The typed aggregator event of a decoded message; ``EventError`` when it is none."""
    if not isinstance(raw, dict):
        raise EventError(f"an event is a JSON object, not {type(raw).__name__}")
    name = raw.get("event")
    model = _MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        raise EventError(f"unknown event {reprlib.repr(name)}; expected one of {', '.join(EVENT_NAMES)}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise EventError(f"malformed {name} event: {describe_errors(exc)}") from None


def encode_event(event: WireMessage, grid_tree_json: str | None = None) -> str:
    """``event`` as JSON text, its fields in declared order, then unknown ones.

    ``grid_tree_json`` is the event's grid tree already encoded, written in place of
    ``event.grid_tree``: the exchange encodes each tree once and shares it between events.
    Optional fields left unset are not written (a direct-mode trade names one order id only).
    """
    before_tree, optional = _layout(type(event))
    skipped = {name for name in optional if name not in event.model_fields_set}
    if grid_tree_json is None:
        return json.dumps(event.model_dump(exclude=skipped))
    skipped.add("grid_tree")  # never copied by model_dump
    values = event.model_dump(exclude=skipped)
    head = json.dumps({name: values.pop(name) for name in before_tree if name in values})[1:-1]
    tail = json.dumps(values)[1:-1]
    # One f-string: the tree (a megabyte at 1,000 assets) is copied once.
    return f'{{{head}{", " if head else ""}"grid_tree": {grid_tree_json}{", " if tail else ""}{tail}}}'


@functools.cache
def _layout(model: type[WireMessage]) -> tuple[tuple[str, ...], frozenset[str]]:
    """(the fields declared before ``grid_tree``, the optional fields that default to None)."""
    names = list(model.model_fields)
    before_tree = tuple(names[: names.index("grid_tree")]) if "grid_tree" in names else ()
    optional = frozenset(name for name, info in model.model_fields.items() if info.default is None)
    return before_tree, optional
