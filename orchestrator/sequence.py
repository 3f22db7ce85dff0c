"""Where each aggregator's events stand: lost and duplicated events told from their sequence.

Pub/sub drops what is published while a subscriber is away, so the (slot, completion) sequence
of an aggregator's market and tick events is the only evidence of a lost one. The last position
dispatched per aggregator is kept in Redis, so a restarted dispatcher resumes where it was.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from orchestrator.state import Position, StateStore

logger = logging.getLogger(__name__)


class SequenceCheck(NamedTuple):
    missed: int  # events of this aggregator the dispatcher never received before this one
    resync: bool  # dispatch this tick as its slot's market event: that event never arrived
    duplicate: bool = False  # the very event dispatched last, delivered again: drop it


def check_sequence(previous: Position | None, event: str, slot: str | None, completion: int) -> SequenceCheck:
    """Where an aggregator's market/tick event stands against the last one dispatched. Pure.

    ``previous`` is (slot, completion %) of the last market or tick event dispatched for the
    aggregator, None when there was none. Pub/sub drops what is published while a subscriber
    is away (a restart, a reconnection), so the sequence is the only evidence of a lost event:

    - the same (slot, completion) as the last one: the same event delivered twice (e.g. by a
      relay that subscribed twice); dispatching it again would run every task twice;
    - a market event starts its slot: nothing is missing (a lost tail of the previous slot
      cannot be told from the slot length alone, which the dispatcher does not know);
    - a tick of the slot last seen, more than 10 % after the last one: the ticks in between
      were lost (counted, nothing to replay: the next tick carries the current state);
    - a tick of another slot: that slot's market event was lost, so strategies never started
      the slot (grid operators act on market events only). It is dispatched as the market
      event (resync); the market event and the ticks before this one are counted as missed.
      With no previous event (a dispatcher joining mid-slot with no recorded position) it is
      resynced the same way but nothing is counted: nothing was lost, the fleet just arrived.
    """
    if previous == (slot, completion):
        return SequenceCheck(0, False, duplicate=True)
    if event == "market":
        return SequenceCheck(0, False)
    if previous is None:
        return SequenceCheck(0, True)
    last_slot, last_completion = previous
    if last_slot != slot:
        return SequenceCheck(1 + max(completion - 10, 0) // 10, True)
    if completion > last_completion + 10:
        return SequenceCheck((completion - last_completion) // 10 - 1, False)
    return SequenceCheck(0, False)


class SequenceTracker:
    """Per aggregator: the last market/tick event dispatched, checked against each new one.

    Counts what was missed, resynced or duplicated in the fleet's counters; positions are
    written in one command per burst (``flush``), only once the burst's slices are sent.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._last: dict[str, Position] = {}
        self._unsaved: dict[str, Position] = {}

    def load(self) -> None:
        """Resume where the last dispatcher of this fleet left each aggregator."""
        self._last = self.store.load_positions()

    def check(self, name: str, uuid: str, event: str, slot: str | None, completion: int) -> SequenceCheck:
        """Count events the dispatcher never saw, and say whether to resync or drop this one."""
        check = check_sequence(self._last.get(uuid), event, slot, completion)
        if check.duplicate:
            self.store.incr("duplicate_events")
            logger.info("%s: %s %s %d%% received twice; dispatched once", name, event, slot, completion)
            return check
        self._last[uuid] = (slot, completion)
        missed, resync, _ = check
        if missed:
            self.store.incr("missed_events", missed)
        if resync:
            self.store.incr("resynced_slots")
            logger.warning(
                "%s: %s %d%% arrived without the slot's market event (%d event(s) missed); "
                "dispatched as the market event",
                name,
                slot,
                completion,
                missed,
            )
        elif missed:
            logger.warning("%s: missed %d tick event(s) before %s %d%%", name, missed, slot, completion)
        return check

    def save(self, uuid: str, slot: str | None, completion: int) -> None:
        self._unsaved[uuid] = (slot, completion)

    def flush(self) -> None:
        """Write the positions saved since the last flush, in one command."""
        if not self._unsaved:
            return
        positions, self._unsaved = self._unsaved, {}
        try:
            self.store.save_positions(positions)
        except Exception:  # noqa: BLE001 - Redis away: keep them for the next flush
            self._unsaved = {**positions, **self._unsaved}
            logger.warning("could not record the fleet's event positions; retrying after the next event")
