"""The small interface between the SDK's client logic and an exchange (after httpx's ``BaseTransport``).

One client logic - ``AreaClient`` for assets and markets (``gsy_e_sdk.clients.area_client``) and
``AggregatorCore`` for aggregators (``gsy_e_sdk.aggregator_core``) - runs over any ``Transport``:
Redis pub/sub (``redis.py``), REST + websocket (``rest.py``) or the in-memory exchange double of
the tests (``memory.py``). The public classes (``RedisAssetClient``, ``Aggregator`` ...) are that
logic bound to one transport each.

A transport carries one client's commands out (``send``, ``send_batch``) and hands what comes in
to the client's ``Receiver`` methods on its reader thread: an answer first to the client's
bookkeeping (``_on_answer``), then to the call waiting for it; events as they arrive. Commands
have the neutral names below (plus the catalogue's direct commands, ``gsy_e_sdk.wire.catalogue``);
which channel or route a command takes, how its answer is matched, and the error a missing
answer raises (whose text scripts of the original SDK match) are the transport's business.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from gsy_e_sdk.commands import Command

REGISTER = "register"
UNREGISTER = "unregister"
SELECT = "SELECT"
UNSELECT = "UNSELECT"
DELETE = "DELETE"  # an aggregator
BATCH = "batch_commands"

Batch = dict[str, list[Command]]


class NotSent(Exception):
    """The exchange did not take the command (a failed or unacknowledged POST): nothing happened."""


@dataclass(frozen=True)
class Timeouts:
    """How long a blocking call waits for its answer, in seconds, by kind of command."""

    register: float  # register, unregister
    aggregator: float  # SELECT, UNSELECT, CREATE, DELETE
    command: float  # direct commands (forecasts, grid fees ...)
    batch: float


class Receiver(Protocol):
    """What a client gives its transport. Called on the transport's reader thread: be quick
    (bookkeeping, then hooks queued on the client's ``HookRunner``)."""

    def _on_answer(self, command: str, answer: dict[str, Any]) -> None:
        """An answer to one of this client's commands, before the waiting call gets it."""

    def _on_event(self, message: dict[str, Any]) -> None:
        """An exchange event (``market``, ``tick``, ``trade``, ``finish``), as received."""

    def _on_traffic(self, message: dict[str, Any]) -> None:
        """Any other message the client may observe (``on_event_or_response``)."""


@runtime_checkable
class AggregatorReceiver(Receiver, Protocol):
    """A receiver that controls devices: it is told of selections and answered batches."""

    aggregator_uuid: str

    def _on_selection(self, device_uuid: Any, selected: bool) -> None:
        """A device or market (un)selected this aggregator."""

    def _on_batch_answer(self, envelope: dict[str, Any]) -> bool:
        """A batch's answer envelope; True when well-formed (the transport then wakes its caller)."""


def aggregator_receiver(receiver: Receiver) -> AggregatorReceiver:
    """``receiver``, checked to be an aggregator: a batch transport serves nothing else."""
    if not isinstance(receiver, AggregatorReceiver):
        raise TypeError(f"{receiver!r} is not an aggregator")
    return receiver


class Transport(ABC):
    """One client's connection to the exchange."""

    @abstractmethod
    def open(self, receiver: Receiver) -> None:
        """Deliver what arrives for this client to ``receiver`` from now on."""

    @abstractmethod
    def send(self, command: str, payload: dict[str, Any], *, wait: bool) -> Any:
        """Send ``command`` (``payload`` carries its ``transaction_id``); its answer when ``wait``.

        None when not waiting, or when the exchange did not take it (an HTTP failure, logged). A
        missing answer raises the transport's timeout error.
        """

    @abstractmethod
    def close(self) -> None:
        """Stop receiving for this client (what the process shares stays open)."""


class BatchTransport(Transport):
    """The transport of an aggregator: it also creates it and carries its batches."""

    @abstractmethod
    def attach(self, name: str, aggregator_uuid: str | None = None) -> str:
        """Make sure an aggregator of this name exists at the exchange (or take over
        ``aggregator_uuid``) and receive its messages; its uuid. Called after ``open``."""

    @abstractmethod
    def send_batch(self, batch: Batch, *, wait: bool) -> dict[str, Any] | None:
        """Send ``{area uuid: [command, ...]}``; the answer envelope when ``wait``, else None.

        None as well once ``finished``. Raises ``NotSent`` when the exchange did not take it.
        """

    @abstractmethod
    def finished(self) -> None:
        """The simulation finished: no answer will come, so batch calls waiting now or later
        return None at once."""
