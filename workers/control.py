"""A worker's answer to the failover's question: which shard queues are yours, and which do you consume?

``add_consumer`` and ``cancel_consumer`` (Celery's remote control) change what a worker
consumes; what it was started with (``-Q``) is its home, and only the worker itself knows it
after a dispatcher restart. So it remembers its queues once it is ready, before anybody could
have lent it another, and answers the ``fleet_queues`` inspect command with both lists.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready
from celery.worker.control import inspect_command

_home: list[str] = []


def _queue_names(consumer: Any) -> list[str]:
    task_consumer = getattr(consumer, "task_consumer", None)
    return sorted(queue.name for queue in task_consumer.queues) if task_consumer else []


@worker_ready.connect
def _remember_home(sender: Any = None, **_: Any) -> None:
    _home[:] = _queue_names(sender)


@inspect_command()
def fleet_queues(state: Any) -> dict[str, list[str]]:
    """``{"home": [...], "consuming": [...]}`` of this worker (home empty until it is ready)."""
    return {"home": list(_home), "consuming": _queue_names(state.consumer)}
