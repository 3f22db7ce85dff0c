"""What the facade remembers per exchange run, kept in Redis so a facade restart loses nothing.

Keys live under ``gsy-e-sdk:http:<run id>:`` (the run id changes with every exchange start):
which user owns which aggregator and by what name, which devices selected each aggregator,
which user registered which area directly, the exchange's current slot, and the answers to
recent mutating requests by (user, transaction id), so a retried request is answered again
instead of being applied twice, and one user's id never returns another user's answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, cast

import redis

logger = logging.getLogger(__name__)

# Answers kept for retried requests: the newest ones within both bounds (they are small:
# aggregator create/delete/select/unselect results).
ANSWERS_KEPT = 10_000
ANSWER_BYTES_KEPT = 8 * 1024 * 1024
LARGEST_ANSWER_KEPT = 64 * 1024

# KEYS: answers hash, insertion-order list, byte counter. ARGV: field, answer, count bound, byte bound.
# One script, so concurrent requests (or facades) never make the counter drift from the hash.
_REMEMBER = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
local total = redis.call('INCRBY', KEYS[3], string.len(ARGV[2]))
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[3]) or total > tonumber(ARGV[4]) do
  local oldest = redis.call('LPOP', KEYS[2])
  local answer = redis.call('HGET', KEYS[1], oldest)
  redis.call('HDEL', KEYS[1], oldest)
  if answer then total = redis.call('DECRBY', KEYS[3], string.len(answer)) end
end
return 1
"""


@dataclass(frozen=True)
class AggregatorRecord:
    uuid: str
    name: str
    user: str


def _prefix(run_id: str) -> str:
    return f"gsy-e-sdk:http:{run_id}:"


def publish_spot_slot(client: redis.Redis, run_id: str, slot_index: int) -> None:
    """Called by the exchange at every slot start: REST forecasts in Wh name "the next slot"."""
    client.set(_prefix(run_id) + "spot-slot", slot_index)


class FacadeState:
    def __init__(self, client: redis.Redis, run_id: str) -> None:
        """``client`` decodes responses: every read below returns ``str``."""
        self.client = client
        self.prefix = _prefix(run_id)

    # Aggregators -----------------------------------------------------------------------------
    def add_aggregator(self, record: AggregatorRecord) -> None:
        self.client.hset(
            self.prefix + "aggregators", record.uuid, json.dumps({"name": record.name, "user": record.user})
        )

    def aggregator(self, aggregator_uuid: str) -> AggregatorRecord | None:
        raw = self.client.hget(self.prefix + "aggregators", aggregator_uuid)
        if raw is None:
            return None
        data = json.loads(raw)
        return AggregatorRecord(aggregator_uuid, data["name"], data["user"])

    def aggregators(self, user: str | None = None) -> list[AggregatorRecord]:
        """In creation order is not kept by a hash; sorted by name then uuid for stable lists."""
        records = [
            AggregatorRecord(uuid, data["name"], data["user"])
            for uuid, data in ((uuid, json.loads(raw)) for uuid, raw in self._hash(self.prefix + "aggregators").items())
        ]
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
        return sorted(cast(set[str], self.client.smembers(self._devices_key(aggregator_uuid))))

    def owners(self) -> dict[str, str]:
        """device uuid -> aggregator uuid."""
        return self._hash(self.prefix + "owner")

    def _hash(self, key: str) -> dict[str, str]:
        return cast(dict[str, str], self.client.hgetall(key))

    def _devices_key(self, aggregator_uuid: str) -> str:
        return f"{self.prefix}devices:{aggregator_uuid}"

    # Who controls an area --------------------------------------------------------------------
    def controller(self, device_uuid: str) -> tuple[str | None, str | None]:
        """(user, aggregator uuid) in control of an area: its aggregator's owner, else the user who
        registered it through the facade, else (None, None)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.prefix + "owner", device_uuid)
        pipe.hget(self.prefix + "claims", device_uuid)
        aggregator_uuid, claimant = pipe.execute()
        if aggregator_uuid is not None:
            record = self.aggregator(aggregator_uuid)
            if record is not None:
                return record.user, record.uuid
        return claimant, None

    def claim(self, device_uuid: str, user: str) -> bool:
        """Record ``user`` as the area's direct user; False when another user holds it."""
        key = self.prefix + "claims"
        return bool(self.client.hsetnx(key, device_uuid, user)) or self.client.hget(key, device_uuid) == user

    def claims(self) -> dict[str, str]:
        """area uuid -> user who registered it through the facade."""
        return self._hash(self.prefix + "claims")

    def release_claim(self, device_uuid: str, user: str | None = None) -> None:
        """Forget the area's direct user (only if it is ``user``, when given)."""
        key = self.prefix + "claims"
        if user is None or self.client.hget(key, device_uuid) == user:
            self.client.hdel(key, device_uuid)

    # The exchange's clock --------------------------------------------------------------------
    def spot_slot_index(self) -> int | None:
        """Index of the slot running now; None before the first slot has started."""
        raw = self.client.get(self.prefix + "spot-slot")
        return int(raw) if raw is not None else None

    # Idempotent requests ---------------------------------------------------------------------
    @staticmethod
    def _answer_field(user: str, transaction_id: str) -> str:
        return json.dumps([user, transaction_id])

    def answered(self, user: str, transaction_id: str) -> tuple[int, Any] | None:
        raw = self.client.hget(self.prefix + "answers", self._answer_field(user, transaction_id))
        if raw is None:
            return None
        status, body = json.loads(raw)
        return status, body

    def remember(self, user: str, transaction_id: str, status: int, body: Any) -> None:
        answer = json.dumps([status, body])
        if len(answer) > LARGEST_ANSWER_KEPT:
            logger.warning(
                "not keeping a %d-byte answer for retries of transaction %.100s", len(answer), transaction_id
            )
            return
        self.client.eval(
            _REMEMBER,
            3,
            self.prefix + "answers",
            self.prefix + "answer-order",
            self.prefix + "answer-bytes",
            self._answer_field(user, transaction_id),
            answer,
            ANSWERS_KEPT,
            ANSWER_BYTES_KEPT,
        )
