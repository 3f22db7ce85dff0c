"""The Redis transport: the process's shared pub/sub connection (``gsy_e_sdk.wire.redis_connection``).

Every client of the process shares one connection and one reader thread per Redis URL; a
transport only adds and removes its client's handlers. Commands that create state at the exchange
(register, SELECT, CREATE, direct commands) are sent again while nobody listens (issue 13), then
answered by transaction id; batches go through ``gsy_e_sdk.batch``. Answers on an area's response
channels are validated (``gsy_e_sdk.wire.incoming``) and only those to this client's own requests
reach it. After ``finished`` nothing is waited for any more: the exchange may have exited.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from gsy_e_sdk.batch import submit_batch
from gsy_e_sdk.transports import base
from gsy_e_sdk.transports.base import AggregatorReceiver, Batch, BatchTransport, Receiver, Timeouts, Transport
from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.incoming import AreaResponse, check
from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.pending import new_transaction_id
from gsy_e_sdk.wire.redis_connection import Handler, get_connection

logger = logging.getLogger(__name__)
_dropped = RateLimitedLog(logger)

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
CREATE = "CREATE"
# The original SDK's texts of a missing answer (SDK_API.md 4.1, 4.4); scripts match them.
TIMED_OUT = {
    base.REGISTER: "API registration process timed out. Server will continue processing your request on the background "
    "and will notify you as soon as the registration has been completed.",
    base.UNREGISTER: "API unregister process timed out. Server will continue processing your request on the background "
    "and will notify you as soon as the unregistration has been completed.",
    CREATE: "API registration process timed out.",
    base.BATCH: "Sending batch commands timed out.",
}
TIMED_OUT_DEFAULT = "API has timed out."


@dataclass(frozen=True)
class AreaChannelNames:
    register: str
    register_response: str
    unregister: str
    unregister_response: str
    all_messages: str

    @classmethod
    def for_prefix(cls, prefix: str) -> AreaChannelNames:
        return cls(
            register=channels.register(prefix),
            register_response=channels.register_response(prefix),
            unregister=channels.unregister(prefix),
            unregister_response=channels.unregister_response(prefix),
            # A glob pattern: escape the characters of the name that Redis would interpret.
            all_messages=channels.area_wildcard(_GLOB_SPECIAL.sub(r"\\\1", prefix)),
        )


class AggregatorChannelNames:
    def __init__(self, aggregator_uuid: str) -> None:
        self.commands = channels.AGGREGATOR_COMMANDS
        self.responses = channels.AGGREGATOR_RESPONSE
        self.batch_commands = channels.batch_commands()
        self.batch_commands_response = channels.batch_response(aggregator_uuid)
        self.events = channels.aggregator_events(aggregator_uuid)


class _RedisTransport:
    """What the area and aggregator transports share: the connection, requests, subscriptions."""

    def __init__(self, redis_url: str | None, error: type[Exception], timeouts: Timeouts) -> None:
        self.connection = get_connection(redis_url)
        self.error = error
        self.timeouts = timeouts
        self._channel_handlers: dict[str, Handler] = {}
        self._pattern_handlers: dict[str, Handler] = {}
        # Every answer to SELECT, CREATE ... arrives there: read it before the first request.
        self.connection.watch_aggregator_responses()

    def _request(self, channel: str, payload: dict[str, Any], command: str, timeout: float, wait: bool) -> Any:
        return self.connection.request(
            channel,
            payload,
            owner=self,
            wait=wait,
            timeout=timeout,
            error=self.error,
            message=TIMED_OUT.get(command, TIMED_OUT_DEFAULT),
            command=command,
        )

    def _aggregator_command(self, command: str, payload: dict[str, Any], wait: bool) -> Any:
        """SELECT, UNSELECT, CREATE, DELETE on ``aggregator-commands`` (REDIS.md 4)."""
        body = {**payload, "type": command}
        return self._request(channels.AGGREGATOR_COMMANDS, body, command, self.timeouts.aggregator, wait)

    def _listen(self, channel_handlers: dict[str, Handler], pattern_handlers: dict[str, Handler] | None = None) -> None:
        self.connection.subscribe(channel_handlers, pattern_handlers)
        self._channel_handlers.update(channel_handlers)
        self._pattern_handlers.update(pattern_handlers or {})

    def close(self) -> None:
        self.connection.unsubscribe(self._channel_handlers, self._pattern_handlers)
        self._channel_handlers, self._pattern_handlers = {}, {}


class RedisAreaTransport(_RedisTransport, Transport):
    """An asset or market, addressed by its channel prefix (REDIS.md 3, 9).

    ``observe`` subscribes the catch-all ``<prefix>/*`` for ``on_event_or_response``; only when
    asked, since Redis matches every pattern against every published message.
    """

    def __init__(
        self, prefix: str, redis_url: str | None, *, error: type[Exception], timeouts: Timeouts, observe: bool
    ) -> None:
        super().__init__(redis_url, error, timeouts)
        self.prefix = prefix
        self.channel_names = AreaChannelNames.for_prefix(prefix)
        self._observe = observe
        self._receiver: Receiver  # set by open(), before any handler is subscribed

    def __repr__(self) -> str:
        return f"RedisAreaTransport({self.prefix!r})"

    def open(self, receiver: Receiver) -> None:
        self._receiver = receiver
        names = self.channel_names
        self._listen(
            {
                names.register_response: self._answers(base.REGISTER),
                names.unregister_response: self._answers(base.UNREGISTER),
            },
            {names.all_messages: self._on_area_message} if self._observe else {},
        )

    def send(self, command: str, payload: dict[str, Any], *, wait: bool) -> Any:
        if command in (base.SELECT, base.UNSELECT):
            return self._aggregator_command(command, payload, wait)
        if command in (base.REGISTER, base.UNREGISTER):
            channel = self.channel_names.register if command == base.REGISTER else self.channel_names.unregister
            return self._request(channel, {"name": self.prefix, **payload}, command, self.timeouts.register, wait)
        # A direct command (REDIS.md 9), run by the exchange at its next tick. Its answer channel
        # is subscribed on first use, so clients that never send one cost nothing.
        answers = channels.area_command_response(self.prefix, command)
        if answers not in self._channel_handlers:
            self._listen({answers: self._answers(command)})
        return self._request(channels.area_command(self.prefix, command), payload, command, self.timeouts.command, wait)

    def _answers(self, command: str) -> Handler:
        """The handler of ``command``'s answer channel: this client's answers, to it, then to the caller."""

        def on_answer(channel: str, payload: dict[str, Any]) -> None:
            if command in channels.SELF_ANSWERED_COMMANDS and "command" not in payload and "status" not in payload:
                return  # our own request, on the channel that also carries the answer
            if not check(AreaResponse, payload, _dropped, channel):
                return
            transaction_id = payload.get("transaction_id")
            if not self.connection.pending.owned_by(transaction_id, self):
                if payload.get("status") == "error":
                    logger.warning("%s of %s: %s", command, self.prefix, payload.get("error_message"))
                return
            self._receiver._on_answer(command, payload)
            self.connection.pending.resolve(transaction_id, payload)

        return on_answer

    def _on_area_message(self, _channel: str, payload: dict[str, Any]) -> None:
        self._receiver._on_traffic(payload)


class RedisAggregatorTransport(_RedisTransport, BatchTransport):
    """An aggregator: CREATE and DELETE on ``aggregator-commands``, batches, its events channel,
    and the SELECTED/UNSELECTED answers that name it (REDIS.md 4, 6, 7)."""

    def __init__(self, redis_url: str | None, *, error: type[Exception], timeouts: Timeouts) -> None:
        super().__init__(redis_url, error, timeouts)
        self.name = ""
        self.aggregator_uuid = ""
        self.channel_names = AggregatorChannelNames("")
        self._receiver: AggregatorReceiver  # set by open(), before any handler is subscribed
        self._waiting: set[str] = set()  # transaction ids of blocked batch calls
        self._finished = False

    def __repr__(self) -> str:
        return f"RedisAggregatorTransport({self.name!r}, {self.aggregator_uuid})"

    def open(self, receiver: Receiver) -> None:
        self._receiver = base.aggregator_receiver(receiver)

    def attach(self, name: str, aggregator_uuid: str | None = None) -> str:
        # The exchange names the aggregator after the CREATE transaction id (REDIS.md 4.1).
        self.name, self.aggregator_uuid = name, aggregator_uuid or new_transaction_id()
        self.channel_names = AggregatorChannelNames(self.aggregator_uuid)
        # Listening before CREATE goes out, as the original did.
        self._listen(
            {
                self.channel_names.events: self._on_event,
                self.channel_names.batch_commands_response: self._on_batch_answer,
            }
        )
        self.connection.watch_aggregator_responses(self.aggregator_uuid, self._on_selection)
        if aggregator_uuid is None:
            payload = {"name": name, "transaction_id": self.aggregator_uuid}
            answer = self._aggregator_command(CREATE, payload, wait=True)
            if answer.get("status") == "error":
                raise self.error(f"The exchange refused to create aggregator {name}: {answer}")
        return self.aggregator_uuid

    def send(self, command: str, payload: dict[str, Any], *, wait: bool) -> Any:
        if self._finished:
            # As the original: after finish nothing is waited for (the exchange may have exited).
            self.connection.publish(channels.AGGREGATOR_COMMANDS, {**payload, "type": command})
            return None
        return self._aggregator_command(command, payload, wait)

    def send_batch(self, batch: Batch, *, wait: bool) -> dict[str, Any] | None:
        transaction_id = new_transaction_id()
        if wait:
            self._waiting.add(transaction_id)
        try:
            if self._finished:
                return None
            return submit_batch(
                self.connection,
                self.aggregator_uuid,
                batch,
                transaction_id,
                self.timeouts.batch,
                wait=wait,
                owner=self,
                listen=False,
                error=self.error,
            )
        finally:
            self._waiting.discard(transaction_id)

    def finished(self) -> None:
        self._finished = True
        for transaction_id in list(self._waiting):
            self.connection.pending.resolve(transaction_id, None)

    def close(self) -> None:
        super().close()
        self.connection.forget_aggregator(self.aggregator_uuid)

    # The reader thread ----------------------------------------------------------------------

    def _on_event(self, _channel: str, message: dict[str, Any]) -> None:
        self._receiver._on_event(message)

    def _on_batch_answer(self, _channel: str, message: dict[str, Any]) -> None:
        if message.get("aggregator_uuid") != self.aggregator_uuid:
            return
        if self._receiver._on_batch_answer(message):
            self.connection.pending.resolve(message["transaction_id"], message)

    def _on_selection(self, payload: dict[str, Any]) -> None:
        """SELECTED/UNSELECTED naming this aggregator only (the original adopted every device)."""
        status = payload.get("status")
        if status in ("SELECTED", "UNSELECTED"):
            self._receiver._on_selection(payload.get("device_uuid"), status == "SELECTED")
