"""Which shard queue handles which slice of which aggregator. Pure functions.

An aggregator's assets are sorted and cut into slices of at most ``max_assets_per_task``; a
stable hash of the aggregator name picks the shard of its first slice and further slices go
round-robin from there, so one big aggregator spreads evenly and every placement survives
restarts and runs on any machine (no Python ``hash()``, which is salted per process).

A large fleet may also be split between several dispatchers, each attaching and serving only the
aggregators it owns (``aggregators_for_dispatcher``), so no single process decodes every event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


def stable_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def queue_name(shard: int) -> str:
    return f"shard-{shard}"


@dataclass(frozen=True)
class Slice:
    aggregator: str
    index: int
    shard: int
    assets: tuple[str, ...]  # asset uuids
    markets: tuple[str, ...] = ()

    @property
    def queue(self) -> str:
        return queue_name(self.shard)


def plan_slices(
    aggregator: str, assets: list[str], markets: list[str], shards: int, max_assets_per_task: int
) -> list[Slice]:
    """Cut one aggregator into slices pinned to shards; markets ride with the first slice."""
    if shards < 1 or max_assets_per_task < 1:
        raise ValueError("shards and max_assets_per_task must be at least 1")
    ordered = sorted(assets)
    chunks = [
        tuple(ordered[start : start + max_assets_per_task]) for start in range(0, len(ordered), max_assets_per_task)
    ] or [()]
    first = stable_hash(aggregator) % shards
    return [
        Slice(aggregator, index, (first + index) % shards, chunk, tuple(sorted(markets)) if index == 0 else ())
        for index, chunk in enumerate(chunks)
    ]


def shards_for_worker(worker_index: int, workers: int, shards: int) -> list[int]:
    """The shard queues local worker ``worker_index`` of ``workers`` consumes."""
    return [shard for shard in range(shards) if shard % workers == worker_index % workers] or [worker_index % shards]


def aggregators_for_dispatcher(names: Iterable[str], index: int, count: int) -> list[str]:
    """The aggregators dispatcher ``index`` of ``count`` owns, sorted: every ``count``-th of the
    sorted names from the ``index``-th. Depends on the fleet file's names alone (not their order),
    so every dispatcher computes the same split on its own; each aggregator has exactly one owner
    and owners' counts differ by at most one."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"dispatcher index must be in 0..{count - 1} and count at least 1, got {index} of {count}")
    return sorted(set(names))[index::count]
