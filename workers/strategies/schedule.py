"""Daily step schedules ("from HH:MM on, value x"), shared by time-of-use rates and grid-fee plans."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator

T = TypeVar("T")
_HHMM = re.compile(r"(\d{1,2}):(\d{2})")


def minute_of_day(text: str) -> int:
    """Minutes since midnight of an "HH:MM" string; ValueError explains the expected format."""
    match = _HHMM.fullmatch(text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"expected a time of day HH:MM (00:00-23:59), got {text!r}")
    return int(match[1]) * 60 + int(match[2])


def _check_time(text: str) -> str:
    minute_of_day(text)
    return text


TimeOfDay = Annotated[str, AfterValidator(_check_time)]


def slot_minute(slot: str) -> int:
    """Minute of day at which a market slot ("YYYY-MM-DDTHH:mm") starts."""
    return minute_of_day(slot.partition("T")[2][:5])


@dataclass(frozen=True)
class DailySchedule(Generic[T]):
    """A value per time of day: each entry holds from its time until the next one, and the last
    entry carries over midnight until the first (the schedule repeats every day)."""

    minutes: tuple[int, ...]
    values: tuple[T, ...]

    @classmethod
    def build(cls, entries: Iterable[tuple[int, T]]) -> DailySchedule[T]:
        ordered = sorted(entries, key=lambda entry: entry[0])
        if not ordered:
            raise ValueError("a schedule needs at least one entry")
        for (earlier, _), (later, _) in pairwise(ordered):
            if earlier == later:
                raise ValueError(f"time {later // 60:02d}:{later % 60:02d} appears twice")
        return cls(tuple(minute for minute, _ in ordered), tuple(value for _, value in ordered))

    def at(self, slot: str) -> T:
        """The value in force when `slot` starts (index -1 = the previous day's last entry)."""
        return self.values[bisect_right(self.minutes, slot_minute(slot)) - 1]
