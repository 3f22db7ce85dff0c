"""Strict reference mode: the local exchange refuses what crashes the reference exchange (REDIS.md 11.1).

The reference exchange passes an order's ``time_slot`` string through; when such a PV offer
trades it dies (``KeyError: '2025-06-01T03:15'``). In strict mode (``--strict-reference`` or
``GSY_EXCHANGE_STRICT_REFERENCE=1``) such orders get an error, so a client tested against the
local exchange cannot crash the reference one; by default they are accepted. Either way the
summary counts them.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.raw_client import RawClient
from tests.integration.test_exchange_redis import AGG_EVENTS, _batch, _setup_aggregator

pytestmark = pytest.mark.integration
SLOT = "2025-06-01T12:00"  # the first slot; the PV produces at noon


@pytest.fixture()
def client(redis_url: str) -> RawClient:
    raw = RawClient(redis_url)
    yield raw
    raw.close()


def _orders_with_and_without_time_slot(start_exchange, client: RawClient, results, env: dict[str, str]) -> dict:
    """Bids in a batch (load, through an aggregator) and direct offers (pv, REDIS.md 9), each once
    with ``time_slot`` naming the spot slot and once with null; their answers and the summary."""
    exchange = start_exchange(
        "external_devices.json",
        "--duration",
        "30m",
        "--tick-length",
        "90s",
        "--pace",
        "2",
        "--start-when-selected",
        "1",
        "--start-date",
        SLOT,
        "--results",
        str(results),
        env=env,
    )
    client.request("pv/register_participant", {"name": "pv"}, "pv/response/register_participant")
    aggregator, devices = _setup_aggregator(client, ["load"])
    _, market = client.wait_for(lambda ch, data: ch == AGG_EVENTS.format(aggregator) and data.get("event") == "market")
    assert market["market_slot"] == SLOT
    # Prices nothing meets, so the orders stay open and the run's trades do not depend on timing.
    batch = _batch(
        client,
        aggregator,
        {
            devices["load"]: [
                {"type": "bid", "energy": 0.001, "price": 0.0001, "time_slot": SLOT},
                {"type": "bid", "energy": 0.001, "price": 0.0001, "time_slot": None},
            ]
        },
    )
    direct = [
        client.request(
            "pv/offer",
            {"energy": 0.01, "price": 1.0, "replace_existing": False, "time_slot": slot},
            "pv/response/offer",
        )
        for slot in (SLOT, None)
    ]
    assert exchange.wait(30) == 0
    return {
        "batch": batch["responses"][devices["load"]],
        "direct": direct,
        "summary": json.loads((results / "summary.json").read_text()),
    }


def test_strict_mode_refuses_orders_naming_the_spot_slot(start_exchange, client, tmp_path):
    run = _orders_with_and_without_time_slot(
        start_exchange, client, tmp_path / "results", {"GSY_EXCHANGE_STRICT_REFERENCE": "1"}
    )
    for named, null in (run["batch"], run["direct"]):
        assert named["status"] == "error" and null["status"] == "ready"
        assert "REDIS.md 11.1" in named["error_message"] and "crashes" in named["error_message"]
        assert f"time_slot '{SLOT}' names the current spot slot" in named["error_message"]
    assert run["batch"][0]["command"] == "bid" and run["direct"][0]["command"] == "offer"
    summary = run["summary"]
    assert summary["strict_reference"] is True and summary["spot_orders_naming_time_slot"] == 2
    assert summary["rejections"] == {"time_slot names the spot slot": 2}
    assert summary["client_orders"] == 2 and summary["stopped_early"] is False


def test_by_default_orders_naming_the_spot_slot_are_accepted_and_counted(start_exchange, client, tmp_path):
    run = _orders_with_and_without_time_slot(start_exchange, client, tmp_path / "results", {})
    assert [entry["status"] for entry in run["batch"] + run["direct"]] == ["ready"] * 4
    summary = run["summary"]
    assert summary["strict_reference"] is False and summary["spot_orders_naming_time_slot"] == 2
    assert summary["rejections"] == {}
    assert summary["client_orders"] == 4
