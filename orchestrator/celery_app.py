"""The Celery application shared by the dispatcher, the workers and operators.

JSON only (a pickled message is refused; tasks are sent as ``gsy-json``, the same JSON written
and read by orjson, see ``gsy_e_sdk.wire.json_codec``, and plain ``json`` is accepted), late acks
with reject-on-worker-lost so a task whose worker dies is redelivered, and prefetch 1 so a busy
worker never hoards a shard's events. The broker is Redis (``redis://``, the default) or
RabbitMQ (``amqp://``, ``amqps://``, ``pyamqp://``); every process of a fleet builds its app here,
so all of them declare the shard queues alike.

How a task of a SIGKILLed worker comes back (Redis broker): kombu keeps every delivered,
unacked message in the ``unacked`` hash and any live consumer re-queues those older than the
visibility timeout in a periodic sweep. kombu (5.6+) runs that sweep every
``unacked_restore_interval`` s but scans Redis only on every ``unacked_restore_throttle``-th run
(defaults 10 and 10): left alone, a dead worker's tasks came back after 100 s or more, whatever
the visibility timeout. We sweep every second, so redelivery takes the visibility timeout plus
at most a second. ``GSY_FLEET_VISIBILITY_TIMEOUT`` must exceed the longest a healthy worker
holds a task (the fleet's ``task_timeout`` plus strategy time; prefetch equals the thread
count, so a reserved task starts at once), else a slow task is delivered twice (harmless, the
transaction id is the same, but wasted).

How it comes back on RabbitMQ: the broker holds a delivered message until its consumer acks it,
and requeues it the moment that consumer's connection closes, so a killed worker's tasks go to
another worker at once (no visibility timeout, and a slow task is never delivered twice). A
worker cut off from the network without its connection closing is found by the AMQP heartbeat:
RabbitMQ closes a connection that stayed silent for about twice ``GSY_FLEET_BROKER_HEARTBEAT``
seconds (default 10) and requeues what it held. Shard queues are quorum queues (replicated, and
they count deliveries): a message delivered ``DELIVERY_LIMIT`` times without an ack is dropped,
so a task that kills every worker taking it cannot take the fleet down with it. Quorum queues
have no global prefetch: Celery sees the quorum queues (``worker_detect_quorum_queues``) and
sets the prefetch per consumer. Tasks are published with confirms (a send returns once the
broker holds the message). A worker on quorum queues also declares Celery's delayed-delivery
queues and binds the shard queues to them: those queues are classic (the fleet sends no delayed
task, so they stay empty) and the shard exchanges are topic exchanges, as that binding needs
(routing is still by the exact queue name).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP, Queues
from kombu import Exchange, Queue
from kombu.serialization import register

from gsy_e_sdk.wire import json_codec
from gsy_e_sdk.wire.redis_url import resolve_redis_url

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
BROKER_ENV = "GSY_FLEET_BROKER_URL"
HEARTBEAT_ENV = "GSY_FLEET_BROKER_HEARTBEAT"
DEFAULT_HEARTBEAT_S = 10
DEFAULT_VISIBILITY_TIMEOUT_S = 30
VISIBILITY_TIMEOUT_ENV = "GSY_FLEET_VISIBILITY_TIMEOUT"
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
DEFAULT_QUEUE = "shard-0"
DELIVERY_LIMIT = 5  # deliveries of one message before a quorum queue drops it (a poison task)
QUORUM_ARGUMENTS = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT}
RESTORE_SWEEP_S = 1  # see the module docstring: one cheap ZRANGE per worker and second
TASK_SERIALIZER = "gsy-json"
register(
    TASK_SERIALIZER, json_codec.dumps, json_codec.loads, content_type="application/x-gsy-json", content_encoding="utf-8"
)


def broker_url() -> str:
    """Env ``GSY_FLEET_BROKER_URL``, else the Redis of env ``REDIS_URL``, else the local default."""
    return os.environ.get(BROKER_ENV) or resolve_redis_url(default=DEFAULT_BROKER)


def is_amqp(url: str) -> bool:
    """Whether ``url`` names a RabbitMQ (AMQP 0-9-1) broker rather than Redis."""
    return url.partition("://")[0].lower() in AMQP_SCHEMES


def shard_queue(name: str) -> Queue:
    """A shard queue as every process declares it on RabbitMQ: quorum, with the delivery limit.

    The dispatcher (``send_task(queue=...)``) and the workers (``-Q``) must declare a queue with
    identical arguments, else RabbitMQ refuses the second (PRECONDITION_FAILED).
    """
    return Queue(name, Exchange(name, "topic"), name, queue_arguments=QUORUM_ARGUMENTS)


class _ShardQueues(Queues):
    """Celery's queue map, creating the queues it has not seen (``-Q``, ``send_task(queue=)``)
    as quorum shard queues when the broker is RabbitMQ."""

    def new_missing(self, name: str) -> Queue:
        if self.create_missing_queue_type == "quorum":
            return shard_queue(name)
        return super().new_missing(name)

    def add_compat(self, name: str, **options: Any) -> Queue:
        """A queue named by remote control (``add_consumer``: the shard failover, Flower, ``celery
        control``) is declared as the others, not as a classic queue RabbitMQ would refuse."""
        if self.create_missing_queue_type == "quorum" and not options.get("queue_arguments"):
            return self._add(shard_queue(name))
        return super().add_compat(name, **options)


class _FleetAMQP(AMQP):
    queues_cls = _ShardQueues


class BrokerSettingError(ValueError):
    """An environment variable of the broker settings holds something else than it must."""


def env_seconds(name: str, default: int) -> int:
    """Whole seconds from env ``name`` (at least 1), else ``default``; ``BrokerSettingError`` names it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise BrokerSettingError(f"{name} must be a whole number of seconds >= 1, got {raw!r}")
    return value


def check_broker_env() -> None:
    """Raise ``BrokerSettingError`` if a broker setting of the environment is unusable."""
    env_seconds(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S)
    env_seconds(VISIBILITY_TIMEOUT_ENV, DEFAULT_VISIBILITY_TIMEOUT_S)


def _broker_settings(url: str) -> dict[str, Any]:
    """What differs between the brokers: see the module docstring."""
    if is_amqp(url):
        return {
            "task_queues": [shard_queue(DEFAULT_QUEUE)],
            "task_default_exchange_type": "topic",
            "task_create_missing_queue_type": "quorum",
            "worker_detect_quorum_queues": True,
            "broker_native_delayed_delivery_queue_type": "classic",
            "broker_heartbeat": env_seconds(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S),
            "broker_transport_options": {"confirm_publish": True},
        }
    return {
        "broker_transport_options": {
            "visibility_timeout": env_seconds(VISIBILITY_TIMEOUT_ENV, DEFAULT_VISIBILITY_TIMEOUT_S),
            "unacked_restore_interval": RESTORE_SWEEP_S,
            "unacked_restore_throttle": 1,
        },
    }


def make_app(broker: str | None = None) -> Celery:
    """The fleet's Celery app on ``broker`` (default: ``broker_url()``)."""
    url = broker or broker_url()
    app = Celery(
        "gsy_fleet", broker=url, amqp=_FleetAMQP, include=["workers.tasks", "workers.operator_tasks", "workers.control"]
    )
    app.conf.update(
        task_serializer=TASK_SERIALIZER,
        result_serializer="json",
        event_serializer="json",
        accept_content=[TASK_SERIALIZER, "json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=DEFAULT_QUEUE,
        task_send_sent_event=True,
        worker_send_task_events=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        **_broker_settings(url),
    )
    return app


def purge_shard_queues(app: Celery, queues: list[str]) -> int:
    """Drop the tasks waiting in ``queues`` (a fresh run); how many were dropped.

    ``app.control.purge()`` empties only the queues this process consumes (the default one);
    the dispatcher consumes none, so it names the fleet's shard queues here. A queue that does
    not exist yet (RabbitMQ answers 404 and closes the channel) holds nothing to drop.
    """
    dropped = 0
    with app.connection_for_write() as connection:
        for name in queues:
            with connection.channel() as channel:
                try:
                    dropped += app.amqp.queues[name](channel).purge() or 0
                except connection.channel_errors:
                    continue
    return dropped


@functools.cache
def default_app() -> Celery:
    """The app ``celery -A workers`` runs (broker from the environment), built on first use.

    Not at import: loading a fleet file or a strategy must not construct a Celery app. Tasks are
    ``shared_task``s, so every app made here (this one, or a dispatcher's ``make_app(url)``)
    knows them.
    """
    return make_app()
