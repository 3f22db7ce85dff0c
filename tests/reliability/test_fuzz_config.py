"""Fuzzing the loaders of user-written configuration (GitHub issue 8).

* Scenarios (``gsy_local_exchange.scenario``): a malformed document, dict or file (JSON or YAML) raises
  :class:`ScenarioError` with a one-line message naming the place, never another exception; a
  document that does load builds a :class:`Simulation` whose first ticks run.
* ``exchange run`` / ``exchange generate`` arguments (click's ``CliRunner``): a bad duration,
  date, pace or number exits with code 2 and a usage message naming the option, no traceback.
* Fleet config (``orchestrator.config``): a malformed mapping or YAML file raises
  :class:`FleetConfigError` only.

Generated inputs per run (hypothesis ``max_examples``):

==================================================  ======
test_any_scenario_document_loads_or_fails_cleanly    1,000
test_malformed_scenarios_raise_scenario_error        1,500
test_scenario_files                                    800
test_exchange_run_rejects_bad_arguments                600
test_exchange_generate_rejects_bad_numbers             300
test_any_fleet_document_loads_or_fails_cleanly         800
test_malformed_fleet_configs_raise_fleet_config_error  1,000
test_fleet_config_files                                500
==================================================  ======
total                                                6,500

Plus deterministic cases: deeply nested files, unreadable paths, a non-finite pace and an
unwritable ``generate --out``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gsy_local_exchange.cli import exchange_group
from gsy_local_exchange.clock import SimulationClock
from gsy_local_exchange.scenario import ASSET_TYPES, Scenario, ScenarioError, load_scenario, parse_scenario
from gsy_local_exchange.simulation import Simulation
from orchestrator.config import FleetConfig, FleetConfigError, load_fleet_config, parse_fleet_config

SCENARIOS = Path(__file__).resolve().parents[2] / "gsy_local_exchange" / "scenarios"

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


# ---------------------------------------------------------------------------------------------- values
BEYOND_FLOAT = st.integers(min_value=2**1024, max_value=10**400) | st.integers(
    min_value=-(10**400), max_value=-(2**1024)
)
TEXT = st.text(max_size=12) | st.sampled_from(["\ud800", "\x00", "", " ", "nan", "~", "../", "1e400"])
SCALARS = st.none() | st.booleans() | st.integers() | BEYOND_FLOAT | st.floats() | TEXT
# What yaml.safe_load adds to JSON: dates, timestamps, bytes and non-string keys.
YAML_SCALARS = (
    st.dates() | st.datetimes() | st.datetimes(timezones=st.just(timezone(timedelta(hours=5)))) | st.binary(max_size=8)
)
KEYS = TEXT | st.integers() | st.none() | st.booleans() | st.floats(allow_nan=False) | st.dates()
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=10,
)
YAMLISH = st.recursive(
    SCALARS | YAML_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=10,
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NEGATIVE = st.floats(max_value=-1e-9, allow_infinity=False) | st.integers(max_value=-1)


def _nest(depth: int, as_dict: bool) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


class NestedMarkets:
    """A chain of markets ``depth`` levels deep, built in the test: hypothesis cannot print it."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def __repr__(self) -> str:
        return f"NestedMarkets({self.depth})"

    def build(self) -> dict[str, Any]:
        tree: dict[str, Any] = {"name": "leaf pv", "type": "PV"}
        for level in range(self.depth):
            tree = {"name": f"market {level}", "children": [tree]}
        return tree


def expand(raw: Any) -> Any:
    return raw.build() if isinstance(raw, NestedMarkets) else raw


# ---------------------------------------------------------------------------------------------- scenarios
BASE_SCENARIO: dict[str, Any] = {
    "name": "Grid",
    "uuid": "6c0b7c7e-52a4-4c8e-9a35-6a4bde0f8a11",
    "grid_fee_constant": 1,
    "settings": {
        "slot_length": "15m",
        "tick_length": "15s",
        "sim_duration": "2h",
        "start_date": "2026-06-01",
        "market_maker_rate": 30,
        "feed_in_tariff": 2,
        "bid_offer_match_algo": 1,
        "grid_fee_type": 1,
    },
    "children": [
        {"name": "Market Maker", "type": "MarketMaker", "energy_rate": 30},
        {
            "name": "Infinite Bus",
            "type": "InfiniteBus",
            "energy_sell_rate": 31,
            "energy_buy_rate": 5,
            "energy_rate_profile": {"00:00": 31, "12:00": 33},
        },
        {
            "name": "House 1",
            "allow_external_connection": True,
            "grid_fee_constant": 2,
            "children": [
                {"name": "pv", "type": "PV", "panel_count": 2, "capacity_kW": 5, "final_selling_rate": 5},
                {"name": "pv profile", "type": "PVProfile", "power_profile": "profiles/pv_berlin_summer_1kW.csv"},
                {
                    "name": "load",
                    "type": "LoadHours",
                    "avg_power_W": 300,
                    "hrs_of_day": list(range(24)),
                    "final_buying_rate": 35,
                },
                {"name": "load profile", "type": "LoadProfile", "daily_load_profile": {"00:00": 100, "12:00": 300}},
                {
                    "name": "battery",
                    "type": "Storage",
                    "initial_soc": 50,
                    "min_allowed_soc": 10,
                    "battery_capacity_kWh": 5,
                    "max_abs_battery_power_kW": 3,
                },
                {"name": "meter", "type": "SmartMeter", "smart_meter_profile": [0.1] * 96},
            ],
        },
        {
            "name": "House 2",
            "uuid": "0f8a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b",
            "children": [
                {
                    "name": "predefined pv",
                    "type": "PredefinedPV",
                    "cloud_coverage": 1,
                    "forecast_stream_enabled": False,
                },
                {"name": "producer", "type": "CommercialProducer", "energy_rate": 25},
                {
                    "name": "absolute load",
                    "type": "LoadProfile",
                    "daily_load_profile": {"2026-06-01T00:00": 100, "2026-06-01T12:00": 200},
                },
            ],
        },
    ],
}
ROOT: tuple = ()
SETTINGS = ("settings",)
MARKET_MAKER, INFINITE_BUS, HOUSE1, HOUSE2 = (("children", index) for index in range(4))
PV, PV_PROFILE, LOAD, LOAD_PROFILE, BATTERY, METER = ((*HOUSE1, "children", index) for index in range(6))
PREDEFINED_PV, PRODUCER, ABSOLUTE_LOAD = ((*HOUSE2, "children", index) for index in range(3))
ALL_NODES = [
    ROOT,
    MARKET_MAKER,
    INFINITE_BUS,
    HOUSE1,
    HOUSE2,
    PV,
    PV_PROFILE,
    LOAD,
    LOAD_PROFILE,
    BATTERY,
    METER,
    PREDEFINED_PV,
    PRODUCER,
    ABSOLUTE_LOAD,
]
ASSETS = [node for node in ALL_NODES if node not in (ROOT, HOUSE1, HOUSE2)]


def _get(tree: Any, path: tuple) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def mutated(path: tuple, key: Any, value: Any, *, delete: bool = False) -> dict[str, Any]:
    tree = copy.deepcopy(BASE_SCENARIO)
    node = _get(tree, path)
    if delete:
        node.pop(key, None)
    else:
        node[key] = value
    return tree


def scenario_clock(scenario: Scenario) -> SimulationClock:
    settings_ = scenario.settings
    return SimulationClock(
        datetime(2026, 6, 1, 12), settings_.slot_length, settings_.tick_length, settings_.sim_duration
    )


def assert_runs(scenario: Scenario) -> None:
    """A scenario that loads can be run: the simulation builds and its first ticks keep orders sane."""
    simulation = Simulation(scenario, scenario_clock(scenario))
    for _ in range(3):
        simulation.step()
    for order in simulation.engine.orders.values():
        assert math.isfinite(order.energy) and order.energy > 0, order
        assert math.isfinite(order.original_rate) and order.original_rate >= 0, order
        assert math.isfinite(order.price), order


def assert_clear(error: ScenarioError) -> None:
    text = str(error)
    assert text.strip() and "Traceback" not in text and len(text) < 3000
    assert text.startswith(
        ("invalid scenario at ", "scenario root must be", "cannot read scenario", "cannot parse scenario")
    ), text


def test_base_scenario_is_valid() -> None:
    """The fuzzers below start from this document; it must load and run as it is."""
    scenario = parse_scenario(copy.deepcopy(BASE_SCENARIO), base_dir=SCENARIOS)
    assert len(scenario.iter_nodes()) == len(ALL_NODES)
    assert_runs(scenario)


def _paths(tree: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _paths(value, (*path, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _paths(value, (*path, index))


EVERY_PATH = [path for path in _paths(BASE_SCENARIO) if path]


@st.composite
def garbled_scenarios(draw) -> Any:
    """Anything at all, or the base scenario with some part replaced by garbage."""
    choice = draw(st.integers(0, 9))
    if choice < 4:
        return draw(YAMLISH)
    if choice == 4:
        return NestedMarkets(draw(st.integers(1, 400) | st.integers(400, 5000)))
    tree = copy.deepcopy(BASE_SCENARIO)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(EVERY_PATH))
        try:
            parent = _get(tree, path[:-1])
            parent[path[-1]] = draw(YAMLISH | st.builds(_nest, st.integers(1, 120), st.booleans()))
        except (KeyError, IndexError, TypeError):
            pass  # an earlier replacement removed this place
    return tree


@fuzz(1000)
@given(raw=garbled_scenarios())
def test_any_scenario_document_loads_or_fails_cleanly(raw) -> None:
    try:
        scenario = parse_scenario(expand(raw), base_dir=SCENARIOS)
    except ScenarioError as error:
        assert_clear(error)
        return
    assert_runs(scenario)


HUGE_FLOAT = st.floats(min_value=1.0001e9, allow_infinity=False) | st.floats(max_value=-1.0001e9, allow_infinity=False)
BAD_FLOAT = st.one_of(
    NON_FINITE,
    NEGATIVE,
    BEYOND_FLOAT,
    HUGE_FLOAT,
    st.sampled_from(["abc", "", "1,5", "five", "1e400", "-inf", "nan", "0x10"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
BAD_POSITIVE = BAD_FLOAT | st.just(0) | st.just(0.0)
BAD_BOOL = st.sampled_from(["maybe", 2, -1, 0.5, [], {}, None, "tru"])
BAD_NAME = st.sampled_from(["", None, 5, 1.5, [], {}, ["pv"], True])
BAD_UUID = st.sampled_from(["not-a-uuid", "", "1234", 5, [], {}, True, "6c0b7c7e-52a4-4c8e-9a35-6a4bde0f8a1"])
BAD_PROFILE = st.sampled_from(
    [
        {},
        [],
        [1.0] * 95,
        [1.0] * 97,
        {"25:00": 1},
        {"00:60": 1},
        {"x": 1},
        {"00:00": "x"},
        {"00:00": None},
        {"00:00": math.nan},
        {"00:00": math.inf},
        {"00:00": 10**400},
        {"00:00": 1e300},
        [-1.7e308] * 96,
        {"00:00": [1]},
        [1.0] * 95 + ["x"],
        [math.nan] * 96,
        {"00:00": 1, "2026-06-01T00:00": 2},
        {"1:00": 1, "01:00": 2},
        "missing.csv",
        "",
        "  ",
        "\x00",
        "~no_such_user_xyz/x.csv",
        "profiles",
        "profiles/../../scenarios",
        5,
        True,
        None,
        {"0001-01-01T00:00+01:00": 1},
        {"9999-12-31T23:59-01:00": 1},
        {"2026-06-01T00:00": 1, "2026-06-01 00:00": 2},
    ]
)
BAD_DURATION = st.one_of(
    st.sampled_from(
        [
            "abc",
            "",
            "-5m",
            "1m",
            "61m",
            "1e400",
            "nan",
            "inf",
            "15 parsecs",
            "m",
            "99999999999d",
            "5\u017f",
            "999999999999999999999s",
            10**20,
            10**400,
            1e300,
            math.nan,
            math.inf,
            -1,
            [],
            {},
            True,
        ]
    ),
    st.integers(10**9, 10**30).map(lambda days: f"{days}d"),
)
BAD_TICK = (
    BAD_DURATION.filter(lambda value: value != "1m")  # 15 ticks of 1 minute are a valid slot
    | st.sampled_from(["0s", "0.5s", "7m", "16s", 0, "2h"])
)
BAD_HOURS = st.sampled_from([[24], [-1], "0-23", [1.5], 5, None, [[1]], {"0": 1}])

# (node, key, bad values): every value is invalid at that place.
FIELD_MUTATIONS = [
    *((node, "name", BAD_NAME) for node in ALL_NODES),
    *((node, "uuid", BAD_UUID) for node in ALL_NODES),
    *(
        (node, "children", st.sampled_from([5, "x", {"a": 1}, None, [5], ["x"], [[]], [None], [{"type": "Wind"}]]))
        for node in (ROOT, HOUSE1, HOUSE2)
    ),
    # (PredefinedPV takes exactly PV's fields)
    (PV, "type", TEXT.filter(lambda text: text not in ASSET_TYPES) | st.sampled_from([5, [], {}, "Area", "Market"])),
    *(
        (node, key, BAD_FLOAT)
        for node, key in [
            (LOAD, "avg_power_W"),
            (LOAD, "final_buying_rate"),
            (LOAD, "initial_buying_rate"),
            (PV, "final_selling_rate"),
            (PV, "initial_selling_rate"),
            (BATTERY, "initial_soc"),
            (BATTERY, "min_allowed_soc"),
            (BATTERY, "final_selling_rate"),
            (METER, "initial_buying_rate"),
            (MARKET_MAKER, "energy_rate"),
            (INFINITE_BUS, "energy_sell_rate"),
            (INFINITE_BUS, "energy_buy_rate"),
            (PRODUCER, "energy_rate"),
            (SETTINGS, "market_maker_rate"),
            (SETTINGS, "feed_in_tariff"),
            (PV, "energy_rate_decrease_per_update"),
            (LOAD, "energy_rate_increase_per_update"),
        ]
    ),
    *((node, "grid_fee_constant", HUGE_FLOAT | NON_FINITE | st.sampled_from(["x", []])) for node in (ROOT, HOUSE1)),
    *(
        (node, key, BAD_POSITIVE)
        for node, key in [
            (PV, "capacity_kW"),
            (BATTERY, "battery_capacity_kWh"),
            (BATTERY, "max_abs_battery_power_kW"),
            (LOAD, "update_interval"),
            (PV, "update_interval"),
        ]
    ),
    *(
        (node, key, st.sampled_from([100.5, 101, 1e9]))
        for node, key in [(BATTERY, "initial_soc"), (BATTERY, "min_allowed_soc")]
    ),
    *(
        (node, key, st.sampled_from([0, -1, 1.5, "x", math.nan, math.inf, [], None, 10**400, 1_000_001]))
        for node, key in [(PV, "panel_count"), (PV_PROFILE, "panel_count"), (PREDEFINED_PV, "panel_count")]
    ),
    *(
        (node, key, st.sampled_from([-1, 1.5, "x", math.nan, [], None]))
        for node, key in [(SETTINGS, "min_offer_age"), (SETTINGS, "min_bid_age")]
    ),
    (PREDEFINED_PV, "cloud_coverage", st.sampled_from([3, -1, 1.5, None, "x", []])),
    (SETTINGS, "market_type", st.sampled_from([1, 3, "2x", None, []])),
    (SETTINGS, "bid_offer_match_algo", st.sampled_from([0, 3, "x", None])),
    (SETTINGS, "grid_fee_type", st.sampled_from([0, 3, "x", None])),
    (INFINITE_BUS, "allow_external_connection", st.just(True)),
    (MARKET_MAKER, "allow_external_connection", st.just(True)),
    *(
        (node, key, BAD_BOOL)
        for node, key in [
            (PV, "fit_to_limit"),
            (LOAD, "use_market_maker_rate"),
            (PV, "forecast_stream_enabled"),
            (HOUSE1, "allow_external_connection"),
            (MARKET_MAKER, "grid_connected"),
            (BATTERY, "fit_to_limit"),
        ]
    ),
    (LOAD, "hrs_of_day", BAD_HOURS),
    *(
        (node, key, BAD_PROFILE.filter(lambda value, key=key: value is not None or key != "energy_rate_profile"))
        for node, key in [
            (PV_PROFILE, "power_profile"),
            (LOAD_PROFILE, "daily_load_profile"),
            (METER, "smart_meter_profile"),
            (ABSOLUTE_LOAD, "daily_load_profile"),
            (INFINITE_BUS, "energy_rate_profile"),
        ]
    ),
    (SETTINGS, "slot_length", BAD_DURATION),
    (SETTINGS, "tick_length", BAD_TICK),
    (SETTINGS, "sim_duration", BAD_DURATION.filter(lambda value: value not in ("61m",)) | st.just("10m")),
    (SETTINGS, "slot_length_realtime", st.sampled_from(["abc", "-1s", "1e400", math.inf, [], "99999999999d"])),
    (SETTINGS, "start_date", st.sampled_from(["x", "2026-02-30", "2026-13-01", [], {}, "today", "1.5"])),
    (ROOT, "settings", st.sampled_from([5, "x", [], [{}], True])),
    (HOUSE1, "settings", st.sampled_from([{}, {"slot_length": "15m"}])),  # only the root may have settings
    (ROOT, "type", st.sampled_from(["PV", "Storage", "LoadHours", "Wind", 5])),
    (HOUSE2, "name", st.sampled_from(["!!!", "   ", "house 1", "HOUSE-1", "Grid"])),  # no slug / slug collision
    (PV_PROFILE, "name", st.sampled_from(["pv", "load", "battery"])),  # asset names are channel keys
    (HOUSE2, "uuid", st.just(BASE_SCENARIO["uuid"])),  # uuid used twice
]
REQUIRED = [(node, "name") for node in ALL_NODES if node != ROOT] + [
    (LOAD, "avg_power_W"),
    (PV_PROFILE, "power_profile"),
    (LOAD_PROFILE, "daily_load_profile"),
    (METER, "smart_meter_profile"),
]
UNKNOWN_KEYS = st.builds(
    lambda prefix, text: prefix + text, st.sampled_from(["zz_", "panel_cout", "Name", "_"]), st.text(max_size=6)
)

MALFORMED_SCENARIOS = st.one_of(
    st.sampled_from(FIELD_MUTATIONS).flatmap(
        lambda mutation: mutation[2].map(lambda value: mutated(mutation[0], mutation[1], value))
    ),
    st.sampled_from(REQUIRED).map(lambda place: mutated(place[0], place[1], None, delete=True)),
    st.tuples(st.sampled_from([*ALL_NODES, SETTINGS]), UNKNOWN_KEYS, JSON).map(
        lambda triple: mutated(triple[0], triple[1], triple[2])
    ),
    st.just(mutated(BATTERY, "initial_soc", 5)),  # below min_allowed_soc
    YAMLISH.filter(lambda value: not isinstance(value, dict)),  # a root that is not an object
)


@fuzz(1500)
@given(raw=MALFORMED_SCENARIOS)
def test_malformed_scenarios_raise_scenario_error(raw) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(raw, base_dir=SCENARIOS)
    assert_clear(error.value)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz-config")
    for profile in ("pv_berlin_summer_1kW.csv",):
        (directory / "profiles").mkdir(exist_ok=True)
        (directory / "profiles" / profile).write_bytes((SCENARIOS / "profiles" / profile).read_bytes())
    return directory


def _dump(document: Any, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(document).encode("utf-8", "surrogatepass")
    return yaml.safe_dump(document, allow_unicode=True).encode("utf-8", "surrogatepass")


FILE_CONTENTS = st.one_of(
    st.tuples(st.just("malformed"), st.sampled_from(["json", "yaml"]), MALFORMED_SCENARIOS),
    st.tuples(st.just("any"), st.sampled_from(["json", "yaml"]), garbled_scenarios()),
    st.tuples(
        st.just("malformed"),
        st.just("bytes"),
        st.binary(max_size=64) | st.builds(lambda head: head + b"\xff\xfe\x80", st.binary(max_size=16)),
    ),
    st.tuples(
        st.just("malformed"),
        st.just("bytes"),
        st.sampled_from(
            [
                b"",
                b"null",
                b"{",
                b"- a\n- b",
                b"a: b: c",
                b"!!python/object:os.system {}",
                b"\x00",
                b"\xef\xbb\xbf{}",
                b"a: &a [*a]",
                b"{'name': 'Grid'",
                b"name: Grid\nchildren: 5",
                b"[1, 2, NaN]",
                b'"\\ud800"',
                b"1" * 5000,
            ]
        ),
    ),
)


@fuzz(800)
@given(content=FILE_CONTENTS, suffix=st.sampled_from([".json", ".yaml", ".yml", ".JSON", ""]))
def test_scenario_files(workdir, content, suffix) -> None:
    kind, fmt, document = content
    document = expand(document)
    if fmt == "bytes":
        data = document
    else:
        try:
            data = _dump(document, fmt)
        except (yaml.YAMLError, ValueError, TypeError, RecursionError, UnicodeError):
            assume(False)  # not representable in this format
        if fmt == "yaml" and suffix in (".json", ".JSON", ""):
            suffix = ".yaml"
        if fmt == "json" and suffix in (".yaml", ".yml"):
            suffix = ".json"
    path = workdir / f"scenario{suffix}"
    path.write_bytes(data)
    try:
        scenario = load_scenario(path)
    except ScenarioError as error:
        assert_clear(error)
        return
    assert kind == "any", f"a malformed scenario loaded: {data[:200]!r}"
    assert_runs(scenario)


def test_unreadable_scenario_paths(workdir) -> None:
    for path in (workdir / "missing.json", workdir, workdir / ("x" * 300 + ".json")):
        with pytest.raises(ScenarioError) as error:
            load_scenario(path)
        assert_clear(error.value)


# Deep nesting is tested here, not fuzzed: a YAML RecursionError costs up to half a second.
@pytest.mark.parametrize("depth", [10, 999, 5000, 100_000])
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deeply_nested_scenario_files(workdir, depth, suffix) -> None:
    path = workdir / f"deep{suffix}"
    for data in (b"[" * depth, b"[" * depth + b"]" * depth, b"{a: " * depth + b"1" + b"}" * depth):
        path.write_bytes(data)
        with pytest.raises(ScenarioError) as error:
            load_scenario(path)
        assert_clear(error.value)


# ---------------------------------------------------------------------------------------------- CLI
# A superset of what exchange.durations accepts, so a text it does not match is surely bad.
_VALID_DURATION = re.compile(r"(?:\d+(?:\.\d+)?\s*(?:d|h|m|min|s|sec)?)+", re.IGNORECASE | re.ASCII)


def _bad_duration(text: str) -> bool:
    return not _VALID_DURATION.fullmatch(text.strip().replace(" ", ""))


def _bad_date(text: str) -> bool:
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M"):
        try:
            datetime.strptime(text, fmt)
            return False
        except ValueError:
            pass
    return True


def _bad_pace(text: str) -> bool:
    if text in ("fast", "realtime"):
        return False
    try:
        return float(text) <= 0
    except ValueError:
        return True


CLI_TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=16)
OVERFLOWING_DURATIONS = st.one_of(
    st.integers(10**9, 10**40).map(lambda days: f"{days}d"),
    st.integers(10**15, 10**40).map(str),
    st.integers(10**11, 10**30).map(lambda hours: f"{hours}h30m"),
)
BAD_DURATION_ARGS = (
    CLI_TEXT.filter(_bad_duration)
    | OVERFLOWING_DURATIONS
    | st.sampled_from(["-5m", "1e3", "nan", "inf", "5\u017f", "1\u017fec", "\u0663m", "1\u212a"])
)
BAD_RUN_ARGUMENTS = st.one_of(
    st.tuples(
        st.sampled_from(["--slot-length", "--tick-length", "--duration", "--tick-deadline", "--token-lifetime"]),
        BAD_DURATION_ARGS,
    ),
    st.tuples(
        st.just("--start-date"),
        CLI_TEXT.filter(_bad_date)
        | st.sampled_from(["2026-02-30", "2026-01-01T25:00", "2026-1-1 10:00", "99999-01-01"]),
    ),
    # nan / inf are accepted by PaceType: see test_exchange_run_rejects_a_non_finite_pace
    st.tuples(
        st.just("--pace"),
        CLI_TEXT.filter(
            lambda text: _bad_pace(text) and text.strip().lower().lstrip("+-") not in ("nan", "inf", "infinity")
        ),
    ),
    st.tuples(st.just("--start-when-selected"), st.integers(max_value=-1).map(str) | st.sampled_from(["x", "1.5", ""])),
    st.tuples(st.just("--http-port"), st.sampled_from(["0", "65536", "-1", "http", "80.5", "99999999999999999999"])),
    st.tuples(st.just("--rate-limit"), st.sampled_from(["-1", "-0.5", "fast", "", "1,5"])),
)


@fuzz(600)
@given(argument=BAD_RUN_ARGUMENTS)
def test_exchange_run_rejects_bad_arguments(workdir, argument) -> None:
    option, value = argument
    # The scenario does not exist: were the argument accepted, the run would stop on the scenario instead.
    result = CliRunner().invoke(
        exchange_group, ["run", "--scenario", str(workdir / "absent.json"), f"{option}={value}"]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert option in result.output and "Traceback" not in result.output, result.output


@pytest.mark.parametrize("pace", ["nan", "inf"])
def test_exchange_run_rejects_a_non_finite_pace(workdir, pace) -> None:
    result = CliRunner().invoke(exchange_group, ["run", "--scenario", str(workdir / "absent.json"), f"--pace={pace}"])
    assert result.exit_code == 2 and "--pace" in result.output


def test_exchange_generate_into_a_missing_directory_is_a_usage_error(workdir) -> None:
    result = CliRunner().invoke(
        exchange_group,
        ["generate", "--assets", "3", "--markets", "1", "--out", str(workdir / "missing" / "generated.json")],
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)


BAD_COUNTS = st.integers(max_value=0).map(str) | st.sampled_from(["x", "1.5", "", "1e3", "-", "ten"])


@fuzz(300)
@given(
    case=st.one_of(
        st.tuples(st.just("--assets"), BAD_COUNTS, st.just("1")),
        st.tuples(st.just("--markets"), st.just("5"), BAD_COUNTS),
        st.integers(1, 50).flatmap(
            lambda assets: st.tuples(  # more markets than assets
                st.just("--markets"), st.just(str(assets)), st.integers(assets + 1, 10**30).map(str)
            )
        ),
    ),
    seed=st.integers(-(10**30), 10**30).map(str) | st.sampled_from(["x", "", "1.5"]),
)
def test_exchange_generate_rejects_bad_numbers(workdir, case, seed) -> None:
    option, assets, markets = case
    out = workdir / "generated.json"
    out.unlink(missing_ok=True)
    result = CliRunner().invoke(
        exchange_group, ["generate", f"--assets={assets}", f"--markets={markets}", f"--seed={seed}", "--out", str(out)]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert option in result.output or "--seed" in result.output
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- fleet config
@pytest.fixture(scope="module", autouse=True)
def no_fleet_environment() -> Iterator[None]:
    """Environment overrides (GSY_FLEET_*) would mask what the file says."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.upper().startswith("GSY_FLEET_"):
                patch.delenv(name)
        yield


GOOD_FLEET: dict[str, Any] = {
    "name": "fleet-1",
    "shards": 2,
    "max_assets_per_task": 50,
    "task_timeout": 5.0,
    "exchange": {"mode": "redis", "redis_url": "redis://127.0.0.1:6379"},
    "aggregators": [{"name": "a", "assets": ["Load *", "pv"]}, {"name": "b", "markets": ["House 2"]}],
    "strategies": {
        "Load": {"name": "price_ramp", "params": {"initial_buying_rate": 5, "final_buying_rate": 30}},
        "Storage": {"name": "storage_arbitrage", "params": {}},
        "Market": {"name": "grid_fee", "params": {"base_fee": 1}},
    },
    "asset_strategies": {
        "pv": {
            "name": "time_of_use",
            "params": {
                "table": [
                    {"time": "00:00", "buy_rate": 10, "sell_rate": 20},
                    {"time": "12:00", "buy_rate": 5, "sell_rate": 15},
                ]
            },
        }
    },
}
FLEET_PATHS = [path for path in _paths(GOOD_FLEET) if path]


def fleet_mutated(path: tuple, key: Any, value: Any, *, delete: bool = False) -> dict[str, Any]:
    tree = copy.deepcopy(GOOD_FLEET)
    node = _get(tree, path)
    if delete:
        node.pop(key, None)
    else:
        node[key] = value
    return tree


def assert_clear_fleet_error(error: FleetConfigError) -> None:
    text = str(error)
    assert text.startswith(
        (
            "invalid fleet config at ",
            "fleet config must be a mapping",
            "cannot read fleet config",
            "cannot parse fleet config",
        )
    ), text
    assert "Traceback" not in text and len(text) < 3000


def test_good_fleet_is_valid() -> None:
    config = parse_fleet_config(copy.deepcopy(GOOD_FLEET))
    assert config.shards == 2 and config.strategy_for("pv", "PV").name == "time_of_use"


@st.composite
def garbled_fleets(draw) -> Any:
    if draw(st.booleans()):
        return draw(YAMLISH)
    tree = copy.deepcopy(GOOD_FLEET)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(FLEET_PATHS))
        try:
            _get(tree, path[:-1])[path[-1]] = draw(YAMLISH)
        except (KeyError, IndexError, TypeError):
            pass
    if draw(st.booleans()):
        tree[draw(KEYS)] = draw(YAMLISH)
    return tree


@fuzz(800)
@given(raw=garbled_fleets())
def test_any_fleet_document_loads_or_fails_cleanly(raw) -> None:
    try:
        config = parse_fleet_config(raw)
    except FleetConfigError as error:
        assert_clear_fleet_error(error)
        return
    assert isinstance(config, FleetConfig) and config.aggregators


BAD_RATE = st.one_of(NON_FINITE, NEGATIVE, st.sampled_from(["x", [], {}, "1e400", "-1"]))
MALFORMED_FLEETS = st.one_of(
    st.tuples(
        st.just(()),
        st.sampled_from(["shards", "max_assets_per_task"]),
        st.sampled_from([0, -1, 1.5, "x", None, [], math.nan, math.inf, -(10**400)]),
    ).map(lambda t: fleet_mutated(*t)),
    st.sampled_from([1025, 10**9, 10**400]).map(lambda shards: fleet_mutated((), "shards", shards)),
    st.sampled_from([0, -1, "x", None, [], math.nan, math.inf, -math.inf]).map(
        lambda timeout: fleet_mutated((), "task_timeout", timeout)
    ),
    st.sampled_from(["", "has space", "a/b", 5, None, [], "ü"]).map(lambda name: fleet_mutated((), "name", name)),
    # unknown keys, including BaseSettings' own keyword arguments and keys YAML makes non-strings
    st.one_of(
        UNKNOWN_KEYS,
        st.sampled_from(
            [
                "_env_file",
                "_env_prefix",
                "_cli_parse_args",
                "_secrets_dir",
                "_case_sensitive",
                "__class__",
                "model_config",
                "Shards",
                "NAME",
                "Aggregators",
                "shards ",
                "task-timeout",
            ]
        ),
        st.integers(),
        st.none(),
        st.booleans(),
        st.dates(),
    ).flatmap(lambda key: JSON.map(lambda value: fleet_mutated((), key, value))),
    st.sampled_from([5, "x", [], None, {"mode": "carrier-pigeon"}, {"redis_url": 5}, {"port": 1}]).map(
        lambda exchange: fleet_mutated((), "exchange", exchange)
    ),
    st.sampled_from(
        [
            [],
            None,
            5,
            "a",
            {},
            [5],
            [{}],
            [{"name": ""}],
            [{"name": "a"}],
            [{"name": "a", "assets": "Load *"}],
            [{"name": "a", "assets": [5]}],
            [{"name": "a", "assets": ["x"]}, {"name": "a", "markets": ["y"]}],
            [{"name": "a", "assets": ["x"], "colour": "red"}],
        ]
    ).map(lambda aggregators: fleet_mutated((), "aggregators", aggregators)),
    st.just(fleet_mutated((), "aggregators", None, delete=True)),
    st.sampled_from(
        [
            5,
            [],
            "x",
            [1],
            {"Wind": {"name": "price_ramp"}},
            {"Load": {"name": "nope"}},
            {"Load": {"name": "grid_fee"}},
            {"Market": {"name": "price_ramp"}},
            {"Load": 5},
            {"Load": {"name": "price_ramp", "params": 5}},
            {"Load": {"name": "price_ramp", "params": []}},
            {"Load": {"name": "price_ramp", "params": {"colour": 1}}},
            {"Load": {}},
            {"PV": {"name": "storage_arbitrage"}},
            {5: {"name": "price_ramp"}},
        ]
    ).map(lambda strategies: fleet_mutated((), "strategies", strategies)),
    st.sampled_from(
        [
            5,
            [],
            [1],
            "x",
            {"pv": 5},
            {"pv": {"name": "time_of_use", "params": {}}},
            {"pv": {"name": "time_of_use", "params": {"csv_path": "absent.csv"}}},
            {"pv": {"name": "time_of_use", "params": {"csv_path": 5}}},
            {"pv": {"name": "time_of_use", "params": {"csv_path": "\x00"}}},
            {"pv": {"name": "time_of_use", "params": {"table": []}}},
            {"pv": {"name": "time_of_use", "params": {"table": [{"time": "25:00", "buy_rate": 1, "sell_rate": 2}]}}},
        ]
    ).map(lambda strategies: fleet_mutated((), "asset_strategies", strategies)),
    st.tuples(st.sampled_from(["initial_buying_rate", "final_buying_rate", "min_energy"]), BAD_RATE).map(
        lambda pair: fleet_mutated(("strategies", "Load", "params"), pair[0], pair[1])
    ),
    BAD_RATE.map(lambda fee: fleet_mutated(("strategies", "Market", "params"), "base_fee", fee)),
    YAMLISH.filter(lambda value: not isinstance(value, dict)),
)


@fuzz(1000)
@given(raw=MALFORMED_FLEETS)
def test_malformed_fleet_configs_raise_fleet_config_error(raw) -> None:
    with pytest.raises(FleetConfigError) as error:
        parse_fleet_config(raw)
    assert_clear_fleet_error(error.value)


FLEET_FILES = st.one_of(
    st.tuples(st.just("malformed"), MALFORMED_FLEETS),
    st.tuples(st.just("any"), garbled_fleets()),
    st.tuples(st.just("malformed"), st.binary(max_size=64)),
    st.tuples(st.just("malformed"), st.builds(lambda head: head + b"\xff\xfe\x80", st.binary(max_size=16))),
    st.tuples(
        st.just("malformed"),
        st.sampled_from(
            [
                b"",
                b"null",
                b"{",
                b"a: b: c",
                b"!!python/object:os.system {}",
                b"\x00",
                b"strategies: [1]",
                b"aggregators: [{name: a, assets: [x]}]\nstrategies: [1]",
                b"asset_strategies: {pv: 5}",
                b"a: &a [*a]",
            ]
        ),
    ),
)


@fuzz(500)
@given(content=FLEET_FILES)
def test_fleet_config_files(workdir, content) -> None:
    kind, data = content
    if not isinstance(data, bytes):
        try:
            data = _dump(data, "yaml")
        except (yaml.YAMLError, ValueError, TypeError, RecursionError, UnicodeError):
            assume(False)  # not representable in YAML
    path = workdir / "fleet.yaml"
    path.write_bytes(data)
    try:
        config = load_fleet_config(path)
    except FleetConfigError as error:
        assert_clear_fleet_error(error)
        return
    assert kind == "any", f"a malformed fleet config loaded: {data[:200]!r}"
    assert isinstance(config, FleetConfig)


def test_unreadable_fleet_paths(workdir) -> None:
    for path in (workdir / "missing.yaml", workdir, workdir / ("x" * 300 + ".yaml")):
        with pytest.raises(FleetConfigError) as error:
            load_fleet_config(path)
        assert_clear_fleet_error(error.value)


@pytest.mark.parametrize("depth", [10, 999, 5000, 100_000])
def test_deeply_nested_fleet_files(workdir, depth) -> None:
    path = workdir / "deep-fleet.yaml"
    for data in (
        b"[" * depth,
        b"[" * depth + b"]" * depth,
        b"{a: " * depth + b"1" + b"}" * depth,
        b"aggregators: " + b"[" * depth + b"]" * depth,
    ):
        path.write_bytes(data)
        with pytest.raises(FleetConfigError) as error:
            load_fleet_config(path)
        assert_clear_fleet_error(error.value)


def test_every_mistake_is_listed_one_line_each_and_the_list_is_bounded() -> None:
    several = fleet_mutated((), "shards", 0)
    several.update(task_timeout=-1, colour="red", name="bad name")
    with pytest.raises(FleetConfigError) as error:
        parse_fleet_config(several)
    lines = str(error.value).splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        f"invalid fleet config at {field}" for field in ("colour", "name", "shards", "task_timeout")
    ]
    garbled = fleet_mutated((), "aggregators", [{"name": ""}] * 200)
    with pytest.raises(FleetConfigError) as error:
        parse_fleet_config(garbled)
    assert_clear_fleet_error(error.value)
    lines = str(error.value).splitlines()
    assert lines[-1] == "invalid fleet config: and 187 more errors" and len(lines) == 14
