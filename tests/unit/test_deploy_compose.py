"""The deployment: docker-compose.yml, deploy/Dockerfile, deploy/.env.example, the worker entrypoint.

``docker compose config`` validates the file when the compose plugin is installed; the YAML checks
always run, including a small re-implementation of compose's ``${VAR:-default}`` / ``${VAR:?err}``
interpolation so the fail-fast behaviour for missing secrets is checked on machines without Docker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from orchestrator import flower_auth
from orchestrator.worker_entry import (
    COUNT_ENV,
    INDEX_ENV,
    QUEUES_ENV,
    WorkerQueuesError,
    queues_from_env,
    worker_command,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / ".env.example"
SERVICES = {"redis", "rabbitmq", "exchange", "dispatcher", "worker", "flower"}
APP_SERVICES = SERVICES - {"redis", "rabbitmq"}
HUB_SERVICES = SERVICES - {"worker"}
# Required by every host; GSY_RABBITMQ_PASSWORD only by the rabbitmq service (checked by its command).
SECRETS = {"GSY_REDIS_PASSWORD": "0123456789abcdef0123456789abcdef", "GSY_FLOWER_BASIC_AUTH": "ops:flower-test-pw"}
RABBITMQ_PASSWORD = "fedcba9876543210fedcba9876543210"
# $$ is an escaped dollar; ${NAME}, ${NAME:-x}, ${NAME-x}, ${NAME:?x}, ${NAME?x} and $NAME are references.
REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(ValueError):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string (enough of it for this file)."""

    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        missing = current is None or (current == "" and op and op.startswith(":"))
        if op in ("?", ":?") and missing:
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        if op in ("-", ":-") and missing:
            return arg
        return current or ""

    return REFERENCE.sub(replace, value)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env) for value in node]
    return interpolate(node, env) if isinstance(node, str) else node


def referenced_variables(text: str) -> set[str]:
    return {match["braced"] or match["bare"] for match in REFERENCE.finditer(text) if not match["escaped"]}


def parse_env_file(text: str) -> dict[str, str]:
    """The ``KEY=value`` lines of a compose env file (comments and blank lines skipped)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, separator, value = line.partition("=")
            assert separator, f"not KEY=value: {line!r}"
            values[key.strip()] = value.strip()
    return values


def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command")
    return " ".join(command) if isinstance(command, list) else str(command)


# ---- the compose file, as YAML ----------------------------------------------------------------


def test_services_images_and_builds(services):
    assert set(services) == SERVICES
    assert services["redis"]["image"].startswith("redis:")
    assert services["rabbitmq"]["image"].startswith("rabbitmq:")
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == "${GSY_IMAGE:-gsy-e-sdk:local}", name
        assert service["build"]["context"] == "."
        assert (ROOT / service["build"]["dockerfile"]) == DEPLOY / "Dockerfile"


def test_profiles_split_the_hub_from_the_worker_hosts(services):
    # The hub starts without profiles (redis, dispatcher, flower) plus "local" and "rabbitmq" when
    # wanted; a worker host runs only the worker service.
    profiles = {name: service.get("profiles") for name, service in services.items() if service.get("profiles")}
    assert profiles == {"rabbitmq": ["rabbitmq"], "exchange": ["local"], "worker": ["worker"]}
    # A dependency on a service of a profile is optional, so the hub starts without workers.
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            if dependency in profiles:
                assert condition == {"condition": "service_healthy", "required": False}, (name, dependency)


def test_commands(services):
    assert "gsy-e-sdk --log-level INFO exchange run --scenario" in command_text(services["exchange"])
    assert "--start-when-selected" in command_text(services["exchange"])
    assert command_text(services["dispatcher"]).startswith("gsy-e-sdk --log-level INFO fleet dispatch --config ")
    assert command_text(services["worker"]) == "python -m orchestrator.worker_entry"
    assert command_text(services["flower"]) == "python -m orchestrator.flower"
    assert "redis-server" in command_text(services["redis"])
    assert command_text(services["rabbitmq"]).endswith("exec docker-entrypoint.sh rabbitmq-server")


def test_fleet_env_reaches_dispatcher_and_workers(services):
    redis_url = services["exchange"]["environment"]["REDIS_URL"]
    for name in ("dispatcher", "worker", "flower"):
        env = services[name]["environment"]
        assert env["REDIS_URL"] == redis_url, name
        # Empty (the default) means the hub's Redis is the broker too; RabbitMQ is set in .env.
        assert env["GSY_FLEET_BROKER_URL"] == "${GSY_FLEET_BROKER_URL:-}", name
    for name in ("dispatcher", "worker"):
        env = services[name]["environment"]
        for key in ("GSY_FLEET_CONFIG", "GSY_FLEET_VISIBILITY_TIMEOUT", "GSY_FLEET_BROKER_HEARTBEAT"):
            assert key in env, (name, key)
    worker_env = services["worker"]["environment"]
    for key in (QUEUES_ENV, INDEX_ENV, COUNT_ENV, "GSY_FLEET_WORKER_CONCURRENCY"):
        assert key in worker_env, key


def test_flower_requires_auth_from_env(services):
    env = services["flower"]["environment"]
    assert flower_auth.AUTH_ENV_VARS[0] == "GSY_FLOWER_BASIC_AUTH"
    assert re.fullmatch(r"\$\{GSY_FLOWER_BASIC_AUTH:\?[^}]+\}", env["GSY_FLOWER_BASIC_AUTH"])
    assert env["GSY_FLOWER_ADDRESS"] == "0.0.0.0"
    assert "--basic-auth" not in command_text(services["flower"]) and "--no-auth" not in command_text(
        services["flower"]
    )


def test_worker_scales(services):
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker and "hostname" not in worker
    assert worker["restart"] == "unless-stopped"


def test_brokers_publish_on_the_hubs_address_from_env(services):
    assert services["redis"]["ports"] == ["${GSY_REDIS_PUBLISH:-127.0.0.1:6379}:6379"]
    assert services["rabbitmq"]["ports"] == ["${GSY_RABBITMQ_PUBLISH:-127.0.0.1:5672}:5672"]
    # RabbitMQ names its data directory after the host name: it must not change with the container.
    assert services["rabbitmq"]["hostname"] == "rabbitmq"


def test_no_secret_is_written_inline(compose, services):
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|AUTH|SECRET|TOKEN", key):
                required = re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value))
                # Compose checks ":?" in services of disabled profiles too, so rabbitmq checks its own.
                checked_by_command = value == f"${{{key}:-}}" and f'test -n "$${key}"' in command_text(service)
                assert required or checked_by_command, (name, key)
            if key.endswith("_URL") and "redis://" in str(value):
                assert str(value).startswith("redis://:${GSY_REDIS_PASSWORD:?"), (name, key)
    # The passwords never land on a command line: the servers read them from a file or their environment.
    assert "--requirepass" not in command_text(services["redis"])
    assert "$$GSY_REDIS_PASSWORD" in command_text(services["redis"])
    assert 'RABBITMQ_DEFAULT_PASS="$$GSY_RABBITMQ_PASSWORD"' in command_text(services["rabbitmq"])


def _rabbitmq_command(services, password: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the rabbitmq service's command line with a stand-in docker-entrypoint.sh that prints
    its argv and the RabbitMQ settings it was given."""
    stand_in = tmp_path / "docker-entrypoint.sh"
    stand_in.write_text(
        '#!/bin/sh\necho "argv=$*"\n'
        'echo "user=$RABBITMQ_DEFAULT_USER vhost=$RABBITMQ_DEFAULT_VHOST pass=$RABBITMQ_DEFAULT_PASS"\n'
        'echo "left=${GSY_RABBITMQ_PASSWORD:-unset}"\n'
    )
    stand_in.chmod(0o755)
    resolved = interpolate_tree(services["rabbitmq"], {"GSY_RABBITMQ_PASSWORD": password})
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "GSY_RABBITMQ_PASSWORD": resolved["environment"]["GSY_RABBITMQ_PASSWORD"],
    }
    return subprocess.run(resolved["command"], capture_output=True, text=True, env=env, timeout=10)


def test_rabbitmq_gets_its_password_from_env_and_refuses_an_empty_one(services, tmp_path: Path):
    started = _rabbitmq_command(services, RABBITMQ_PASSWORD, tmp_path)
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines() == [
        "argv=rabbitmq-server",
        f"user=gsy vhost=gsy pass={RABBITMQ_PASSWORD}",
        "left=unset",  # the GSY_ copy is not handed on to the server
    ]
    refused = _rabbitmq_command(services, "", tmp_path)
    assert refused.returncode != 0 and "argv=" not in refused.stdout
    assert "set GSY_RABBITMQ_PASSWORD" in refused.stderr


def test_healthchecks_and_restart_policies(services):
    for name in ("redis", "rabbitmq", "exchange", "worker", "flower"):
        assert services[name]["healthcheck"]["test"], name
    assert "PONG" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "rabbitmq-diagnostics" in " ".join(services["rabbitmq"]["healthcheck"]["test"])
    assert "aggregator-commands" in " ".join(services["exchange"]["healthcheck"]["test"])
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    assert "/healthcheck" in " ".join(services["flower"]["healthcheck"]["test"])
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "on-failure", "always"), name
    dependencies = services["dispatcher"]["depends_on"]
    assert dependencies["redis"]["condition"] == "service_healthy"
    assert dependencies["exchange"] == {"condition": "service_healthy", "required": False}


def test_every_referenced_variable_is_in_env_example():
    referenced = referenced_variables(COMPOSE.read_text())
    documented = env_example()
    assert referenced, "no variables found: the pattern is broken"
    assert referenced - set(documented) == set()
    # ... and the example documents nothing compose does not use.
    assert set(documented) - referenced == set()


def test_env_example_holds_no_real_secret():
    values = env_example()
    for key in (*SECRETS, "GSY_RABBITMQ_PASSWORD"):
        assert values[key] == "", f"{key} must be left empty in the example"
    assert values["GSY_FLEET_BROKER_URL"] == "", "the default broker is the hub's Redis"


def test_interpolation_fails_fast_without_secrets(compose):
    base = {**env_example(), **SECRETS}
    resolved = interpolate_tree(compose, base)["services"]
    assert resolved["worker"]["environment"]["REDIS_URL"] == f"redis://:{SECRETS['GSY_REDIS_PASSWORD']}@redis:6379/0"
    assert resolved["flower"]["environment"]["GSY_FLOWER_BASIC_AUTH"] == SECRETS["GSY_FLOWER_BASIC_AUTH"]
    assert resolved["worker"]["environment"][QUEUES_ENV] == ""
    assert resolved["worker"]["environment"]["GSY_FLEET_BROKER_URL"] == ""  # the hub's Redis
    assert "$GSY_REDIS_PASSWORD" in command_text(resolved["redis"])  # $$ stays a literal for the shell
    # A worker host: the hub's address, RabbitMQ as the broker; no RabbitMQ password needed elsewhere.
    amqp = f"amqp://gsy:{RABBITMQ_PASSWORD}@10.0.0.5:5672/gsy"
    host = interpolate_tree(compose, {**base, "GSY_REDIS_ADDRESS": "10.0.0.5:6379", "GSY_FLEET_BROKER_URL": amqp})
    worker_env = host["services"]["worker"]["environment"]
    assert worker_env["REDIS_URL"] == f"redis://:{SECRETS['GSY_REDIS_PASSWORD']}@10.0.0.5:6379/0"
    assert worker_env["GSY_FLEET_BROKER_URL"] == amqp
    assert base["GSY_RABBITMQ_PASSWORD"] == ""
    for secret in SECRETS:
        with pytest.raises(MissingVariable, match=secret):
            interpolate_tree(compose, {**base, secret: ""})
        with pytest.raises(MissingVariable, match=secret):
            interpolate_tree(compose, {key: value for key, value in base.items() if key != secret})


# ---- Dockerfile, README --------------------------------------------------------------------------


def test_dockerfile_installs_the_package_as_a_non_root_user():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert stages and all(stage == "python:3.11-slim" for stage in stages)
    assert re.search(r"pip install .*gsy-e-sdk", text)
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r"include = \[([^\]]+)\]", pyproject)
    assert packages, "pyproject.toml lists no packages"
    for package in re.findall(r'"(\w+)\*"', packages.group(1)):
        assert re.search(rf"^COPY {package} ", text, flags=re.M), f"the image misses the {package} package"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    assert "**" in ignore.splitlines() and "!orchestrator/" in ignore.splitlines()  # allow-list context


def test_readme_explains_scaling_across_machines():
    text = (DEPLOY / "README.md").read_text()
    section = text.split("## Scaling across machines", 1)
    assert len(section) == 2, "missing section 'Scaling across machines'"
    body = section[1]
    for needle in (
        "--scale worker=",
        QUEUES_ENV,
        INDEX_ENV,
        COUNT_ENV,
        "GSY_FLOWER_BASIC_AUTH",
        "--no-deps",
        "reachable",
        "--profile local",
        "--profile rabbitmq",
        "Redis 6379",
        "RabbitMQ 5672",
        "never a command line",
    ):
        assert needle in body, needle


def test_readme_explains_losing_a_worker_host():
    body = (DEPLOY / "README.md").read_text().split("### 4. When a worker host is lost", 1)
    assert len(body) == 2, "missing section 'When a worker host is lost'"
    section = body[1].split("\n### ", 1)[0]
    for needle in (
        "failover_after",
        "default 3.0",
        "add_consumer",
        "cancel_consumer",
        "within one slot",
        "GSY_FLEET_VISIBILITY_TIMEOUT",
        "GSY_FLEET_BROKER_HEARTBEAT",
        "connections close",
    ):
        assert needle in section, needle


# ---- docker compose config (when the plugin is installed) ----------------------------------------


def docker_compose_unavailable() -> str | None:
    if not shutil.which("docker"):
        return "the docker CLI is not installed"
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        detail = ((probe.stderr or probe.stdout).strip().splitlines() or ["no output"])[0][:120]
        return f"the docker compose plugin is not installed ({detail})"
    return None


def run_compose_config(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    # No GSY_* from the test's own environment: compose lets the shell override the env file.
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GSY_")}
    return subprocess.run(
        ["docker", "compose", "--project-directory", str(ROOT), "-f", str(COMPOSE), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        env=clean,
    )


def test_docker_compose_config_accepts_the_file(tmp_path: Path):
    reason = docker_compose_unavailable()
    if reason:
        pytest.skip(f"docker compose config not run: {reason}; the YAML checks above still ran")
    env = {**env_example(), **SECRETS}
    profiles = ("--profile", "local", "--profile", "rabbitmq", "--profile", "worker")
    result = run_compose_config(tmp_path, env, *profiles, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)["services"]
    assert set(resolved) == SERVICES
    assert resolved["flower"]["environment"]["GSY_FLOWER_BASIC_AUTH"] == SECRETS["GSY_FLOWER_BASIC_AUTH"]
    assert "container_name" not in resolved["worker"]
    hub = run_compose_config(tmp_path, env, "config", "--services")
    assert hub.returncode == 0 and set(hub.stdout.split()) == HUB_SERVICES - {"exchange", "rabbitmq"}


def test_docker_compose_refuses_to_run_without_flower_auth(tmp_path: Path):
    reason = docker_compose_unavailable()
    if reason:
        pytest.skip(f"docker compose config not run: {reason}; test_interpolation_fails_fast_without_secrets covers it")
    result = run_compose_config(tmp_path, {**env_example(), **SECRETS, "GSY_FLOWER_BASIC_AUTH": ""}, "config")
    assert result.returncode != 0 and "GSY_FLOWER_BASIC_AUTH" in result.stderr


# ---- how a worker replica picks its shard queues -------------------------------------------------


@pytest.mark.parametrize(
    ("env", "shards", "expected"),
    [
        ({}, 3, ["shard-0", "shard-1", "shard-2"]),
        ({QUEUES_ENV: "", INDEX_ENV: "", COUNT_ENV: ""}, 2, ["shard-0", "shard-1"]),  # compose's empty defaults
        ({QUEUES_ENV: "shard-2, shard-0,shard-2"}, 4, ["shard-2", "shard-0"]),
        ({QUEUES_ENV: "shard-1", INDEX_ENV: "0", COUNT_ENV: "2"}, 4, ["shard-1"]),  # explicit queues win
        ({INDEX_ENV: "0", COUNT_ENV: "2"}, 4, ["shard-0", "shard-2"]),
        ({INDEX_ENV: "1", COUNT_ENV: "2"}, 4, ["shard-1", "shard-3"]),
        ({INDEX_ENV: "2", COUNT_ENV: "3"}, 2, ["shard-0"]),  # more machines than shards: still one queue
    ],
)
def test_worker_queues_from_env(env, shards, expected):
    assert queues_from_env(env, shards) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({QUEUES_ENV: "shard-4"}, "not a shard queue"),
        ({QUEUES_ENV: "celery"}, "not a shard queue"),
        ({INDEX_ENV: "1"}, "both"),
        ({INDEX_ENV: "2", COUNT_ENV: "2"}, "0 <="),
        ({INDEX_ENV: "x", COUNT_ENV: "2"}, "integer"),
    ],
)
def test_worker_queues_bad_env(env, message):
    with pytest.raises(WorkerQueuesError, match=message):
        queues_from_env(env, 4)


def test_machines_by_index_cover_every_shard_once():
    shards, machines = 7, 3
    taken = [
        queue
        for index in range(machines)
        for queue in queues_from_env({INDEX_ENV: str(index), COUNT_ENV: str(machines)}, shards)
    ]
    assert sorted(taken) == sorted(f"shard-{shard}" for shard in range(shards))


def test_worker_entry_builds_the_documented_celery_command():
    fleet = ROOT / "orchestrator" / "fleets" / "community.yaml"
    result = CliRunner().invoke(
        worker_command,
        ["--print-only"],
        env={
            "GSY_FLEET_CONFIG": str(fleet),
            "GSY_FLEET_SHARDS": "4",
            INDEX_ENV: "1",
            COUNT_ENV: "2",
            QUEUES_ENV: "",
            "GSY_FLEET_WORKER_CONCURRENCY": "3",
            "GSY_FLEET_WORKER_NAME": "edge",
        },
    )
    assert result.exit_code == 0, result.output
    command = result.stdout.strip().split()
    assert command[1:6] == ["-m", "celery", "-A", "workers", "worker"]
    assert command[command.index("-Q") + 1] == "shard-1,shard-3"
    assert command[command.index("--concurrency") + 1] == "3"
    assert command[command.index("-n") + 1] == "edge@%h"
    assert "-E" in command


def test_worker_entry_rejects_queues_outside_the_fleet():
    fleet = ROOT / "orchestrator" / "fleets" / "community.yaml"
    result = CliRunner().invoke(
        worker_command,
        ["--print-only"],
        env={"GSY_FLEET_CONFIG": str(fleet), QUEUES_ENV: "shard-9", INDEX_ENV: "", COUNT_ENV: ""},
    )
    assert result.exit_code == 2 and "shard-9" in result.output
