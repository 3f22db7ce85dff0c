"""Fleet configuration (``fleet.yaml``): validated by pydantic, overridable from the environment.

Environment variables win over the file: ``GSY_FLEET_SHARDS=4``,
``GSY_FLEET_EXCHANGE__REDIS_URL=redis://...``, ``GSY_FLEET_BROKER_URL=...`` (nested fields use
``__``). A bad file gives one :class:`FleetConfigError` naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from workers.strategies import get_strategy
from workers.strategies.base import ASSET_KINDS, MARKET


class FleetConfigError(ValueError):
    """The fleet configuration is invalid; the message names the field."""


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


def _describe(error: ErrorDetails) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "<root>"
    message = error["msg"].removeprefix("Value error, ")
    return f"{location}: {message}"


def parse_fleet_config(raw: Any) -> FleetConfig:
    if not isinstance(raw, dict):
        raise FleetConfigError("fleet config must be a mapping")
    for key in raw:
        # The keys become keyword arguments of BaseSettings, which would take its own (_env_file,
        # _cli_parse_args, ...) and silently drop a field name in another case ("Shards").
        if key not in FleetConfig.model_fields:
            raise FleetConfigError(
                f"invalid fleet config at {key}: unknown key; expected one of {', '.join(FleetConfig.model_fields)}"
            )
    try:
        return FleetConfig(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
        raise FleetConfigError(f"invalid fleet config at {_describe(first)}{more}") from None


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
