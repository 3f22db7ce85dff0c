"""Fleet configuration (``fleet.yaml``): validated by pydantic, overridable from the environment.

Environment variables win over the file: ``GSY_FLEET_SHARDS=4``,
``GSY_FLEET_EXCHANGE__REDIS_URL=redis://...``, ``GSY_FLEET_BROKER_URL=...`` (nested fields use
``__``). The exchange's Redis is a command's ``--redis-url``, else env ``REDIS_URL``, else the
file's ``exchange.redis_url`` (``FleetConfig.exchange_redis_url``). A bad file gives one
:class:`FleetConfigError` listing every mistake, one line each naming its field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gsy_e_sdk.wire.redis_url import resolve_redis_url
from workers.strategies import get_strategy
from workers.strategies.base import ASSET_KINDS, MARKET

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
# A report lists this many mistakes, each cut to this length (a garbled file can hold thousands).
MAX_LISTED_ERRORS = 13
MAX_ERROR_CHARS = 200


class FleetConfigError(ValueError):
    """The fleet configuration is invalid; one line per mistake, each naming its field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExchangeConfig(_Strict):
    mode: Literal["redis", "rest"] = "redis"
    redis_url: str | None = None
    domain_name: str | None = None
    websocket_domain_name: str | None = None
    simulation_id: str | None = None


class StrategyConfig(_Strict):
    """A strategy by registry name with its parameters (validated by the strategy's own model)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_and_valid(self) -> StrategyConfig:
        try:
            spec = get_strategy(self.name)
        except (KeyError, ValueError) as exc:
            raise ValueError(str(exc).strip("'\"")) from None
        spec.params_model.model_validate(self.params)
        return self

    def validated_params(self) -> BaseModel:
        return get_strategy(self.name).params_model.model_validate(self.params)


class AggregatorConfig(_Strict):
    name: str = Field(min_length=1)
    assets: list[str] = Field(default_factory=list, description="asset names or glob patterns")
    markets: list[str] = Field(default_factory=list, description="market names, slugs or glob patterns")

    @model_validator(mode="after")
    def _controls_something(self) -> AggregatorConfig:
        if not self.assets and not self.markets:
            raise ValueError("an aggregator needs at least one asset or market")
        return self


class FleetConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GSY_FLEET_", env_nested_delimiter="__", extra="forbid", allow_inf_nan=False
    )

    name: str = Field("fleet", pattern=r"^[A-Za-z0-9_.-]+$")
    exchange: ExchangeConfig = Field(default_factory=ExchangeConfig)
    broker_url: str | None = None
    shards: int = Field(2, ge=1, le=1024)
    max_assets_per_task: int = Field(200, ge=1)
    task_timeout: float = Field(10.0, gt=0, description="seconds a task waits for the exchange's answer")
    failover_after: float = Field(
        3.0, ge=0, description="seconds of worker silence before its shard queues go to others; 0: never"
    )
    aggregators: list[AggregatorConfig] = Field(min_length=1)
    strategies: dict[str, StrategyConfig] = Field(default_factory=dict)
    asset_strategies: dict[str, StrategyConfig] = Field(default_factory=dict)

    @field_validator("strategies")
    @classmethod
    def _kinds(cls, value: dict[str, StrategyConfig]) -> dict[str, StrategyConfig]:
        known = [*sorted(ASSET_KINDS), MARKET]
        for kind, strategy in value.items():
            if kind not in known:
                raise ValueError(f"unknown asset kind {kind!r}; expected one of {known}")
            if not get_strategy(strategy.name).drives(kind):
                raise ValueError(f"strategy {strategy.name!r} cannot drive {kind}")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> FleetConfig:
        names = [aggregator.name for aggregator in self.aggregators]
        duplicated = {name for name in names if names.count(name) > 1}
        if duplicated:
            raise ValueError(f"aggregator names must be unique: {sorted(duplicated)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls,
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings,
        file_secret_settings,
    ):
        return env_settings, init_settings

    def strategy_for(self, asset_name: str, kind: str) -> StrategyConfig | None:
        return self.asset_strategies.get(asset_name) or self.strategies.get(kind)

    def exchange_redis_url(self, explicit: str | None = None) -> str:
        """The exchange's Redis (and the fleet's state): ``explicit`` (a ``--redis-url`` flag) >
        env ``REDIS_URL`` > this file's ``exchange.redis_url`` > 127.0.0.1:6379."""
        return resolve_redis_url(explicit, configured=self.exchange.redis_url, default=DEFAULT_REDIS_URL)


def _describe(error: ErrorDetails) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "<root>"
    message = " ".join(error["msg"].removeprefix("Value error, ").split())  # one line, whatever it nests
    return f"{location}: {message}"


def _report(problems: list[str]) -> str:
    lines = [_shorten(f"invalid fleet config at {problem}") for problem in problems[:MAX_LISTED_ERRORS]]
    if len(problems) > MAX_LISTED_ERRORS:
        lines.append(f"invalid fleet config: and {len(problems) - MAX_LISTED_ERRORS} more errors")
    return "\n".join(lines)


def _shorten(line: str) -> str:
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


def parse_fleet_config(raw: Any) -> FleetConfig:
    """The validated config, or one ``FleetConfigError`` listing every mistake (one line each)."""
    if not isinstance(raw, dict):
        raise FleetConfigError("fleet config must be a mapping")
    # The keys become keyword arguments of BaseSettings, which would take its own (_env_file,
    # _cli_parse_args, ...) and silently drop a field name in another case ("Shards").
    problems = [
        f"{key}: unknown key; expected one of {', '.join(FleetConfig.model_fields)}"
        for key in raw
        if key not in FleetConfig.model_fields
    ]
    try:
        config = FleetConfig(**{key: value for key, value in raw.items() if key in FleetConfig.model_fields})
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    if problems:
        raise FleetConfigError(_report(problems))
    return config


def load_fleet_config(path: str | Path) -> FleetConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetConfigError(f"cannot read fleet config {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise FleetConfigError(
            f"cannot read fleet config {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except RecursionError:
        raise FleetConfigError(f"cannot parse fleet config {path}: nested too deeply") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date or an integer out of range
        raise FleetConfigError(f"cannot parse fleet config {path}: {exc}") from None
    _resolve_relative_paths(raw, path.parent)
    return parse_fleet_config(raw)


def _resolve_relative_paths(raw: Any, base: Path) -> None:
    """Strategy files (e.g. a time-of-use ``csv_path``) are relative to the fleet file."""
    if not isinstance(raw, dict):
        return
    sections = [raw.get("strategies"), raw.get("asset_strategies")]
    for section in sections:
        if not isinstance(section, dict):
            continue  # validation reports it
        for strategy in section.values():
            params = strategy.get("params") if isinstance(strategy, dict) else None
            if isinstance(params, dict) and isinstance(params.get("csv_path"), str):
                candidate = Path(params["csv_path"])
                if not candidate.is_absolute():
                    params["csv_path"] = str(base / candidate)
