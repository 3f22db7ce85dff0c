"""What an asset or market client does, whatever its transport (SDK_API.md 4.1-4.3, 5.1, 5.2).

Registration, aggregator selection and direct commands, the bookkeeping of their answers, and
the hooks of what the transport delivers, written once over ``gsy_e_sdk.transports.base``.
``AssetClient`` adds forecasts and measurements, ``MarketClient`` grid fees and DSO statistics.

The methods here have the REST clients' conventions (they return the exchange's answer). The
Redis clients (``gsy_e_sdk.redis_client_base``) keep the original's stricter ones on top: they
refuse to register twice and raise when registration fails.
"""

from __future__ import annotations

import logging
from typing import Any

from gsy_e_sdk import validation
from gsy_e_sdk.hooks import Call, HookedClient
from gsy_e_sdk.transports.base import REGISTER, SELECT, UNREGISTER, UNSELECT, Transport
from gsy_e_sdk.utils import log_trade_info
from gsy_e_sdk.wire.incoming import AggregatorEvent, check
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.pending import new_transaction_id

logger = logging.getLogger(__name__)
_dropped = RateLimitedLog(logger)

EVENT_HOOKS = {"market": "on_market_slot", "tick": "on_tick", "trade": "on_trade", "finish": "on_finish"}


def unregistered(answer: Any) -> bool:
    """gsy-e answers ``status: ready``, the original SDK wanted ``response: success`` (REDIS.md 3.3)."""
    return isinstance(answer, dict) and (answer.get("response") == "success" or answer.get("status") == "ready")


class AreaClient(HookedClient):
    """An asset or market bound to a transport. ``area_uuid`` is known at once (REST) or comes
    with the registration's answer (Redis)."""

    _transport: Transport

    def __init__(self, transport: Transport, name: str, area_uuid: str | None = None) -> None:
        self._init_area(area_uuid)
        self._start_hooks(name)
        self._transport = transport
        transport.open(self)

    def _init_area(self, area_uuid: str | None) -> None:
        self.area_uuid = area_uuid
        self.registered = False
        self.active_aggregator: str | None = None
        self.is_finished = False

    # Hooks (override in a subclass) -------------------------------------------------------------

    def on_register(self, registration_info: dict[str, Any]) -> None:
        """Called after a successful registration with the exchange's answer."""

    # Registration -------------------------------------------------------------------------------

    def register(self, is_blocking: bool = True) -> dict[str, Any] | None:
        """Register with the exchange; its answer when blocking. Non-blocking, ``registered``
        is still updated when the answer arrives."""
        return self._send(REGISTER, {}, is_blocking)

    def unregister(self, is_blocking: bool = True) -> dict[str, Any] | None:
        """Unregister; the exchange's answer when blocking (the original REST client required the
        argument, its README calls ``unregister()``: both work)."""
        answer = self._send(UNREGISTER, {}, is_blocking)
        if is_blocking:
            self.registered = False
        return answer

    # Aggregator selection -----------------------------------------------------------------------
    # ``is_blocking`` is accepted everywhere so that scripts run unchanged on either transport;
    # over REST the call always returns with the exchange's answer.

    def select_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> str | None:
        """Hand control of this area to an aggregator; ``active_aggregator`` tells the outcome."""
        self._select(SELECT, aggregator_uuid, is_blocking)
        return None

    def unselect_aggregator(self, aggregator_uuid: str, is_blocking: bool = True) -> str | None:
        """Take control back from an aggregator."""
        self._select(UNSELECT, aggregator_uuid, is_blocking)
        return None

    def _select(self, command: str, aggregator_uuid: str, wait: bool) -> str:
        """SELECT or UNSELECT; its transaction id."""
        validation.area_uuid(aggregator_uuid, "aggregator_uuid")
        transaction_id = new_transaction_id()
        payload = {"aggregator_uuid": aggregator_uuid, "device_uuid": self.area_uuid, "transaction_id": transaction_id}
        answer = self._transport.send(command, payload, wait=wait)
        refused = isinstance(answer, dict) and answer.get("status") == "error"
        if refused:
            logger.warning("%s of aggregator %s by %r was refused: %s", command, aggregator_uuid, self, answer)
        if command == UNSELECT:
            self.active_aggregator = None
        elif answer is not None or wait:
            self.active_aggregator = answer.get("aggregator_uuid") if isinstance(answer, dict) and not refused else None
            if self.active_aggregator:
                logger.info("%r selected aggregator %s.", self, self.active_aggregator)
        return transaction_id

    # Commands -----------------------------------------------------------------------------------

    def _send(self, command: str, body: dict[str, Any], wait: bool) -> Any:
        return self._transport.send(command, {"transaction_id": new_transaction_id(), **body}, wait=wait)

    def close(self) -> None:
        """Stop receiving messages for this client (what the process shares stays open)."""
        self._transport.close()

    # What the transport delivers (its reader thread) --------------------------------------------

    def _on_answer(self, command: str, answer: dict[str, Any]) -> None:
        if command == REGISTER:
            device_uuid = answer.get("device_uuid")
            # REST answers say so; the Redis SDK read registration from the uuid (REDIS.md 3.2).
            self.registered = bool(answer.get("registered", device_uuid))
            if not self.registered:
                logger.error("Registration of %r failed: %s", self, answer)
                return
            if isinstance(device_uuid, str) and device_uuid:
                self.area_uuid = device_uuid
            self._hooks.submit("on_register", self.on_register, answer)
        elif command == UNREGISTER:
            if not unregistered(answer):
                logger.error("Failed to unregister from market %r. Deactivating connection. (%s)", self, answer)
            self.registered = False

    def _on_event(self, message: dict[str, Any]) -> None:
        """An event on the area's own channels (the legacy direct mode): the client's hook of
        that name when it has one (no 10 % tick filter here), then ``on_event_or_response``."""
        if not check(AggregatorEvent, message, _dropped, f"the events of {self!r}"):
            return
        event = message["event"]
        if event == "finish":
            self.is_finished = True
        elif event == "trade":
            for trade in message.get("trade_list") or []:
                log_trade_info(trade)
        name = EVENT_HOOKS.get(event)
        hook = getattr(self, name, None) if name else None
        calls: list[Call] = [(name, hook, (message,))] if name and hook is not None else []
        if name is None:
            _dropped.warning("Unknown event %r for %r.", event, self)
        elif hook is None:
            logger.debug("%r has no %s hook; event %r ignored.", self, name, event)
        calls.append(("on_event_or_response", self.on_event_or_response, (message,)))
        self._hooks.submit_event(event, calls)


class AssetClient(AreaClient):
    """An asset: forecasts and measurements sent directly, for an asset no aggregator controls."""

    def set_energy_forecast(
        self, energy_forecast_kWh: dict[str, float], do_not_wait: bool = False
    ) -> dict[str, Any] | None:
        """Forecast ``{time slot: kWh}``; the exchange's answer unless ``do_not_wait``."""
        forecast = validation.energy_per_slot(energy_forecast_kWh, "energy_forecast_kWh")
        return self._send("set_energy_forecast", {"energy_forecast": forecast}, not do_not_wait)

    def set_energy_measurement(
        self, energy_measurement_kWh: dict[str, float], do_not_wait: bool = False
    ) -> dict[str, Any] | None:
        measurement = validation.energy_per_slot(energy_measurement_kWh, "energy_measurement_kWh")
        return self._send("set_energy_measurement", {"energy_measurement": measurement}, not do_not_wait)


class MarketClient(AreaClient):
    """A market: its grid fee and statistics, for a market no aggregator controls."""

    def grid_fees(self, fee_cents_per_kWh: float) -> dict[str, Any] | None:
        """Set the market's constant fee (ct/kWh) from the next slot on; the ``grid_fees`` answer."""
        fee = validation.non_negative(fee_cents_per_kWh, "fee_cents_per_kWh")
        return self._send("grid_fees", {"fee_const": fee}, True)

    def last_market_dso_stats(self) -> dict[str, Any] | None:
        """The market's statistics of the last finished slot (``dso_market_stats`` answer)."""
        return self._send("dso_market_stats", {}, True)
