"""Attach a fleet to the exchange: resolve names, create or re-attach aggregators, select devices.

Everything an operator would otherwise find out mid-run is checked first: a configured name or
pattern the exchange does not know, or a device another aggregator already controls, stops the
start with one error listing all of them. Aggregator uuids derive from (fleet, aggregator name)
under the fleet's key, so a restarted dispatcher re-attaches to the same aggregators instead of
creating duplicates, and nobody without the key can predict (and pre-empt) them.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gsy_e_sdk.wire import channels
from gsy_e_sdk.wire.pending import new_transaction_id
from gsy_e_sdk.wire.redis_connection import RedisConnection
from gsy_e_sdk.wire.slug import slugify
from orchestrator.config import FleetConfig, FleetConfigError
from orchestrator.fleet_key import fleet_key, keyed_uuid

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = 20.0
REGISTER_SUFFIX = "/register_participant"
_GLOB = re.compile(r"[*?[]")  # fnmatch's wildcards


def aggregator_uuid(key: bytes, fleet: str, aggregator: str) -> str:
    return keyed_uuid(key, f"aggregator:{fleet}/{aggregator}")


@dataclass
class AttachedAggregator:
    name: str
    uuid: str
    assets: dict[str, str] = field(default_factory=dict)  # device uuid -> asset name
    markets: dict[str, str] = field(default_factory=dict)  # device uuid -> market slug


# Called once the aggregators and their devices are known, before any device is selected.
BeforeSelect = Callable[[list[AttachedAggregator]], None]


def discover_prefixes(connection: RedisConnection) -> set[str]:
    """Channel prefixes of every area the exchange lets clients register (assets and markets)."""
    names = connection.redis.pubsub_channels(f"*{REGISTER_SUFFIX}")
    decoded = (name.decode() if isinstance(name, bytes) else name for name in names)
    return {name[: -len(REGISTER_SUFFIX)] for name in decoded}


def resolve(patterns: list[str], prefixes: set[str], market: bool) -> tuple[list[str], list[str]]:
    """(matched prefixes in order, patterns that match nothing). Markets match by slug too.

    A plain name is looked up, only a glob scans every prefix: fleets listing thousands of
    assets by name attach in linear time.
    """
    matched: dict[str, None] = {}  # ordered, with O(1) membership
    unknown: list[str] = []
    for pattern in patterns:
        candidates = [pattern, slugify(pattern)] if market else [pattern]
        hits: set[str] = set()
        for candidate in candidates:
            if _GLOB.search(candidate):
                hits.update(prefix for prefix in prefixes if fnmatch.fnmatchcase(prefix, candidate))
            elif candidate in prefixes:
                hits.add(candidate)
        if not hits:
            unknown.append(pattern)
        matched.update(dict.fromkeys(sorted(hits)))
    return list(matched), unknown


Plan = list[tuple[AttachedAggregator, list[str], list[str]]]


def plan_fleet(config: FleetConfig, prefixes: set[str]) -> Plan:
    """Which known areas each aggregator gets; one FleetConfigError listing every problem.

    ``prefixes`` are asset names and market slugs the exchange offers. The aggregators' uuids
    are left empty: how they are found or created depends on the exchange's protocol.
    """
    plan: Plan = []
    problems: list[str] = []
    claimed: dict[str, str] = {}
    for aggregator in config.aggregators:
        assets, unknown_assets = resolve(aggregator.assets, prefixes, market=False)
        markets, unknown_markets = resolve(aggregator.markets, prefixes, market=True)
        problems += [
            f"aggregator {aggregator.name!r}: asset {name!r} is not known to the exchange" for name in unknown_assets
        ]
        problems += [
            f"aggregator {aggregator.name!r}: market {name!r} is not known to the exchange" for name in unknown_markets
        ]
        for prefix in assets + markets:
            if prefix in claimed and claimed[prefix] != aggregator.name:
                problems.append(f"{prefix!r} is claimed by aggregators {claimed[prefix]!r} and {aggregator.name!r}")
            claimed[prefix] = aggregator.name
        plan.append((AttachedAggregator(aggregator.name, ""), assets, markets))
    if problems:
        raise FleetConfigError("; ".join(problems))
    return plan


class FleetAttacher:
    def __init__(self, config: FleetConfig, connection: RedisConnection) -> None:
        self.config = config
        self.connection = connection
        self.connection.watch_aggregator_responses()
        self.connection.subscribe(pattern_handlers={"*/response/register_participant": self._on_register})

    def _on_register(self, _channel: str, payload: dict[str, Any]) -> None:
        self.connection.pending.resolve(payload.get("transaction_id"), payload)

    def _requests(self, messages: list[tuple[str, dict]]) -> list[dict]:
        """Publish all requests, then wait for every answer (one round trip for the whole fleet)."""
        pending = self.connection.pending
        futures = []
        pipe = self.connection.redis.pipeline(transaction=False)
        for channel, payload in messages:
            transaction_id = payload.setdefault("transaction_id", new_transaction_id())
            futures.append((transaction_id, pending.expect(transaction_id)))
            pipe.publish(channel, json.dumps(payload))
        pipe.execute()
        return [
            pending.wait(transaction_id, future, REQUEST_TIMEOUT, TimeoutError, "The exchange did not answer", "attach")
            for transaction_id, future in futures
        ]

    def attach(self, before_select: BeforeSelect | None = None) -> list[AttachedAggregator]:
        """Create (or re-attach) the aggregators, register the devices, call ``before_select``
        with the aggregators (uuids and devices known), then select the devices."""
        prefixes = discover_prefixes(self.connection)
        if not prefixes:
            raise FleetConfigError(
                "the exchange offers no externally controllable areas (is it running with this Redis?)"
            )
        plan = plan_fleet(self.config, prefixes)
        key = fleet_key(self.connection.redis, self.config.name)
        for attached, _, _ in plan:
            attached.uuid = aggregator_uuid(key, self.config.name, attached.name)
        self._create(plan)
        entries = self._register(plan)
        aggregators = [attached for attached, _, _ in plan]
        if before_select is not None:
            before_select(aggregators)
        self._select(entries)
        logger.info("fleet attached: %d aggregators, %d devices", len(plan), len(entries))
        return aggregators

    def _create(self, plan) -> None:
        answers = self._requests(
            [
                (
                    channels.AGGREGATOR_COMMANDS,
                    {"name": attached.name, "type": "CREATE", "transaction_id": attached.uuid},
                )
                for attached, _, _ in plan
            ]
        )
        for (attached, _, _), answer in zip(plan, answers, strict=True):
            state = "re-attached" if answer.get("status") == "error" else "created"
            logger.info("aggregator %s (%s) %s", attached.name, attached.uuid, state)

    def _register(self, plan) -> list[tuple[AttachedAggregator, str, str]]:
        """Register every device; (aggregator, prefix, device uuid) of each."""
        entries = [
            (attached, prefix, is_market)
            for attached, assets, markets in plan
            for prefix, is_market in [*((a, False) for a in assets), *((m, True) for m in markets)]
        ]
        registered = self._requests([(channels.register(prefix), {"name": prefix}) for _, prefix, _ in entries])
        devices = []
        for (attached, prefix, is_market), answer in zip(entries, registered, strict=True):
            device = answer["device_uuid"]
            (attached.markets if is_market else attached.assets)[device] = prefix
            devices.append((attached, prefix, device))
        return devices

    def _select(self, entries: list[tuple[AttachedAggregator, str, str]]) -> None:
        selections = [
            (channels.AGGREGATOR_COMMANDS, {"aggregator_uuid": attached.uuid, "type": "SELECT", "device_uuid": device})
            for attached, _, device in entries
        ]
        problems = []
        for (attached, prefix, _), answer in zip(entries, self._requests(selections), strict=True):
            if answer.get("status") == "SELECTED":
                continue
            message = str(answer.get("msg", ""))
            if message.endswith(attached.uuid):
                continue  # selected by this aggregator before a dispatcher restart
            problems.append(f"{prefix!r} could not be selected by {attached.name!r}: {message or answer}")
        if problems:
            raise FleetConfigError("; ".join(problems))
