"""Every recipe of the README runs as written, in a fresh shell, as a new user would run it.

A recipe is a fenced block after ``<!-- recipe: NAME -->``. A block whose name has a suffix
(``oracle.py``, ``fleet.yaml``) is a file the README asks to save under that name; the others are
shell commands, run by
``bash -e`` in a directory that looks like the repository's root (its entries linked), so the
relative paths of the README work and what a recipe writes stays out of the clone. The only
changes: port 8000 becomes a free port, and Redis is the tests' own (``REDIS_URL``).
"""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
RECIPE = re.compile(r"<!-- recipe: (?P<name>[\w.-]+) -->\s*```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)
RECIPES = {match["name"]: match["body"] for match in RECIPE.finditer(README)}
VENV_BIN = Path(sys.executable).parent


def recipe(name: str) -> str:
    assert name in RECIPES, f"the README lost its recipe {name!r}"
    return RECIPES[name]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A directory that looks like the clone's root: each top-level entry linked."""
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "results"):
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


def _env(redis_url: str, path: str | None = None) -> dict[str, str]:
    env = {**os.environ, "REDIS_URL": redis_url, "PATH": path or f"{VENV_BIN}:{os.environ['PATH']}"}
    for name in [name for name in env if name.startswith(("API_CLIENT_", "GSY_EXCHANGE_USERS", "GSY_FLEET_"))]:
        del env[name]
    return env


def run_recipe(
    name: str, workdir: Path, env: dict[str, str], stdin: str = "", timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run a shell recipe to its end (the files of the README saved beside it); it must succeed."""
    for file in (n for n in RECIPES if "." in n):
        (workdir / file).write_text(RECIPES[file])
    port = str(_free_port())
    done = subprocess.run(
        ["bash", "-e", "-c", recipe(name).replace("8000", port)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=workdir,
    )
    assert done.returncode == 0, f"recipe {name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def test_every_recipe_is_named_once_and_every_script_is_run_by_a_recipe():
    names = [match["name"] for match in RECIPE.finditer(README)]
    assert len(names) == len(set(names))
    for script in (name for name in names if name.endswith(".py")):
        assert any(f"python {script}" in body for body in RECIPES.values()), script
    for config in (name for name in names if name.endswith(".yaml")):
        assert any(f"--config {config}" in body for body in RECIPES.values()), config


def test_activating_the_venv_puts_gsy_e_sdk_on_path(workdir, redis_url):
    if not (ROOT / ".venv" / "bin" / "activate").exists():
        pytest.skip("no .venv in the clone: make test creates it")
    bare_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != VENV_BIN)
    done = run_recipe("activate", workdir, _env(redis_url, path=bare_path), timeout=60)
    assert "Usage: gsy-e-sdk" in done.stdout


def _traded(stdout: str, market: str) -> int:
    row = re.search(rf"^{re.escape(market)}\s+(\d+)", stdout, re.M)
    assert row, stdout[-2000:]
    return int(row.group(1))


def test_the_redis_setup_recipe_trades_in_house_2(workdir, redis_url):
    done = run_recipe("redis-setup", workdir, _env(redis_url))
    assert _traded(done.stdout, "House 2") > 0
    assert "Traceback" not in done.stderr


def test_the_setup_table_names_every_bundled_setup():
    bundled = {path.stem for path in (ROOT / "gsy_e_sdk" / "setups").glob("test_*.py")}
    in_table = set(re.findall(r"^\| `(test_\w+)` \|", README, re.M))
    assert in_table == bundled


def test_the_oracle_script_trades_to_the_finish(workdir, redis_url):
    done = run_recipe("oracle", workdir, _env(redis_url))
    assert re.search(r"bought \d+\.\d{3} kWh for", done.stdout), done.stdout[-2000:]
    assert "Traceback" not in done.stderr


def test_the_buyer_script_trades_over_rest_and_ends_without_warnings(workdir, redis_url):
    password = "readme-password-typed-at-the-prompt"
    done = run_recipe("buyer", workdir, _env(redis_url), stdin=password + "\n")
    assert re.search(r"bought \d+\.\d{3} kWh for", done.stdout), done.stdout[-2000:]
    # A clean finish is no fault: no lost-socket warnings, no reconnects, no tracebacks.
    for noise in ("reconnecting", "ConnectionRefusedError", "Traceback", "WARNING"):
        assert noise not in done.stderr, done.stderr[-3000:]
    assert password not in done.stdout + done.stderr


def test_the_exchange_run_recipe_trades_alone_and_exits(workdir, redis_url):
    done = run_recipe("exchange-run", workdir, _env(redis_url), timeout=60)
    assert "all trades" in done.stdout


def test_the_generate_recipe_writes_and_runs_a_large_scenario(workdir, redis_url):
    done = run_recipe("generate", workdir, _env(redis_url), timeout=120)
    assert "10000 assets" in done.stdout + done.stderr
    assert _traded(done.stdout, "all trades (buyer prices)") > 0


def test_the_fleet_file_of_the_readme_is_the_demos_fleet():
    assert yaml.safe_load(recipe("fleet.yaml")) == yaml.safe_load(
        (ROOT / "orchestrator" / "fleets" / "community.yaml").read_text()
    )


def test_a_fleet_on_the_local_exchange_from_nothing(workdir, redis_url):
    done = run_recipe("fleet-local", workdir, _env(redis_url))
    assert done.stdout.startswith("fleet community-demo: 2 aggregators, 25 assets, 2 markets")
    assert re.search(r"^slot \d+/8 ", done.stdout, re.M), done.stdout[-2000:]
    assert "rejected: 0" in done.stdout
    assert (workdir / "results" / "report.html").is_file()
    with (workdir / "results" / "exchange" / "orders.csv").open() as handle:
        slots = {row["slot"] for row in csv.DictReader(handle)}
    assert len(slots) == 8  # the fleet ordered in every slot, the first included


def test_a_fleet_on_an_exchange_started_elsewhere_is_there_from_the_first_slot(workdir, redis_url):
    done = run_recipe("fleet-elsewhere", workdir, _env(redis_url))
    attached = re.search(r"attached (\d+) areas", done.stdout)
    assert attached and f"--start-when-selected {attached.group(1)} " in recipe("fleet-elsewhere")
    assert f"({attached.group(1)} here:" in README  # the number the README's prose gives
    with (workdir / "exchange-results" / "orders.csv").open() as handle:
        slots = sorted({row["slot"] for row in csv.DictReader(handle)})
    assert len(slots) == 8 and slots[0].endswith("00:00")
    assert (workdir / "results" / "summary.json").is_file()


def test_the_operator_commands_work_on_a_running_fleet(workdir, redis_url):
    env = _env(redis_url)
    (workdir / "fleet.yaml").write_text(recipe("fleet.yaml"))
    fleet = subprocess.Popen(
        ["bash", "-e", "-c", recipe("operator-fleet").rstrip().removesuffix("&") + "\n"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=workdir,
    )
    try:
        assert fleet.stdout is not None
        for line in fleet.stdout:  # "once it has printed its first slot"
            if line.startswith("slot "):
                break
        done = run_recipe("operator", workdir, env, timeout=150)
        assert len(re.findall(r"^command \S+: task ", done.stdout, re.M)) == 8
        assert fleet.wait(timeout=120) == 0
    finally:
        if fleet.poll() is None:
            fleet.terminate()
            fleet.wait(timeout=30)
