"""What the exchange sends to clients, checked on arrival (REDIS.md 4, 6.4, 7; REST.md 4.3).

Only the fields the SDK reads are checked, and only their types: unknown keys pass (the
exchange may add some), and the original dict, not a model, goes on to the hooks. A message
that fails is garbage (a stray publisher, a bug upstream): callers log it, rate-limited, and
drop it before it touches any state.

Events are typed in ``gsy_e_sdk.wire.events``; ``AggregatorEvent`` is their lenient form for
clients, which also see partial events (the device sockets) and the websocket's selection
events, and must hand every one of them to ``on_event_or_response``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictStr, ValidationError

from gsy_e_sdk.wire.events import GridTree, WireMessage, describe_errors
from gsy_e_sdk.wire.log_limit import RateLimitedLog


class AggregatorEvent(WireMessage):
    """``market``, ``tick``, ``trade``, ``finish`` (and the websocket's selection events)."""

    event: StrictStr
    grid_tree: GridTree | None = None
    slot_completion: StrictStr | None = None
    market_slot: StrictStr | None = None
    trade_list: list[dict[str, Any]] | None = None
    device_uuid: StrictStr | None = None


class BatchEnvelope(WireMessage):
    """The answer to one batch: per area uuid, one response per command."""

    transaction_id: StrictStr
    aggregator_uuid: StrictStr | None = None
    responses: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)


class CommandResponse(WireMessage):
    """An answer on a REST client's websocket, matched by ``command`` and ``transaction_id``."""

    command: StrictStr
    transaction_id: StrictStr | None = None


class AreaResponse(WireMessage):
    """An answer on an area's or the aggregators' response channel (register, SELECT ...)."""

    transaction_id: StrictStr | None = None
    aggregator_uuid: StrictStr | None = None
    device_uuid: StrictStr | None = None


def check(model: type[WireMessage], message: dict[str, Any], log: RateLimitedLog, where: str) -> bool:
    """True when ``message`` has ``model``'s shape; else a rate-limited warning naming ``where``."""
    try:
        model.model_validate(message)
    except ValidationError as exc:
        log.warning("Dropped a malformed message on %s (%s)", where, describe_errors(exc))
        return False
    return True
