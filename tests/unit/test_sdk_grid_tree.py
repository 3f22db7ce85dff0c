"""Grid fee path calculation (SDK_API.md 8 worked example) and grid-tree helpers."""

import json

import pytest

from gsy_e_sdk.grid_fee_calculation import GridFeeCalculation
from gsy_e_sdk.utils import (
    create_area_name_uuid_mapping_from_tree_info,
    flatten_info_dict,
    get_area_uuid_from_area_name,
    get_name_from_area_name_uuid_mapping,
    get_uuid_from_area_name_in_tree_dict,
)
from tests.fixtures import CAPTURES

CAPTURE = CAPTURES / "external_devices__test_redis_aggregator.jsonl"


def market(name, last, current, *children):
    return name, {
        "area_name": name,
        "last_market_fee": last,
        "current_market_fee": current,
        "last_market_stats": {},
        "children": dict(children),
    }


def asset(name):
    return name, {"area_name": name, "asset_info": {}}


# The tree of SDK_API.md 8, uuids spelled as names (ids "<name>-id" would work the same).
GRID = dict(
    [
        market(
            "Grid 10",
            10,
            11,
            asset("Market Maker"),
            market(
                "Street 1",
                1,
                2,
                market("House 1.1", 1.1, 2.1, asset("Load 1.1"), asset("Storage 1.1")),
                market("House 1.2", 1.2, 2.2, asset("Load 1.2"), asset("PV 1.2")),
            ),
            market("Street 2", 2, 3, market("House 2.1", 2.1, 3.1, asset("PV 2.1"), asset("Load 2.1"))),
            market("Street 3", 3, 4, asset("Load 3"), asset("PV 3")),
        )
    ]
)


@pytest.fixture()
def fees() -> GridFeeCalculation:
    calculation = GridFeeCalculation()
    calculation.handle_grid_stats(GRID)
    return calculation


@pytest.mark.parametrize(
    "start, target, current, last",
    [
        ("PV 2.1", None, 3.1, 2.1),
        ("House 2.1", None, 3.1, 2.1),
        ("PV 2.1", "Load 1.2", 21.3, 16.3),
        ("PV 2.1", "Grid 10", 17.1, 14.1),
        ("Market Maker", "Load 3", 15, 13),
        ("House 2.1", "Load 2.1", 3.1, 2.1),
        ("Load 2.1", "Street 2", 6.1, 4.1),
        ("Street 1", "House 2.1", 19.1, 15.1),
    ],
)
def test_worked_example(fees, start, target, current, last):
    assert fees.calculate_grid_fee(start, target) == pytest.approx(current)
    assert fees.calculate_grid_fee(start, target, "last_market_fee") == pytest.approx(last)


def test_paths_and_fee_mapping(fees):
    assert fees.paths_to_root_mapping["PV 2.1"] == ["Grid 10", "Street 2", "House 2.1", "PV 2.1"]
    assert "PV 2.1" not in fees.market_area_uuid_grid_fee_mapping["current_market_fee"]
    assert fees.market_area_uuid_grid_fee_mapping["last_market_fee"]["Street 3"] == 3


def test_no_tree_yet_returns_none_and_bad_input_raises(caplog):
    calculation = GridFeeCalculation()
    assert calculation.calculate_grid_fee("a", "b") is None
    assert "no grid_stats sent yet" in caplog.text
    calculation.handle_grid_stats(GRID)
    with pytest.raises(ValueError, match="not an area of the grid tree"):
        calculation.calculate_grid_fee("nowhere", "PV 3")
    with pytest.raises(ValueError, match="fee_type"):
        calculation.calculate_grid_fee("PV 3", fee_type="next_market_fee")


def test_null_fees_are_skipped():
    tree = dict([market("Root", 1, None, market("A", 2, 5, asset("a")), asset("b"))])
    calculation = GridFeeCalculation()
    calculation.handle_grid_stats(tree)
    assert calculation.calculate_grid_fee("a", "b") == 5
    assert calculation.calculate_grid_fee("Root") is None


def captured_market_event() -> dict:
    for line in CAPTURE.read_text().splitlines():
        record = json.loads(line)
        if record["data"].get("event") == "market":
            return record["data"]
    raise AssertionError("no market event in the capture")


def test_helpers_on_a_captured_grid_tree():
    tree = captured_market_event()["grid_tree"]
    flat = flatten_info_dict(tree)
    mapping = create_area_name_uuid_mapping_from_tree_info(flat)
    assert {"Grid", "House 1", "House 2", "load", "pv", "Cell Tower"} <= set(mapping)
    load_uuid = get_uuid_from_area_name_in_tree_dict(mapping, "load")
    assert "energy_requirement_kWh" in flat[load_uuid]["asset_info"]
    assert get_name_from_area_name_uuid_mapping(mapping, load_uuid) == "load"
    # The flat view holds the tree's own node objects.
    house_2 = get_uuid_from_area_name_in_tree_dict(mapping, "House 2")
    assert flat[house_2]["children"][load_uuid] is flat[load_uuid]
    calculation = GridFeeCalculation()
    calculation.handle_grid_stats(tree)
    assert calculation.calculate_grid_fee(load_uuid, fee_type="last_market_fee") == flat[house_2]["last_market_fee"]
    assert calculation.paths_to_root_mapping[load_uuid][-2] == house_2


def test_name_lookup_errors_and_duplicates():
    flat = {"u1": {"area_name": "Load"}, "u2": {"area_name": "Load"}, "u3": {"area_name": "PV"}}
    mapping = create_area_name_uuid_mapping_from_tree_info(flat)
    assert mapping == {"Load": ["u1", "u2"], "PV": ["u3"]}
    with pytest.raises(ValueError, match="Could not find Wind in tree"):
        get_uuid_from_area_name_in_tree_dict(mapping, "Wind")
    with pytest.raises(ValueError, match="There are multiple areas named Load in the tree"):
        get_uuid_from_area_name_in_tree_dict(mapping, "Load")


def test_scenario_tree_search():
    scenario = {
        "name": "Grid",
        "uuid": "g",
        "children": [{"name": "House", "uuid": "h", "children": [{"name": "PV", "uuid": "p"}]}],
    }
    assert get_area_uuid_from_area_name(scenario, "PV") == "p"
    assert get_area_uuid_from_area_name(scenario, "Wind") is None


def test_buffer_grid_tree_info_and_logging_decorator_and_asset_names(caplog):
    import logging

    from gsy_e_sdk.utils import buffer_grid_tree_info, get_assets_name, logging_decorator

    class Client:
        @buffer_grid_tree_info
        def _on_market(self, message):
            return len(self.latest_grid_tree_flat)

        @logging_decorator("bid")
        def bid(self, energy):
            return energy * 2

    tree = {"root": {"area_name": "Grid", "children": {"a": {"area_name": "pv"}}}}
    client = Client()
    assert client._on_market({"grid_tree": tree}) == 2 and client.latest_grid_tree is tree
    with caplog.at_level(logging.DEBUG, logger="gsy_e_sdk.utils"):
        assert client.bid(3) == 6
    assert "bid" in caplog.text and "returned 6" in caplog.text
    registry = {
        "name": "Grid",
        "type": "Area",
        "registered": False,
        "children": [
            {
                "name": "H1",
                "type": "Area",
                "registered": True,
                "children": [
                    {"name": "load", "type": "Load", "registered": True},
                    {"name": "pv", "type": "PV", "registered": False},
                ],
            }
        ],
    }
    assert get_assets_name(registry) == {"Area": ["H1"], "Load": ["load"], "PV": [], "Storage": []}
    assert get_assets_name({}) == {}
