"""Scenario files: the grid tree and global settings (EXCHANGE.md section 11).

A scenario is a JSON or YAML document whose root is the root market, in gsy-e's area format.
Global settings may sit under a ``settings`` key of the root. Everything is validated by
pydantic; :func:`load_scenario` turns a validation failure into one :class:`ScenarioError`
whose message names the field and its path in the tree (with area names).
"""

from __future__ import annotations

import difflib
import json
import uuid as uuid_module
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeAlias, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from gsy_e_sdk.wire.slug import slugify
from gsy_local_exchange.durations import parse_duration
from gsy_local_exchange.profiles import MAX_MAGNITUDE

# A profile: {"HH:MM" or "YYYY-MM-DDTHH:MM": value} (step-wise, daily keys repeat every day),
# a list of per-slot values, or the path of a CSV file (``time;value`` or ``time,value``)
# relative to the scenario file.
Profile = dict[str, float] | list[float] | str


MAX_PANELS = 1_000_000  # far above any plant; a count beyond the float range would crash the energy model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _not_huge(cls, value: Any) -> Any:
        if isinstance(value, float) and abs(value) > MAX_MAGNITUDE:
            raise ValueError(f"must be at most {MAX_MAGNITUDE:g} in magnitude")
        return value


class Settings(_Strict):
    """Global simulation settings; CLI options override them."""

    slot_length: timedelta = timedelta(minutes=15)
    tick_length: timedelta = timedelta(seconds=15)
    sim_duration: timedelta = timedelta(days=1)
    start_date: date | None = None
    market_maker_rate: float = Field(30.0, ge=0)
    feed_in_tariff: float = Field(0.0, ge=0)
    market_type: Literal[2] = 2
    bid_offer_match_algo: Literal[1, 2] = 1
    grid_fee_type: Literal[1, 2] = 1
    min_offer_age: int = Field(0, ge=0)
    min_bid_age: int = Field(0, ge=0)
    slot_length_realtime: timedelta | None = None

    @field_validator("slot_length", "tick_length", "sim_duration", "slot_length_realtime", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _consistent_clock(self) -> Settings:
        if not timedelta(minutes=2) <= self.slot_length <= timedelta(minutes=60):
            raise ValueError("slot_length must be between 2 and 60 minutes")
        if self.tick_length < timedelta(seconds=1):
            raise ValueError("tick_length must be at least 1 s")
        ratio = self.slot_length / self.tick_length
        if ratio != int(ratio) or ratio < 10:
            raise ValueError("slot_length / tick_length must be a whole number >= 10")
        if self.sim_duration < self.slot_length:
            raise ValueError("sim_duration must be at least one slot")
        return self


class _Area(_Strict):
    name: str = Field(min_length=1)
    uuid: str | None = None

    @field_validator("uuid")
    @classmethod
    def _valid_uuid(cls, value: str | None) -> str | None:
        if value is not None:
            uuid_module.UUID(value)
        return value


class _Pricing(_Strict):
    """Template-strategy price ramp shared by all tradeable assets (EXCHANGE.md 3.8)."""

    fit_to_limit: bool = True
    update_interval: float = Field(1.0, gt=0, description="minutes between price updates")
    use_market_maker_rate: bool = False
    allow_external_connection: bool = False


class _SellerPricing(_Pricing):
    initial_selling_rate: float | None = Field(None, ge=0)
    final_selling_rate: float = Field(0.0, ge=0)
    energy_rate_decrease_per_update: float | None = Field(None, ge=0)


class _BuyerPricing(_Pricing):
    initial_buying_rate: float = Field(0.0, ge=0)
    final_buying_rate: float = Field(35.0, ge=0)
    energy_rate_increase_per_update: float | None = Field(None, ge=0)


class PVNode(_Area, _SellerPricing):
    type: Literal["PV"] = "PV"
    panel_count: int = Field(1, ge=1, le=MAX_PANELS)
    capacity_kW: float = Field(5.0, gt=0)
    forecast_stream_enabled: bool = False


class PredefinedPVNode(_Area, _SellerPricing):
    type: Literal["PredefinedPV"] = "PredefinedPV"
    panel_count: int = Field(1, ge=1, le=MAX_PANELS)
    capacity_kW: float = Field(5.0, gt=0)
    cloud_coverage: Literal[0, 1, 2] = 0
    forecast_stream_enabled: bool = False


class PVProfileNode(_Area, _SellerPricing):
    type: Literal["PVProfile"] = "PVProfile"
    panel_count: int = Field(1, ge=1, le=MAX_PANELS)
    power_profile: Profile = Field(description="W per panel")
    forecast_stream_enabled: bool = False


class LoadHoursNode(_Area, _BuyerPricing):
    type: Literal["LoadHours"] = "LoadHours"
    avg_power_W: float = Field(ge=0)
    hrs_of_day: list[Annotated[int, Field(ge=0, le=23)]] = Field(default_factory=lambda: list(range(24)))
    forecast_stream_enabled: bool = False


class LoadProfileNode(_Area, _BuyerPricing):
    type: Literal["LoadProfile"] = "LoadProfile"
    daily_load_profile: Profile = Field(description="W")
    forecast_stream_enabled: bool = False


class StorageNode(_Area, _Pricing):
    type: Literal["Storage"] = "Storage"
    initial_soc: float = Field(10.0, ge=0, le=100)
    min_allowed_soc: float = Field(10.0, ge=0, le=100)
    battery_capacity_kWh: float = Field(1.2, gt=0)
    max_abs_battery_power_kW: float = Field(5.0, gt=0)
    initial_selling_rate: float = Field(30.0, ge=0)
    final_selling_rate: float = Field(25.0, ge=0)
    initial_buying_rate: float = Field(0.0, ge=0)
    final_buying_rate: float = Field(24.9, ge=0)

    @model_validator(mode="after")
    def _soc_order(self) -> StorageNode:
        if self.initial_soc < self.min_allowed_soc:
            raise ValueError("initial_soc must not be below min_allowed_soc")
        return self


class SmartMeterNode(_Area, _Pricing):
    type: Literal["SmartMeter"] = "SmartMeter"
    smart_meter_profile: Profile = Field(description="kWh per slot, positive = consumption")
    initial_selling_rate: float = Field(30.0, ge=0)
    final_selling_rate: float = Field(0.0, ge=0)
    initial_buying_rate: float = Field(0.0, ge=0)
    final_buying_rate: float = Field(30.0, ge=0)


class InfiniteBusNode(_Area):
    type: Literal["InfiniteBus"] = "InfiniteBus"
    energy_sell_rate: float | None = Field(None, ge=0)
    energy_buy_rate: float | None = Field(None, ge=0)
    energy_rate_profile: Profile | None = None
    buying_rate_profile: Profile | None = None
    allow_external_connection: Literal[False] = False


class MarketMakerNode(_Area):
    type: Literal["MarketMaker"] = "MarketMaker"
    energy_rate: float | None = Field(None, ge=0)
    grid_connected: bool = True
    allow_external_connection: Literal[False] = False


class CommercialProducerNode(_Area):
    type: Literal["CommercialProducer"] = "CommercialProducer"
    energy_rate: float | None = Field(None, ge=0)
    allow_external_connection: Literal[False] = False


AssetNode = (
    PVNode
    | PredefinedPVNode
    | PVProfileNode
    | LoadHoursNode
    | LoadProfileNode
    | StorageNode
    | SmartMeterNode
    | InfiniteBusNode
    | MarketMakerNode
    | CommercialProducerNode
)
ASSET_TYPES = {model.model_fields["type"].default: model for model in AssetNode.__args__}
# The nodes whose assets offer / bid at the template strategy's ramp (EXCHANGE.md 3.8).
SellerNode = PVNode | PredefinedPVNode | PVProfileNode | StorageNode | SmartMeterNode
BuyerNode = LoadHoursNode | LoadProfileNode | StorageNode | SmartMeterNode


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        kind = value.get("type")
    else:
        kind = getattr(value, "type", None)
    if kind in (None, "Area", "Market"):
        return "Market"
    return kind if isinstance(kind, str) and kind in ASSET_TYPES else "unknown"


class _UnknownNode(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str

    @model_validator(mode="after")
    def _reject(self) -> _UnknownNode:
        raise ValueError(f"unknown asset type {self.type!r}; expected one of {sorted(ASSET_TYPES)}")


if TYPE_CHECKING:  # what validation yields (an unknown type never validates)
    Node: TypeAlias = "MarketNode | AssetNode"
else:  # built from ASSET_TYPES, which the type checker cannot follow
    Node = Annotated[
        Union[
            Annotated["MarketNode", Tag("Market")],
            *(Annotated[model, Tag(kind)] for kind, model in ASSET_TYPES.items()),
            Annotated[_UnknownNode, Tag("unknown")],
        ],
        Discriminator(_node_kind),
    ]


class MarketNode(_Area):
    type: Literal["Area", "Market"] | None = None
    children: list[Node] = Field(default_factory=list)
    grid_fee_constant: float | None = None
    grid_fee_percentage: float | None = None
    allow_external_connection: bool = False
    external_connection_available: bool = False
    settings: Settings | None = None

    @property
    def externally_controllable(self) -> bool:
        return self.allow_external_connection or self.external_connection_available


MarketNode.model_rebuild()


class Scenario(BaseModel):
    """A validated scenario: the root market and the effective settings."""

    root: MarketNode
    settings: Settings
    base_dir: Path = Path(".")

    def iter_nodes(self) -> list[tuple[_Area, MarketNode | None]]:
        """Every node with its parent, root first, parents before children."""
        result: list[tuple[_Area, MarketNode | None]] = [(self.root, None)]
        for node, _ in result:
            if isinstance(node, MarketNode):  # the only node with children
                result.extend((child, node) for child in node.children)
        return result


class ScenarioError(ValueError):
    """A scenario file could not be read or validated; the message says where."""


_PATH_ENDS = 5


def _describe_location(raw: Any, loc: tuple[Any, ...]) -> str:
    """Render a pydantic location as a tree path with area names, e.g. ``Grid > House 2 > pv.panel_count``."""
    names: list[str] = []
    node = raw
    name = raw.get("name") if isinstance(raw, dict) else None
    names.append(str(name or "<root>"))
    fields: list[str] = []
    index = 0
    while index < len(loc):
        part = loc[index]
        if part == "children" and index + 1 < len(loc) and isinstance(loc[index + 1], int):
            child_index = loc[index + 1]
            children = node.get("children") if isinstance(node, dict) else None
            child = children[child_index] if isinstance(children, list) and child_index < len(children) else None
            child_name = child.get("name") if isinstance(child, dict) else None
            names.append(f"{child_name}" if child_name else f"children[{child_index}]")
            node = child
            index += 2
            # Skip the union tag pydantic inserts after a list index.
            if (
                index < len(loc)
                and isinstance(loc[index], str)
                and (loc[index] in ASSET_TYPES or loc[index] in ("Market", "unknown"))
            ):
                index += 1
            continue
        fields.append(str(part))
        index += 1
    if len(names) > 2 * _PATH_ENDS:  # a tree nested too deeply for the validator: keep the ends
        names = [*names[:_PATH_ENDS], f"... {len(names) - 2 * _PATH_ENDS} levels ...", *names[-_PATH_ENDS:]]
    path = " > ".join(names)
    return f"{path}: {'.'.join(fields)}" if fields else path


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model whose field the last element of ``loc`` names (for "did you mean")."""
    model: type[BaseModel] | None = MarketNode
    for part in loc[:-1]:
        if part in ASSET_TYPES:
            model = ASSET_TYPES[part]
        elif part == "Market":
            model = MarketNode
        elif part == "settings" and model is MarketNode:
            model = Settings
        elif part == "unknown":
            model = None
    return model


_PROFILE_HINT = 'a profile must be a {"HH:MM": value} mapping, a list of per-slot values or the path of a CSV file'


def _error_message(error: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    """A readable message and the location to report for one pydantic error."""
    loc = tuple(error["loc"])
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    field = loc[-1] if loc else None
    if error["type"] == "extra_forbidden" and isinstance(field, str):
        model = _model_at(loc)
        known = list(model.model_fields) if model is not None else []
        guess = difflib.get_close_matches(field, known, n=1)
        message = f"unknown key {field!r}" + (f" (did you mean {guess[0]!r}?)" if guess else "")
        loc = loc[:-1]
    # Errors inside a profile union name the union member (dict[str,float] / list[float] / str).
    for index, part in enumerate(loc):
        if isinstance(part, str) and part in _PROFILE_FIELDS and index + 1 < len(loc):
            detail = ".".join(str(p) for p in loc[index + 2 :])
            message = f"{_PROFILE_HINT}" + (f" (entry {detail}: {message})" if detail else "")
            loc = loc[: index + 1]
            break
    return loc, message


_PROFILE_FIELDS = (
    "power_profile",
    "daily_load_profile",
    "smart_meter_profile",
    "energy_rate_profile",
    "buying_rate_profile",
)


def _raise_first(raw: dict[str, Any], errors: list[Any]) -> NoReturn:
    """Raise one ``ScenarioError`` for the first pydantic error (counting the other places)."""
    located = [_error_message(error) for error in errors]
    loc, message = located[0]
    others = {where for where, _ in located[1:] if where != loc}
    more = f" (and {len(others)} more errors)" if others else ""
    raise ScenarioError(f"invalid scenario at {_describe_location(raw, loc)}: {message}{more}") from None


def parse_scenario(raw: Any, base_dir: Path = Path("."), overrides: dict[str, Any] | None = None) -> Scenario:
    """Validate a decoded scenario document; ``ScenarioError`` names the first bad field.

    Settings are the root's ``settings`` merged with ``overrides`` (non-None overrides win).
    Profile files and values are checked too, so a scenario that loads can be run.
    """
    if not isinstance(raw, dict):
        raise ScenarioError("scenario root must be an object describing the root market")
    root_name = str(raw.get("name") or "<root>")
    if isinstance(raw.get("type"), str) and raw["type"] in ASSET_TYPES:
        raise ScenarioError(
            f"invalid scenario at {root_name}: the root of a scenario must be a market, not a {raw['type']} asset"
        )
    file_settings = raw.get("settings")
    if file_settings is not None and not isinstance(file_settings, dict):
        raise ScenarioError(f"invalid scenario at {root_name}: settings: must be an object")
    tree = {key: value for key, value in raw.items() if key != "settings"}
    try:
        root = MarketNode.model_validate(tree)
    except ValidationError as exc:
        _raise_first(raw, exc.errors())
    settings_data = dict(file_settings or {})
    settings_data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        settings = Settings.model_validate(settings_data)
    except ValidationError as exc:
        # Report settings errors where they sit in the file: ``Grid: settings.tick_length``.
        _raise_first(raw, [{**error, "loc": ("settings", *error["loc"])} for error in exc.errors()])
    if file_settings is not None:
        root.settings = settings
    scenario = Scenario(root=root, settings=settings, base_dir=base_dir)
    _check_names(scenario)
    _check_profiles(scenario)
    return scenario


def _paths(scenario: Scenario) -> dict[int, str]:
    """``id(node)`` -> ``Grid > House 1 > pv`` for every node."""
    paths = {id(scenario.root): scenario.root.name}
    for node, parent in scenario.iter_nodes():
        if parent is not None:
            paths[id(node)] = f"{paths[id(parent)]} > {node.name}"
    return paths


def _check_names(scenario: Scenario) -> None:
    asset_names: dict[str, str] = {}
    market_slugs: dict[str, str] = {}
    uuids: dict[str, str] = {}
    paths = _paths(scenario)
    for node, parent in scenario.iter_nodes():
        where = paths[id(node)]
        if node.uuid:
            if node.uuid in uuids:
                raise ScenarioError(
                    f"invalid scenario at {where}: uuid {node.uuid} is used twice (also by {uuids[node.uuid]})"
                )
            uuids[node.uuid] = where
        if isinstance(node, MarketNode):
            if parent is not None and node.settings is not None:
                raise ScenarioError(f"invalid scenario at {where}: settings are only allowed on the root market")
            slug = slugify(node.name)
            if not slug:
                raise ScenarioError(f"invalid scenario at {where}: name has no letters or digits")
            if slug in market_slugs:
                raise ScenarioError(
                    f"invalid scenario at {where}: market slug {slug!r} collides with market "
                    f"{market_slugs[slug]!r} (Redis channels would be shared)"
                )
            market_slugs[slug] = node.name
        else:
            if node.name in asset_names:
                raise ScenarioError(
                    f"invalid scenario at {where}: asset name {node.name!r} is used twice "
                    f"(also at {asset_names[node.name]}; Redis channels of assets are keyed by name)"
                )
            asset_names[node.name] = where


def _check_profiles(scenario: Scenario) -> None:
    """Load every profile once so missing files and bad values fail at load time."""
    from gsy_local_exchange.profiles import load_profile  # noqa: PLC0415 - profiles does not import us

    paths: dict[int, str] | None = None
    for node, _ in scenario.iter_nodes():
        for field in _PROFILE_FIELDS:
            spec = getattr(node, field, None)
            if spec is None:
                continue
            try:
                load_profile(spec, scenario.base_dir, scenario.settings.slot_length)
            except ValueError as exc:
                paths = paths or _paths(scenario)
                raise ScenarioError(f"invalid scenario at {paths[id(node)]}: {field}: {exc}") from None


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read a JSON or YAML scenario file and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"cannot read scenario {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except RecursionError:
        raise ScenarioError(f"cannot parse scenario {path}: nested too deeply") from None
    except (ValueError, yaml.YAMLError) as exc:  # ValueError: JSON errors, or a YAML date/int out of range
        raise ScenarioError(f"cannot parse scenario {path}: {exc}") from None
    return parse_scenario(raw, base_dir=path.parent, overrides=overrides)
