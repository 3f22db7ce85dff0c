"""Fleet config validation, env overrides and the CLI's exit code."""

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import fleet_group
from orchestrator.config import FleetConfigError, load_fleet_config, parse_fleet_config

GOOD = {
    "name": "f1",
    "shards": 2,
    "aggregators": [{"name": "a", "assets": ["Load *"]}],
    "strategies": {"Load": {"name": "price_ramp", "params": {"initial_buying_rate": 5}}},
}


def test_good_config_and_strategy_lookup():
    config = parse_fleet_config(GOOD)
    assert config.shards == 2 and config.strategy_for("Load 1", "Load").name == "price_ramp"
    assert config.strategy_for("PV 1", "PV") is None


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda c: c.update(shards=0), "shards"),
        (lambda c: c.update(aggregators=[]), "aggregators"),
        (lambda c: c["aggregators"].append({"name": "a", "assets": ["x"]}), "unique"),
        (lambda c: c["aggregators"][0].update(assets=[]), "at least one asset or market"),
        (lambda c: c["strategies"].update(Load={"name": "nope"}), "nope"),
        (lambda c: c["strategies"].update(Wind={"name": "price_ramp"}), "Wind"),
        (lambda c: c["strategies"].update(Load={"name": "grid_fee"}), "cannot drive Load"),
        (lambda c: c["strategies"]["Load"]["params"].update(initial_buying_rate=-1), "initial_buying_rate"),
        (lambda c: c.update(shardz=3), "shardz"),
    ],
)
def test_bad_configs_name_the_problem(change, field):
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    change(raw)
    with pytest.raises(FleetConfigError) as error:
        parse_fleet_config(raw)
    assert field in str(error.value)


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    monkeypatch.setenv("GSY_FLEET_SHARDS", "5")
    monkeypatch.setenv("GSY_FLEET_EXCHANGE__REDIS_URL", "redis://example:6379")
    config = load_fleet_config(path)
    assert config.shards == 5 and config.exchange.redis_url == "redis://example:6379"


def test_cli_exits_2_on_a_bad_config(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "shards": "many"}))
    result = CliRunner().invoke(fleet_group, ["dispatch", "--config", str(path)])
    assert result.exit_code == 2 and "shards" in result.output
