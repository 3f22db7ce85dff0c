"""Which live worker should consume which shard queue. Pure functions, no Celery.

Every worker has home queues: the shards it was started with (``-Q``, from
``GSY_FLEET_WORKER_INDEX/COUNT`` on a worker host). A queue is consumed by the live workers whose
home it is; a queue whose home workers are all lost (or that no worker was ever started for) is
lent to one live worker, the one with the fewest queues, preferring a worker that already holds
it so nothing moves twice. A lent queue goes back as soon as one of its home workers is alive:
the borrower stops consuming it. A worker's home queues are never taken from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConsumerPlan:
    """What to change: (node, queue) pairs to start and to stop consuming."""

    add: list[tuple[str, str]] = field(default_factory=list)
    cancel: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.cancel)


def plan_consumers(
    queues: Iterable[str], homes: Mapping[str, frozenset[str]], consuming: Mapping[str, Iterable[str]]
) -> ConsumerPlan:
    """Changes that make every queue consumed as the module docstring says.

    ``homes`` and ``consuming`` hold the live workers only (node name -> queues); a worker known
    to be alive but whose home is not known yet must be left out of both.
    """
    wanted = sorted(set(queues))
    now = {node: set(consuming.get(node, ())) for node in homes}
    load = {node: len(homes[node]) for node in homes}
    target: dict[str, set[str]] = {node: set(homes[node]) for node in homes}
    for queue in wanted:
        if any(queue in home for home in homes.values()) or not homes:
            continue
        holders = sorted(node for node in homes if queue in now[node])
        candidates = holders or sorted(homes)
        chosen = min(candidates, key=lambda node: (load[node], node))
        target[chosen].add(queue)
        load[chosen] += 1
    add = [(node, queue) for node in sorted(homes) for queue in sorted(target[node] - now[node])]
    # Only shard queues this plan manages are ever cancelled (a worker may consume others).
    managed = set(wanted)
    cancel = [(node, queue) for node in sorted(homes) for queue in sorted((now[node] - target[node]) & managed)]
    return ConsumerPlan(add, cancel)


def lost_nodes(last_seen: Mapping[str, float], now: float, silence: float) -> set[str]:
    """Workers not heard from for more than ``silence`` seconds."""
    return {node for node, seen in last_seen.items() if now - seen > silence}
