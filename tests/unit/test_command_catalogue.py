"""One catalogue of area commands (``gsy_e_sdk.wire.catalogue``), and everything that names a
command agrees with it: the SDK's command names, the direct-mode channels, the exchange's handler
tables and the facade's REST routes. A command added in one place and forgotten in another
fails here."""

from __future__ import annotations

from starlette.routing import Route

from gsy_e_sdk.enums import command_enum_to_command_name_dict
from gsy_e_sdk.wire import catalogue, channels
from gsy_e_sdk.wire.catalogue import CATALOGUE, Target
from gsy_e_sdk.wire.redis_connection import RedisConnection
from gsy_local_exchange.commands import CommandExecutor
from gsy_local_exchange.http.app import create_app
from gsy_local_exchange.http.hub import WebsocketHub
from gsy_local_exchange.http.rate_limit import RateLimiter
from gsy_local_exchange.http.relay import ExchangeRelay
from gsy_local_exchange.http.tokens import TokenIssuer
from gsy_local_exchange.http.users import Users

AREA_PREFIX = "/external-connection/api/{sim}/{area}/"


def test_names_are_unique_and_the_sdk_names_exactly_these():
    names = [spec.name for spec in CATALOGUE]
    assert len(names) == len(set(names))
    assert sorted(command_enum_to_command_name_dict.values()) == sorted(names)


def test_direct_channels_come_from_the_catalogue():
    direct = {*channels.ASSET_DIRECT_COMMANDS, *channels.MARKET_DIRECT_COMMANDS, *channels.SELF_ANSWERED_COMMANDS}
    assert direct == set(catalogue.BY_NAME)
    assert set(channels.MARKET_DIRECT_COMMANDS) == set(catalogue.names(Target.MARKET))
    for spec in CATALOGUE:
        response = channels.area_command_response("p", spec.name)
        assert response == (f"p/{spec.name}" if spec.self_answered else f"p/response/{spec.name}")


def test_the_exchange_handles_exactly_the_catalogue():
    executor = CommandExecutor(engine=None)  # the handler tables only; no engine is touched
    assert set(executor._asset_handlers) == set(catalogue.names(Target.ASSET))
    assert set(executor._market_handlers) == set(catalogue.names(Target.MARKET))


def test_the_facade_serves_every_command_at_its_rest_path():
    relay = ExchangeRelay(RedisConnection("redis://127.0.0.1:9"), WebsocketHub())  # never connects here
    app = create_app(relay, Users({"u": "p"}), TokenIssuer("s" * 32), RateLimiter(0))
    served = {
        (route.path, method) for route in app.routes if isinstance(route, Route) for method in route.methods or ()
    }
    missing = [spec.name for spec in CATALOGUE if (AREA_PREFIX + spec.rest_path, spec.rest_method) not in served]
    assert missing == []
