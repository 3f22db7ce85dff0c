"""Every environment variable the deployment files use is read by something, or documented.

Why: a variable in docker-compose.yml that nothing reads is a setting that silently does nothing
(a typo, or a name the code dropped), and an operator cannot set what is not documented. The
deployment's names are the keys of every service's ``environment:`` (YAML anchors and merge keys
resolved), every ``${VAR}`` compose interpolates, every ``VAR=`` line of deploy/.env.example and
every ``GSY_*`` / ``REDIS_URL`` in deploy/README.md. The code reads a name when a string constant
of its AST equals it (``os.environ.get("X")``, ``X_ENV = "X"``, click's ``envvar="X"``) or when
pydantic-settings builds it (``env_prefix`` + field name, nested fields joined by
``env_nested_delimiter``). The rules:

- a variable that reaches a container (an ``environment:`` key) is read by the code, or by that
  service's own shell (``$$VAR`` in its command or health check, as redis's password);
- a variable compose only interpolates (GSY_IMAGE, GSY_REDIS_PUBLISH, ...) is documented in
  deploy/.env.example or deploy/README.md;
- every variable of deploy/.env.example and deploy/README.md is used by the compose file or read
  by the code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.unit.test_deploy_compose import COMPOSE, DEPLOY, ENV_EXAMPLE, ROOT, parse_env_file, referenced_variables

README = DEPLOY / "README.md"
PACKAGES = ("gsy_e_sdk", "orchestrator", "workers", "gsy_local_exchange")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# What a container's shell expands: compose turns $$ into $, so $$VAR and $${VAR...} in the file.
SHELL_REFERENCE = re.compile(r"\$\$\{?([A-Za-z_][A-Za-z0-9_]*)")
README_NAME = re.compile(r"\b(?:GSY_[A-Z0-9_]*[A-Z0-9]|REDIS_URL)\b")
NESTING_DEPTH = 3


# ---- what the code reads -------------------------------------------------------------------------


def _settings_config(cls: ast.ClassDef) -> tuple[str, str | None] | None:
    """``(env_prefix, env_nested_delimiter)`` of a pydantic-settings class, else None."""
    is_settings = any(ast.unparse(base).split(".")[-1] == "BaseSettings" for base in cls.bases)
    prefix, delimiter = "", None
    for statement in cls.body:
        target = statement.targets[0] if isinstance(statement, ast.Assign) else getattr(statement, "target", None)
        value = getattr(statement, "value", None)
        if not (isinstance(target, ast.Name) and target.id == "model_config" and isinstance(value, ast.Call)):
            continue
        options = {
            kw.arg: kw.value.value
            for kw in value.keywords
            if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)
        }
        if "env_prefix" in options:
            is_settings, prefix = True, str(options["env_prefix"])
        delimiter = options.get("env_nested_delimiter", delimiter)
    return (prefix, delimiter) if is_settings else None


def _fields(cls: ast.ClassDef) -> Iterator[tuple[str, ast.expr]]:
    for statement in cls.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            if statement.target.id != "model_config" and "ClassVar" not in ast.unparse(statement.annotation):
                yield statement.target.id, statement.annotation


def _setting_names(
    name: str, annotation: ast.expr, delimiter: str | None, classes: Mapping[str, ast.ClassDef], depth: int = 0
) -> Iterator[str]:
    """``name`` and, for a field whose type is a model class, its nested names."""
    yield name
    nested = classes.get(annotation.id) if isinstance(annotation, ast.Name) else None
    if delimiter and nested is not None and depth < NESTING_DEPTH:
        for child, child_annotation in _fields(nested):
            yield from _setting_names(
                f"{name}{delimiter}{child.upper()}", child_annotation, delimiter, classes, depth + 1
            )


def names_read_by(modules: Iterable[ast.Module]) -> set[str]:
    """The environment variable names the code of ``modules`` can read (see the module docstring)."""
    modules = list(modules)
    classes = {node.name: node for module in modules for node in ast.walk(module) if isinstance(node, ast.ClassDef)}
    names: set[str] = set()
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_NAME.match(node.value):
                names.add(node.value)
            elif isinstance(node, ast.ClassDef) and (config := _settings_config(node)):
                prefix, delimiter = config
                for name, annotation in _fields(node):
                    names.update(_setting_names(f"{prefix}{name}".upper(), annotation, delimiter, classes))
    return names


@pytest.fixture(scope="module")
def read_by_code() -> set[str]:
    sources = (path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")))
    return names_read_by(ast.parse(path.read_text(), filename=str(path)) for path in sources)


# ---- what the deployment uses --------------------------------------------------------------------


@dataclass
class ComposeUsage:
    """Where a compose file uses each variable."""

    environment: dict[str, list[str]] = field(default_factory=dict)  # name -> services passing it
    interpolated: dict[str, list[str]] = field(default_factory=dict)  # name -> where compose expands it
    shell: dict[str, set[str]] = field(default_factory=dict)  # service -> names its own shell expands


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def _environment_keys(environment: Any) -> list[str]:
    if isinstance(environment, dict):
        return list(environment)
    return [entry.partition("=")[0] for entry in environment or []]


def _shell_text(service: Mapping[str, Any]) -> str:
    parts = [service.get("command"), service.get("entrypoint"), (service.get("healthcheck") or {}).get("test")]
    return " ".join(" ".join(part) if isinstance(part, list) else str(part) for part in parts if part)


def compose_usage(compose: Mapping[str, Any]) -> ComposeUsage:
    """``compose`` as ``yaml.safe_load`` returns it: anchors and ``<<`` merge keys already resolved."""
    usage = ComposeUsage()
    for path, text in _strings(compose, ""):
        for name in referenced_variables(text):
            usage.interpolated.setdefault(name, []).append(path)
    for service_name, service in (compose.get("services") or {}).items():
        for key in _environment_keys(service.get("environment")):
            usage.environment.setdefault(key, []).append(service_name)
        usage.shell[service_name] = set(SHELL_REFERENCE.findall(_shell_text(service)))
    return usage


def unread_variables(compose: Mapping[str, Any], env_example: str, readme: str, read: set[str]) -> list[str]:
    """One line per variable that breaks a rule of the module docstring, naming it and where it is used."""
    usage = compose_usage(compose)
    example, documented_in_readme = set(parse_env_file(env_example)), set(README_NAME.findall(readme))
    used_by_compose = set(usage.environment) | set(usage.interpolated)
    problems = [
        f"{name}: services.{service}.environment passes it to the container, but neither the code nor "
        "the service's own command reads it"
        for name, services in sorted(usage.environment.items())
        for service in services
        if name not in read and name not in usage.shell[service]
    ]
    problems += [
        f"{name}: compose interpolates it ({', '.join(paths[:3])}), but neither deploy/.env.example "
        "nor deploy/README.md documents it"
        for name, paths in sorted(usage.interpolated.items())
        if name not in usage.environment and name not in example | documented_in_readme
    ]
    for where, names in (("deploy/.env.example sets", example), ("deploy/README.md names", documented_in_readme)):
        problems += [
            f"{name}: {where} it, but the compose file does not use it and the code does not read it"
            for name in sorted(names - used_by_compose - read)
        ]
    return problems


# ---- the deployment's own files ------------------------------------------------------------------


def test_every_variable_of_the_deployment_is_read_or_documented(read_by_code):
    compose = yaml.safe_load(COMPOSE.read_text())
    problems = unread_variables(compose, ENV_EXAMPLE.read_text(), README.read_text(), read_by_code)
    assert problems == [], "\n".join(problems)


def test_the_anchors_are_resolved_before_the_check():
    usage = compose_usage(yaml.safe_load(COMPOSE.read_text()))
    # x-fleet-env reaches the dispatcher and the workers through "<<", and x-broker-env Flower.
    assert {"dispatcher", "worker", "flower"} <= set(usage.environment["REDIS_URL"])
    assert {"dispatcher", "worker"} <= set(usage.environment["GSY_FLEET_CONFIG"])
    assert "GSY_REDIS_PASSWORD" in usage.shell["redis"]  # its sh -c line writes the password to a file
    assert "GSY_RABBITMQ_PASSWORD" in usage.shell["rabbitmq"]
    assert "GSY_IMAGE" in usage.interpolated and "GSY_IMAGE" not in usage.environment


def test_the_code_reads_settings_click_options_and_constants(read_by_code):
    assert {
        "GSY_FLEET_SHARDS",  # pydantic-settings: env_prefix + field
        "GSY_FLEET_EXCHANGE__REDIS_URL",  # ... + nested field
        "GSY_FLEET_FAILOVER_AFTER",
        "GSY_FLOWER_PORT",  # click envvar=
        "GSY_FLEET_WORKER_INDEX",  # a module constant
        "REDIS_URL",
    } <= read_by_code
    assert "GSY_FLEET_NO_SUCH_FIELD" not in read_by_code
    assert "GSY_FLEET_EXCHANGE__NO_SUCH_FIELD" not in read_by_code


# ---- the check can fail --------------------------------------------------------------------------

MADE_UP = """
x-env: &env
  REDIS_URL: redis://hub:6379/0
  GSY_NOBODY_READS_THIS: "1"
services:
  app:
    image: ${GSY_MADE_UP_TAG:-app:1}
    environment:
      <<: *env
  store:
    command: ["sh", "-c", "exec store --dir \\"$$GSY_STORE_DIR\\""]
    environment:
      GSY_STORE_DIR: ${GSY_STORE_DIR:-/data}
  other:
    environment:
      GSY_STORE_DIR: ${GSY_STORE_DIR:-/data}
"""


def test_made_up_compose_with_unread_variables_fails():
    compose = yaml.safe_load(MADE_UP)
    env_example = "GSY_STORE_DIR=/data\nGSY_STALE_SETTING=1\n"
    readme = "Set `GSY_MADE_UP_TAG`; `GSY_GONE_FROM_THE_CODE` was removed."
    problems = unread_variables(compose, env_example, readme, read={"REDIS_URL"})
    assert [problem.split(":")[0] for problem in problems] == [
        "GSY_NOBODY_READS_THIS",  # reaches the container (through the anchor), nothing reads it
        "GSY_STORE_DIR",  # "other" has no command that expands it; "store" has
        "GSY_STALE_SETTING",
        "GSY_GONE_FROM_THE_CODE",
    ]
    assert "services.app.environment" in problems[0]
    assert "services.other.environment" in problems[1]
    assert "deploy/.env.example" in problems[2] and "deploy/README.md" in problems[3]
    # Interpolation only: documented in the README here; without it, it is reported where it is used.
    undocumented = unread_variables(compose, env_example, "", read={"REDIS_URL"})
    assert any(
        problem.startswith("GSY_MADE_UP_TAG: compose interpolates it (services.app.image)") for problem in undocumented
    )


def test_made_up_settings_class_names_its_variables():
    module = ast.parse(
        """
from pydantic_settings import BaseSettings, SettingsConfigDict

class Inner(BaseModel):
    url: str

class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APP_", env_nested_delimiter="__")
    port: int
    inner: Inner

option = click.option("--level", envvar="APP_LEVEL")
"""
    )
    names = names_read_by([module])
    assert {"APP_PORT", "APP_INNER", "APP_INNER__URL", "APP_LEVEL"} <= names
    assert "APP_URL" not in names and "PORT" not in names


def test_readme_names_are_found():
    text = "`GSY_FLEET_EXCHANGE__REDIS_URL=...`, env REDIS_URL, `GSY_LOG_LEVEL`."
    assert README_NAME.findall(text) == ["GSY_FLEET_EXCHANGE__REDIS_URL", "REDIS_URL", "GSY_LOG_LEVEL"]
