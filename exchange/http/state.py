"""What the facade remembers per exchange run, kept in Redis so a facade restart loses nothing.

Keys live under ``gsy-e-sdk:http:<run id>:`` (the run id changes with every exchange start):
which user owns which aggregator and by what name, which devices selected each aggregator, and
the answers to recent mutating requests by transaction id, so a retried request is answered
again instead of being applied twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

TRANSACTION_TTL_S = 3600


@dataclass(frozen=True)
class AggregatorRecord:
    uuid: str
    name: str
    user: str


class FacadeState:
    def __init__(self, client: redis.Redis, run_id: str) -> None:
        self.client = client
        self.prefix = f"gsy-e-sdk:http:{run_id}:"

    # Aggregators -----------------------------------------------------------------------------
    def add_aggregator(self, record: AggregatorRecord) -> None:
        self.client.hset(self.prefix + "aggregators", record.uuid,
                         json.dumps({"name": record.name, "user": record.user}))

    def aggregator(self, aggregator_uuid: str) -> AggregatorRecord | None:
        raw = self.client.hget(self.prefix + "aggregators", aggregator_uuid)
        if raw is None:
            return None
        data = json.loads(raw)
        return AggregatorRecord(aggregator_uuid, data["name"], data["user"])

    def aggregators(self, user: str | None = None) -> list[AggregatorRecord]:
        """In creation order is not kept by a hash; sorted by name then uuid for stable lists."""
        records = [AggregatorRecord(uuid, data["name"], data["user"])
                   for uuid, data in ((uuid, json.loads(raw)) for uuid, raw in
                                      self.client.hgetall(self.prefix + "aggregators").items())]
        return sorted((r for r in records if user is None or r.user == user), key=lambda r: (r.name, r.uuid))

    def remove_aggregator(self, aggregator_uuid: str) -> None:
        devices = self.devices(aggregator_uuid)
        pipe = self.client.pipeline()
        pipe.hdel(self.prefix + "aggregators", aggregator_uuid)
        pipe.delete(self._devices_key(aggregator_uuid))
        if devices:
            pipe.hdel(self.prefix + "owner", *devices)
        pipe.execute()

    # Selections ------------------------------------------------------------------------------
    def select(self, aggregator_uuid: str, device_uuid: str) -> None:
        pipe = self.client.pipeline()
        pipe.sadd(self._devices_key(aggregator_uuid), device_uuid)
        pipe.hset(self.prefix + "owner", device_uuid, aggregator_uuid)
        pipe.execute()

    def unselect(self, aggregator_uuid: str, device_uuid: str) -> None:
        pipe = self.client.pipeline()
        pipe.srem(self._devices_key(aggregator_uuid), device_uuid)
        pipe.hdel(self.prefix + "owner", device_uuid)
        pipe.execute()

    def devices(self, aggregator_uuid: str) -> list[str]:
        return sorted(self.client.smembers(self._devices_key(aggregator_uuid)))

    def owners(self) -> dict[str, str]:
        """device uuid -> aggregator uuid."""
        return dict(self.client.hgetall(self.prefix + "owner"))

    def _devices_key(self, aggregator_uuid: str) -> str:
        return f"{self.prefix}devices:{aggregator_uuid}"

    # Idempotent requests ---------------------------------------------------------------------
    def answered(self, transaction_id: str) -> tuple[int, Any] | None:
        raw = self.client.get(self.prefix + "tx:" + transaction_id)
        if raw is None:
            return None
        status, body = json.loads(raw)
        return status, body

    def remember(self, transaction_id: str, status: int, body: Any) -> None:
        self.client.set(self.prefix + "tx:" + transaction_id, json.dumps([status, body]), ex=TRANSACTION_TTL_S)
