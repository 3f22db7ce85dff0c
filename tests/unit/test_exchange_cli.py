"""The exchange CLI rejects bad input with one clear message and exit code 2."""

import json

from click.testing import CliRunner

from gsy_local_exchange.cli import exchange_group


def test_bad_scenario_names_the_field_and_exits_2(tmp_path):
    scenario = {
        "name": "Grid",
        "children": [{"name": "House", "children": [{"name": "pv", "type": "PV", "panel_count": -3}]}],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(scenario))
    result = CliRunner().invoke(exchange_group, ["run", "--scenario", str(path)])
    assert result.exit_code == 2
    assert "Grid > House > pv" in result.output and "panel_count" in result.output


def test_bad_duration_and_pace_are_usage_errors(tmp_path):
    runner = CliRunner()
    for option, value in (
        ("--duration", "soon"),
        ("--pace", "sometimes"),
        ("--pace", "-1"),
        ("--max-batch-commands", "0"),
        ("--batch-cache-mb", "-1"),
    ):
        result = runner.invoke(exchange_group, ["run", "--scenario", "x.json", option, value])
        assert result.exit_code == 2 and option in result.output


def test_generate_writes_a_loadable_scenario(tmp_path):
    out = tmp_path / "fleet.json"
    result = CliRunner().invoke(exchange_group, ["generate", "--assets", "50", "--markets", "5", "--out", str(out)])
    assert result.exit_code == 0
    tree = json.loads(out.read_text())
    assert len(tree["children"]) == 6  # five markets and the market maker
    too_many = CliRunner().invoke(exchange_group, ["generate", "--assets", "3", "--markets", "5", "--out", str(out)])
    assert too_many.exit_code == 2


def test_pace_defaults_to_the_scenarios_real_time_setting():
    from gsy_local_exchange.cli import effective_pace
    from gsy_local_exchange.scenario import Settings

    assert effective_pace(None, Settings(slot_length_realtime="5s")) == 5.0
    assert effective_pace(None, Settings()) == "fast"
    assert effective_pace("realtime", Settings(slot_length_realtime="5s")) == "realtime"
