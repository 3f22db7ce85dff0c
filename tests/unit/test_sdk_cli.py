"""``gsy-e-sdk run`` (SDK_API.md 9): default command, options, env exports, script loading."""

import json
import logging
import textwrap
import uuid

import pytest
from click.testing import CliRunner

from gsy_e_sdk.cli import main

ENV_KEYS = (
    "API_CLIENT_USERNAME",
    "API_CLIENT_PASSWORD",
    "API_CLIENT_RUN_ON_REDIS",
    "REDIS_URL",
    "API_CLIENT_DOMAIN_NAME",
    "API_CLIENT_WEBSOCKET_DOMAIN_NAME",
    "API_CLIENT_SIMULATION_ID",
)
# A user script that reports what the run command prepared for it.
REPORTER = textwrap.dedent("""
    import json, os, sys
    KEYS = {keys!r}
    with open({out!r}, "w") as handle:
        json.dump({{key: os.environ.get(key) for key in KEYS}}, handle)
""")


@pytest.fixture(autouse=True)
def clean_process_state(monkeypatch):
    """The run command writes os.environ and reconfigures logging: undo both afterwards."""
    for key in ENV_KEYS:
        monkeypatch.setenv(key, "placeholder")  # records the original value for teardown
        monkeypatch.delenv(key)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture()
def reporter(tmp_path):
    """(scripts dir, module name, package name, output file); names are unique per test since
    an imported script is not run again."""
    out = tmp_path / "env.json"
    scripts = tmp_path / "scripts"
    suffix = uuid.uuid4().hex[:8]
    module, package = f"report_env_{suffix}", f"pkg_{suffix}"
    (scripts / package).mkdir(parents=True)
    (scripts / package / "__init__.py").write_text("")
    (scripts / f"{module}.py").write_text(REPORTER.format(keys=ENV_KEYS, out=str(out)))
    (scripts / package / "nested.py").write_text(REPORTER.format(keys=ENV_KEYS, out=str(out)))
    return scripts, module, package, out


def invoke(*args, **kwargs):
    return CliRunner().invoke(main, list(args), **kwargs)


def test_run_help_lists_every_option_and_the_bundled_setups():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    for option in (
        "--base-setup-path",
        "--setup",
        "--username",
        "--password",
        "--domain-name",
        "--web-socket",
        "--simulation-config-path",
        "--simulation-id",
        "--run-on-redis",
        "--log-level",
        "--log-file",
        "-u,",
        "-p,",
        "-b,",
        "-d,",
        "-w,",
        "-i,",
        "-s,",
    ):
        assert option in result.output, option
    for setup in ("test_redis_aggregator", "test_redis_market_aggregator", "test_sending_energy_forecast"):
        assert setup in result.output


def test_run_is_the_default_command():
    bare = invoke()
    assert bare.exit_code == 2 and "Missing option '--setup'" in bare.output
    implicit = invoke("--log-level", "ERROR", "--setup", "no_such_setup", "--run-on-redis")
    assert implicit.exit_code == 2
    assert "Could not find the specified module 'no_such_setup'" in implicit.output
    assert "test_redis_aggregator" in implicit.output  # points at what exists


def test_redis_mode_exports_settings_and_runs_the_script(reporter, redis_url):
    scripts, module, _, out = reporter
    result = invoke(
        "-l",
        "ERROR",
        "run",
        "-b",
        str(scripts),
        "--setup",
        module,
        "--run-on-redis",
        "--redis-url",
        redis_url,
        "-u",
        "alice",
        "-p",
        "secret",
    )
    assert result.exit_code == 0, result.output
    env = json.loads(out.read_text())
    assert env["API_CLIENT_RUN_ON_REDIS"] == "true"
    assert env["REDIS_URL"] == redis_url
    assert env["API_CLIENT_USERNAME"] == "alice" and env["API_CLIENT_PASSWORD"] == "secret"
    assert env["API_CLIENT_SIMULATION_ID"] is None  # REST settings untouched on Redis


def test_dotted_setup_names_load_from_the_base_path(reporter):
    scripts, _, package, out = reporter
    result = invoke("run", "--base-setup-path", str(scripts), "--setup", f"{package}.nested", "--run-on-redis")
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["API_CLIENT_RUN_ON_REDIS"] == "true"


def test_rest_mode_requires_a_simulation_id(reporter):
    scripts, module, _, _ = reporter
    result = invoke("run", "-b", str(scripts), "--setup", module)
    assert result.exit_code == 2 and "needs --run-on-redis" in result.output
    assert "API_CLIENT_SIMULATION_ID was not set, please provide" in result.output


def test_rest_mode_reads_the_config_file_and_prompts_for_the_password(reporter, tmp_path):
    scripts, module, _, out = reporter
    config = tmp_path / "api-client-summary.json"
    config.write_text(
        json.dumps(
            {
                "domain_name": "https://d.example",
                "uuid": "sim-1",
                "web_socket_domain_name": "wss://w.example",
                "username": "bob",
                "name": "collab",
                "global_settings": {},
                "registry": {},
            }
        )
    )
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({"domain_name": "https://d.example", "uuid": "sim-1"}))
    refused = invoke(
        "run", "-b", str(scripts), "--setup", module, "-u", "bob", "-i", str(incomplete), input="hidden-pw\n"
    )
    assert refused.exit_code == 2 and "missing the required key" in refused.output
    result = invoke("run", "-b", str(scripts), "--setup", module, "-u", "bob", "-i", str(config), input="hidden-pw\n")
    assert result.exit_code == 0, result.output
    assert "Password" in result.output and "hidden-pw" not in result.output
    env = json.loads(out.read_text())
    assert env == {
        **env,
        "API_CLIENT_PASSWORD": "hidden-pw",
        "API_CLIENT_USERNAME": "bob",
        "API_CLIENT_RUN_ON_REDIS": "false",
        "API_CLIENT_SIMULATION_ID": "sim-1",
        "API_CLIENT_DOMAIN_NAME": "https://d.example",
        "API_CLIENT_WEBSOCKET_DOMAIN_NAME": "wss://w.example",
    }


def test_credentials_fall_back_to_the_environment(reporter, monkeypatch):
    scripts, module, _, out = reporter
    monkeypatch.setenv("API_CLIENT_USERNAME", "carol")
    monkeypatch.setenv("API_CLIENT_PASSWORD", "from-env")
    result = invoke("run", "-b", str(scripts), "--setup", module, "-s", "sim-2")
    assert result.exit_code == 0, result.output
    env = json.loads(out.read_text())
    assert (env["API_CLIENT_USERNAME"], env["API_CLIENT_PASSWORD"]) == ("carol", "from-env")
    assert env["API_CLIENT_DOMAIN_NAME"] == "https://d3aweb.gridsingularity.com"


def test_other_subcommands_still_resolve():
    result = invoke("exchange", "run", "--help")
    assert result.exit_code == 0 and "--scenario" in result.output
