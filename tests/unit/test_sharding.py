"""Sharding is stable across processes and balanced."""

import subprocess
import sys
from collections import Counter

import pytest

from orchestrator.sharding import plan_slices, shards_for_worker, stable_hash


def test_placement_is_stable_across_processes():
    here = [piece.shard for piece in plan_slices("agg-7", [f"a{i}" for i in range(50)], [], 4, 10)]
    code = (
        "from orchestrator.sharding import plan_slices;"
        "print([p.shard for p in plan_slices('agg-7', [f'a{i}' for i in range(50)], [], 4, 10)])"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert str(here) == there.strip()


def test_slices_respect_the_size_limit_and_cover_every_asset_once():
    assets = [f"asset-{i}" for i in range(1003)]
    slices = plan_slices("big", assets, ["m1"], 4, 100)
    assert len(slices) == 11 and all(len(piece.assets) <= 100 for piece in slices)
    assert sorted(a for piece in slices for a in piece.assets) == sorted(assets)
    assert slices[0].markets == ("m1",) and all(not piece.markets for piece in slices[1:])
    # One big aggregator spreads round-robin: shard loads differ by at most one slice.
    counts = Counter(piece.shard for piece in slices)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_many_aggregators_balance_over_shards():
    shards = 8
    counts = Counter(plan_slices(f"aggregator-{i}", ["x"], [], shards, 10)[0].shard for i in range(4000))
    expected = 4000 / shards
    assert set(counts) == set(range(shards))
    assert all(abs(count - expected) < 0.15 * expected for count in counts.values())


def test_order_of_assets_does_not_change_the_plan():
    assets = [f"a{i}" for i in range(30)]
    assert plan_slices("agg", assets, [], 3, 7) == plan_slices("agg", list(reversed(assets)), [], 3, 7)


def test_workers_share_shards_without_overlap():
    owned = [set(shards_for_worker(index, 3, 8)) for index in range(3)]
    assert set().union(*owned) == set(range(8))
    assert sum(len(shards) for shards in owned) == 8
    assert stable_hash("x") == stable_hash("x") != stable_hash("y")


def test_bad_arguments():
    with pytest.raises(ValueError):
        plan_slices("agg", ["a"], [], 0, 10)
