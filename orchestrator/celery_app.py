"""The Celery application shared by the dispatcher, the workers and operators.

JSON only (a pickled message is refused; tasks are sent as ``gsy-json``, the same JSON written
and read by orjson, see ``gsy_e_sdk.wire.json_codec``, and plain ``json`` is accepted), late acks
with reject-on-worker-lost so a task whose worker dies is redelivered, prefetch 1 so a busy
worker never hoards a shard's events, and a short broker visibility timeout so a redelivery
happens within the slot.

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
"""

from __future__ import annotations

import functools
import os

from celery import Celery
from kombu.serialization import register

from gsy_e_sdk.wire import json_codec
from gsy_e_sdk.wire.redis_url import resolve_redis_url

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
BROKER_ENV = "GSY_FLEET_BROKER_URL"
RESTORE_SWEEP_S = 1  # see the module docstring: one cheap ZRANGE per worker and second
TASK_SERIALIZER = "gsy-json"
register(
    TASK_SERIALIZER, json_codec.dumps, json_codec.loads, content_type="application/x-gsy-json", content_encoding="utf-8"
)


def broker_url() -> str:
    """Env ``GSY_FLEET_BROKER_URL``, else the Redis of env ``REDIS_URL``, else the local default."""
    return os.environ.get(BROKER_ENV) or resolve_redis_url(default=DEFAULT_BROKER)


def make_app(broker: str | None = None) -> Celery:
    app = Celery("gsy_fleet", broker=broker or broker_url(), include=["workers.tasks", "workers.operator_tasks"])
    app.conf.update(
        task_serializer=TASK_SERIALIZER,
        result_serializer="json",
        event_serializer="json",
        accept_content=[TASK_SERIALIZER, "json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue="shard-0",
        task_send_sent_event=True,
        worker_send_task_events=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": int(os.environ.get("GSY_FLEET_VISIBILITY_TIMEOUT", "30")),
            "unacked_restore_interval": RESTORE_SWEEP_S,
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
    )
    return app


@functools.cache
def default_app() -> Celery:
    """The app ``celery -A workers`` runs (broker from the environment), built on first use.

    Not at import: loading a fleet file or a strategy must not construct a Celery app. Tasks are
    ``shared_task``s, so every app made here (this one, or a dispatcher's ``make_app(url)``)
    knows them.
    """
    return make_app()
