"""Simulated time: slots, ticks and the 10 % event steps (EXCHANGE.md 1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

EVENT_STEP_PERCENT = 10


@dataclass(frozen=True)
class SimulationClock:
    start: datetime
    slot_length: timedelta
    tick_length: timedelta
    duration: timedelta

    @property
    def ticks_per_slot(self) -> int:
        return int(self.slot_length / self.tick_length)

    @property
    def slot_count(self) -> int:
        return max(int(self.duration / self.slot_length), 1)

    @property
    def event_step(self) -> int:
        """Ticks between two ``tick`` events: int(ticks per slot x 10 %)."""
        return max(int(self.ticks_per_slot * EVENT_STEP_PERCENT / 100), 1)

    @property
    def slot_hours(self) -> float:
        return self.slot_length.total_seconds() / 3600

    @property
    def num_ticks_field(self) -> float:
        """The ``num_ticks`` field of every aggregator event: tick events per slot (10.0)."""
        return 100 / EVENT_STEP_PERCENT

    def slot_start(self, slot_index: int) -> datetime:
        return self.start + slot_index * self.slot_length

    def tick_time(self, slot_index: int, tick: int) -> datetime:
        return self.slot_start(slot_index) + tick * self.tick_length

    def is_event_tick(self, tick: int) -> bool:
        return tick % self.event_step == 0 and self.completion_percent(tick) < 100

    def completion_percent(self, tick: int) -> int:
        return int(100 * tick / self.ticks_per_slot)
