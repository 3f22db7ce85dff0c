"""Time formats of the wire (REDIS.md 1, item 7)."""

from datetime import UTC, datetime
from typing import Any

SLOT_FORMAT = "%Y-%m-%dT%H:%M"
ORDER_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
# Accepted when parsing a ``time_slot`` argument or a forecast key.
_ACCEPTED_FORMATS = (SLOT_FORMAT, ORDER_TIME_FORMAT, "%Y-%m-%dT%H", "%B %d %Y, %H:%M h", "%B %d %Y, %H:%M")


def format_slot(moment: datetime) -> str:
    return moment.strftime(SLOT_FORMAT)


def format_order_time(moment: datetime) -> str:
    return moment.strftime(ORDER_TIME_FORMAT)


def format_trade_time(moment: datetime) -> str:
    """ISO-8601 with offset, e.g. ``2021-07-01T12:17:30+00:00``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


def parse_slot(text: str) -> datetime:
    """Parse any accepted slot spelling into a naive UTC datetime; ``ValueError`` otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"time slot must be a string, got {type(text).__name__}")
    for fmt in _ACCEPTED_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise ValueError(f"unparsable time slot {text!r}")


def format_completion(percent: int) -> str:
    """An event's ``slot_completion``: ``"40%"`` (REDIS.md 7.2)."""
    return f"{percent}%"


def parse_completion(value: Any) -> int:
    """An event's ``slot_completion`` (``"40%"``) as whole percent; 0 when missing or unreadable."""
    try:
        return int(float(str(value if value is not None else "0").strip().rstrip("%") or 0))
    except (ValueError, OverflowError):
        return 0
