"""Which exchange areas a fleet file's names and globs select. Pure."""

import pytest

from orchestrator.attach import plan_fleet, resolve
from orchestrator.config import FleetConfigError, parse_fleet_config


def test_names_globs_and_market_slugs_resolve_in_order_without_duplicates():
    prefixes = {"Load 1", "Load 2", "Load 10", "PV 1", "community", "house-1"}
    assert resolve(["PV 1", "Load 1*", "Load 1", "Gone"], prefixes, market=False) == (
        ["PV 1", "Load 1", "Load 10"],
        ["Gone"],
    )
    assert resolve(["Load [12]"], prefixes, market=False) == (["Load 1", "Load 2"], [])
    assert resolve(["Community", "House 1"], prefixes, market=True) == (["community", "house-1"], [])


def test_plain_names_are_looked_up_and_only_globs_scan(monkeypatch):
    """A fleet file listing 20,000 assets by name must not match each name against every area."""
    import orchestrator.attach as attach

    calls = []
    monkeypatch.setattr(attach.fnmatch, "fnmatchcase", lambda name, pattern: calls.append(pattern) or False)
    prefixes = {f"Load {index}" for index in range(20_000)}
    matched, unknown = resolve(sorted(prefixes), prefixes, market=False)
    assert len(matched) == 20_000 and unknown == [] and calls == []
    resolve(["Load 1*"], prefixes, market=False)
    assert len(calls) == 20_000  # a glob scans every area once


def test_an_area_claimed_twice_and_unknown_names_are_all_reported():
    config = parse_fleet_config(
        {"aggregators": [{"name": "a", "assets": ["Load 1", "Nope"]}, {"name": "b", "assets": ["Load *"]}]}
    )
    with pytest.raises(FleetConfigError) as error:
        plan_fleet(config, {"Load 1", "Load 2"})
    assert "'Nope' is not known" in str(error.value) and "claimed by aggregators 'a' and 'b'" in str(error.value)
