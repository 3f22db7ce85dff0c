"""REST helpers of ``gsy_e_sdk.utils`` (SDK_API.md 7), the run command's REST options and the
REST switch of ``gsy_e_sdk.types``; pure logic, no server."""

from __future__ import annotations

import json
import logging
import textwrap
import uuid

import pytest
import requests
from click.testing import CliRunner

from gsy_e_sdk import utils
from gsy_e_sdk.cli import main
from gsy_e_sdk.utils import SimulationConfigError, read_simulation_config_file

CONFIG = {
    "username": "someone@example.com",
    "name": "collab3218",
    "uuid": "84d221fa-46e1-49e0-823b-26cfb3425a5a",
    "domain_name": "https://d.example",
    "web_socket_domain_name": "wss://d.example/external-ws",
    "global_settings": {"slot_length": "0:15:00"},
    "registry": {"name": "Market", "type": "Area", "uuid": "c0b4", "children": []},
}
ENV_KEYS = (
    "API_CLIENT_USERNAME",
    "API_CLIENT_PASSWORD",
    "API_CLIENT_RUN_ON_REDIS",
    "API_CLIENT_DOMAIN_NAME",
    "API_CLIENT_WEBSOCKET_DOMAIN_NAME",
    "API_CLIENT_SIMULATION_ID",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in ENV_KEYS:
        monkeypatch.setenv(key, "placeholder")
        monkeypatch.delenv(key)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_domain_names_and_simulation_id_come_from_the_environment(monkeypatch):
    assert utils.get_sim_id_and_domain_names() == (
        "",
        "https://d3aweb.gridsingularity.com",
        "wss://d3aweb.gridsingularity.com/external-ws",
    )
    monkeypatch.setenv("API_CLIENT_DOMAIN_NAME", "http://127.0.0.1:8000")
    monkeypatch.setenv("API_CLIENT_WEBSOCKET_DOMAIN_NAME", "ws://127.0.0.1:8000/external-ws")
    monkeypatch.setenv("API_CLIENT_SIMULATION_ID", "sim-9")
    assert utils.get_sim_id_and_domain_names() == ("sim-9", "http://127.0.0.1:8000", "ws://127.0.0.1:8000/external-ws")


def test_prefixes_keep_the_trailing_slash_and_default_to_the_env_simulation(monkeypatch):
    assert (
        utils.get_aggregator_prefix("https://d.example/", "sim-1")
        == "https://d.example/external-connection/aggregator-api/sim-1/"
    )
    assert (
        utils.get_configuration_prefix("https://d.example", "sim-1")
        == "https://d.example/external-connection/configurations/sim-1/"
    )
    monkeypatch.setenv("API_CLIENT_SIMULATION_ID", "from-env")
    assert utils.get_aggregator_prefix("https://d.example").endswith("/aggregator-api/from-env/")


def test_a_complete_config_file_is_returned_whole(tmp_path):
    path = tmp_path / "api-client-summary.json"
    path.write_text(json.dumps({**CONFIG, "extra": 1}))
    assert read_simulation_config_file(str(path)) == {**CONFIG, "extra": 1}
    assert read_simulation_config_file(None) is None and read_simulation_config_file("") is None


@pytest.mark.parametrize("missing", sorted(CONFIG))
def test_each_required_key_is_named_when_missing(tmp_path, missing):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({key: value for key, value in CONFIG.items() if key != missing}))
    with pytest.raises(SimulationConfigError, match=f"missing the required key '{missing}'"):
        read_simulation_config_file(path)


def test_malformed_config_files_are_refused_with_a_reason(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**CONFIG, "registry": "not an object"}))
    with pytest.raises(SimulationConfigError, match="key 'registry'"):
        read_simulation_config_file(path)
    path.write_text("{nope")
    with pytest.raises(SimulationConfigError, match="is not JSON"):
        read_simulation_config_file(path)
    with pytest.raises(SimulationConfigError, match="Cannot read"):
        read_simulation_config_file(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("server", "warns"), [("1.3.0", False), ("1.2.9", False), ("1.3.1", True), ("1.10.0", True), ("2.0", True)]
)
def test_client_version_check_compares_numbers(caplog, server, warns):
    answer = requests.Response()
    answer.headers["API-VERSION"] = server
    with caplog.at_level(logging.WARNING):
        utils.validate_client_up_to_date(answer)
    assert ("is outdated" in caplog.text) is warns


def test_scm_canary_networks_are_recognised_by_their_market_type():
    assert utils.is_scm_canary_network({"settingsData": {"spotMarketType": "COEFFICIENTS"}})
    assert not utils.is_scm_canary_network({"settingsData": {"spotMarketType": "TWO_SIDED"}})
    assert not utils.is_scm_canary_network({})


def test_types_are_the_rest_classes_unless_on_redis(monkeypatch):
    from gsy_e_sdk.aggregator import Aggregator
    from gsy_e_sdk.clients.rest_asset_client import RestAssetClient
    from gsy_e_sdk.rest_market import RestMarketClient

    monkeypatch.setenv("API_CLIENT_RUN_ON_REDIS", "false")
    from gsy_e_sdk import types

    assert (types.device_client_type, types.aggregator_client_type, types.market_client_type) == (
        RestAssetClient,
        Aggregator,
        RestMarketClient,
    )
    assert issubclass(Aggregator, RestAssetClient)


REPORTER = textwrap.dedent("""
    import json, os
    with open({out!r}, "w") as handle:
        json.dump({{key: os.environ.get(key) for key in {keys!r}}}, handle)
""")


@pytest.fixture()
def reporter(tmp_path):
    out = tmp_path / "env.json"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    module = f"rest_report_{uuid.uuid4().hex[:8]}"
    (scripts / f"{module}.py").write_text(REPORTER.format(out=str(out), keys=ENV_KEYS))
    return scripts, module, out


def test_run_exports_the_validated_config_file(reporter, tmp_path):
    scripts, module, out = reporter
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    result = CliRunner().invoke(
        main,
        [
            "run",
            "-b",
            str(scripts),
            "--setup",
            module,
            "-u",
            "bob",
            "-i",
            str(config),
            "-s",
            "ignored-when-a-file-is-given",
        ],
        input="prompted-pw\n",
    )
    assert result.exit_code == 0, result.output
    env = json.loads(out.read_text())
    assert env["API_CLIENT_SIMULATION_ID"] == CONFIG["uuid"]
    assert env["API_CLIENT_DOMAIN_NAME"] == CONFIG["domain_name"]
    assert env["API_CLIENT_WEBSOCKET_DOMAIN_NAME"] == CONFIG["web_socket_domain_name"]
    assert env["API_CLIENT_PASSWORD"] == "prompted-pw" and "prompted-pw" not in result.output
    assert "command line" not in result.output  # prompted, so no argv warning


def test_run_refuses_a_config_file_without_a_required_key(reporter, tmp_path):
    scripts, module, out = reporter
    config = tmp_path / "config.json"
    config.write_text(json.dumps({key: value for key, value in CONFIG.items() if key != "registry"}))
    result = CliRunner().invoke(
        main, ["run", "-b", str(scripts), "--setup", module, "-i", str(config), "-u", "bob", "-p", "x"]
    )
    assert result.exit_code == 2
    assert "missing the required key 'registry'" in result.output
    assert not out.exists()  # the script never ran


def test_a_password_on_the_command_line_works_but_warns_without_the_value(reporter, tmp_path):
    scripts, module, out = reporter
    log_file = tmp_path / "run.log"
    result = CliRunner().invoke(
        main,
        [
            "--log-level",
            "DEBUG",
            "--log-file",
            str(log_file),
            "run",
            "-b",
            str(scripts),
            "--setup",
            module,
            "-u",
            "bob",
            "-p",
            "argv-secret-pw",
            "-s",
            "sim-3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["API_CLIENT_PASSWORD"] == "argv-secret-pw"
    log = log_file.read_text()
    assert "password was given on the command line" in log and "argv-secret-pw" not in log
    quiet = CliRunner().invoke(
        main, ["run", "-b", str(scripts), "--setup", module, "-u", "bob", "-p", "argv-secret-pw", "-s", "sim-3"]
    )
    # At the default level (ERROR) the warning still reaches stderr, without the value.
    assert "password was given on the command line" in quiet.output
    assert "argv-secret-pw" not in quiet.output
