"""Several dispatchers for one fleet: who owns which aggregator, the options, merged metadata."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
import redis
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.cli import fleet_group
from orchestrator.sharding import aggregators_for_dispatcher
from orchestrator.state import StateStore

NAMES = st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=60)


@given(NAMES, st.integers(min_value=1, max_value=12))
def test_every_aggregator_has_exactly_one_owner_and_owners_are_balanced(names, count):
    parts = [aggregators_for_dispatcher(names, index, count) for index in range(count)]
    owners = Counter(name for part in parts for name in part)
    assert sorted(owners) == sorted(names) and set(owners.values()) <= {1}
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1


@given(NAMES, st.integers(min_value=1, max_value=12), st.randoms())
def test_the_split_depends_on_the_names_not_their_order(names, count, random):
    shuffled = random.sample(names, len(names))
    for index in range(count):
        assert aggregators_for_dispatcher(shuffled, index, count) == aggregators_for_dispatcher(names, index, count)


def test_the_split_is_the_same_in_another_process():
    names = [f"aggregator-{i}" for i in range(7)]
    here = aggregators_for_dispatcher(names, 1, 3)
    code = (
        "from orchestrator.sharding import aggregators_for_dispatcher;"
        f"print(aggregators_for_dispatcher({names!r}, 1, 3))"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert here == ["aggregator-1", "aggregator-4"] and str(here) == there.strip()


@pytest.mark.parametrize(("index", "count"), [(0, 0), (-1, 2), (2, 2)])
def test_an_impossible_part_is_refused(index, count):
    with pytest.raises(ValueError, match="dispatcher index"):
        aggregators_for_dispatcher(["a"], index, count)


@pytest.fixture()
def fleet_file(tmp_path):
    path = tmp_path / "fleet.yaml"
    fleet = {"name": "parts", "aggregators": [{"name": "a", "assets": ["PV *"]}, {"name": "b", "assets": ["Load *"]}]}
    path.write_text(yaml.safe_dump(fleet))
    return path


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--part-index", "1"], {}, "--part-index and --part-count go together"),
        ([], {"GSY_FLEET_DISPATCHER_COUNT": "2"}, "--part-index and --part-count go together"),
        (["--part-index", "2", "--part-count", "2"], {}, "--part-index must be 0 to 1 for --part-count 2, got 2"),
        (["--part-index", "-1", "--part-count", "2"], {}, "--part-index must be 0 to 1"),
        (["--part-index", "0", "--part-count", "0"], {}, "--part-count must be at least 1, got 0"),
        ([], {"GSY_FLEET_DISPATCHER_INDEX": "x", "GSY_FLEET_DISPATCHER_COUNT": "2"}, "'x' is not a valid integer"),
    ],
)
def test_bad_part_options_are_a_usage_error(fleet_file, args, env, message):
    result = CliRunner().invoke(fleet_group, ["dispatch", "--config", str(fleet_file), *args], env=env)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output


def test_a_part_owning_no_aggregator_says_so_and_exits_2(fleet_file):
    # Checked before the fleet's Redis is looked for: nothing answers at this URL.
    args = ["dispatch", "--config", str(fleet_file), "--redis-url", "redis://127.0.0.1:1"]
    result = CliRunner().invoke(
        fleet_group, args, env={"GSY_FLEET_DISPATCHER_INDEX": "2", "GSY_FLEET_DISPATCHER_COUNT": "3"}
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: dispatcher part 2 of 3 owns no aggregator: the fleet has 2; run at most 2 parts"
    )


def test_dispatch_help_documents_the_parts():
    text = CliRunner().invoke(fleet_group, ["dispatch", "--help"], terminal_width=200).output
    for needle in ("--part-index", "--part-count", "GSY_FLEET_DISPATCHER_INDEX", "GSY_FLEET_DISPATCHER_COUNT"):
        assert needle in text
    assert "--part-index 1 --part-count 2" in text


def test_metadata_of_several_dispatchers_merges(redis_url):
    store = StateStore(redis.Redis.from_url(redis_url), "meta-parts")
    store.reset()
    assert store.meta("placements") == {}
    store.meta("placements", {"PV 1": {"shard": 0}, "Load 1": {"shard": 1}})  # part 0
    store.meta("placements", {"Load 2": {"shard": 1}})  # part 1
    store.meta("placements", {"Load 1": {"shard": 0}})  # part 0 again: its entry replaced
    store.meta("kinds", {})  # nothing new: nothing written
    assert store.meta("placements") == {"PV 1": {"shard": 0}, "Load 1": {"shard": 0}, "Load 2": {"shard": 1}}
    assert store.meta("kinds") == {}
    store.reset()
    assert store.meta("placements") == {}
