"""A running exchange keeps serving after garbage on every channel it reads (real Redis)."""

from __future__ import annotations

import pytest

from gsy_e_sdk.wire import channels
from tests.integration.raw_client import RawClient

pytestmark = pytest.mark.integration

GARBAGE = [
    '{"aggregator_uuid": [], "transaction_id": "t", "batch_commands": {}}',
    "not json",
    "[1, 2]",
    "null",
    '{"aggregator_uuid": {"a": 1}, "transaction_id": ["x"]}',
    '{"type": ["CREATE"], "transaction_id": "t2"}',
    "\u0000",
    '{"transaction_id": 5, "name": {"n": []}}',
]


def test_exchange_survives_garbage_then_still_answers(start_exchange, redis_url: str) -> None:
    exchange = start_exchange("external_devices.json", "--duration", "1h", "--pace", "2")
    client = RawClient(redis_url)
    try:
        for channel in (
            channels.batch_commands(),
            channels.AGGREGATOR_COMMANDS,
            channels.register("pv"),
            channels.area_command("pv", "offer"),
            channels.simulation_control("pause"),
        ):
            for payload in GARBAGE:
                client.publish(channel, payload)
        answer = client.request(channels.register("pv"), {"name": "pv"}, channels.register_response("pv"))
        assert answer["registered"] is True
        assert exchange.process.poll() is None
    finally:
        client.close()
