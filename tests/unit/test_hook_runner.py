"""The per-client hook queue: stale ticks skipped when the hooks are behind, everything else kept
in order, a bounded queue, and ``on_finish`` right after the hook that was running."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gsy_e_sdk.hooks import HookRunner


class Recorder:
    """Hooks that record their name and argument; ``gate`` holds the first hook until opened."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.gate = threading.Event()
        self.blocked = threading.Event()
        self.spans: list[tuple[str, float, float]] = []

    def blocking(self, arg: object) -> None:
        self.blocked.set()
        assert self.gate.wait(5)
        self.calls.append(("blocking", arg))

    def hook(self, name: str):
        def record(arg: object) -> None:
            self.calls.append((name, arg))

        return record

    def slow(self, seconds: float):
        def run(arg: object) -> None:
            started = time.monotonic()
            time.sleep(seconds)
            self.spans.append(("slow", started, time.monotonic()))
            self.calls.append(("slow", arg))

        return run


def event(runner: HookRunner, recorder: Recorder, kind: str, arg: object) -> None:
    runner.submit_event(
        kind, [(f"on_{kind}", recorder.hook(kind), (arg,)), ("on_event_or_response", recorder.hook("any"), (arg,))]
    )


def test_ticks_superseded_while_a_hook_runs_are_dropped_and_the_rest_keep_order(caplog):
    runner, recorder = HookRunner(name="slowpoke"), Recorder()
    runner.submit_event("market", [("on_market_slot", recorder.blocking, ("m1",))])
    assert recorder.blocked.wait(5)  # the market hook runs: the client is behind from now on
    with caplog.at_level(logging.INFO, logger="gsy_e_sdk.hooks"):
        for kind, arg in [
            ("tick", "t1"),
            ("tick", "t2"),
            ("trade", "x1"),
            ("tick", "t3"),
            ("market", "m2"),
            ("tick", "t4"),
            ("trade", "x2"),
            ("finish", "f"),
        ]:
            event(runner, recorder, kind, arg)
        runner.submit("on_event_or_response", recorder.hook("response"), "batch answer")
        recorder.gate.set()
        assert runner.wait_idle(5)
    # Every tick had a newer event before it could start; trades, markets, finish and the
    # response all ran, in arrival order, each event's hooks together.
    assert recorder.calls == [
        ("blocking", "m1"),
        ("trade", "x1"),
        ("any", "x1"),
        ("market", "m2"),
        ("any", "m2"),
        ("trade", "x2"),
        ("any", "x2"),
        ("finish", "f"),
        ("any", "f"),
        ("response", "batch answer"),
    ]
    assert runner.dropped_ticks == 4
    logged = [r for r in caplog.records if "tick events superseded" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.INFO and "slowpoke" in logged[0].getMessage()


def test_the_last_tick_runs_and_responses_do_not_supersede_it():
    runner, recorder = HookRunner(), Recorder()
    runner.submit_event("market", [("on_market_slot", recorder.blocking, ("m1",))])
    assert recorder.blocked.wait(5)
    event(runner, recorder, "tick", "t1")
    runner.submit("on_event_or_response", recorder.hook("response"), "batch answer")
    recorder.gate.set()
    assert runner.wait_idle(5)
    assert recorder.calls == [("blocking", "m1"), ("tick", "t1"), ("any", "t1"), ("response", "batch answer")]
    assert runner.dropped_ticks == 0


def busy_executor() -> tuple[ThreadPoolExecutor, HookRunner, Recorder]:
    """A one-thread executor whose thread is held by another client's hook (open ``gate`` to free it)."""
    executor, other = ThreadPoolExecutor(max_workers=1), Recorder()
    busy = HookRunner(executor)
    busy.submit("on_tick", other.blocking, "other client")
    assert other.blocked.wait(5)
    return executor, busy, other


def test_a_tick_waiting_only_for_a_free_thread_is_not_behind():
    """All shared threads busy with another client's hooks: this client is not late, keep its ticks."""
    executor, busy, other = busy_executor()
    runner, recorder = HookRunner(executor), Recorder()
    event(runner, recorder, "tick", "t1")
    event(runner, recorder, "tick", "t2")
    event(runner, recorder, "market", "m1")
    other.gate.set()
    assert runner.wait_idle(5) and busy.wait_idle(5)
    assert [name for name, _ in recorder.calls if name != "any"] == ["tick", "tick", "market"]
    assert runner.dropped_ticks == 0
    executor.shutdown()


def test_ticks_that_queued_while_waiting_for_a_thread_are_all_dropped_once_the_client_is_behind():
    """A burst of ticks queued before the client's first hook started (a loaded machine): once that
    hook runs, the next event supersedes every one of them, not only the last."""
    executor, busy, other = busy_executor()
    runner, recorder = HookRunner(executor), Recorder()
    runner.submit_event("tick", [("on_tick", recorder.blocking, ("t1",))])
    for arg in ("t2", "t3", "t4", "t5"):
        event(runner, recorder, "tick", arg)
    other.gate.set()
    assert recorder.blocked.wait(5)  # t1's hook runs: the client is behind from now on
    event(runner, recorder, "finish", "f")
    recorder.gate.set()
    assert runner.wait_idle(5) and busy.wait_idle(5)
    assert recorder.calls == [("blocking", "t1"), ("finish", "f"), ("any", "f")]
    assert runner.dropped_ticks == 4
    executor.shutdown()


def test_opting_out_runs_every_tick():
    runner, recorder = HookRunner(drop_stale_ticks=False), Recorder()
    runner.submit_event("market", [("on_market_slot", recorder.blocking, ("m1",))])
    assert recorder.blocked.wait(5)
    for arg in ("t1", "t2", "t3"):
        event(runner, recorder, "tick", arg)
    event(runner, recorder, "finish", "f")
    recorder.gate.set()
    assert runner.wait_idle(5)
    assert [arg for name, arg in recorder.calls if name == "tick"] == ["t1", "t2", "t3"]
    assert runner.dropped_ticks == 0


def test_the_queue_is_bounded(caplog):
    runner, recorder = HookRunner(limit=5), Recorder()
    runner.submit_event("market", [("on_market_slot", recorder.blocking, ("m0",))])
    assert recorder.blocked.wait(5)
    with caplog.at_level(logging.ERROR, logger="gsy_e_sdk.hooks"):
        for index in range(1, 11):
            event(runner, recorder, "trade", index)
    recorder.gate.set()
    assert runner.wait_idle(5)
    assert [arg for name, arg in recorder.calls if name == "trade"] == [1, 2, 3, 4, 5]
    assert runner.overflowed == 5
    assert len([r for r in caplog.records if "refusing more" in r.getMessage()]) == 1


def test_on_finish_runs_right_after_the_hook_running_when_finish_arrived():
    """The issue's case: a 0.5 s on_tick per tick, ticks every 20 ms, then finish."""
    runner, recorder = HookRunner(), Recorder()
    finished: list[float] = []
    slow = recorder.slow(0.5)
    for index in range(40):
        runner.submit_event("tick", [("on_tick", slow, (index,))])
        time.sleep(0.02)
    finish_arrived = time.monotonic()
    runner.submit_event("finish", [("on_finish", lambda _: finished.append(time.monotonic()), (None,))])
    assert runner.wait_idle(5)
    running_until = max((end for _, start, end in recorder.spans if start <= finish_arrived), default=finish_arrived)
    assert finished and finished[0] - max(finish_arrived, running_until) < 0.1
    # Two or three slow hooks ran in the 0.8 s; all other ticks were skipped, none queued up.
    assert len(recorder.spans) <= 4 and runner.dropped_ticks == 40 - len(recorder.spans)


@pytest.mark.parametrize("exception", [RuntimeError("bug"), RecursionError("deep")])
def test_a_raising_hook_does_not_stop_the_runner(exception, caplog):
    runner, recorder = HookRunner(), Recorder()

    def broken(_: object) -> None:
        raise exception

    runner.submit_event("trade", [("on_trade", broken, (1,)), ("on_event_or_response", recorder.hook("any"), (1,))])
    event(runner, recorder, "trade", 2)
    assert runner.wait_idle(5)
    assert recorder.calls == [("any", 1), ("trade", 2), ("any", 2)]
    assert f"on_trade raised exception: {exception}." in caplog.text
