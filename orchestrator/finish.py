"""When a fleet run is over: every aggregator got ``finish`` and the exchange then went quiet.

Anybody who can publish on an aggregator's event channel can send ``{"event": "finish"}``, and
pub/sub cannot say who published it. A real finish is the exchange's last word; a forged one is
followed by more market and tick events. So a finish counts only once no such event has arrived
for a while, and an aggregator that gets events after its finish is running again (the finish
is counted as forged). "A while" is twice the longest recent gap between events, so a fleet
paced at 15 s ticks waits 30 s after the end and one at fast pace about a second.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

QUIET_MIN_S = 1.0
QUIET_MAX_S = 60.0
GAPS_KEPT = 20


class FinishWatch:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.finished: set[str] = set()
        self._last_event: float | None = None
        self._gaps: deque[float] = deque(maxlen=GAPS_KEPT)

    def on_event(self, aggregator_uuid: str) -> bool:
        """A market or tick event of this aggregator; True when it had a finish (a forged one)."""
        now = self.clock()
        if self._last_event is not None and now - self._last_event > 0:
            self._gaps.append(now - self._last_event)
        self._last_event = now
        if aggregator_uuid in self.finished:
            self.finished.discard(aggregator_uuid)
            return True
        return False

    def on_finish(self, aggregator_uuid: str) -> None:
        self.finished.add(aggregator_uuid)

    def quiet_needed(self) -> float:
        longest = max(self._gaps, default=0.0)
        return min(max(2 * longest, QUIET_MIN_S), QUIET_MAX_S)

    def done(self, aggregators: int) -> bool:
        """Every one of ``aggregators`` finished and no event came for long enough since."""
        if not aggregators or len(self.finished) < aggregators:
            return False
        return self._last_event is None or self.clock() - self._last_event >= self.quiet_needed()
