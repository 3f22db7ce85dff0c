"""Wire-compatible client SDK for GSy Exchange."""

from typing import Any

from gsy_e_sdk.client_interface import APIClientInterface
from gsy_e_sdk.wire.version import __version__

__all__ = ["APIClientInterface", "AutoAggregator", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use so ``import gsy_e_sdk`` (the CLI, the exchange) stays light.
    if name == "AutoAggregator":
        from gsy_e_sdk.auto_aggregator import AutoAggregator  # noqa: PLC0415

        return AutoAggregator
    raise AttributeError(f"module 'gsy_e_sdk' has no attribute {name!r}")
