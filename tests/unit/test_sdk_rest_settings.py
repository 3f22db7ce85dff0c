"""A REST client without a simulation id stops at once, naming the variable (no retries first)."""

from __future__ import annotations

import time

import pytest

from gsy_e_sdk.aggregator import Aggregator
from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
from gsy_e_sdk.rest_market import RestMarketClient


@pytest.mark.parametrize(
    "build", [lambda: Aggregator("buyer"), lambda: RestAssetClient("a-uuid"), lambda: RestMarketClient("m-uuid")]
)
def test_a_missing_simulation_id_is_an_immediate_clear_error(monkeypatch, build):
    monkeypatch.delenv("API_CLIENT_SIMULATION_ID", raising=False)
    monkeypatch.setenv("API_CLIENT_USERNAME", "me@example.com")
    monkeypatch.setenv("API_CLIENT_PASSWORD", "secret-password")
    # A domain that would take minutes of retries to give up on, were it tried.
    monkeypatch.setenv("API_CLIENT_DOMAIN_NAME", "http://no-such-host.invalid")
    started = time.monotonic()
    with pytest.raises(ValueError, match="API_CLIENT_SIMULATION_ID is not set"):
        build()
    assert time.monotonic() - started < 2
