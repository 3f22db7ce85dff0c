"""Per-asset strategy state and fleet metrics in Redis, so any worker can take over any shard."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, cast

import redis
from redis.typing import EncodableT, FieldT

from gsy_e_sdk.wire import json_codec

WAIT_SLICE_S = 1.0


Position = tuple[str | None, int]  # (slot, completion %) of an aggregator's last market/tick event


class Snapshot(NamedTuple):
    states: dict[str, dict]  # strategy state per device
    controls: dict[str, dict]  # operator controls per device
    current_slot: str | None  # the exchange's spot slot as the dispatcher last saw it


class StateStore:
    def __init__(self, client: redis.Redis, fleet: str) -> None:
        self.client = client
        self.prefix = f"gsy:fleet:{fleet}"

    def _key(self, asset_uuid: str) -> str:
        return f"{self.prefix}:state:{asset_uuid}"

    def load(self, asset_uuids: list[str]) -> tuple[dict[str, dict], dict[str, dict]]:
        """(strategy states, operator controls) of these devices, in one round trip."""
        if not asset_uuids:
            return {}, {}
        states, controls, _ = self.snapshot(asset_uuids)
        return states, controls

    def snapshot(self, asset_uuids: list[str]) -> Snapshot:
        """States and controls of these devices and the current slot, in one round trip."""
        keys = [self._key(uuid) for uuid in asset_uuids] + [self._control_key(uuid) for uuid in asset_uuids]
        *values, slot = self.client.mget([*keys, self._slot_key()])
        count = len(asset_uuids)
        states = {
            uuid: json_codec.loads(value) for uuid, value in zip(asset_uuids, values[:count], strict=True) if value
        }
        controls = {
            uuid: json_codec.loads(value) for uuid, value in zip(asset_uuids, values[count:], strict=True) if value
        }
        return Snapshot(states, controls, slot.decode() if isinstance(slot, bytes) else slot)

    def _slot_key(self) -> str:
        return f"{self.prefix}:current_slot"

    def current_slot(self) -> str | None:
        """The exchange's spot slot as the dispatcher last saw it; None before the first market event."""
        slot = self.client.get(self._slot_key())
        return slot.decode() if isinstance(slot, bytes) else slot

    def set_current_slot(self, slot: str) -> None:
        """The dispatcher saw the exchange open ``slot``: tasks of earlier slots are now stale."""
        self.client.set(self._slot_key(), slot)

    def save(self, states: dict[str, dict], last_events: Iterable[tuple[str, int, dict]] = ()) -> None:
        """Store new states and, for ``resync``, each slice's last event (aggregator uuid, slice, task)."""
        values = {self._key(uuid): json_codec.dumpb(state) for uuid, state in states.items()}
        for aggregator_uuid, index, task in last_events:
            values[self._last_key(aggregator_uuid, index)] = json_codec.dumpb(task)
        if values:
            self.client.mset(values)

    def _last_key(self, aggregator_uuid: str, index: int) -> str:
        return f"{self.prefix}:last:{aggregator_uuid}:{index}"

    def last_slice(self, aggregator_uuid: str, index: int) -> dict | None:
        raw = self.client.get(self._last_key(aggregator_uuid, index))
        return json_codec.loads(raw) if raw else None

    # ------------------------------------------------------------------ operator controls
    def _control_key(self, device_uuid: str) -> str:
        return f"{self.prefix}:control:{device_uuid}"

    def update_controls(
        self, device_uuids: list[str], paused: bool | None = None, params: dict[str, Any] | None = None
    ) -> None:
        """Merge into each device's controls; a WATCH transaction so concurrent updates both land."""
        for uuid in device_uuids:
            key = self._control_key(uuid)
            with self.client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(key)
                        raw = pipe.get(key)
                        control = json_codec.loads(raw) if raw else {}
                        if paused is not None:
                            control["paused"] = paused
                        if params:
                            control["params"] = {**control.get("params", {}), **params}
                        pipe.multi()
                        pipe.set(key, json_codec.dumpb(control))
                        pipe.execute()
                        break
                    except redis.WatchError:
                        continue

    def push_result(self, command_id: str, result: dict[str, Any]) -> None:
        key = f"{self.prefix}:operator:{command_id}"
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(key, json_codec.dumpb(result))
        pipe.expire(key, 3600)
        pipe.execute()

    def wait_results(self, command_id: str, count: int, timeout: float) -> list[dict[str, Any]]:
        key = f"{self.prefix}:operator:{command_id}"
        results: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(results) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{len(results)} of {count} answers to operator command {command_id} within {timeout:g} s"
                )
            # Short blocking pops: one as long as the client's socket timeout would be cut by the
            # socket and retried by redis-py from the start, far past the deadline.
            popped = self.client.blpop([key], timeout=min(left, WAIT_SLICE_S))
            if popped is not None:
                results.append(json_codec.loads(popped[1]))
        return results

    # ------------------------------------------------------------------ metrics
    # The last market/tick event dispatched per aggregator, in Redis so it outlives the
    # dispatcher (``reset`` clears it with the rest of the fleet's keys).
    def load_positions(self) -> dict[str, Position]:
        positions: dict[str, Position] = {}
        for uuid, raw in self.client.hgetall(f"{self.prefix}:sequence").items():
            try:
                slot, completion = json_codec.loads(raw)
                positions[uuid.decode() if isinstance(uuid, bytes) else uuid] = (
                    None if slot is None else str(slot),
                    int(completion),
                )
            except (ValueError, TypeError):
                continue  # an unreadable position only costs one resync
        return positions

    def save_positions(self, positions: dict[str, Position]) -> None:
        encoded = {uuid: json_codec.dumpb(list(position)) for uuid, position in positions.items()}
        # cast: redis' Mapping is invariant in its key type, so dict[str, bytes] is refused.
        self.client.hset(f"{self.prefix}:sequence", mapping=cast(dict[FieldT, EncodableT], encoded))

    def record_task(
        self, shard: int, submitted: int, skipped: int, worker: str = "", slices: int = 1, failed: int = 0
    ) -> None:
        """A worker finished a task of ``slices`` slices; ``failed`` batches never reached the exchange."""
        pipe = self.client.pipeline(transaction=False)
        counters = f"{self.prefix}:counters"
        if worker:
            pipe.hincrby(f"{self.prefix}:workers", f"{worker}|shard-{shard}", 1)
        pipe.hincrby(counters, "commands_submitted", submitted)
        pipe.hincrby(counters, "assets_skipped", skipped)
        pipe.hincrby(counters, f"tasks_shard-{shard}", 1)
        pipe.hincrby(counters, "tasks_done", 1)
        pipe.hincrby(counters, "slices_done", slices)
        if failed:
            pipe.hincrby(counters, "batches_failed", failed)
        pipe.execute()

    def record_answers(self, answers: list[tuple[int, float, int, int]]) -> None:
        """Batches the exchange answered, as (shard, event received -> answer in s, commands
        accepted, rejected), in one round trip."""
        if not answers:
            return
        by_shard: dict[int, list[float]] = {}
        for shard, latency, _, _ in answers:
            by_shard.setdefault(shard, []).append(round(latency, 6))
        pipe = self.client.pipeline(transaction=False)
        for shard, latencies in by_shard.items():
            pipe.rpush(f"{self.prefix}:latency:shard-{shard}", *latencies)
            pipe.ltrim(f"{self.prefix}:latency:shard-{shard}", -20000, -1)
        pipe.hincrby(f"{self.prefix}:counters", "commands_accepted", sum(answer[2] for answer in answers))
        pipe.hincrby(f"{self.prefix}:counters", "commands_rejected", sum(answer[3] for answer in answers))
        pipe.execute()

    def latencies(self) -> dict[str, list[float]]:
        result = {}
        for key in self.client.scan_iter(f"{self.prefix}:latency:*"):
            name = key.decode() if isinstance(key, bytes) else key
            result[name.rsplit(":", 1)[1]] = [float(v) for v in self.client.lrange(key, 0, -1)]
        return result

    def worker_shards(self) -> dict[str, set[str]]:
        """Which shard queues each worker has handled tasks from."""
        result: dict[str, set[str]] = {}
        for field in self.client.hkeys(f"{self.prefix}:workers"):
            worker, shard = (field.decode() if isinstance(field, bytes) else field).split("|")
            result.setdefault(worker, set()).add(shard)
        return result

    def record_failover(self, event: dict[str, Any]) -> None:
        """One change of who consumes which shard queue (``orchestrator.failover``); the last 1,000 kept."""
        key = f"{self.prefix}:failover"
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(key, json_codec.dumpb(event))
        pipe.ltrim(key, -1000, -1)
        pipe.hincrby(f"{self.prefix}:counters", f"failover_{event.get('event', 'other')}", 1)
        pipe.execute()

    def failovers(self) -> list[dict[str, Any]]:
        return [json_codec.loads(raw) for raw in self.client.lrange(f"{self.prefix}:failover", 0, -1)]

    def counters(self) -> dict[str, int]:
        raw = self.client.hgetall(f"{self.prefix}:counters")
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    def reset(self) -> None:
        keys = list(self.client.scan_iter(f"{self.prefix}:*"))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start : start + 1000])

    def incr(self, counter: str, amount: int = 1) -> None:
        self.client.hincrby(f"{self.prefix}:counters", counter, amount)

    def record_trades(self, count: int, energy: float) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(f"{self.prefix}:counters", "trades", count)
        pipe.hincrbyfloat(f"{self.prefix}:counters_float", "energy_traded_kWh", energy)
        pipe.execute()

    def meta(self, field: str, entries: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The fleet's metadata ``field`` (e.g. "placements": device name -> where it lives), as
        its dispatchers published it ({} before any did); with ``entries``, publish those.

        One Redis hash per field, one hash field per entry: each of several dispatchers, owning
        some of the fleet's aggregators, adds its own entries (replacing only those of the same
        keys), so readers see the whole fleet's."""
        key = f"{self.prefix}:meta:{field}"
        if entries is not None:
            if entries:
                encoded = {name: json_codec.dumpb(value) for name, value in entries.items()}
                # cast: redis' Mapping is invariant in its key type, so dict[str, bytes] is refused.
                self.client.hset(key, mapping=cast(dict[FieldT, EncodableT], encoded))
            return dict(entries)
        return {
            (name.decode() if isinstance(name, bytes) else name): json_codec.loads(raw)
            for name, raw in self.client.hgetall(key).items()
        }
