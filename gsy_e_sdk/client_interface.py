"""The abstract client every asset/market client implements (SDK_API.md 3)."""

from abc import ABC, abstractmethod
from typing import Any


class APIClientInterface(ABC):
    @abstractmethod
    def __init__(self, area_id: str, *args: Any, **kwargs: Any) -> None:
        pass

    @abstractmethod
    def register(self, is_blocking: bool) -> Any:
        pass

    @abstractmethod
    def unregister(self, is_blocking: bool) -> Any:
        pass

    def on_event_or_response(self, message: dict[str, Any]) -> None:  # noqa: B027 - optional hook, no-op
        """Called with every message addressed to this client; override to observe them."""
