"""Scenario files: bundled scenarios, JSON/YAML, one clear error per bad file, overrides, generator."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gsy_e_sdk.wire.slug import slugify
from gsy_local_exchange.generate import generate_scenario
from gsy_local_exchange.profiles import average_over, load_profile
from gsy_local_exchange.scenario import (
    InfiniteBusNode,
    LoadHoursNode,
    LoadProfileNode,
    MarketMakerNode,
    MarketNode,
    PVNode,
    PVProfileNode,
    Scenario,
    ScenarioError,
    StorageNode,
    load_scenario,
    parse_scenario,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "gsy_local_exchange" / "scenarios"
BUNDLED = sorted(SCENARIOS.glob("*.json"))
EXPECTED_FILES = {
    "community.json",
    "external_devices.json",
    "external_market_stats.json",
    "external_devices_grid_fees.json",
    "external_devices_send_forecasts.json",
}


def raw(name: str) -> dict[str, Any]:
    return json.loads((SCENARIOS / name).read_text())


def nodes(scenario: Scenario) -> dict[str, Any]:
    return {node.name: node for node, _ in scenario.iter_nodes()}


def find(tree: dict[str, Any], name: str) -> dict[str, Any]:
    if tree["name"] == name:
        return tree
    for child in tree.get("children", []):
        try:
            return find(child, name)
        except KeyError:
            pass
    raise KeyError(name)


def children_names(node: MarketNode) -> list[str]:
    return [child.name for child in node.children]


# -- bundled scenarios --------------------------------------------------------------------------


def test_all_expected_scenarios_are_bundled() -> None:
    assert EXPECTED_FILES <= {path.name for path in BUNDLED}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.name)
def test_bundled_scenario_loads_with_fixed_unique_uuids(path: Path) -> None:
    scenario = load_scenario(path)
    all_nodes = [node for node, _ in scenario.iter_nodes()]
    assert isinstance(scenario.root, MarketNode) and scenario.root.name == "Grid"
    assert all(node.uuid for node in all_nodes), "every node needs a fixed uuid"
    assert len({node.uuid for node in all_nodes}) == len(all_nodes)
    for node in all_nodes:
        assert uuid.UUID(node.uuid).version == 4
    assets = [node for node in all_nodes if not isinstance(node, MarketNode)]
    assert len({node.name for node in assets}) == len(assets)
    assert scenario.base_dir == SCENARIOS
    # Loading twice gives the same uuids (nothing is generated at load time).
    assert [n.uuid for n, _ in load_scenario(path).iter_nodes()] == [n.uuid for n in all_nodes]


def test_community_tree_matches_the_reference() -> None:
    scenario = load_scenario(SCENARIOS / "community.json")
    root = scenario.root
    assert scenario.settings.market_maker_rate == 22
    assert root.grid_fee_constant == 4 and root.allow_external_connection
    assert children_names(root) == ["Community", "Market Maker"]
    community, market_maker = root.children
    assert community.grid_fee_constant == 4 and community.allow_external_connection
    assert isinstance(market_maker, InfiniteBusNode)
    assert (market_maker.energy_sell_rate, market_maker.energy_buy_rate) == (22, 21)
    houses = {house.name: children_names(house) for house in community.children}
    apartments = ["Load 81 L20", "Load 82 L17", "Load 83 L14", "Load 84 L10", "Load 85 L22", "Load 86 L8"]
    assert houses == {
        "Family 2 children+PV": ["Load 1 L13", "PV 1 (4kW)"],
        "Family 2 children": ["Load 2 L21"],
        "Family 3 children+PV+Batt": ["Load 3 L17", "PV 3 (5kW)", "Tesla Powerwall 3"],
        "Young Couple": ["Load 4 L15"],
        "Multigenerational house": ["Load 5 L9", "PV 5 (10kW)", "Tesla Powerwall 5"],
        "Retired couple": ["Load 6 L24"],
        "Flatsharing Student": ["Load 7 L22"],
        "6 apartments building": apartments,
        "6 apartments building+PV": [f"{name} (PV bldg)" for name in apartments] + ["PV 9 (15kW)"],
    }
    by_name = nodes(scenario)
    loads = [node for node in by_name.values() if isinstance(node, LoadProfileNode)]
    assert len(loads) == 19
    for load in loads:
        assert load.allow_external_connection and load.use_market_maker_rate
        assert (load.initial_buying_rate, load.final_buying_rate) == (11, 35)
        # The profile file matches the household number in the name (L13 -> household_L13.csv).
        number = int(load.name.split(" L")[1].split()[0])
        assert load.daily_load_profile == f"profiles/household_L{number:02d}.csv"
    panels = {node.name: node.panel_count for node in by_name.values() if isinstance(node, PVProfileNode)}
    assert panels == {"PV 1 (4kW)": 4, "PV 3 (5kW)": 5, "PV 5 (10kW)": 10, "PV 9 (15kW)": 15}
    for name in panels:
        pv = by_name[name]
        assert pv.allow_external_connection
        assert (pv.initial_selling_rate, pv.final_selling_rate) == (30, 11)
    for name in ("Tesla Powerwall 3", "Tesla Powerwall 5"):
        battery = by_name[name]
        assert isinstance(battery, StorageNode) and battery.allow_external_connection
        assert (
            battery.initial_soc,
            battery.min_allowed_soc,
            battery.battery_capacity_kWh,
            battery.max_abs_battery_power_kW,
        ) == (10, 10, 14, 5)
        assert (battery.initial_buying_rate, battery.final_buying_rate) == (0, 25)
        assert (battery.initial_selling_rate, battery.final_selling_rate) == (30, 25.1)


def test_community_pv_profile_scales_with_rated_power() -> None:
    scenario = load_scenario(SCENARIOS / "community.json")
    pv = nodes(scenario)["PV 1 (4kW)"]
    series = load_profile(pv.power_profile, scenario.base_dir, scenario.settings.slot_length)
    noon_kwh = average_over(series, datetime(2021, 7, 1, 13), timedelta(minutes=15)) * 0.25 / 1000
    assert 0.7 < noon_kwh * pv.panel_count < 0.85  # ~0.8 x 4 kW for a quarter of an hour
    assert average_over(series, datetime(2021, 7, 1, 1), timedelta(minutes=15)) == 0


def test_external_devices_matches_the_reference() -> None:
    scenario = load_scenario(SCENARIOS / "external_devices.json")
    settings = scenario.settings
    assert (settings.bid_offer_match_algo, settings.min_offer_age, settings.min_bid_age) == (2, 0, 0)
    assert children_names(scenario.root) == ["House 1", "House 2", "Cell Tower"]
    by_name = nodes(scenario)
    assert not any(isinstance(n, (InfiniteBusNode, MarketMakerNode)) for n in by_name.values())
    general = by_name["H1 General Load"]
    assert (general.avg_power_W, general.hrs_of_day, general.final_buying_rate) == (200, list(range(12, 18)), 35)
    assert not general.allow_external_connection
    for name in ("H1 Storage1", "H1 Storage2"):
        assert (by_name[name].initial_soc, by_name[name].battery_capacity_kWh) == (100, 20)
    assert by_name["House 2"].allow_external_connection and not by_name["House 1"].allow_external_connection
    load, pv, forecast = by_name["load"], by_name["pv"], by_name["forecast-measurement-load"]
    assert isinstance(load, LoadHoursNode) and load.allow_external_connection
    assert (load.avg_power_W, load.hrs_of_day, load.final_buying_rate) == (200, list(range(24)), 35)
    assert isinstance(pv, PVNode) and pv.allow_external_connection and pv.panel_count == 4
    assert isinstance(forecast, LoadHoursNode) and forecast.forecast_stream_enabled
    assert forecast.allow_external_connection and forecast.avg_power_W == 0
    tower = by_name["Cell Tower"]
    assert (tower.avg_power_W, tower.hrs_of_day, tower.final_buying_rate) == (100, list(range(24)), 35)


def test_grid_fees_market_stats_and_forecast_scenarios() -> None:
    fees = nodes(load_scenario(SCENARIOS / "external_devices_grid_fees.json"))
    assert (fees["Grid"].grid_fee_constant, fees["House 1"].grid_fee_constant, fees["House 2"].grid_fee_constant) == (
        10,
        2,
        1,
    )
    assert isinstance(fees["Market Maker"], MarketMakerNode) and fees["Market Maker"].energy_rate == 30

    stats = load_scenario(SCENARIOS / "external_market_stats.json")
    external_markets = {
        slugify(node.name)
        for node, _ in stats.iter_nodes()
        if isinstance(node, MarketNode) and node.externally_controllable
    }
    assert external_markets == {"house-1", "house-2"}

    forecasts = load_scenario(SCENARIOS / "external_devices_send_forecasts.json")
    assert forecasts.settings.market_maker_rate == 22
    by_name = nodes(forecasts)
    pv, load = by_name["forecast-measurement-pv"], by_name["forecast-measurement-load"]
    assert isinstance(pv, PVNode) and pv.forecast_stream_enabled and pv.panel_count == 5
    assert (pv.initial_selling_rate, pv.final_selling_rate) == (30, 11)
    assert isinstance(load, LoadHoursNode) and load.forecast_stream_enabled and load.use_market_maker_rate
    assert (load.initial_buying_rate, load.final_buying_rate) == (11, 35)
    assert by_name["Community Load"].avg_power_W == 100


# -- JSON and YAML ------------------------------------------------------------------------------


def test_yaml_and_json_give_the_same_scenario(tmp_path: Path) -> None:
    document = raw("external_devices.json")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (tmp_path / "s.json").write_text(json.dumps(document))
    from_yaml = load_scenario(tmp_path / "s.yaml")
    from_json = load_scenario(tmp_path / "s.json")
    assert from_yaml.root.model_dump() == from_json.root.model_dump()
    assert from_yaml.settings == from_json.settings


def test_hand_written_yaml_with_durations_dates_and_inline_profile(tmp_path: Path) -> None:
    (tmp_path / "s.yml").write_text(
        "name: Grid\n"
        "settings:\n"
        "  slot_length: 30m\n"
        "  tick_length: 30s\n"
        "  sim_duration: 2d\n"
        "  start_date: 2021-07-01\n"
        "children:\n"
        "  - name: House\n"
        "    children:\n"
        "      - {name: l, type: LoadProfile, daily_load_profile: {'00:00': 100, '18:00': 400}}\n"
    )
    scenario = load_scenario(tmp_path / "s.yml")
    assert scenario.settings.slot_length == timedelta(minutes=30)
    assert scenario.settings.sim_duration == timedelta(days=2)
    assert scenario.settings.start_date == date(2021, 7, 1)
    assert nodes(scenario)["l"].daily_load_profile == {"00:00": 100, "18:00": 400}


# -- one clear error per bad file ---------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(name: str, **fields: Any) -> Mutation:
    return lambda tree: find(tree, name).update(fields)


def _rename(old: str, new: str) -> Mutation:
    return lambda tree: find(tree, old).update(name=new)


def _pop(name: str, field: str) -> Mutation:
    return lambda tree: find(tree, name).pop(field)


BAD_TREES: list[tuple[str, str, Mutation, list[str]]] = [
    (
        "negative panel_count",
        "community.json",
        _set("PV 9 (15kW)", panel_count=-3),
        ["at Grid > Community > 6 apartments building+PV > PV 9 (15kW): panel_count:", "greater than or equal to 1"],
    ),
    (
        "unknown asset type",
        "community.json",
        _set("Tesla Powerwall 5", type="Battery"),
        ["at Grid > Community > Multigenerational house > Tesla Powerwall 5:", "unknown asset type 'Battery'"],
    ),
    (
        "typo in an asset key",
        "external_devices.json",
        lambda tree: find(tree, "pv").update(panel_cont=find(tree, "pv").pop("panel_count")),
        ["at Grid > House 2 > pv:", "unknown key 'panel_cont'", "did you mean 'panel_count'"],
    ),
    (
        "typo in a market key",
        "external_devices.json",
        lambda tree: find(tree, "House 1").update(childs=find(tree, "House 1").pop("children")),
        ["at Grid > House 1:", "unknown key 'childs'", "did you mean 'children'"],
    ),
    (
        "duplicate asset names",
        "community.json",
        _rename("Load 81 L20 (PV bldg)", "Load 81 L20"),
        [
            "at Grid > Community > 6 apartments building+PV > Load 81 L20:",
            "'Load 81 L20' is used twice",
            "also at Grid > Community > 6 apartments building > Load 81 L20",
        ],
    ),
    (
        "duplicate uuid",
        "external_devices.json",
        lambda tree: find(tree, "pv").update(uuid=find(tree, "load")["uuid"]),
        ["at Grid > House 2 > pv:", "is used twice", "also by Grid > House 2 > load"],
    ),
    (
        "market slug collision",
        "external_market_stats.json",
        lambda tree: tree["children"].append({"name": "HOUSE-1", "children": []}),
        ["at Grid > HOUSE-1:", "market slug 'house-1' collides with market 'House 1'"],
    ),
    (
        "missing required field",
        "external_devices.json",
        _pop("Cell Tower", "avg_power_W"),
        ["at Grid > Cell Tower: avg_power_W:", "Field required"],
    ),
    (
        "wrong value type",
        "external_devices.json",
        _set("load", hrs_of_day=[1, 25]),
        ["at Grid > House 2 > load: hrs_of_day.1:", "less than or equal to 23"],
    ),
    (
        "storage soc below minimum",
        "external_devices.json",
        _set("H1 Storage1", initial_soc=5),
        ["at Grid > House 1 > H1 Storage1:", "initial_soc must not be below min_allowed_soc"],
    ),
    (
        "bad uuid",
        "external_devices.json",
        _set("House 1", uuid="house-one"),
        ["at Grid > House 1: uuid:", "badly formed"],
    ),
    (
        "external market maker",
        "external_devices_grid_fees.json",
        _set("Market Maker", allow_external_connection=True),
        ["at Grid > Market Maker: allow_external_connection:"],
    ),
    (
        "bad slot/tick ratio",
        "external_devices.json",
        lambda tree: tree["settings"].update(slot_length="15m", tick_length="2m"),
        ["at Grid: settings:", "slot_length / tick_length must be a whole number >= 10"],
    ),
    (
        "unknown settings key",
        "external_devices.json",
        lambda tree: tree["settings"].update(slot_lenght="15m"),
        ["at Grid: settings:", "unknown key 'slot_lenght'", "did you mean 'slot_length'"],
    ),
    (
        "bad duration",
        "external_devices.json",
        lambda tree: tree["settings"].update(sim_duration="one day"),
        ["at Grid: settings.sim_duration:", "not a duration"],
    ),
    (
        "unsupported market type",
        "external_devices.json",
        lambda tree: tree["settings"].update(market_type=1),
        ["at Grid: settings.market_type:"],
    ),
    (
        "settings below the root",
        "external_devices.json",
        _set("House 2", settings={"market_maker_rate": 1}),
        ["at Grid > House 2:", "settings are only allowed on the root market"],
    ),
    (
        "settings not an object",
        "external_devices.json",
        lambda tree: tree.update(settings=[1, 2]),
        ["at Grid: settings: must be an object"],
    ),
    (
        "asset as root",
        "external_devices.json",
        lambda tree: tree.update(type="PV"),
        ["the root of a scenario must be a market"],
    ),
    (
        "missing profile file",
        "community.json",
        _set("Load 4 L15", daily_load_profile="profiles/nope.csv"),
        ["at Grid > Community > Young Couple > Load 4 L15: daily_load_profile:", "profile file not found", "nope.csv"],
    ),
    (
        "bad inline profile value",
        "community.json",
        _set("PV 1 (4kW)", power_profile={"12:00": "sunny"}),
        ["at Grid > Community > Family 2 children+PV > PV 1 (4kW): power_profile:", "entry 12:00", "valid number"],
    ),
    (
        "bad inline profile time",
        "community.json",
        _set("PV 1 (4kW)", power_profile={"noon": 800}),
        ["PV 1 (4kW): power_profile:", "cannot parse time 'noon'"],
    ),
]


@pytest.mark.parametrize(
    ("base", "mutate", "expected"), [case[1:] for case in BAD_TREES], ids=[case[0] for case in BAD_TREES]
)
def test_bad_scenario_gives_one_clear_error(tmp_path: Path, base: str, mutate: Mutation, expected: list[str]) -> None:
    document = raw(base)
    mutate(document)
    path = tmp_path / base
    path.write_text(json.dumps(document))
    (tmp_path / "profiles").symlink_to(SCENARIOS / "profiles")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    for piece in expected:
        assert piece in message, message
    assert "\n" not in message and "pydantic" not in message and "errors.pydantic.dev" not in message
    # No chained pydantic/JSON traceback under the one error.
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_the_untouched_documents_used_above_are_valid(tmp_path: Path) -> None:
    # Guards the bad-file tests: only the mutation makes them fail.
    for name in {case[1] for case in BAD_TREES}:
        (tmp_path / name).write_text(json.dumps(raw(name)))
    (tmp_path / "profiles").symlink_to(SCENARIOS / "profiles")
    for name in {case[1] for case in BAD_TREES}:
        assert load_scenario(tmp_path / name).root.name == "Grid"


def test_asset_may_share_a_name_with_a_market() -> None:
    document = raw("external_devices.json")
    find(document, "Cell Tower")["name"] = "House 1"
    assert nodes(parse_scenario(document))["House 1"] is not None


def test_unparsable_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "Grid", "children": [}')
    with pytest.raises(ScenarioError, match=r"cannot parse scenario .*broken\.json.*line 1"):
        load_scenario(path)


def test_unparsable_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: Grid\nchildren: [\n")
    with pytest.raises(ScenarioError, match=r"cannot parse scenario .*broken\.yaml"):
        load_scenario(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"cannot read scenario .*absent\.json"):
        load_scenario(tmp_path / "absent.json")


@pytest.mark.parametrize("document", [[], "Grid", None, 3])
def test_root_must_be_an_object(document: Any) -> None:
    with pytest.raises(ScenarioError, match="scenario root must be an object"):
        parse_scenario(document)


def test_several_errors_report_the_first_and_count_the_rest() -> None:
    document = raw("external_devices.json")
    find(document, "pv")["panel_count"] = 0
    find(document, "Cell Tower")["avg_power_W"] = -1
    with pytest.raises(ScenarioError, match=r"House 2 > pv: panel_count: .*\(and 1 more errors\)"):
        parse_scenario(document)


# -- overrides ----------------------------------------------------------------------------------


def test_overrides_win_over_file_settings() -> None:
    path = SCENARIOS / "community.json"
    assert load_scenario(path).settings.slot_length == timedelta(minutes=15)
    scenario = load_scenario(
        path, overrides={"slot_length": "30m", "market_maker_rate": 25, "tick_length": None, "start_date": "2022-01-02"}
    )
    assert scenario.settings.slot_length == timedelta(minutes=30)
    assert scenario.settings.market_maker_rate == 25
    assert scenario.settings.tick_length == timedelta(seconds=15)  # None = not overridden
    assert scenario.settings.start_date == date(2022, 1, 2)
    assert scenario.settings.feed_in_tariff == 21  # untouched file setting stays
    assert scenario.root.settings == scenario.settings


def test_override_may_repair_a_file_setting_and_may_break_one() -> None:
    document = raw("external_devices.json")
    document["settings"]["tick_length"] = "2m"  # 15 min / 2 min is not a whole number
    with pytest.raises(ScenarioError, match="slot_length / tick_length"):
        parse_scenario(copy.deepcopy(document))
    assert parse_scenario(copy.deepcopy(document), overrides={"tick_length": "1s"}).settings.tick_length == timedelta(
        seconds=1
    )
    with pytest.raises(ScenarioError, match=r"at Grid: settings.bid_offer_match_algo"):
        parse_scenario(raw("external_devices.json"), overrides={"bid_offer_match_algo": 7})


def test_settings_default_without_a_settings_key() -> None:
    document = raw("external_devices.json")
    del document["settings"]
    scenario = parse_scenario(document)
    assert scenario.root.settings is None
    assert scenario.settings.slot_length == timedelta(minutes=15)
    assert scenario.settings.market_type == 2


# -- generated fleets ---------------------------------------------------------------------------


def _assets(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [asset for market in document["children"] if "children" in market for asset in market["children"]]


@pytest.mark.parametrize(("assets", "markets"), [(1, 1), (10, 3), (7, 7), (1000, 7)])
def test_generated_scenario_is_valid_and_has_the_requested_counts(assets: int, markets: int) -> None:
    document = generate_scenario(assets, markets, seed=3)
    scenario = parse_scenario(json.loads(json.dumps(document)))
    markets_found = [child for child in scenario.root.children if isinstance(child, MarketNode)]
    assert len(markets_found) == markets
    assert [market.name for market in markets_found][:1] == ["Market 0001"]
    assert all(market.allow_external_connection for market in markets_found)
    sizes = [len(market.children) for market in markets_found]
    assert sum(sizes) == assets and max(sizes) - min(sizes) <= 1
    generated = [node for market in markets_found for node in market.children]
    assert all(node.allow_external_connection for node in generated)
    bus = [child for child in scenario.root.children if not isinstance(child, MarketNode)]
    assert len(bus) == 1 and isinstance(bus[0], InfiniteBusNode)
    assert (bus[0].name, bus[0].energy_sell_rate, bus[0].energy_buy_rate) == ("Market Maker", 30, 5)


def test_generated_mix_and_names() -> None:
    document = generate_scenario(10_000, 100)
    assets = _assets(document)
    kinds = Counter(asset["type"] for asset in assets)
    assert kinds == {"LoadHours": 4000, "PV": 4000, "Storage": 2000}
    assert [asset["name"] for asset in assets[:5]] == [
        "load-000001",
        "pv-000002",
        "load-000003",
        "pv-000004",
        "storage-000005",
    ]
    assert len({asset["name"] for asset in assets}) == 10_000
    assert len({asset["avg_power_W"] for asset in assets if asset["type"] == "LoadHours"}) > 50
    assert len({tuple(asset["hrs_of_day"]) for asset in assets if asset["type"] == "LoadHours"}) > 20
    assert len({asset["panel_count"] for asset in assets if asset["type"] == "PV"}) > 10
    # Every market holds a mix of kinds.
    assert all(
        len({a["type"] for a in market["children"]}) == 3 for market in document["children"] if "children" in market
    )


def test_generated_scenario_is_deterministic_and_seeded() -> None:
    first, again = generate_scenario(500, 10, seed=1), generate_scenario(500, 10, seed=1)
    assert first == again
    other = generate_scenario(500, 10, seed=2)
    assert [a["name"] for a in _assets(first)] == [a["name"] for a in _assets(other)]
    assert [a["uuid"] for a in _assets(first)] != [a["uuid"] for a in _assets(other)]
    assert _assets(first) != _assets(other)
    for asset in _assets(first)[:20]:
        assert uuid.UUID(asset["uuid"]).version == 5


def test_generating_ten_thousand_assets_is_fast() -> None:
    started = time.perf_counter()
    document = generate_scenario(12_000, 120)
    assert time.perf_counter() - started < 1.0
    assert len(_assets(document)) == 12_000
    assert len(parse_scenario(document).iter_nodes()) == 1 + 120 + 12_000 + 1


def test_wide_numbers_keep_names_sortable() -> None:
    document = generate_scenario(12_345, 12_000)
    names = [market["name"] for market in document["children"] if "children" in market]
    assert names[0] == "Market 00001" and names == sorted(names)
    assert _assets(document)[-1]["name"] == "storage-012345"


@pytest.mark.parametrize(
    ("assets", "markets", "message"),
    [
        (0, 1, "assets must be at least 1"),
        (-5, 1, "assets must be at least 1"),
        (10, 0, "markets must be between 1 and the number of assets"),
        (10, 11, "markets must be between 1 and the number of assets"),
        (2.5, 1, "assets must be an integer"),
        (10, True, "markets must be an integer"),
    ],
)
def test_generator_validates_arguments(assets: Any, markets: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_scenario(assets, markets)
