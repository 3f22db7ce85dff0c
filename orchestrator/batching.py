"""Which slices travel together: one Celery message per shard and event kind per burst. Pure.

The exchange publishes an event to every aggregator at once, so the dispatcher receives them as
a burst. Sending each aggregator slice as its own task cost a broker round trip, a task-sent
event and several encodes each (100 per event at 10,000 assets); a message per shard costs that
once. A shard's message goes out as soon as it holds ``max_assets`` assets, so workers start on
the first part of a big burst while the dispatcher prepares the rest; the remainder goes when
the burst has passed (the dispatcher's quiet gap) or has waited ``max_age_s``.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Message(NamedTuple):
    task_name: str
    shard: int
    slices: list[dict[str, Any]]  # SliceTask payloads, in arrival order


def slice_size(payload: dict[str, Any]) -> int:
    return len(payload.get("assets") or ()) + len(payload.get("markets") or ())


class ShardBuffer:
    """Slices waiting for their shard's message, per (task name, shard), in arrival order."""

    def __init__(self, max_assets: int, max_age_s: float) -> None:
        self.max_assets = max_assets
        self.max_age_s = max_age_s
        self._groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._sizes: dict[tuple[str, int], int] = {}
        self._since: float | None = None  # when the oldest waiting slice arrived

    def __bool__(self) -> bool:
        return bool(self._groups)

    def add(self, task_name: str, payload: dict[str, Any], now: float) -> list[Message]:
        """Queue one slice; returns the messages that are due (full, or the burst too old)."""
        key = (task_name, payload["shard"])
        size = slice_size(payload)
        due = []
        if key in self._groups and self._sizes[key] + size > self.max_assets:
            due.append(self._pop(key))  # a slice is never split: the full message goes first
        self._groups.setdefault(key, []).append(payload)
        self._sizes[key] = self._sizes.get(key, 0) + size
        if self._since is None:
            self._since = now
        if self._sizes[key] >= self.max_assets:
            due.append(self._pop(key))
        if self._since is not None and now - self._since > self.max_age_s:
            due.extend(self.drain())
        return due

    def drain(self) -> list[Message]:
        """Every waiting slice, one message per (task name, shard)."""
        messages = [self._pop(key) for key in list(self._groups)]
        self._since = None
        return messages

    def _pop(self, key: tuple[str, int]) -> Message:
        self._sizes.pop(key)
        slices = self._groups.pop(key)
        if not self._groups:
            self._since = None
        return Message(key[0], key[1], slices)
