"""Import paths and names that user scripts rely on (SDK_API.md 1)."""

import importlib
import inspect
import logging
import sys

import pytest

import gsy_e_sdk
from gsy_e_sdk import compat, constants


def test_version_and_interface():
    assert gsy_e_sdk.__version__ == "1.3.0"
    from gsy_e_sdk.redis_client_base import RedisClientBase

    assert issubclass(RedisClientBase, gsy_e_sdk.APIClientInterface)
    with pytest.raises(TypeError):
        gsy_e_sdk.APIClientInterface()


def test_public_modules_and_names_exist():
    expected = {
        "gsy_e_sdk.clients.redis_asset_client": ["RedisAssetClient"],
        "gsy_e_sdk.redis_market": ["RedisMarketClient"],
        "gsy_e_sdk.redis_aggregator": ["RedisAggregator", "RedisAggregatorAPIException"],
        "gsy_e_sdk.redis_client_base": ["RedisAPIException", "RedisClientBase"],
        "gsy_e_sdk.commands": ["ClientCommandBuffer"],
        "gsy_e_sdk.enums": ["Commands", "command_enum_to_command_name_dict", "command_enum_to_command_name"],
        "gsy_e_sdk.grid_fee_calculation": ["GridFeeCalculation"],
        "gsy_e_sdk.utils": [
            "AreaNotFoundException",
            "flatten_info_dict",
            "log_trade_info",
            "get_uuid_from_area_name_in_tree_dict",
        ],
        "gsy_e_sdk.cli": ["main", "run", "validate_general_settings_are_set", "load_client_script"],
    }
    for module_name, names in expected.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert hasattr(module, name), f"{module_name}.{name}"


def test_constructor_signatures_match_the_original():
    from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
    from gsy_e_sdk.redis_aggregator import RedisAggregator
    from gsy_e_sdk.redis_market import RedisMarketClient

    def parameters(cls):
        return list(inspect.signature(cls).parameters)

    assert parameters(RedisAssetClient) == ["area_id", "autoregister", "redis_url", "pubsub_thread"]
    assert parameters(RedisMarketClient) == ["area_id", "redis_url", "autoregister"]
    # Positional parameters as the original; keyword-only extensions after them.
    assert parameters(RedisAggregator)[:3] == ["aggregator_name", "accept_all_devices", "redis_url"]
    keyword_only = [
        name
        for name, parameter in inspect.signature(RedisAggregator).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert keyword_only == parameters(RedisAggregator)[3:] == ["aggregator_uuid", "device_uuids", "drop_stale_ticks"]


def test_rest_signatures_take_the_readme_arguments_and_keep_the_original_ones():
    from gsy_e_sdk.aggregator import Aggregator
    from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
    from gsy_e_sdk.rest_market import RestMarketClient

    def parameters(function):
        return {name: parameter.default for name, parameter in inspect.signature(function).parameters.items()}

    assert list(parameters(RestAssetClient)) == [
        "asset_uuid",
        "simulation_id",
        "domain_name",
        "websockets_domain_name",
        "autoregister",
        "start_websocket",
        "sim_api_domain_name",
    ]
    # The README's RestMarketClient(<market_uuid>, autoregister=True), after the original's four.
    assert parameters(RestMarketClient) == {
        "area_id": inspect.Parameter.empty,
        "simulation_id": None,
        "domain_name": None,
        "websockets_domain_name": None,
        "autoregister": False,
    }
    # The README's asset_client.unregister(); Redis scripts' is_blocking on every transport.
    for client in (RestAssetClient, RestMarketClient):
        assert parameters(client.unregister)["is_blocking"] is True
        assert parameters(client.register)["is_blocking"] is True
        assert parameters(client.select_aggregator)["is_blocking"] is True
    assert parameters(Aggregator.delete_aggregator)["is_blocking"] is True
    assert list(parameters(Aggregator))[:5] == [
        "aggregator_name",
        "simulation_id",
        "domain_name",
        "websockets_domain_name",
        "accept_all_devices",
    ]


def test_redis_clients_offer_the_rest_clients_direct_calls():
    from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
    from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
    from gsy_e_sdk.redis_market import RedisMarketClient
    from gsy_e_sdk.rest_market import RestMarketClient

    for redis_class, rest_class, names in (
        (RedisAssetClient, RestAssetClient, ("set_energy_forecast", "set_energy_measurement")),
        (RedisMarketClient, RestMarketClient, ("grid_fees", "last_market_dso_stats")),
    ):
        for name in names:
            assert inspect.signature(getattr(redis_class, name)) == inspect.signature(getattr(rest_class, name))


def test_auto_aggregator_is_a_library_class():
    from gsy_e_sdk.redis_aggregator import RedisAggregator

    assert issubclass(gsy_e_sdk.AutoAggregator, RedisAggregator)
    with pytest.raises(AttributeError):
        gsy_e_sdk.NoSuchThing  # noqa: B018 - the access is what raises


def test_constants():
    assert constants.LOCAL_REDIS_URL == "redis://localhost:6379"
    assert constants.MAX_WORKER_THREADS == 5
    assert constants.MIN_SLOT_COMPLETION_TICK_TRIGGER_PERCENTAGE == 10
    assert constants.DEFAULT_DOMAIN_NAME == "https://d3aweb.gridsingularity.com"


def test_compat_replaces_the_gsy_framework_names():
    assert compat.DATE_TIME_FORMAT == "YYYY-MM-DDTHH:mm"
    assert compat.TIME_FORMAT_SECONDS == "HH:mm:ss"
    assert compat.key_in_dict_and_not_none({"a": 0}, "a")
    assert not compat.key_in_dict_and_not_none({"a": None}, "a")
    assert compat.key_in_dict_and_not_none_and_greater_than_zero({"a": 0.1}, "a")
    assert not compat.key_in_dict_and_not_none_and_greater_than_zero({"a": 0}, "a")
    assert not compat.key_in_dict_and_not_none_and_greater_than_zero({}, "a")


def test_types_follow_the_run_on_redis_switch(monkeypatch):
    from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
    from gsy_e_sdk.redis_aggregator import RedisAggregator
    from gsy_e_sdk.redis_market import RedisMarketClient

    monkeypatch.setenv("API_CLIENT_RUN_ON_REDIS", "true")
    from gsy_e_sdk.types import aggregator_client_type, device_client_type, market_client_type

    assert (device_client_type, aggregator_client_type, market_client_type) == (
        RedisAssetClient,
        RedisAggregator,
        RedisMarketClient,
    )
    monkeypatch.setenv("API_CLIENT_RUN_ON_REDIS", "false")
    from gsy_e_sdk.aggregator import Aggregator
    from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
    from gsy_e_sdk.rest_market import RestMarketClient
    from gsy_e_sdk.types import aggregator_client_type, device_client_type, market_client_type

    assert (device_client_type, aggregator_client_type, market_client_type) == (
        RestAssetClient,
        Aggregator,
        RestMarketClient,
    )


def test_legacy_names(caplog):
    import d3a_api_client

    assert d3a_api_client is gsy_e_sdk
    legacy = importlib.import_module("d3a_api_client.commands")
    current = importlib.import_module("gsy_e_sdk.commands")
    assert legacy is current and current.__spec__.name == "gsy_e_sdk.commands"
    sys.modules.pop("gsy_e_sdk.redis_device", None)
    with caplog.at_level(logging.WARNING):
        from gsy_e_sdk.redis_device import RedisDeviceClient
    from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient

    assert issubclass(RedisDeviceClient, RedisAssetClient)
    assert "The RedisDeviceClient class name will be deprecated." in caplog.text


def test_gsy_framework_names_that_scripts_import():
    from gsy_framework.constants_limits import DATE_TIME_FORMAT, TIME_FORMAT_SECONDS
    from gsy_framework.utils import key_in_dict_and_not_none, key_in_dict_and_not_none_and_greater_than_zero

    assert DATE_TIME_FORMAT == "YYYY-MM-DDTHH:mm" and TIME_FORMAT_SECONDS == "HH:mm:ss"
    assert key_in_dict_and_not_none_and_greater_than_zero({"a": 1}, "a")
    assert not key_in_dict_and_not_none_and_greater_than_zero({"a": 0}, "a")
    assert key_in_dict_and_not_none({"a": 0}, "a") and not key_in_dict_and_not_none({"a": None}, "a")
